"""Batched DC reads of a crossbar with any cells: the one entry point for reads.

:func:`read_crossbar` (and :class:`CrossbarReader`, which keeps the set-up
for repeated calls) returns the sensed column currents of many read vectors
as the *DC solution of the nonlinear circuit* -- the same answer as the
engine's operating point (``simulate`` of an ``op()``) for each vector, to
the engine's Newton tolerance -- and says how it got there.

Two paths, chosen from the model, never assumed:

* **linear shortcut** (the transfer matrix of :class:`~.reads.LinearReads`,
  one matrix product per batch). Taken only when every device group's current
  is its small-signal line within ``linear_rtol`` for every cell state over
  the voltages the read can put across a cell. For a network of resistors,
  cells and transistors driven by grounded sources, a node voltage lies
  between the smallest and the largest source value (including 0, ground),
  so no cell sees more than ``vmax = max(values, 0) - min(values, 0)`` over
  the batch; each group's current is sampled on ``+-vmax * (0.05 .. 1)``
  against ``g_d v + i_off`` (``g_d`` the small-signal conductance at the
  bias point) and the largest relative deviation ``|I(v) - line| / max|I|``
  is reported per group (``ReadResult.linearity``). Circuits with controlled
  sources (op-amp TIAs: the bound above does not hold) or transistors always
  take the nonlinear path.
  The verdict is cached per device group for the largest ``vmax`` at which
  the group was found linear: a later batch whose bound does not exceed it
  reuses the verdict (the reason says so), a larger bound is sampled again;
  nonlinear verdicts are not cached.
* **nonlinear path** (Newton, batched over vectors). The reduced nodal
  system of :class:`LinearReads` (grounded sources eliminated) is solved for
  ``F(y) = K y - b + N(y) = 0`` with ``N`` the devices' deviation from their
  linearisation. Two solvers (``ReadResult.solver``):

  - ``"lines"`` -- plain 1R arrays (the line solver applies to ``K``):
    **every vector's own Jacobian** (full Newton), in batches of 8 vectors
    solved together by :class:`~.batchlines.LineBatch` (per-vector
    tridiagonal factors of every line, Schur-complement conjugate gradients
    preconditioned by the exact line solves; numba kernels). Inexact Newton:
    each step's inner solve stops at a relative residual ``eta`` (forcing
    term, Eisenstat-Walker, bounded by ``ETA_MIN``/``ETA_MAX`` and never
    tighter than the step needs: a step expected -- from the residual's
    decrease -- to be the last is solved to ``ETA_MAX``); the residual ``F``
    is exact and the stop is the engine's criterion on the update, so the
    inner accuracy changes how fast, not where, Newton converges (measured:
    the direct per-vector Newton's currents to ~1e-13). The cells are
    evaluated on the (cells, vectors) array at once (parameters broadcast,
    checked against the per-element evaluation on first use), their
    conductance by a forward difference on the first iteration; later, the
    secant from the last Jacobian's point measures each cell's conductance
    change: up to ``JACOBIAN_REUSE`` (relative) with the step expected to be
    the last, the previous Jacobian and its factors are kept (the step is
    then Newton's to that relative accuracy), up to ``SECANT_UPDATE`` the
    conductances are updated along the secant, else evaluated again. Batches
    after the first run on ``THREADS`` threads. If conjugate gradients fail,
    the batch falls back to:
  - ``"chord"`` -- any circuit. Starting from the linear solution, all
    vectors iterate together with one *shared* Jacobian (the devices'
    small-signal conductance averaged over the batch, factored once -- by the
    line-structured solver on plain 1R arrays, else sparse LU whose
    fill-reducing order is computed once and reused for every later
    factorisation): a chord iteration whose residual is exact, so it changes
    how fast, not where, Newton converges. Vectors that contract slowly get a
    refreshed shared Jacobian (over the vectors still iterating), and after
    ``MAX_SHARED`` of those their own Jacobian (full Newton per vector, same
    ordering).

Convergence is the engine's criterion (``newton.py``): ``|dy| <= reltol *
max(|y|, |y_old|) + atol`` (``vntol`` on voltages, ``abstol`` on branch
currents), for chord steps with the linear-convergence error estimate
``rho / (1 - rho) |dy|``. A vector that does not converge raises
:class:`ConvergenceError`; nothing is returned unconverged.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..circuit.model import VCCS, VCVS, Circuit, Mosfets
from ..devices.base import ParamSet
from ..devices.mosfet import level1, level1_currents
from ..errors import ConvergenceError
from .linesolve import LineSystem, NotLineStructured
from .mna import SparsePattern
from .newton import Tolerances

#: default: cells count as linear when their current deviates from the small-signal line by at most this
LINEAR_RTOL = 1e-9
#: sample points (fractions of vmax, both signs) of the linearity test
LINEAR_SAMPLES = (0.05, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 1.0)
#: chord iterations with one shared Jacobian before it is refreshed for vectors still iterating
CHORD_ITERATIONS = 6
#: refreshed shared Jacobians before the remaining vectors get their own (full Newton)
MAX_SHARED = 3
MAX_NEWTON = 50
#: per-vector Newton: the largest node-voltage change of one iteration (a larger update is scaled down, its
#: direction kept: steep selectors and diodes overshoot otherwise), and the iterations such steps may add
NEWTON_VLIMIT = 0.1
MAX_LIMITED = 500
#: device evaluations per chunk (vectors x devices) -- bounds the memory of a batch
CHUNK_ELEMENTS = 2_000_000
#: relative accuracy of the linear solution that starts the per-vector Newton (any start converges)
START_RTOL = 1e-3
#: bounds of the forcing term (inner relative accuracy) of the inexact Newton steps
ETA_MIN, ETA_MAX = 1e-10, 1e-2
#: trust in the expected size of a Newton step (the previous step times the residual's decrease) when
#: choosing its forcing term: the step is assumed up to this factor larger
STEP_MARGIN = 10.0
#: batched Newton: the previous Jacobian is kept while no cell's conductance has changed by more than this
#: (relative, estimated by the secant): a step with it is Newton's to this relative accuracy
JACOBIAN_REUSE = 1e-3
#: ... and, up to this relative change, the cells' conductances are updated along the secant instead of
#: evaluated by a forward difference (an estimate second order in the voltage change; checked again by the
#: next iteration's secant)
SECANT_UPDATE = 0.05
#: threads solving batches of the line solver in parallel (the batches are independent; its kernels and
#: numpy's array operations release the GIL); 1: serial
THREADS = min(2, os.cpu_count() or 1)


@dataclass
class ReadResult:
    """Column currents of a batch of reads and how they were computed."""
    currents: np.ndarray              # (k, cols), sign of the icol_j signals
    method: str                       # "transfer" (linear shortcut) or "newton"
    linear: bool                      # the cells are linear within linear_rtol at these voltages
    vmax: float                       # bound on |v| across any cell over the batch (inf: no bound)
    linearity: dict = field(default_factory=dict)   # device group -> max relative deviation from its line
    reason: str = ""                  # why this path
    iterations: int = 0               # batched iterations (chord + per-vector Newton, max over vectors)
    factorizations: int = 0           # "lines": batched factorisations (every line of 8 vectors' Jacobians)
    converged: bool = True
    solver: str = ""                  # nonlinear path: "lines" (per-vector Jacobians, batched line solver) or "chord"
    inner_iterations: int = 0         # nonlinear path, "lines": conjugate-gradient iterations summed over Newton steps
    voltages: np.ndarray | None = None  # (n_nodes, k) node voltages by node id (0: ground), when asked for

    def summary(self) -> str:
        lin = ", ".join(f"{k}: {v:.2e}" for k, v in self.linearity.items())
        how = f" [{self.solver}]" if self.solver else ""
        return (f"{self.currents.shape[0]} reads by {self.method}{how} ({self.reason}); |v| <= {self.vmax:.3g} V; "
                f"deviation from small-signal line {lin or 'n/a'}; {self.iterations} iterations, "
                f"{self.factorizations} factorisations")


class CrossbarReader:
    """Set-up of batched reads of one circuit (states fixed), reusable for any number of batches.

    ``solver``: the inner linear solve of :class:`~.reads.LinearReads` (``auto``:
    line solver on plain 1R arrays). ``linear_rtol``: threshold of the linear shortcut;
    0 forces the nonlinear path. ``t``: time at which the sources that are not read inputs (word-select
    gates) are evaluated (:class:`~.reads.LinearReads`; default the first read phase's sample time of a
    transient description, 0 for an operating point).
    """

    def __init__(self, circuit: Circuit, *, tolerances: Tolerances = Tolerances(),
                 linear_rtol: float = LINEAR_RTOL, solver: str = "auto", reads=None, t: float | None = None):
        from .reads import LinearReads
        self.lr = reads if reads is not None else LinearReads(circuit, method=solver, t=t)
        self.circuit = circuit
        self.tol = tolerances
        self.linear_rtol = linear_rtol
        self._structure()

    # -- structure -------------------------------------------------------------------
    def _structure(self) -> None:
        lr = self.lr
        self.nf = lr.free.size
        self.controlled = bool(self.circuit.groups_of(VCVS) or self.circuit.groups_of(VCCS))
        self.has_mosfets = bool(lr._mosfets)
        self._dev = [dict(g=g, params=params, x=x, gd=gd, off=off) for g, params, x, gd, off in lr._devices]
        self._mos = [dict(g=g, nodes=nodes, jac=jac, off=off) for g, nodes, jac, off in lr._mosfets]
        self._pattern_parts = None              # incidences, built for the first residual (_newton_structure)
        self.pattern = None                     # built on the first Newton solve (the linear path needs none)
        self.atol = np.where(lr.free < lr.n_v, self.tol.vntol, self.tol.abstol)[:, None]
        # eliminated outputs: their current gains the devices' deviation at their node
        elim = lr.src_fixed[lr.out_source]
        self._out_elim = np.flatnonzero(elim)
        self._out_node = lr.src_node[lr.out_source[elim]] - 1
        self._out_sign = -lr.src_sign[lr.out_source[elim]]
        self._order = None
        self.factorizations = 0
        self._full_maps = None
        self._lines_order = None
        self._lin_cache: dict = {}              # device group -> (largest vmax found linear at, its deviation)
        self._fixed_values = None               # values of the sources that are not inputs (vmax_of_vectors)
        self._batch = None                      # per-vector line solver (batchlines.LineBatch), built on first use
        self.solver_reason = None               # why it is not used (None: it is, or not yet asked)
        self.fallback_vectors = 0               # vectors solved by the engine's operating point (_solve_chunk_robust)
        self._engine = None                     # (MnaSystem, Solver) of that fallback, built on first use
        self.last_solver = ""
        self.inner_iterations = 0
        self._out_cells = None                  # per device group: cells at eliminated output nodes (_out_deviation)

    def _newton_structure(self) -> None:
        """Incidence of device currents on all unknowns (+ leaves p, - enters n; size+1 rows, ground dummy)
        and the Jacobian pattern's parts: only the nonlinear path (and ``LinearReads.check``) needs them."""
        lr = self.lr
        nf = self.nf
        pos = lambda nodes: lr.where[lr.unknown(nodes)]                            # noqa: E731
        rows, cols = [lr._k_triplets[0]], [lr._k_triplets[1]]
        for d in self._dev:
            g = d["g"]
            up, un = lr.unknown(g.p).astype(np.int64), lr.unknown(g.n_).astype(np.int64)
            m = g.n
            d["inc"] = sp.csr_matrix((np.concatenate([np.ones(m), -np.ones(m)]),
                                      (np.concatenate([up, un]), np.concatenate([np.arange(m)] * 2))),
                                     shape=(lr.size + 1, m))
            fp, fn = pos(g.p).astype(np.int64), pos(g.n_).astype(np.int64)
            fp, fn = np.where(fp < 0, nf, fp), np.where(fn < 0, nf, fn)
            d["r"] = np.stack([fp, fp, fn, fn])
            d["c"] = np.stack([fp, fn, fp, fn])
            rows.append(d["r"].ravel()), cols.append(d["c"].ravel())
        for d in self._mos:
            g, jac = d["g"], d["jac"]
            term = lr.unknown(d["nodes"]).astype(np.int64)
            res_rows = term[[0, 2, 3]]
            m = g.n
            d["inc"] = [sp.csr_matrix((np.ones(m), (res_rows[k], np.arange(m))), shape=(lr.size + 1, m))
                        for k in range(3)]
            f = lr.where[term].astype(np.int64)
            f = np.where(f < 0, nf, f)
            d["r"] = np.broadcast_to(f[[0, 2, 3]][:, None, :], jac.shape)
            d["c"] = np.broadcast_to(f[None, :, :], jac.shape)
            rows.append(d["r"].ravel()), cols.append(d["c"].ravel())
        self._pattern_parts = (rows, cols)

    # -- linearity ---------------------------------------------------------------------
    def vmax(self, values: np.ndarray) -> float:
        """Bound on |v| across any cell for source values (n_sources, k)."""
        if self.controlled:
            return float("inf")
        return float(np.max(values, initial=0.0) - np.min(values, initial=0.0))

    def vmax_of_vectors(self, v: np.ndarray) -> float:
        """:meth:`vmax` for read vectors (k, n_in) without forming the source values (n_sources, k): the
        vectors' entries (all of them: a superset of those that drive a source) and the other sources'
        fixed values."""
        if self.controlled:
            return float("inf")
        lr = self.lr
        if self._fixed_values is None:
            rest = np.ones(lr.source_values.size, bool)
            rest[lr.in_source] = False
            self._fixed_values = lr.source_values[rest]
        hi = max(float(np.max(v, initial=0.0)), float(np.max(self._fixed_values, initial=0.0)))
        lo = min(float(np.min(v, initial=0.0)), float(np.min(self._fixed_values, initial=0.0)))
        return hi - lo

    def checked_linearity(self, vmax: float) -> tuple[dict, float]:
        """:meth:`linearity` with a cache: ``(deviations, bound)`` -- ``bound`` the voltage up to which they were
        sampled.

        Per device group the reader keeps the largest ``vmax`` at which the group was found linear (deviation
        within ``linear_rtol``) and that deviation; a batch whose bound does not exceed it reuses that verdict
        (linear up to a larger voltage covers a smaller one), a larger bound (or a group not yet found linear)
        is sampled again and, if still linear, raises the cached bound. Nonlinear verdicts are not cached (they
        do not carry over to smaller voltages). ``bound`` is the largest voltage of the reused or new checks.
        """
        if not np.isfinite(vmax):
            return self.linearity(vmax), vmax
        out, bound = {}, vmax
        todo = [d for d in self._dev if not (d["g"].name in self._lin_cache
                                             and vmax <= self._lin_cache[d["g"].name][0])]
        fresh = self._linearity_of(todo, vmax) if todo else {}
        for d in self._dev:
            name = d["g"].name
            if name in fresh:
                out[name] = fresh[name]
                if fresh[name] <= self.linear_rtol:
                    self._lin_cache[name] = (vmax, fresh[name])
            else:
                upto, dev = self._lin_cache[name]
                out[name] = dev
                bound = max(bound, upto)
        return out, bound

    def linearity(self, vmax: float) -> dict:
        """Per device group: largest relative deviation of the current from its small-signal line on |v| <= vmax."""
        return self._linearity_of(self._dev, vmax)

    def _linearity_of(self, groups: list, vmax: float) -> dict:
        out = {}
        for d in groups:
            g, x, params, gd, off = d["g"], d["x"], d["params"], d["gd"], d["off"]
            if not np.isfinite(vmax):
                out[g.name] = float("inf")
                continue
            worst, scale = np.zeros(g.n), np.zeros(g.n)
            with np.errstate(all="ignore"):
                for s in LINEAR_SAMPLES:
                    for sign in (-1.0, 1.0):
                        v = np.full(g.n, sign * s * vmax)
                        i = np.asarray(g.model.current(v, x, params), dtype=float)
                        worst = np.maximum(worst, np.abs(i - (gd * v + off)))
                        scale = np.maximum(scale, np.abs(i))
                rel = np.where(worst == 0, 0.0, worst / np.maximum(scale, 1e-300))
            out[g.name] = float(np.nan_to_num(rel, nan=np.inf).max(initial=0.0))
        return out

    # -- the batch -----------------------------------------------------------------------
    def read(self, vectors, *, force: str | None = None, voltages: bool = False) -> ReadResult:
        """Column currents of read vectors (k, rows); ``force``: "newton" or "transfer" (the latter only
        if the cells are linear, else ValueError). ``voltages``: also return every node's voltage
        (``ReadResult.voltages``, node-major; the nodal solve, so the transfer shortcut is not taken;
        state terminals read 0)."""
        lr = self.lr
        v = lr._vectors(vectors)
        vmax = self.vmax_of_vectors(v)
        lin, bound = self.checked_linearity(vmax)
        linear = (not self.controlled and not self.has_mosfets
                  and all(e <= self.linear_rtol for e in lin.values()))
        if self.has_mosfets:
            reason = "transistors are nonlinear"
        elif self.controlled:
            reason = "controlled sources: cell voltages are not bounded by the source values"
        elif linear:
            reason = f"cells linear within {self.linear_rtol:g} for |v| <= {vmax:.3g} V"
            if bound > vmax:
                reason += f" (verdict of the check up to {bound:.3g} V, reused)"
        else:
            reason = f"cells deviate from their small-signal line by up to {max(lin.values()):.2e} (> {self.linear_rtol:g})"
        if force == "transfer" and (not linear or voltages):
            raise ValueError(f"crossbar reads: the linear shortcut does not apply: "
                             f"{'node voltages asked for' if voltages else reason}")
        if linear and force != "newton" and not voltages:
            T, i0 = lr.transfer
            currents = v @ T.T
            currents += i0
            return ReadResult(currents, "transfer", True, vmax, lin, reason)
        currents, its, nodes = self._newton(lr._source_values(v), voltages)
        return ReadResult(currents, "newton", linear, vmax, lin, reason, its, self.factorizations,
                          solver=self.last_solver, inner_iterations=self.inner_iterations, voltages=nodes)

    # -- nonlinear solution --------------------------------------------------------------
    def _full(self, y: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Node voltages (n_v + 1, k), indexed by node id (0: ground), from free unknowns (nf, k)."""
        lr = self.lr
        if self._full_maps is None:
            nodes = np.flatnonzero(lr.free < lr.n_v)                 # free unknowns that are node voltages
            self._full_maps = (nodes, lr.free[nodes] + 1, lr.fixed_nodes + 1)
        nodes, rows, fixed_rows = self._full_maps
        vext = np.zeros((lr.n_v + 1, y.shape[1]))
        vext[rows] = y[nodes]
        vext[fixed_rows] = lr.src_sign[lr.src_fixed, None] * values[lr.src_fixed]
        return vext

    def _deviation(self, vext: np.ndarray, derivatives: bool):
        """Devices' deviation from the linearisation on all unknowns (size+1, k), and per-element
        Jacobian corrections (list per group, (m, k) or (3, 4, m, k)) if ``derivatives``."""
        if self._pattern_parts is None:
            self._newton_structure()
        lr = self.lr
        k = vext.shape[1]
        corr = np.zeros((lr.size + 1, k))
        dj = []
        for d in self._dev:
            g = d["g"]
            vd = vext[g.p] - vext[g.n_]
            i, gi = self._evaluate(d, vd, derivatives)
            err = i - (d["gd"][:, None] * vd + d["off"][:, None])
            corr += d["inc"] @ err
            if derivatives:
                dj.append(gi - d["gd"][:, None])
        for d in self._mos:
            nodes = d["nodes"]
            vv = vext[nodes]                                            # (4, m, k)
            if derivatives:
                cur, jac = level1(d["g"].model, *vv)
            else:
                cur = level1_currents(d["g"].model, *vv)
            lin = np.einsum("rcm,cmk->rmk", d["jac"], vv) + d["off"][:, :, None]
            for r in range(3):
                corr += d["inc"][r] @ (cur[r] - lin[r])
            if derivatives:
                dj.append(jac - d["jac"][..., None])
        return corr, dj

    def _evaluate(self, d: dict, vd: np.ndarray, derivatives: bool):
        """Current (m, k) of a device group at voltages (m, k), and its conductance if ``derivatives``.

        The model is evaluated on the (m, k) array directly, its per-device parameters and states
        shaped (m, 1) to broadcast over the vectors (no copies per vector); that this gives what the
        per-element evaluation gives is checked on the first call (first vector), else the
        per-element evaluation (:func:`_evaluate`) is used. The conductance is the model's analytic
        one when it has it (per-element path), else a forward difference ``(I(v + h) - I(v)) / h``,
        ``h = 1e-6 max(|v|, 1e-3)``: a Jacobian only sets how fast Newton converges, not where.
        """
        g = d["g"]
        if d.get("broadcast") is None:
            d["broadcast"] = False
            m = g.n
            pb = ParamSet({name: (val[:, None] if np.ndim(val) == 1 and np.shape(val)[0] == m else val)
                           for name, val in d["params"].items()})
            xb = d["x"][:, :, None]
            try:
                with np.errstate(all="ignore"):
                    got = np.asarray(g.model.current(vd[:, :1], xb, pb), dtype=float)
                ref, _ = _evaluate(g.model, vd[:, :1], d["x"], d["params"], False)
                if got.shape == ref.shape and np.array_equal(got, ref, equal_nan=True):
                    d["broadcast"], d["pb"], d["xb"] = True, pb, xb
            except Exception:                                          # noqa: BLE001 -- any failure: per element
                pass
            from ..devices.base import DeviceModel
            d["analytic"] = getattr(g.model.linearize, "__func__", None) is not DeviceModel.linearize.__func__
        if not d["broadcast"] or (derivatives and d["analytic"]):
            return _evaluate(g.model, vd, d["x"], d["params"], derivatives)
        with np.errstate(all="ignore"):
            i = np.asarray(g.model.current(vd, d["xb"], d["pb"]), dtype=float)
            if not derivatives:
                return i, None
            h = 1e-6 * np.maximum(np.abs(vd), 1e-3)
            gi = (np.asarray(g.model.current(vd + h, d["xb"], d["pb"]), dtype=float) - i) / h
        return i, gi

    def _jacobian_cells(self, d: dict, vd: np.ndarray, i: np.ndarray, last, expected) -> np.ndarray | None:
        """The cells' conductance change from ``gd`` (m, LANES) for this iteration's Jacobian, or None to
        keep the previous one (``last`` = its voltages, currents, conductance change; ``expected``: this
        step's expected size in tolerances, None on the first iteration).

        The secant from ``last`` measures how well the Jacobian in use predicts the currents ``i``: the
        largest relative conductance change of a cell (``_secant_change``; infinite if a conductance is not
        positive). Up to ``JACOBIAN_REUSE``, and if the step is then within 0.1 tolerance of Newton's (a
        Jacobian off by a relative ``c`` on the cells -- ``J' - J`` between ``-c J`` and ``c J`` -- gives a
        step off by ~``c`` of its size), the Jacobian is kept. Up to ``SECANT_UPDATE``, the conductances
        are updated along the secant (second order in the voltage change, positive: no model evaluation).
        Else, and on the first iteration, the forward difference (:meth:`_cells_conductance`)."""
        from .batchlines import _secant_change, _secant_update
        if last is not None and expected is not None:
            gd = np.ascontiguousarray(d["gd"], dtype=float)
            change = _secant_change(i, last[1], vd, last[0], gd, last[2])
            if change <= JACOBIAN_REUSE and change * float(np.max(expected, initial=0.0)) <= 0.1:
                return None
            if change <= SECANT_UPDATE:
                dg = np.empty_like(vd)
                _secant_update(i, last[1], vd, last[0], gd, last[2], dg)
                return dg
        return self._cells_conductance(d, vd, i)

    def _cells_current(self, d: dict, vd: np.ndarray):
        """Current (m, LANES) of the line solver's one device group and, when :meth:`_evaluate` gives it
        with the current (per-element or analytic path), its conductance's change from ``gd``; else None
        (:meth:`_cells_conductance` then takes the forward difference)."""
        i, gi = self._evaluate(d, vd, not d.get("broadcast") or d["analytic"])
        return np.ascontiguousarray(i), (None if gi is None else gi - d["gd"][:, None])

    def _cells_conductance(self, d: dict, vd: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The conductance's change from ``gd`` (m, LANES) by :meth:`_evaluate`'s forward difference, its
        steps and quotient in numba kernels (the same arithmetic, fewer passes over the arrays)."""
        from .batchlines import _fd_change, _fd_points
        h, vh = np.empty_like(vd), np.empty_like(vd)
        _fd_points(vd, h, vh)
        with np.errstate(all="ignore"):
            ih = np.asarray(d["g"].model.current(vh, d["xb"], d["pb"]), dtype=float)
        dg = np.empty_like(vd)
        _fd_change(i, np.ascontiguousarray(ih), h, np.ascontiguousarray(d["gd"], dtype=float), dg)
        return dg

    def _residual(self, y, values, rhs, derivatives=False):
        vext = self._full(y, values)
        corr, dj = self._deviation(vext, derivatives)
        lr = self.lr
        F = lr.K @ y - rhs + corr[lr.free]
        return F, corr, dj

    def _build_pattern(self) -> None:
        if self._pattern_parts is None:
            self._newton_structure()
        rows, cols = self._pattern_parts
        self.pattern = SparsePattern(self.nf, np.concatenate(rows), np.concatenate(cols))
        kr, kc, kv = self.lr._k_triplets
        self.base = self.pattern.accumulate(self.pattern.positions(kr, kc), kv)
        for d in self._dev + self._mos:
            d["pos"] = self.pattern.positions(d["r"], d["c"])

    def _jacobian_data(self, dj: list, column: int | None) -> np.ndarray:
        """Jacobian data on the pattern: ``column`` None -> averaged over the batch, else that vector's."""
        if self.pattern is None:
            self._build_pattern()
        data = self.base.copy()
        sign = np.array([1.0, -1.0, -1.0, 1.0])[:, None]
        nd = len(self._dev)
        for n, (d, j) in enumerate(zip(self._dev + self._mos, dj)):
            jj = j.mean(axis=-1) if column is None else j[..., column]
            data += self.pattern.accumulate(d["pos"], sign * jj[None, :] if n < nd else jj)
        return data

    def _factor(self, data: np.ndarray):
        """A solve function for the matrix with pattern data ``data`` (line solver on 1R arrays, else LU)."""
        self.factorizations += 1
        lr = self.lr
        if not np.all(np.isfinite(data)):
            # an iterate thrown far off (a chord step on steep cells): the devices overflowed there
            raise ConvergenceError("crossbar reads: Jacobian not finite")
        M = self.pattern.matrix(data)
        if lr.lines is not None and not self._mos:
            seed = np.full(self.nf, -1, np.int64)
            g = self._dev[0]["g"]
            for nodes, family in ((g.p, 0), (g.n_, 1)):
                p = lr.where[lr.unknown(nodes)]
                seed[p[p >= 0]] = family
            try:
                lines = LineSystem.build(M.tocsr(), seed, symmetric=True)
                return lines.solve
            except NotLineStructured:
                pass
        try:
            if self._order is None:
                lu = spla.splu(M, permc_spec="MMD_AT_PLUS_A")
                q = np.argsort(lu.perm_c)
                self._order = (q, np.argsort(q))
                return lu.solve
            q, inv = self._order
            lu = spla.splu(M[q][:, q].tocsc(), permc_spec="NATURAL", diag_pivot_thresh=0.1,
                           options=dict(SymmetricMode=True))
        except RuntimeError as exc:                                  # SuperLU: singular Jacobian
            raise ConvergenceError(f"crossbar reads: Jacobian not factorable ({exc})") from None
        return lambda b: lu.solve(b[q])[inv]

    def _linear_solve(self, rhs: np.ndarray) -> np.ndarray:
        """``K^-1 rhs`` of the linearised system (line solver when available, the nonlinearity does not matter)."""
        lr = self.lr
        if lr.lines is not None:
            try:
                return lr.lines.solve(rhs)
            except NotLineStructured:
                pass
        return lr.solve_free(rhs)

    def _norm(self, dy, y_new, y_old):
        scale = self.tol.reltol * np.maximum(np.abs(y_new), np.abs(y_old)) + self.atol
        return np.max(np.abs(dy) / scale, axis=0)

    def _line_batch(self):
        """The per-vector line solver (:class:`~.batchlines.LineBatch`) when it applies, else None
        (``self.solver_reason`` says why not)."""
        if self._batch is None and self.solver_reason is None:
            lr = self.lr
            if lr.lines is None:
                self.solver_reason = f"no line structure ({lr.line_reason})"
            elif self._mos or len(self._dev) != 1:
                self.solver_reason = "transistors or more than one device group"
            else:
                from .batchlines import LineBatch
                g = self._dev[0]["g"]
                try:
                    self._batch = LineBatch(lr.lines, lr.where[lr.unknown(g.p)], lr.where[lr.unknown(g.n_)])
                except NotLineStructured as exc:
                    self.solver_reason = str(exc)
        return self._batch

    def _newton(self, values: np.ndarray, voltages: bool = False) -> tuple[np.ndarray, int, np.ndarray | None]:
        """Nonlinear solution of every vector (source values (n_sources, k)), in chunks: the batched
        line solver's batches of ``LANES`` vectors when it applies (after the first, on ``THREADS``
        threads: batches are independent, the kernels release the GIL), chunks that fail it or any
        chunk without it by the chord path (serially). Returns (currents (k, n_out), Newton iterations
        (max over chunks), node voltages or None)."""
        k = values.shape[1]
        batch = self._line_batch()
        per = max(1, CHUNK_ELEMENTS // max(1, sum(d["g"].n for d in self._dev + self._mos)))
        if batch is not None:
            from .batchlines import LANES
            per = min(per, LANES)
        starts = list(range(0, k, per))
        self.inner_iterations = 0
        fallback_before = self.fallback_vectors
        lines = batch is not None and self.nf > 0
        done: list = [None] * len(starts)

        def run(n: int):
            """One chunk by the line solver: (y, iterations, CG iterations, factorisations), or the
            NotLineStructured it raised (the chord path then takes the chunk)."""
            try:
                return self._solve_chunk_lines(values[:, starts[n]:starts[n] + per])
            except (NotLineStructured, ConvergenceError) as exc:
                return exc

        def finish(n: int, y: np.ndarray):
            vals = values[:, starts[n]:starts[n] + per]
            vext = self._full(y, vals) if voltages or self._out_needs_voltages() else None
            return self._currents(y, vals, vext), vext

        def chunk(n: int):
            """(iterations, CG iterations, factorisations), (currents, node voltages or None) of a chunk:
            not its solution (a batch's unknowns, 8 MB at 256x256, are not kept)."""
            got = run(n)
            return got if isinstance(got, Exception) else (got[1:], finish(n, got[0]))

        if lines and starts:
            done[0] = chunk(0)                                  # serial: lazy set-up (line order, model checks)
            rest = range(1, len(starts))
            if THREADS > 1 and len(starts) > 2 and not isinstance(done[0], Exception):
                from concurrent.futures import ThreadPoolExecutor
                with ThreadPoolExecutor(THREADS) as pool:
                    for n, got in zip(rest, pool.map(chunk, rest)):
                        done[n] = got
            else:
                for n in rest:
                    done[n] = chunk(n)
        out, nodes, its, failed = [], [], 0, 0
        for n, got in enumerate(done):
            if isinstance(got, Exception):             # CG or Newton did not converge: the chord path decides
                self.solver_reason = f"batched line solve failed ({got})"
                failed += 1
                got = None
            if got is None:
                vals = values[:, starts[n]:starts[n] + per]
                y, m = (np.zeros((0, vals.shape[1])), 0) if self.nf == 0 else self._solve_chunk_robust(vals)
                got = ((m, 0, 0), finish(n, y))
            (m, inner, facts), (cur, vext) = got
            done[n] = None
            its = max(its, m)
            self.inner_iterations += inner
            self.factorizations += facts
            out.append(cur)
            if voltages:
                nodes.append(vext)
        if self.nf == 0:
            self.last_solver = "none: every node is fixed by a source"
        elif batch is None or failed == len(starts):
            self.last_solver = "chord"
        else:
            self.last_solver = "lines" if not failed else f"lines ({failed} of {len(starts)} batches by chord)"
        if self.fallback_vectors > fallback_before:
            self.last_solver += (f" ({self.fallback_vectors - fallback_before} of {k} vectors by the engine's "
                                 f"operating point)")
        return np.vstack(out), its, (np.hstack(nodes) if voltages else None)

    def _currents(self, y: np.ndarray, values: np.ndarray, vext: np.ndarray) -> np.ndarray:
        """Output currents (k, n_out) of a chunk's solution: the linear part plus, at eliminated output
        nodes, the devices' deviation from their linearisation (only the devices touching those nodes
        are evaluated: on a crossbar sensed by ideal TIAs behind wires, none)."""
        lr = self.lr
        cur = lr._outputs_from(y, values)                          # (k, n_out) linear part
        if self._out_needs_voltages():
            cur[:, self._out_elim] += (self._out_sign[:, None] * self._out_deviation(vext)).T
        return lr._scatter(cur)

    def _out_deviation(self, vext: np.ndarray) -> np.ndarray:
        """Devices' deviation from their linearisation summed at the eliminated output nodes (n_out, k):
        :meth:`_deviation`'s rows ``_out_node``, evaluating only the cells incident to those nodes
        (transistors: all, through :meth:`_deviation`)."""
        if self._mos:
            return self._deviation(vext, False)[0][self._out_node]
        out = np.zeros((self._out_node.size, vext.shape[1]))
        for d, (cells, sub, params) in zip(self._dev, self._output_cells()):
            if cells.size == 0:
                continue
            g = d["g"]
            vd = vext[g.p[cells]] - vext[g.n_[cells]]
            i, _ = _evaluate(g.model, vd, d["x"][:, cells], params, False)
            out += sub @ (i - (d["gd"][cells, None] * vd + d["off"][cells, None]))
        return out

    def _out_needs_voltages(self) -> bool:
        """Whether :meth:`_currents` needs the node voltages: devices at the eliminated output nodes."""
        if not self._out_elim.size:
            return False
        return bool(self._mos) or any(cells.size for cells, _, _ in self._output_cells())

    def _output_cells(self) -> list:
        """Per device group: (cells incident to the eliminated output nodes, their incidence there
        (n_out, cells), their parameters). Computed once."""
        if self._pattern_parts is None:
            self._newton_structure()
        if self._out_cells is None:
            found = []
            for d in self._dev:
                sub = d["inc"][self._out_node].tocsc()
                cells = np.flatnonzero(np.diff(sub.indptr))
                m = d["g"].n
                params = ParamSet({name: (val[cells] if np.ndim(val) == 1 and np.shape(val)[0] == m else val)
                                   for name, val in d["params"].items()})
                found.append((cells, sub[:, cells].tocsr(), params))
            self._out_cells = found
        return self._out_cells

    def _solve_chunk_robust(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """:meth:`_solve_chunk`; if it fails, each vector alone by the chord path, and a vector that fails
        that too by the engine's own operating point (:func:`operating_point.operating_point`: Newton
        from zero, source stepping, the rounding-floor stop) on the full nodal system. Raises
        ConvergenceError only when that fails as well."""
        try:
            return self._solve_chunk(values)
        except ConvergenceError as exc:
            first = exc
        ys, its = [], 0
        for j in range(values.shape[1]):
            try:
                y, m = self._solve_chunk(values[:, j:j + 1]) if values.shape[1] > 1 else (None, 0)
            except ConvergenceError:
                y = None
            if y is None:
                y, m = self._operating_point(values[:, j], first)
            ys.append(y)
            its = max(its, m)
        return np.hstack(ys), its

    def _operating_point(self, values: np.ndarray, first: Exception) -> tuple[np.ndarray, int]:
        """Free unknowns (nf, 1) of one vector (source values (n_sources,)) by the engine's operating point."""
        from .mna import MnaSystem
        from .newton import NewtonFailure, Solver
        from .operating_point import operating_point
        if self._engine is None:
            system = MnaSystem(self.circuit)
            self._engine = (system, Solver(system, self.tol))
        system, solver = self._engine
        before = solver.iterations
        try:
            y, _ = operating_point(system, solver, 0.0, values)
        except NewtonFailure as exc:
            raise ConvergenceError(f"{first}; the engine's operating point of that vector failed too: {exc}") from None
        self.fallback_vectors += 1
        return y[self.lr.free][:, None], solver.iterations - before

    def _solve_chunk(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        lr = self.lr
        k = values.shape[1]
        rhs = lr._rhs(values)
        y = self._linear_solve(rhs)                                  # the linear solution: first iterate
        active = np.arange(k)
        iterations = 0
        F, _, dj = self._residual(y, values, rhs, derivatives=True)
        for shared in range(MAX_SHARED + 1):
            if active.size == 0:
                break
            if shared == MAX_SHARED:
                start = self._linear_solve(rhs[:, active])           # not the chord's iterate: it may be far off
                for col, j in enumerate(active):                     # their own Jacobian: full Newton
                    y[:, j], n = self._newton_one(start[:, col], values[:, j], rhs[:, j])
                    iterations = max(iterations, n)
                active = active[:0]
                break
            solve = self._factor(self._jacobian_data(dj, None))
            prev = None
            for it in range(CHORD_ITERATIONS):
                if it > 0 or shared > 0:
                    F, _, _ = self._residual(y[:, active], values[:, active], rhs[:, active])
                dy = -np.atleast_2d(solve(F).reshape(self.nf, -1))
                if not np.all(np.isfinite(dy)):
                    raise ConvergenceError("crossbar reads: Newton update not finite")
                y_old = y[:, active]
                y_new = y_old + dy
                y[:, active] = y_new
                iterations += 1
                norm = self._norm(dy, y_new, y_old)
                if prev is None:
                    done = norm == 0.0
                else:
                    with np.errstate(over="ignore", invalid="ignore"):      # diverging vectors: not done
                        rho = np.where(prev > 0, norm / np.where(prev > 0, prev, 1.0), 0.0)
                        done = (norm == 0.0) | ((norm <= 1.0) & (rho < 1.0)
                                                & (norm * rho / np.maximum(1.0 - rho, 1e-300) <= 1.0))
                prev = norm[~done]
                active = active[~done]
                if active.size == 0:
                    break
            if active.size:
                _, _, dj = self._residual(y[:, active], values[:, active], rhs[:, active], derivatives=True)
        return y, iterations

    def _solve_chunk_lines(self, values: np.ndarray) -> tuple[np.ndarray, int, int, int]:
        """Newton with every vector's own Jacobian, solved inexactly by the batched line solver.

        Start: the linear solution (to ``START_RTOL``; any start works, this one is close). Step
        ``k``: ``J_v dy = -F_v`` with the cells' conductance at each vector's iterate, solved by
        conjugate gradients to a relative (preconditioned) residual ``eta_v`` (forcing term,
        Eisenstat-Walker: ``eta = 0.9 (|F_k| / |F_k-1|)^2``, within ``[ETA_MIN, ETA_MAX]``): the
        residual ``F`` is exact, so the inner accuracy changes how fast, not where, Newton
        converges. A vector stops when its update passes the engine's criterion (``_norm <= 1``,
        here the numba ``_newton_step``); the update is then within ``eta`` (relative) of the exact
        Newton step, itself within the tolerance. The Jacobian of an iteration whose cells barely moved
        is the previous one or its secant update (``_jacobian_cells``). Works in the line
        solver's order (``_line_order``) on (unknowns, 8) arrays (a smaller batch padded); converged
        vectors are frozen (zero
        residual: their inner solve does not iterate). Raises ConvergenceError after
        ``MAX_NEWTON`` steps or on a non-finite update; NotLineStructured (the caller falls back
        to the chord path) if conjugate gradients fail. Returns (y, Newton iterations, CG
        iterations, factorisations); changes nothing on ``self`` (batches run in parallel threads).
        """
        from .batchlines import (LANES, _newton_step, _pad, _residual_cells, _residual_lines, _residual_sparse,
                                 _terminal_voltages)
        lr = self.lr
        batch = self._batch
        Kl, tp, tn, atol, lines = self._line_order()
        d = self._dev[0]
        k = values.shape[1]
        vals = _pad(values)
        rhs = np.ascontiguousarray(lr._rhs(vals)[batch.perm])
        vfix = np.ascontiguousarray(lr.src_sign[lr.src_fixed, None] * vals[lr.src_fixed])
        y, inner = batch.linear().solve_lines(rhs, np.full(LANES, START_RTOL))
        done = np.zeros(LANES, bool)
        done[k:] = True                                         # padding
        eta = np.full(LANES, ETA_MAX)
        gd, off = np.ascontiguousarray(d["gd"], dtype=float), np.ascontiguousarray(d["off"], dtype=float)
        F = np.empty_like(y)
        y_new, dy = np.empty_like(y), np.empty_like(y)
        fnorm_prev = step_prev = last = factors = None
        facts = 0
        for it in range(1, MAX_NEWTON + 1):
            vd = np.empty((d["g"].n, LANES))
            _terminal_voltages(y, vfix, tp, tn, vd)
            i, dg = self._cells_current(d, vd)
            if lines is not None:                               # K y from the line structure (streamed)
                _residual_lines(*lines, y, rhs, F)
            else:
                _residual_sparse(Kl.indptr, Kl.indices, Kl.data, y, rhs, F)
            fnorm = _residual_cells(i, vd, gd, off, tp, tn, done, F)
            expected = None
            if fnorm_prev is not None:
                ratio = fnorm / np.where(fnorm_prev > 0, fnorm_prev, 1.0)
                # Eisenstat-Walker, but no tighter than needed to finish: the last step need only leave an
                # error ~0.1 of the tolerance. Its size is at most the previous step ``step_prev`` (in
                # tolerance units) and expected to be ~ ``ratio step_prev`` (Newton steps shrink with the
                # residual); the expectation is trusted to a factor STEP_MARGIN. A step that passes the
                # criterion (<= 1 tolerance) is then within ETA_MAX of the tolerance whatever was expected;
                # one that does not is corrected by the next step.
                expected = STEP_MARGIN * ratio * step_prev
                eta = np.clip(np.maximum.reduce([0.9 * ratio ** 2, 0.1 / np.maximum(step_prev, 1e-300),
                                                 0.1 / np.maximum(expected, 1e-300)]), ETA_MIN, ETA_MAX)
            if dg is None:
                dg = self._jacobian_cells(d, vd, i, last, expected)
            if dg is not None:
                last, factors = (vd, i, dg), batch.factored(dg, scratch=True)   # replaces the previous
                facts += 1
            dy, cg = factors.solve_lines(F, eta, out=dy)         # lanes done: F = 0, dy = 0
            inner += cg
            step, finite = _newton_step(y, dy, self.tol.reltol, atol, y_new)   # y_new = y - dy
            if not finite:
                raise ConvergenceError("crossbar reads: Newton update not finite")
            y, y_new = y_new, y
            done |= step <= 1.0
            fnorm_prev, step_prev = fnorm, step
            if done.all():
                return y[batch.inv][:, :k], it, inner, facts
        raise ConvergenceError(f"crossbar reads: {int((~done).sum())} read vectors did not converge in "
                               f"{MAX_NEWTON} Newton iterations")

    def _line_order(self):
        """The nodal matrix, the cells' terminals and the absolute tolerances in the line solver's order
        (``LineBatch.perm``): terminal codes >= 0 a line-order row, -1 ground, <= -2 fixed node
        ``-2 - code`` (its row in the fixed nodes' values); and the structured residual's arguments
        (``LineBatch.residual_structure``: None unless the matrix is exactly its line structure).
        Computed once."""
        if self._lines_order is None:
            lr, batch = self.lr, self._batch
            Kl = lr.K[batch.perm][:, batch.perm].tocsr()
            Kl.sort_indices()
            fixed = np.full(lr.n_v + 1, -1, np.int64)
            fixed[lr.fixed_nodes + 1] = np.arange(lr.fixed_nodes.size)
            g = self._dev[0]["g"]
            codes = []
            for nodes in (g.p, g.n_):
                nodes = np.asarray(nodes, np.int64)
                pos = lr.where[lr.unknown(nodes)].astype(np.int64)
                code = np.where(pos >= 0, batch.inv[np.maximum(pos, 0)], np.where(nodes == 0, -1, -2 - fixed[nodes]))
                if np.any((pos < 0) & (nodes != 0) & (fixed[nodes] < 0)):
                    raise NotLineStructured("a cell terminal is neither free, fixed nor ground")
                codes.append(code)
            self._lines_order = (Kl, codes[0], codes[1], np.ascontiguousarray(self.atol[batch.perm, 0]),
                                 batch.residual_structure(Kl))
        return self._lines_order

    def _newton_one(self, y, values, rhs) -> tuple[np.ndarray, int]:
        """Full Newton for one vector from ``y``; a node update larger than ``NEWTON_VLIMIT`` is clipped to it
        (as SPICE limits junction voltages), and only an unclipped update can meet the convergence criterion."""
        y, values, rhs = y[:, None], values[:, None], rhs[:, None]
        voltage = self.lr.free < self.lr.n_v                       # free unknowns that are node voltages
        full = limited = 0
        while full < MAX_NEWTON and limited < MAX_LIMITED:
            F, _, dj = self._residual(y, values, rhs, derivatives=True)
            solve = self._factor(self._jacobian_data(dj, 0))
            dy = -solve(F).reshape(self.nf, 1)
            if not np.all(np.isfinite(dy)):
                raise ConvergenceError("crossbar reads: Newton update not finite")
            if float(np.abs(dy[voltage, 0]).max(initial=0.0)) > NEWTON_VLIMIT:
                dy[voltage] = np.clip(dy[voltage], -NEWTON_VLIMIT, NEWTON_VLIMIT)   # per node, as SPICE limits
                limited += 1
                y = y + dy
                continue
            full += 1
            y_new = y + dy
            norm = self._norm(dy, y_new, y)[0]
            y = y_new
            if norm <= 1.0:
                return y[:, 0], full + limited
        raise ConvergenceError(f"crossbar reads: a read vector did not converge in {full + limited} Newton "
                               f"iterations ({limited} of them limited to {NEWTON_VLIMIT} V)")


def _evaluate(model, v: np.ndarray, x: np.ndarray, params, derivatives: bool):
    """Device current (m, k) (and small-signal conductance) at voltages (m, k), states x (ns, m) fixed."""
    m, k = v.shape
    vf = v.T.ravel()                                              # vector-major: k blocks of m devices
    xf = np.tile(x, (1, k))
    pf = ParamSet({name: (np.tile(val, k) if np.ndim(val) == 1 and np.shape(val)[0] == m else val)
                   for name, val in params.items()})
    from .reads import _conductance
    with np.errstate(all="ignore"):
        if derivatives:
            i, gi = _conductance(model, vf, xf, pf)
            return np.asarray(i, float).reshape(k, m).T, np.asarray(gi, float).reshape(k, m).T
        return np.asarray(model.current(vf, xf, pf), float).reshape(k, m).T, None


def read_crossbar(circuit: Circuit, vectors, *, tolerances: Tolerances = Tolerances(),
                  linear_rtol: float = LINEAR_RTOL, solver: str = "auto", force: str | None = None,
                  t: float | None = None) -> ReadResult:
    """Column currents (k, cols) of read vectors (k, rows) on ``circuit`` as DC solutions (see module docstring);
    ``t``: see :class:`CrossbarReader`."""
    return CrossbarReader(circuit, tolerances=tolerances, linear_rtol=linear_rtol, solver=solver, t=t).read(
        vectors, force=force)
