"""Many linear solves of a 1R crossbar's Newton Jacobians at once: one Jacobian per read vector.

The batched Newton of ``batch.py`` needs, per iteration, ``J_v dy_v = -F_v``
for every read vector ``v``, where ``J_v`` is the linearised nodal matrix
``K`` (a :class:`~.linesolve.LineSystem`: word-line and bit-line chains
coupled by the cells) with each cell's small-signal conductance replaced by
its conductance at vector ``v``'s solution. Only the cells change: the
diagonals of both line blocks and the coupling entries. :class:`LineBatch`
keeps the structure that ``LineSystem.build`` found (chain order, wire
couplings, where each cell sits) and, per batch, forms the per-vector
diagonals and couplings, factors every line block of every vector
(tridiagonal LDL^T, O(n) per vector) and runs the same Schur-complement
conjugate gradients as ``LineSystem.solve`` -- preconditioned by the exact
line solves of the iterated family -- for all vectors together, each with
its own matrix.

Layout: arrays are (unknowns, vectors), C order, so every kernel's inner
loop runs over the vectors (independent, contiguous: SIMD) while the
recurrences of the tridiagonal solves run along the chains. The kernels are
numba-compiled (``cache=True``: compiled once per machine).

Convergence is per vector and relative, as in ``LineSystem.solve``:
``sqrt(r.z) <= rtol * sqrt(g.B^-1 g)`` (preconditioned residual against the
reduced right-hand side), with ``rtol`` a scalar or one value per vector
(the Newton caller passes a forcing term: inexact Newton). If a vector has
not converged after ``max_iterations``, :class:`~.linesolve.NotLineStructured`
is raised (the caller falls back); nothing is returned unconverged.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .linesolve import LineSystem, NotLineStructured

MAX_ITERATIONS = 500


class LineBatch:
    """Per-vector Jacobians ``K + cells' conductance change`` on the line structure of ``lines``.

    ``lines``: the :class:`LineSystem` of the linearised matrix ``K`` (n x n, cells at conductance
    ``g_d``); ``p``, ``n``: (m,) free positions of each cell's terminals (-1 or >= n: eliminated node).
    Raises :class:`NotLineStructured` if a cell does not join the two families through an entry of the
    coupling (then the per-vector matrices are not of the line kind).
    """

    def __init__(self, lines: LineSystem, p: np.ndarray, n: np.ndarray):
        self.n = lines.n
        elim, it = lines.order
        self.elim, self.it = np.asarray(elim, np.int64), np.asarray(it, np.int64)
        pos = np.full(self.n + 1, -1, np.int64)
        pos[self.elim] = np.arange(self.elim.size)
        pos[self.it] = np.arange(self.it.size)
        fam = np.full(self.n + 1, -1, np.int64)
        fam[self.elim], fam[self.it] = 0, 1                     # 0: eliminated family, 1: iterated
        p = np.where((p < 0) | (p >= self.n), self.n, p).astype(np.int64)
        n = np.where((n < 0) | (n >= self.n), self.n, n).astype(np.int64)
        self.A, self.B = lines.A, lines.B                       # (d, e, df, ef): base diagonals, wires
        C = lines.C.tocsr().copy()
        C.sum_duplicates()
        C.sort_indices()
        self.C = C
        # cell -> diagonal of each family (-1: terminal not in that family)
        self.diag_e = np.stack([np.where(fam[t] == 0, pos[t], -1) for t in (p, n)])
        self.diag_i = np.stack([np.where(fam[t] == 1, pos[t], -1) for t in (p, n)])
        both = (fam[p] >= 0) & (fam[n] >= 0)
        if np.any(both & (fam[p] == fam[n])):
            raise NotLineStructured("a cell joins two nodes of the same family")
        re = np.where(fam[p] == 0, pos[p], pos[n])[both]
        ci = np.where(fam[p] == 1, pos[p], pos[n])[both]
        keys = np.repeat(np.arange(C.shape[0], dtype=np.int64), np.diff(C.indptr)) * C.shape[1] + C.indices
        want = re * C.shape[1] + ci
        at = np.searchsorted(keys, want)
        if np.any(at >= keys.size) or np.any(keys[np.minimum(at, keys.size - 1)] != want):
            raise NotLineStructured("a cell has no coupling entry")
        self.cell_entry = np.full(p.size, -1, np.int64)
        self.cell_entry[both] = at
        # transpose of the coupling, with the index of each entry in C.data
        T = C.copy()
        T.data = np.arange(C.nnz, dtype=float)
        T = T.T.tocsr()
        T.sort_indices()
        self.Ct = (T.indptr.astype(np.int64), T.indices.astype(np.int64), T.data.astype(np.int64))
        self.Cs = (C.indptr.astype(np.int64), C.indices.astype(np.int64), np.arange(C.nnz, dtype=np.int64))
        self.last_iterations = 0

    # -- per-vector matrices -----------------------------------------------------------
    def factor(self, dg: np.ndarray) -> None:
        """Set the matrices of a batch: ``dg`` (m, k) change of each cell's conductance per vector."""
        dg = np.ascontiguousarray(dg, dtype=float)
        k = dg.shape[1]
        self.k = k
        da = np.repeat(self.A[0][:, None], k, axis=1)
        db = np.repeat(self.B[0][:, None], k, axis=1)
        cd = np.repeat(self.C.data[:, None], k, axis=1)
        _cells(dg, self.diag_e, self.diag_i, self.cell_entry, da, db, cd)
        self.da, self.db, self.cd = da, db, cd
        self.fa = _factor(da, self.A[1])
        self.fb = _factor(db, self.B[1])

    def solve(self, rhs: np.ndarray, rtol=1e-10, max_iterations: int = MAX_ITERATIONS) -> np.ndarray:
        """Solutions (n, k) of the batch's matrices for right-hand sides (n, k) in free order."""
        k = self.k
        rtol = np.broadcast_to(np.asarray(rtol, dtype=float), (k,))
        fa = np.ascontiguousarray(rhs[self.elim])
        fb = np.ascontiguousarray(rhs[self.it])
        y = _tsolve(self.fa, fa)                                 # A^-1 f_a (in place)
        g = fb
        _cmul(self.Ct, self.cd, y, g, -1.0)                       # g = f_b - C^T A^-1 f_a
        xb = np.zeros_like(g)
        res = g.copy()
        z = _tsolve(self.fb, g.copy())
        rz = _coldot(res, z)
        target = rtol * np.sqrt(np.maximum(rz, 0.0))
        p = z.copy()
        t = np.empty_like(y)
        q = np.empty_like(g)
        its = 0
        active = np.sqrt(np.maximum(rz, 0.0)) > target
        while active.any():
            if its >= max_iterations:
                raise NotLineStructured(f"batched line solve: conjugate gradients did not converge in {its} "
                                        "iterations")
            self._schur(p, t, q)
            pq = _coldot(p, q)
            alpha = np.where(active & (pq > 0), rz / np.where(pq > 0, pq, 1.0), 0.0)
            _axpy2(alpha, p, q, xb, res)                          # xb += alpha p, res -= alpha q
            np.copyto(z, res)
            _tsolve(self.fb, z)
            rz_new = _coldot(res, z)
            beta = np.where(active & (rz > 0), rz_new / np.where(rz > 0, rz, 1.0), 0.0)
            _xpby(z, beta, p)                                     # p = z + beta p
            rz = np.where(active, rz_new, rz)
            active = active & (np.sqrt(np.maximum(rz, 0.0)) > target)
            its += 1
        self.last_iterations = its
        t.fill(0.0)
        _cmul(self.Cs, self.cd, xb, t, 1.0)
        _tsolve(self.fa, t)
        out = np.empty((self.n, k))
        out[self.elim] = y - t
        out[self.it] = xb
        return out

    def _schur(self, p, t, q):
        """``q = S p = B p - C^T A^-1 C p`` (all vectors)."""
        t.fill(0.0)
        _cmul(self.Cs, self.cd, p, t, 1.0)
        _tsolve(self.fa, t)
        _bmul(self.db, self.B[1], p, q)
        _cmul(self.Ct, self.cd, t, q, -1.0)


# -- kernels: arrays (n, k), inner loops over the k vectors ---------------------------------

@njit(cache=True)
def _cells(dg, diag_e, diag_i, entry, da, db, cd):
    m, k = dg.shape
    for c in range(m):
        for s in range(2):
            a = diag_e[s, c]
            if a >= 0:
                for j in range(k):
                    da[a, j] += dg[c, j]
            b = diag_i[s, c]
            if b >= 0:
                for j in range(k):
                    db[b, j] += dg[c, j]
        e = entry[c]
        if e >= 0:
            for j in range(k):
                cd[e, j] -= dg[c, j]


@njit(cache=True)
def _factor(d, e):
    """LDL^T of tridiagonal matrices (diagonal d (n, k), shared off-diagonal e (n-1,)): (1/D, L)."""
    n, k = d.shape
    rd = np.empty((n, k))
    lo = np.zeros((max(n - 1, 0), k))
    if n == 0:
        return rd, lo
    for j in range(k):
        rd[0, j] = 1.0 / d[0, j]
    for i in range(1, n):
        ei = e[i - 1]
        for j in range(k):
            li = ei * rd[i - 1, j]
            lo[i - 1, j] = li
            rd[i, j] = 1.0 / (d[i, j] - li * ei)
    return rd, lo


@njit(cache=True)
def _tsolve_kernel(rd, lo, x):
    n, k = x.shape
    if n == 0:
        return
    for i in range(1, n):
        for j in range(k):
            x[i, j] -= lo[i - 1, j] * x[i - 1, j]
    for j in range(k):
        x[n - 1, j] *= rd[n - 1, j]
    for i in range(n - 2, -1, -1):
        for j in range(k):
            x[i, j] = x[i, j] * rd[i, j] - lo[i, j] * x[i + 1, j]


def _tsolve(f, x):
    """Solve in place with factors ``f`` = (1/D, L); returns ``x``."""
    _tsolve_kernel(f[0], f[1], x)
    return x


@njit(cache=True)
def _cmul_kernel(indptr, indices, dix, data, x, out, sign):
    nr = indptr.size - 1
    k = x.shape[1]
    for r in range(nr):
        for q in range(indptr[r], indptr[r + 1]):
            c = indices[q]
            d = dix[q]
            for j in range(k):
                out[r, j] += sign * data[d, j] * x[c, j]


def _cmul(structure, data, x, out, sign):
    """``out += sign * M x`` for the coupling (or its transpose) with per-vector values ``data`` (nnz, k)."""
    _cmul_kernel(structure[0], structure[1], structure[2], data, x, out, sign)


@njit(cache=True)
def _bmul(d, e, p, out):
    """``out = B p``: tridiagonal with per-vector diagonal d (n, k), shared off-diagonal e."""
    n, k = p.shape
    for i in range(n):
        for j in range(k):
            out[i, j] = d[i, j] * p[i, j]
    for i in range(n - 1):
        ei = e[i]
        for j in range(k):
            out[i, j] += ei * p[i + 1, j]
            out[i + 1, j] += ei * p[i, j]


@njit(cache=True)
def _coldot(a, b):
    n, k = a.shape
    out = np.zeros(k)
    for i in range(n):
        for j in range(k):
            out[j] += a[i, j] * b[i, j]
    return out


@njit(cache=True)
def _axpy2(alpha, p, q, x, r):
    n, k = p.shape
    for i in range(n):
        for j in range(k):
            x[i, j] += alpha[j] * p[i, j]
            r[i, j] -= alpha[j] * q[i, j]


@njit(cache=True)
def _xpby(z, beta, p):
    n, k = p.shape
    for i in range(n):
        for j in range(k):
            p[i, j] = z[i, j] + beta[j] * p[i, j]
