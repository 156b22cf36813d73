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
kernels are numba-compiled (``cache=True``: compiled once per machine) and
release the GIL (``nogil``): a batch's matrices live in their own
:class:`BatchFactors`, so batches can be solved on parallel threads.

The iteration is memory-bound (each pass streams (unknowns, 8) float64
arrays, 4 MB each at 256x256). The line factors keep only the reciprocal
pivots (the multipliers are the shared wire values over the pivots). When
the coupling is one-to-one (``_one_to_one``: every bit-line node has one
cell, every word-line node at most one -- a 1R array; checked, else the
general kernels), one iteration is four fused passes instead of nine:
``p = z + beta p`` with the forward sweep of ``A^-1 C p``; its backward
sweep with ``q = B p - C^T t`` and ``p.q``; ``x += alpha p``, ``r -= alpha
q`` with the forward sweep of the preconditioner; its backward sweep with
``r.z``. The arithmetic is that of the separate passes (rounding aside).
The Newton residual's ``K y`` likewise streams the line structure
(``_residual_lines``) when ``K`` is exactly that structure (checked entry
for entry, ``LineBatch.residual_structure``), else the sparse product.
The iteration's own arrays are reused per thread (``_workspace``).

Convergence is per vector and relative, as in ``LineSystem.solve``:
``sqrt(r.z) <= rtol * sqrt(g.B^-1 g)`` (preconditioned residual against the
reduced right-hand side), with ``rtol`` a scalar or one value per vector
(the Newton caller passes a forcing term: inexact Newton). If a vector has
not converged after ``max_iterations``, :class:`~.linesolve.NotLineStructured`
is raised (the caller falls back); nothing is returned unconverged.
"""
from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp
from numba import njit

from .linesolve import LineSystem, NotLineStructured

MAX_ITERATIONS = 500
#: vectors per batch: the kernels run with this width fixed at compile time (unrolled, SIMD); a smaller
#: batch is padded with copies of its last vector. Measured at 128x128 and 256x256: batches of 8 keep the
#: working arrays (unknowns, 8) in the processor's caches, 2-5x faster per vector than batches of 100
LANES = 8
#: use the fused conjugate-gradient kernels when the coupling is one-to-one (``_one_to_one``); False: the
#: general kernels (one pass per operation) everywhere -- the same iteration, for checks
FUSED = True


class LineBatch:
    """Per-vector Jacobians ``K + cells' conductance change`` on the line structure of ``lines``.

    ``lines``: the :class:`LineSystem` of the linearised matrix ``K`` (n x n, cells at conductance
    ``g_d``); ``p``, ``n``: (m,) free positions of each cell's terminals (-1 or >= n: eliminated node).
    Raises :class:`NotLineStructured` if a cell does not join the two families through an entry of the
    coupling (then the per-vector matrices are not of the line kind).

    The structure is read-only after construction: :meth:`factored` returns a batch's matrices as their
    own object (:class:`BatchFactors`), so batches can be solved in parallel threads (the kernels release
    the GIL). :meth:`factor` / :meth:`solve` / :meth:`solve_lines` keep one current batch for serial use.
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
        self.Ae = np.ascontiguousarray(lines.A[1], dtype=float)
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
        self.one = _one_to_one(C)
        self.fused = self.one is not None and FUSED
        self.perm = np.concatenate([self.elim, self.it])        # line order: position -> free unknown
        self.inv = np.empty_like(self.perm)
        self.inv[self.perm] = np.arange(self.n)
        self.last_iterations = 0
        self._current = None
        self._linear = None

    def structure_matrix(self) -> sp.csr_matrix:
        """The matrix the line structure stands for, in line order (``perm``): word-line tridiagonal,
        bit-line chains, coupling and its transpose. Equal to ``K[perm][:, perm]`` when ``K`` is exactly
        line-structured (:func:`_residual_lines` relies on that: its caller checks)."""
        ne, ni = self.elim.size, self.it.size
        d, e = np.asarray(self.A[0], float), np.asarray(self.Ae, float)
        Am = sp.diags([e, d, e], [-1, 0, 1], shape=(ne, ne), format="csr")
        links = np.flatnonzero(self.pred >= 0)
        Bm = sp.csr_matrix((np.concatenate([self.Bd, self.Be[links], self.Be[links]]),
                            (np.concatenate([np.arange(ni), links, self.pred[links]]),
                             np.concatenate([np.arange(ni), self.pred[links], links]))), shape=(ni, ni))
        M = sp.bmat([[Am, self.C], [self.C.T, Bm]], format="csr")
        M.eliminate_zeros()
        M.sort_indices()
        return M

    def residual_structure(self, K: sp.csr_matrix):
        """Arguments of :func:`_residual_lines` when ``K`` (line order) is exactly the line structure
        (:meth:`structure_matrix`, entry for entry) and the coupling is one-to-one; else None (the
        residual then multiplies by ``K`` as a sparse matrix)."""
        if self.one is None:
            return None
        M = self.structure_matrix()
        K = sp.csr_matrix(K)
        if M.shape != K.shape or (abs(M - K)).max() != 0:
            return None
        col, ent = self.one
        cval = np.zeros(col.size)
        cval[col >= 0] = self.C.data[ent[col >= 0]]
        row = np.empty(self.it.size, np.int64)
        row[col[col >= 0]] = np.flatnonzero(col >= 0)
        return (np.ascontiguousarray(self.A[0], dtype=float), self.Ae, np.ascontiguousarray(self.Bd, dtype=float),
                np.ascontiguousarray(self.Be, dtype=float), self.pred, self.succ, col, row, cval)

    # -- per-vector matrices -----------------------------------------------------------
    def factored(self, dg: np.ndarray, scratch: bool = False) -> "BatchFactors":
        """The matrices of a batch: ``dg`` (m, k) change of each cell's conductance per vector.
        ``scratch``: in the calling thread's reused arrays (no fresh 4 MB arrays to fault in); the
        thread's previous scratch factors are then overwritten, and solving with them raises."""
        return BatchFactors(self, dg, scratch)

    def linear(self) -> "BatchFactors":
        """The batch of matrices with no cell changed (``K`` for every vector), factored once and kept."""
        if self._linear is None:
            self._linear = self.factored(np.zeros((self.cell_entry.size, LANES)))
        return self._linear

    def factor(self, dg: np.ndarray) -> None:
        """Set the current batch's matrices (:meth:`factored`) for :meth:`solve` and :meth:`solve_lines`."""
        self._current = self.factored(dg)
        self.k = self._current.k

    def solve(self, rhs: np.ndarray, rtol=1e-10, max_iterations: int | None = None) -> np.ndarray:
        """Solutions (n, k) of the current batch's matrices for right-hand sides (n, k) in free order;
        ``rtol`` scalar or (k,); at most ``max_iterations`` (default :data:`MAX_ITERATIONS`) CG iterations."""
        k = self.k
        if rhs.shape[1] != k:
            raise ValueError(f"batched line solve: {k} right-hand sides expected, got {rhs.shape[1]}")
        rtol = _pad(np.broadcast_to(np.asarray(rtol, dtype=float), (k,))[None])[0]
        rhs = _pad(rhs)
        out = self.solve_lines(np.ascontiguousarray(rhs[self.perm]), rtol, max_iterations)
        return out[self.inv][:, :k]

    def solve_lines(self, rhs: np.ndarray, rtol, max_iterations: int | None = None) -> np.ndarray:
        """:meth:`BatchFactors.solve_lines` of the current batch; sets ``last_iterations``."""
        out, self.last_iterations = self._current.solve_lines(rhs, rtol, max_iterations)
        return out


class BatchFactors:
    """One batch's matrices on a :class:`LineBatch` structure: per-vector diagonals and couplings and the
    reciprocal pivots of every line's LDL^T (the multipliers ``L = e / D`` are formed on the fly from the
    shared wires ``e``: one array fewer to store and stream)."""

    def __init__(self, lb: LineBatch, dg: np.ndarray, scratch: bool = False):
        k = dg.shape[1]
        if not 0 < k <= LANES:
            raise ValueError(f"batched line solve: 1..{LANES} vectors per batch, got {k}")
        self.lb, self.k = lb, k
        dg = _pad(np.asarray(dg, dtype=float))
        shapes = (lb.A[0].size, lb.Bd.size, lb.C.data.size, lb.Bd.size)
        if scratch:
            da, db, cd, rdb = _scratch(shapes)
            self._generation = _local.generation
        else:
            da, db, cd, rdb = (np.empty((m, LANES)) for m in shapes)
            self._generation = None
        _spread(lb.A[0], lb.Bd, lb.C.data, da, db, cd)
        _cells(dg, lb.diag_e, lb.diag_i, lb.cell_entry, da, db, cd)
        self.db, self.cd = db, cd
        self.cdt = None if lb.fused else cd[lb.Ct[2]]           # the coupling's values in transposed order
        self.rda = _factor(da, lb.Ae, da)                       # da is not needed again: pivots in its place
        self.rdb = _factor_links(db, lb.Be, lb.pred, rdb)

    def solve_lines(self, rhs: np.ndarray, rtol, max_iterations: int | None = None,
                    out: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """Solutions in line order: rhs (n, LANES) C-contiguous with the unknowns ordered ``perm``
        (eliminated family along its chains, then the iterated one); ``rtol`` (LANES,). A right-hand
        side of zeros gives zeros without iterating. ``out``: (n, LANES) array for the solution (not
        ``rhs``), else a new one. Returns ((n, LANES) line order, CG iterations). The iteration's own
        arrays are the calling thread's :func:`_workspace` (reused: a fresh 4 MB array costs its page
        faults on first touch)."""
        lb = self.lb
        if self._generation is not None and self._generation != getattr(_local, "generation", None):
            raise RuntimeError("batched line solve: these scratch factors were overwritten by newer ones")
        if max_iterations is None:
            max_iterations = MAX_ITERATIONS
        ne = lb.elim.size
        if out is None:
            out = np.empty((lb.n, LANES))
        g, z, p, q, t = _workspace(lb.n - ne, ne)
        y = out[:ne]
        xb = out[ne:]
        xb[...] = 0.0
        res = g
        if lb.fused:                                            # the same, fewer passes
            _start_fused(lb.one[0], lb.one[1], self.cd, lb.Ae, self.rda, rhs[:ne], rhs[ne:], y, g)
            _links_forward(self.rdb, lb.Be, lb.pred, g, z)
            rz = _cg_precond_back(lb.Be, self.rdb, lb.succ, res, z)
        else:
            _tsolve_kernel(self.rda, lb.Ae, rhs[:ne], y)        # A^-1 f_a
            _cmul_from(*lb.Ct, self.cd, rhs[ne:], y, g)         # g = f_b - C^T A^-1 f_a
            _tsolve_links(self.rdb, lb.Be, lb.pred, lb.succ, g, z)
            rz = _coldot(res, z)
        target = rtol * np.sqrt(np.maximum(rz, 0.0))
        if not lb.fused:
            p[...] = z
        its = 0
        active = np.sqrt(np.maximum(rz, 0.0)) > target
        beta = np.zeros(LANES)
        while active.any():
            if its >= max_iterations:
                raise NotLineStructured(f"batched line solve: conjugate gradients did not converge in {its} "
                                        "iterations")
            if lb.fused:                                        # p = z + beta p folded into the Schur product
                col, ent = lb.one
                _cg_forward(col, ent, self.cd, lb.Ae, self.rda, z, beta, its == 0, p, t)
                pq = _cg_backward(col, ent, self.cd, lb.Ae, self.rda, self.db, lb.Be, lb.pred, lb.succ, p, t, q)
            else:
                if its:
                    _xpby(z, beta, p)                           # p = z + beta p
                pq = self._schur(p, t, q)
            alpha = np.where(active & (pq > 0), rz / np.where(pq > 0, pq, 1.0), 0.0)
            if lb.fused:                                        # xb += alpha p, res -= alpha q, z = B^-1 res
                _cg_update(alpha, lb.Be, self.rdb, lb.pred, p, q, xb, res, z)
                rz_new = _cg_precond_back(lb.Be, self.rdb, lb.succ, res, z)
            else:
                _axpy2(alpha, p, q, xb, res, z)                 # xb += alpha p, res -= alpha q, z = res
                _tsolve_links(self.rdb, lb.Be, lb.pred, lb.succ, z, z)
                rz_new = _coldot(res, z)
            beta = np.where(active & (rz > 0), rz_new / np.where(rz > 0, rz, 1.0), 0.0)
            rz = np.where(active, rz_new, rz)
            active = active & (np.sqrt(np.maximum(rz, 0.0)) > target)
            its += 1
        if lb.fused:                                            # y -= A^-1 C xb
            _finish_fused(lb.one[0], lb.one[1], self.cd, lb.Ae, self.rda, xb, t, y)
        else:
            _cset(*lb.Cs, self.cd, xb, t)
            _tsolve_kernel(self.rda, lb.Ae, t, t)
            y -= t
        return out, its

    def _schur(self, p, t, q):
        """``q = S p = B p - C^T A^-1 C p`` (all vectors); returns ``p.q`` per vector."""
        lb = self.lb
        _cset(*lb.Cs, self.cd, p, t)
        _tsolve_kernel(self.rda, lb.Ae, t, t)
        return _bq(self.db, lb.Be, lb.pred, lb.succ, *lb.Ctt, self.cdt, t, p, q)


_local = threading.local()


def _workspace(ni: int, ne: int) -> tuple[np.ndarray, ...]:
    """The calling thread's arrays for one conjugate-gradient solve: four (ni, LANES) (residual,
    preconditioned residual, direction, Schur product) and one (ne, LANES); reused by its next solve."""
    ws = getattr(_local, "ws", None)
    if ws is None or ws[0].shape[0] != ni or ws[4].shape[0] != ne:
        ws = tuple(np.empty((m, LANES)) for m in (ni, ni, ni, ni, ne))
        _local.ws = ws
    return ws


def _scratch(shapes: tuple) -> tuple[np.ndarray, ...]:
    """The calling thread's arrays for scratch factors ((m, LANES) per entry of ``shapes``), reused; each
    call starts a new generation (the previous scratch factors are no longer valid)."""
    fs = getattr(_local, "factors", None)
    if fs is None or tuple(a.shape[0] for a in fs) != tuple(shapes):
        fs = tuple(np.empty((m, LANES)) for m in shapes)
        _local.factors = fs
    _local.generation = getattr(_local, "generation", 0) + 1
    return fs


def _pad(a: np.ndarray) -> np.ndarray:
    """(n, k) -> (n, LANES) C-contiguous, the last column repeated."""
    k = a.shape[1]
    if k == LANES:
        return np.ascontiguousarray(a)
    return np.ascontiguousarray(np.concatenate([a, np.repeat(a[:, -1:], LANES - k, axis=1)], axis=1))


# -- kernels: arrays (n, LANES), inner loops over the vectors (compile-time width) ----------------

@njit(cache=True, nogil=True)
def _spread(a, b, c, oa, ob, oc):
    """The base diagonals and coupling values repeated over the vectors into (n, LANES) arrays."""
    for i in range(a.size):
        for j in range(LANES):
            oa[i, j] = a[i]
    for i in range(b.size):
        for j in range(LANES):
            ob[i, j] = b[i]
    for i in range(c.size):
        for j in range(LANES):
            oc[i, j] = c[i]
    return oa, ob, oc


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _factor(d, e, rd):
    """LDL^T of tridiagonal matrices (diagonal d (n, LANES), shared off-diagonal e (n-1,)): the reciprocal
    pivots 1/D (n, LANES) into ``rd`` (may be ``d`` itself); the multipliers are L[i+1, i] = e[i] / D[i]."""
    n = d.shape[0]
    if n == 0:
        return rd
    for j in range(LANES):
        rd[0, j] = 1.0 / d[0, j]
    for i in range(1, n):
        ei = e[i - 1]
        for j in range(LANES):
            rd[i, j] = 1.0 / (d[i, j] - ei * ei * rd[i - 1, j])
    return rd


@njit(cache=True, nogil=True)
def _tsolve_kernel(rd, e, b, x):
    """``x = A^-1 b`` with the pivots of :func:`_factor` (forward ``x[i] = b[i] - e[i-1]/D[i-1] x[i-1]``,
    then ``x[i] = (x[i] - e[i] x[i+1]) / D[i]``); ``b`` may be ``x`` (in place)."""
    n = x.shape[0]
    if n == 0:
        return
    for j in range(LANES):
        x[0, j] = b[0, j]
    for i in range(1, n):
        ei = e[i - 1]
        for j in range(LANES):
            x[i, j] = b[i, j] - ei * rd[i - 1, j] * x[i - 1, j]
    for j in range(LANES):
        x[n - 1, j] *= rd[n - 1, j]
    for i in range(n - 2, -1, -1):
        ei = e[i]
        for j in range(LANES):
            x[i, j] = rd[i, j] * (x[i, j] - ei * x[i + 1, j])


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _cmul_from(indptr, indices, dix, data, f, x, out):
    """``out = f - M x`` (as :func:`_cmul`)."""
    nr = indptr.size - 1
    for r in range(nr):
        for j in range(LANES):
            out[r, j] = f[r, j]
        for q in range(indptr[r], indptr[r + 1]):
            c = indices[q]
            d = dix[q]
            for j in range(LANES):
                out[r, j] -= data[d, j] * x[c, j]


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _factor_links(d, e, pred, rd):
    """LDL^T of chains given as predecessor links (every predecessor earlier in the order): the reciprocal
    pivots 1/D into ``rd`` (may be ``d``); the multipliers are L[i, pred[i]] = e[i] / D[pred[i]]."""
    n = d.shape[0]
    for i in range(n):
        a = pred[i]
        if a >= 0:
            ei = e[i]
            for j in range(LANES):
                rd[i, j] = 1.0 / (d[i, j] - ei * ei * rd[a, j])
        else:
            for j in range(LANES):
                rd[i, j] = 1.0 / d[i, j]
    return rd


@njit(cache=True, nogil=True)
def _tsolve_links(rd, e, pred, succ, b, x):
    """``x = B^-1 b`` with the pivots of :func:`_factor_links`; ``b`` may be ``x`` (in place)."""
    n = x.shape[0]
    for i in range(n):
        a = pred[i]
        if a >= 0:
            ei = e[i]
            for j in range(LANES):
                x[i, j] = b[i, j] - ei * rd[a, j] * x[a, j]
        else:
            for j in range(LANES):
                x[i, j] = b[i, j]
    for i in range(n - 1, -1, -1):
        b = succ[i]
        if b >= 0:
            eb = e[b]
            for j in range(LANES):
                x[i, j] = rd[i, j] * (x[i, j] - eb * x[b, j])
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


@njit(cache=True, nogil=True)
def _coldot(a, b):
    n = a.shape[0]
    out = np.zeros(LANES)
    for i in range(n):
        for j in range(LANES):
            out[j] += a[i, j] * b[i, j]
    return out


@njit(cache=True, nogil=True)
def _axpy2(alpha, p, q, x, r, z):
    """``x += alpha p``, ``r -= alpha q``, ``z = r``."""
    n = p.shape[0]
    for i in range(n):
        for j in range(LANES):
            x[i, j] += alpha[j] * p[i, j]
            r[i, j] -= alpha[j] * q[i, j]
            z[i, j] = r[i, j]


@njit(cache=True, nogil=True)
def _xpby(z, beta, p):
    n = p.shape[0]
    for i in range(n):
        for j in range(LANES):
            p[i, j] = z[i, j] + beta[j] * p[i, j]


def _one_to_one(C) -> tuple[np.ndarray, np.ndarray] | None:
    """``(col, entry)`` per eliminated unknown (row of ``C``): the one iterated unknown it couples to and
    the index of that entry in ``C.data`` (-1, -1: none), when every iterated unknown couples to exactly
    one eliminated unknown and every eliminated unknown to at most one (a 1R array: a cell joins word-line
    node (i, j) and bit-line node (i, j)); else None (the general kernels apply)."""
    C = sp.csr_matrix(C)
    per_row = np.diff(C.indptr)
    if per_row.max(initial=0) > 1 or C.nnz != C.shape[1]:
        return None
    if not np.array_equal(np.bincount(C.indices, minlength=C.shape[1]), np.ones(C.shape[1], np.int64)):
        return None
    col = np.full(C.shape[0], -1, np.int64)
    ent = np.full(C.shape[0], -1, np.int64)
    rows = np.flatnonzero(per_row)
    col[rows] = C.indices[C.indptr[rows]]
    ent[rows] = C.indptr[rows]
    return col, ent


# -- fused conjugate-gradient kernels for a one-to-one coupling (``_one_to_one``): one iteration in four
# passes over the unknowns instead of nine (each pass streams (n, LANES) arrays from memory) ------------

@njit(cache=True, nogil=True)
def _cg_forward(col, ent, cd, e, rd, z, beta, first, p, t):
    """``p = z + beta p`` (``first``: ``p = z``) and the forward sweep of ``t = A^-1 C p``: each iterated
    unknown is updated when its (only) coupling row is reached."""
    ne = t.shape[0]
    for r in range(ne):
        c = col[r]
        if c >= 0:
            s = ent[r]
            for j in range(LANES):
                pc = z[c, j] if first else z[c, j] + beta[j] * p[c, j]
                p[c, j] = pc
                t[r, j] = cd[s, j] * pc
        else:
            for j in range(LANES):
                t[r, j] = 0.0
        if r > 0:
            er = e[r - 1]
            for j in range(LANES):
                t[r, j] -= er * rd[r - 1, j] * t[r - 1, j]


@njit(cache=True, nogil=True)
def _cg_backward(col, ent, cd, e, rd, db, eb, pred, succ, p, t, q):
    """The backward sweep of ``t = A^-1 C p`` and ``q = B p - C^T t`` as each ``t`` is reached; returns
    ``p.q`` per vector. ``t`` is left holding the forward sweep (only the running value is needed). A
    missing chain neighbour is read as the node itself with a zero wire (no branch in the lane loops:
    measured ~15 % faster than branching)."""
    ne = t.shape[0]
    pq = np.zeros(LANES)
    tn = np.zeros(LANES)
    for r in range(ne - 1, -1, -1):
        er = e[r] if r < ne - 1 else 0.0
        for j in range(LANES):
            tn[j] = rd[r, j] * (t[r, j] - er * tn[j])
        c = col[r]
        if c >= 0:
            s = ent[r]
            a = pred[c]
            b = succ[c]
            ea = eb[c] if a >= 0 else 0.0
            es = eb[b] if b >= 0 else 0.0
            a = a if a >= 0 else c
            b = b if b >= 0 else c
            for j in range(LANES):
                qc = db[c, j] * p[c, j] - cd[s, j] * tn[j] + ea * p[a, j] + es * p[b, j]
                q[c, j] = qc
                pq[j] += p[c, j] * qc
    return pq


@njit(cache=True, nogil=True)
def _start_fused(col, ent, cd, e, rd, fa, fb, y, g):
    """``y = A^-1 fa`` and, as each ``y`` is final, ``g = fb - C^T y`` (one-to-one coupling: every
    iterated unknown is reached once)."""
    ne = y.shape[0]
    if ne == 0:
        return
    for j in range(LANES):
        y[0, j] = fa[0, j]
    for r in range(1, ne):
        er = e[r - 1]
        for j in range(LANES):
            y[r, j] = fa[r, j] - er * rd[r - 1, j] * y[r - 1, j]
    for r in range(ne - 1, -1, -1):
        if r == ne - 1:
            for j in range(LANES):
                y[r, j] *= rd[r, j]
        else:
            er = e[r]
            for j in range(LANES):
                y[r, j] = rd[r, j] * (y[r, j] - er * y[r + 1, j])
        c = col[r]
        if c >= 0:
            s = ent[r]
            for j in range(LANES):
                g[c, j] = fb[c, j] - cd[s, j] * y[r, j]


@njit(cache=True, nogil=True)
def _links_forward(rd, e, pred, b, x):
    """The forward sweep of ``x = B^-1 b`` (:func:`_tsolve_links`' first half)."""
    n = x.shape[0]
    for i in range(n):
        a = pred[i]
        if a >= 0:
            ei = e[i]
            for j in range(LANES):
                x[i, j] = b[i, j] - ei * rd[a, j] * x[a, j]
        else:
            for j in range(LANES):
                x[i, j] = b[i, j]


@njit(cache=True, nogil=True)
def _finish_fused(col, ent, cd, e, rd, xb, t, y):
    """``y -= A^-1 C xb`` (``t``: the forward sweep's storage)."""
    ne = y.shape[0]
    if ne == 0:
        return
    for r in range(ne):
        c = col[r]
        if c >= 0:
            s = ent[r]
            for j in range(LANES):
                t[r, j] = cd[s, j] * xb[c, j]
        else:
            for j in range(LANES):
                t[r, j] = 0.0
        if r > 0:
            er = e[r - 1]
            for j in range(LANES):
                t[r, j] -= er * rd[r - 1, j] * t[r - 1, j]
    tn = np.zeros(LANES)
    for r in range(ne - 1, -1, -1):
        er = e[r] if r < ne - 1 else 0.0
        for j in range(LANES):
            tn[j] = rd[r, j] * (t[r, j] - er * tn[j])
            y[r, j] -= tn[j]


@njit(cache=True, nogil=True)
def _cg_update(alpha, e, rd, pred, p, q, x, r, z):
    """``x += alpha p``, ``r -= alpha q`` and the forward sweep of ``z = B^-1 r`` (predecessors first)."""
    n = p.shape[0]
    for i in range(n):
        for j in range(LANES):
            x[i, j] += alpha[j] * p[i, j]
            r[i, j] -= alpha[j] * q[i, j]
        a = pred[i]
        if a >= 0:
            ei = e[i]
            for j in range(LANES):
                z[i, j] = r[i, j] - ei * rd[a, j] * z[a, j]
        else:
            for j in range(LANES):
                z[i, j] = r[i, j]


@njit(cache=True, nogil=True)
def _cg_precond_back(e, rd, succ, r, z):
    """The backward sweep of ``z = B^-1 r``; returns ``r.z`` per vector."""
    n = z.shape[0]
    rz = np.zeros(LANES)
    for i in range(n - 1, -1, -1):
        b = succ[i]
        if b >= 0:
            eb = e[b]
            for j in range(LANES):
                z[i, j] = rd[i, j] * (z[i, j] - eb * z[b, j])
        else:
            for j in range(LANES):
                z[i, j] *= rd[i, j]
        for j in range(LANES):
            rz[j] += r[i, j] * z[i, j]
    return rz


@njit(cache=True, nogil=True)
def _newton_step(y, dy, reltol, atol, out):
    """``out = y - dy`` and per column ``max_i |dy| / (reltol max(|out|, |y|) + atol_i)`` (as
    the engine's Newton criterion, ``<= 1``: converged); returns (norms, all entries of dy finite)."""
    n = y.shape[0]
    norm = np.zeros(LANES)
    finite = True
    for i in range(n):
        a = atol[i]
        for j in range(LANES):
            d = dy[i, j]
            if not np.isfinite(d):
                finite = False
            yn = y[i, j] - d
            out[i, j] = yn
            s = reltol * max(abs(yn), abs(y[i, j])) + a
            r = abs(d) / s
            if r > norm[j] or r != r:
                norm[j] = r
    return norm, finite


@njit(cache=True, nogil=True)
def _fd_points(v, h, vh):
    """Forward-difference steps ``h = 1e-6 max(|v|, 1e-3)`` and points ``vh = v + h`` (m, LANES)."""
    m = v.shape[0]
    for c in range(m):
        for j in range(LANES):
            hc = 1e-6 * max(abs(v[c, j]), 1e-3)
            h[c, j] = hc
            vh[c, j] = v[c, j] + hc


@njit(cache=True, nogil=True)
def _fd_change(i, ih, h, gd, out):
    """``out = (ih - i) / h - gd``: the forward-difference conductance's change from ``gd`` (m,)."""
    m = i.shape[0]
    for c in range(m):
        g = gd[c]
        for j in range(LANES):
            out[c, j] = (ih[c, j] - i[c, j]) / h[c, j] - g


@njit(cache=True, nogil=True)
def _secant_change(i, i0, v, v0, gd, dg0):
    """Largest relative change of a cell's conductance from ``g0 = gd + dg0`` at ``v0`` to ``v``, estimated
    by the secant: ``I(v) - I(v0) - g0 (v - v0) ~ (g - g0)(v - v0) / 2`` (cells with ``v == v0``: none);
    inf if such a ``g0`` is not positive or a value is not finite."""
    m = i.shape[0]
    worst = 0.0
    for c in range(m):
        for j in range(LANES):
            dv = v[c, j] - v0[c, j]
            if dv == 0.0:
                continue
            g0 = gd[c] + dg0[c, j]
            if not g0 > 0.0:
                return np.inf
            r = 2.0 * abs(i[c, j] - i0[c, j] - g0 * dv) / (g0 * abs(dv))
            if not r <= worst:
                if r != r:
                    return np.inf
                worst = r
    return worst


@njit(cache=True, nogil=True)
def _secant_update(i, i0, v, v0, gd, dg0, out):
    """``out = dg0 + 2 (I(v) - I(v0) - g0 (v - v0)) / (v - v0)``, ``g0 = gd + dg0``: the conductance
    change at ``v`` estimated from the secant (second order in ``v - v0``); ``dg0`` where ``v == v0``."""
    m = i.shape[0]
    for c in range(m):
        for j in range(LANES):
            dv = v[c, j] - v0[c, j]
            if dv == 0.0:
                out[c, j] = dg0[c, j]
            else:
                g0 = gd[c] + dg0[c, j]
                out[c, j] = dg0[c, j] + 2.0 * (i[c, j] - i0[c, j] - g0 * dv) / dv


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _residual_lines(ad, ae, bd, be, pred, succ, col, row, cval, y, rhs, out):
    """``out = K y - rhs`` for ``K`` given by its line structure (word-line diagonal ``ad``, wires ``ae``;
    bit-line diagonal ``bd``, wires ``be`` to the predecessor; a one-to-one coupling: eliminated unknown
    ``r`` to iterated ``col[r]`` with value ``cval[r]``, ``row`` its inverse): streams the arrays instead
    of gathering through a sparse matrix's indices."""
    ne = ad.size
    ni = bd.size
    for r in range(ne):
        a = ad[r]
        for j in range(LANES):
            out[r, j] = a * y[r, j] - rhs[r, j]
        if r > 0:
            w = ae[r - 1]
            for j in range(LANES):
                out[r, j] += w * y[r - 1, j]
        if r < ne - 1:
            w = ae[r]
            for j in range(LANES):
                out[r, j] += w * y[r + 1, j]
        c = col[r]
        if c >= 0:
            w = cval[r]
            for j in range(LANES):
                out[r, j] += w * y[ne + c, j]
    for c in range(ni):
        o = ne + c
        b = bd[c]
        for j in range(LANES):
            out[o, j] = b * y[o, j] - rhs[o, j]
        a = pred[c]
        if a >= 0:
            w = be[c]
            for j in range(LANES):
                out[o, j] += w * y[ne + a, j]
        a = succ[c]
        if a >= 0:
            w = be[a]
            for j in range(LANES):
                out[o, j] += w * y[ne + a, j]
        r = row[c]
        w = cval[r]
        for j in range(LANES):
            out[o, j] += w * y[r, j]


@njit(cache=True, nogil=True)
def _residual_cells(i, vd, gd, off, tp, tn, done, out):
    """Adds the cells' deviation ``i - (gd vd + off)`` at ``tp`` (leaving) and ``tn`` (entering) to
    ``out`` (rows >= 0 only), zeroes the lanes marked ``done``; returns each column's 2-norm."""
    n = out.shape[0]
    for c in range(tp.size):
        a, b = tp[c], tn[c]
        g, o = gd[c], off[c]
        if a >= 0:
            for j in range(LANES):
                out[a, j] += i[c, j] - (g * vd[c, j] + o)
        if b >= 0:
            for j in range(LANES):
                out[b, j] -= i[c, j] - (g * vd[c, j] + o)
    norm = np.zeros(LANES)
    for r in range(n):
        for j in range(LANES):
            if done[j]:
                out[r, j] = 0.0
            norm[j] += out[r, j] * out[r, j]
    return np.sqrt(norm)


@njit(cache=True, nogil=True)
def _residual_sparse(indptr, indices, data, y, rhs, out):
    """``out = K y - rhs`` from the sparse nodal matrix (csr arrays): the general form of
    :func:`_residual_lines`; :func:`_residual_cells` then adds the cells."""
    n = indptr.size - 1
    for r in range(n):
        for j in range(LANES):
            out[r, j] = -rhs[r, j]
        for q in range(indptr[r], indptr[r + 1]):
            c = indices[q]
            v = data[q]
            for j in range(LANES):
                out[r, j] += v * y[c, j]
