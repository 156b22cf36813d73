"""Write-and-verify programs every cell of a crossbar to its target conductance, V/2 disturb included."""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.design import Crossbar, Design, Driver, StateInit
from circuitkit.devices import get_model
from circuitkit.workloads.write_verify import write_verify

VTEAM = dict(ron=10e3, roff=100e3, voff=0.6, von=-0.6, koff=1.6e6)


def _design(n=4):
    return Design(title="wv", crossbar=Crossbar(rows=n, cols=n, model="vteam", params=dict(VTEAM),
                                                state=StateInit(kind="constant", value=0.5)),
                  row_driver=Driver(r_out=5, rise=2e-9, fall=2e-9), col_driver=Driver(r_out=5, rise=2e-9, fall=2e-9))


def _targets(n, seed=3):
    m = get_model("vteam")
    p = m.resolve(VTEAM)
    x = np.random.default_rng(seed).uniform(0.2, 0.8, size=n * n)
    return (m.current(np.full(n * n, 0.1), x[None, :], p) / 0.1).reshape(n, n), x.reshape(n, n)


def test_every_cell_reaches_its_target():
    target, x_target = _targets(4)
    res = write_verify(_design(), target, vset=-0.9, vreset=1.2, width=10e-9, tol=0.03, max_rounds=40)
    assert res.converged.all(), (res.rounds, res.history[-3:])
    assert res.max_rel_error <= 0.03
    np.testing.assert_allclose(res.states, x_target, atol=0.05)
    assert res.rounds >= 2 and res.pulses.sum() > 16
    m = get_model("vteam")
    g_start = m.current(np.array([0.1]), np.array([[0.5]]), m.resolve(VTEAM))[0] / 0.1   # every cell at x = 0.5
    untouched = res.pulses == 0                 # only cells whose target was already met at the start
    assert np.all(np.abs(g_start / target[untouched] - 1) <= 0.03)
    assert res.history[0] > 0.2 and res.history[-1] <= 0.03 + 1e-12


def test_too_few_rounds_are_reported_not_hidden():
    target, _ = _targets(4)
    res = write_verify(_design(), target, vset=-0.9, vreset=1.2, width=2e-9, tol=0.01, max_rounds=2)
    assert res.rounds == 2 and not res.converged.all()


@pytest.mark.spice
def test_runs_on_ngspice_too():
    target, _ = _targets(3, seed=4)
    beh = write_verify(_design(3), target, vset=-0.9, vreset=1.2, width=10e-9, tol=0.03, max_rounds=3)
    spi = write_verify(_design(3), target, vset=-0.9, vreset=1.2, width=10e-9, tol=0.03, max_rounds=3,
                       engine="spice")
    assert np.array_equal(beh.pulses, spi.pulses)
    np.testing.assert_allclose(spi.states, beh.states, atol=0.01)


def test_bad_targets_are_refused():
    with pytest.raises(ValueError, match=r"target must be positive conductances of shape \(4, 4\)"):
        write_verify(_design(), np.full((3, 4), 1e-5), vset=-0.9, vreset=1.2, width=10e-9)
    with pytest.raises(ValueError, match="positive"):
        write_verify(_design(), np.zeros((4, 4)), vset=-0.9, vreset=1.2, width=10e-9)
