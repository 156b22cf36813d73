"""Stuck-at faults: a cell's state held at a bound, identical in both engines and for every model."""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.engines import simulate
from circuitkit.errors import DescriptionError
from circuitkit.ideal import ideal_column_currents
from circuitkit.outputs import outputs_table
from circuitkit.workflow import load

READ = '''title "faults"
param on = 0.1
param off = 0.1
crossbar xb {
    rows = 8; cols = 8
    device = DEVICE
    state = constant(0.5)
    faults = stuck(on = on, off = off, seed = 5)
}
wires { r_row = 1; r_col = 1 }
stimulus { read = fill(8, 0.1) }
analysis op()
record column_currents
'''
VTEAM = "vteam(ron = 10k, roff = 100k, voff = 0.5, von = -0.5)"


def _circuit(tmp_path, device=VTEAM, text=READ, **overrides):
    f = tmp_path / "faults.xbar"
    f.write_text(text.replace("DEVICE", device))
    return load(f, overrides={k: str(v) for k, v in overrides.items()})[1]


def _x0(circuit):
    return np.asarray(circuit.group("xb_m").resolved()["x0"], dtype=float).reshape(8, 8)


def test_fault_rates_seed_and_on_off_bounds(tmp_path):
    c = _circuit(tmp_path)
    stuck = c.crossbar.stuck_cells
    x0 = _x0(c)
    assert 5 <= len(stuck) <= 24                                  # ~20 % of 64 cells
    for i, j, level in stuck:
        assert x0[i, j] == level and level in (0.0, 1.0)
    levels = {level for _, _, level in stuck}
    assert levels == {0.0, 1.0}
    assert np.sum(x0 == 0.5) == 64 - len(stuck)
    assert _circuit(tmp_path).crossbar.stuck_cells == stuck     # same seed, same faults
    assert not _circuit(tmp_path, on=0, off=0).crossbar.stuck_cells


def test_stuck_on_is_the_conducting_bound_for_each_model(tmp_path):
    # VTEAM conducts at x = 0, linear drift at x = 1
    for device, on_level in ((VTEAM, 0.0), ("linear_drift()", 1.0)):
        c = _circuit(tmp_path, device=device, on=1.0, off=0.0)
        assert {level for _, _, level in c.crossbar.stuck_cells} == {on_level}


def test_faults_raise_the_read_error_against_the_intended_product(tmp_path):
    errs = []
    for rate in (0.0, 0.05, 0.2):
        c = _circuit(tmp_path, on=rate, off=rate)
        got = outputs_table(c, simulate(c, "behavioural"))["current"].to_numpy()
        ideal = ideal_column_currents(c)[0]
        errs.append(np.linalg.norm(got - ideal) / np.linalg.norm(ideal))
    assert errs[0] < 0.01 < errs[1] < errs[2]


PROGRAM = '''title "stuck under programming"
crossbar xb {
    rows = 4; cols = 4
    device = vteam(voff = 0.6, von = -0.6, koff = 1.6meg)
    state = constant(0.5)
    faults = stuck(on = 0.25, off = 0.25, seed = 2)
}
driver rows { r_out = 5; rise = 2n; fall = 2n }
driver cols { r_out = 5; rise = 2n; fall = 2n }
stimulus { program = pulses(row = [0, 1, 2, 3], col = [0, 1, 2, 3], amplitude = 1.6, width = 50n, count = 2, gap = 20n) }
analysis tran(step = 1n)
record states
'''


@pytest.mark.spice
def test_stuck_cells_do_not_move_and_both_engines_agree(tmp_path):
    f = tmp_path / "p.xbar"
    f.write_text(PROGRAM)
    _, c = load(f)
    stuck = {(i, j) for i, j, _ in c.crossbar.stuck_cells}
    assert 0 < len(stuck) < 16
    spice, beh = simulate(c, "spice"), simulate(c, "behavioural")
    for i in range(4):
        for j in range(4):
            s, b = np.asarray(spice[f"x_{i}_{j}"]), np.asarray(beh[f"x_{i}_{j}"])
            if (i, j) in stuck:
                assert np.ptp(s) < 1e-9 and np.ptp(b) < 1e-9
            else:
                assert s[-1] - s[0] > 0.1                          # every healthy cell is programmed
            assert abs(np.interp(spice.time[-1], beh.time, b) - s[-1]) < 0.01


def test_bad_fault_settings_are_located(tmp_path):
    for setting, message in (("stuck(on = 0.7, off = 0.6)", "must not exceed 1"),
                             ("stuck(on = -0.1)", "on"), ("broken(on = 0.1)", "faults must be stuck"),
                             ("stuck(onn = 0.1)", "onn")):
        f = tmp_path / "bad.xbar"
        f.write_text(READ.replace("DEVICE", VTEAM).replace("stuck(on = on, off = off, seed = 5)", setting))
        with pytest.raises(DescriptionError, match=message) as exc:
            load(f)
        assert "bad.xbar:8" in str(exc.value)
