"""The DC operating point: Newton from zero, then source stepping if that fails.

The first Newton iterate from ``y = 0`` is the circuit linearised at zero
bias, so for a linear circuit the answer comes in one solve. If Newton does
not converge (an exponential device thrown far off by the first step), the
independent sources are ramped from 0 to their values (SPICE's source
stepping) with an adaptive ramp step, each solve starting from the previous
one. Device states are held at ``x0`` throughout.
"""
from __future__ import annotations

import numpy as np

from .mna import MnaSystem
from .newton import NewtonFailure, Solver

FIRST_RAMP_STEP = 0.1
SMALLEST_RAMP_STEP = 1e-4


def operating_point(system: MnaSystem, solver: Solver, t: float = 0.0,
                    values: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Solution vector at time ``t`` and how it was found; raises :class:`NewtonFailure`.

    ``values`` (one per voltage source, in the system's source order) replaces the sources' values at
    ``t``: the operating point of one read vector (``batch.CrossbarReader``'s robust fallback)."""
    try:
        return solver.solve(np.zeros(system.size), system.b_op + _sources(system, t, 1.0, values), "op"), \
            {"source_steps": 0}
    except NewtonFailure:
        if not system.nonlinear:
            raise
    return _source_stepping(system, solver, t, values)


def _sources(system: MnaSystem, t: float, scale: float, values: np.ndarray | None) -> np.ndarray:
    if values is None:
        return system.source_vector(t, scale)
    b = np.zeros(system.size)
    b[system.n_v:system.n_v + system.n_sources] = scale * np.asarray(values, dtype=float)
    return b


def _source_stepping(system: MnaSystem, solver: Solver, t: float,
                     values: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    y, scale, step, steps = np.zeros(system.size), 0.0, FIRST_RAMP_STEP, 0
    while scale < 1.0:
        target = min(1.0, scale + step)
        try:
            y = solver.solve(y, system.b_op + _sources(system, t, target, values), "op")
        except NewtonFailure as exc:
            step /= 2
            if step < SMALLEST_RAMP_STEP:
                raise NewtonFailure(f"source stepping stalled at {scale:.4g} of the source values: {exc}") from exc
            continue
        scale, step, steps = target, min(2 * step, 0.5), steps + 1
    return y, {"source_steps": steps}
