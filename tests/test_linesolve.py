"""The crossbar line solver (``circuitkit.behavioural.linesolve``) and its use by the linear reads.

The preconditioned conjugate-gradient line solver must give the direct
sparse solution (1e-9 relative on column currents) on every 1R layout the
builder makes -- square and not, drivers on both ends, floating rows and
columns, zero wire resistance on one family or both, and a bit line sensed at
both ends (added by hand: the description language refuses it) -- with a
small iteration count (a broken preconditioner needs hundreds); circuits
that are not plain 1R crossbars (1T1R, 1S1R, op-amp TIAs, nonlinear cells)
must fall back to the direct factorisation and say why; and at 32x32 the
fast path must match ngspice to 1e-6.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from circuitkit.behavioural import linesolve
from circuitkit.behavioural.linesolve import LineSystem, NotLineStructured
from circuitkit.behavioural.reads import LinearReads, dc_read
from circuitkit.circuit.model import Resistors, VoltageSources
from circuitkit.circuit.waveforms import DC
from circuitkit.workflow import load


def _text(rows, cols, *, wires="r_row = 2; r_col = 1.5", vector=None, cell="1R", device="vteam(iv = 0)",
          sense="ideal(rf = 1k)", read_extra="", extra=""):
    rng = np.random.default_rng(rows * 100 + cols)
    vec = vector if vector is not None else rng.uniform(0.0, 0.2, rows)
    vtext = ", ".join("float" if v is None else f"{v:.6g}" for v in vec)
    read = f"read([{vtext}]{read_extra})" if read_extra else f"[{vtext}]"
    transistor = "transistor = nmos(vto = 0.5, kp = 200u, lambda_ = 0.02, w = 1u, l = 100n)" if cell == "1T1R" else ""
    selector = "selector = selector()" if cell == "1S1R" else ""
    return f"""title "line solver"
crossbar xb {{
    rows = {rows}
    cols = {cols}
    cell = {cell}
    device = {device}
    {transistor}
    {selector}
    state = uniform(0.0, 1.0, seed = 5)
}}
wires {{ {wires} }}
driver rows {{ r_out = 10 {extra} }}
sense cols {{ tia = {sense} }}
stimulus {{
    read = {read}
}}
analysis op()
record column_currents
"""


def _circuit(tmp_path, rows, cols, **kw):
    path = tmp_path / f"x{rows}_{cols}.xbar"
    path.write_text(_text(rows, cols, **kw))
    return load(path)[1]


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def _pcg_vs_direct(circuit, vectors=None):
    fast = LinearReads(circuit, method="pcg")
    direct = LinearReads(circuit, method="direct")
    a, b = fast.read(vectors), direct.read(vectors)
    assert fast.stats["method"] == "pcg" and direct.stats["method"] == "direct"
    return _rel(a, b), fast


LAYOUTS = {
    "8x8": dict(rows=8, cols=8),
    "32x16": dict(rows=32, cols=16),
    "16x32-drive-both": dict(rows=16, cols=32, wires="r_row = 2; r_col = 1.5; drive = both"),
    "12x12-sense-top": dict(rows=12, cols=12, wires="r_row = 1; r_col = 3; sense = top"),
    "10x10-floating-rows": dict(rows=10, cols=10, vector=[0.2, None, 0.1, None, 0.05, 0.15, None, 0.1, 0.2, None]),
    "10x10-floating-cols": dict(rows=10, cols=10, read_extra=", sense = [0, 3, 4, 9]"),
    "9x7-no-row-wires": dict(rows=9, cols=7, wires="r_row = 0; r_col = 1.5"),
    "9x7-no-col-wires": dict(rows=9, cols=7, wires="r_row = 2; r_col = 0"),
    "6x6-no-wires-floating": dict(rows=6, cols=6, wires="r_row = 0; r_col = 0",
                                  vector=[0.2, None, 0.1, None, None, 0.05], read_extra=", sense = [0, 2]"),
}


@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
def test_pcg_equals_direct_solve(tmp_path, layout):
    kw = LAYOUTS[layout]
    c = _circuit(tmp_path, **kw)
    err, fast = _pcg_vs_direct(c)
    assert err < 1e-9, (layout, err)
    # several vectors at once (floating rows' entries are ignored)
    vectors = np.random.default_rng(3).uniform(-0.2, 0.2, (4, kw["rows"]))
    err, _ = _pcg_vs_direct(c, vectors)
    assert err < 1e-9, (layout, err)
    assert fast.stats["iterations"] < 40


def test_sense_at_both_ends_by_hand(tmp_path):
    """A second virtual ground on the top of every bit line (the builder refuses ``sense = both``)."""
    c = _circuit(tmp_path, 12, 10)
    bl = next(b for b in c.blocks if b.name == "xb_bl").ids()
    top = c.add_nodes("xb_cendt", (10,))
    c.add(Resistors("xb_scolt", (10,), a=bl[0, :], b=top, r=1.5))
    c.add(VoltageSources("xb_vcolt", (10,), p=top, n_=np.zeros(10, np.int64), waveforms=[DC(0.0)] * 10))
    err, fast = _pcg_vs_direct(c)
    assert err < 1e-9
    assert fast.stats["lines"] == (12, 10)


def test_iterations_stay_small_at_64x64(tmp_path):
    c = _circuit(tmp_path, 64, 64, wires="r_row = 1; r_col = 1")
    err, fast = _pcg_vs_direct(c)
    assert err < 1e-9
    # measured 11; unpreconditioned CG needs hundreds, block Jacobi on the full system about twice as many
    assert 0 < fast.stats["iterations"] < 30


def test_auto_uses_pcg_and_dc_read_matches(tmp_path):
    c = _circuit(tmp_path, 16, 16)
    reads = LinearReads(c)
    got = reads.read()[0]
    assert reads.stats["method"] == "pcg" and reads.stats["line_solver"] is None
    assert reads.lu is None                                   # no factorisation was needed
    assert _rel(dc_read(c), LinearReads(c, method="direct").read()[0]) < 1e-9
    assert _rel(got, reads.read(method="direct")[0]) < 1e-9
    assert reads.stats["method"] == "direct"
    chk = reads.check()
    assert chk["converged"] and reads.stats["method"] == "pcg"
    # batched reads keep the factorisation (transfer matrix)
    v = np.random.default_rng(1).uniform(0, 0.2, (3, 16))
    assert _rel(reads.read_many(v), reads.read(v)) < 1e-9


@pytest.mark.parametrize("kind,kw", [
    ("1T1R", dict(cell="1T1R", extra="; vgate = 1.8")),
    ("1S1R", dict(cell="1S1R")),
    ("opamp", dict(sense="opamp(rf = 2k, gain = 1e4)")),
    ("nonlinear-cells", dict(device="stanford_pku()")),
])
@pytest.mark.filterwarnings("ignore::circuitkit.behavioural.reads.LinearisedReadWarning")   # the method, not the value
def test_fallback_to_direct(tmp_path, kind, kw):
    c = _circuit(tmp_path, 6, 6, **kw)
    reads = LinearReads(c)
    out = reads.read()
    assert reads.stats["method"] == "direct"
    assert reads.stats["line_solver"]                     # the reason
    assert _rel(out, LinearReads(c, method="direct").read()) < 1e-12
    with pytest.raises(ValueError, match="line solver does not apply"):
        LinearReads(c, method="pcg").read()


def test_bad_method_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="method"):
        LinearReads(_circuit(tmp_path, 3, 3), method="cg")


# -- LineSystem on hand-made matrices ------------------------------------------------------

def _chains_matrix(lines_a, lines_b, length, seed=0, g_wire=1.0, g_cell=(1e-4, 1e-3)):
    """Word chains (family 0) and bit chains (1), cells between node k of line i and node i of line k."""
    rng = np.random.default_rng(seed)
    n_a, n_b = lines_a * length, lines_b * length
    n = n_a + n_b
    rows, cols, vals = [], [], []

    def edge(a, b, g):
        rows.extend([a, a, b, b]), cols.extend([a, b, a, b]), vals.extend([g, -g, -g, g])

    for i in range(lines_a):
        for k in range(length - 1):
            edge(i * length + k, i * length + k + 1, g_wire)
        rows.append(i * length), cols.append(i * length), vals.append(0.1)   # driver end
    for j in range(lines_b):
        for k in range(length - 1):
            edge(n_a + j * length + k, n_a + j * length + k + 1, g_wire)
        rows.append(n_a + j * length + length - 1), cols.append(n_a + j * length + length - 1), vals.append(1.0)
    for i in range(lines_a):
        for j in range(min(lines_b, length)):
            if i < length:
                edge(i * length + j, n_a + j * length + i, rng.uniform(*g_cell))
    K = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    seed_f = np.r_[np.zeros(n_a, np.int64), np.ones(n_b, np.int64)]
    perm = rng.permutation(n)                                  # hide the order
    return K[perm][:, perm].tocsr(), seed_f[perm]


def test_line_system_solves_permuted_chains():
    K, seed = _chains_matrix(7, 7, 7, g_wire=2.0)
    ls = LineSystem.build(K, seed)
    assert ls.n_lines == (7, 7)
    b = np.random.default_rng(2).normal(size=(K.shape[0], 3))
    x = ls.solve(b)
    ref = spla.spsolve(K.tocsc(), b)
    assert _rel(x, ref) < 1e-9
    assert _rel(ls.solve(b[:, 0]), ref[:, 0]) < 1e-9


def test_line_system_rejects_what_it_cannot_solve():
    K, seed = _chains_matrix(4, 4, 4)
    n = K.shape[0]
    # a third wire on a node
    word = np.flatnonzero(seed == 0)
    extra = sp.csr_matrix(([1.0, -1.0, -1.0, 1.0], ([word[0], word[0], word[5], word[5]],
                                                    [word[0], word[5], word[0], word[5]])), shape=(n, n))
    with pytest.raises(NotLineStructured):
        LineSystem.build(K + extra + extra, seed)          # also a loop / degree > 2 somewhere
    with pytest.raises(NotLineStructured, match="symmetric"):
        bad = K.tolil()
        bad[0, 1] = bad[0, 1] - 1e-3
        LineSystem.build(bad.tocsr(), seed)
    # no source: a pure Laplacian is singular
    lap = K - sp.diags(np.asarray(K.sum(axis=1)).ravel())
    with pytest.raises(NotLineStructured, match="no DC path|not positive definite|diagonal"):
        LineSystem.build(lap.tocsr(), seed)
    with pytest.raises(NotLineStructured, match="more than two|word line and a bit line|outside"):
        LineSystem.build(K, np.zeros(n, np.int64))         # cells taken for wires: one family, degree 3
    with pytest.raises(NotLineStructured):
        LineSystem.build(K, np.where(seed == 0, -1, seed))   # word lines unseeded: cells become wires


@pytest.mark.spice
def test_pcg_read_matches_ngspice_32x32(tmp_path):
    from circuitkit.engines import simulate
    c = _circuit(tmp_path, 32, 32, wires="r_row = 1; r_col = 1")
    reads = LinearReads(c)
    got = reads.read()[0]
    assert reads.stats["method"] == "pcg"
    wf = simulate(c, "spice")
    ref = np.array([float(wf[f"icol_{j}"]) for j in range(32)])
    assert _rel(got, ref) < 1e-6


# -- the two-level preconditioner (line smoothing + coarse correction on cell patches) ------------

@pytest.mark.parametrize("rows,cols,wires", [
    (24, 24, "r_row = 0.5; r_col = 0.5"),
    (24, 24, "r_row = 2.5; r_col = 2.5"),
    (24, 24, "r_row = 10; r_col = 10"),
    (40, 12, "r_row = 1; r_col = 4"),
    (12, 40, "r_row = 4; r_col = 1; drive = both"),
    (30, 18, "r_row = 1; r_col = 1; sense = top"),
])
def test_two_level_equals_direct_solve(tmp_path, monkeypatch, rows, cols, wires):
    """Reads switched to two-level after two line iterations (the restart path) give the direct solution on
    other wires and non-square arrays, one vector and several at once; the coarse space is in use."""
    monkeypatch.setattr(linesolve, "SWITCH_PROBE", 2)
    monkeypatch.setattr(linesolve, "SWITCH_LINE_ITERATIONS", 0)      # always predicted too slow
    c = _circuit(tmp_path, rows, cols, wires=wires)
    err, fast = _pcg_vs_direct(c)
    assert err < 1e-9
    assert fast.lines.coarse_size > 0 and fast.lines.coarse is not None
    assert fast.lines.last_line_iterations == 2 < fast.lines.last_iterations
    vectors = np.random.default_rng(4).uniform(-0.2, 0.2, (5, rows))
    err, _ = _pcg_vs_direct(c, vectors)
    assert err < 1e-9
    # and two-level from the start
    ls = LineSystem.build(fast.K, _seed(fast), symmetric=True, coarse_block=4)
    b = np.random.default_rng(6).normal(size=(fast.K.shape[0], 3))
    assert _rel(ls.solve(b), spla.spsolve(fast.K.tocsc(), b)) < 1e-9
    assert ls.last_line_iterations == 0 and ls.last_iterations > 0


def test_small_arrays_keep_the_lines_alone(tmp_path):
    """The default builds no coarse space where the lines alone converge fast (16x16: a few iterations)."""
    reads = LinearReads(_circuit(tmp_path, 16, 16), method="pcg")
    reads.read()
    assert reads.lines.coarse is None and reads.lines.last_iterations == reads.lines.last_line_iterations > 0


def test_slow_lines_switch_to_two_level_by_default():
    """Wires (0.05 S, like 20 ohm) against cells of 20..50 mS on 64 lines of 64: the lines alone need more
    than SWITCH_LINE_ITERATIONS (measured 96); the default predicts that after SWITCH_PROBE iterations and
    switches (measured 75 in all, 10 of them with the lines alone)."""
    K, seed = _chains_matrix(64, 64, 64, seed=4, g_wire=0.05, g_cell=(2e-2, 5e-2))
    rhs = np.random.default_rng(9).normal(size=(K.shape[0], 2))
    ref = spla.spsolve(K.tocsc(), rhs)
    alone = LineSystem.build(K, seed, coarse_block=0)
    assert _rel(alone.solve(rhs), ref) < 1e-9
    assert alone.last_iterations > linesolve.SWITCH_LINE_ITERATIONS
    auto = LineSystem.build(K, seed)
    assert auto.coarse is None                           # not built until a solve needs it
    assert _rel(auto.solve(rhs), ref) < 1e-9
    assert auto.coarse is not None and auto.last_line_iterations == linesolve.SWITCH_PROBE
    assert auto.last_iterations < alone.last_iterations


@pytest.mark.parametrize("block", [0, 1, 2, 3, 4, 50])
def test_line_system_any_coarse_block_solves(block):
    """Every patch size (0: lines alone; 1: one aggregate per cell; 50: the whole array one aggregate) gives
    the direct solution, for hidden orderings, uncoupled lines (word lines 6..8 have no cells) and 4 RHS."""
    K, seed = _chains_matrix(9, 5, 6, seed=3, g_wire=1.0, g_cell=(1e-2, 1.0))
    ls = LineSystem.build(K, seed, coarse_block=block)
    assert (ls.coarse_size > 0) == (block > 0) and ls.coarse_reason == (None if block else "disabled")
    if block == 50:
        assert ls.coarse_size == 1
    b = np.random.default_rng(5).normal(size=(K.shape[0], 4))
    ref = spla.spsolve(K.tocsc(), b)
    assert _rel(ls.solve(b), ref) < 1e-9
    assert _rel(ls.solve(b[:, 1]), ref[:, 1]) < 1e-9
    # a warm start from the answer needs no iteration
    ls.solve(b[:, 2], x0=ref[:, 2])
    assert ls.last_iterations <= 1


def test_two_level_beats_lines_alone_and_stays_flat(tmp_path):
    """Cells as conductive as the wires (the benchmark's 1 ohm / 50 ohm..1 kohm) make the lines alone need
    iterations growing with the line length (measured 10, 13, 20 at 32, 64, 128); the coarse correction
    removes the smooth long-wavelength mode (measured 5, 7, 10)."""
    its = {}
    for n in (32, 64, 128):
        c = _circuit(tmp_path, n, n, wires="r_row = 1; r_col = 1")
        reads = LinearReads(c, method="pcg")
        single = LineSystem.build(reads.K, _seed(reads), symmetric=True, coarse_block=0)
        two = LineSystem.build(reads.K, _seed(reads), symmetric=True, coarse_block=4)
        rhs = np.random.default_rng(n).normal(size=reads.K.shape[0])
        ref = single.solve(rhs, rtol=1e-13)
        x = two.solve(rhs)
        assert _rel(x, ref) < 1e-9
        its[n] = (two.last_iterations, single.last_iterations)
    assert its[64][0] < its[64][1] and its[128][0] < its[128][1] - 3, its
    assert its[128][0] - its[32][0] < its[128][1] - its[32][1], its       # grows less with the line length


def _seed(reads):
    seed = np.full(reads.free.size, -1, np.int64)
    g = reads._devices[0][0]
    for nodes, family in ((g.p, 0), (g.n_, 1)):
        pos = reads.where[reads.unknown(nodes)]
        seed[pos[pos >= 0]] = family
    return seed


def test_not_line_structured_still_raised_with_coarse_space():
    """The two-level build refuses what the line build refuses (the coarse space comes after the checks)."""
    K, seed = _chains_matrix(4, 4, 4)
    lap = K - sp.diags(np.asarray(K.sum(axis=1)).ravel())
    for block in (0, 4):
        with pytest.raises(NotLineStructured):
            LineSystem.build(lap.tocsr(), seed, coarse_block=block)
        with pytest.raises(NotLineStructured):
            LineSystem.build(K, np.zeros(K.shape[0], np.int64), coarse_block=block)


# -- the interleaved layout and compiled kernels of the CG loop (linesolve._Interleaved) -------------

def _uneven_matrix(lengths_a, lengths_b, cells, seed=0):
    """Word chains of ``lengths_a`` (family 0) and bit chains of ``lengths_b`` (family 1), every chain
    grounded at its first node; ``cells`` random cells (conductance 1e-3..1e-1) between a random node
    of each family -- several per node, some nodes none. Returns K (permuted), the family seed."""
    rng = np.random.default_rng(seed)
    starts_a = np.concatenate([[0], np.cumsum(lengths_a)])
    n_a = int(starts_a[-1])
    starts_b = n_a + np.concatenate([[0], np.cumsum(lengths_b)])
    n = int(starts_b[-1])
    rows, cols, vals = [], [], []

    def edge(a, b, g):
        rows.extend([a, a, b, b]), cols.extend([a, b, a, b]), vals.extend([g, -g, -g, g])

    for starts in (starts_a, starts_b):
        for s, e in zip(starts[:-1], starts[1:]):
            for k in range(s, e - 1):
                edge(k, k + 1, rng.uniform(0.5, 2.0))
            rows.append(s), cols.append(s), vals.append(0.2)
    for _ in range(cells):
        edge(int(rng.integers(n_a)), int(rng.integers(n_a, n)), rng.uniform(1e-3, 1e-1))
    K = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    seed_f = np.r_[np.zeros(n_a, np.int64), np.ones(n - n_a, np.int64)]
    perm = rng.permutation(n)
    return K[perm][:, perm].tocsr(), seed_f[perm]


def _dense_blocks(ls, K):
    elim, it = ls.order
    Kd = K.toarray()
    return Kd[np.ix_(elim, elim)], Kd[np.ix_(it, it)], Kd[np.ix_(elim, it)]


@pytest.mark.parametrize("lengths_a, lengths_b, cells", [
    ([5, 9, 9, 1, 12, 9, 9, 9, 3, 9, 7], [8] * 9 + [2, 11], 40),      # several cells per node (csr kernels)
    ([400] + [1] * 9, [6] * 10, 40),                                   # very unequal lines: no interleaving
])
def test_interleaved_kernels_match_dense_algebra(lengths_a, lengths_b, cells):
    """The Schur product (also ``r - S p``), the line smoother and the CG step in the interleaved layout
    equal the dense ``S = B - C^T A^-1 C`` and ``B^-1`` of the matrix's own blocks; padding stays 0."""
    K, seed = _uneven_matrix(lengths_a, lengths_b, cells)
    ls = LineSystem.build(K, seed, coarse_block=0)
    ls.compiled = True                                    # the kernels (by default only from 4e5 unknowns)
    A, B, C = _dense_blocks(ls, K)
    S = B - C.T @ np.linalg.solve(A, C)
    la, lb, _, _ = ls._layout()
    assert lb.size >= B.shape[0] and la.size >= A.shape[0]
    assert (min(la.width, lb.width) == 1) == (max(lengths_a) > 100)      # padding bounded by the layout
    pad = np.setdiff1d(np.arange(lb.size), lb.pos)
    rng = np.random.default_rng(3)
    p, r = rng.normal(size=(B.shape[0], 2)), rng.normal(size=(B.shape[0], 2))
    y = ls._schur(lb.to(p))
    assert _rel(lb.back(y), S @ p) < 1e-12 and not y[:, pad].any()
    out = np.empty_like(y)
    dots = ls._schur(lb.to(p), minus=lb.to(r), out=out)
    assert _rel(lb.back(out), r - S @ p) < 1e-12
    assert np.allclose(dots, np.sum(p * (r - S @ p), axis=0), rtol=1e-12)
    z = ls._smooth(lb.to(r))
    assert _rel(lb.back(z), np.linalg.solve(B, r)) < 1e-12 and not z[:, pad].any()
    x, res, q, zz = lb.to(p), lb.to(r), lb.to(p + r), np.empty((2, lb.size))
    rz, zz = ls._cg_step(np.array([0.5, -2.0]), lb.to(p), q, x, res, zz)
    want = r - np.array([0.5, -2.0]) * (p + r)
    assert _rel(lb.back(x), p + np.array([0.5, -2.0]) * p) < 1e-14 and _rel(lb.back(res), want) < 1e-14
    assert np.allclose(rz, np.sum(want * np.linalg.solve(B, want), axis=0), rtol=1e-12)


@pytest.mark.parametrize("compiled", [False, True])
def test_uneven_lines_solve_with_coarse_space(compiled):
    """Unequal lines and several cells per node: CG (lines alone and two-level) gives the direct solution
    for one and several right-hand sides, by scipy/LAPACK and by the compiled kernels."""
    K, seed = _uneven_matrix([5, 9, 9, 1, 12, 9, 9, 9, 3, 9, 7, 9, 9], [8] * 12 + [2, 11], 60, seed=4)
    b = np.random.default_rng(5).normal(size=(K.shape[0], 3))
    ref = spla.spsolve(K.tocsc(), b)
    for block in (0, 2):
        ls = LineSystem.build(K, seed, coarse_block=block)
        ls.compiled = compiled
        assert _rel(ls.solve(b), ref) < 1e-9 and _rel(ls.solve(b[:, 1]), ref[:, 1]) < 1e-9
        assert (ls.coarse is not None) == (block > 0)


def test_compiled_and_scipy_paths_agree(monkeypatch):
    """Set-up (edge split, chain walk) and CG by the compiled kernels give the scipy/LAPACK path's
    structure and, to rounding, its iterates: same chain order, same iterations, answers within 1e-12."""
    K, seed = _chains_matrix(24, 20, 24, g_wire=1.0, g_cell=(1e-2, 1e-1))
    b = np.random.default_rng(7).normal(size=(K.shape[0], 2))
    plain = LineSystem.build(K, seed, coarse_block=2)
    monkeypatch.setattr(linesolve, "COMPILED_MIN_UNKNOWNS", 0)
    fast = LineSystem.build(K, seed, coarse_block=2)
    assert fast.compiled and not plain.compiled
    assert all(np.array_equal(a, c) for a, c in zip(fast.order, plain.order))
    assert all(np.allclose(a, c, rtol=1e-14, atol=0) for a, c in zip(fast.A + fast.B, plain.A + plain.B))
    x, y = fast.solve(b), plain.solve(b)
    assert fast.last_iterations == plain.last_iterations
    assert _rel(x, y) < 1e-12 and _rel(x, spla.spsolve(K.tocsc(), b)) < 1e-9


def test_a_ring_of_wires_is_refused(monkeypatch):
    """A word line closed into a ring (every node two wires) is found by the chain walk, not assumed."""
    K, seed = _chains_matrix(4, 4, 4)
    ls = LineSystem.build(K, seed, coarse_block=0)
    elim, it = ls.order                                   # chain order: a word line's nodes are consecutive
    word = elim if seed[elim[0]] == 0 else it
    first, last = word[0], word[3]                        # the two ends of the first word line (length 4)
    n = K.shape[0]
    ring = sp.csr_matrix(([1.0, -1.0, -1.0, 1.0], ([first, first, last, last], [first, last, first, last])),
                         shape=(n, n))
    with pytest.raises(NotLineStructured, match="loop"):
        LineSystem.build(K + ring, seed)
    monkeypatch.setattr(linesolve, "COMPILED_MIN_UNKNOWNS", 0)              # the compiled chain walk
    with pytest.raises(NotLineStructured, match="loop"):
        LineSystem.build(K + ring, seed)


def test_compiled_set_up_rejects_the_same(monkeypatch):
    """The compiled edge split and chain walk refuse what the numpy set-up refuses, with the same reasons."""
    monkeypatch.setattr(linesolve, "COMPILED_MIN_UNKNOWNS", 0)
    test_line_system_rejects_what_it_cannot_solve()
    test_not_line_structured_still_raised_with_coarse_space()
