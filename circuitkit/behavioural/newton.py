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
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
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
        return self._newton(y0, rhs, mode, entry[0], entry[1])

    def _newton(self, y0, rhs, mode, base_data, base_matrix) -> np.ndarray:
        s = self.system
        y = np.array(y0, dtype=float)
        vext = np.zeros(s.n_v + 1)
        for k in range(1, self.tol.max_iterations + 1):
            vext[1:] = y[:s.n_v]
            with np.errstate(all="ignore"):
                f_nl, j_nl = s.nonlinear.evaluate(vext, mode)
            residual = base_matrix @ y + f_nl - rhs
            if not np.all(np.isfinite(residual)) or not np.all(np.isfinite(j_nl)):
                raise NewtonFailure(f"device equations not finite after {k - 1} iterations")
            np.add(base_data, j_nl, out=self._jacobian.data)
            dy = self._factor(self._jacobian).solve(-residual)
            y_new = y + dy
            converged = np.all(np.abs(dy) <= self.tol.reltol * np.maximum(np.abs(y_new), np.abs(y)) + self.atol)
            y = y_new
            if converged:
                self.iterations += k
                self.max_iterations_seen = max(self.max_iterations_seen, k)
                return y
        self.iterations += self.tol.max_iterations
        raise NewtonFailure(f"no convergence in {self.tol.max_iterations} Newton iterations")

    def _factor(self, matrix):
        self.factorizations += 1
        try:
            return spla.splu(matrix)
        except RuntimeError as exc:   # "Factor is exactly singular"
            raise NewtonFailure("circuit matrix is singular (a node without a DC path to ground, "
                                "or a loop of voltage sources)") from exc
