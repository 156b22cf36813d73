"""The behavioural transient refuses, with where it stood, instead of hanging or crashing (session-20
hostile-input audit): a source growing without bound (negative sine damping, through the Python API)
made the step bound collapse to 1e-38 s and the next step zero (ZeroDivisionError); a VTEAM device at
1 kV switched so hard that steps of ~1e-10 s went on for millions of steps (the run never finished)."""
from __future__ import annotations

import math

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
