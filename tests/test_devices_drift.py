"""Linear ion drift memristor: windows (numpy), the closed form, pinched loops, sticking at the
bounds and co-simulation (ngspice vs behavioural) under sine and pulse drives.

Circuits are written as element testbenches to ``tmp_path`` and loaded like any
description, then run through ``circuitkit.engines.simulate`` in both engines.
"""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.compare import compare_waveforms
from circuitkit.devices import get_model
from devicekit import both, circuit, loop_area, rate as _rate

DRIFT = get_model("linear_drift")


def rate(v, x, **overrides):
    return _rate(DRIFT, v, x, **overrides)
WINDOWS = {"none": 0, "joglekar": 1, "biolek": 2, "prodromakis": 3}


# ---------------------------------------------------------------------------
# numpy twin
# ---------------------------------------------------------------------------

def test_rate_without_window_is_k_times_current():
    p = DRIFT.resolve()
    x = np.array([0.2, 0.5, 0.8])
    v = np.array([0.7, -0.3, 1.1])
    i = DRIFT.current(v, x[None], p)
    assert i == pytest.approx(v / (p.ron * x + p.roff * (1 - x)), rel=1e-12)
    assert rate(v, x) == pytest.approx(p.muv * p.ron / p.d ** 2 * i, rel=1e-12)


@pytest.mark.parametrize("pwin", [1, 2, 5])
def test_windows_match_their_published_formulas(pwin):
    x = np.linspace(0.05, 0.95, 19)
    v = np.full_like(x, 0.5)
    base = rate(v, x)
    jog = rate(v, x, window=1, pwin=pwin) / base
    bio_up = rate(v, x, window=2, pwin=pwin) / base
    bio_down = rate(-v, x, window=2, pwin=pwin) / rate(-v, x)
    pro = rate(v, x, window=3, pwin=pwin, jwin=0.8) / base
    assert jog == pytest.approx(1 - (2 * x - 1) ** (2 * pwin), rel=1e-9, abs=1e-12)
    assert bio_up == pytest.approx(1 - x ** (2 * pwin), rel=1e-9, abs=1e-12)          # stp(-i) = 0
    assert bio_down == pytest.approx(1 - (x - 1) ** (2 * pwin), rel=1e-9, abs=1e-12)  # stp(-i) = 1
    assert pro == pytest.approx(0.8 * (1 - ((x - 0.5) ** 2 + 0.75) ** pwin), rel=1e-9, abs=1e-12)


def test_window_is_selected_by_nearest_integer():
    x, v = 0.7, 0.4
    assert rate(v, x, window=1.2)[0] == rate(v, x, window=1)[0] != rate(v, x, window=2)[0]
    assert rate(v, x, window=2.6)[0] == rate(v, x, window=3)[0]


def test_joglekar_and_prodromakis_vanish_at_both_bounds_biolek_only_ahead():
    for window in (1, 3):
        for x in (0.0, 1.0):
            assert rate([1.0, -1.0], x, window=window).tolist() == [0.0, 0.0]
    assert rate(1.0, 1.0, window=2)[0] == 0.0 and rate(-1.0, 1.0, window=2)[0] < 0   # leaves x = 1
    assert rate(-1.0, 0.0, window=2)[0] == 0.0 and rate(1.0, 0.0, window=2)[0] > 0   # leaves x = 0


def test_state_cannot_cross_a_bound_even_without_window():
    assert rate(1.0, 1.0)[0] == 0.0 and rate(1.0, 1.01)[0] <= 0.0   # beyond x = 1: never further out
    assert rate(-1.0, 0.0)[0] == 0.0 and rate(-1.0, -0.01)[0] == 0.0
    assert rate(-1.0, 1.0)[0] < 0 and rate(1.0, 0.0)[0] > 0


def test_biolek_smooth_step_has_continuous_slope_through_zero_current():
    p = DRIFT.resolve({"window": 2})
    x = 0.97                                    # near a bound, where the two branches differ most
    r = 1 / (p.ron * x + p.roff * (1 - x))
    v = np.linspace(-20, 20, 4001) * p.ismooth / r   # +-20 ismooth of current
    f = rate(v, x, window=2)
    slope = np.diff(f) / np.diff(v)
    # the slope changes (the window differs by direction) but spread over many samples, not in a step
    change = abs(slope[-1] - slope[0])
    assert change > 0.5 * np.max(np.abs(slope))
    assert np.max(np.abs(np.diff(slope))) < 0.02 * change
    # far from zero current the smooth step is Biolek's step exactly
    k = p.muv * p.ron / p.d ** 2
    assert rate(0.5, x, window=2)[0] == pytest.approx(k * 0.5 * r * (1 - x ** 2), rel=1e-12)


# ---------------------------------------------------------------------------
# both engines
# ---------------------------------------------------------------------------

@pytest.mark.spice
def test_no_window_follows_the_closed_form_in_both_engines(tmp_path):
    v0, freq, x0 = 1.5, 1.0, 0.1
    c = circuit(tmp_path, f"""
source vin (in, 0) sine(amplitude = {v0}, freq = {freq})
device m1 (in, 0) linear_drift(window = 0, x0 = {x0})
analysis tran(stop = 1, step = 2.5m)
record v(in), i(m1), x(m1)
""")
    p = DRIFT.resolve()
    m0 = DRIFT.resistance(x0, p)
    k_drift = DRIFT.drift_constant(p)
    w = 2 * np.pi * freq
    for wf in both(c):
        t = wf.time
        phi = v0 / w * (1 - np.cos(w * t))
        exact = v0 * np.sin(w * t) / np.sqrt(m0 ** 2 - 2 * k_drift * phi)
        err = np.sqrt(np.mean((wf["i(m1)"] - exact) ** 2)) / np.sqrt(np.mean(exact ** 2))
        assert err < 5e-3, (wf.engine, err)
        # the memristance really changed: a fixed resistor would be far off the closed form
        fixed = v0 * np.sin(w * t) / m0
        assert np.sqrt(np.mean((fixed - exact) ** 2)) / np.sqrt(np.mean(exact ** 2)) > 0.1
        assert wf["x(m1)"].max() > 0.45


@pytest.mark.spice
@pytest.mark.parametrize("window", list(WINDOWS))
def test_pinched_loop_shrinks_with_frequency(tmp_path, window):
    areas = {"spice": [], "behavioural": []}
    for freq in (1.0, 3.0, 9.0):
        c = circuit(tmp_path, f"""
source vin (in, 0) sine(amplitude = 1.2, freq = {freq})
resistor rs (in, a) 1k
device m1 (a, 0) linear_drift(window = {WINDOWS[window]}, pwin = 2, x0 = 0.3)
analysis tran(stop = {1 / freq}, step = {1 / freq / 300})
record v(a), i(m1)
""", f"f{freq:g}")
        for wf in both(c):
            v, i = wf["v(a)"], wf["i(m1)"]
            near_zero = np.abs(v) < 1e-3 * np.abs(v).max()
            assert near_zero.any() and np.all(np.abs(i[near_zero]) <= np.abs(v[near_zero]) / 100 + 1e-15)
            areas[wf.engine].append(loop_area(v, i))
    for engine, a in areas.items():
        assert a[0] > a[1] > a[2] > 0, (engine, a)
        assert a[2] < 0.5 * a[0], (engine, a)
    assert areas["spice"] == pytest.approx(areas["behavioural"], rel=0.02)


@pytest.mark.spice
@pytest.mark.parametrize("window, sticks", [("joglekar", True), ("prodromakis", True), ("biolek", False)])
@pytest.mark.parametrize("x0, drive", [(1.0, -1.0), (0.0, 1.0)])
def test_bound_sticking(tmp_path, window, sticks, x0, drive):
    """A state at a bound under a drive pushing it back: Joglekar/Prodromakis stay, Biolek leaves."""
    c = circuit(tmp_path, f"""
source vin (in, 0) pulse(v1 = 0, v2 = {drive}, delay = 0.1m, rise = 0.1m, fall = 0.1m, width = 10, period = 20)
device m1 (in, 0) linear_drift(window = {WINDOWS[window]}, x0 = {x0})
analysis tran(stop = 0.2, step = 1m)
record x(m1), i(m1)
""")
    for wf in both(c):
        x = wf["x(m1)"]
        assert np.abs(wf["i(m1)"][-1]) > 1e-5       # the drive is on
        if sticks:
            assert np.max(np.abs(x - x0)) < 1e-6, (wf.engine, x[-1])
        else:
            assert abs(x[-1] - x0) > 0.05, (wf.engine, x[-1])


SINE = """
source vin (in, 0) sine(amplitude = 1.2, freq = 1)
resistor rs (in, a) 1k
device m1 (a, 0) linear_drift(window = {w}, pwin = 2, x0 = 0.3)
analysis tran(stop = 2, step = 5m)
record i(m1), x(m1)
"""
PULSES = """
source vin (in, 0) pulse(v1 = -1.5, v2 = 1.5, delay = 0.1, rise = 10m, fall = 10m, width = 0.4, period = 1)
resistor rs (in, a) 1k
device m1 (a, 0) linear_drift(window = {w}, pwin = 2, x0 = 0.3)
analysis tran(stop = 2, step = 5m)
record i(m1), x(m1)
"""


@pytest.mark.spice
@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("drive", ["sine", "pulses"])
def test_cosimulation_within_one_percent(tmp_path, window, drive):
    c = circuit(tmp_path, (SINE if drive == "sine" else PULSES).format(w=WINDOWS[window]))
    spice, beh = both(c)
    cmp = compare_waveforms(c, spice, beh, tolerance=0.01)
    assert cmp.passed, cmp.table()
    assert np.ptp(beh["x(m1)"]) > 0.1             # the state really moved
