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
recurrences of the tridiagonal solves run along the chains. The eliminated
family keeps ``LineSystem``'s chain order; the iterated family is put in the
order of the eliminated unknowns it couples to (``_align``: on a 1R array
bit-line node (i, j) next to word-line node (i, j)), so the coupling is read
sequentially instead of as a transpose, and its chains become predecessor
links (each chain must stay monotone in that order, else the chain order is
kept). Batches are ``LANES`` = 8 vectors, a width fixed at compile time. The
kernels are numba-compiled (``cache=True``: compiled once per machine).

Convergence is per vector and relative, as in ``LineSystem.solve``:
``sqrt(r.z) <= rtol * sqrt(g.B^-1 g)`` (preconditioned residual against the
reduced right-hand side), with ``rtol`` a scalar or one value per vector
(the Newton caller passes a forcing term: inexact Newton). If a vector has
not converged after ``max_iterations``, :class:`~.linesolve.NotLineStructured`
is raised (the caller falls back); nothing is returned unconverged.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

from .linesolve import LineSystem, NotLineStructured

MAX_ITERATIONS = 500
#: vectors per batch: the kernels run with this width fixed at compile time (unrolled, SIMD); a smaller
#: batch is padded with copies of its last vector. Measured at 128x128 and 256x256: batches of 8 keep the
#: working arrays (unknowns, 8) in the processor's caches, 2-5x faster per vector than batches of 100
LANES = 8


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
        self.elim = np.asarray(elim, np.int64)
        # the iterated family in the order of the eliminated unknowns it couples to (``_align``), its
        # chains kept as predecessor links
        sigma, self.pred, self.succ, e2 = _align(lines.C, lines.B[1], len(it))
        self.it = np.asarray(it, np.int64)[sigma]
        self.Bd, self.Be = lines.B[0][sigma], e2                # diagonal; wire to the predecessor
        pos = np.full(self.n + 1, -1, np.int64)
        pos[self.elim] = np.arange(self.elim.size)
        pos[self.it] = np.arange(self.it.size)
        fam = np.full(self.n + 1, -1, np.int64)
        fam[self.elim], fam[self.it] = 0, 1                     # 0: eliminated family, 1: iterated
        p = np.where((p < 0) | (p >= self.n), self.n, p).astype(np.int64)
        n = np.where((n < 0) | (n >= self.n), self.n, n).astype(np.int64)
        self.A, self.B = lines.A, lines.B                       # (d, e, df, ef): base diagonals, wires
        C = lines.C.tocsr()[:, sigma].tocsr()
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
        self.Ctt = self.Ct[:2] + (np.arange(C.nnz, dtype=np.int64),)   # on values stored in transposed order
        self.perm = np.concatenate([self.elim, self.it])        # line order: position -> free unknown
        self.inv = np.empty_like(self.perm)
        self.inv[self.perm] = np.arange(self.n)
        self.last_iterations = 0

    # -- per-vector matrices -----------------------------------------------------------
    def factor(self, dg: np.ndarray) -> None:
        """Set the matrices of a batch: ``dg`` (m, k) change of each cell's conductance per vector."""
        k = dg.shape[1]
        if not 0 < k <= LANES:
            raise ValueError(f"batched line solve: 1..{LANES} vectors per batch, got {k}")
        self.k = k
        dg = _pad(np.asarray(dg, dtype=float))
        k = LANES
        da = np.repeat(self.A[0][:, None], k, axis=1)
        db = np.repeat(self.Bd[:, None], k, axis=1)
        cd = np.repeat(self.C.data[:, None], k, axis=1)
        _cells(dg, self.diag_e, self.diag_i, self.cell_entry, da, db, cd)
        self.da, self.db, self.cd = da, db, cd
        self.cdt = cd[self.Ct[2]]                               # the coupling's values in transposed order
        self.fa = _factor(da, self.A[1])
        self.fb = _factor_links(db, self.Be, self.pred)

    def solve(self, rhs: np.ndarray, rtol=1e-10, max_iterations: int | None = None) -> np.ndarray:
        """Solutions (n, k) of the batch's matrices for right-hand sides (n, k) in free order; ``rtol``
        scalar or (k,); at most ``max_iterations`` (default :data:`MAX_ITERATIONS`) CG iterations."""
        if max_iterations is None:
            max_iterations = MAX_ITERATIONS
        k = self.k
        if rhs.shape[1] != k:
            raise ValueError(f"batched line solve: {k} right-hand sides expected, got {rhs.shape[1]}")
        rtol = _pad(np.broadcast_to(np.asarray(rtol, dtype=float), (k,))[None])[0]
        rhs = _pad(rhs)
        out = self.solve_lines(np.ascontiguousarray(rhs[self.perm]), rtol, max_iterations)
        return out[self.inv][:, :k]

    def solve_lines(self, rhs: np.ndarray, rtol, max_iterations: int | None = None) -> np.ndarray:
        """:meth:`solve` in line order: rhs (n, LANES) C-contiguous with the unknowns ordered
        ``perm`` (eliminated family along its chains, then the iterated one); ``rtol`` (LANES,).
        A right-hand side of zeros gives zeros without iterating. Returns (n, LANES), line order."""
        if max_iterations is None:
            max_iterations = MAX_ITERATIONS
        ne = self.elim.size
        out = np.empty((self.n, LANES))
        y = out[:ne]
        y[...] = rhs[:ne]
        _tsolve(self.fa, y)                                      # A^-1 f_a
        g = rhs[ne:].copy()
        _cmul(*self.Ctt, self.cdt, y, g, -1.0)                    # g = f_b - C^T A^-1 f_a
        xb = out[ne:]
        xb[...] = 0.0
        res = g
        z = self._tsolve_b(g.copy())
        rz = _coldot(res, z)
        target = rtol * np.sqrt(np.maximum(rz, 0.0))
        p = z.copy()
        t = np.empty((ne, LANES))
        q = np.empty_like(g)
        its = 0
        active = np.sqrt(np.maximum(rz, 0.0)) > target
        while active.any():
            if its >= max_iterations:
                raise NotLineStructured(f"batched line solve: conjugate gradients did not converge in {its} "
                                        "iterations")
            pq = self._schur(p, t, q)
            alpha = np.where(active & (pq > 0), rz / np.where(pq > 0, pq, 1.0), 0.0)
            _axpy2(alpha, p, q, xb, res, z)                       # xb += alpha p, res -= alpha q, z = res
            self._tsolve_b(z)
            rz_new = _coldot(res, z)
            beta = np.where(active & (rz > 0), rz_new / np.where(rz > 0, rz, 1.0), 0.0)
            _xpby(z, beta, p)                                     # p = z + beta p
            rz = np.where(active, rz_new, rz)
            active = active & (np.sqrt(np.maximum(rz, 0.0)) > target)
            its += 1
        self.last_iterations = its
        _cset(*self.Cs, self.cd, xb, t)
        _tsolve(self.fa, t)
        y -= t
        return out

    def _tsolve_b(self, x):
        _tsolve_links(self.fb[0], self.fb[1], self.pred, self.succ, x)
        return x

    def _schur(self, p, t, q):
        """``q = S p = B p - C^T A^-1 C p`` (all vectors); returns ``p.q`` per vector."""
        _cset(*self.Cs, self.cd, p, t)
        _tsolve(self.fa, t)
        return _bq(self.db, self.Be, self.pred, self.succ, *self.Ctt, self.cdt, t, p, q)


def _pad(a: np.ndarray) -> np.ndarray:
    """(n, k) -> (n, LANES) C-contiguous, the last column repeated."""
    k = a.shape[1]
    if k == LANES:
        return np.ascontiguousarray(a)
    return np.ascontiguousarray(np.concatenate([a, np.repeat(a[:, -1:], LANES - k, axis=1)], axis=1))


# -- kernels: arrays (n, LANES), inner loops over the vectors (compile-time width) ----------------

@njit(cache=True)
def _cells(dg, diag_e, diag_i, entry, da, db, cd):
    m = dg.shape[0]
    for c in range(m):
        for s in range(2):
            a = diag_e[s, c]
            if a >= 0:
                for j in range(LANES):
                    da[a, j] += dg[c, j]
            b = diag_i[s, c]
            if b >= 0:
                for j in range(LANES):
                    db[b, j] += dg[c, j]
        e = entry[c]
        if e >= 0:
            for j in range(LANES):
                cd[e, j] -= dg[c, j]


@njit(cache=True)
def _factor(d, e):
    """LDL^T of tridiagonal matrices (diagonal d (n, LANES), shared off-diagonal e (n-1,)): (1/D, L)."""
    n = d.shape[0]
    rd = np.empty((n, LANES))
    lo = np.zeros((max(n - 1, 0), LANES))
    if n == 0:
        return rd, lo
    for j in range(LANES):
        rd[0, j] = 1.0 / d[0, j]
    for i in range(1, n):
        ei = e[i - 1]
        for j in range(LANES):
            li = ei * rd[i - 1, j]
            lo[i - 1, j] = li
            rd[i, j] = 1.0 / (d[i, j] - li * ei)
    return rd, lo


@njit(cache=True)
def _tsolve_kernel(rd, lo, x):
    n = x.shape[0]
    if n == 0:
        return
    for i in range(1, n):
        for j in range(LANES):
            x[i, j] -= lo[i - 1, j] * x[i - 1, j]
    for j in range(LANES):
        x[n - 1, j] *= rd[n - 1, j]
    for i in range(n - 2, -1, -1):
        for j in range(LANES):
            x[i, j] = x[i, j] * rd[i, j] - lo[i, j] * x[i + 1, j]


def _tsolve(f, x):
    """Solve in place with factors ``f`` = (1/D, L); returns ``x``."""
    _tsolve_kernel(f[0], f[1], x)
    return x


@njit(cache=True)
def _cmul(indptr, indices, dix, data, x, out, sign):
    """``out += sign * M x`` for the coupling (or its transpose: ``dix`` maps to the entries of
    ``data`` (nnz, LANES), the per-vector values)."""
    nr = indptr.size - 1
    for r in range(nr):
        for q in range(indptr[r], indptr[r + 1]):
            c = indices[q]
            d = dix[q]
            for j in range(LANES):
                out[r, j] += sign * data[d, j] * x[c, j]


@njit(cache=True)
def _cset(indptr, indices, dix, data, x, out):
    """``out = M x`` (as :func:`_cmul`)."""
    nr = indptr.size - 1
    for r in range(nr):
        for j in range(LANES):
            out[r, j] = 0.0
        for q in range(indptr[r], indptr[r + 1]):
            c = indices[q]
            d = dix[q]
            for j in range(LANES):
                out[r, j] += data[d, j] * x[c, j]


@njit(cache=True)
def _bq(d, e, pred, succ, indptr, indices, dix, data, t, p, q):
    """``q = B p - C^T t`` (B: per-vector diagonal d, wire e[i] to the chain predecessor pred[i], successor
    succ[i]; -1 none); returns ``p.q``."""
    n = p.shape[0]
    pq = np.zeros(LANES)
    for i in range(n):
        for j in range(LANES):
            q[i, j] = d[i, j] * p[i, j]
        a = pred[i]
        if a >= 0:
            ei = e[i]
            for j in range(LANES):
                q[i, j] += ei * p[a, j]
        b = succ[i]
        if b >= 0:
            ei = e[b]
            for j in range(LANES):
                q[i, j] += ei * p[b, j]
        for s in range(indptr[i], indptr[i + 1]):
            c = indices[s]
            dd = dix[s]
            for j in range(LANES):
                q[i, j] -= data[dd, j] * t[c, j]
        for j in range(LANES):
            pq[j] += p[i, j] * q[i, j]
    return pq


@njit(cache=True)
def _factor_links(d, e, pred):
    """LDL^T of chains given as predecessor links (every predecessor earlier in the order): (1/D, L)
    with L[i, pred[i]] = lo[i]."""
    n = d.shape[0]
    rd = np.empty((n, LANES))
    lo = np.zeros((n, LANES))
    for i in range(n):
        a = pred[i]
        if a >= 0:
            ei = e[i]
            for j in range(LANES):
                li = ei * rd[a, j]
                lo[i, j] = li
                rd[i, j] = 1.0 / (d[i, j] - li * ei)
        else:
            for j in range(LANES):
                rd[i, j] = 1.0 / d[i, j]
    return rd, lo


@njit(cache=True)
def _tsolve_links(rd, lo, pred, succ, x):
    n = x.shape[0]
    for i in range(n):
        a = pred[i]
        if a >= 0:
            for j in range(LANES):
                x[i, j] -= lo[i, j] * x[a, j]
    for i in range(n - 1, -1, -1):
        b = succ[i]
        if b >= 0:
            for j in range(LANES):
                x[i, j] = x[i, j] * rd[i, j] - lo[b, j] * x[b, j]
        else:
            for j in range(LANES):
                x[i, j] *= rd[i, j]


def _align(C, e, n_it: int):
    """Order of the iterated family along the eliminated unknowns it couples to (the cells join word-line
    node (i, j) and bit-line node (i, j): then the coupling is sequential in both families instead of a
    transpose), unknowns without a coupling last. The chains (consecutive unknowns in the original order
    joined by ``e != 0``) become predecessor links; if a chain is not monotone in the new order the
    original order is kept. Returns (sigma, pred, succ, e2): new position -> original, links, wires."""
    Cc = sp.csc_matrix(C)
    Cc.sort_indices()
    first = np.full(n_it, np.iinfo(np.int64).max, np.int64)
    has = np.diff(Cc.indptr) > 0
    first[has] = Cc.indices[Cc.indptr[:-1][has]]
    for sigma in (np.argsort(first, kind="stable"), np.arange(n_it)):
        new = np.empty(n_it, np.int64)
        new[sigma] = np.arange(n_it)
        link = np.flatnonzero(e != 0)                      # original (link, link + 1) joined
        a, b = new[link], new[link + 1]
        lo_, hi = np.minimum(a, b), np.maximum(a, b)
        pred = np.full(n_it, -1, np.int64)
        succ = np.full(n_it, -1, np.int64)
        if np.bincount(hi, minlength=n_it).max(initial=0) > 1 or np.bincount(lo_, minlength=n_it).max(initial=0) > 1:
            continue                                           # a chain is not monotone: keep the order
        pred[hi], succ[lo_] = lo_, hi
        e2 = np.zeros(n_it)
        e2[hi] = e[link]
        return sigma, pred, succ, e2
    raise NotLineStructured("chain links are not consistent")


@njit(cache=True)
def _coldot(a, b):
    n = a.shape[0]
    out = np.zeros(LANES)
    for i in range(n):
        for j in range(LANES):
            out[j] += a[i, j] * b[i, j]
    return out


@njit(cache=True)
def _axpy2(alpha, p, q, x, r, z):
    """``x += alpha p``, ``r -= alpha q``, ``z = r``."""
    n = p.shape[0]
    for i in range(n):
        for j in range(LANES):
            x[i, j] += alpha[j] * p[i, j]
            r[i, j] -= alpha[j] * q[i, j]
            z[i, j] = r[i, j]


@njit(cache=True)
def _xpby(z, beta, p):
    n = p.shape[0]
    for i in range(n):
        for j in range(LANES):
            p[i, j] = z[i, j] + beta[j] * p[i, j]


@njit(cache=True)
def _step_norm(dy, y_new, y_old, reltol, atol):
    """Per column: ``max_i |dy| / (reltol max(|y_new|, |y_old|) + atol_i)`` (the engine's Newton criterion,
    ``<= 1``: converged); any k."""
    n, k = dy.shape
    out = np.zeros(k)
    for i in range(n):
        a = atol[i]
        for j in range(k):
            s = reltol * max(abs(y_new[i, j]), abs(y_old[i, j])) + a
            r = abs(dy[i, j]) / s
            if r > out[j] or r != r:
                out[j] = r
    return out


@njit(cache=True)
def _terminal_voltages(y, vfix, tp, tn, out):
    """``out = V(p) - V(n)`` per cell (m, LANES): terminal code >= 0 a row of ``y``, -1 ground,
    <= -2 the fixed node ``-2 - code`` (row of ``vfix``)."""
    m = tp.size
    for c in range(m):
        a, b = tp[c], tn[c]
        for j in range(LANES):
            va = y[a, j] if a >= 0 else (0.0 if a == -1 else vfix[-2 - a, j])
            vb = y[b, j] if b >= 0 else (0.0 if b == -1 else vfix[-2 - b, j])
            out[c, j] = va - vb


@njit(cache=True)
def _residual_kernel(indptr, indices, data, y, rhs, err, tp, tn, done, out):
    """``out = K y - rhs`` plus the cells' deviation ``err`` (m, LANES) leaving at ``tp`` and entering
    at ``tn`` (rows >= 0 only); lanes marked ``done`` get 0."""
    n = indptr.size - 1
    for r in range(n):
        for j in range(LANES):
            out[r, j] = -rhs[r, j]
        for q in range(indptr[r], indptr[r + 1]):
            c = indices[q]
            v = data[q]
            for j in range(LANES):
                out[r, j] += v * y[c, j]
    for c in range(tp.size):
        a, b = tp[c], tn[c]
        if a >= 0:
            for j in range(LANES):
                out[a, j] += err[c, j]
        if b >= 0:
            for j in range(LANES):
                out[b, j] -= err[c, j]
    for j in range(LANES):
        if done[j]:
            for r in range(n):
                out[r, j] = 0.0
