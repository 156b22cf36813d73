"""Yakopcic generalized model: thresholds, window and I–V (numpy), pinched loops and
co-simulation (ngspice vs behavioural) under sine and pulse drives.

Circuits are element testbenches written to ``tmp_path`` and run through
``circuitkit.engines.simulate`` in both engines.
"""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.compare import compare_waveforms
from circuitkit.devices import get_model
from devicekit import both, circuit, loop_area, rate as _rate

YAK = get_model("yakopcic")


def rate(v, x, **overrides):
    return _rate(YAK, v, x, **overrides)


# ---------------------------------------------------------------------------
# numpy twin
# ---------------------------------------------------------------------------

def test_no_motion_between_thresholds():
    p = YAK.resolve()
    v = np.linspace(-p.vn, p.vp, 301)
    for x in (0.0, 0.2, 0.7, 1.0):
        assert np.all(rate(v, x) == 0.0)


def test_published_law_holds_beyond_the_blend():
    p = YAK.resolve()
    # below xp (growing) and above 1 - xn (shrinking) the window is 1
    assert rate(0.6, 0.2)[0] == pytest.approx(p.ap * (np.exp(0.6) - np.exp(p.vp)), rel=1e-12)
    assert rate(-0.6, 0.8)[0] == pytest.approx(-p.an * (np.exp(0.6) - np.exp(p.vn)), rel=1e-12)
    # inside the window regions
    x = 0.6
    wp = np.exp(-p.alphap * (x - p.xp)) * ((p.xp - x) / (1 - p.xp) + 1)
    assert rate(0.6, x)[0] == pytest.approx(p.ap * (np.exp(0.6) - np.exp(p.vp)) * wp, rel=1e-12)
    x = 0.3
    wn = np.exp(p.alphan * (x + p.xn - 1)) * x / (1 - p.xn)
    assert rate(-0.6, x)[0] == pytest.approx(-p.an * (np.exp(0.6) - np.exp(p.vn)) * wn, rel=1e-12)


def test_eta_reverses_the_motion():
    assert rate(0.6, 0.2, eta=-1)[0] < 0 < rate(0.6, 0.2)[0]
    assert rate(-0.6, 0.8, eta=-1)[0] > 0 > rate(-0.6, 0.8)[0]


@pytest.mark.parametrize("threshold", ["vp", "vn"])
def test_threshold_is_continuously_differentiable(threshold):
    p = YAK.resolve()
    sign = 1.0 if threshold == "vp" else -1.0
    vt = sign * p[threshold]
    v = vt + sign * np.linspace(-p.vblend, 2 * p.vblend, 3001)
    r = rate(v, 0.5)
    slope = np.diff(r) / np.diff(v)
    assert np.max(np.abs(np.diff(slope))) < 0.01 * np.max(np.abs(slope))
    assert r[0] == 0 and abs(r[-1]) > 0


def test_window_is_continuous_and_stops_at_the_bounds():
    p = YAK.resolve()
    for v, xk in ((0.6, p.xp), (-0.6, 1 - p.xn)):
        left, right = rate(v, xk - 1e-9)[0], rate(v, xk + 1e-9)[0]
        assert left == pytest.approx(right, rel=1e-6)
    assert rate(1.0, 1.0)[0] == 0.0 and rate(-1.0, 0.0)[0] == 0.0
    assert rate(1.0, 0.0)[0] > 0 and rate(-1.0, 1.0)[0] < 0


def test_iv_is_sinh_with_separate_amplitudes():
    p = YAK.resolve({"a1": 0.2, "a2": 0.1, "b": 3.0})
    v = np.array([0.3, -0.3, 0.0])
    i = YAK.current(v, np.array([[0.5, 0.5, 0.5]]), p)
    assert i == pytest.approx([0.2 * 0.5 * np.sinh(0.9), -0.1 * 0.5 * np.sinh(0.9), 0.0], rel=1e-12)


# ---------------------------------------------------------------------------
# both engines
# ---------------------------------------------------------------------------

@pytest.mark.spice
def test_pinched_loop_shrinks_with_frequency(tmp_path):
    areas = {"spice": [], "behavioural": []}
    for freq in (100.0, 300.0, 900.0):
        c = circuit(tmp_path, f"""
source vin (in, 0) sine(amplitude = 0.45, freq = {freq})
device m1 (in, 0) yakopcic()
analysis tran(stop = {1 / freq}, step = {1 / freq / 300})
record v(in), i(m1), x(m1)
""", f"f{freq:g}")
        for wf in both(c):
            v, i = wf["v(in)"], wf["i(m1)"]
            near_zero = np.abs(v) < 1e-3 * np.abs(v).max()
            assert near_zero.any() and np.all(np.abs(i[near_zero]) <= 1e-3 * np.abs(i).max())
            areas[wf.engine].append(loop_area(v, i))
    for engine, a in areas.items():
        assert a[0] > a[1] > a[2] > 0, (engine, a)
        assert a[2] < 0.5 * a[0], (engine, a)
    assert areas["spice"] == pytest.approx(areas["behavioural"], rel=0.02)


SINE = """
source vin (in, 0) sine(amplitude = 0.45, freq = 100)
resistor rs (in, a) 100
device m1 (a, 0) yakopcic()
analysis tran(stop = 20m, step = 50u)
record i(m1), x(m1)
"""
PULSES = """
source vin (in, 0) pulse(v1 = -0.5, v2 = 0.5, delay = 1m, rise = 0.1m, fall = 0.1m, width = 2m, period = 5m)
resistor rs (in, a) 100
device m1 (a, 0) yakopcic()
analysis tran(stop = 10m, step = 20u)
record i(m1), x(m1)
"""


@pytest.mark.spice
@pytest.mark.parametrize("drive", ["sine", "pulses"])
def test_cosimulation_within_one_percent(tmp_path, drive):
    c = circuit(tmp_path, SINE if drive == "sine" else PULSES)
    spice, beh = both(c)
    cmp = compare_waveforms(c, spice, beh, tolerance=0.01)
    assert cmp.passed, cmp.table()
    assert np.ptp(beh["x(m1)"]) > 0.5             # the state really moved
