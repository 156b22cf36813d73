"""The DC operating point: Newton from zero, then source stepping, then limited Newton.

The first Newton iterate from ``y = 0`` is the circuit linearised at zero
bias, so for a linear circuit the answer comes in one solve. If Newton does
not converge (an exponential device thrown far off by the first step), the
independent sources are ramped from 0 to their values (SPICE's source
stepping) with an adaptive ramp step, each solve starting from the previous
one. If that stalls too, Newton starts again from zero with every node-voltage
update clipped to ``LIMIT`` (SPICE limits junction voltages so), for up to
``LIMITED_ITERATIONS`` iterations (``stats["limited_newton"]``). Device states
are held at ``x0`` throughout.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .mna import MnaSystem
from .newton import NewtonFailure, Solver

FIRST_RAMP_STEP = 0.1
SMALLEST_RAMP_STEP = 1e-4
#: the last resort after source stepping: node-voltage updates clipped to LIMIT volts, at most
#: LIMITED_ITERATIONS Newton iterations
LIMIT = 0.1
LIMITED_ITERATIONS = 500


def operating_point(system: MnaSystem, solver: Solver, t: float = 0.0,
                    values: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Solution vector at time ``t`` and how it was found; raises :class:`NewtonFailure`.

    ``values`` (one per voltage source, in the system's source order) replaces the sources' values at
    ``t``: the operating point of one read vector (``batch.CrossbarReader``'s robust fallback)."""
    try:
        return solver.solve(_start(system), system.b_op + system.source_vector(t, 1.0, values), "op"), \
            {"source_steps": 0}
    except NewtonFailure:
        if not system.nonlinear:
            raise
    try:
        return _source_stepping(system, solver, t, values)
    except NewtonFailure as exc:
        stepping = exc
    return _limited_newton(system, solver, t, values, stepping)


def _limited_newton(system: MnaSystem, solver: Solver, t: float, values, stepping: NewtonFailure):
    """The last resort: Newton from zero with every node-voltage update clipped to ``LIMIT`` (SPICE's
    junction limiting, for all nodes), up to ``LIMITED_ITERATIONS``; only an unclipped update converges."""
    tol, limit = solver.tol, solver.limit
    solver.tol, solver.limit = replace(tol, max_iterations=LIMITED_ITERATIONS), LIMIT
    try:
        y = solver.solve(_start(system), system.b_op + system.source_vector(t, 1.0, values), "op")
    except NewtonFailure as exc:
        raise NewtonFailure(f"{stepping}; Newton with updates limited to {LIMIT:g} V: {exc}") from exc
    finally:
        solver.tol, solver.limit = tol, limit
    return y, {"source_steps": 0, "limited_newton": True}


def _start(system: MnaSystem) -> np.ndarray:
    """Newton's start: every node and branch at zero, the device states at their initial values (the op
    holds them there): the first Jacobian then has the devices' conductance at their own state -- at
    x = 0 a Yakopcic cell (``a1 x sinh(b v)``) conducts nothing, and two in series left the node between
    them floating (a singular matrix)."""
    return system.b_op.copy()


def _source_stepping(system: MnaSystem, solver: Solver, t: float,
                     values: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    y, scale, step, steps = _start(system), 0.0, FIRST_RAMP_STEP, 0
    while scale < 1.0:
        target = min(1.0, scale + step)
        try:
            y = solver.solve(y, system.b_op + system.source_vector(t, target, values), "op")
        except NewtonFailure as exc:
            step /= 2
            if step < SMALLEST_RAMP_STEP:
                raise NewtonFailure(f"source stepping stalled at {scale:.4g} of the source values: {exc}") from exc
            continue
        scale, step, steps = target, min(2 * step, 0.5), steps + 1
    return y, {"source_steps": steps}
