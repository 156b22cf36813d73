"""Transient analysis: trapezoidal integration with local-truncation-error step control (as ngspice).

Step control (ngspice's ``DCtran`` / ``CKTterr``, with its default
tolerances ``reltol = 1e-3``, ``abstol = 1e-12``, ``chgtol = 1e-14``,
``trtol = 7``; :class:`LteTolerances`): after every converged step the
local truncation error of every *charge row* (rows of the capacitance
matrix: capacitor nodes and the device states, whose ``ddt(x)`` is a unit
capacitance) is estimated from the divided difference of order
``order + 1`` of its charge ``q = C y`` over the last ``order + 2`` points::

    tol  = max(abstol + reltol * max|i_C|,  reltol * max(|q|, chgtol) / h)
    h'   = (trtol * tol / max(abstol, factor * |DD_{order+1} q|)) ** (1 / order)
    factor = 1/2 (backward Euler), 1/12 (trapezoidal)

Node voltages are checked too: the quadratic predictor (extrapolation of
the last three points) against the converged solution, within ``vreltol
|v| + vabstol`` (ngspice's ``newtrunc`` tolerances; :func:`_voltage_limit`).
The step is accepted when ``min h' > 0.9 h`` over all rows (the next step is
then ``min(h', 2 h, max_step)``), else rejected and retried with ``h'``.
Newton failures cut the step by 8. Steps land exactly on every waveform
breakpoint; the two steps after t = 0 and after each breakpoint use backward
Euler (ngspice drops to order 1 there; the second BE step settles the
capacitor-current history before the trapezoidal rule, whose amplification
on modes much faster than the step is -1) and are short: the first step after
a breakpoint is at most ``FIRST_STEP_FRACTION`` of the gap to the next one.
The very first step (from the operating point) has no history for the
estimate: it is checked when the next step's divided difference spans t = 0,
and if too long the run restarts from t = 0 with the step allowed (at most
``MAX_RESTARTS`` times).
The maximum step is the analysis' ``tmax`` when given, else ``tstop / 50``
(ngspice's rule without the ``tstep`` term): the requested ``tstep`` only sets
the printing grid. Step sizes are rounded down onto a geometric ladder
(``LADDER`` steps per octave) so that equal steps share one cached matrix and
factorisation; that only shortens steps.

Output: every accepted time point (as ngspice's raw file: they include every
breakpoint) plus every print time ``k * tstep`` (and ``tstop``).
Print times between accepted points are interpolated by the quadratic through
the accepted point pair around them and the one before (never across a
breakpoint: there the interpolation is linear; where those three values are
monotone the result is kept between the pair, so monotone signals stay
monotone), the interpolant of the
trapezoidal rule's own order, so the interpolation error is of the order of
the truncation error the control allows.

Integration (as ngspice): the first point is the operating point at t = 0.
With charges ``q = C y`` and ``i_C`` = dq/dt on the charge rows::

    backward Euler   i_C(n) = (q(n) - q(n-1)) / h
    trapezoidal      i_C(n) = 2 (q(n) - q(n-1)) / h - i_C(n-1)

so each step solves ``(G + a C) y + i_nl(y) = b(t) + a C y(n-1) + beta i_C(n-1)``
with ``a`` = 1/h, beta = 0 (BE) or ``a`` = 2/h, beta = 1 (trapezoidal), and
then updates ``i_C``. ``C y`` is computed once per step attempt and carried to
the next step (the charges of the truncation estimate are its rows); systems
of at most ``newton.DENSE_PRODUCT_MAX`` unknowns multiply by a dense ``C``.

Small systems: the truncation estimate over at most ``FLOAT_ROWS`` charge
rows, the predictor check over as many node voltages and the predictor of as
many unknowns are computed on Python floats (the same operations in the same
order; inputs that are not finite go to the array forms, whose NaN semantics
Python's ``max`` does not share).

Newton starts from the polynomial extrapolation of the last points
(``PREDICTOR_POINTS``, quadratic) of the current smooth stretch -- points
since the last breakpoint, so never across a corner of a source. The
predictor only changes where Newton starts, not what it converges to. A step
that fails from the extrapolated start is retried from the last point before
it is cut.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..circuit.model import Transient
from ..errors import ConvergenceError
from .mna import MnaSystem
from .newton import DENSE_PRODUCT_MAX, FixedProduct, NewtonFailure, Solver
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


@dataclass(frozen=True)
class LteTolerances:
    """Truncation-error tolerances of the step control (ngspice's option names and formula).

    ngspice's defaults (:meth:`ngspice`: reltol 1e-3, trtol 7) lean on a
    maximum step tied to the print step (ngspice's default ``tmax`` is
    ``min(tstep, tspan / 50)``, and circuitkit's netlists pass ``tmax = tstep``);
    with the maximum step independent of the print step they allow a state
    error of about ``trtol * reltol * |x|`` per step, which accumulates: measured
    14 % RMS on the state of ``vteam_sine.xbar`` against a 200x finer
    reference. The behavioural engine's defaults are 100x tighter in ``reltol``
    and 7x in ``trtol`` (measured there: 0.02 % RMS on i(m1) and x(m1), 722
    steps, for print steps 1u and 4u alike; 0.4 % on a ``linear_drift`` state
    driven into its bound by 1.5 V pulses, where reltol 1e-4 gave 2.7 %).
    """
    reltol: float = 1e-5
    abstol: float = 1e-12
    chgtol: float = 1e-14
    trtol: float = 1.0
    vreltol: float = 1e-3          # node-voltage predictor check (ngspice's lteReltol / lteAbstol)
    vabstol: float = 1e-6

    @classmethod
    def ngspice(cls) -> "LteTolerances":
        return cls(reltol=1e-3, abstol=1e-12, chgtol=1e-14, trtol=7.0, vabstol=math.inf)


#: truncation and predictor checks over at most this many rows run on Python floats (numpy's fixed cost
#: per call exceeds the arithmetic there)
FLOAT_ROWS = 16
#: ngspice's trapCoeff: LTE factor of backward Euler (order 1) and the trapezoidal rule (order 2)
TRUNC_FACTOR = (0.5, 1.0 / 12.0)
#: step sizes are rounded down to 2 ** (k / LADDER) seconds
LADDER = 2
#: the smallest step, relative to max_step, before the transient gives up ("timestep too small")
MIN_STEP = 1e-13
#: step-attempt budget of a transient: this many times the nominal count, at least MIN_STEP_BUDGET
STEP_BUDGET_FACTOR = 1000
MIN_STEP_BUDGET = 50_000
#: steps accepted when the truncation estimate allows at least this fraction of the step taken (ngspice: 0.9)
ACCEPT = 0.9
#: restarts from t = 0 when the first step, checked once the history allows, was too long (each restart
#: takes the step the check allowed, so one or two suffice)
MAX_RESTARTS = 8


def _ladder(h: float, hmax: float) -> float:
    """``h`` rounded down to ``2 ** (k / LADDER)`` seconds (an absolute ladder: runs with other max steps
    take the same steps where the max step does not bind), at most ``hmax``."""
    if h >= hmax:
        return hmax
    if not h > 0.0:                 # 0, negative or NaN: no step (callers refuse steps below their minimum)
        return 0.0
    k = math.floor(LADDER * math.log2(h) + 1e-9)
    return min(2.0 ** (k / LADDER), hmax)


class _Truncation:
    """Divided-difference truncation estimate over the charge rows (``CKTterr``)."""

    def __init__(self, system: MnaSystem, tol: LteTolerances):
        c = system.c_matrix.tocsr()
        rows = np.flatnonzero(np.diff(c.indptr) > 0)
        self.rows = rows
        self.c = c[rows]
        self.tol = tol
        self.q: list[np.ndarray] = []      # newest first
        self.h: list[float] = []           # h[0]: step that produced q[0]

    def charges(self, y: np.ndarray) -> np.ndarray:
        return self.c @ y

    def charges_of(self, cy: np.ndarray) -> np.ndarray:
        """The charge rows of a full product ``cy = C y`` (the same numbers as :meth:`charges`)."""
        return cy[self.rows]

    def restart(self, q: np.ndarray) -> None:
        """Back to the first point's charges ``q`` alone (the run starts again from it)."""
        self.q, self.h = [q], []

    def push(self, q: np.ndarray, h: float | None) -> None:
        self.q.insert(0, q)
        if h is not None:
            self.h.insert(0, h)
        del self.q[4:], self.h[3:]

    def step_limit(self, order: int, q_new: np.ndarray, h: float, i_new: np.ndarray, i_old: np.ndarray) -> float:
        """The largest next step the estimate allows (inf without charges or without enough history)."""
        if self.rows.size == 0 or len(self.q) < order + 1:
            return math.inf
        if self.rows.size <= FLOAT_ROWS:
            limit = self._step_limit_floats(order, q_new, h, i_new, i_old)
            if limit is not None:
                return limit
        tol = self.tol
        qs = [q_new] + self.q[:order + 1]
        hs = [h] + self.h[:order]
        volt = tol.abstol + tol.reltol * np.maximum(np.abs(i_new), np.abs(i_old))
        charge = tol.reltol * np.maximum(np.maximum(np.abs(qs[0]), np.abs(qs[1])), tol.chgtol) / h
        ttol = np.maximum(volt, charge)
        top = _divided_difference(qs, hs, order)
        factor = TRUNC_FACTOR[order - 1]
        with np.errstate(all="ignore"):
            d = tol.trtol * ttol / np.maximum(tol.abstol, factor * np.abs(top))
        dmin = float(d.min())
        return math.sqrt(dmin) if order == 2 else dmin

    def _step_limit_floats(self, order: int, q_new: np.ndarray, h: float, i_new: np.ndarray,
                           i_old: np.ndarray) -> float | None:
        """:meth:`step_limit` on Python floats, row by row (the same operations in the same order), for
        a few charge rows, where numpy's per-call cost exceeds the arithmetic. None (the caller then
        takes the array path) when any input is not finite: Python's ``max``/``min`` do not propagate
        NaN as numpy's ``maximum``/``minimum`` do."""
        tol = self.tol
        qs = [q_new.tolist()] + [q.tolist() for q in self.q[:order + 1]]
        hs = [h] + self.h[:order]
        inew, iold = i_new.tolist(), i_old.tolist()
        if not math.isfinite(sum(inew) + sum(iold) + sum(sum(q) for q in qs)):
            return None
        factor = TRUNC_FACTOR[order - 1]
        reltol, abstol, trtol = tol.reltol, tol.abstol, tol.trtol
        dmin = math.inf
        for r in range(len(inew)):
            volt = abstol + reltol * max(abs(inew[r]), abs(iold[r]))
            charge = reltol * max(max(abs(qs[0][r]), abs(qs[1][r])), tol.chgtol) / h
            ttol = max(volt, charge)
            try:
                top = _divided_difference([q[r] for q in qs], hs, order)
            except ZeroDivisionError:
                return None                     # numpy's inf/NaN of a division by zero: the array path
            denominator = max(abstol, factor * abs(top))
            if not denominator > 0.0 or not math.isfinite(denominator):
                return None                     # 0/0 or inf/inf: numpy's NaN semantics, on the array path
            d = trtol * ttol / denominator
            if d < dmin:
                dmin = d
        return math.sqrt(dmin) if order == 2 else dmin


def _divided_difference(values: list, hs: list, order: int):
    """The divided difference of order ``order + 1`` of ``values`` (newest first; arrays or floats) at
    points ``hs`` apart (``hs[i]`` between ``values[i]`` and ``values[i + 1]``): ngspice's ``CKTterr``
    recursion. On floats a zero spacing raises ``ZeroDivisionError``."""
    diff = list(values)
    dt = list(hs)
    j = order
    while True:
        for i in range(j + 1):
            diff[i] = (diff[i] - diff[i + 1]) / dt[i]
        j -= 1
        if j < 0:
            return diff[0]
        for i in range(j + 1):
            dt[i] = dt[i + 1] + hs[i]


def run_transient(system: MnaSystem, solver: Solver, analysis: Transient,
                  record: Callable[[np.ndarray], np.ndarray],
                  lte: LteTolerances = LteTolerances(),
                  max_steps: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Integrate from 0 to ``tstop`` with step control; return print times, ``record(y)`` there, statistics.

    At most ``max_steps`` step attempts (accepted, rejected and cut), by default ``STEP_BUDGET_FACTOR``
    times the nominal count (``tstop / max step`` plus two per breakpoint), at least ``MIN_STEP_BUDGET``;
    beyond it a ConvergenceError says where the run stood (the shipped testbenches take at most ~21x
    the nominal count)."""
    tstop = float(analysis.tstop)
    hmax = float(analysis.tmax) if analysis.tmax is not None else tstop / 50.0
    hmax = min(hmax, tstop)
    # corners closer than min_break are merged (rounding in corners shared by several sources), but
    # never a source's own feature: a pulse narrower than MIN_BREAK of the print step was stepped over
    # (its corners dropped, the source evaluated only on either side of it) and silently lost
    min_break = min(MIN_BREAK * min(hmax, float(analysis.tstep)),
                    0.5 * system.sources.shortest_feature(tstop))
    bp = np.asarray(system.sources.breakpoints(tstop), dtype=float)
    bp = np.unique(bp[(bp > min_break) & (bp < tstop - min_break)])
    if bp.size:
        bp = bp[np.concatenate(([True], np.diff(bp) > min_break))]
    stops = np.append(bp, tstop)
    try:
        y, op_stats = operating_point(system, solver, 0.0)
    except NewtonFailure as exc:
        raise ConvergenceError(f"operating point: {exc}", 0.0) from None
    nv = system.n_v
    stepper = _Stepper(system, solver)
    trunc = _Truncation(system, lte)
    i_c = np.zeros(system.size)
    t = 0.0
    times, outs, corner = [0.0], [record(y)], [True]
    cy = stepper.c @ y                             # C y at the current point (charges; reused by the next step)
    trunc.push(trunc.charges_of(cy), None)
    history: list[tuple[float, np.ndarray]] = []
    be_left = BE_STEPS_AFTER_BREAK
    nxt = 0                                        # index of the next stop
    start = (y, cy)                                # the operating point, for a restart (below)
    unchecked = None                               # an accepted step that had no truncation estimate
    restarts = 0
    has_devices = bool(system.nonlinear)
    vext = np.zeros(nv + 1)
    vext[1:] = y[:nv]
    bound0 = system.nonlinear.bound_step(vext) if has_devices else math.inf
    h = _ladder(min(min(tstop / 100.0, hmax) / 10.0, bound0), hmax)
    h = min(h, FIRST_STEP_FRACTION * stops[0])
    hmin = MIN_STEP * hmax
    budget = max_steps if max_steps is not None else max(MIN_STEP_BUDGET, int(
        STEP_BUDGET_FACTOR * (tstop / hmax + 2 * bp.size)))
    rejected = newton_cuts = accepted = 0
    while nxt < stops.size:
        if accepted + rejected + newton_cuts >= budget:
            raise ConvergenceError(
                f"transient: {budget} step attempts ({accepted} accepted) reached only t = {t:.6g} s of "
                f"{tstop:g} s (last step {h:.3g} s; the maximum step is {hmax:.3g} s): the circuit is too stiff "
                f"for the step control here (a device switching at extreme drive?); circuit.options['max_steps'] "
                f"raises the budget", t)
        target = stops[nxt]
        h = min(h, hmax)
        planned = h
        remaining = target - t
        if h >= remaining:                          # land on the stop (ngspice: CKTbreak)
            h1 = remaining
        elif 2 * h > remaining:                     # don't leave a sliver before the stop
            h1 = 0.5 * remaining
        else:
            h1 = h
        t1 = target if h1 == remaining else t + h1
        backward_euler = be_left > 0
        points = history + [(t, y)]
        guess = extrapolate(points, t1) if len(points) > 1 else None
        try:
            y1, i1, cy1 = stepper.try_step(y, i_c, t, t1, backward_euler, guess, cy)
        except NewtonFailure as exc:
            newton_cuts += 1
            be_left = max(be_left, 1)               # ngspice: back to order 1 after a failed step
            h = _ladder(h1 / 8.0, hmax)
            if h < hmin:
                raise ConvergenceError(f"transient: timestep too small at {t:.6g} s ({exc})", t) from None
            continue
        order = 1 if backward_euler else 2
        q1 = trunc.charges_of(cy1)
        estimated = len(trunc.q) >= order + 1       # else no history yet: the first step from t = 0
        limit = trunc.step_limit(order, q1, h1, i1[trunc.rows], i_c[trunc.rows])
        if len(points) == PREDICTOR_POINTS:          # node voltages: quadratic predictor vs the solution
            limit = min(limit, _voltage_limit(y1[:nv], guess[:nv], y[:nv], h1, lte))
        if unchecked is not None and estimated:
            # the first step (backward Euler from the operating point) had no history to estimate its
            # error; the divided difference over t = 0 and the two points after it now does. A drive
            # active at t = 0 (dc, a pwl starting away from 0) with a first step as long as $bound_step
            # allows was 18 % off in that step's change of state (audit: VTEAM at dc -0.5 V, 2.9e-2 RMS
            # on x(m1) for the rest of the run). Too long: start again from t = 0 with the step allowed.
            first, unchecked = unchecked, None
            if limit < ACCEPT * first and first > hmin and restarts < MAX_RESTARTS:
                restarts += 1
                rejected += 1
                t, (y, cy), i_c = 0.0, start, np.zeros(system.size)
                trunc.restart(trunc.charges_of(cy))
                history.clear()
                times, outs, corner = times[:1], outs[:1], corner[:1]
                accepted, nxt, be_left = 0, 0, BE_STEPS_AFTER_BREAK
                h = min(_ladder(max(limit, hmin), hmax), FIRST_STEP_FRACTION * stops[0])
                continue
        if limit < ACCEPT * h1 and h1 > hmin:
            rejected += 1
            h = _ladder(max(limit, hmin), hmax)
            continue
        accepted += 1
        if not estimated:
            unchecked = h1
        history.append((t, y))
        del history[:-(PREDICTOR_POINTS - 1)]
        t, y, i_c, cy = t1, y1, i1, cy1
        trunc.push(q1, h1)
        at_stop = t1 == target
        times.append(t), outs.append(record(y)), corner.append(at_stop)
        # the models' $bound_step at the accepted point caps the next step (ngspice: a device's
        # bound_step is the ceiling of the step that follows its evaluation)
        vext[1:] = y[:nv]
        bound = system.nonlinear.bound_step(vext) if has_devices else math.inf
        h = _ladder(min(limit, 2.0 * h1, hmax, bound), hmax)
        if not h >= hmin:                           # the estimate or a model's $bound_step asks for less
            raise ConvergenceError(f"transient: timestep too small at {t:.6g} s (the truncation estimate or a "
                                   f"device's step bound asks for {min(limit, bound):.3g} s, below "
                                   f"{hmin:.3g} s)", t)
        be_left -= 1
        if at_stop:
            nxt += 1
            history.clear()                         # no extrapolation across a corner of a source
            be_left = BE_STEPS_AFTER_BREAK
            if nxt < stops.size:                    # ngspice: 0.1 * min(step before the break, gap to the next)
                h = _ladder(min(FIRST_STEP_FRACTION * min(planned, stops[nxt] - t), bound), hmax)
    times_a = np.asarray(times)
    values = np.vstack(outs)
    grid = print_times(tstop, float(analysis.tstep), bp, min_break)
    # output: the print grid plus the engine's own points (like ngspice's raw file), print times
    # interpolated, own points exact; print times within 1e-9 of a step of an own point are that point
    near = _distance_to_sorted(grid, times_a) <= 1e-9 * float(analysis.tstep)
    grid = grid[~near]
    out_t = np.concatenate((times_a, grid))
    order = np.argsort(out_t, kind="stable")
    out_t = out_t[order]
    dest = np.empty(order.size, dtype=np.int64)             # row of each (own, then grid) point in the output
    dest[order] = np.arange(order.size)
    out = np.empty((out_t.size, values.shape[1]))
    out[dest[:times_a.size]] = values
    out[dest[times_a.size:]] = interpolate(times_a, values, np.asarray(corner), grid)
    stats = {"steps": accepted, "rejected_steps": rejected, "newton_cuts": newton_cuts,
             "breakpoints": int(bp.size), "split_steps": stepper.splits, "op_source_steps": op_stats["source_steps"],
             "max_step": hmax, "printed": int(out_t.size)}
    return out_t, out, stats


def _voltage_limit(y1: np.ndarray, predicted: np.ndarray, y0: np.ndarray, h: float, lte: LteTolerances) -> float:
    """Largest step for which the quadratic predictor's error stays within ``vreltol |v| + vabstol``.

    The error of the quadratic extrapolation over one step is about ``h^3 |d3v/dt3|``
    (ngspice's ``newtrunc`` idea with its ``lteReltol``/``lteAbstol``); it
    bounds the error of the quadratic interpolation onto the print grid
    (about a tenth of it), which the charge-based estimate does not see in
    circuits without charges (a transistor turning on under a ramped gate).
    """
    ratio = _voltage_ratio_floats(y1, predicted, y0, lte) if y1.size <= FLOAT_ROWS else None
    if ratio is None:
        tol = lte.vreltol * np.maximum(np.abs(y1), np.abs(y0)) + lte.vabstol
        ratio = float(np.max(np.abs(y1 - predicted) / tol, initial=0.0))
    if ratio == 0.0:
        return math.inf
    if not math.isfinite(ratio):
        return 0.0
    return h * ratio ** (-1.0 / 3.0)


def _voltage_ratio_floats(y1: np.ndarray, predicted: np.ndarray, y0: np.ndarray, lte: LteTolerances) -> float | None:
    """The ratio of :func:`_voltage_limit` on Python floats (same operations) for a few node voltages;
    None when an input is not finite or a tolerance is zero (numpy's inf/NaN semantics: the array path)."""
    a_, p_, b_ = y1.tolist(), predicted.tolist(), y0.tolist()
    if not math.isfinite(sum(a_) + sum(p_) + sum(b_)):
        return None
    vreltol, vabstol = lte.vreltol, lte.vabstol
    ratio = 0.0
    try:
        for a, p, b in zip(a_, p_, b_):
            r = abs(a - p) / (vreltol * max(abs(a), abs(b)) + vabstol)
            if r > ratio:
                ratio = r
    except ZeroDivisionError:
        return None
    return ratio


def print_times(tstop: float, tstep: float, breakpoints: np.ndarray, min_break: float) -> np.ndarray:
    """``k * tstep`` up to ``tstop`` (included), merged with the breakpoints (close grid points dropped)."""
    n = int(np.floor(tstop / tstep * (1 + 1e-12)))
    grid = np.append(np.arange(n + 1) * tstep, tstop)
    grid = grid[np.concatenate((np.diff(grid) > min_break, [True]))]
    if breakpoints.size:
        grid = grid[_distance_to_sorted(grid, breakpoints) > min_break]
    return np.sort(np.concatenate((grid, breakpoints)))


def interpolate(times: np.ndarray, values: np.ndarray, corner: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Values at ``at`` from accepted points: exact on them, quadratic inside smooth stretches, linear
    in the interval right after a corner (breakpoint or t = 0).

    ``values`` (N, C) at ``times`` (N,); returns (len(at), C). Where the three values around a point
    are monotone the quadratic is clamped between its pair (``_bounds``, computed once per interval,
    not per output row); the work per output row is three row gathers, the weighted sum and the clamp.
    """
    at = np.asarray(at, dtype=float)
    k = np.clip(np.searchsorted(times, at, side="left"), 1, times.size - 1)   # times[k-1] < at <= times[k]
    exact = times[k] == at
    t0, t1 = times[k - 1], times[k]
    quad = ~corner[k - 1] & (k >= 2)
    km = np.maximum(k - 2, 0)
    tm = times[km]
    out = np.empty((at.size, values.shape[1]))
    with np.errstate(all="ignore"):
        lin_rows = np.flatnonzero(~quad)
        if lin_rows.size:
            kl = k[lin_rows]
            v0, v1 = values[kl - 1], values[kl]
            out[lin_rows] = v0 + (v1 - v0) * ((at[lin_rows] - t0[lin_rows]) / (t1[lin_rows] - t0[lin_rows]))[:, None]
        q_rows = np.flatnonzero(quad)
        if q_rows.size:
            a_, t0q, t1q, tmq = at[q_rows], t0[q_rows], t1[q_rows], tm[q_rows]
            w_m = ((a_ - t0q) * (a_ - t1q) / ((tmq - t0q) * (tmq - t1q)))[:, None]
            w_0 = ((a_ - tmq) * (a_ - t1q) / ((t0q - tmq) * (t0q - t1q)))[:, None]
            w_1 = ((a_ - tmq) * (a_ - t0q) / ((t1q - tmq) * (t1q - t0q)))[:, None]
            kq = k[q_rows]
            # one chunk of columns at a time keeps the temporaries small (large crossbars record ~1e4 signals)
            step = max(1, CHUNK_ELEMENTS // max(q_rows.size, 1))
            for c0 in range(0, values.shape[1], step):
                cols = slice(c0, c0 + step)
                lo, hi = _bounds(values[:, cols])
                q = w_m * values[kq - 2, cols]
                q += w_0 * values[kq - 1, cols]
                q += w_1 * values[kq, cols]
                np.maximum(q, lo[kq], out=q)
                np.minimum(q, hi[kq], out=q)
                out[q_rows, cols] = q
    out[exact] = values[k[exact]]
    out[at <= times[0]] = values[0]
    return out


#: elements per column chunk of :func:`interpolate`
CHUNK_ELEMENTS = 1 << 18


def _bounds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per interval ending at point ``j`` (rows j >= 2): ``(lo, hi)`` clamping the quadratic through
    points j-2, j-1, j: ``min/max(v[j-1], v[j])`` where the three values are monotone, else -inf/inf.

    Differences below 1e-8 of the values count as flat (Newton leaves ~1e-9 relative noise on a settled
    state), so monotone signals stay monotone. Rows 0, 1 are unused (no quadratic there)."""
    n = values.shape[0]
    lo = np.full(values.shape, -np.inf)
    hi = np.full(values.shape, np.inf)
    if n < 3:
        return lo, hi
    vm, v0, v1 = values[:-2], values[1:-1], values[2:]
    eps = 1e-8 * (np.abs(v0) + np.abs(v1)) + 1e-300
    d1, d2 = v0 - vm, v1 - v0
    d1 = np.where(np.abs(d1) <= eps, 0.0, d1)
    d2 = np.where(np.abs(d2) <= eps, 0.0, d2)
    mono = d1 * d2 >= 0
    lo[2:] = np.where(mono, np.minimum(v0, v1), -np.inf)
    hi[2:] = np.where(mono, np.maximum(v0, v1), np.inf)
    return lo, hi


def extrapolate(points: list[tuple[float, np.ndarray]], t: float) -> np.ndarray:
    """The polynomial through ``points`` ((time, y) pairs, up to three) evaluated at ``t``.

    Written as the last point plus weighted differences (Lagrange weights,
    which sum to one), so a component that did not change is predicted
    exactly, without rounding (a state resting on a bound stays on it).
    """
    last = points[-1][1]
    if last.size <= FLOAT_ROWS:                # a few unknowns: on floats, the same operations per element
        return _extrapolate_floats(points, t)
    out = last.copy()
    for j, (tj, yj) in enumerate(points[:-1]):
        w = 1.0
        for m, (tm, _) in enumerate(points):
            if m != j:
                w *= (t - tm) / (tj - tm)
        out += w * (yj - last)
    return out


def _extrapolate_floats(points: list[tuple[float, np.ndarray]], t: float) -> np.ndarray:
    """:func:`extrapolate` on Python floats: ``last + w_0 (y_0 - last) + w_1 (y_1 - last) ...`` summed
    in that order per element, as the array form does."""
    last = points[-1][1].tolist()
    out = list(last)
    for j, (tj, yj) in enumerate(points[:-1]):
        w = 1.0
        for m, (tm, _) in enumerate(points):
            if m != j:
                w *= (t - tm) / (tj - tm)
        out = [o + w * (a - b) for o, a, b in zip(out, yj.tolist(), last)]
    return np.array(out)


class _Stepper:
    """One integration step from ``t0`` to ``t1``, split in halves when Newton fails.

    ``c`` is the capacitance matrix for products (dense for systems of at most
    ``DENSE_PRODUCT_MAX`` unknowns, else ``newton.FixedProduct``: scipy's per-call cost exceeds the
    arithmetic on small matrices).
    """

    def __init__(self, system: MnaSystem, solver: Solver):
        self.system = system
        self.solver = solver
        self.splits = 0
        self.c = system.c_matrix.toarray() if system.size <= DENSE_PRODUCT_MAX else FixedProduct(system.c_matrix)
        self._sources = system.n_sources > 0
        self._src = slice(system.n_v, system.n_v + system.n_sources)      # the source rows (``source_vector``)

    def try_step(self, y, i_c, t0, t1, backward_euler, guess=None, cy=None):
        """One step from the extrapolated start, else from ``y``; raises :class:`NewtonFailure`.

        Returns ``(y1, i_C(t1), C y1)``; ``cy`` is ``C y`` when the caller has it."""
        if guess is not None:
            try:
                return self._step(y, i_c, t0, t1, backward_euler, guess, cy)
            except NewtonFailure:
                pass
        return self._step(y, i_c, t0, t1, backward_euler, None, cy)

    def advance(self, y, i_c, t0, t1, backward_euler, depth=0, guess=None):
        if guess is not None:
            try:
                return self._step(y, i_c, t0, t1, backward_euler, guess)[:2]
            except NewtonFailure:
                pass                        # the extrapolated start was bad: start from y
        try:
            return self._step(y, i_c, t0, t1, backward_euler)[:2]
        except NewtonFailure as exc:
            if depth >= MAX_SPLITS:
                raise ConvergenceError(f"transient step from {t0:.6g} s: {exc}", t1) from None
        self.splits += 1
        mid = 0.5 * (t0 + t1)
        y, i_c = self.advance(y, i_c, t0, mid, backward_euler, depth + 1)
        return self.advance(y, i_c, mid, t1, False, depth + 1)

    def _step(self, y, i_c, t0, t1, backward_euler, guess=None, cy=None):
        # round h so equal steps share one cached matrix despite floating-point noise in t1 - t0
        h = float(f"{t1 - t0:.12e}")
        a, beta = (1.0 / h, 0.0) if backward_euler else (2.0 / h, 1.0)
        q_prev = self.c @ y if cy is None else cy
        # b(t1) + a C y(n-1): the source values added onto their (charge-free) rows of a C y(n-1)
        rhs = a * q_prev
        if self._sources:
            rhs[self._src] += self.system.sources.values(t1)
        if beta:
            rhs += i_c
        y_new = self.solver.solve(y if guess is None else guess, rhs, "tran", a)
        cy_new = self.c @ y_new
        i_new = a * (cy_new - q_prev)
        if beta:
            i_new -= i_c
        return y_new, i_new, cy_new
