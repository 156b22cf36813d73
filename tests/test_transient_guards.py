"""The behavioural transient refuses, with where it stood, instead of hanging or crashing (session-20
hostile-input audit): a source growing without bound (negative sine damping, through the Python API)
made the step bound collapse to 1e-38 s and the next step zero (ZeroDivisionError); a VTEAM device at
1 kV switched so hard that steps of ~1e-10 s went on for millions of steps (the run never finished)."""
from __future__ import annotations

import math

import numpy as np

import pytest

from circuitkit.behavioural import simulate
from circuitkit.behavioural.transient import _ladder
from circuitkit.circuit.model import Transient
from circuitkit.circuit.waveforms import Sine
from circuitkit.errors import ConvergenceError
from circuitkit.workflow import load

DESC = """title "VTEAM behind a resistor"
source   vin (in, 0) sine(amplitude = 1, freq = 10k)
resistor rs  (in, a) 100
device   m1  (a, 0)  vteam(x0 = 0.5)
analysis tran(stop = 200u, step = 50n)
record v(a), x(m1)
"""


def _circuit(tmp_path):
    path = tmp_path / "vteam.xbar"
    path.write_text(DESC)
    return load(path)[1]


def test_collapsing_step_bound_is_timestep_too_small(tmp_path):
    c = _circuit(tmp_path)
    src = c.group("vin")
    w = src.waveforms[0]
    src.waveforms[0] = Sine(w.offset, w.amplitude, w.freq, w.delay, -1e9, w.phase)   # grows as e^(1e9 t)
    with pytest.raises(ConvergenceError, match="timestep too small"):
        simulate(c)


def test_step_budget_refuses_instead_of_hanging(tmp_path):
    c = _circuit(tmp_path)
    src = c.group("vin")
    w = src.waveforms[0]
    src.waveforms[0] = Sine(w.offset, 1000.0, w.freq, w.delay, w.damping, w.phase)    # 1 kV
    c.options["max_steps"] = 2000
    with pytest.raises(ConvergenceError, match="2000 step attempts .* reached only t = "):
        simulate(c)


def test_default_budget_leaves_ordinary_runs_alone(tmp_path):
    wf = simulate(_circuit(tmp_path))
    assert wf.meta["steps"] > 0 and float(wf.time[-1]) == pytest.approx(200e-6)


def test_ladder_of_no_step():
    assert _ladder(0.0, 1e-6) == 0.0 and _ladder(math.nan, 1e-6) == 0.0 and _ladder(-1.0, 1e-6) == 0.0
    assert _ladder(1e-9, 1e-6) <= 1e-9


SERIES_YAKOPCIC = """title "two Yakopcic cells in series"
source   vin (in, 0) dc(0.6)
resistor rs  (in, a) 100
device   m1  (a, b)  yakopcic(x0 = 0.5)
device   m2  (b, 0)  yakopcic(x0 = 0.3)
analysis op()
record v(a), v(b), i(m1)
"""


def test_operating_point_starts_from_the_initial_states(tmp_path):
    """A Yakopcic cell conducts nothing at x = 0 (i = a1 x sinh(b v)): Newton started with the states at 0
    saw the node between two cells in series floating (a singular matrix, a transient transcribed from
    ngspice that the behavioural engine refused). The answer against a root-finder on the twins' I-V."""
    from scipy.optimize import brentq

    from circuitkit.devices.registry import get_model
    path = tmp_path / "series.xbar"
    path.write_text(SERIES_YAKOPCIC)
    c = load(path)[1]
    wf = simulate(c)
    model = get_model("yakopcic")
    p1, p2 = (c.group(n).resolved() for n in ("m1", "m2"))

    def cell(v, x, p):
        return float(model.current(v, [x], p))

    def vb_of(va):          # KCL at b: m1's current into b equals m2's current to ground
        return brentq(lambda vb: cell(va - vb, 0.5, p1) - cell(vb, 0.3, p2), 0.0, va, xtol=1e-15)

    va = brentq(lambda va: (0.6 - va) / 100 - cell(va - vb_of(va), 0.5, p1), 0.0, 0.6, xtol=1e-15)
    assert float(wf["v(a)"]) == pytest.approx(va, rel=1e-9)
    assert float(wf["v(b)"]) == pytest.approx(vb_of(va), rel=1e-9)


def test_compare_judges_a_signal_held_at_zero_against_its_floor():
    """A state held at 0 (1e-13 of rounding in one engine, -2.6e-19 in the other) scored a relative RMS of
    1 or 1e16 against its own noise; the denominator now has ngspice's vntol / abstol as a floor."""
    from circuitkit.compare import FLOORS, signal_error
    t = np.linspace(0.0, 1.0, 11)
    w = np.gradient(t)
    held = signal_error("x(m1)", np.full(11, -2.6e-19), np.full(11, 5.6e-13), w, FLOORS["v"])
    assert held.rel_rms_error < 1e-6
    moving = signal_error("x(m1)", np.linspace(0, 1, 11), np.linspace(0, 1, 11) * 1.02, w, FLOORS["v"])
    assert moving.rel_rms_error == pytest.approx(0.02, rel=0.05)         # the floor changes nothing here
    assert signal_error("i(m1)", np.zeros(11), np.full(11, 1e-9), w, FLOORS["i"]).rel_rms_error > 100
