"""Newton's method on the MNA equations, with sparse LU and factorisation reuse.

One solve finds ``y`` with

    F(y) = A y + i_nl(y) - rhs = 0,      A = G + op rows   (operating point)
                                         A = G + a C       (transient step, a = 1/h or 2/h)

Convergence (like SPICE, tighter): an iteration converges when every update
satisfies ``|dy| <= reltol * max(|y_new|, |y_old|) + atol`` with ``atol``
= ``vntol`` on node voltages (and device states) and ``abstol`` on branch
currents. The last update is applied, so the result is one quadratically
convergent step past the criterion. Without nonlinear elements the system is
solved directly (one LU solve, no iteration) and the LU factorisation of
each distinct matrix ``A`` is kept, so an operating point or a fixed-step
linear transient factors once and reuses the factors for every right-hand
side. With nonlinear elements the Jacobian ``A + d i_nl/dy`` is written into
the fixed pattern and factored every iteration (scipy's SuperLU).

Jacobian reuse (chord / simplified Newton, as in implicit stiff integrators):
the LU of the last Jacobian is kept and reused -- across iterations and time
steps with the same matrix mode and step coefficient -- while it still
contracts fast. A chord iteration converges linearly at a rate ``rho``
(ratio of successive update norms), so its remaining error is about
``rho / (1 - rho) * |dy|``; it is accepted only when both ``|dy|`` and that
estimate meet the criterion above (norms weighted by ``reltol * |y| +
atol``). When ``rho`` exceeds ``CHORD_MAX_RATE`` or ``CHORD_MAX_STEPS``
stale iterations pass, the Jacobian is refactored at the current iterate and
the iteration continues as full Newton with the usual criterion.

Symbolic reuse: every matrix the solver factors has the one sparsity pattern
of ``mna.SparsePattern``, so a fill-reducing order is computed once (SuperLU's
minimum degree on ``A + A^T`` of the pattern) and every factorisation then
runs on the symmetrically permuted matrix ``A[q][:, q]`` -- built by one
gather of the data array -- with ``permc_spec="NATURAL"`` and a small
diagonal pivot threshold (a zero diagonal, e.g. a source branch row, still
pivots). That skips the per-factorisation ordering (COLAMD), which was most
of the cost on crossbars.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .mna import MnaSystem


@dataclass(frozen=True)
class Tolerances:
    reltol: float = 1e-9
    vntol: float = 1e-12      # V
    abstol: float = 1e-15     # A
    max_iterations: int = 50


class NewtonFailure(Exception):
    """A solve did not converge (callers retry with smaller steps or raise ConvergenceError)."""


class Solver:
    """Solves ``F(y) = 0`` for a system, counting iterations and factorisations."""

    CACHE_SIZE = 8

    def __init__(self, system: MnaSystem, tolerances: Tolerances = Tolerances()):
        self.system = system
        self.tol = tolerances
        self.atol = np.where(np.arange(system.size) < system.n_v, tolerances.vntol, tolerances.abstol)
        self._matrices: OrderedDict = OrderedDict()    # (mode, a) -> (data, csc matrix, LU or None)
        self._jacobian = system.pattern.matrix(np.zeros(system.pattern.nnz))  # data rewritten per iteration
        self.iterations = 0
        self.factorizations = 0
        self.max_iterations_seen = 0
        self._chord = None          # (matrix key, LU) kept for chord iterations
        self._rho = 1.0             # last observed chord contraction rate
        self._order()

    def _order(self) -> None:
        """Fill-reducing symmetric permutation ``q`` of the pattern and the data gather for ``A[q][:, q]``."""
        pattern = self.system.pattern
        n = pattern.size
        probe = pattern.matrix(np.ones(pattern.nnz)) + sp.identity(n, format="csc")
        try:
            # perm_c[k] is the new position of column k; q lists old indices in new order
            q = np.argsort(spla.splu(probe.tocsc(), permc_spec="MMD_AT_PLUS_A").perm_c).astype(np.int64)
        except RuntimeError:          # structurally singular pattern: keep the natural order
            q = np.arange(n)
        marker = pattern.matrix(np.arange(1, pattern.nnz + 1, dtype=float))
        permuted = marker[q][:, q].tocsc()
        permuted.sort_indices()
        self._q = q
        self._gather = permuted.data.astype(np.int64) - 1
        self._p_indices, self._p_indptr = permuted.indices, permuted.indptr

    def base(self, mode: str, a: float):
        """Data and matrix of ``A`` for an analysis mode and integration coefficient (cached)."""
        key = (mode, a)
        if key in self._matrices:
            self._matrices.move_to_end(key)
            return self._matrices[key]
        s = self.system
        data = s.g_data + (s.op_data if mode == "op" else a * s.c_data)
        entry = [data, s.pattern.matrix(data), None]
        self._matrices[key] = entry
        if len(self._matrices) > self.CACHE_SIZE:
            self._matrices.popitem(last=False)
        return entry

    def solve(self, y0: np.ndarray, rhs: np.ndarray, mode: str, a: float = 0.0) -> np.ndarray:
        """The ``y`` solving the system from initial guess ``y0``; raises :class:`NewtonFailure`."""
        entry = self.base(mode, a)
        if not self.system.nonlinear:
            if entry[2] is None:
                entry[2] = self._factor(entry[1])
            self.iterations += 1
            return entry[2].solve(rhs)
        return self._newton(y0, rhs, mode, entry[0], entry[1], (mode, a))

    def _newton(self, y0, rhs, mode, base_data, base_matrix, key) -> np.ndarray:
        s = self.system
        y = np.array(y0, dtype=float)
        vext = np.zeros(s.n_v + 1)
        lu = self._chord[1] if self._chord is not None and self._chord[0] == key else None
        prev_norm, stale_steps = None, 0
        for k in range(1, self.tol.max_iterations + 1):
            fresh = lu is None
            vext[1:] = y[:s.n_v]
            with np.errstate(all="ignore"):
                if lu is None:
                    f_nl, j_nl = s.nonlinear.evaluate(vext, mode)
                else:                               # chord: the Jacobian is not needed
                    f_nl, j_nl = s.nonlinear.residual(vext, mode), None
            residual = base_matrix @ y + f_nl - rhs
            if not np.all(np.isfinite(residual)) or (j_nl is not None and not np.all(np.isfinite(j_nl))):
                raise NewtonFailure(f"device equations not finite after {k - 1} iterations")
            if lu is None:
                np.add(base_data, j_nl, out=self._jacobian.data)
                lu = self._factor(self._jacobian)
            dy = lu.solve(-residual)
            y_new = y + dy
            norm = float(np.max(np.abs(dy) / (self.tol.reltol * np.maximum(np.abs(y_new), np.abs(y)) + self.atol)))
            y = y_new
            if fresh:
                converged = norm <= 1.0
            else:
                # chord iteration: linear convergence at rate rho; the error left is about rho/(1-rho) |dy|
                rho = norm / prev_norm if prev_norm else self._rho
                converged = norm <= 1.0 and rho < 1.0 and norm * rho / (1.0 - rho) <= 1.0
                stale_steps += 1
                if not converged and prev_norm is not None and (rho > CHORD_MAX_RATE or stale_steps >= CHORD_MAX_STEPS):
                    lu = None          # too slow: a fresh Jacobian for the next iteration
                if prev_norm:
                    self._rho = rho
            if converged:
                self._chord = (key, lu)
                self.iterations += k
                self.max_iterations_seen = max(self.max_iterations_seen, k)
                return y
            prev_norm = norm if norm > 0 else None
        self.iterations += self.tol.max_iterations
        self._chord = None
        raise NewtonFailure(f"no convergence in {self.tol.max_iterations} Newton iterations")

    def _factor(self, matrix):
        """LU of ``matrix`` (on the solver's pattern) in the precomputed order; ``.solve(b)`` as splu's."""
        self.factorizations += 1
        permuted = sp.csc_matrix((matrix.data[self._gather], self._p_indices, self._p_indptr),
                                 shape=matrix.shape)
        try:
            lu = spla.splu(permuted, permc_spec="NATURAL", diag_pivot_thresh=PIVOT_THRESHOLD,
                           options=dict(SymmetricMode=True))
        except RuntimeError as exc:   # "Factor is exactly singular"
            raise NewtonFailure("circuit matrix is singular (a node without a DC path to ground, "
                                "or a loop of voltage sources)") from exc
        return _PermutedLU(lu, self._q)


#: chord iterations refactor when the contraction rate exceeds this, or after this many stale iterations
CHORD_MAX_RATE = 0.2
CHORD_MAX_STEPS = 6
#: partial pivoting threshold: the diagonal is kept unless 100x smaller than the column's largest entry
PIVOT_THRESHOLD = 0.01


class _PermutedLU:
    """An LU of ``A[q][:, q]`` that solves ``A x = b``."""

    def __init__(self, lu, q: np.ndarray):
        self.lu, self.q = lu, q

    def solve(self, b: np.ndarray) -> np.ndarray:
        x = np.empty_like(b)
        x[self.q] = self.lu.solve(b[self.q])
        return x
