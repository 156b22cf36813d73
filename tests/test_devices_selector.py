"""Threshold selector (no state): I–V shape and slopes (numpy), both engines on element
testbenches and on the 1S1R crossbar the builder makes with it, sneak-path blocking.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circuitkit.compare import compare_waveforms
from circuitkit.devices import get_model
from circuitkit.workflow import load
from devicekit import both, circuit

SEL = get_model("selector")
TESTBENCHES = Path(__file__).resolve().parents[1] / "testbenches"


# ---------------------------------------------------------------------------
# numpy twin
# ---------------------------------------------------------------------------

def test_selector_has_no_state_and_is_a_selector():
    assert SEL.kind == "selector" and SEL.n_states() == 0 and SEL.terminals() == ("p", "n")


def test_iv_is_odd_monotonic_and_switches_at_vth():
    p = SEL.resolve()
    v = np.linspace(-1.5, 1.5, 3001)
    i = SEL.current(v, np.zeros((0, v.size)), p)
    assert i == pytest.approx(-i[::-1], rel=1e-12, abs=1e-18)
    assert np.all(np.diff(i) > 0)
    g = SEL.conductance(v, p)
    below, above = np.abs(v) < p.vth - 6 * p.dv, np.abs(v) > p.vth + 10 * p.dv
    assert np.all(np.abs(g[below] * p.roff - 1) < 0.05)     # OFF leakage up to 6 dv below vth
    assert np.all(np.abs(g[above] * p.ron - 1) < 1e-3)
    assert i[v > 0] == pytest.approx(v[v > 0] * g[v > 0], rel=1e-12)
    # geometric mean of the two conductances at the threshold
    g_th = SEL.conductance(np.array([p.vth]), p)[0]
    assert g_th == pytest.approx(1 / np.sqrt(p.ron * p.roff), rel=1e-3)


def test_linearize_matches_finite_differences_and_has_empty_state_arrays():
    p = SEL.resolve({"vth": 0.3, "dv": 0.02})
    v = np.array([-0.8, -0.31, 0.0, 0.05, 0.29, 0.3, 0.45])
    i, di_dv, di_dx, f, df_dv, df_dx = SEL.linearize(v, np.zeros((0, v.size)), p)
    h = 1e-7
    fd = (SEL.current(v + h, None, p) - SEL.current(v - h, None, p)) / (2 * h)
    assert di_dv == pytest.approx(fd, rel=1e-6)
    assert i == pytest.approx(SEL.current(v, None, p), rel=1e-15)
    assert di_dx.shape == f.shape == df_dv.shape == (0, v.size) and df_dx.shape == (0, 0, v.size)
    assert SEL.state_derivative(v, np.zeros((0, v.size)), p).shape == (0, v.size)


# ---------------------------------------------------------------------------
# both engines
# ---------------------------------------------------------------------------

@pytest.mark.spice
def test_operating_points_on_the_iv_curve(tmp_path):
    volts = [-1.2, -0.42, -0.2, 0.1, 0.38, 0.41, 0.6, 1.5]
    lines = [f"source v{k} (a{k}, 0) dc({v})\ndevice s{k} (a{k}, 0) selector()" for k, v in enumerate(volts)]
    c = circuit(tmp_path, "\n".join(lines) + "\nanalysis op()\nrecord " +
                ", ".join(f"i(s{k})" for k in range(len(volts))) + "\n")
    p = SEL.resolve()
    expected = SEL.current(np.array(volts), None, p)
    for wf in both(c):
        got = np.array([float(wf[f"i(s{k})"]) for k in range(len(volts))])
        assert got == pytest.approx(expected, rel=1e-6), wf.engine


@pytest.mark.spice
def test_triangle_through_a_resistor_within_one_percent(tmp_path):
    c = circuit(tmp_path, """
source vin (in, 0) pwl(times = [0, 1m, 3m, 4m], values = [0, 2, -2, 0])
resistor rs (in, a) 1k
device s1 (a, 0) selector(vth = 0.5, ron = 200)
analysis tran(stop = 4m, step = 10u)
record v(a), i(s1)
""")
    spice, beh = both(c)
    cmp = compare_waveforms(c, spice, beh, tolerance=0.01)
    assert cmp.passed, cmp.table()
    # clamped near the threshold while ON: the node voltage stays well below the 2 V drive
    assert 0.5 < np.max(beh["v(a)"]) < 1.0 and -1.0 < np.min(beh["v(a)"]) < -0.5


@pytest.mark.spice
@pytest.mark.parametrize("with_selector", [False, True])
def test_selector_blocks_a_three_cell_sneak_path(tmp_path, with_selector):
    """Selected path: one cell; sneak path: three cells in series, each at a third of the read voltage."""
    sel = "device s{k} ({a}, {m}) selector()\n" if with_selector else "resistor s{k} ({a}, {m}) 1m\n"
    text = "source vsel (r0, 0) dc(1)\nsource vsnk (q0, 0) dc(1)\n"
    text += sel.format(k=0, a="r0", m="m0") + "device c0 (m0, 0) vteam(x0 = 0)\n"
    nodes = ["q0", "q1", "q2", "0"]
    for k in range(3):
        text += sel.format(k=k + 1, a=nodes[k], m=f"n{k}") + f"device c{k + 1} (n{k}, {nodes[k + 1]}) vteam(x0 = 0)\n"
    c = circuit(tmp_path, text + "analysis op()\nrecord i(c0), i(c1)\n")
    spice, beh = both(c)
    for wf in (spice, beh):
        ratio = float(wf["i(c1)"]) / float(wf["i(c0)"])
        if with_selector:
            assert ratio < 0.01, (wf.engine, ratio)
        else:
            assert ratio == pytest.approx(1 / 3, rel=1e-3), (wf.engine, ratio)
    assert float(spice["i(c0)"]) == pytest.approx(float(beh["i(c0)"]), rel=1e-6)
    assert float(spice["i(c1)"]) == pytest.approx(float(beh["i(c1)"]), rel=1e-6)


@pytest.mark.spice
def test_1s1r_crossbar_read_agrees_in_both_engines():
    currents = {}
    for cell in ("1R", "1S1R"):
        _, c = load(TESTBENCHES / "sneak_1s1r_8x8.xbar", {"cell": cell})
        spice, beh = both(c)
        assert float(spice["icol_0"]) == pytest.approx(float(beh["icol_0"]), rel=1e-4), cell
        currents[cell] = float(beh["icol_0"])
    assert 0 < currents["1S1R"] < currents["1R"]
