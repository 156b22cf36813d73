"""Fast linear reads of a crossbar: one factorisation, any number of read vectors.

A crossbar read in the *linear regime* -- every device below its switching
threshold, so no state moves, and either a linear I-V (VTEAM ``iv = 0``) or
small enough signals that the device conductance at its state describes it
-- is a linear map from the row driver voltages ``u`` to the column currents::

    i_col = i0 + T u        T: (cols, rows), i0: currents with all inputs at 0

:class:`LinearReads` builds that map from the :class:`Circuit` once:

1. **Nodal system, reduced.** The MNA stamps are the behavioural engine's
   (``mna.linear_stamp``); device states are fixed at their initial values
   and drop out, devices and MOSFETs enter through their conductances
   linearised at the bias point (fixed nodes at their source values, inputs
   and free nodes at 0: exact for linear I-V devices, small-signal
   otherwise), capacitors are open. Every voltage source with one terminal on
   ground fixes its node, so those nodes and their branch currents leave the
   system (source currents are read back from KCL at the fixed node). For an
   ideal-TIA 1R crossbar what remains is the symmetric positive definite
   wire/device Laplacian.
2. **Ordering.** Geometric nested dissection (``ordering.py``) with the
   *ports* -- free unknowns touching an input source or an output current --
   ordered last. SuperLU then factors in that order without pivoting
   (``diag_pivot_thresh = 0``; a zero diagonal, e.g. an op-amp branch row,
   still pivots) -- about 3x less fill than COLAMD on a 256x256 crossbar.
3. **Transfer matrix.** With the ports last, the trailing block of the LU
   factors is the Schur complement of the network on its ports, ``S = L_pp
   U_pp``, so ``T = E S^-1 B`` is a small dense solve (a few hundred
   unknowns) instead of one sparse solve per row. It is validated against a
   full solve of a random vector; if pivoting moved a port out of the
   trailing block, ``T`` comes from a multi-right-hand-side solve instead.

Validity: no state change (reads only), DC (capacitors open), and for
nonlinear devices the linearisation error, which :meth:`LinearReads.check`
measures: it evaluates the *nonlinear* device equations at the linear
solution and takes one Newton step with the same factorisation; the read is
exact (converged) when that step passes the engine's criterion
``|dy| <= reltol * |y| + vntol`` (``newton.py``). For linear I-V devices the
residual is rounding error.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..circuit.model import VCCS, VCVS, Capacitors, Circuit, Devices, Mosfets, Resistors, VoltageSources
from ..devices.mosfet import level1
from ..errors import ConvergenceError
from .mna import initial_states, linear_stamp
from .newton import Tolerances
from .ordering import crossbar_coordinates, nested_dissection, propagate_coordinates
from .sources import SourceBank

#: SuperLU supernode settings measured best for nested-dissection orders of crossbars
SUPERLU_OPTIONS = dict(relax=1, panel_size=8)
#: relative agreement the Schur-complement transfer matrix must reach against a full solve
TRANSFER_CHECK = 1e-9


class LinearReads:
    """The linear DC read map of a circuit (usually a crossbar), factored once.

    ``inputs``: names of the voltage-source groups whose values form the read
    vector; default the crossbar's row drivers (one value per row, floating
    rows ignored). Outputs are the crossbar's sensed column currents in the
    sign of the ``icol_j`` signals (SPICE: into the + terminal of the column
    source or ammeter), one per column, 0 for floating columns. ``t``: time at
    which the other sources (gates, column biases) are evaluated.
    """

    def __init__(self, circuit: Circuit, inputs: list[str] | None = None, t: float = 0.0):
        self.circuit = circuit
        self.n_v = circuit.n_nodes - 1
        self._number_unknowns()
        self._inputs(inputs)
        self._outputs()
        self._assemble(t)
        self._order_and_factor()
        self._transfer: np.ndarray | None = None
        self._offset: np.ndarray | None = None

    # -- set-up ---------------------------------------------------------------
    def _number_unknowns(self) -> None:
        c = self.circuit
        self.branch_start: dict[str, int] = {}
        start = self.n_v
        for g in c.groups_of(VoltageSources) + c.groups_of(VCVS):
            self.branch_start[f"{g.prefix}:{g.name}"] = start
            start += g.n
        self.size = start
        self.sources = c.groups_of(VoltageSources)
        waves = [w for g in self.sources for w in g.waveforms]
        self.bank = SourceBank(waves)
        self.source_branch = np.arange(self.n_v, self.n_v + len(waves))
        p = np.concatenate([g.p for g in self.sources]) if self.sources else np.empty(0, np.int64)
        n = np.concatenate([g.n_ for g in self.sources]) if self.sources else np.empty(0, np.int64)
        # a source with one grounded terminal fixes the other node (first source wins a node)
        node = np.where(n == 0, p, n)
        grounded = ((p == 0) ^ (n == 0))
        first = np.zeros(len(node), bool)
        _, idx = np.unique(np.where(grounded, node, -1 - np.arange(len(node))), return_index=True)
        first[idx] = True
        self.src_fixed = grounded & first                     # per source: eliminated
        self.src_node = node
        self.src_sign = np.where(n == 0, 1.0, -1.0)            # v(node) = sign * E
        is_fixed = np.zeros(self.size, bool)
        is_fixed[node[self.src_fixed] - 1] = True
        is_fixed[self.source_branch[self.src_fixed]] = True   # their branch currents come from KCL
        state = np.zeros(self.size, bool)
        for g in c.groups_of(Devices):
            state[g.states.ravel() - 1] = True
        self.free = np.flatnonzero(~is_fixed & ~state)
        self.fixed_nodes = node[self.src_fixed] - 1             # unknown index of each fixed node
        self.where = np.full(self.size + 1, -1, np.int64)      # unknown -> free position (before ordering)
        self.where[self.free] = np.arange(self.free.size)

    def unknown(self, nodes) -> np.ndarray:
        nodes = np.asarray(nodes, dtype=np.int64)
        return np.where(nodes == 0, self.size, nodes - 1)

    def branch(self, group, k) -> np.ndarray:
        return self.branch_start[f"{group.prefix}:{group.name}"] + np.asarray(k, dtype=np.int64)

    def _inputs(self, inputs) -> None:
        c = self.circuit
        xb = c.options.get("crossbar")
        if inputs is None:
            if xb is None:
                raise ValueError("linear reads: the circuit is not a crossbar; name the input source groups")
            inputs = [g.name for g in self.sources if g.name in (f"{xb}_vrow", f"{xb}_vrowl", f"{xb}_vrowr")]
        self.n_rows = int(c.options.get("rows") or 0)
        offsets = np.cumsum([0] + [g.n for g in self.sources])
        src, line = [], []
        for name in inputs:
            k = [g.name for g in self.sources].index(name) if name in [g.name for g in self.sources] else None
            if k is None:
                raise ValueError(f"linear reads: no voltage-source group '{name}'")
            g = self.sources[k]
            src.append(offsets[k] + np.arange(g.n))
            line.append(g.index if g.index is not None else np.arange(g.n))
        self.in_source = np.concatenate(src) if src else np.empty(0, np.int64)   # source numbers
        self.in_line = np.concatenate(line) if line else np.empty(0, np.int64)   # vector entry of each
        self.n_in = max(self.n_rows, int(self.in_line.max()) + 1 if self.in_line.size else 0)

    def _outputs(self) -> None:
        c = self.circuit
        xb = c.options.get("crossbar")
        self.n_cols = int(c.options.get("cols") or 0)
        groups = [g for g in self.sources if xb is not None and g.name in (f"{xb}_vcol", f"{xb}_am")]
        offsets = {g.name: o for g, o in zip(self.sources, np.cumsum([0] + [g.n for g in self.sources]))}
        if groups:
            g = groups[-1] if len(groups) == 1 or groups[-1].name.endswith("_am") else groups[0]
            self.out_source = offsets[g.name] + np.arange(g.n)
            self.out_line = g.index if g.index is not None else np.arange(g.n)
        else:   # not a crossbar: every voltage source current
            self.out_source = np.arange(len(self.bank.waveforms))
            self.out_line = np.arange(len(self.bank.waveforms))
            self.n_cols = len(self.out_source)

    def _assemble(self, t: float) -> None:
        c = self.circuit
        u = self.unknown
        rows, cols, vals = [], [], []
        const = np.zeros(self.size + 1)            # constant part of the residual (device offsets)
        for g in c.groups:
            if isinstance(g, (Resistors, VoltageSources, VCVS, VCCS)):
                _, r, cc, v = linear_stamp(g, u, lambda k, g=g: self.branch(g, k))
                rows.append(r), cols.append(cc), vals.append(v)
        # bias point for linearisation: fixed nodes at their values with inputs at 0
        values = self.bank.values(t)
        values0 = values.copy()
        values0[self.in_source] = 0.0
        self.source_values = values
        vext = np.zeros(self.n_v + 1)
        vext[self.src_node[self.src_fixed]] = self.src_sign[self.src_fixed] * values0[self.src_fixed]
        self._devices = []
        for g in c.groups_of(Devices):
            params = g.resolved()
            x = initial_states(g).reshape(g.model.n_states(), g.n)
            v0 = vext[g.p] - vext[g.n_]
            i0, gd = _conductance(g.model, v0, x, params)
            p, n = u(g.p), u(g.n_)
            rows.append(np.concatenate([p, p, n, n])), cols.append(np.concatenate([p, n, p, n]))
            vals.append(np.concatenate([gd, -gd, -gd, gd]))
            off = i0 - gd * v0
            const += np.bincount(p, off, self.size + 1) - np.bincount(n, off, self.size + 1)
            self._devices.append((g, params, x, gd, off))
        self._mosfets = []
        for g in c.groups_of(Mosfets):
            nodes = np.vstack([g.d, g.g, g.s, g.b])
            cur, jac = level1(g.model, *vext[nodes])
            term = u(nodes)
            res_rows = term[[0, 2, 3]]
            rows.append(np.broadcast_to(res_rows[:, None, :], jac.shape).ravel())
            cols.append(np.broadcast_to(term[None, :, :], jac.shape).ravel())
            vals.append(jac.ravel())
            off = cur - np.einsum("rcn,cn->rn", jac, vext[nodes])
            const += np.bincount(res_rows.ravel(), off.ravel(), self.size + 1)
            self._mosfets.append((g, nodes, jac, off))
        r, cc, v = (np.concatenate(a) for a in (rows, cols, vals))
        keep = (r < self.size) & (cc < self.size) & (v != 0)
        r, cc, v = r[keep], cc[keep], v[keep]
        self.const = const[:self.size]
        self.symmetric = not (c.groups_of(VCVS) or c.groups_of(VCCS) or c.groups_of(Mosfets))
        nf, ns = self.free.size, int(self.src_fixed.sum())
        fixed_pos = np.full(self.size, -1)
        fixed_pos[self.fixed_nodes] = np.arange(ns)
        fr, fc, xc = self.where[r], self.where[cc], fixed_pos[cc]
        k = (fr >= 0) & (fc >= 0)
        self._k_triplets = (fr[k], fc[k], v[k])
        self.K = sp.csr_matrix((v[k], (fr[k], fc[k])), shape=(nf, nf))
        k = (fr >= 0) & (xc >= 0)
        self.K_fixed = sp.csc_matrix((v[k], (fr[k], xc[k])), shape=(nf, ns))
        # output functionals over [free (free order), fixed sources, 1]: i_br = -+(row . y + const)
        n_out = self.out_source.size
        out_row = np.full(self.size + 1, -1)
        out_sign = np.zeros(n_out)
        elim = self.src_fixed[self.out_source]
        out_row[self.src_node[self.out_source[elim]] - 1] = np.flatnonzero(elim)
        out_sign[elim] = -self.src_sign[self.out_source[elim]]
        own = np.full(self.size + 1, -1)
        own[self.src_node[self.out_source[elim]] - 1] = self.source_branch[self.out_source[elim]]
        k = (out_row[r] >= 0) & (cc != own[r])
        orow = out_row[r[k]]
        ocol = np.where(fc[k] >= 0, fc[k], nf + xc[k])
        odata = out_sign[orow] * v[k] * np.where(fc[k] >= 0, 1.0, self.src_sign[self.src_fixed][np.maximum(xc[k], 0)])
        ok = ocol >= 0
        orow, ocol, odata = orow[ok], ocol[ok], odata[ok]
        e_nodes = self.src_node[self.out_source[elim]] - 1
        orow = np.concatenate([orow, np.flatnonzero(elim), np.flatnonzero(~elim)])
        ocol = np.concatenate([ocol, np.full(elim.sum(), nf + ns),
                               self.where[self.source_branch[self.out_source[~elim]]]])
        odata = np.concatenate([odata, out_sign[elim] * self.const[e_nodes], np.ones((~elim).sum())])
        self.E = sp.csr_matrix((odata, (orow, ocol)), shape=(n_out, nf + ns + 1))
        # constant right-hand side: kept sources' values on their branch rows, minus device offsets
        rhs = -self.const[self.free]
        kept = ~self.src_fixed
        kept_pos = self.where[self.source_branch[kept]]
        self._kept_pos, self._kept_src = kept_pos, np.flatnonzero(kept)
        rhs[kept_pos] += values[kept]   # branch row: v(p) - v(n) = E
        self.rhs_const = rhs                      # without the fixed-node term (added per vector)
        rowsum = np.bincount(self._k_triplets[0], np.abs(self._k_triplets[2]), nf)
        if np.any(rowsum == 0):
            k = int(self.free[np.flatnonzero(rowsum == 0)[0]])
            raise ConvergenceError(f"linear read: node '{self._name(k)}' has no DC path (only capacitors "
                                   "or state terminals), the read system is singular")

    def _name(self, unknown: int) -> str:
        if unknown < self.n_v:
            return self.circuit.node_name(unknown + 1)
        return f"branch {unknown - self.n_v}"

    # -- sources ----------------------------------------------------------------
    def _source_values(self, vectors: np.ndarray) -> np.ndarray:
        """(n_sources, k) source values for read vectors (k, n_in)."""
        out = np.repeat(self.source_values[:, None], vectors.shape[0], axis=1)
        out[self.in_source] = vectors[:, self.in_line].T
        return out

    def _rhs(self, values: np.ndarray) -> np.ndarray:
        """(n_free, k) right-hand sides for source values (n_sources, k), in free order."""
        vf = self.src_sign[self.src_fixed, None] * values[self.src_fixed]
        rhs = self.rhs_const[:, None] - self.K_fixed @ vf
        kept = self._kept_src
        rhs[self._kept_pos] += values[kept] - self.source_values[kept, None]
        return rhs

    # -- ordering and factorisation -------------------------------------------
    def _input_matrix(self) -> sp.csc_matrix:
        """Sparse (n_free, n_in): change of the right-hand side per unit of each vector entry."""
        nf = self.free.size
        fixed_index = np.full(len(self.bank.waveforms), -1)
        fixed_index[self.src_fixed] = np.arange(int(self.src_fixed.sum()))
        src, line = self.in_source, self.in_line
        fx = self.src_fixed[src]
        # fixed input node: rhs -= K_fixed[:, node] * sign
        cols = self.K_fixed[:, fixed_index[src[fx]]].tocoo()
        sign = self.src_sign[src[fx]]
        r = [cols.row, self.where[self.source_branch[src[~fx]]]]
        c = [line[fx][cols.col], line[~fx]]
        v = [-cols.data * sign[cols.col], np.ones((~fx).sum())]
        return sp.csc_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(c))), shape=(nf, self.n_in))

    def _ports(self) -> tuple[np.ndarray, np.ndarray]:
        """Free positions touched by input sources and by output currents."""
        self.B = self._input_matrix()
        ports_in = np.unique(self.B.tocoo().row)
        ports_out = np.unique(self.E[:, :self.free.size].tocoo().col)
        return ports_in, ports_out

    def _order_and_factor(self) -> None:
        ports_in, ports_out = self._ports()
        self.ports = np.union1d(ports_in, ports_out)
        xy = crossbar_coordinates(self.circuit, lambda nodes: self.where[self.unknown(nodes)], self.free.size)
        sym = self.K if self.symmetric else (self.K + self.K.T).tocsr()
        if xy is not None:
            xy = propagate_coordinates(sym, xy)
            self.perm = nested_dissection(sym, xy, last=self.ports)
            spec = "NATURAL"
        else:
            rest = np.setdiff1d(np.arange(self.free.size), self.ports)
            self.perm = np.concatenate([rest, self.ports])
            spec = "MMD_AT_PLUS_A"
        self.ordering = "nested dissection" if xy is not None else "minimum degree"
        self.inv = np.empty_like(self.perm)
        self.inv[self.perm] = np.arange(self.perm.size)
        kr, kc, kv = self._k_triplets
        Kp = sp.csc_matrix((kv, (self.inv[kr], self.inv[kc])), shape=self.K.shape)
        self.Kp = Kp
        try:
            if spec == "NATURAL":
                self.lu = spla.splu(Kp, permc_spec=spec, diag_pivot_thresh=0.0,
                                    options=dict(SymmetricMode=True), **SUPERLU_OPTIONS)
            else:
                self.lu = spla.splu(Kp, permc_spec=spec)
        except RuntimeError as exc:
            raise ConvergenceError(f"linear read: the read system is singular ({exc}); a node without a DC "
                                   "path to ground or a loop of voltage sources") from None

    # -- solving -----------------------------------------------------------------
    def solve_free(self, rhs: np.ndarray) -> np.ndarray:
        """Free unknowns (free order) for right-hand sides (n_free,) or (n_free, k)."""
        return self.lu.solve(rhs[self.perm])[self.inv]

    def _outputs_from(self, y_free: np.ndarray, values: np.ndarray) -> np.ndarray:
        vf = self.src_sign[self.src_fixed, None] * values[self.src_fixed]
        z = np.vstack([y_free, vf, np.ones((1, y_free.shape[1]))])
        return (self.E @ z).T

    def _scatter(self, per_output: np.ndarray) -> np.ndarray:
        out = np.zeros((per_output.shape[0], self.n_cols))
        out[:, self.out_line] = per_output
        return out

    def _vectors(self, vectors) -> np.ndarray:
        v = np.atleast_2d(np.asarray(vectors, dtype=float))
        if v.shape[1] != self.n_in:
            raise ValueError(f"read vectors need {self.n_in} values (one per row), got {v.shape[1]}")
        if not np.all(np.isfinite(v)):
            raise ValueError("read vectors must be finite")
        return v

    def read(self, vectors=None) -> np.ndarray:
        """Column currents (k, cols) for read vectors (k, rows) by full solves (factorisation reused).

        ``None`` reads with the circuit's own source values (shape (1, cols)).
        """
        if vectors is None:
            values = self.source_values[:, None]
        else:
            values = self._source_values(self._vectors(vectors))
        y = self.solve_free(self._rhs(values))
        return self._scatter(self._outputs_from(y, values))

    @property
    def transfer(self) -> tuple[np.ndarray, np.ndarray]:
        """``(T, i0)``: column currents = i0 + T @ vector, T (cols, rows); computed on first use."""
        if self._transfer is None:
            self._compute_transfer()
        return self._transfer, self._offset

    def _compute_transfer(self) -> None:
        n_in = self.n_in
        zero = np.zeros((1, n_in))
        offset = self.read(zero)[0]
        values0 = self._source_values(zero)
        dvalues = self._source_values(np.eye(n_in)) - values0                 # (n_sources, n_in)
        vf = self.src_sign[self.src_fixed, None] * dvalues[self.src_fixed]
        nf = self.free.size
        E_free = self.E[:, :nf]
        direct = np.asarray(self.E[:, nf:nf + vf.shape[0]] @ vf)
        self.transfer_method = "schur"
        try:
            T = self._schur_transfer(E_free, self.B) + direct
            probe = np.random.default_rng(0).uniform(-1, 1, n_in)
            full = self.read(probe[None])[0]
            fast = offset + _rows_to_cols(T, self.out_line, self.n_cols) @ probe
            if np.abs(fast - full).max() > TRANSFER_CHECK * max(np.abs(full).max(), 1e-300):
                raise _SchurUnavailable
        except _SchurUnavailable:
            self.transfer_method = "solve"
            T = np.asarray(E_free @ self.solve_free(self.B.toarray())) + direct
        self._transfer = _rows_to_cols(T, self.out_line, self.n_cols)
        self._offset = offset

    def _schur_transfer(self, E_free, B) -> np.ndarray:
        """``E K^-1 B`` from the trailing (port) block of the LU factors: ``S = L_pp U_pp``."""
        n, npt = self.free.size, self.ports.size
        if npt == 0 or npt > 4000:
            raise _SchurUnavailable
        lu = self.lu
        tail = n - npt
        if self.inv[self.ports].min() < tail:
            raise _SchurUnavailable
        # Pr Kp Pc = L U: row r of Kp sits at perm_r[r], column c at perm_c[c]
        rpos, cpos = lu.perm_r[tail:], lu.perm_c[tail:]
        if rpos.min() < tail or cpos.min() < tail:
            raise _SchurUnavailable
        L, U = lu.L, lu.U
        S_m = L[tail:, tail:].toarray() @ U[tail:, tail:].toarray()
        S = np.empty_like(S_m)
        S[np.ix_(rpos - tail, cpos - tail)] = S_m     # S over Kp positions tail.., i.e. free unknowns perm[tail:]
        Bp = B[self.perm[tail:]].toarray()
        Ep = E_free[:, self.perm[tail:]].toarray()
        return Ep @ np.linalg.solve(S, Bp)

    def read_many(self, vectors) -> np.ndarray:
        """Column currents (k, cols) for read vectors (k, rows) through the transfer matrix."""
        v = self._vectors(vectors)
        T, i0 = self.transfer
        return i0 + v @ T.T

    # -- validity check ---------------------------------------------------------------
    def check(self, vector=None, tolerances: Tolerances = Tolerances()) -> dict:
        """Newton check of the linear read of one vector against the nonlinear device equations.

        Returns the largest KCL residual (A), the largest Newton update (V or A)
        one step from the linear solution would make, and ``converged``: that
        update meets the engine's criterion, so the linear read *is* the DC
        solution of the nonlinear circuit.
        """
        values = self.source_values[:, None] if vector is None else self._source_values(self._vectors(vector))
        y_free = self.solve_free(self._rhs(values))[:, 0]
        y = np.zeros(self.size + 1)
        y[self.free] = y_free
        y[self.fixed_nodes] = self.src_sign[self.src_fixed] * values[self.src_fixed, 0]
        vext = np.concatenate([[0.0], y[:self.n_v]])
        residual = np.zeros(self.size + 1)
        scale = 0.0
        for g, params, x, gd, off in self._devices:
            v = vext[g.p] - vext[g.n_]
            true = g.model.current(v, x, params)
            err = true - (gd * v + off)
            np.add.at(residual, self.unknown(g.p), err)
            np.add.at(residual, self.unknown(g.n_), -err)
            scale = max(scale, float(np.abs(true).max(initial=0.0)))
        for g, nodes, jac, off in self._mosfets:
            cur, _ = level1(g.model, *vext[nodes])
            lin = np.einsum("rcn,cn->rn", jac, vext[nodes]) + off
            np.add.at(residual, self.unknown(nodes[[0, 2, 3]]).ravel(), (cur - lin).ravel())
            scale = max(scale, float(np.abs(cur).max(initial=0.0)))
        r = residual[self.free]
        dy = -self.solve_free(r)
        atol = np.where(self.free < self.n_v, tolerances.vntol, tolerances.abstol)
        ok = np.abs(dy) <= tolerances.reltol * np.abs(y_free) + atol
        return {"max_residual": float(np.abs(r).max(initial=0.0)), "current_scale": scale,
                "max_update": float(np.abs(dy).max(initial=0.0)), "converged": bool(ok.all())}

    @property
    def stats(self) -> dict:
        return {"unknowns": int(self.free.size), "ports": int(self.ports.size), "ordering": self.ordering,
                "lu_nonzeros": int(self.lu.nnz)}


class _SchurUnavailable(Exception):
    pass


def _conductance(model, v0: np.ndarray, x: np.ndarray, params) -> tuple[np.ndarray, np.ndarray]:
    """Current and small-signal conductance of devices at ``v0`` (states fixed).

    Uses the twin's own ``linearize`` when it has analytic derivatives, else a
    central difference of the current only (exact to rounding for linear I-V).
    """
    from ..devices.base import DeviceModel
    if getattr(model.linearize, "__func__", None) is not DeviceModel.linearize.__func__:
        return model.linearize(v0, x, params)[:2]
    h = 1e-6 * np.maximum(np.abs(v0), 1e-3)
    i0 = model.current(v0, x, params)
    return i0, (model.current(v0 + h, x, params) - model.current(v0 - h, x, params)) / (2 * h)


def _rows_to_cols(T: np.ndarray, out_line: np.ndarray, n_cols: int) -> np.ndarray:
    out = np.zeros((n_cols, T.shape[1]))
    out[out_line] = T
    return out


def dc_read(circuit: Circuit, vector=None) -> np.ndarray:
    """Column currents (cols,) of one linear DC read (``vector``: row voltages; None: the circuit's own)."""
    return LinearReads(circuit).read(None if vector is None else np.asarray(vector, dtype=float)[None])[0]


def read_many(circuit: Circuit, vectors) -> np.ndarray:
    """Column currents (n_vectors, cols) for many read vectors (n_vectors, rows); linear regime only."""
    return LinearReads(circuit).read_many(vectors)
