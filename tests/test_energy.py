"""Energy per phase and part against closed forms, in both engines, and the stuck-fault clamps excluded.

Closed forms: a linear cell (VTEAM with iv = 0, thresholds far above the
applied voltages, so no state moves) of conductance G under a voltage that
ramps linearly from 0 to V over an edge e, holds for w and ramps back over e
dissipates G V^2 (w + 2 e / 3) (each ramp: ∫ (V t / e)^2 G dt = G V^2 e / 3).
"""
import numpy as np
import pytest

from circuitkit.energy import EnergyError, energy, record_energy, simulate_energy
from circuitkit.engines import simulate
from circuitkit.workflow import load

LINEAR = "vteam(iv = 0, ron = 10k, roff = 100k, von = -5, voff = 5)"


def _xbar(tmp_path, body: str, name="e.xbar"):
    f = tmp_path / name
    f.write_text(body)
    return load(f)[1]


def _conductance(circuit):
    xb = circuit.crossbar
    cells = circuit.group(xb.cells)
    x = xb.state_nodes.shape and np.asarray(cells.resolved()["x0"], dtype=float).reshape(1, -1)
    return cells.model.read_conductance(0.1, x, cells.resolved()).reshape(xb.shape)


def test_read_energy_is_sum_g_v2_t(tmp_path):
    """Operating point: power x phase duration, exactly sum_ij G_ij V_i^2 t."""
    v = np.array([0.2, 0.05, 0.1])
    c = _xbar(tmp_path, f"crossbar xb {{ rows = 3; cols = 4; cell = 1R; device = {LINEAR}; "
                        "state = uniform(0, 1, seed = 3) }\n"
                        f"stimulus {{ duration = 50n; read = [{', '.join(map(str, v))}] }}\nanalysis op()\n")
    g = _conductance(c)
    expected = float(np.sum(g * v[:, None] ** 2) * 50e-9)
    wf, en = simulate_energy(c, "behavioural")
    t = en.totals
    assert t["cells_selected"] == pytest.approx(expected, rel=1e-9, abs=0)
    assert t["cells_half_selected"] == t["cells_unselected"] == t["wires"] == t["drivers"] == 0.0
    assert t["supplied"] == pytest.approx(expected, rel=1e-9, abs=0) and abs(en.balance) < 1e-9
    np.testing.assert_allclose(en.cells, g * v[:, None] ** 2 * 50e-9, rtol=1e-9)


def test_read_transient_with_edges_and_wire_balance(tmp_path):
    """Transient read: G V^2 (d - e) + G V^2 e / 3 per cell; with wires the sources' energy balances the parts."""
    v = np.array([0.2, 0.1])
    body = (f"crossbar xb {{ rows = 2; cols = 2; cell = 1R; device = {LINEAR}; state = uniform(0, 1, seed = 4) }}\n"
            "driver rows { rise = 2n; fall = 2n }\n"
            f"stimulus {{ duration = 40n; read = [{', '.join(map(str, v))}] }}\nanalysis tran(step = 0.05n)\n")
    c = _xbar(tmp_path, body)
    g = _conductance(c)
    expected = float(np.sum(g * v[:, None] ** 2) * (40e-9 - 2e-9 + 2e-9 / 3))
    _, en = simulate_energy(c, "behavioural")
    assert en.totals["cells_selected"] == pytest.approx(expected, rel=2e-4, abs=0)
    c = _xbar(tmp_path, body.replace("driver rows {", "wires { r_row = 50; r_col = 50; c_row = 1f; c_col = 1f }\n"
                                     "driver rows { r_out = 100;"), "w.xbar")
    _, en = simulate_energy(c, "behavioural")
    t = en.totals
    assert t["wires"] > 0 and t["drivers"] > 0 and t["cells_selected"] < expected
    assert abs(en.balance) < 1e-4          # trapezoidal power vs exact stored capacitor energy: O(step^2)


def test_single_pulse_on_one_device(tmp_path):
    """An element testbench: one pulse across one device; the device counts under 'other'."""
    c = _xbar(tmp_path, "source v1 (a, 0) pulse(v1 = 0, v2 = 0.5, rise = 1n, fall = 1n, width = 10n, delay = 2n)\n"
                        f"device m1 (a, 0) {LINEAR.replace('iv = 0', 'iv = 0, x0 = 0.3')}\n"
                        "analysis tran(step = 0.02n, stop = 20n)\n")
    dev = c.group("m1")
    g = float(dev.model.read_conductance(0.1, np.array(0.3), dev.resolved()))
    expected = g * 0.5 ** 2 * (10e-9 + 2 * 1e-9 / 3)
    for engine in ("behavioural",):
        _, en = simulate_energy(c, engine)
        assert en.totals["other"] == pytest.approx(expected, rel=1e-4, abs=0)
        assert en.totals["supplied"] == pytest.approx(expected, rel=1e-4, abs=0)


def _v2_write(tmp_path, faults=""):
    return _xbar(tmp_path, f"crossbar xb {{ rows = 3; cols = 3; cell = 1R; device = {LINEAR}; "
                           f"state = uniform(0, 1, seed = 5) {faults} }}\n"
                           "stimulus { program = pulses(row = 1, col = 1, amplitude = 1.2, width = 20n, count = 1, "
                           "gap = 5n, scheme = v2) }\nanalysis tran(step = 0.05n)\n", f"w{len(faults)}.xbar")


def test_v2_write_selected_and_half_selected_cells(tmp_path):
    """V/2 scheme: the target sees V, the four cells sharing its row or column V/2, the other four 0 V."""
    c = _v2_write(tmp_path)
    g = _conductance(c)
    edge = 1e-9                       # the row driver's default edges
    k = 20e-9 + 2 * edge / 3
    half = [(1, 0), (1, 2), (0, 1), (2, 1)]
    _, en = simulate_energy(c, "behavioural")
    t = en.totals
    assert t["cells_selected"] == pytest.approx(g[1, 1] * 1.2 ** 2 * k, rel=2e-4, abs=0)
    assert t["cells_half_selected"] == pytest.approx(sum(g[ij] for ij in half) * 0.6 ** 2 * k, rel=2e-4, abs=0)
    assert abs(t["cells_unselected"]) < 1e-9 * t["cells_half_selected"]
    assert abs(en.balance) < 1e-6
    assert list(en.table["kind"]) == ["program"]


def test_faulted_array_energy_differs_only_by_the_clamped_cells(tmp_path):
    """Stuck cells are state-terminal clamps: their sources count nothing, so only the stuck cells' own energy
    changes (the old source-energy metric reported joules for a nanojoule write)."""
    healthy = _v2_write(tmp_path)
    faulted = _v2_write(tmp_path, "; faults = stuck(on = 0.3, off = 0.2, seed = 1)")
    stuck = faulted.crossbar.stuck
    assert stuck.size >= 2
    _, eh = simulate_energy(healthy, "behavioural")
    _, ef = simulate_energy(faulted, "behavioural")
    share = eh.cells.ravel()[stuck].sum() + ef.cells.ravel()[stuck].sum()
    assert abs(ef.totals["total"] - eh.totals["total"]) <= share * (1 + 1e-9)
    assert abs(ef.totals["supplied"] - ef.totals["total"]) < 1e-6 * ef.totals["total"]
    others = np.setdiff1d(np.arange(9), stuck)
    np.testing.assert_allclose(ef.cells.ravel()[others], eh.cells.ravel()[others], rtol=1e-9)


def test_record_energy_in_the_description(tmp_path):
    body = (f"crossbar xb {{ rows = 2; cols = 2; cell = 1R; device = {LINEAR} }}\n"
            "stimulus { duration = 10n; read = [0.1, 0.2] }\nanalysis op()\nrecord energy\n")
    c = _xbar(tmp_path, body)
    wf = simulate(c, "behavioural")
    assert energy(c, wf).totals["cells_selected"] > 0
    assert set(c.crossbar.current_signals.values()) <= set(wf.signals)    # the default records stay


def test_energy_without_its_probes_is_a_clear_error(tmp_path):
    c = _v2_write(tmp_path)
    wf = simulate(c, "behavioural")
    with pytest.raises(EnergyError, match="record_energy"):
        energy(c, wf)
    assert record_energy(c) and record_energy(c)     # idempotent


@pytest.mark.spice
def test_both_engines_agree_on_the_energy(tmp_path):
    c = _v2_write(tmp_path)
    _, eb = simulate_energy(c, "behavioural")
    _, es = simulate_energy(c, "spice")
    for part in ("cells_selected", "cells_half_selected", "supplied"):
        assert es.totals[part] == pytest.approx(eb.totals[part], rel=1e-3, abs=0)


@pytest.mark.parametrize("cell", ["1R/vteam", "1R/yakopcic", "1R/linear_drift", "1R/stanford_pku", "1R/volatile",
                                  "1S1R/vteam", "1T1R/vteam"])
def test_energy_balances_for_every_model_and_cell(tmp_path, cell):
    """Energy conservation: what the sources supply is what the cells, wires and drivers take, for every shipped
    memristor model (their own current equations) and for selector and transistor cells."""
    kind, model = cell.split("/")
    extra = {"1S1R": "selector = selector()", "1T1R": "transistor = nmos(vto = 0.5, kp = 200u)"}.get(kind, "")
    c = _xbar(tmp_path, f"crossbar xb {{ rows = 2; cols = 2; cell = {kind}; device = {model}(); {extra} }}\n"
                        "wires { r_row = 20; r_col = 20 }\ndriver rows { r_out = 50 }\n"
                        "stimulus { duration = 20n; read = [0.2, 0.1]; "
                        "program = pulses(row = 0, col = 1, amplitude = 1.0, width = 10n, count = 1, gap = 5n, "
                        "scheme = v2) }\nanalysis tran(step = 0.2n)\n")
    _, en = simulate_energy(c, "behavioural")
    t = en.totals
    assert t["supplied"] > 0 and t["cells_selected"] > 0 and t["wires"] > 0 and t["drivers"] > 0
    assert abs(en.balance) < 1e-6, en.table
    assert list(en.table["kind"]) == ["read", "program"]


def test_opamp_tia_counts_its_feedback_resistor_and_says_what_it_leaves_out(tmp_path):
    c = _xbar(tmp_path, f"crossbar xb {{ rows = 2; cols = 2; cell = 1R; device = {LINEAR}; state = 0.5 }}\n"
                        "sense cols { tia = opamp(rf = 1k, gain = 1e5) }\n"
                        "stimulus { duration = 20n; read = [0.2, 0.1] }\nanalysis op()\n")
    _, en = simulate_energy(c, "behavioural")
    g = _conductance(c)
    v = np.array([0.2, 0.1])
    i_col = v @ g                                 # virtual ground (gain 1e5): column currents through rf
    assert en.totals["sense"] == pytest.approx(float(np.sum(i_col ** 2) * 1e3 * 20e-9), rel=1e-3, abs=0)
    assert en.totals["cells_selected"] == pytest.approx(float(np.sum(g * v[:, None] ** 2) * 20e-9), rel=1e-3, abs=0)
    assert en.notes and "op-amp" in en.notes[0]
