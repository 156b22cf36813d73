"""Stress testbenches (``testbenches/stress_*.xbar``) against their converged references.

Each bench prints on a coarse grid (fast edges, states driven into their
bounds, every model with a state). The reference is the same circuit with a
maximum step (and print step) 100x finer, in the behavioural engine: the
contract is 1 % time-weighted relative RMS on every recorded signal, sampled
at the coarse run's own points, for the behavioural engine and for ngspice
(which gets ``tmax = tstep`` from the netlist; see ``SPICE_XFAIL``) and VACASK
(likewise). States stay in [0, 1].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circuitkit.behavioural import simulate
from circuitkit.circuit.model import Transient
from circuitkit.compare import time_weights
from circuitkit.workflow import load

TB = Path(__file__).resolve().parent.parent / "testbenches"
BENCHES = sorted(p.name for p in TB.glob("stress_*.xbar"))
CONTRACT = 0.01
#: benches where ngspice (tmax = tstep from the netlist, its default truncation tolerances) would miss the
#: contract, with the reason (strict xfail). Empty: stress_stanford_sine was here (2.3 % off) until
#: stanford_pku's $bound_step limited a step's move near the field threshold (docs/models.md)
SPICE_XFAIL: dict[str, str] = {}


def _reference(circuit):
    a = circuit.analysis
    circuit.analysis = Transient(tstop=a.tstop, tstep=a.tstep / 100, tmax=a.tstep / 100)
    try:
        return simulate(circuit)
    finally:
        circuit.analysis = a


def _errors(wf, ref) -> dict[str, float]:
    t = np.asarray(wf.time)
    w = time_weights(t)
    out = {}
    for name in wf.signals:
        r = np.interp(t, ref.time, np.asarray(ref[name]))
        d = np.asarray(wf[name]) - r
        scale = np.sum(w * r * r)
        out[name] = float(np.sqrt(np.sum(w * d * d) / scale)) if scale > 0 else float(np.abs(d).max())
    return out


@pytest.fixture(scope="module")
def references():
    cache = {}

    def get(name):
        if name not in cache:
            _, c = load(TB / name)
            cache[name] = (c, _reference(c))
        return cache[name]
    return get


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHES)
def test_behavioural_within_contract_of_converged_reference(name, references):
    c, ref = references(name)
    wf = simulate(c)
    assert wf.meta["steps"] < ref.meta["steps"]
    errors = _errors(wf, ref)
    assert max(errors.values()) <= CONTRACT, errors
    for s in wf.signals:
        if s.startswith(("x(", "w(")):
            assert -1e-9 <= np.min(wf[s]) and np.max(wf[s]) <= 1 + 1e-9, (s, np.min(wf[s]), np.max(wf[s]))


@pytest.mark.slow
@pytest.mark.spice
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason=SPICE_XFAIL[n], strict=True))
                                  if n in SPICE_XFAIL else n for n in BENCHES])
def test_ngspice_within_contract_of_converged_reference(name, references):
    from circuitkit.engines import simulate as run
    c, ref = references(name)
    errors = _errors(run(c, "spice"), ref)
    assert max(errors.values()) <= CONTRACT, errors


@pytest.mark.slow
@pytest.mark.spice
@pytest.mark.parametrize("name", BENCHES)
def test_vacask_within_contract_of_converged_reference(name, references):
    """VACASK (``tmax = tstep``, ngspice's step-rejection rule: ``render.VACASK_DECK_OPTIONS``). With
    VACASK's own default (accept a step up to 2.5x the one its error estimate asks for) it was 1.9 % off
    on ``stress_multisynapse_sine`` (on ``l``); measured now at most 5.5e-3 over the eight benches."""
    from circuitkit.engines import simulate as run
    c, ref = references(name)
    errors = _errors(run(c, "vacask"), ref)
    assert max(errors.values()) <= CONTRACT, errors
