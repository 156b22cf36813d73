"""Iterative solver for crossbar nodal systems: conjugate gradients preconditioned by exact line solves.

After the ideal sources are eliminated (row drivers, column virtual grounds;
see ``reads.py``), the DC system of a 1R crossbar with wire resistance is a
symmetric positive definite conductance matrix over two *families* of
unknowns: word-line nodes (with the driver nodes in front of them) and
bit-line nodes (with the sense nodes behind them). Inside a family the
wires make disjoint *chains* (every line a path: tridiagonal), and the only
coupling between the families is the cells' conductance ``C`` (for a 1R
array with wires, one cell per word-line/bit-line node pair: diagonal)::

    K = [ A    C ]     A: word-line chains, cell conductances on the diagonal
        [ C^T  B ]     B: bit-line chains, likewise; C <= 0 the cells (and any wire joining the families)

:class:`LineSystem` orders each family along its chains, so ``A`` and ``B``
are each *one* tridiagonal matrix (zero couplings between consecutive
lines), factors both once (LAPACK ``pttrf``, O(n)), eliminates the larger
family exactly and runs preconditioned conjugate gradients on the Schur
complement of the other::

    S = B - C^T A^-1 C,   preconditioner B^-1 (all lines of the family at once)

Every application of ``S`` is one tridiagonal solve per family plus two
sparse products with ``C`` -- O(n), vectorised over all lines. The line
preconditioner alone (block Jacobi on the 2x2 structure) leaves the
eigenvalues of ``B^-1 S`` at ``1 - s_k^2`` (``s_k`` the singular values of
the scaled coupling): fine while the wires are much more conductive than the
cells, but when they are comparable (1 ohm wires, 50 ohm..1 kohm cells) the
smooth mode in which both families move together across the whole array --
the IR drop -- has an eigenvalue falling like ``1/n^2`` (measured 0.26,
0.082, 0.023 at 64, 128, 256 lines), and the iterations grow with the line
length (11, 17, 30, 55, 103 at 64..1024).

Hence a *two-level* preconditioner (:meth:`LineSystem._precondition`): the
line solve as smoother, before and after a coarse correction on patches of
``COARSE_BLOCK`` x ``COARSE_BLOCK`` cells (each iterated unknown joins the
patch of its line and of the line its cell reaches; each eliminated one the
patch of its cell partner). The coarse matrix is the Galerkin product
``W^T K W`` of the full system over both families (assembled from the line
blocks and ``C``, about ``(n/4)^2`` unknowns, five-point sparse, factored
once with SuperLU); it bounds ``Z^T S Z`` from above, so the symmetric
smooth/correct/smooth cycle is an SPD preconditioner and CG stays exact to
``rtol``. It costs three ``S`` products per iteration instead of one and
brings the iterations down to 7, 11, 16, 19, 21 (64..1024). Measured on
16..512 with 1, 2.5 and 10 ohm wires and cells all near one state, the other
or mixed: at most 22 iterations, where the lines alone need up to 294.

Where the lines alone converge in a few tens of iterations (small arrays)
the coarse space would not pay for itself, so by default a solve starts with
the lines alone and decides after :data:`SWITCH_PROBE` iterations, from the
residual's reduction so far, whether they would need more than
:data:`SWITCH_LINE_ITERATIONS`; if so it builds the coarse space (once per
system) and restarts CG two-level from the current iterate (1024x1024: 10 +
19 iterations). ``coarse_block=k`` in :meth:`LineSystem.build` forces
two-level from the start, ``coarse_block=0`` the lines alone.

Why the cycle is SPD: ``B - S = C^T A^-1 C >= 0`` puts the eigenvalues of
``B^-1 S`` in (0, 1], and ``E >= Z^T S Z`` (``Z^T S Z`` minimises the energy
over the eliminated family, ``E`` takes it block-constant) puts those of
``Z E^-1 Z^T S`` in [0, 1]; the cycle's error operator ``(I - B^-1 S)(I -
Z E^-1 Z^T S)(I - B^-1 S)`` is then S-self-adjoint with spectrum in [0, 1),
and ``M^-1 = (I - that) S^-1`` is SPD.

Speed (systems from :data:`COMPILED_MIN_UNKNOWNS` unknowns): the set-up's
scan of the matrix and the chain walk, and every vector operation of the
CG loop, run as small numba kernels, the CG vectors kept in an
*interleaved* layout (lines of a family in groups of :data:`LANES`, entry
``i`` of the group's lines side by side: the line recurrences run side by
side and the gathers through ``C`` reuse cache lines; see ``_Interleaved``).
Measured at 1024x1024 on a shared 2-core machine: a Schur product 55 ms by
scipy/LAPACK against ~11 ms, the solve 5.4 s against 3.0 s (29 iterations
either way, column currents equal to 4e-15). Smaller systems keep
numpy/scipy/LAPACK: numba's start-up in a process (~0.5 s import, ~0.4 s
first call) outweighs the kernels there. The arithmetic is the same in
both (same terms, apart from multiplying by reciprocals of the pivots in
the line solves and the order of the dot products' sums), so answers agree
to rounding.

Structure is *found*, not assumed: the caller only seeds which unknowns are
word-line and bit-line nodes; the rest (driver, sense nodes) join the family
their wires reach. :meth:`LineSystem.build` raises :class:`NotLineStructured`
with the reason when the matrix is not of this kind (not symmetric, not a
diagonally dominant M-matrix, a component without a path to a source, a
wire joining the families' chains into one, a node with three wires, a loop),
so callers fall back to a direct solve.

Convergence: iterate until ``sqrt(r.z) <= rtol * sqrt(g.B^-1 g)`` for every
right-hand side, where ``r`` is the KCL residual (A) on the iterated family
(the eliminated one is exact), ``z = B^-1 r`` and ``g`` the reduced
right-hand side (the residual of the ideal start, iterated lines at 0 V):
the preconditioned residual norm, relative to the problem's own scale, so the
criterion does not depend on units or on a warm start.
"""
from __future__ import annotations

import contextlib
import functools
import os
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import lapack
from scipy.sparse import csgraph

#: default relative preconditioned residual (see the module docstring); measured on 8x8..256x256
#: crossbars it leaves column currents within ~3e-11 relative of a direct sparse solve (30 iterations at 256x256)
RTOL = 1e-10
#: iteration cap per solve (a working preconditioner needs tens; reaching it means the system is not
#: what the analysis assumes, and callers fall back to a direct solve)
MAX_ITERATIONS = 2000
#: side (in lines) of the cell patches that make the coarse space of the two-level preconditioner;
#: measured on 64..1024 square crossbars (1 ohm wires, 50 ohm..1 kohm cells), 4 keeps the iteration
#: count nearly flat at a coarse matrix of (n/4)^2 unknowns (sparse, factored once)
COARSE_BLOCK = 4
#: by default the lines alone iterate first (one Schur product per iteration, a third of a two-level
#: iteration). After SWITCH_PROBE iterations the residual's mean reduction per iteration predicts how
#: many the lines alone would need; above SWITCH_LINE_ITERATIONS (about three times the ~20 a
#: two-level solve takes, measured) -- or on reaching that many anyway -- the coarse space is built (once
#: per system) and CG restarts two-level from the current iterate. Small arrays (64x64: 11
#: iterations) never pay for the coarse space.
SWITCH_PROBE = 10
SWITCH_LINE_ITERATIONS = 60
#: systems from this many unknowns use the compiled (numba) set-up and CG kernels, smaller ones numpy,
#: scipy and LAPACK: numba's start-up in a process (~0.5 s import, ~0.4 s first call, measured on a
#: shared 2-core machine) is not won back below: 512x512 (5.2e5 unknowns) breaks even in a fresh
#: process (1.3 s either way), 1024x1024 (2.1e6) saves 2.4 s. ``LineSystem.compiled`` records the choice.
COMPILED_MIN_UNKNOWNS = 1_000_000


@functools.lru_cache(maxsize=1)
def _hugepage_stalls() -> bool:
    """Whether the kernel compacts memory synchronously for ``madvise(MADV_HUGEPAGE)`` regions (transparent
    huge pages with ``defrag`` = ``always`` or ``madvise``, e.g. Debian's default) and numpy asks for it."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:          # the user chose: leave it
        return False
    try:
        with open("/sys/kernel/mm/transparent_hugepage/defrag") as f:
            defrag = f.read()
    except OSError:
        return False
    return "[always]" in defrag or "[madvise]" in defrag


@contextlib.contextmanager
def small_pages():
    """Large temporaries on ordinary pages for the duration (numpy's hugepage ``madvise`` off, restored after).

    Set-up of a 1024x1024 crossbar allocates about 1 GB of short-lived index and value arrays; numpy
    marks each for huge pages, and where the kernel then compacts memory at first touch that costs more
    than the arithmetic (measured: 1.3..1.9 s of system time in ``LinearReads._assemble`` against
    0.3..0.5 s on ordinary pages). Process-wide while active; a no-op where the kernel does not stall,
    where numpy lacks the switch, or where ``NUMPY_MADVISE_HUGEPAGE`` is set.
    """
    multiarray = getattr(getattr(np, "_core", None), "multiarray", None)
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is None or not _hugepage_stalls():
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


#: the compiled kernels (plain Python functions until :func:`_compile` replaces them by numba's)
_KERNELS = ("_k_tri_solve", "_k_csr", "_k_single", "_k_schur_finish_single", "_k_schur_finish", "_k_cg_step",
            "_k_restrict", "_k_prolong", "_split_edges", "_walk_chains")
_compiled = False


def _compile() -> None:
    """Replace the kernels by numba-compiled versions (cached on disk), on first use: numba (~0.5 s to
    import, ~65 MB) stays out of processes that never solve a large system. Kernels calling kernels find
    the compiled ones (numba resolves globals when it compiles, after this)."""
    global _compiled
    if _compiled:
        return
    from numba import njit
    g = globals()
    for name in _KERNELS:
        g[name] = njit(cache=True)(g[name])
    _compiled = True


class NotLineStructured(ValueError):
    """The matrix is not two families of chains coupled by conductances; the message says why."""


class LineSystem:
    """``K`` (symmetric, n x n) as two families of chains; solve with :meth:`solve`.

    Build with :meth:`build`. Attributes: ``n_lines`` (chains per family),
    ``family`` (0/1 per unknown), ``reduced`` (the family CG iterates on),
    ``last_iterations`` after a solve.
    """

    def __init__(self, n, order, tri, coupling, reduced, family, n_lines, coarse=None):
        self.n = n
        self.order = order                  # (elim order, iter order): unknowns along the chains
        self.A, self.B = tri                # (d, e, df, ef) per family: tridiagonal and its factors
        self.C = coupling                   # csr (n_elim, n_iter), K[elim, iter] in chain order
        self.Ct = coupling.T.tocsr()
        self.reduced = reduced
        self.family = family
        self.n_lines = n_lines
        self.last_iterations = 0
        # two-level preconditioner (None: line preconditioner only): aggregate per iterated unknown,
        # restriction Z^T (csr, m x n_iter) and the factored coarse matrix W^T K W
        self.coarse = coarse
        self.coarse_size = 0 if coarse is None else coarse[1].shape[0]
        self.coarse_reason = None
        self.timings = {"lines": 0.0, "coarse": 0.0}   # seconds: line analysis, coarse space (when built)
        self.block = 0                      # patch side for the coarse space (0: never)
        self.switch_after = 0               # line-only iterations before deciding on the coarse space (0: use it)
        self._lines_of = None               # (line number per eliminated, per iterated unknown) for the patches
        self.last_line_iterations = 0       # of last_iterations, those with the lines alone
        self.compiled = False               # CG by the compiled kernels (else scipy/LAPACK); see COMPILED_MIN_UNKNOWNS
        self._fast = None                   # interleaved layouts and coupling of the CG loop (first solve)
        self._agg = None                    # the coarse aggregates in that layout
        self._scratch = {}                  # work arrays of the CG loop (``_work``), freed after a solve

    # -- construction -----------------------------------------------------------------
    @classmethod
    def build(cls, K: sp.spmatrix, seed: np.ndarray, symmetric: bool = False,
              coarse_block: int | None = None) -> "LineSystem":
        """Analyse ``K`` with ``seed`` (per unknown: 0 word line, 1 bit line, -1 unknown family).

        ``symmetric=True``: the caller guarantees symmetry (skips that check).
        ``coarse_block``: ``None`` (default) -- the lines alone first, the two-level preconditioner
        (patches of :data:`COARSE_BLOCK` lines) built and used once a solve needs more than
        :data:`SWITCH_AFTER` iterations; ``k > 0`` -- two-level from the start, patches of ``k``
        lines, built here; ``0`` -- the line preconditioner alone.
        Raises :class:`NotLineStructured` when the structure (or definiteness) is not there.
        """
        with small_pages():
            return cls._build(K, seed, symmetric, coarse_block)

    @classmethod
    def _build(cls, K, seed, symmetric, coarse_block) -> "LineSystem":
        start = time.perf_counter()
        K = sp.csr_matrix(K)
        if not K.has_canonical_format:
            K = K.copy()
            K.sum_duplicates()
        n = K.shape[0]
        seed = np.asarray(seed, dtype=np.int64)
        if K.shape != (n, n) or seed.shape != (n,):
            raise NotLineStructured("shape mismatch")
        diag = K.diagonal()
        if not symmetric and abs(K - K.T).max() > 1e-14 * max(abs(diag).max(initial=0.0), 1e-300):
            raise NotLineStructured("the matrix is not symmetric")
        # each edge once (upper triangle), split into wires and cross couplings, in one compiled pass
        # over the 8e6 entries of a 1024x1024 crossbar (numpy: ~0.5 s of masks and gathers)
        compiled = n >= COMPILED_MIN_UNKNOWNS
        if compiled:
            _compile()
            small = seed.size == 0 or (seed.min() >= -128 and seed.max() <= 127)    # int8: 2 MB, stays cached
            positive, rowsum, (iu, iv, iw), (cu, cv, cw), degree = _split_edges(
                K.indptr, K.indices, K.data, diag, seed.astype(np.int8) if small else seed)
        else:
            positive, rowsum, (iu, iv, iw), (cu, cv, cw), degree = _split_edges_numpy(K, diag, seed)
        if np.any(diag <= 0) or positive:
            raise NotLineStructured("not a conductance matrix (a non-positive diagonal or a negative conductance)")
        if np.any(rowsum < -1e-12 * diag):
            raise NotLineStructured("not diagonally dominant")
        # wire edges (iu, iv, iw: not between a seeded word-line and a seeded bit-line node) form the chains
        if degree.max(initial=0) > 2:
            raise NotLineStructured("a line node with more than two wire neighbours (not a chain)")
        order, chain, n_ch = (_chain_order if compiled else _chain_order_dfs)(n, iu, iv, degree)
        if iu.size != n - n_ch:
            raise NotLineStructured("a loop of wires (not a chain)")
        # families: a chain takes the family of its seeds (unseeded driver / sense nodes join their line)
        has = [np.bincount(chain[seed == f], minlength=n_ch) > 0 for f in (0, 1)]
        if np.any(has[0] & has[1]):
            raise NotLineStructured("a wire joins a word line and a bit line")
        if not np.all(has[0] | has[1]):
            raise NotLineStructured("unknowns outside the word and bit lines")
        chain_family = has[1].astype(np.int8)
        family = chain_family[chain]
        # every connected part needs a strictly dominant row (a path to a source), else K is singular
        links = sp.csr_matrix((np.ones(cu.size), (chain[cu], chain[cv])), shape=(n_ch, n_ch))
        n_comp, comp = csgraph.connected_components(links, directed=False)
        grounded = np.zeros(n_comp, bool)
        grounded[comp[chain[rowsum > 1e-12 * diag]]] = True
        if not grounded.all():
            raise NotLineStructured("a part of the network has no DC path to a source (singular)")
        n_lines = tuple(int(np.count_nonzero(chain_family == f)) for f in (0, 1))

        orders = [order[family[order] == f] for f in (0, 1)]
        # eliminate the larger family, iterate on the smaller (ties: the bit lines)
        reduced = 0 if orders[0].size < orders[1].size else 1
        elim, it = orders[1 - reduced], orders[reduced]
        pos = np.empty(n, np.int64)
        pos[elim] = np.arange(elim.size)
        pos[it] = np.arange(it.size)
        tri = []
        for fam, nodes in ((1 - reduced, elim), (reduced, it)):
            same = family[iu] == fam
            a, b = pos[iu[same]], pos[iv[same]]
            if np.any(np.abs(a - b) != 1):
                raise NotLineStructured("chain ordering failed")
            e = np.zeros(max(nodes.size - 1, 0))
            e[np.minimum(a, b)] = iw[same]                 # edges are unique (canonical matrix)
            d = diag[nodes]
            if nodes.size > 1:
                df, ef, info = lapack.dpttrf(d, e)
            else:                                          # LAPACK refuses a 1x1 (or empty) block
                df, ef, info = d.copy(), e.copy(), int(np.any(d <= 0))
            if info != 0:
                raise NotLineStructured("a line block is not positive definite")
            tri.append((d, e, df, ef))
        # coupling K[elim, iter], oriented (eliminated, iterated)
        swap = family[cu] == reduced
        rows = np.where(swap, cv, cu)
        cols = np.where(swap, cu, cv)
        coupling = sp.csr_matrix((cw, (pos[rows], pos[cols])), shape=(elim.size, it.size))
        self = cls(n, (elim, it), tri, coupling, reduced, family, n_lines)
        self.compiled = compiled
        self.timings["lines"] = time.perf_counter() - start
        self.block = COARSE_BLOCK if coarse_block is None else max(int(coarse_block), 0)
        self.switch_after = SWITCH_PROBE if coarse_block is None else 0
        if self.block > 0 and it.size:
            rank = np.empty(n_ch, np.int64)              # chain number within its family
            for f in (0, 1):
                sel = chain_family == f
                rank[sel] = np.arange(int(sel.sum()))
            self._lines_of = (rank[chain[elim]], rank[chain[it]])
            if self.switch_after == 0:
                self._build_coarse()
        else:
            self.coarse_reason = "disabled"
        return self

    def _build_coarse(self) -> None:
        """The coarse space of the two-level preconditioner (once; on failure the lines stay alone)."""
        if self.coarse is not None or self.coarse_reason is not None or self._lines_of is None:
            return
        start = time.perf_counter()
        try:
            with small_pages():
                self.coarse = _coarse_space(self, *self._lines_of, self.block)
            self.coarse_size = self.coarse[1].shape[0]
        except (RuntimeError, ValueError) as exc:     # a singular coarse matrix: keep the lines alone
            self.coarse_reason = f"coarse space unavailable: {exc}"
        self.timings["coarse"] = time.perf_counter() - start

    # -- solving ----------------------------------------------------------------------
    @staticmethod
    def _tri_solve(t, rhs, overwrite: bool = False):
        """``T^-1 rhs`` for a factored tridiagonal ``t``; ``overwrite``: ``rhs`` is a scratch array."""
        if rhs.shape[0] == 0:
            return rhs.copy()
        if rhs.shape[0] == 1:
            return rhs / t[2][0]
        x, info = lapack.dpttrs(t[2], t[3], rhs, overwrite_b=overwrite)
        return x

    @staticmethod
    def _tri_mul(t, x):
        d, e = t[0], t[1]
        y = d[:, None] * x if x.ndim == 2 else d * x
        if e.size:
            ee = e[:, None] if x.ndim == 2 else e
            y[:-1] += ee * x[1:]
            y[1:] += ee * x[:-1]
        return y

    def _layout(self):
        """The CG loop's layouts of both families and the coupling in them: interleaved (built on the first
        solve) when :attr:`compiled`, else chain order itself (:class:`_Plain`)."""
        if not self.compiled:
            return _Plain(self.C.shape[0]), _Plain(self.C.shape[1]), None, None
        if self._fast is None:
            _compile()
            with small_pages():
                la, lb = _Interleaved(self.A), _Interleaved(self.B)
                self._fast = (la, lb, _interleaved_coupling(self.C, la, lb), _interleaved_coupling(self.Ct, lb, la))
        return self._fast

    def solve(self, rhs: np.ndarray, x0: np.ndarray | None = None, rtol: float = RTOL,
              max_iterations: int = MAX_ITERATIONS) -> np.ndarray:
        """Solution of ``K x = rhs`` (rhs (n,) or (n, k)); ``x0``: start on the iterated family (full vector).

        All ``k`` right-hand sides iterate together until every one meets ``rtol`` (the compiled
        kernels take them one after the other, in the interleaved layout: see ``_Interleaved``). After
        the solve: ``last_iterations`` (all), ``last_line_iterations`` (of them, with the lines alone
        before the switch to two-level, see :data:`SWITCH_PROBE`).
        Raises :class:`NotLineStructured` if CG does not reach ``rtol`` within ``max_iterations``.
        One solve at a time per system (its work arrays are kept on it during a solve).
        """
        one = rhs.ndim == 1
        f = rhs[:, None] if one else rhs
        f = np.asarray(f, dtype=float)
        elim, it = self.order
        fa, fb = f[elim], f[it]
        y = self._tri_solve(self.A, fa, overwrite=True)     # A^-1 f_a (fa is a copy)
        self.last_iterations = self.last_line_iterations = 0
        if it.size == 0:
            xa, xb = y, fb
        else:
            la, lb, _, _ = self._layout()
            g = lb.to(fb - self.Ct @ y)                     # reduced right-hand side, (k, padded)
            if x0 is None:
                xb = np.zeros_like(g)
                res = g.copy()
            else:
                x0 = x0[:, None] if x0.ndim == 1 else x0
                xb = lb.to(np.asarray(x0[it], dtype=float))
                res = g - self._schur(xb)
            target = rtol * np.sqrt(np.maximum(_dots(g, self._smooth(g)), 0.0))
            zb = self._smooth(res)                          # B^-1 r: the convergence measure (and smoother)
            rb = rb0 = _dots(res, zb)
            two_level = self.coarse is not None and self.switch_after == 0
            decide = not two_level and self._lines_of is not None and self.coarse_reason is None
            p = rz = None
            q = np.empty_like(res)
            k = 0
            while np.any(np.sqrt(np.maximum(rb, 0.0)) > target):
                if k >= max_iterations:
                    raise NotLineStructured(f"conjugate gradients did not converge in {k} iterations")
                if decide and k >= self.switch_after and self._lines_too_slow(k, rb, rb0, target):
                    decide = False
                    self._build_coarse()                    # the lines alone are too slow here:
                    two_level = self.coarse is not None     # restart CG two-level from the current iterate
                    self.last_line_iterations = k
                    p = None
                z = self._precondition(res, zb) if two_level else zb
                rz_new = _dots(res, z)
                if p is None:
                    p = z.copy() if z is zb else z         # zb is updated in place below
                else:
                    beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0)
                    p *= beta[:, None]
                    p += z
                rz = rz_new
                pq = self._schur(p, out=q)
                alpha = np.divide(rz, pq, out=np.zeros_like(rz), where=pq > 0)
                rb, zb = self._cg_step(alpha, p, q, xb, res, zb)
                k += 1
            self.last_iterations = k
            if not two_level:
                self.last_line_iterations = k
            xb = lb.back(xb)
            self._scratch = {}
            xa = y - self._tri_solve(self.A, self.C @ xb, overwrite=True)
        x = np.empty_like(f)
        x[elim], x[it] = xa, xb
        return x[:, 0] if one else x

    @staticmethod
    def _lines_too_slow(k: int, rb, rb0, target) -> bool:
        """Whether the lines alone would need more than :data:`SWITCH_LINE_ITERATIONS` (predicted from
        the mean reduction of the slowest right-hand side over ``k`` iterations, or reached)."""
        if k >= SWITCH_LINE_ITERATIONS:
            return True
        if k == 0:
            return False
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            now = np.sqrt(np.maximum(rb, 1e-300))
            rate = np.log(now / np.sqrt(np.maximum(rb0, 1e-300))) / k            # per iteration, < 0
            left = np.where(now > target, np.log(np.maximum(target, 1e-300) / now) / rate, 0.0)
            left = np.where(rate < 0, left, np.inf)
        return bool(k + np.max(left) > SWITCH_LINE_ITERATIONS)

    def _precondition(self, r: np.ndarray, zb: np.ndarray) -> np.ndarray:
        """``M^-1 r`` given ``zb = B^-1 r``: the line preconditioner, or the symmetric two-level one.

        Two-level (smooth, coarse correction, smooth; symmetric because the smoother ``B^-1`` is)::

            z1 = B^-1 r
            z2 = z1 + Z E^-1 Z^T (r - S z1)        E = W^T K W, the Galerkin matrix of the full system
            z  = z2 + B^-1 (r - S z2)

        ``E`` is at least ``Z^T S Z`` (it also restricts the eliminated family to block constants), so the
        correction never overshoots; the V-cycle is an SPD preconditioner. Vectors (k, padded), interleaved.
        """
        if self.coarse is None:
            return zb
        agg, Zt, lu = self.coarse
        t = self._work("t", r.shape)
        self._schur(zb, minus=r, out=t)                     # r - S z1
        if self.compiled:
            lb = self._layout()[1]
            if self._agg is None:                           # aggregates in the interleaved layout
                self._agg = np.full(lb.size, -1, np.int64)
                self._agg[lb.pos] = agg
            w = np.zeros((Zt.shape[0], r.shape[0]))
            for j in range(r.shape[0]):
                _k_restrict(self._agg, t[j], w[:, j])
            c = np.ascontiguousarray(lu.solve(w).T)
            z = np.empty_like(zb)
            for j in range(r.shape[0]):
                _k_prolong(self._agg, c[j], zb[j], z[j])    # z2
        else:
            z = lu.solve(np.asarray(Zt @ t.T, dtype=float))[agg].T
            z += zb                                         # z2
        self._schur(z, minus=r, out=t)                      # r - S z2
        z += self._smooth(t, overwrite=True)
        return z

    def _work(self, name: str, shape: tuple) -> np.ndarray:
        """A scratch array kept between iterations (a fresh 8 MB array per use costs its page faults)."""
        w = self._scratch.get(name)
        if w is None or w.shape != shape:
            w = self._scratch[name] = np.empty(shape)
        return w

    def _smooth(self, r: np.ndarray, overwrite: bool = False) -> np.ndarray:
        """``B^-1 r`` for ``r`` (k, padded) interleaved (in place with ``overwrite``)."""
        if not self.compiled:
            return np.ascontiguousarray(self._tri_solve(self.B, r.T, overwrite=overwrite).T)
        lb = self._layout()[1]
        z = r if overwrite else r.copy()
        for j in range(z.shape[0]):
            _k_tri_solve(lb.offsets, lb.width, lb.rdf, lb.ef, z[j])
        return z

    def _cg_step(self, alpha, p, q, x, res, z):
        """``x += alpha p``, ``res -= alpha q``, ``z = B^-1 res``; returns (``res . z`` per right-hand side,
        ``z``: updated in place when compiled, a new array otherwise)."""
        if not self.compiled:
            x += alpha[:, None] * p
            q *= alpha[:, None]
            res -= q
            z = self._smooth(res)
            return _dots(res, z), z
        lb = self._layout()[1]
        return np.array([_k_cg_step(alpha[j], p[j], q[j], x[j], res[j], lb.offsets, lb.width, lb.rdf, lb.ef,
                                    z[j]) for j in range(x.shape[0])]), z

    def _schur(self, p: np.ndarray, minus: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """``S p = B p - C^T A^-1 C p`` (``minus=r``: ``r - S p``) into ``out`` (or a new array) for ``p``
        (k, padded) interleaved; returns the column dot products ``p . out`` (compiled kernels)."""
        if not self.compiled:
            pt = p.T
            y = self.Ct @ self._tri_solve(self.A, self.C @ pt, overwrite=True)
            target = y if out is None else out.T
            np.subtract(self._tri_mul(self.B, pt), y, out=target)
            if minus is not None:
                np.subtract(minus.T, target, out=target)
            return np.ascontiguousarray(target.T) if out is None else _dots(p, out)
        la, lb, (cp, ci, cx), (tp, ti, tx) = self._layout()
        y = np.empty_like(p) if out is None else out
        u = self._work("u", (la.size,))
        dots = np.empty(p.shape[0])
        for j in range(p.shape[0]):                         # C p, A^-1, then B p - C^T u (and p . y)
            if cp is None:
                _k_single(ci, cx, p[j], u)
            else:
                _k_csr(cp, ci, cx, p[j], u)
            _k_tri_solve(la.offsets, la.width, la.rdf, la.ef, u)
            r = p[j] if minus is None else minus[j]
            if tp is None:
                dots[j] = _k_schur_finish_single(ti, tx, lb.width, lb.d, lb.e, p[j], u, y[j], r, minus is not None)
            else:
                dots[j] = _k_schur_finish(tp, ti, tx, lb.width, lb.d, lb.e, p[j], u, y[j], r, minus is not None)
        return dots if out is not None else y


# -- the CG loop's layout and compiled kernels -----------------------------------------------------
# Measured at 1024x1024 (2e6 unknowns): a Schur product by scipy products and LAPACK ``dpttrs`` took
# ~55 ms, memory- and latency-bound: each line solve is a recurrence (every step waits for the one
# before), and ``C`` gathers the other family's vector across lines (a new cache line and page per
# entry). During the iterations the vectors are therefore kept *interleaved*: the lines (independent
# blocks of ``A`` and ``B``, split where the off-diagonal is 0) in groups of ``width`` (normally
# :data:`LANES`), stored position by position -- entry ``i`` of the group's lines side by side, shorter
# lines padded with identity rows (diagonal 1, no coupling; their entries stay 0). The recurrences of a
# group then run side by side (SIMD), and consecutive lines of one family reach neighbouring entries of
# the other through a crossbar's cells. Within a line the arithmetic is LAPACK ``dpttrs``'s (forward
# with the unit factor, divide, backward) and the csr products' (same terms, same order), so results
# agree with the scipy path to rounding. The layout assumes nothing: any blocks, any coupling.

#: lines per interleaved group (8 doubles: one cache line, one or two SIMD registers)
LANES = 8


class _Interleaved:
    """Interleaved layout of one family (see above): ``pos`` (n,) padded index of each unknown,
    ``offsets`` (groups + 1) start of each group, ``width`` lines per group, ``size`` padded length,
    and the family's tridiagonal ``d, e, df, ef`` in that layout (``e[a]``: coupling of ``a`` to the
    next entry of its line, ``a + width``)."""

    def __init__(self, t):
        d, e, df, ef = t
        n = d.size
        starts = np.concatenate([[0], np.flatnonzero(e == 0) + 1, [n]]) if n else np.zeros(1, np.int64)
        lens = np.diff(starts)
        width = LANES
        # lines sorted by length (stable: equal lines keep their order) so a group's lines are alike
        by = np.argsort(lens, kind="stable")
        glen = self._group_lengths(lens[by], width)
        if glen.sum() * width > 2 * n + 64 * width:     # very unequal lines: no interleaving
            width = 1
            glen = self._group_lengths(lens[by], width)
        offsets = np.concatenate([[0], np.cumsum(glen * width)]).astype(np.int64)
        rank = np.empty(lens.size, np.int64)
        rank[by] = np.arange(lens.size)                  # slot of each line
        line = np.repeat(np.arange(lens.size), lens)
        step = np.arange(n) - starts[line]
        slot = rank[line]
        self.pos = offsets[slot // width] + step * width + slot % width
        self.offsets, self.width, self.size = offsets, width, int(offsets[-1])
        self.d, self.rdf = self._spread(d, 1.0), 1.0 / self._spread(df, 1.0)
        self.e, self.ef = self._spread(e, 0.0), self._spread(ef, 0.0)   # e[a] joins a and a + 1

    @staticmethod
    def _group_lengths(sorted_lens, width):
        padded = np.zeros(-(-sorted_lens.size // width) * width, np.int64)
        padded[:sorted_lens.size] = sorted_lens
        return padded.reshape(-1, width).max(axis=1) if padded.size else padded

    def _spread(self, values, pad):
        out = np.full(self.size, pad)
        out[self.pos[:values.size]] = values
        return out

    def to(self, x):
        """(n, k) in chain order -> (k, size) interleaved (padding 0)."""
        out = np.zeros((x.shape[1], self.size))
        out[:, self.pos] = x.T
        return out

    def back(self, x):
        """(k, size) interleaved -> (n, k) in chain order."""
        return np.ascontiguousarray(x[:, self.pos].T)


class _Plain:
    """Chain order itself as a layout (the scipy path): vectors (k, n), one right-hand side per row."""

    def __init__(self, n: int):
        self.size = n
        self.pos = np.arange(n)

    @staticmethod
    def to(x):
        return np.array(x.T, dtype=float, order="C")

    @staticmethod
    def back(x):
        return np.ascontiguousarray(x.T)


def _interleaved_coupling(M, rows: _Interleaved, cols: _Interleaved):
    """csr ``M`` with its rows and columns moved to the interleaved positions (padded shape), as
    ``(indptr, indices, data)``; when no row has more than one entry (a 1R crossbar: one cell per node)
    instead ``(None, column, value)`` per row (column 0 and value 0 for a row without entries), which
    the kernels read without the row pointers. Either form gives the csr product's sums."""
    coo = M.tocoo()
    r, c = rows.pos[coo.row], cols.pos[coo.col]
    if np.all(np.bincount(r, minlength=rows.size) <= 1):
        col = np.zeros(rows.size, coo.col.dtype)
        val = np.zeros(rows.size)
        col[r], val[r] = c, coo.data
        return None, col, val
    out = sp.csr_matrix((coo.data, (r, c)), shape=(rows.size, cols.size))
    out.sum_duplicates()
    return out.indptr, out.indices, out.data


def _k_tri_solve(offsets, width, rdf, ef, x):
    """``x <- T^-1 x`` in place, ``T`` tridiagonal by lines in the interleaved layout (``1 / df, ef``:
    its ``dpttrf`` factors, the unit lower factor's entry ``ef[a]`` below ``a``; multiplying by the
    reciprocal of ``df`` instead of dividing halves the time, at one rounding per step). Unsigned
    indices: numba then skips its negative-index wraparound and the group's lanes vectorise (-35%)."""
    w = np.uint64(width)
    one = np.uint64(1)
    for g in range(offsets.size - 1):
        base = np.uint64(offsets[g])
        m = (np.uint64(offsets[g + 1]) - base) // w
        if m == 0:
            continue
        for i in range(one, m):
            a0 = base + i * w
            for c in range(w):
                x[a0 + c] -= x[a0 - w + c] * ef[a0 - w + c]
        a0 = base + (m - one) * w
        for c in range(w):
            x[a0 + c] *= rdf[a0 + c]
        for i in range(m - one, np.uint64(0), -1):
            a0 = base + (i - one) * w
            for c in range(w):
                x[a0 + c] = x[a0 + c] * rdf[a0 + c] - x[a0 + w + c] * ef[a0 + c]


def _k_csr(cp, ci, cx, p, u):
    """``u = M p`` for csr ``M`` (the sums in csr order, as scipy's product)."""
    for a in range(u.size):
        s = 0.0
        for q in range(cp[a], cp[a + 1]):
            s += cx[q] * p[ci[q]]
        u[a] = s


def _k_single(ci, cx, p, u):
    """``u = M p`` for ``M`` with at most one entry per row (column ``ci``, value ``cx``; 0 for none).
    (Unsigned indices here and below: see :func:`_k_tri_solve`.)"""
    for a in range(np.uint64(u.size)):
        u[a] = 0.0 + cx[a] * p[np.uint64(ci[a])]


def _k_schur_finish_single(ti, tx, width, bd, be, p, u, y, r, minus):
    """:func:`_k_schur_finish` for ``C^T`` with at most one entry per row (column ``ti``, value ``tx``)."""
    n = np.uint64(p.size)
    width = np.uint64(width)
    dot = 0.0
    for a in range(n):
        s = 0.0 + tx[a] * u[np.uint64(ti[a])]
        v = bd[a] * p[a]
        if a + width < n:
            v += be[a] * p[a + width]
        if a >= width:
            v += be[a - width] * p[a - width]
        v -= s
        if minus:
            v = r[a] - v
        y[a] = v
        dot += p[a] * v
    return dot


def _k_schur_finish(tp, ti, tx, width, bd, be, p, u, y, r, minus):
    """``y = B p - C^T u`` (``minus``: ``r - (B p - C^T u)``), ``B`` by ``d, e`` in its interleaved
    layout (``e`` is 0 at the ends of lines and on padding, so one flat loop serves); returns ``p . y``."""
    n = p.size
    dot = 0.0
    for a in range(n):
        s = 0.0
        for q in range(tp[a], tp[a + 1]):
            s += tx[q] * u[ti[q]]
        v = bd[a] * p[a]
        if a + width < n:
            v += be[a] * p[a + width]
        if a >= width:
            v += be[a - width] * p[a - width]
        v -= s
        if minus:
            v = r[a] - v
        y[a] = v
        dot += p[a] * v
    return dot


def _k_cg_step(alpha, p, q, x, res, offsets, width, rdf, ef, z):
    """``x += alpha p``, ``res -= alpha q``, ``z = B^-1 res``; returns ``res . z`` (interleaved)."""
    for a in range(np.uint64(x.size)):
        x[a] += alpha * p[a]
        res[a] -= alpha * q[a]
        z[a] = res[a]
    _k_tri_solve(offsets, width, rdf, ef, z)
    dot = 0.0
    for a in range(np.uint64(x.size)):
        dot += res[a] * z[a]
    return dot


def _k_restrict(agg, t, w):
    """``w += Z^T t``: entries of ``t`` summed per aggregate (``agg`` -1: padding, skipped)."""
    for a in range(t.size):
        if agg[a] >= 0:
            w[agg[a]] += t[a]


def _k_prolong(agg, c, zb, z):
    """``z = zb + Z c``: the coarse correction spread over its aggregates (padding: ``zb``)."""
    for a in range(z.size):
        z[a] = zb[a] + (c[agg[a]] if agg[a] >= 0 else 0.0)


def _dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of (k, n) arrays (one right-hand side per row), without a temporary."""
    return np.einsum("ij,ij->i", a, b)


def _fill(values: np.ndarray) -> np.ndarray:
    """Entries < 0 replaced by the last entry >= 0 before them (by the first one for a leading run)."""
    have = values >= 0
    if not have.any():
        return np.zeros_like(values)
    last = np.maximum.accumulate(np.where(have, np.arange(values.size), -1))
    last[last < 0] = np.flatnonzero(have)[0]
    return values[last]


def _coarse_space(ls: "LineSystem", elim_line: np.ndarray, it_line: np.ndarray, block: int):
    """Aggregates, restriction and factored coarse matrix of the two-level preconditioner.

    An iterated unknown (on line ``i`` of its family, coupled by its strongest cell to a node of
    line ``j`` of the other family) joins aggregate ``(i // block, j // block)``: for a crossbar, a
    ``block`` x ``block`` patch of cells. An eliminated unknown joins the aggregate of its strongest
    coupled partner (uncoupled ones, e.g. driver nodes, the one before them along the chain). The
    coarse matrix is ``W^T K W`` for the indicator ``W`` of these aggregates over *both* families,
    assembled from the line blocks and ``C`` without forming ``K``: its diagonal by ``bincount``, the
    few couplings between aggregates as a sparse matrix. The coarse space only sets the speed:
    any partition gives an SPD preconditioner (the answer is CG's, to ``rtol``).
    Returns ``(agg (n_iter,), Z^T (csr m x n_iter), splu of E)``.
    """
    C = ls.C                                            # csr (n_elim, n_iter)
    Ct = ls.Ct
    n_it, n_el = C.shape[1], C.shape[0]

    def strongest(M):                                   # per row: column of its most negative entry, or -1
        out = np.full(M.shape[0], -1, np.int64)
        count = np.diff(M.indptr)
        rows = np.flatnonzero(count)
        if rows.size and count.max() == 1:              # 1R: one cell per node
            out[rows] = M.indices[M.indptr[rows]]
        elif rows.size:
            low = np.minimum.reduceat(M.data, M.indptr[rows])
            row = np.repeat(np.arange(M.shape[0]), count)
            hit = M.data == np.repeat(low, count[rows])
            out[row[hit]] = M.indices[hit]
        return out

    partner = strongest(Ct)                             # iterated -> eliminated
    other = np.where(partner >= 0, elim_line[np.maximum(partner, 0)], -1)
    other = _fill(other)
    span = int(other.max(initial=0)) // block + 1
    key = (it_line // block) * span + other // block
    present = np.zeros(int(key.max()) + 1, bool)
    present[key] = True
    relabel = np.cumsum(present) - 1
    agg = relabel[key]
    m = int(present.sum())
    back = strongest(C)                                 # eliminated -> iterated
    wagg = _fill(np.where(back >= 0, agg[np.maximum(back, 0)], -1))

    diag = np.zeros(m)
    rows, cols, vals = [], [], []
    for t, a in ((ls.A, wagg), (ls.B, agg)):            # line blocks: diagonal and chain couplings
        d, e = t[0], t[1]
        diag += np.bincount(a, d, m)
        if e.size:
            lo, hi = a[:-1], a[1:]
            same = lo == hi
            diag += 2.0 * np.bincount(lo[same], e[same], m)
            rows.append(lo[~same]), cols.append(hi[~same]), vals.append(e[~same])
    coo = C.tocoo()                                     # cells (and any other cross coupling)
    lo, hi = wagg[coo.row], agg[coo.col]
    same = lo == hi
    diag += 2.0 * np.bincount(lo[same], coo.data[same], m)
    rows.append(lo[~same]), cols.append(hi[~same]), vals.append(coo.data[~same])
    r, c, v = (np.concatenate(x) for x in (rows, cols, vals))
    E = sp.coo_matrix((np.concatenate([v, v, diag]), (np.concatenate([r, c, np.arange(m)]),
                                                       np.concatenate([c, r, np.arange(m)]))),
                      shape=(m, m)).tocsc()
    # minimum degree on the patch grid (measured at 1024x1024, m = 65536: 0.4 s, against 1.1 s for
    # geometric nested dissection and 10 s for minimum degree after it)
    lu = spla.splu(E, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options=dict(SymmetricMode=True))
    Zt = sp.csr_matrix((np.ones(n_it), (agg, np.arange(n_it))), shape=(m, n_it))
    return agg, Zt, lu


def _split_edges(indptr, indices, data, diag, seed):
    """The off-diagonal entries of a csr matrix's upper triangle (each edge once; zeros skipped), split
    into wires and cross couplings (between a node seeded 0 and one seeded 1).

    Returns (any entry positive, row sums ``diag + sum of the row's edges``, wires ``(u, v, w)``, cross
    ``(u, v, w)``, wire degree per node); edges in row-major order (as the matrix stores them). Two
    passes: classify and count (the only gathers of ``seed``), then fill.
    """
    n = indptr.size - 1
    kind = np.zeros(indices.size, np.int8)              # 0: not an upper edge, 1: wire, 2: cross
    n_wire = 0
    n_cross = 0
    for r in range(n):
        sr = seed[r]
        for q in range(indptr[r], indptr[r + 1]):
            c = indices[q]
            if c > r and data[q] != 0:
                sc = seed[c]
                if sr >= 0 and sc >= 0 and sr != sc:
                    kind[q] = 2
                    n_cross += 1
                else:
                    kind[q] = 1
                    n_wire += 1
    wu, wv, ww = np.empty(n_wire, np.int64), np.empty(n_wire, np.int64), np.empty(n_wire)
    cu, cv, cw = np.empty(n_cross, np.int64), np.empty(n_cross, np.int64), np.empty(n_cross)
    rowsum = diag.copy()
    degree = np.zeros(n, np.int64)
    positive = False
    kw = 0
    kc = 0
    for r in range(n):
        for q in range(indptr[r], indptr[r + 1]):
            t = kind[q]
            if t == 0:
                continue
            c = indices[q]
            g = data[q]
            positive |= g > 0
            rowsum[r] += g
            rowsum[c] += g
            if t == 2:
                cu[kc], cv[kc], cw[kc] = r, c, g
                kc += 1
            else:
                wu[kw], wv[kw], ww[kw] = r, c, g
                degree[r] += 1
                degree[c] += 1
                kw += 1
    return positive, rowsum, (wu, wv, ww), (cu, cv, cw), degree


def _split_edges_numpy(K, diag, seed):
    """:func:`_split_edges` by numpy (small systems: no compiled start-up)."""
    n = K.shape[0]
    row = np.repeat(np.arange(n, dtype=K.indices.dtype), np.diff(K.indptr))
    col, val = K.indices, K.data
    up = np.flatnonzero((col > row) & (val != 0))       # each edge once (symmetric)
    eu, ev, ew = row[up], col[up], val[up]
    rowsum = diag + np.bincount(eu, ew, n) + np.bincount(ev, ew, n)
    cross = (seed[eu] >= 0) & (seed[ev] >= 0) & (seed[eu] != seed[ev])
    wire = ~cross
    iu, iv = eu[wire], ev[wire]
    degree = np.bincount(iu, minlength=n) + np.bincount(iv, minlength=n)
    return bool(np.any(ew > 0)), rowsum, (iu, iv, ew[wire]), (eu[cross], ev[cross], ew[cross]), degree


def _chain_order_dfs(n: int, iu: np.ndarray, iv: np.ndarray, degree: np.ndarray):
    """:func:`_chain_order` by one depth-first walk (scipy) from a virtual root joined to every chain
    end (degree <= 1): the walk runs down a chain from one end to the other (its other end leads back to
    the visited root) before it takes the next; the same order. A node never reached lies on a loop."""
    ends = np.flatnonzero(degree <= 1)
    rows = np.concatenate([iu, np.full(ends.size, n)])
    cols = np.concatenate([iv, ends])
    g = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n + 1, n + 1))
    order, pred = csgraph.depth_first_order(g, n, directed=False, return_predecessors=True)
    order = np.asarray(order[1:], dtype=np.int64)
    if order.size != n:
        raise NotLineStructured("a loop of wires (not a chain)")
    start = pred[order] == n
    chain = np.empty(n, np.int64)
    chain[order] = np.cumsum(start) - 1
    return order, chain, int(start.sum())


def _chain_order(n: int, iu: np.ndarray, iv: np.ndarray, degree: np.ndarray):
    """Unknowns along their chains, chain after chain; chain number per unknown; number of chains.

    ``iu, iv``: the wire edges, every node with at most two (``degree``, checked by the caller). Each
    chain is walked from its lower-numbered end, the ends taken in increasing order (the order a
    depth-first search from a virtual root joined to every end gives; compiled, :func:`_walk_chains`:
    at 1024x1024 0.08 s against 0.5 s for ``csgraph.depth_first_order``). A node the walks never
    reach lies on a loop.
    """
    order, chain, n_ch = _walk_chains(n, np.asarray(iu, np.int64), np.asarray(iv, np.int64))
    if order.size != n:
        raise NotLineStructured("a loop of wires (not a chain)")
    return order, chain, int(n_ch)


def _walk_chains(n, iu, iv):
    """Walk every path of the graph with edges ``(iu, iv)`` (degree <= 2) from its ends, in increasing
    order of the start; returns (nodes in walk order, path number per node (-1: not reached), paths)."""
    nb = np.full((n, 2), -1, np.int64)
    for q in range(iu.size):
        a, b = iu[q], iv[q]
        nb[a, 1 if nb[a, 0] >= 0 else 0] = b
        nb[b, 1 if nb[b, 0] >= 0 else 0] = a
    order = np.empty(n, np.int64)
    chain = np.full(n, -1, np.int64)
    k = 0
    m = 0
    for start in range(n):
        if chain[start] >= 0 or (nb[start, 0] >= 0 and nb[start, 1] >= 0):
            continue                                    # visited, or not an end
        prev, cur = -1, start
        while cur >= 0:
            order[k] = cur
            k += 1
            chain[cur] = m
            nxt = nb[cur, 0] if nb[cur, 0] != prev else nb[cur, 1]
            prev, cur = cur, nxt
        m += 1
    return order[:k], chain, m
