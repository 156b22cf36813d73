"""Newton's method on the MNA equations, with sparse LU and factorisation reuse.

One solve finds ``y`` with

    F(y) = A y + i_nl(y) - rhs = 0,      A = G + op rows   (operating point)
                                         A = G + a C       (transient step, a = 1/h or 2/h)

Convergence (like SPICE, tighter): an iteration converges when every update
satisfies ``|dy| <= reltol * max(|y_new|, |y_old|) + atol`` with ``atol``
= ``vntol`` on node voltages (and device states) and ``abstol`` on branch
currents. The last update is applied, so the result is one quadratically
convergent step past the criterion. A zero update (the residual is exactly
zero) always converges. Without nonlinear elements the system is solved
directly (one LU solve, no iteration) and the LU factorisation of each
distinct matrix ``A`` is kept, so an operating point or a fixed-step linear
transient factors once and reuses the factors for every right-hand side.
With nonlinear elements the Jacobian ``A + d i_nl/dy`` is written into the
fixed pattern when it is factored.

Static condensation (``mna.Condensation``): device states private to their
device are eliminated from the factored matrix. A factorisation takes the
full Jacobian, gathers per device the state block ``Jss`` (ns x ns), the
terminal rows' state derivatives ``Jts`` (di/dx) and the state rows'
terminal derivatives ``Jst`` (-df/dv), and factors the Schur complement
``S = Jzz - Jts Jss^-1 Jst`` on the remaining unknowns (node voltages and
branch currents); a solve is ``w = Jss^-1 b_s``, ``S x_z = b_z - Jts w``,
``x_s = w - Jss^-1 Jst x_z``, all per-device vector operations around one
sparse triangular solve. This is exact block elimination: with fresh
factors the update is the one of the full system to rounding.

Jacobian reuse (chord / simplified Newton, as in implicit stiff integrators):
the factors of the last Jacobian are kept and reused -- across iterations
and time steps -- while they still contract fast. A chord iteration
converges linearly at a rate ``rho`` (ratio of successive update norms), so
its remaining error is about ``rho / (1 - rho) * |dy|``; it is accepted only
when both ``|dy|`` and that estimate meet the criterion above (norms
weighted by ``reltol * |y| + atol``). A reused Jacobian changes how fast
Newton converges, never what it converges to (the residual is always exact).
Three levels of refresh, cheapest first:

* another step coefficient ``a`` (a breakpoint's short step, backward Euler
  vs trapezoidal): with condensation and no capacitance on the reduced
  unknowns the reduced matrix depends on ``a`` only through the tiny device
  terms ``Jts Jss^-1 Jst`` (``df/dv`` over ``a``), so the reduced LU is kept
  and only the state blocks ``Jss = a + nl`` are rebuilt with the new ``a``
  (vector operations); otherwise factors are kept per ``(mode, a)``;
* when the chord rate exceeds ``CHORD_MAX_RATE`` (or after
  ``CHORD_MAX_STEPS`` stale iterations), the devices are relinearised at the
  current iterate and the state blocks rebuilt from that, the reduced LU
  kept (devices crossing a switching threshold change ``df/dv`` and
  ``df/dx`` by orders of magnitude, the node matrix hardly);
* if that still contracts too slowly, the Jacobian is refactored at the
  current iterate and the iteration continues as full Newton.

On a 64x64 crossbar under programming pulses this leaves two
factorisations for ~940 steps and one solve per step on smooth stretches
(with the transient's predictor, ``transient.py``). Any failure (non-finite
residual or update, no convergence) drops the kept factors of that matrix,
so a retry starts from a fresh Jacobian.

Small systems (at most ``DENSE_MAX`` unknowns, e.g. one device behind a
resistor): the whole Jacobian, without condensation, is factored by a dense
LU with partial pivoting (LAPACK ``getrf``), freshly at the start of every
solve, and the base matrix product is dense too. There every operation is
dominated by its fixed cost per call, so one dense factorisation per step
(microseconds) is cheaper than the chord iterations a stale Jacobian needs
(measured on ``vteam_sine.xbar``: 2.6 instead of 5 iterations per step).
``linear_solver`` ("dense LU" / "sparse LU", in the engine's ``meta``) says
which path ran; ``Solver(dense=...)`` forces one. The dense path has its own
iteration loop (``_iterate_dense``: the same iteration, fewer numpy calls):
on such systems the run time is the number of Python-level calls per step,
so systems of at most ``FLOAT_SIZE`` unknowns take the update norm on Python
floats and evaluate one-device groups through their models' float kernels
(``DeviceModel.scalar_kernel``), with the numpy forms wherever floats refuse
a value (overflow, division by zero) or an input is not finite. Products with
small sparse matrices are one ``bincount`` by row (:class:`RowProduct`: the
sums of scipy's ``csr_matvec`` in its order, without its dispatch).

Symbolic reuse: every matrix the solver factors has one sparsity pattern
(``mna.SparsePattern``, or the reduced pattern of the condensation), so a
fill-reducing order is computed once (SuperLU's minimum degree on
``A + A^T``, probed with a diagonally dominant matrix of that pattern so the
probe factors without pivoting) and every factorisation then runs on the
symmetrically permuted matrix ``A[q][:, q]`` -- built by one gather of the
data array -- with ``permc_spec="NATURAL"`` and a small diagonal pivot
threshold (a zero diagonal, e.g. a source branch row, still pivots). That
skips the per-factorisation ordering (COLAMD), which was most of the cost
on crossbars.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import lapack

from .mna import Condensation, MnaSystem, compact


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

    def __init__(self, system: MnaSystem, tolerances: Tolerances = Tolerances(), dense: bool | None = None):
        """``dense``: factor the full system with dense LU (True), or the condensed system with sparse
        LU (False); None: dense when the system has at most ``DENSE_MAX`` unknowns. ``linear_solver``
        names the choice."""
        self.system = system
        self.dense = bool(dense) if dense is not None else system.size <= DENSE_MAX
        self.tol = tolerances
        self.atol = np.where(np.arange(system.size) < system.n_v, tolerances.vntol, tolerances.abstol)
        self._matrices: OrderedDict = OrderedDict()    # (mode, a) -> [data, csc matrix, factors or None]
        self._jacobian = np.zeros(system.pattern.nnz)   # data of the last Jacobian, rewritten per factorisation
        self.iterations = 0
        self.factorizations = 0
        self.max_iterations_seen = 0
        self._kept: OrderedDict = OrderedDict()         # factor key -> factors kept for chord iterations
        self._rho = 1.0             # last observed chord contraction rate
        self.roundoff_stops = 0     # solves that stopped at the rounding floor (Solver._at_roundoff)
        self.limit: float | None = None   # V: node-voltage updates clipped to this (operating_point's last resort)
        self._row_floor = None
        # the dense path factors the full system: on a few unknowns the per-device block elimination
        # costs more Python calls than it saves arithmetic
        self.condensation: Condensation | None = None if self.dense else system.condensation
        self._order()
        self._product_structure()

    # -- structure ------------------------------------------------------------
    def _order(self) -> None:
        """Fill-reducing symmetric permutation ``q`` of the factored pattern and its data gather."""
        cond = self.condensation
        pattern = cond.pattern if cond is not None else self.system.pattern
        n = pattern.size
        self._factored_size = n
        self.linear_solver = "dense LU" if self.dense else "sparse LU"
        if self.dense:
            # no fill-reducing order (a dense LU has none to gain); the factored matrix is scattered into an
            # n x n Fortran-ordered buffer at the pattern's (row, col) positions
            q = np.arange(n)
            cols = np.repeat(np.arange(n), np.diff(pattern.indptr))
            self._dense_flat = cols * n + pattern.indices.astype(np.int64)
            self._set_layout(q, cond, n)
            # the nonlinear entries' positions in that buffer (n * n: ground, dropped), per mode
            flat_ext = np.append(self._dense_flat, n * n)
            self._dense_nl = {mode: flat_ext[pos] for mode, pos in self.system.nonlinear.positions().items()}
            self._atol_list = self.atol.tolist() if 0 < n <= FLOAT_SIZE else None
            self._floats = self.system.nonlinear.floats and n <= FLOAT_SIZE
            return
        # A diagonally dominant probe with the pattern's structure: SuperLU computes its minimum-degree
        # order and factors it without pivoting (a probe of all ones pivots wildly and costs ~50x more).
        cols = np.repeat(np.arange(n), np.diff(pattern.indptr))
        off = (pattern.indices != cols)
        values = np.where(off, -1.0, 0.0)
        degree = np.bincount(cols[off], minlength=n) + np.bincount(pattern.indices[off], minlength=n)
        probe = pattern.matrix(values) + sp.diags(degree + 1.0, format="csc")
        try:
            # perm_c[k] is the new position of column k; q lists old indices in new order
            q = np.argsort(spla.splu(probe.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                     options=dict(SymmetricMode=True)).perm_c).astype(np.int64)
        except RuntimeError:          # structurally singular pattern: keep the natural order
            q = np.arange(n)
        marker = pattern.matrix(np.arange(1, pattern.nnz + 1, dtype=float))
        permuted = marker[q][:, q].tocsc()
        permuted.sort_indices()
        self._set_layout(q, cond, n)
        self._gather = permuted.data.astype(np.int64) - 1
        self._p_indices, self._p_indptr = permuted.indices, permuted.indptr

    def _set_layout(self, q: np.ndarray, cond, n: int) -> None:
        if cond is None:
            self._layout = _Layout(q, [], self.system.size)
        else:
            position = np.empty(n + 1, dtype=np.int64)      # reduced index -> factored position
            position[q] = np.arange(n)
            position[n] = n                                 # ground / eliminated: the dummy
            self._layout = _Layout(cond.keep[q], [position[b["red_t"]].ravel() for b in cond.blocks],
                                   self.system.size)

    def _product_structure(self) -> None:
        """The structure of the base matrices ``A`` for residual products, built once.

        ``A = G + op`` or ``G + a C`` has its nonzeros where G, C or the op rows have entries: one
        CSR structure (``_csr``; entries ``_csr_map`` of the pattern's data) serves every ``(mode, a)``,
        each base keeping only its data array, so a new step coefficient costs one gather instead of a
        sparse matrix construction. Systems of at most ``DENSE_PRODUCT_MAX`` unknowns keep ``A`` dense.
        """
        s = self.system
        nnz = s.pattern.nnz
        if s.size <= DENSE_PRODUCT_MAX:         # tiny systems: a dense product costs less than scipy's call
            cols = np.repeat(np.arange(s.size), np.diff(s.pattern.indptr))
            self._dense_product = s.pattern.indices.astype(np.int64) * s.size + cols   # row-major flat index
            self._csr = self._csr_map = None
            return
        self._dense_product = None
        used = (s.g_data != 0) | (s.c_data != 0) | (s.op_data != 0)
        marker = compact(s.pattern.matrix(np.where(used, np.arange(1, nnz + 1, dtype=float), 0.0)))
        self._csr_map = marker.data.astype(np.int64) - 1
        self._csr = marker
        self._rows_product = RowProduct(marker)

    def product(self, entry, y: np.ndarray) -> np.ndarray:
        """``A y`` for a base ``entry`` of :meth:`base`."""
        if self._csr is None:
            return entry[1] @ y
        return self._rows_product(entry[1], y)

    def base(self, mode: str, a: float):
        """``[data, product data, factors]`` of ``A`` for an analysis mode and integration coefficient (cached).

        ``data`` is on the full pattern; the product data is what :meth:`product` multiplies with
        (the dense matrix of a tiny system, else the CSR data of the shared structure)."""
        key = (mode, a)
        if key in self._matrices:
            self._matrices.move_to_end(key)
            return self._matrices[key]
        s = self.system
        data = s.g_data + (s.op_data if mode == "op" else a * s.c_data)
        if self._dense_product is not None:
            matrix = np.zeros(s.size * s.size)
            matrix[self._dense_product] = data
            matrix = matrix.reshape(s.size, s.size)
        else:
            matrix = data[self._csr_map]
        entry = [data, matrix, None]
        self._matrices[key] = entry
        if len(self._matrices) > self.CACHE_SIZE:
            self._matrices.popitem(last=False)
        return entry

    def _factor_key(self, key):
        """Factorisations are shared by all keys that give the same reduced matrix (see module docstring)."""
        cond = self.condensation
        if cond is not None and not cond.c_reduced:
            return key[0]
        return key

    # -- solving --------------------------------------------------------------
    def solve(self, y0: np.ndarray, rhs: np.ndarray, mode: str, a: float = 0.0) -> np.ndarray:
        """The ``y`` solving the system from initial guess ``y0``; raises :class:`NewtonFailure`."""
        entry = self.base(mode, a)
        if not self.system.nonlinear:
            if entry[2] is None:
                entry[2] = self._factor(entry[0], entry[0], (mode, a))
            self.iterations += 1
            return entry[2].solve(rhs)
        return self._newton(y0, rhs, mode, entry[0], entry, (mode, a))

    def _reusable(self, key, base_data):
        """Kept factors for chord iterations at ``key``, or None."""
        fkey = self._factor_key(key)
        factors = self._kept.get(fkey)
        if factors is None:
            return None
        self._kept.move_to_end(fkey)
        if factors.key != key:          # same reduced matrix, other coefficient: refresh the state blocks
            factors = factors.retarget(base_data, key)
            self._kept[fkey] = factors
        return factors

    def _keep(self, factors) -> None:
        fkey = self._factor_key(factors.key)
        self._kept[fkey] = factors
        self._kept.move_to_end(fkey)
        if len(self._kept) > self.CACHE_SIZE:
            self._kept.popitem(last=False)

    def _newton(self, y0, rhs, mode, base_data, base_entry, key) -> np.ndarray:
        with np.errstate(all="ignore"):     # once per solve: non-finite values are checked explicitly
            if self.dense:
                return self._iterate_dense(y0, rhs, mode, base_entry)
            return self._iterate(y0, rhs, mode, base_data, base_entry, key)

    def _dense_base(self, entry, mode: str) -> np.ndarray:
        """The base matrix of ``entry`` as a flat column-major n x n array (kept in the entry)."""
        if len(entry) == 3:
            buf = np.zeros(self._factored_size ** 2)
            buf[self._dense_flat] = entry[0]
            entry.append(buf)
        return entry[3]

    def _iterate_dense(self, y0, rhs, mode, base_entry) -> np.ndarray:
        """:meth:`_iterate` for the dense path, with the fewest numpy calls per iteration.

        The same iteration (a fresh Jacobian at the start of the solve, chord iterations while they
        contract, a fresh Jacobian when they do not), the same convergence test and the same
        failures; the Jacobian is assembled straight into the dense LU's buffer (the nonlinear
        entries of ``NonlinearSet.evaluate_raw`` summed at their dense positions onto the dense base
        matrix, no pattern data array in between). On at most ``FLOAT_SIZE`` unknowns the update norm
        and the finiteness checks are taken on Python floats and one-device groups with a float
        kernel are evaluated from ``y`` directly (``NonlinearSet.evaluate_floats``).
        """
        s = self.system
        nv, n = s.n_v, s.size
        nonlinear = s.nonlinear
        y = np.array(y0, dtype=float)
        vext = np.zeros(nv + 1)
        vext_v = vext[1:]
        matrix = base_entry[1]
        dense_product = self._csr is None
        dense_base = self._dense_base(base_entry, mode)
        dense_nl, n2 = self._dense_nl[mode], n * n
        tol = self.tol
        reltol, atol = tol.reltol, self.atol
        atol_list = self._atol_list
        small = atol_list is not None
        floats = self._floats
        lu = piv = None
        prev_norm, stale_steps = None, 0
        stagnant = 0                            # updates in a row above the tolerance that did not halve
        for k in range(1, tol.max_iterations + 1):
            fresh = lu is None
            f_nl = None
            if floats:                          # the devices on floats, straight from y
                try:
                    if fresh:
                        f_nl, j_raw = nonlinear.evaluate_floats(y, mode)
                    else:
                        f_nl = nonlinear.residual_floats(y, mode)
                except ArithmeticError:         # a value floats refuse (numpy's inf/NaN): the array path
                    f_nl = None
            if f_nl is None:
                vext_v[...] = y[:nv]
                if fresh:
                    f_nl, j_raw = nonlinear.evaluate_raw(vext, mode)
                else:                           # chord: the Jacobian is not needed
                    f_nl = nonlinear.residual(vext, mode)
            residual = matrix @ y if dense_product else self.product(base_entry, y)
            residual += f_nl
            residual -= rhs
            # one reduction instead of an isfinite pass: a sum is finite iff no term is inf or NaN (short of
            # overflow); on few unknowns Python's sum of the list first, numpy's only when that is not finite
            if not ((small and math.isfinite(sum(residual.tolist()))) or math.isfinite(np.add.reduce(residual))):
                raise NewtonFailure(f"device equations not finite after {k - 1} iterations")
            if stagnant >= STAGNANT_STEPS and self._at_roundoff(
                    residual, y, f_nl, rhs, np.abs(dense_base).reshape(n, n).T @ np.abs(y)):
                self.roundoff_stops += 1
                self._count(k - 1)
                return y
            if fresh:
                # the nonlinear entries summed at their dense positions (ground entries dropped), as
                # ``NonlinearSet.evaluate`` sums them at their pattern positions; then the base added
                buf = np.bincount(dense_nl, weights=j_raw, minlength=n2 + 1)[:n2]
                if not ((small and math.isfinite(sum(j_raw.tolist()))) or math.isfinite(np.add.reduce(buf * 0.0))):
                    raise NewtonFailure(f"device equations not finite after {k - 1} iterations")
                buf += dense_base
                self.factorizations += 1
                lu, piv = _dense_lu(buf, n)
            # the update is -A^-1 r: solving for r and subtracting is the same to the bit (sign symmetry)
            neg = lapack.dgetrs(lu, piv, residual)[0]
            clipped = self.limit is not None and _clip(neg, nv, self.limit)
            y_new = y - neg
            norm = _update_norm(y, neg, y_new, reltol, atol_list) if atol_list is not None else None
            if norm is None:
                norm = _update_norm_array(y, neg, y_new, reltol, atol, np.empty(n))
            if clipped:
                norm = max(norm, 2.0)           # a limited update never converges
            if not math.isfinite(norm):
                raise NewtonFailure(f"Newton update not finite after {k} iterations")
            y = y_new
            stagnant = stagnant + 1 if norm > 1.0 and prev_norm is not None and norm > 0.5 * prev_norm else 0
            converged, slow, stale_steps = self._chord_test(norm, prev_norm, fresh, stale_steps)
            if slow:
                lu = None                       # too slow: a fresh Jacobian for the next iteration
            if converged:
                self._count(k)
                return y
            prev_norm = norm if norm > 0 else None
        self.iterations += tol.max_iterations
        raise NewtonFailure(f"no convergence in {tol.max_iterations} Newton iterations")

    def _iterate(self, y0, rhs, mode, base_data, base_entry, key) -> np.ndarray:
        s = self.system
        nv = s.n_v
        nonlinear = s.nonlinear
        y = np.array(y0, dtype=float)
        vext = np.zeros(nv + 1)
        vext_v = vext[1:]
        # dense (small) systems: a fresh Jacobian at the start of every solve (one factorisation is cheaper
        # than the chord iterations a kept, stale one costs: measured 2.6 against 5 iterations per step)
        lu = None if self.dense else self._reusable(key, base_data)
        prev_norm, stale_steps = None, 0
        tol = self.tol
        reltol, atol = tol.reltol, self.atol
        scale = np.empty(s.size)
        relinearize, relinearized = False, False
        stagnant = 0                            # updates in a row above the tolerance that did not halve
        for k in range(1, tol.max_iterations + 1):
            fresh = lu is None
            vext_v[...] = y[:nv]
            if fresh or relinearize:
                f_nl, j_nl = nonlinear.evaluate(vext, mode)
            else:                               # chord: the Jacobian is not needed
                f_nl, j_nl = nonlinear.residual(vext, mode), None
            residual = self.product(base_entry, y)
            residual += f_nl
            residual -= rhs
            # one reduction instead of an isfinite pass: a sum is finite iff no term is inf or NaN (short of overflow)
            total = np.add.reduce(residual)
            if not math.isfinite(total) or (j_nl is not None and not math.isfinite(np.add.reduce(j_nl * 0.0))):
                self._kept.pop(self._factor_key(key), None)
                raise NewtonFailure(f"device equations not finite after {k - 1} iterations")
            if stagnant >= STAGNANT_STEPS and self._at_roundoff(residual, y, f_nl, rhs):
                self.roundoff_stops += 1
                if not self.dense and lu is not None:
                    self._keep(lu)
                self._count(k - 1)
                return y
            if fresh:
                np.add(base_data, j_nl, out=self._jacobian)
                lu = self._factor(self._jacobian, base_data, key)
            elif relinearize:                       # fresh state blocks, the reduced LU kept
                np.add(base_data, j_nl, out=self._jacobian)
                lu = lu.relinearized(self._jacobian, base_data)
                relinearize, relinearized, stale_steps = False, True, 0
            np.negative(residual, out=residual)
            dy = lu.solve(residual)
            clipped = self.limit is not None and _clip(dy, nv, self.limit)
            y_new = y + dy
            norm = _update_norm_array(y, dy, y_new, reltol, atol, scale)
            if clipped:
                norm = max(norm, 2.0)           # a limited update never converges
            if not math.isfinite(norm):
                self._kept.pop(self._factor_key(key), None)
                raise NewtonFailure(f"Newton update not finite after {k} iterations")
            y = y_new
            stagnant = stagnant + 1 if norm > 1.0 and prev_norm is not None and norm > 0.5 * prev_norm else 0
            converged, slow, stale_steps = self._chord_test(norm, prev_norm, fresh, stale_steps)
            if slow:
                if lu.blocks and not relinearized:
                    relinearize = True          # too slow: first fresh state blocks (cheap) ...
                else:
                    lu = None                   # ... then a fresh Jacobian for the next iteration
            if converged:
                if not self.dense:              # the dense path refactors per solve: nothing to keep
                    self._keep(lu)
                self._count(k)
                return y
            prev_norm = norm if norm > 0 else None
        self.iterations += tol.max_iterations
        self._kept.pop(self._factor_key(key), None)
        raise NewtonFailure(f"no convergence in {tol.max_iterations} Newton iterations")

    def _chord_test(self, norm: float, prev_norm, fresh: bool, stale_steps: int) -> tuple[bool, bool, int]:
        """(converged, too slow, stale steps) after an update of ``norm`` (the engine's criterion, <= 1).

        After a fresh Jacobian (or a zero update: the residual is exactly zero) ``norm <= 1`` converges.
        A chord iteration converges linearly at rate ``rho``, leaving an error of about
        ``rho / (1 - rho)`` of the update, which must also be within the tolerance; it is too slow (the
        caller refreshes the Jacobian) when ``rho > CHORD_MAX_RATE`` or after ``CHORD_MAX_STEPS``.
        """
        if fresh or norm == 0.0:
            return norm <= 1.0, False, stale_steps
        rho = norm / prev_norm if prev_norm else self._rho
        converged = norm <= 1.0 and rho < 1.0 and norm * rho / (1.0 - rho) <= 1.0
        stale_steps += 1
        slow = (not converged and prev_norm is not None
                and (rho > CHORD_MAX_RATE or stale_steps >= CHORD_MAX_STEPS))
        if prev_norm:
            self._rho = rho
        return converged, slow, stale_steps

    def _at_roundoff(self, residual: np.ndarray, y: np.ndarray, f_nl: np.ndarray, rhs: np.ndarray,
                     terms: np.ndarray | None = None) -> bool:
        """Whether the residual ``F(y)`` is within the rounding of its own terms: every row
        ``|F_i| <= ROUNDOFF_FACTOR * eps * ((|J| |y|)_i + |f_i| + |b_i|) + floor_i`` (a component-wise
        backward error at the floating-point floor; ``floor_i`` is abstol on KCL rows, vntol on source
        rows), with ``J`` the last Jacobian. Newton's updates there are rounding
        noise of an ill-conditioned system (wires of 1e-5 ohm next to 1 Mohm cells), which no iteration
        can bring under the tolerance; the iterate is then as accurate as the data allow."""
        s = self.system
        # |J| |y| (the dense path passes its base matrix's |A| |y|: its Jacobian lives in the LU buffer)
        bound = s.pattern.matrix(np.abs(self._jacobian)) @ np.abs(y) if terms is None else np.array(terms)
        bound += np.abs(f_nl)
        bound += np.abs(rhs)
        bound *= ROUNDOFF_FACTOR * np.finfo(float).eps
        if self._row_floor is None:             # KCL rows (amperes) abstol, branch rows (volts) vntol
            self._row_floor = np.where(np.arange(s.size) < s.n_v, self.tol.abstol, self.tol.vntol)
        bound += self._row_floor
        return bool(np.all(np.abs(residual) <= bound))

    def _count(self, k: int) -> None:
        """A solve converged in ``k`` iterations."""
        self.iterations += k
        if k > self.max_iterations_seen:
            self.max_iterations_seen = k

    def _factor(self, data: np.ndarray, base_data: np.ndarray, key):
        """Factors of the matrix with full-pattern ``data`` (``.solve(b)`` as splu's) for matrix key ``key``."""
        self.factorizations += 1
        cond = self.condensation
        blocks = None
        if cond is not None:
            ext = np.append(data, 0.0)
            blocks = [_StateBlock(b, ext, base_data) for b in cond.blocks]
            reduced = data[cond.gather]
            for blk in blocks:
                reduced += cond.pattern.accumulate(blk.spec["pos_tt"], blk.schur())
            data = reduced
        if self.dense:
            return _Factors(_DenseLU(data, self._dense_flat, self._factored_size), self._layout, key, blocks)
        permuted = sp.csc_matrix((data[self._gather], self._p_indices, self._p_indptr),
                                 shape=(self._factored_size,) * 2)
        try:
            lu = spla.splu(permuted, permc_spec="NATURAL", diag_pivot_thresh=PIVOT_THRESHOLD,
                           options=dict(SymmetricMode=True))
        except RuntimeError as exc:   # "Factor is exactly singular"
            raise NewtonFailure("circuit matrix is singular (a node without a DC path to ground, "
                                "or a loop of voltage sources)") from exc
        return _Factors(lu, self._layout, key, blocks)


#: systems up to this many unknowns are factored whole (no condensation) by a dense LU (LAPACK
#: getrf/getrs), with a fresh Jacobian per solve: there the fixed cost per call of the sparse LU, the
#: block elimination and the extra chord iterations exceeds the dense arithmetic
DENSE_MAX = 64
#: full systems up to this many unknowns keep their base matrix dense for the residual product
DENSE_PRODUCT_MAX = 32
#: dense systems up to this many unknowns take the Newton update norm on Python floats
FLOAT_SIZE = 16


def _dense_lu(buf: np.ndarray, n: int):
    """LAPACK's LU (``dgetrf``, overwriting ``buf``) of the n x n matrix stored row-major in ``buf``
    (its transposed view is the Fortran-ordered matrix): (lu, piv). A singular matrix raises
    NewtonFailure."""
    lu, piv, info = lapack.dgetrf(buf.reshape(n, n).T, overwrite_a=True)
    if info > 0:
        raise NewtonFailure("circuit matrix is singular (a node without a DC path to ground, "
                            "or a loop of voltage sources)")
    if info < 0:
        raise ValueError(f"dgetrf: illegal argument {-info}")
    return lu, piv


def _clip(dy: np.ndarray, nv: int, limit: float) -> bool:
    """Clip the node-voltage entries (the first ``nv``) of an update to +-``limit`` in place (as SPICE limits
    junction voltages); whether any was clipped."""
    v = dy[:nv]
    if not v.size or float(np.abs(v).max()) <= limit:
        return False
    np.clip(v, -limit, limit, out=v)
    return True


def _update_norm_array(y, dy, y_new, reltol, atol, scale) -> float:
    """``max |dy| / (max(|y_new|, |y|) reltol + atol)``, the engine's Newton criterion (<= 1: converged),
    with ``scale`` (the size of ``y``) as scratch."""
    np.abs(y_new, out=scale)
    np.maximum(scale, np.abs(y), out=scale)
    scale *= reltol
    scale += atol
    np.divide(np.abs(dy), scale, out=scale)
    return float(scale.max())


def _update_norm(y, dy, y_new, reltol, atol_list) -> float | None:
    """``max |dy| / (max(|y_new|, |y|) reltol + atol)`` on Python floats (the operations of the array
    form, in its order); None when any value is not finite or a scale is zero (numpy's NaN and inf
    semantics: the caller takes the array form)."""
    a, d, b = y_new.tolist(), dy.tolist(), y.tolist()
    if not math.isfinite(sum(a) + sum(d) + sum(b)):
        return None
    norm = 0.0
    try:
        for an, dn, bn, tn in zip(a, d, b, atol_list):    # abs and max written out: no builtin calls
            an = an if an >= 0.0 else -an
            bn = bn if bn >= 0.0 else -bn
            r = (dn if dn >= 0.0 else -dn) / ((an if an >= bn else bn) * reltol + tn)
            if r > norm:
                norm = r
    except ZeroDivisionError:
        return None
    return norm


class RowProduct:
    """``A y`` for CSR matrices ``A`` of one fixed structure (``matrix``), given their data arrays.

    Up to ``ROW_PRODUCT_MAX`` nonzeros the product is one ``bincount`` of the entries ``a_ij y_j``
    by row: the same products summed in the same order (row by row, in the CSR order, from 0) as
    scipy's ``csr_matvec``, so the same numbers, without scipy's per-call dispatch (which costs
    more than the arithmetic on small matrices). Larger matrices use scipy's product.
    """

    def __init__(self, matrix: sp.csr_matrix):
        self.matrix = matrix.copy()
        n = matrix.shape[0]
        self.n = n
        self.small = matrix.nnz <= ROW_PRODUCT_MAX
        self.rows = np.repeat(np.arange(n), np.diff(matrix.indptr))
        self.cols = matrix.indices.astype(np.int64)

    def __call__(self, data: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.small:
            return np.bincount(self.rows, weights=data * y[self.cols], minlength=self.n)
        self.matrix.data = data
        return self.matrix @ y


class FixedProduct(RowProduct):
    """``A @ y`` for one fixed CSR matrix ``A`` (its own data), as :class:`RowProduct`."""

    def __matmul__(self, y: np.ndarray) -> np.ndarray:
        return self(self.matrix.data, y)


#: matrices up to this many nonzeros are multiplied by ``bincount`` (measured on the 8x8 and 32x32
#: programming crossbars: 7 us against scipy's 18 us at 544 nonzeros, 74 against 37 us at 7552)
ROW_PRODUCT_MAX = 2000


class _DenseLU:
    """LU with partial pivoting of the n x n matrix with data ``data`` at flat (column-major) positions
    ``flat``; ``solve(b)`` like SuperLU's factors. Raises :class:`NewtonFailure` on an exactly zero pivot
    (as SuperLU does)."""

    def __init__(self, data: np.ndarray, flat: np.ndarray, n: int):
        self.n = n
        if n == 0:                              # nothing to factor (LAPACK refuses a 0 x 0 matrix)
            self.lu = self.piv = None
            return
        buf = np.zeros(n * n)
        buf[flat] = data
        self.lu, self.piv = _dense_lu(buf, n)

    def solve(self, b: np.ndarray) -> np.ndarray:
        if self.n == 0:
            return np.array(b, dtype=float)
        x, info = lapack.dgetrs(self.lu, self.piv, b)
        return x


#: chord iterations refactor when the contraction rate exceeds this, or after this many stale iterations
CHORD_MAX_RATE = 0.2
CHORD_MAX_STEPS = 6
#: Newton stops at the rounding floor (``Solver._at_roundoff``) after this many updates in a row above the
#: tolerance that did not halve, when the residual is within ROUNDOFF_FACTOR * eps of its own terms
STAGNANT_STEPS = 3
ROUNDOFF_FACTOR = 64.0
#: partial pivoting threshold: the diagonal is kept unless 100x smaller than the column's largest entry
PIVOT_THRESHOLD = 0.01


class _StateBlock:
    """The linearisation of one group's eliminated states, taken from a full Jacobian.

    ``jss`` (ns, ns, m) is the state block, ``jts`` (2, ns, m) the terminal
    rows' derivatives by the states (``di/dx``), ``jst`` (ns, 2, m) the state
    rows' derivatives by the terminal voltages (``-df/dv``), ``inv`` the
    inverse of ``jss``. ``nl`` is ``jss`` without the linear diagonal (the
    unit capacitance times ``a``, or 1 at the operating point), kept so the
    block can be rebuilt for another coefficient.
    """

    def __init__(self, spec: dict, ext: np.ndarray | None, base_data: np.ndarray, nl=None, jts=None, jst=None):
        self.spec = spec
        diag = base_data[spec["pos_d"]]
        if ext is not None:
            jss = ext[spec["pos_ss"]]
            self.jts, self.jst = ext[spec["pos_ts"]], ext[spec["pos_st"]]
            nl = jss.copy()
            idx = np.arange(spec["ns"])
            nl[idx, idx] -= diag
        else:
            self.jts, self.jst = jts, jst
            jss = nl.copy()
            idx = np.arange(spec["ns"])
            jss[idx, idx] += diag
        self.nl = nl
        if spec["ns"] == 1:
            with np.errstate(divide="ignore"):
                self.inv = 1.0 / jss
        else:
            try:
                self.inv = np.moveaxis(np.linalg.inv(np.moveaxis(jss, -1, 0)), 0, -1)
            except np.linalg.LinAlgError:
                self.inv = np.full_like(jss, np.nan)

    def retarget(self, base_data: np.ndarray) -> "_StateBlock":
        return _StateBlock(self.spec, None, base_data, self.nl, self.jts, self.jst)

    def schur(self) -> np.ndarray:
        """``-jts inv jst`` (2, 2, m): what eliminating the states adds to the terminal block."""
        if self.spec["ns"] == 1:
            return -(self.jts[:, None, 0] * self.inv[0, 0]) * self.jst[0][None]
        return -np.einsum("tjm,jim,ium->tum", self.jts, self.inv, self.jst)

    def apply_inv(self, b: np.ndarray) -> np.ndarray:
        if self.spec["ns"] == 1:
            return self.inv[0] * b
        return np.einsum("ijm,jm->im", self.inv, b)


class _Factors:
    """An LU of the (reduced) matrix in the solver's order, with the eliminated state blocks; solves ``A x = b``.

    With condensation the solve is block elimination: ``w = Jss^-1 b_s``;
    reduced right-hand side ``b_z - Jts w``; reduced solve; then
    ``x_s = w - Jss^-1 Jst x_t``. The reduced unknowns are addressed directly
    in the factored (permuted) order (``layout``), so no separate permutation
    is applied around the triangular solves.
    """

    def __init__(self, lu, layout: "_Layout", key, blocks):
        self.lu, self.layout, self.key, self.blocks = lu, layout, key, blocks
        if blocks:
            # one-state devices (the common case): precombined coefficients and indices for the two vector
            # passes: (state rows, Jss^-1, Jts as (2, m), Jss^-1 Jst per terminal, terminal positions)
            self._one = [(blk.spec["s"][0], blk.inv[0, 0], blk.jts[:, 0], blk.inv[0, 0] * blk.jst[0, 0],
                          blk.inv[0, 0] * blk.jst[0, 1], lay, lay.reshape(2, -1)[0], lay.reshape(2, -1)[1])
                         if blk.spec["ns"] == 1 else None for blk, lay in zip(blocks, layout.blocks)]

    def retarget(self, base_data: np.ndarray, key) -> "_Factors":
        """The same reduced LU with the state blocks rebuilt for matrix ``key`` (another step coefficient)."""
        blocks = [b.retarget(base_data) for b in self.blocks] if self.blocks else self.blocks
        return _Factors(self.lu, self.layout, key, blocks)

    def relinearized(self, data: np.ndarray, base_data: np.ndarray) -> "_Factors":
        """The same reduced LU with the state blocks taken from the full Jacobian data ``data``."""
        ext = np.append(data, 0.0)
        return _Factors(self.lu, self.layout, self.key, [_StateBlock(b.spec, ext, base_data) for b in self.blocks])

    def solve(self, b: np.ndarray) -> np.ndarray:
        lay = self.layout
        if lay.identity:                        # full system in natural order (the dense path)
            return self.lu.solve(b)
        bz = b[lay.order]                       # reduced right-hand side, in factored order
        n = bz.size
        ws = []
        if self.blocks:
            for k, blk in enumerate(self.blocks):
                one = self._one[k]
                if one is not None:
                    w = one[1] * b[one[0]]
                    corr = (one[2] * w).ravel()
                else:
                    w = blk.apply_inv(b[blk.spec["s"]])
                    corr = np.einsum("tjm,jm->tm", blk.jts, w).ravel()
                ws.append(w)
                bz -= np.bincount(lay.blocks[k], weights=corr, minlength=n + 1)[:n]
        xz = self.lu.solve(bz)
        x = np.empty(lay.size)
        x[lay.order] = xz
        if self.blocks:
            xz_ext = np.empty(n + 1)            # the factored solution with ground (position n) at 0
            xz_ext[:n] = xz
            xz_ext[n] = 0.0
            for k, (blk, w) in enumerate(zip(self.blocks, ws)):
                one = self._one[k]
                if one is not None:
                    x[one[0]] = w - one[3] * xz_ext[one[6]] - one[4] * xz_ext[one[7]]
                else:
                    t = lay.blocks[k].reshape(2, -1)
                    x[blk.spec["s"]] = w - blk.apply_inv(np.einsum("itm,tm->im", blk.jst, xz_ext[t]))
        return x


class _Layout:
    """Where the factored unknowns live: ``order[k]`` is the full index of factored unknown ``k``;
    ``blocks[j]`` the factored positions (``n`` for ground) of block ``j``'s terminals, flattened (2 * m,)."""

    def __init__(self, order: np.ndarray, blocks: list[np.ndarray], size: int):
        self.order, self.blocks, self.size = order, blocks, size
        self.identity = not blocks and order.size == size and bool(np.all(order == np.arange(size)))
