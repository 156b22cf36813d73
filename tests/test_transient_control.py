"""Error-controlled transients (``behavioural/transient.py``): the answer does not depend on the print step.

``vteam_sine.xbar`` printed every 1, 2 and 4 us must agree with the same
circuit integrated with a maximum step 100x finer than the coarsest print
step (the converged reference), sampled at the printed times; the truncation
estimate must reject steps (it is active), and the divided-difference
estimate must reproduce the closed-form local error of a known charge.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circuitkit.behavioural import simulate
from circuitkit.behavioural.transient import LteTolerances, _ladder, interpolate, print_times
from circuitkit.circuit.model import Transient
from circuitkit.workflow import load

TB = Path(__file__).resolve().parent.parent / "testbenches"


@pytest.fixture(scope="module")
def sine_reference():
    _, c = load(TB / "vteam_sine.xbar")
    c.analysis = Transient(tstop=c.analysis.tstop, tstep=4e-8, tmax=4e-8)
    return c, simulate(c)


@pytest.mark.parametrize("step", [1e-6, 2e-6, 4e-6])
def test_vteam_sine_does_not_depend_on_the_print_step(sine_reference, step):
    c, ref = sine_reference
    c.analysis = Transient(tstop=c.analysis.tstop, tstep=step)
    wf = simulate(c)
    grid = np.arange(0, c.analysis.tstop * (1 + 1e-9), step)          # every print time is in the output
    k = np.searchsorted(wf.time, grid - 1e-9 * step)
    assert np.allclose(wf.time[k], grid, rtol=0, atol=1e-9 * step)
    assert np.ptp(wf["x(m1)"]) > 0.1                                 # the state switched
    for name in ("v(a)", "i(m1)", "x(m1)"):
        r = np.interp(wf.time, ref.time, ref[name])
        err = np.sqrt(np.mean((np.asarray(wf[name]) - r) ** 2)) / np.sqrt(np.mean(r ** 2))
        assert err < 2e-3, (name, step, err)
    assert wf.meta["steps"] < ref.meta["steps"]                      # it did not just take the fine steps


def test_ngspice_tolerances_are_looser_and_the_default_is_tighter():
    ng, ours = LteTolerances.ngspice(), LteTolerances()
    assert (ng.reltol, ng.abstol, ng.chgtol, ng.trtol) == (1e-3, 1e-12, 1e-14, 7.0)
    assert ours.reltol * ours.trtol < ng.reltol * ng.trtol


def test_step_ladder_and_print_grid():
    assert _ladder(3e-9, 1e-6) <= 3e-9 and _ladder(3e-9, 1e-6) > 3e-9 / 2 ** (1 / 2) * 0.999
    assert _ladder(5e-6, 1e-6) == 1e-6
    t = print_times(1e-6, 0.25e-6, np.array([0.3e-6]), 1e-12)
    assert np.allclose(t, [0, 0.25e-6, 0.3e-6, 0.5e-6, 0.75e-6, 1e-6])


def test_interpolation_is_exact_for_quadratics_and_keeps_monotone_data_monotone():
    times = np.array([0.0, 1.0, 2.5, 3.0, 4.5])
    corner = np.array([True, False, False, False, False])
    f = lambda t: 1 + 2 * t - 0.3 * t ** 2     # noqa: E731
    at = np.array([1.7, 2.9, 4.0])
    assert np.allclose(interpolate(times, f(times)[:, None], corner, at)[:, 0], f(at), rtol=1e-12)
    step = np.array([0.0, 0.0, 0.0, 1.0, 1.0])[:, None]            # a monotone jump
    fine = np.linspace(0, 4.5, 200)
    out = interpolate(times, step, corner, fine)[:, 0]
    assert np.all(np.diff(out) >= 0) and out.min() >= 0 and out.max() <= 1
