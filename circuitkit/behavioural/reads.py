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
4. **Line solver for single reads.** A plain 1R crossbar reduces to word-line
   and bit-line chains coupled only by the cells; ``linesolve.py`` solves
   that in O(n) per iteration (conjugate gradients on the bit lines,
   preconditioned by exact tridiagonal solves of every line) without any
   factorisation. ``method="auto"`` (default) uses it for :meth:`read` and
   :meth:`check` when it applies, ``"direct"`` never, ``"pcg"`` always (or
   raises). It applies when (detection, all of them):

   * ``circuit.crossbar`` (the typed layout) describes the array and its only
     device group is the layout's cell group, whose ``p`` terminals are all
     word-line nodes and ``n`` terminals bit-line nodes (1R cells; 1S1R and
     1T1R cells sit on intermediate nodes);
   * no MOSFETs, VCVS or VCCS (access transistors, op-amp TIAs): the system
     is symmetric and every voltage source is grounded and eliminated;
   * the cells are linear over the read: their current at a few voltages up
     to the largest source value (node voltages of a resistor network lie in
     the range of its sources) equals the linearisation (VTEAM ``iv = 0``:
     exactly); nonlinear cells keep the direct small-signal path;
   * the reduced matrix really is chains + couplings and positive definite
     (:meth:`LineSystem.build` checks; e.g. a floating line that reaches no
     source makes it singular).

   Otherwise, or if conjugate gradients do not converge, ``auto`` falls back
   to the direct factorisation; :attr:`LinearReads.stats` says which method
   ran, why the line solver was not used, and the iteration count. The
   transfer matrix (:meth:`read_many_linear`) always uses the factorisation.

:meth:`LinearReads.read_many` is *not* linear-only: it goes through
``batch.py``, which takes the transfer matrix only when the model shows the
cells are linear at the read voltages and otherwise solves the nonlinear
circuit by Newton, batched over the vectors.

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

from ..circuit.model import VCCS, VCVS, Circuit, Devices, Mosfets, Resistors, Transient, VoltageSources
from ..devices.mosfet import level1, level1_currents
from ..errors import ConvergenceError
from .mna import initial_states, linear_stamp, shunt_conductance
from .linesolve import LineSystem, NotLineStructured, small_pages
from .newton import ROUNDOFF_FACTOR, Tolerances
from .ordering import crossbar_coordinates, nested_dissection, propagate_coordinates
from .sources import SourceBank

#: SuperLU supernode settings measured best for nested-dissection orders of crossbars
SUPERLU_OPTIONS = dict(relax=1, panel_size=8)
#: relative agreement the Schur-complement transfer matrix must reach against a full solve
TRANSFER_CHECK = 1e-9
#: solve methods of :class:`LinearReads` (see the module docstring, item 4)
METHODS = ("auto", "direct", "pcg")
#: cells count as linear when their current at the sampled voltages matches the linearisation this well
LINEAR_CELL_RTOL = 1e-9


class LinearReads:
    """The linear DC read map of a circuit (usually a crossbar), factored once.

    ``inputs``: names of the voltage-source groups whose values form the read
    vector; default the crossbar's row drivers (one value per row, floating
    rows ignored). Outputs are the crossbar's sensed column currents in the
    sign of the ``icol_j`` signals (SPICE: into the + terminal of the column
    source or ammeter), one per column, 0 for floating columns. ``t``: time at
    which the other sources (gates, column biases) are evaluated; default (None)
    :func:`read_time`: the sample time of the first read phase of a transient
    description (at t = 0 its stimulus has not risen: 1T1R word-select gates
    are still at 0 V), 0 for an operating point.
    ``method``: ``"auto"`` (line solver when it applies, else direct),
    ``"direct"`` or ``"pcg"`` (the line solver; ValueError when it does not
    apply) for :meth:`read` and :meth:`check`; the factorisation is only
    computed when a direct solve or the transfer matrix needs it.
    """

    def __init__(self, circuit: Circuit, inputs: list[str] | None = None, t: float | None = None,
                 method: str = "auto"):
        if method not in METHODS:
            raise ValueError(f"linear reads: method must be one of {', '.join(METHODS)}, got {method!r}")
        self.circuit = circuit
        self.method = method
        self.t = read_time(circuit) if t is None else float(t)
        t = self.t
        self.n_v = circuit.n_nodes - 1
        self._number_unknowns()
        self._inputs(inputs)
        self._outputs()
        self._assemble(t)
        self._transfer: np.ndarray | None = None
        self._offset: np.ndarray | None = None
        self.lu = None
        self.lines: LineSystem | None = None
        self.line_reason: str | None = "not requested"
        self.last_method: str | None = None
        self.last_iterations = 0
        self._linear_upto = 0.0
        self._reader = None
        self.last_read = None
        self._last_vectors: np.ndarray | None = None
        if method != "direct":
            self._setup_lines()
            if method == "pcg" and self.lines is None:
                raise ValueError(f"linear reads: the line solver does not apply: {self.line_reason}")
        if self.lines is None:
            self._order_and_factor()

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
        self._index = np.int32 if self.size < 2 ** 31 - 2 else np.int64
        self.where = np.full(self.size + 1, -1, self._index)   # unknown -> free position (before ordering)
        self.where[self.free] = np.arange(self.free.size)

    def unknown(self, nodes) -> np.ndarray:
        """Unknown index of node ids (ground: the dummy index ``size``); int32 when it fits (less memory
        traffic in the assembly of ~1e6 stamps)."""
        nodes = np.asarray(nodes, dtype=self._index)
        return np.where(nodes == 0, self._index(self.size), nodes - 1)

    def branch(self, group, k) -> np.ndarray:
        return self.branch_start[f"{group.prefix}:{group.name}"] + np.asarray(k, dtype=np.int64)

    def _inputs(self, inputs) -> None:
        c = self.circuit
        xb = c.crossbar
        if inputs is None:
            if xb is None:
                raise ValueError("linear reads: the circuit is not a crossbar; name the input source groups")
            inputs = list(xb.row_sources)
        self.n_rows = xb.rows if xb is not None else 0
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
        xb = c.crossbar
        self.n_cols = xb.cols if xb is not None else 0
        groups = [g for g in self.sources if xb is not None and g.name == xb.current_source]
        offsets = {g.name: o for g, o in zip(self.sources, np.cumsum([0] + [g.n for g in self.sources]))}
        if groups:
            g = groups[0]
            self.out_source = offsets[g.name] + np.arange(g.n)
            self.out_line = g.index if g.index is not None else np.arange(g.n)
        else:   # not a crossbar: every voltage source current
            self.out_source = np.arange(len(self.bank.waveforms))
            self.out_line = np.arange(len(self.bank.waveforms))
            self.n_cols = len(self.out_source)

    def _assemble(self, t: float) -> None:
        with small_pages():                        # ~1 GB of temporaries at 1024x1024 (linesolve.small_pages)
            self._assemble_system(t)

    def _assemble_system(self, t: float) -> None:
        c = self.circuit
        u = self.unknown
        rows, cols, vals = [], [], []
        # two-terminal conductances (resistors, linearised devices) are kept as edges (a, b, g) -- half
        # the entries of their four stamps, which matters at 1e6 elements; the rest as triplets
        edges: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        const = np.zeros(self.size + 1)            # constant part of the residual (device offsets)
        for g in c.groups:
            if isinstance(g, Resistors):
                edges.append((u(g.a), u(g.b), 1.0 / g.r))
            elif isinstance(g, (VoltageSources, VCVS, VCCS)):
                _, r, cc, v = linear_stamp(g, u, lambda k, g=g: self.branch(g, k))
                rows.append(r), cols.append(cc), vals.append(v)
        g_shunt = shunt_conductance(c)
        if g_shunt:                                    # ngspice's rshunt (mna.shunt_conductance)
            nodes = np.arange(self.n_v, dtype=self._index)
            edges.append((nodes, np.full(self.n_v, self.size, self._index), np.full(self.n_v, g_shunt)))
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
            edges.append((p, n, np.asarray(gd, dtype=float)))
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
        r, cc, v = (np.concatenate(a) if a else np.empty(0, t_) for a, t_ in
                    ((rows, self._index), (cols, self._index), (vals, float)))
        ea, eb, eg = (np.concatenate(a) if a else np.empty(0, t_) for a, t_ in
                      (([e[0] for e in edges], self._index), ([e[1] for e in edges], self._index),
                       ([e[2] for e in edges], float)))
        self.const = const[:self.size]
        self.symmetric = not (c.groups_of(VCVS) or c.groups_of(VCCS) or c.groups_of(Mosfets))
        nf, ns = self.free.size, int(self.src_fixed.sum())
        # index maps with a trailing -1 for the ground dummy (index self.size); masks are turned into
        # index lists once (boolean indexing of ~1e6 triplets is the cost of this method)
        fixed_pos = np.full(self.size + 1, -1, self._index)
        fixed_pos[self.fixed_nodes] = np.arange(ns)
        fr, fc, xc = self.where[r], self.where[cc], fixed_pos[cc]
        k = np.flatnonzero((fr >= 0) & (fc >= 0) & (v != 0))
        fa, fb = self.where[ea], self.where[eb]
        both = np.flatnonzero((fa >= 0) & (fb >= 0) & (eg != 0))
        diag = (np.bincount(ea, eg, self.size + 1) + np.bincount(eb, eg, self.size + 1))[self.free]
        dpos = np.flatnonzero(diag).astype(self._index)
        fab, fbb, neg = fa[both], fb[both], np.negative(eg[both])    # each gathered once (~4e6 at 1024x1024)
        kr = np.concatenate([fr[k], fab, fbb, dpos])
        kc = np.concatenate([fc[k], fbb, fab, dpos])
        kv = np.concatenate([v[k], neg, neg, diag[dpos]])
        del fab, fbb, neg, both
        self._k_triplets = (kr, kc, kv)
        self.K = sp.csr_matrix((kv, (kr, kc)), shape=(nf, nf))
        xa, xb = fixed_pos[ea], fixed_pos[eb]
        k = np.flatnonzero((fr >= 0) & (xc >= 0))
        ka, kb = np.flatnonzero((fa >= 0) & (xb >= 0)), np.flatnonzero((fb >= 0) & (xa >= 0))
        self.K_fixed = sp.csc_matrix((np.concatenate([v[k], -eg[ka], -eg[kb]]),
                                      (np.concatenate([fr[k], fa[ka], fb[kb]]),
                                       np.concatenate([xc[k], xb[ka], xa[kb]]))), shape=(nf, ns))
        # output functionals over [free (free order), fixed sources, 1]: i_br = -+(row . y + const)
        n_out = self.out_source.size
        out_row = np.full(self.size + 1, -1, self._index)
        out_sign = np.zeros(n_out)
        elim = self.src_fixed[self.out_source]
        out_row[self.src_node[self.out_source[elim]] - 1] = np.flatnonzero(elim)
        out_sign[elim] = -self.src_sign[self.out_source[elim]]
        own = np.full(self.size + 1, -1)
        own[self.src_node[self.out_source[elim]] - 1] = self.source_branch[self.out_source[elim]]
        # rows of the output nodes: the generic triplets plus the four stamps of the edges touching them
        t = np.flatnonzero((out_row[ea] >= 0) | (out_row[eb] >= 0))
        ta, tb, tg = ea[t], eb[t], eg[t]
        r = np.concatenate([r, ta, ta, tb, tb])
        cc = np.concatenate([cc, ta, tb, ta, tb])
        v = np.concatenate([v, tg, -tg, -tg, tg])
        fc, xc = self.where[cc], fixed_pos[cc]
        k = np.flatnonzero(out_row[r] >= 0)
        k = k[(cc[k] != own[r[k]]) & (v[k] != 0)]
        orow = out_row[r[k]]
        fck, xck = fc[k], xc[k]
        ocol = np.where(fck >= 0, fck, np.where(xck >= 0, nf + xck, -1))
        odata = out_sign[orow] * v[k] * np.where(fck >= 0, 1.0, self.src_sign[self.src_fixed][np.maximum(xck, 0)])
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
        empty = np.diff(self.K.indptr) == 0                # no nonzero entry in the row
        if np.any(empty):
            k = int(self.free[np.flatnonzero(empty)[0]])
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
        """Free unknowns (free order) for right-hand sides (n_free,) or (n_free, k): direct solve."""
        if self.lu is None:
            self._order_and_factor()
        return self.lu.solve(rhs[self.perm])[self.inv]

    # -- the line solver ------------------------------------------------------------
    def _setup_lines(self) -> None:
        """Build the line solver if the circuit is a plain 1R crossbar (module docstring, item 4)."""
        reason = self._line_obstacle()
        if reason is None:
            seed = np.full(self.free.size, -1, np.int64)
            g = self._devices[0][0]
            for nodes, family in ((g.p, 0), (g.n_, 1)):
                pos = self.where[self.unknown(nodes)]
                seed[pos[pos >= 0]] = family                   # fixed (eliminated) nodes have no position
            try:
                self.lines = LineSystem.build(self.K, seed, symmetric=self.symmetric)
            except NotLineStructured as exc:
                reason = str(exc)
        self.line_reason = reason

    def _line_obstacle(self) -> str | None:
        """Why the line solver does not apply to this circuit (None: it does, pending the matrix check)."""
        c = self.circuit
        xb = c.crossbar
        if xb is None:
            return "not a crossbar"
        if c.groups_of(Mosfets) or c.groups_of(VCVS) or c.groups_of(VCCS):
            return "transistors or controlled sources (1T1R cells, op-amp TIAs)"
        devices = c.groups_of(Devices)
        if len(devices) != 1 or devices[0].name != xb.cells:
            return "cells are not single devices (1S1R) or extra devices"
        g = devices[0]
        if not (np.isin(g.p, xb.wl).all() and np.isin(g.n_, xb.bl).all()):
            return "cells do not join word-line to bit-line nodes (not 1R)"
        if np.any(self.src_fixed == False):                   # noqa: E712  (ungrounded or duplicate sources)
            return "a voltage source is not grounded (kept as a branch unknown)"
        return None

    def _cells_linear(self, vmax: float) -> bool:
        """Whether the cells' current is their linearisation at sampled voltages up to ``vmax``."""
        if vmax <= self._linear_upto:
            return True
        g, params, x, gd, off = self._devices[0]
        for s in (-1.0, -0.5, -0.1, 0.1, 0.5, 1.0):
            v = np.full(g.n, s * vmax)
            true = g.model.current(v, x, params)
            lin = gd * v + off
            if np.any(np.abs(true - lin) > LINEAR_CELL_RTOL * np.maximum(np.abs(true), np.abs(lin)) + 1e-300):
                return False
        self._linear_upto = vmax
        return True

    def _solve(self, rhs: np.ndarray, values: np.ndarray, method: str | None = None) -> np.ndarray:
        """Free unknowns for right-hand sides, by the line solver when it applies, else directly."""
        method = method or self.method
        if method not in METHODS:
            raise ValueError(f"linear reads: method must be one of {', '.join(METHODS)}, got {method!r}")
        use = method != "direct" and self.lines is not None
        if use and not self._cells_linear(_span(values)):
            use = False
            self.line_reason = "the cells are nonlinear over the read voltages"
        if method == "pcg" and not use:
            raise ValueError(f"linear reads: the line solver does not apply: {self.line_reason}")
        if use:
            try:
                y = self.lines.solve(rhs)
                self.last_method, self.last_iterations = "pcg", self.lines.last_iterations
                return y
            except NotLineStructured as exc:
                if method == "pcg":
                    raise ConvergenceError(f"linear read: line solver failed: {exc}") from None
                self.line_reason = str(exc)
        self.last_method, self.last_iterations = "direct", 0
        return self.solve_free(rhs)

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

    def read(self, vectors=None, method: str | None = None) -> np.ndarray:
        """Column currents (k, cols) for read vectors (k, rows) by full solves of the *linearised* circuit.

        ``None`` reads with the circuit's own source values (shape (1, cols)).
        ``method`` overrides the reader's (``auto``/``direct``/``pcg``) for
        this call; :attr:`stats` then reports which one ran.

        The linearised read is the DC solution only where the cells (and transistors) are linear at
        these voltages. Where that is not shown from the model (the cached linearity verdict of
        :meth:`read_many`), the read is checked by :meth:`check`, and a :class:`LinearisedReadWarning`
        says when it is not the DC solution; :meth:`read_many` returns the DC solution.
        """
        values = self.source_values[:, None] if vectors is None else self._source_values(self._vectors(vectors))
        out = self._read_linear(values, method)
        self._warn_if_linearised(values, method)
        return out

    def _read_linear(self, values: np.ndarray, method: str | None = None) -> np.ndarray:
        """Column currents of the linearised circuit for source values (n_sources, k)."""
        y = self._solve(self._rhs(values), values, method)
        return self._scatter(self._outputs_from(y, values))

    def _warn_if_linearised(self, values: np.ndarray, method: str | None) -> None:
        """Warn when the linearised read of ``values`` is not the DC solution (:meth:`read`)."""
        import warnings

        from .batch import LINEAR_RTOL, CrossbarReader
        if self._reader is None:
            self._reader = CrossbarReader(self.circuit, reads=self)
        reader = self._reader
        if not (reader.controlled or reader.has_mosfets):
            if self.lines is not None and self._linear_upto >= _span(values):
                return                                        # the line solver's own linearity check held
            lin, _ = reader.checked_linearity(reader.vmax(values))
            if all(e <= LINEAR_RTOL for e in lin.values()):
                return                                        # linear at every voltage the read can reach
        stats = (self.last_method, self.last_iterations, self.line_reason)
        chk = self._check_values(values, method=method)
        self.last_method, self.last_iterations, self.line_reason = stats
        if not chk["converged"]:
            warnings.warn(LinearisedReadWarning(
                f"LinearReads.read: the linearised read is not the DC solution of {chk['failed_vectors']} of "
                f"{chk['vectors']} vectors (the cells or transistors are nonlinear at these voltages: one Newton "
                f"step moves a sensed current by up to {chk['max_output_change']:.3g} A); read_many() returns "
                f"the DC solution"), stacklevel=3)

    @property
    def transfer(self) -> tuple[np.ndarray, np.ndarray]:
        """``(T, i0)``: column currents = i0 + T @ vector, T (cols, rows); computed on first use."""
        if self._transfer is None:
            self._compute_transfer()
        return self._transfer, self._offset

    def _compute_transfer(self) -> None:
        if self.lu is None:
            self._order_and_factor()
        n_in = self.n_in
        zero = np.zeros((1, n_in))
        offset = self._read_linear(self._source_values(zero), method="direct")[0]
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
            full = self._read_linear(self._source_values(probe[None]), method="direct")[0]
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

    def read_many_linear(self, vectors) -> np.ndarray:
        """Column currents (k, cols) for read vectors (k, rows) through the transfer matrix (the
        linearised circuit, whatever the cells: use :meth:`read_many` for the DC solution)."""
        v = self._vectors(vectors)
        T, i0 = self.transfer
        out = v @ T.T
        out += i0
        return out

    def read_many(self, vectors) -> np.ndarray:
        """Column currents (k, cols) for read vectors (k, rows): the DC solution of the circuit.

        Through the transfer matrix when the cells are linear at these read
        voltages, else Newton batched over the vectors (``batch.py``);
        :attr:`last_read` (a :class:`~.batch.ReadResult`) says which and why.
        """
        from .batch import CrossbarReader
        if self._reader is None:
            self._reader = CrossbarReader(self.circuit, reads=self)
        self.last_read = self._reader.read(vectors)         # validates the vectors
        self._last_vectors = np.atleast_2d(np.asarray(vectors, dtype=float))
        return self.last_read.currents

    # -- validity check ---------------------------------------------------------------
    def check(self, vector=None, tolerances: Tolerances = Tolerances(), method: str | None = None) -> dict:
        """Newton check of the *linear* read against the nonlinear device equations.

        ``vector``: one read vector (rows,) or many (k, rows); default the vectors of the last
        :meth:`read_many`, else the circuit's own source values. Evaluates the device and
        transistor equations at the linear solution of every vector and takes one Newton step
        with the linear system's factorisation. Returns the largest KCL residual (A), the
        largest update (V or A), ``converged``: every vector's update meets the engine's
        criterion and so do the sensed currents (the linear read's against that Newton step's, the
        devices' deviation at a fixed sense node included: ``max_output_change``, A), or the
        devices' deviation from the linearisation is at the rounding floor of their currents
        (``newton.ROUNDOFF_FACTOR`` * eps; the update is then the rounding noise of an ill-conditioned
        solve), so the linear read *is* the DC solution of the nonlinear circuit, and ``vectors`` /
        ``failed_vectors`` counts. (:meth:`read_many` does not rely on this: it
        solves the nonlinear circuit when the cells are not linear.)
        """
        if vector is None and self._last_vectors is not None:
            vector = self._last_vectors
        if vector is None:
            values = self.source_values[:, None]
        else:
            values = self._source_values(self._vectors(np.atleast_2d(vector)))
        return self._check_values(values, tolerances, method)

    def _check_values(self, values: np.ndarray, tolerances: Tolerances = Tolerances(),
                      method: str | None = None) -> dict:
        """:meth:`check` of source values (n_sources, k)."""
        from .batch import CrossbarReader
        if self._reader is None:
            self._reader = CrossbarReader(self.circuit, reads=self)
        rhs = self._rhs(values)
        y_free = self._solve(rhs, values, method)
        F, corr, _ = self._reader._residual(y_free, values, rhs)
        vext = self._reader._full(y_free, values)
        scale = 0.0
        for g, params, x, _, _ in self._devices:
            scale = max(scale, _device_scale(g, params, x, vext))
        for g, nodes, _, _ in self._mosfets:
            scale = max(scale, float(np.abs(level1_currents(g.model, *vext[nodes])).max(initial=0.0)))
        r = F
        dy = -self._solve(r, values, method)
        atol = np.where(self.free < self.n_v, tolerances.vntol, tolerances.abstol)[:, None]
        ok = np.all(np.abs(dy) <= tolerances.reltol * np.abs(y_free) + atol, axis=0)
        # the sensed currents: the linear read's against one Newton step's. A stiff free node (1e-6 ohm to a
        # sense node) moves by less than vntol while its current is far off; cells on a sensed node that is
        # fixed (an ideal TIA with no wire before it) put their deviation from the linearisation straight
        # into that output current, where no free unknown sees it (no wires and ideal drivers: none at all)
        reader = self._reader
        lin = self._outputs_from(y_free, values)                                   # (k, outputs)
        stepped = self._outputs_from(y_free + dy, values)
        dev_out = np.zeros(values.shape[1])
        if reader._out_needs_voltages():
            dev = (reader._out_sign[:, None] * reader._out_deviation(vext)).T
            stepped[:, reader._out_elim] += dev
            dev_out = np.abs(dev).max(axis=1, initial=0.0)
        change = np.abs(stepped - lin)
        ok &= np.all(change <= tolerances.reltol * np.abs(stepped) + tolerances.abstol, axis=1)
        # the devices sit on their linearisation to rounding (|deviation| within ROUNDOFF_FACTOR * eps of
        # the device currents): the update is then the linear solve's rounding noise on an ill-conditioned
        # system (1e-6 ohm wires next to 10 kohm cells), not a nonlinearity -- the linear read is the solution
        floor = ROUNDOFF_FACTOR * np.finfo(float).eps * scale
        ok |= (np.abs(corr[self.free]).max(axis=0, initial=0.0) <= floor) & (dev_out <= floor)
        # max_residual: the devices' deviation from the linearisation (KCL, A); the step also corrects rounding
        return {"max_residual": float(np.abs(corr[self.free]).max(initial=0.0)), "current_scale": scale,
                "max_update": float(np.abs(dy).max(initial=0.0)),
                "max_output_change": float(change.max(initial=0.0)), "converged": bool(ok.all()),
                "vectors": int(ok.size), "failed_vectors": int((~ok).sum())}

    @property
    def stats(self) -> dict:
        """Unknowns; the method of the last solve (``pcg``/``direct``) and its iterations; why the line
        solver is not used (``line_solver``: None when it is available); factorisation figures once factored."""
        out = {"unknowns": int(self.free.size), "method": self.last_method, "iterations": self.last_iterations,
               "line_solver": None if self.lines is not None and self.line_reason is None else self.line_reason}
        if self.lines is not None:
            out["lines"] = self.lines.n_lines
        if self.lu is not None:
            out.update(ports=int(self.ports.size), ordering=self.ordering, lu_nonzeros=int(self.lu.nnz))
        return out


def _span(values: np.ndarray) -> float:
    """Bound on the voltage across any cell of a resistor/cell network driven by grounded sources of these
    values: node voltages lie between the smallest and the largest source value, ground included."""
    return float(np.max(values, initial=0.0) - np.min(values, initial=0.0))


def _device_scale(g, params, x, vext) -> float:
    from .batch import _evaluate
    return float(np.abs(_evaluate(g.model, vext[g.p] - vext[g.n_], x, params, False)[0]).max(initial=0.0))


class LinearisedReadWarning(UserWarning):
    """:meth:`LinearReads.read` returned a linearised read that is not the DC solution of the circuit."""


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


def read_time(circuit: Circuit) -> float:
    """Time at which a read evaluates the sources that are not read inputs (word-select gates, column
    sources): the sample time of the first read phase when the circuit's analysis is a transient (its
    sources are waveforms that start from 0 V at t = 0, before the phase's edges: a 1T1R array read there
    has every access transistor off), else 0 (an operating point's sources are DC)."""
    xb = circuit.crossbar
    if xb is None or not isinstance(circuit.analysis, Transient):
        return 0.0
    phases = xb.read_phases()
    if not phases or phases[0].sample is None:
        return 0.0
    return float(phases[0].sample)


def _rows_to_cols(T: np.ndarray, out_line: np.ndarray, n_cols: int) -> np.ndarray:
    out = np.zeros((n_cols, T.shape[1]))
    out[out_line] = T
    return out


def dc_read(circuit: Circuit, vector=None, method: str = "auto") -> np.ndarray:
    """Column currents (cols,) of one DC read: the DC solution of the circuit (``vector``: row voltages;
    None: the circuit's own read inputs).

    The linear solve when the cells are linear at the read's voltages, else Newton, decided from the model
    as :meth:`LinearReads.read_many` decides (this used to return the linearised read whatever the cells:
    66 % off for a ``stanford_pku`` cell at 0.7 V). ``method``: the linear solver (see :class:`LinearReads`;
    ``auto`` uses the line solver on plain 1R crossbars).
    """
    reads = LinearReads(circuit, method=method)
    if vector is None:
        vector = np.zeros(reads.n_in)
        vector[reads.in_line] = reads.source_values[reads.in_source]
        if not np.array_equal(reads._source_values(vector[None])[:, 0], reads.source_values):
            raise ValueError("dc_read: the circuit's input sources of one row differ (e.g. both ends driven "
                             "at other values); pass the read vector")
    return reads.read_many(np.asarray(vector, dtype=float)[None])[0]


def read_many(circuit: Circuit, vectors) -> np.ndarray:
    """Column currents (n_vectors, cols) for many read vectors (n_vectors, rows): the DC solutions
    (linear shortcut only when the cells are linear at the read voltages; see ``batch.py``)."""
    return LinearReads(circuit).read_many(vectors)
