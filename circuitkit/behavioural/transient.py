"""Transient analysis: a fixed time grid, trapezoidal integration with charge companions.

Time grid: ``k * max_step`` for k = 0, 1, ... up to ``tstop`` (always
included), merged with every waveform breakpoint in (0, tstop); a grid point
closer than ``MIN_BREAK * max_step`` to a breakpoint (ngspice's
``CKTminBreak``) is dropped in favour of the breakpoint. Like ngspice, the
first steps after t = 0 and after every breakpoint are cut to
``FIRST_STEP_FRACTION`` of the interval to the next point (two such steps,
``BE_STEPS_AFTER_BREAK``), so the backward-Euler steps there (first-order
accurate) are short. Signals are
reported at every grid point.

Integration (as ngspice): the first point is the operating point at t = 0;
each step uses the trapezoidal rule, except the ``BE_STEPS_AFTER_BREAK`` (2)
short steps that start at t = 0 or at a breakpoint, which use backward Euler
(ngspice resets the order to 1 there). Two, not one: the first, short step
leaves the capacitor-current history at the average current of the edge,
C dV / h; trapezoidal steps carry such a history on undamped (its
amplification is -1 on modes much faster than the step, e.g. 0.1 fF wire
capacitances behind ohms), so a settled read would keep an alternating error
(measured 8e-6 of the column current at 64x64 with one BE step); the second
BE step starts the trapezoidal rule from a settled history. With charges ``q = C y`` and ``i_C`` = dq/dt on the
charge rows::

    backward Euler   i_C(n) = (q(n) - q(n-1)) / h
    trapezoidal      i_C(n) = 2 (q(n) - q(n-1)) / h - i_C(n-1)

so each step solves ``(G + a C) y + i_nl(y) = b(t) + a C y(n-1) + beta i_C(n-1)``
with ``a`` = 1/h, beta = 0 (BE) or ``a`` = 2/h, beta = 1 (trapezoidal), and
then updates ``i_C``; rows without charge are solved exactly at every step.

Newton starts from the polynomial extrapolation of the last points
(``PREDICTOR_POINTS``, quadratic; SPICE's ``CKTpred`` is the linear one)
of the current smooth stretch -- points since the last breakpoint, so never
across a corner of a source; the step leaving a breakpoint starts from the
last point. On a smooth stretch the first Newton update is then third order
in the step, and a chord iteration (``newton.py``) usually converges in one
solve. The predictor only changes where Newton starts, not what it converges to. A step that fails from the
extrapolated start is retried from the last point before it is split.
A step whose Newton iteration fails is split in two halves (recursively, at
most ``MAX_SPLITS`` levels) before :class:`ConvergenceError` is raised.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..circuit.model import Transient
from ..errors import ConvergenceError
from .mna import MnaSystem
from .newton import NewtonFailure, Solver
from .operating_point import operating_point

MIN_BREAK = 5e-5
BE_STEPS_AFTER_BREAK = 2
FIRST_STEP_FRACTION = 0.1
MAX_SPLITS = 10
#: points of the predictor polynomial (3: quadratic extrapolation)
PREDICTOR_POINTS = 3


def time_grid(tstop: float, max_step: float, breakpoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grid times and, per time, whether it is a breakpoint (or t = 0)."""
    min_break = MIN_BREAK * max_step
    n = int(np.floor(tstop / max_step * (1 + 1e-12)))
    uniform = np.append(np.arange(n + 1) * max_step, tstop)
    bp = np.asarray(breakpoints, dtype=float)
    bp = np.unique(bp[(bp > min_break) & (bp < tstop - min_break)])
    if bp.size:
        bp = bp[np.concatenate(([True], np.diff(bp) > min_break))]
        uniform = uniform[_distance_to_sorted(uniform, bp) > min_break]
    uniform = uniform[np.concatenate((np.diff(uniform) > min_break, [True]))]  # tstop beats a close k*max_step
    times = np.concatenate((uniform, bp))
    order = np.argsort(times, kind="stable")
    is_break = np.concatenate((np.zeros(uniform.size, bool), np.ones(bp.size, bool)))[order]
    times = times[order]
    is_break[0] = True
    starts = np.flatnonzero(is_break)
    span = times[starts + 1] - times[starts]
    # BE_STEPS_AFTER_BREAK short steps of FIRST_STEP_FRACTION of the interval each
    short = [times[starts] + (m + 1) * FIRST_STEP_FRACTION * span for m in range(BE_STEPS_AFTER_BREAK)]
    times = np.insert(times, np.repeat(starts + 1, BE_STEPS_AFTER_BREAK), np.stack(short, axis=1).ravel())
    is_break = np.insert(is_break, np.repeat(starts + 1, BE_STEPS_AFTER_BREAK), False)
    return times, is_break


def _distance_to_sorted(points: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    k = np.searchsorted(sorted_values, points)
    left = sorted_values[np.maximum(k - 1, 0)]
    right = sorted_values[np.minimum(k, sorted_values.size - 1)]
    return np.minimum(np.abs(points - left), np.abs(points - right))


def run_transient(system: MnaSystem, solver: Solver, analysis: Transient,
                  record: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict]:
    """Integrate from 0 to ``tstop``; return grid times, ``record(y)`` per time, statistics."""
    times, is_break = time_grid(analysis.tstop, analysis.max_step, system.sources.breakpoints(analysis.tstop))
    try:
        y, op_stats = operating_point(system, solver, 0.0)
    except NewtonFailure as exc:
        raise ConvergenceError(f"operating point: {exc}", 0.0) from None
    first = record(y)
    out = np.empty((times.size, first.size))
    out[0] = first
    stepper = _Stepper(system, solver)
    i_c = np.zeros(system.size)
    history: list[tuple[float, np.ndarray]] = []     # the last points of the current smooth stretch
    be_left = 0                                     # backward-Euler steps still to take
    for k in range(1, times.size):
        if is_break[k - 1]:
            history.clear()                 # no extrapolation across a corner of a source
            be_left = BE_STEPS_AFTER_BREAK
        history.append((times[k - 1], y))
        del history[:-PREDICTOR_POINTS]
        guess = extrapolate(history, times[k]) if len(history) > 1 else None
        y, i_c = stepper.advance(y, i_c, times[k - 1], times[k], backward_euler=be_left > 0, guess=guess)
        be_left -= 1
        out[k] = record(y)
    stats = {"steps": times.size - 1, "breakpoints": int(is_break.sum()) - 1, "split_steps": stepper.splits,
             "op_source_steps": op_stats["source_steps"]}
    return times, out, stats


def extrapolate(points: list[tuple[float, np.ndarray]], t: float) -> np.ndarray:
    """The polynomial through ``points`` ((time, y) pairs, up to three) evaluated at ``t``.

    Written as the last point plus weighted differences (Lagrange weights,
    which sum to one), so a component that did not change is predicted
    exactly, without rounding (a state resting on a bound stays on it).
    """
    last = points[-1][1]
    out = last.copy()
    for j, (tj, yj) in enumerate(points[:-1]):
        w = 1.0
        for m, (tm, _) in enumerate(points):
            if m != j:
                w *= (t - tm) / (tj - tm)
        out += w * (yj - last)
    return out


class _Stepper:
    """One integration step from ``t0`` to ``t1``, split in halves when Newton fails."""

    def __init__(self, system: MnaSystem, solver: Solver):
        self.system = system
        self.solver = solver
        self.splits = 0

    def advance(self, y, i_c, t0, t1, backward_euler, depth=0, guess=None):
        if guess is not None:
            try:
                return self._step(y, i_c, t0, t1, backward_euler, guess)
            except NewtonFailure:
                pass                        # the extrapolated start was bad: start from y
        try:
            return self._step(y, i_c, t0, t1, backward_euler)
        except NewtonFailure as exc:
            if depth >= MAX_SPLITS:
                raise ConvergenceError(f"transient step from {t0:.6g} s: {exc}", t1) from None
        self.splits += 1
        mid = 0.5 * (t0 + t1)
        y, i_c = self.advance(y, i_c, t0, mid, backward_euler, depth + 1)
        return self.advance(y, i_c, mid, t1, False, depth + 1)

    def _step(self, y, i_c, t0, t1, backward_euler, guess=None):
        # round h so equal steps share one cached matrix despite floating-point noise in t1 - t0
        h = float(f"{t1 - t0:.12e}")
        a, beta = (1.0 / h, 0.0) if backward_euler else (2.0 / h, 1.0)
        c = self.system.c_matrix
        q_prev = c @ y
        rhs = self.system.source_vector(t1) + a * q_prev + beta * i_c
        y_new = self.solver.solve(y if guess is None else guess, rhs, "tran", a)
        return y_new, a * (c @ y_new - q_prev) - beta * i_c
