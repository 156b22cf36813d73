"""Modified nodal analysis of a :class:`Circuit`, assembled once.

Unknowns ``y`` are the node voltages of nodes 1 .. n_nodes-1 (ground, node 0,
is eliminated) followed by one branch current per voltage source and per
VCVS (sources first, in group order). The circuit equations are

    F(y, t) = G y + i_nl(y) + d/dt (C y) - b(t) = 0

* rows of nodes are Kirchhoff's current law: the sum of currents *leaving*
  the node through its elements;
* rows of branches are the source constraints ``v(p) - v(n) = E(t)`` or
  ``v(p) - v(n) - gain (v(cp) - v(cn)) = 0``; a branch current flows into
  the + terminal, through the source, out of the - terminal (SPICE's sign);
* ``G`` holds resistors, VCCS and the branch incidence; ``C`` capacitors and,
  in a transient, a unit "capacitance" on every device state node, so a
  state row reads ``dx/dt - f(v, x) = 0`` with ``f`` from the twin (which
  already includes the GLEAK term, see ``devices/base.py``);
* at the operating point the state rows read ``x - x0 = 0`` instead (the
  ``op`` matrix and ``b_op`` below), as the Verilog-A ``analysis("static")``
  branch does;
* ``i_nl`` are the Verilog-A devices and MOSFETs (``nonlinear.py``).

Every stamp is built per element group as COO triplets with numpy (no loop
over elements). All matrices -- G, C, the op rows and the Jacobian entries of
the nonlinear elements -- share one CSC sparsity pattern
(:class:`SparsePattern`), so a Newton iteration only writes numbers into a
data array at precomputed positions and never rebuilds the structure.
Triplets touching ground point to a dummy position past the end and are
dropped by slicing.

Static condensation (:class:`Condensation`): a device state unknown whose
row and column touch nothing but its own device (the usual case: the state
terminal is private to the device) couples to the rest of the system only
through the device's two terminals, and the Jacobian block of a device's
states is a small dense ``n_states`` x ``n_states`` block (``a - df/dx`` in
a transient, the identity at the operating point). Such states are
eliminated from every linear solve by the Schur complement, device by
device with vector operations; the sparse LU only sees node voltages and
branch currents (``newton.py``). The elimination is exact (the same linear
system is solved), it only changes which matrix is factored.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..circuit.model import VCCS, VCVS, Capacitors, Circuit, Devices, Mosfets, Resistors, VoltageSources
from .nonlinear import DeviceStamp, MosfetStamp, NonlinearSet
from .sources import SourceBank


class SparsePattern:
    """A fixed CSC pattern of a ``size`` x ``size`` matrix covering every given (row, col).

    Row or column ``size`` is the dummy index of ground: such entries get
    data position ``nnz`` (one past the end) and vanish.
    """

    def __init__(self, size: int, rows: np.ndarray, cols: np.ndarray):
        self.size = size
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        keep = (rows < size) & (cols < size)
        self._keys = _sorted_unique(cols[keep] * size + rows[keep])
        self.nnz = int(self._keys.size)
        self.indices = (self._keys % size).astype(np.int32)
        counts = np.bincount(self._keys // size, minlength=size)
        self.indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)

    def positions(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Data positions of entries (any shape); ``nnz`` for entries touching ground."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        ground = (rows >= self.size) | (cols >= self.size)
        pos = np.searchsorted(self._keys, np.where(ground, 0, cols * self.size + rows))
        return np.where(ground, self.nnz, pos)

    def accumulate(self, positions: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Data array with ``values`` summed into ``positions`` (ground entries dropped)."""
        return np.bincount(positions.ravel(), weights=values.ravel(), minlength=self.nnz + 1)[:self.nnz]

    def matrix(self, data: np.ndarray) -> sp.csc_matrix:
        return sp.csc_matrix((data, self.indices, self.indptr), shape=(self.size, self.size))


class MnaSystem:
    """Everything about a circuit's equations that does not change during a simulation."""

    def __init__(self, circuit: Circuit):
        self.circuit = circuit
        self.n_v = circuit.n_nodes - 1
        sources = circuit.groups_of(VoltageSources)
        vcvs = circuit.groups_of(VCVS)
        self.branch_start: dict[str, int] = {}
        start = self.n_v
        for g in sources + vcvs:
            self.branch_start[f"{g.prefix}:{g.name}"] = start
            start += g.n
        self.size = start
        self.n_sources = sum(g.n for g in sources)
        self.sources = SourceBank([w for g in sources for w in g.waveforms])
        self.source_rows = np.arange(self.n_v, self.n_v + self.n_sources)

        triplets = {"g": [], "c": [], "op": []}
        self.b_op = np.zeros(self.size)      # constant right-hand side at the operating point
        for group in circuit.groups:
            self._stamp(group, triplets)
        g_shunt = shunt_conductance(circuit)
        if g_shunt:                      # ngspice's rshunt: a conductance from every node to ground
            nodes = np.arange(self.n_v)
            triplets["g"].append((nodes, nodes, np.full(self.n_v, g_shunt)))
        blocks = {key: tuple(_concat([part[k] for part in parts]) for k in range(3))
                  for key, parts in triplets.items()}
        stamps = ([DeviceStamp(g, self.unknown) for g in circuit.groups_of(Devices)]
                  + [MosfetStamp(g, self.unknown) for g in circuit.groups_of(Mosfets)])
        nonlinear = [s.jacobian_structure() for s in stamps]
        diag = np.arange(self.size)
        self.pattern = SparsePattern(
            self.size,
            _concat([r for r, _, _ in blocks.values()] + [diag] + [r.ravel() for r, _ in nonlinear]),
            _concat([c for _, c, _ in blocks.values()] + [diag] + [c.ravel() for _, c in nonlinear]))
        self.g_data, self.c_data, self.op_data = (
            self.pattern.accumulate(self.pattern.positions(r, c), v) for r, c, v in blocks.values())
        self.c_matrix = compact(self.pattern.matrix(self.c_data))   # for products: C's own nonzeros only
        self.nonlinear = NonlinearSet(stamps, self.pattern)
        offdiag = [(r[r != c], c[r != c]) for r, c, _ in blocks.values()]
        self.condensation = Condensation.build(self, [s for s in stamps if isinstance(s, DeviceStamp)],
                                               _concat([r for r, _ in offdiag] + [c for _, c in offdiag]),
                                               _concat([s.terms.ravel() for s in stamps]))

    # -- indices ------------------------------------------------------------
    def unknown(self, nodes) -> np.ndarray:
        """Unknown index of node ids; ground maps to the dummy index ``size``."""
        nodes = np.asarray(nodes, dtype=np.int64)
        return np.where(nodes == 0, self.size, nodes - 1)

    def branch(self, group: VoltageSources | VCVS, k) -> np.ndarray:
        """Unknown index of the branch current of element(s) ``k`` of a source group."""
        return self.branch_start[f"{group.prefix}:{group.name}"] + np.asarray(k, dtype=np.int64)

    def source_vector(self, t: float, scale: float = 1.0, values: np.ndarray | None = None) -> np.ndarray:
        """``b(t)``: the source values on their branch rows (operating-point constants not included);
        ``values`` (one per source, in source order) replaces the sources' own values at ``t``."""
        b = np.zeros(self.size)
        values = self.sources.values(t) if values is None else np.asarray(values, dtype=float)
        if scale != 1.0:
            values = scale * values
        b[self.n_v:self.n_v + self.n_sources] = values       # the source rows (a contiguous range)
        return b

    # -- stamps -------------------------------------------------------------
    def _stamp(self, g, triplets) -> None:
        u = self.unknown
        if isinstance(g, (Resistors, Capacitors, VoltageSources, VCVS, VCCS)):
            kind, rows, cols, vals = linear_stamp(g, u, lambda k: self.branch(g, k))
            triplets[kind].append((rows, cols, vals))
        elif isinstance(g, Devices):
            xs = u(g.states).ravel()
            one = np.ones(xs.size)
            triplets["c"].append((xs, xs, one))
            triplets["op"].append((xs, xs, one))
            self.b_op[xs] = initial_states(g)
        elif not isinstance(g, Mosfets):
            raise TypeError(f"behavioural engine: unsupported element group {type(g).__name__} '{g.name}'")


class Condensation:
    """Which device states are eliminated from the linear solves, and where their entries live.

    ``keep`` lists the unknowns left in the factored (reduced) system, in
    order; ``reduced`` maps a full unknown index to its reduced one (the
    dummy ``n_keep`` for eliminated states and ground, index ``size``).
    ``pattern`` is the reduced sparsity pattern and ``gather`` the full data
    position of each of its entries. Each block (one per device group with
    eliminated states) holds, for its ``m`` eliminated devices:

    * ``s`` (ns, m) state unknowns, ``t`` (2, m) terminal unknowns (p, n);
    * ``pos_ss`` (ns, ns, m), ``pos_ts`` (2, ns, m), ``pos_st`` (ns, 2, m),
      ``pos_d`` (ns, m): full data positions of the state block, the
      terminal-row/state-column entries, the state-row/terminal-column
      entries and the state diagonal (``nnz`` for ground);
    * ``red_t`` (2, m): reduced indices of the terminals;
    * ``pos_tt`` (2, 2, m): reduced data positions of the terminal block,
      where the Schur complement's corrections go.

    ``c_reduced`` tells whether the capacitance matrix has entries on the
    reduced system: if not, the reduced matrix does not depend on the
    integration coefficient except through the devices' tiny ``df/dv``.
    """

    def __init__(self, keep, reduced, pattern, gather, blocks, c_reduced):
        self.keep, self.reduced, self.pattern, self.gather = keep, reduced, pattern, gather
        self.blocks, self.c_reduced = blocks, c_reduced
        self.n_keep = int(keep.size)

    @classmethod
    def build(cls, system: "MnaSystem", stamps: list, linear_offdiag: np.ndarray,
              nonlinear_terms: np.ndarray) -> "Condensation | None":
        size, full = system.size, system.pattern
        linear_offdiag = np.asarray(linear_offdiag, dtype=np.int64)
        nonlinear_terms = np.asarray(nonlinear_terms, dtype=np.int64)
        # a state is private if no linear element touches it off the diagonal and it is no other terminal
        uses = np.bincount(nonlinear_terms[nonlinear_terms < size], minlength=size)
        shared = np.zeros(size + 1, bool)
        shared[linear_offdiag[linear_offdiag < size]] = True
        chosen = []
        for st in stamps:
            s = st.terms[2:]
            if s.shape[0] == 0:
                continue
            ok = np.all((s < size), axis=0)
            sc = np.where(s < size, s, 0)
            ok &= np.all((uses[sc] == 1) & ~shared[sc], axis=0)
            if ok.any():
                chosen.append((st, np.flatnonzero(ok)))
        if not chosen:
            return None
        eliminated = np.zeros(size, bool)
        for st, k in chosen:
            eliminated[st.terms[2:, k].ravel()] = True
        keep = np.flatnonzero(~eliminated)
        reduced = np.full(size + 1, keep.size, dtype=np.int64)
        reduced[keep] = np.arange(keep.size)
        cols = np.repeat(np.arange(size), np.diff(full.indptr))
        rows = full.indices.astype(np.int64)
        inside = ~eliminated[rows] & ~eliminated[cols]
        pattern = SparsePattern(keep.size, reduced[rows[inside]], reduced[cols[inside]])
        gather = np.empty(pattern.nnz, dtype=np.int64)
        gather[pattern.positions(reduced[rows[inside]], reduced[cols[inside]])] = np.flatnonzero(inside)
        blocks = []
        for st, k in chosen:
            s, t = st.terms[2:, k], st.terms[:2, k]
            ns = s.shape[0]
            shape = lambda a, b: (a.shape[0], b.shape[0]) + a.shape[1:]  # noqa: E731
            pos = lambda a, b: full.positions(np.broadcast_to(a[:, None], shape(a, b)),  # noqa: E731
                                              np.broadcast_to(b[None], shape(a, b)))
            rt = reduced[t]
            blocks.append(dict(s=s, t=t, ns=ns, pos_ss=pos(s, s), pos_ts=pos(t, s), pos_st=pos(s, t),
                               pos_d=full.positions(s, s), red_t=rt,
                               pos_tt=pattern.positions(np.broadcast_to(rt[:, None], (2, 2, rt.shape[1])),
                                                        np.broadcast_to(rt[None], (2, 2, rt.shape[1])))))
        c_reduced = bool(np.any(system.c_data[gather] != 0))
        return cls(keep, reduced, pattern, gather, blocks, c_reduced)


def shunt_conductance(circuit: Circuit) -> float:
    """``1 / rshunt`` when ``circuit.options["spice_options"]`` sets ngspice's ``rshunt``, else 0.

    ngspice (checked on ngspice 46): ``gmin`` (1e-12 S) goes only on
    semiconductor junctions and into the diagonal during gmin stepping, which
    is removed again, so a node without a DC path stays singular (ngspice
    then falls back to a transient operating point); ``.options rshunt = R``
    puts ``1/R`` from *every* node, internal device nodes included, to ground.
    The behavioural engine does the same with the same ``rshunt``, so a
    floating node solves alike in both engines; without it, it raises a
    clear error (singular matrix, the node named in reads).
    """
    opts = circuit.options.get("spice_options") or {}
    for name, value in opts.items():
        if str(name).lower() == "rshunt":
            r = float(value)
            if not (r > 0 and np.isfinite(r)):
                raise ValueError(f"spice option rshunt must be a positive resistance, got {value!r}")
            return 1.0 / r
    return 0.0


def linear_stamp(g, unknown, branch) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """``(matrix, rows, cols, values)`` of a linear group's MNA entries; matrix "g" or "c".

    ``unknown(nodes)`` maps node ids to unknown indices (ground to the dummy
    index), ``branch(k)`` gives the branch unknowns of elements ``k`` of a
    voltage source or VCVS group. Shared by :class:`MnaSystem` and the
    linear read solver (``reads.py``) so both stamp identically.
    """
    u = unknown
    if isinstance(g, (Resistors, Capacitors)):
        a, b = u(g.a), u(g.b)
        val = 1.0 / g.r if isinstance(g, Resistors) else g.c
        return ("g" if isinstance(g, Resistors) else "c", np.concatenate([a, a, b, b]),
                np.concatenate([a, b, a, b]), np.concatenate([val, -val, -val, val]))
    if isinstance(g, (VoltageSources, VCVS)):
        p, n, br = u(g.p), u(g.n_), branch(np.arange(g.n))
        one = np.ones(g.n)
        rows, cols, vals = [p, n, br, br], [br, br, p, n], [one, -one, one, -one]
        if isinstance(g, VCVS):
            rows += [br, br]
            cols += [u(g.cp), u(g.cn)]
            vals += [-g.gain, g.gain]
        return "g", np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    if isinstance(g, VCCS):
        p, n, cp, cn = u(g.p), u(g.n_), u(g.cp), u(g.cn)
        return ("g", np.concatenate([p, p, n, n]), np.concatenate([cp, cn, cp, cn]),
                np.concatenate([g.gm, -g.gm, -g.gm, g.gm]))
    raise TypeError(f"not a linear element group: {type(g).__name__} '{g.name}'")


def initial_states(g: Devices) -> np.ndarray:
    """Initial values of a device group's states, flattened like ``g.states.ravel()``."""
    params = g.resolved()
    if not g.model.states:
        return np.empty(0)
    return np.concatenate([np.broadcast_to(np.asarray(params[s.init], dtype=float), (g.n,))
                           for s in g.model.states])


def compact(matrix: sp.spmatrix) -> sp.csr_matrix:
    """A CSR copy of ``matrix`` without its explicit zeros (the shared pattern holds many): faster products."""
    out = sp.csr_matrix(matrix, copy=True)
    out.eliminate_zeros()
    return out


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """``np.unique`` by an in-place sort: numpy >= 2.3 hashes integer arrays in ``unique``, measured 1.5-3 s
    on the 1.7e6 stamp keys of a 256x256 crossbar against 0.1 s for the sort."""
    keys = np.array(keys, dtype=np.int64)
    if keys.size == 0:
        return keys
    keys.sort(kind="stable" if keys.size < 64 else "quicksort")
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))]


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(0)
