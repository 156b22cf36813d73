"""One entry point for batched reads (``behavioural/batch.py``): the DC solution of the nonlinear circuit.

Reference: the behavioural engine's full nodal Newton solve (``simulate`` of an
``op()``) of the same circuit with the read vector as its stimulus, and ngspice
on a sample. The linear shortcut must be refused for cells that are nonlinear
at the read voltages (``stanford_pku``: sinh I-V) and taken for linear cells.
"""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.behavioural import simulate
from circuitkit.behavioural.batch import CrossbarReader, read_crossbar
from circuitkit.behavioural.reads import LinearReads
from circuitkit.circuit.model import Devices
from circuitkit.workflow import load

N = 32


def _circuit(tmp_path, vector, device="stanford_pku()", name="pku.xbar", n=N, wires="r_row = 2; r_col = 2"):
    text = f"""title "nonlinear reads"
crossbar xb {{
    rows = {n}
    cols = {n}
    cell = 1R
    device = {device}
    state = uniform(0.0, 1.0, seed = 7)
}}
wires {{ {wires} }}
driver rows {{ r_out = 10 }}
sense cols {{ tia = ideal(rf = 1k) }}
stimulus {{
    read = [{", ".join(f"{v:.17g}" for v in vector)}]
}}
analysis op()
record column_currents
"""
    path = tmp_path / name
    path.write_text(text)
    return load(path)[1]


def _vectors(k, n=N, seed=3):
    return np.random.default_rng(seed).uniform(0.0, 0.2, (k, n))


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def _engine(circuit, n=N):
    wf = simulate(circuit)
    return np.array([float(wf[f"icol_{j}"]) for j in range(n)])


def test_nonlinear_cells_take_newton_and_match_full_solves(tmp_path):
    vectors = _vectors(6)
    circuit = _circuit(tmp_path, vectors[0])
    res = read_crossbar(circuit, vectors)
    assert res.method == "newton" and not res.linear
    assert res.linearity["xb_m"] > 1e-3                   # sinh(v/v0): far from its small-signal line at 0.2 V
    for k in (0, 3, 5):
        ref = _engine(_circuit(tmp_path, vectors[k], name=f"v{k}.xbar"))
        assert _rel(res.currents[k], ref) < 1e-6
    # the linearised read is what the issue saw: percent-level wrong, and check() says so
    reads = LinearReads(circuit)
    lin = reads.read_many_linear(vectors)
    assert _rel(lin[0], res.currents[0]) > 1e-3
    chk = reads.check(vectors)
    assert not chk["converged"] and chk["failed_vectors"] == len(vectors)
    # read_many of the linear reader now gives the DC solution too
    assert _rel(reads.read_many(vectors), res.currents) < 1e-9
    with pytest.raises(ValueError, match="linear shortcut"):
        CrossbarReader(circuit).read(vectors, force="transfer")


def test_linear_cells_take_the_transfer_matrix(tmp_path):
    vectors = _vectors(4, n=8)
    circuit = _circuit(tmp_path, vectors[0], device="vteam(iv = 0)", n=8)
    reader = CrossbarReader(circuit)
    res = reader.read(vectors)
    assert res.method == "transfer" and res.linear and res.linearity["xb_m"] < 1e-12
    newton = reader.read(vectors, force="newton")
    assert _rel(res.currents, newton.currents) < 1e-9
    assert _rel(res.currents[2], _engine(_circuit(tmp_path, vectors[2], device="vteam(iv = 0)", n=8,
                                                  name="v2.xbar"), n=8)) < 1e-9


@pytest.mark.spice
def test_nonlinear_batched_read_matches_ngspice(tmp_path):
    from circuitkit.workflow import cross_check
    vectors = _vectors(3, seed=11)
    circuit = _circuit(tmp_path, vectors[1])
    res = read_crossbar(circuit, vectors)
    spice = cross_check(circuit).spice
    ref = np.array([float(spice[f"icol_{j}"]) for j in range(N)])
    assert _rel(res.currents[1], ref) < 1e-6


def test_simulate_op_takes_the_line_solver_only_when_it_may(tmp_path, monkeypatch):
    import circuitkit.behavioural.engine as engine
    vec = _vectors(1, n=12)[0]
    lin = _circuit(tmp_path, vec, device="vteam(iv = 0)", n=12, name="lin.xbar")
    fast = simulate(lin)
    assert fast.meta["fast_path"] is True and fast.meta["factorizations"] == 0
    monkeypatch.setattr(engine, "fast_operating_point", lambda c: (None, "disabled"))
    full = simulate(lin)
    monkeypatch.undo()
    ref = np.array([float(full[f"icol_{j}"]) for j in range(12)])
    assert _rel([float(fast[f"icol_{j}"]) for j in range(12)], ref) < 1e-9
    nonlinear = simulate(_circuit(tmp_path, vec, n=12, name="nl.xbar"))
    assert nonlinear.meta["fast_path"] == "cells nonlinear at the source values"


# -- the per-vector Newton on the line structure (batchlines.py) ---------------------------------------

def _direct_newton(circuit, values):
    """Reference: per-vector full Newton with a direct sparse LU solve (no line solver, no chord steps)."""
    ref = CrossbarReader(circuit, solver="direct")
    rhs = ref.lr._rhs(values)
    y0 = ref.lr.solve_free(rhs)
    y = np.stack([ref._newton_one(y0[:, j], values[:, j], rhs[:, j])[0] for j in range(values.shape[1])], axis=1)
    corr, _ = ref._deviation(ref._full(y, values), False)
    cur = ref.lr._outputs_from(y, values)
    cur[:, ref._out_elim] += (ref._out_sign[:, None] * corr[ref._out_node]).T
    return ref.lr._scatter(cur)


@pytest.mark.parametrize("fused", [True, False])
def test_line_batch_solves_each_vectors_own_matrix(tmp_path, monkeypatch, fused):
    """Both iterations -- the fused kernels of a one-to-one coupling and the general ones -- against each
    vector's own matrix assembled independently and solved by sparse LU."""
    import scipy.sparse.linalg as spla
    import circuitkit.behavioural.batchlines as batchlines
    from circuitkit.behavioural.batchlines import LineBatch
    monkeypatch.setattr(batchlines, "FUSED", fused)
    circuit = _circuit(tmp_path, _vectors(1, n=10)[0], n=10)
    lr = LinearReads(circuit)
    g, gd = lr._devices[0][0], lr._devices[0][3]
    p, q = lr.where[lr.unknown(g.p)], lr.where[lr.unknown(g.n_)]
    batch = LineBatch(lr.lines, p, q)
    assert batch.one is not None and batch.fused == fused      # a 1R array: every bit-line node has one cell
    rng = np.random.default_rng(5)
    k = 3                                                   # fewer than a batch's width: padded
    dg = rng.uniform(-0.5, 3.0, (g.n, k)) * gd[:, None]     # conductance changes (cells stay > 0)
    rhs = rng.normal(size=(lr.free.size, k))
    batch.factor(dg)
    x = batch.solve(rhs, rtol=1e-12)
    assert x.shape == (lr.free.size, k)
    for j in range(k):
        # the vector's own matrix assembled independently: K plus each cell's conductance change
        K = lr.K.tolil()
        for c in range(g.n):
            a, b, d = p[c], q[c], dg[c, j]
            if a >= 0:
                K[a, a] += d
            if b >= 0:
                K[b, b] += d
            if a >= 0 and b >= 0:
                K[a, b] -= d
                K[b, a] -= d
        ref = spla.spsolve(K.tocsc(), rhs[:, j])
        assert _rel(x[:, j], ref) < 1e-9


def test_per_vector_newton_reaches_the_direct_newton_solution(tmp_path):
    vectors = _vectors(11, n=16)                           # 8 + 3: a full batch and a padded one
    circuit = _circuit(tmp_path, vectors[0], n=16)
    reader = CrossbarReader(circuit)
    res = reader.read(vectors)
    assert res.method == "newton" and res.solver == "lines" and res.inner_iterations > 0
    ref = _direct_newton(circuit, reader.lr._source_values(vectors))
    assert _rel(res.currents, ref) < 1e-9
    # and the engine's operating point of one vector (full nodal Newton, its own assembly)
    assert _rel(res.currents[4], _engine(_circuit(tmp_path, vectors[4], n=16, name="v4.xbar"), n=16)) < 1e-9


def test_inexact_inner_solves_still_reach_the_direct_solution(tmp_path, monkeypatch):
    import circuitkit.behavioural.batch as batch
    vectors = _vectors(5, n=12)
    circuit = _circuit(tmp_path, vectors[0], n=12)
    default = CrossbarReader(circuit).read(vectors)
    # very loose inner solves (30 % relative residual) and a rough start: more Newton steps, same answer
    monkeypatch.setattr(batch, "ETA_MIN", 0.3)
    monkeypatch.setattr(batch, "ETA_MAX", 0.3)
    monkeypatch.setattr(batch, "START_RTOL", 0.5)
    loose = CrossbarReader(circuit).read(vectors)
    assert loose.solver == "lines" and loose.iterations > default.iterations
    ref = _direct_newton(circuit, CrossbarReader(circuit).lr._source_values(vectors))
    assert _rel(loose.currents, ref) < 1e-9 and _rel(default.currents, ref) < 1e-9


def test_vectors_the_batched_newton_cannot_solve_fall_back_to_the_operating_point(tmp_path, monkeypatch):
    import circuitkit.behavioural.batch as batch
    vectors = _vectors(3, n=8)
    circuit = _circuit(tmp_path, vectors[0], n=8)
    ref = _direct_newton(circuit, CrossbarReader(circuit).lr._source_values(vectors))
    for name, value in (("MAX_NEWTON", 1), ("MAX_SHARED", 0)):   # neither the line batches nor the chord
        monkeypatch.setattr(batch, name, value)                  # path (straight to 1-step Newton) converge
    res = CrossbarReader(circuit).read(vectors)
    assert "3 of 3 vectors by the engine's operating point" in res.solver
    assert _rel(res.currents, ref) < 1e-9


def test_newton_that_does_not_converge_raises(tmp_path, monkeypatch):
    import circuitkit.behavioural.batch as batch
    import circuitkit.behavioural.operating_point as op
    from circuitkit.behavioural.newton import NewtonFailure
    from circuitkit.errors import ConvergenceError
    vectors = _vectors(3, n=8)
    for name, value in (("MAX_NEWTON", 1), ("MAX_SHARED", 0)):
        monkeypatch.setattr(batch, name, value)

    def fails(*args, **kwargs):
        raise NewtonFailure("no convergence (test)")
    monkeypatch.setattr(op, "operating_point", fails)       # the fallback fails too: nothing unconverged returns
    with pytest.raises(ConvergenceError, match="did not converge.*operating point of that vector failed too"):
        CrossbarReader(_circuit(tmp_path, vectors[0], n=8)).read(vectors)


@pytest.mark.parametrize("count", [4, 20], ids=["one batch", "threaded batches"])
def test_batched_line_solve_failure_falls_back_to_the_chord_path(tmp_path, monkeypatch, count):
    import circuitkit.behavioural.batchlines as batchlines
    vectors = _vectors(count, n=8)
    circuit = _circuit(tmp_path, vectors[0], n=8)
    monkeypatch.setattr(batchlines, "MAX_ITERATIONS", 1)   # conjugate gradients cannot converge
    reader = CrossbarReader(circuit)
    res = reader.read(vectors)
    assert res.solver == "chord" and "batched line solve failed" in reader.solver_reason
    assert _rel(res.currents, _direct_newton(circuit, reader.lr._source_values(vectors))) < 1e-9


def test_cached_linearity_verdict_is_rechecked_when_the_voltages_grow(tmp_path, monkeypatch):
    # sinh(v / 0.25): within 1e-9 of its small-signal line for |v| <= 1e-5 V, far from it at 0.2 V
    vectors = _vectors(4, n=8)
    circuit = _circuit(tmp_path, vectors[0], n=8)
    reader = CrossbarReader(circuit)
    calls = []
    original = reader._linearity_of
    monkeypatch.setattr(reader, "_linearity_of", lambda groups, vmax: calls.append(vmax) or original(groups, vmax))
    small = reader.read(vectors * 5e-5)                      # |v| <= 1e-5 V: linear, checked, cached
    assert small.method == "transfer" and small.linear and len(calls) == 1
    smaller = reader.read(vectors * 2.5e-5)                  # within the cached bound: verdict reused
    assert smaller.method == "transfer" and len(calls) == 1 and "reused" in smaller.reason
    assert smaller.linearity == small.linearity
    full = reader.read(vectors)                              # beyond it: sampled again, nonlinear
    assert len(calls) == 2 and full.method == "newton" and not full.linear
    assert full.linearity["xb_m"] > 1e-3
    again = reader.read(vectors * 0.5)                       # nonlinear verdicts are not cached
    assert len(calls) == 3 and again.method == "newton"
    # the transfer path's answer at small voltages is the DC solution (Newton agrees)
    assert _rel(small.currents, reader.read(vectors * 5e-5, force="newton").currents) < 1e-9


def test_align_keeps_chains_monotone_or_the_original_order():
    import scipy.sparse as sp
    from circuitkit.behavioural.batchlines import _align
    e = np.array([1.0, 1.0, 0.0, 2.0])              # chains 0-1-2 and 3-4 (e[i]: wire between i and i+1)
    # coupling rows: node 0 -> 3, 1 -> 4, 2 -> 5, 3 -> 0, 4 -> 1: aligned order puts 3, 4 first
    C = sp.csr_matrix((np.ones(5), ([3, 4, 5, 0, 1], [0, 1, 2, 3, 4])), shape=(6, 5))
    sigma, pred, succ, e2 = _align(C, e, 5)
    assert list(sigma) == [3, 4, 0, 1, 2]
    assert list(pred) == [-1, 0, -1, 2, 3] and list(succ) == [1, -1, 3, 4, -1]
    assert list(e2) == [0.0, 2.0, 0.0, 1.0, 1.0]
    # node 1 coupled last: chain 0-1-2 would run 0, 2, 1 -- not monotone, so the chain order is kept
    C = sp.csr_matrix((np.ones(5), ([0, 5, 1, 2, 3], [0, 1, 2, 3, 4])), shape=(6, 5))
    sigma, pred, succ, e2 = _align(C, e, 5)
    assert list(sigma) == [0, 1, 2, 3, 4] and list(pred) == [-1, 0, 1, -1, 3]


def test_reads_without_free_nodes_are_the_cells_own_currents(tmp_path):
    """No wires and ideal drivers: every node is fixed by a source, so a column current is the sum of its
    cells' currents at the row voltages (closed form); the nonlinear path has nothing to solve and says so,
    and the node voltages it returns are the row voltages."""
    n = 6
    vectors = _vectors(3, n=n)
    text = f"""title "no free nodes"
crossbar xb {{
    rows = {n}
    cols = {n}
    cell = 1R
    device = stanford_pku()
    state = uniform(0.0, 1.0, seed = 7)
}}
sense cols {{ tia = ideal(rf = 1k) }}
stimulus {{
    read = [{", ".join(f"{v:.17g}" for v in vectors[0])}]
}}
analysis op()
record column_currents
"""
    path = tmp_path / "nofree.xbar"
    path.write_text(text)
    circuit = load(path)[1]
    res = CrossbarReader(circuit).read(vectors, voltages=True)
    assert res.method == "newton" and res.solver.startswith("none")
    g = circuit.groups_of(Devices)[0]
    p = g.resolved()
    x = np.vstack([np.broadcast_to(np.asarray(p[s.init], float), (g.n,)) for s in g.model.states])
    lay = circuit.crossbar
    for k, v in enumerate(vectors):
        vcell = res.voltages[g.p, k] - res.voltages[g.n_, k]
        i = g.model.current(vcell, x, p).reshape(n, n)           # cells in row-major order
        assert np.allclose(np.abs(res.currents[k]), np.abs(i.sum(axis=0)), rtol=1e-12)
        assert np.allclose(np.sort(np.unique(np.round(vcell, 15))), np.sort(np.unique(np.round(v, 15))))
    assert _rel(res.currents[0], _engine(circuit, n)) < 1e-9
    assert lay.rows == n


def test_one_to_one_coupling_is_recognised_only_when_it_is():
    import scipy.sparse as sp
    from circuitkit.behavioural.batchlines import _one_to_one
    # rows 0..3 (eliminated), columns 0..2 (iterated): row 1 has none, every column exactly one
    C = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), ([0, 2, 3], [1, 0, 2])), shape=(4, 3))
    col, ent = _one_to_one(C)
    assert list(col) == [1, -1, 0, 2] and list(ent) == [0, -1, 1, 2]
    assert list(C.data[ent[ent >= 0]]) == [1.0, 2.0, 3.0]
    two_in_a_row = sp.csr_matrix((np.ones(3), ([0, 0, 2], [0, 1, 2])), shape=(4, 3))
    two_in_a_column = sp.csr_matrix((np.ones(3), ([0, 1, 2], [0, 0, 2])), shape=(4, 3))
    uncoupled_column = sp.csr_matrix((np.ones(2), ([0, 1], [0, 1])), shape=(4, 3))
    assert _one_to_one(two_in_a_row) is None and _one_to_one(two_in_a_column) is None
    assert _one_to_one(uncoupled_column) is None


def test_secant_estimates_the_conductance_change():
    """I = sinh(v): g = cosh(v); the secant's estimate of g(v) - g(v0) from I(v) - I(v0) - g(v0)(v - v0) is
    exact to second order, and a non-positive g0 (or NaN) is refused."""
    from circuitkit.behavioural.batchlines import LANES, _secant_change
    v0 = np.linspace(0.05, 0.4, 3 * LANES).reshape(3, LANES)
    dv = 1e-4
    v = v0 + dv
    gd = np.full(3, 0.5)
    dg0 = np.cosh(v0) - gd[:, None]
    got = _secant_change(np.sinh(v), np.sinh(v0), v, v0, gd, dg0)
    exact = np.max(np.abs(np.cosh(v) - np.cosh(v0)) / np.cosh(v0))
    assert abs(got - exact) < 1e-3 * exact
    assert _secant_change(np.sinh(v0), np.sinh(v0), v0, v0, gd, dg0) == 0.0        # nothing moved
    assert _secant_change(np.sinh(v), np.sinh(v0), v, v0, gd, dg0 - 2.0) == np.inf  # g0 < 0
    bad = np.sinh(v)
    bad[1, 2] = np.nan
    assert _secant_change(bad, np.sinh(v0), v, v0, gd, dg0) == np.inf


def test_secant_update_is_exact_for_a_quadratic_current():
    """I = a v + b v^2: g = a + 2 b v, and the secant update from (v0, g(v0)) gives g(v) exactly (to
    rounding); cells whose voltage did not move keep their conductance."""
    from circuitkit.behavioural.batchlines import LANES, _secant_update
    a, b = 2.0, 0.7
    v0 = np.linspace(-0.3, 0.4, 4 * LANES).reshape(4, LANES)
    v = v0 + np.linspace(-1e-2, 2e-2, 4 * LANES).reshape(4, LANES)
    v[2, 3] = v0[2, 3]
    cur = lambda x: a * x + b * x * x                                                # noqa: E731
    gd = np.full(4, 1.5)
    dg0 = (a + 2 * b * v0) - gd[:, None]
    out = np.empty_like(v)
    _secant_update(cur(v), cur(v0), v, v0, gd, dg0, out)
    assert np.allclose(out + gd[:, None], a + 2 * b * v, rtol=1e-9, atol=0)
    assert out[2, 3] == dg0[2, 3]


def test_kept_jacobian_and_threads_do_not_change_the_reads(tmp_path, monkeypatch):
    """Three batches (two of them on the thread pool): the same currents bit for bit on one thread; the
    Jacobian kept for the last step (fewer factorisations) and secant-updated conductances against every
    step's own forward-difference Jacobian to far below the tolerance, and both at the direct per-vector
    Newton's solution."""
    import circuitkit.behavioural.batch as batch
    vectors = _vectors(20, n=12)
    circuit = _circuit(tmp_path, vectors[0], n=12)
    threaded = CrossbarReader(circuit).read(vectors, voltages=True)
    assert threaded.solver == "lines"
    monkeypatch.setattr(batch, "THREADS", 1)
    serial = CrossbarReader(circuit).read(vectors, voltages=True)
    assert np.array_equal(serial.currents, threaded.currents)
    assert serial.voltages.shape[1] == 20 and np.array_equal(serial.voltages, threaded.voltages)
    assert (serial.iterations, serial.inner_iterations, serial.factorizations) == (
        threaded.iterations, threaded.inner_iterations, threaded.factorizations)
    monkeypatch.setattr(batch, "JACOBIAN_REUSE", 0.0)
    monkeypatch.setattr(batch, "SECANT_UPDATE", 0.0)
    every = CrossbarReader(circuit).read(vectors)
    assert every.factorizations > serial.factorizations
    assert _rel(serial.currents, every.currents) < 1e-11
    ref = _direct_newton(circuit, CrossbarReader(circuit).lr._source_values(vectors))
    assert _rel(serial.currents, ref) < 1e-9 and _rel(every.currents, ref) < 1e-9
    import circuitkit.behavioural.batchlines as batchlines
    monkeypatch.setattr(batchlines, "FUSED", False)               # the general kernels: the same iteration
    general = CrossbarReader(circuit).read(vectors)
    assert general.solver == "lines" and _rel(general.currents, every.currents) < 1e-11


def test_output_correction_evaluates_only_the_cells_at_output_nodes(tmp_path):
    """Without wires every cell touches an output node: the restricted evaluation equals the rows of the
    full deviation (every cell evaluated)."""
    vectors = _vectors(3, n=6)
    circuit = _circuit(tmp_path, vectors[0], n=6, wires="r_row = 0; r_col = 0")
    reader = CrossbarReader(circuit)
    values = reader.lr._source_values(vectors)
    rng = np.random.default_rng(2)
    y = rng.uniform(0.0, 0.2, (reader.nf, values.shape[1]))
    vext = reader._full(y, values)
    full, _ = reader._deviation(vext, False)
    got = reader._out_deviation(vext)
    assert reader._out_node.size and np.any(got != 0)
    assert np.allclose(got, full[reader._out_node], rtol=1e-13, atol=0)


def test_structured_residual_is_the_sparse_one(tmp_path):
    """On a 1R array the nodal matrix is exactly its line structure: the streamed residual equals the
    sparse product's (to rounding), cells' deviation and frozen lanes included; a matrix that differs from
    its structure in one entry is refused."""
    import scipy.sparse as sp
    from circuitkit.behavioural.batchlines import LANES, _residual_cells, _residual_lines, _residual_sparse
    vectors = _vectors(3, n=10)
    circuit = _circuit(tmp_path, vectors[0], n=10)
    reader = CrossbarReader(circuit)
    reader.read(vectors)
    Kl, tp, tn, atol, lines = reader._line_order()
    assert lines is not None
    rng = np.random.default_rng(4)
    n, m = Kl.shape[0], tp.size
    y, rhs = rng.normal(size=(n, LANES)), rng.normal(size=(n, LANES))
    i, vd = rng.normal(size=(m, LANES)), rng.normal(size=(m, LANES))
    gd, off = rng.uniform(0.5, 1.0, m), rng.normal(size=m)
    done = np.zeros(LANES, bool)
    done[5] = True
    ref, got = np.empty_like(y), np.empty_like(y)
    _residual_sparse(Kl.indptr, Kl.indices, Kl.data, y, rhs, ref)
    nref = _residual_cells(i, vd, gd, off, tp, tn, done, ref)
    _residual_lines(*lines, y, rhs, got)
    ngot = _residual_cells(i, vd, gd, off, tp, tn, done, got)
    assert np.allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max()) and np.all(got[:, 5] == 0)
    assert np.allclose(ngot, nref, rtol=1e-12)
    other = Kl.tolil()
    other[0, 0] += 1e-3
    assert reader._batch.residual_structure(sp.csr_matrix(other)) is None


def test_scratch_factors_refuse_to_solve_once_overwritten(tmp_path):
    """Scratch factors live in the thread's reused arrays: newer ones overwrite them, and the older ones
    then raise instead of solving with another matrix; ordinary factors are unaffected."""
    from circuitkit.behavioural.batchlines import LANES, LineBatch
    circuit = _circuit(tmp_path, _vectors(1, n=6)[0], n=6)
    lr = LinearReads(circuit)
    g = lr._devices[0][0]
    batch = LineBatch(lr.lines, lr.where[lr.unknown(g.p)], lr.where[lr.unknown(g.n_)])
    dg = np.zeros((g.n, LANES))
    rhs = np.random.default_rng(1).normal(size=(batch.n, LANES))
    own = batch.factored(dg)
    first = batch.factored(dg, scratch=True)
    x, _ = first.solve_lines(rhs, np.full(LANES, 1e-12))
    batch.factored(dg + 1e-3, scratch=True)
    with pytest.raises(RuntimeError, match="overwritten"):
        first.solve_lines(rhs, np.full(LANES, 1e-12))
    assert _rel(own.solve_lines(rhs, np.full(LANES, 1e-12))[0], x) < 1e-9
