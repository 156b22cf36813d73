"""Batched linear reads (``circuitkit.behavioural.reads``) against full solves and the engine.

The transfer matrix (Schur complement of the ports, or multi-RHS solves when
that is unavailable) must give the same column currents as one full sparse
solve per vector, and the full solve the same as the behavioural engine's
Newton operating point; for linear-IV devices the Newton check must pass,
for access transistors (nonlinear) it must report the linearisation error.
"""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.behavioural import simulate
from circuitkit.behavioural.reads import LinearisedReadWarning, LinearReads, dc_read, read_many
from circuitkit.workflow import load


def _circuit(tmp_path, n, cell="1R", sense="ideal(rf = 1k)", wires="r_row = 2; r_col = 1.5", vector=None,
             extra_driver="", name="xb.xbar"):
    rng = np.random.default_rng(n)
    vec = vector if vector is not None else rng.uniform(0, 0.2, n)
    vtext = ", ".join("float" if v is None else f"{v:.6g}" for v in vec)
    transistor = "transistor = nmos(vto = 0.5, kp = 200u, lambda_ = 0.02, w = 1u, l = 100n)" if cell == "1T1R" else ""
    text = f"""title "reads"
crossbar xb {{
    rows = {n}
    cols = {n}
    cell = {cell}
    device = vteam(iv = 0)
    {transistor}
    state = uniform(0.0, 1.0, seed = 4)
}}
wires {{ {wires} }}
driver rows {{ r_out = 10 {extra_driver} }}
sense cols {{ tia = {sense} }}
stimulus {{
    read = [{vtext}]
}}
analysis op()
record column_currents
"""
    path = tmp_path / name
    path.write_text(text)
    return load(path)[1]


def _engine_currents(circuit, n):
    wf = simulate(circuit)
    return np.array([float(wf[f"icol_{j}"]) for j in range(n)])


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


@pytest.mark.parametrize("n", [3, 12])
def test_batched_reads_equal_full_solves(tmp_path, n):
    c = _circuit(tmp_path, n)
    reads = LinearReads(c)
    vectors = np.random.default_rng(1).uniform(-0.2, 0.2, (40, n))
    fast = reads.read_many(vectors)
    full = reads.read(vectors)
    assert fast.shape == (40, n)
    assert reads.transfer_method == "schur"
    assert _rel(fast, full) < 1e-9
    # and one full solve equals the behavioural engine's operating point
    assert _rel(reads.read()[0], _engine_currents(c, n)) < 1e-9
    assert _rel(read_many(c, vectors[:3]), full[:3]) < 1e-9


def test_repeated_batches_reuse_the_linearity_verdict_and_stay_exact(tmp_path):
    n = 10
    c = _circuit(tmp_path, n)
    reads = LinearReads(c)
    vectors = np.random.default_rng(2).uniform(-0.2, 0.2, (30, n))
    bound = float(np.max(vectors, initial=0.0) - np.min(vectors, initial=0.0))
    first = reads.read_many(vectors)
    assert reads.last_read.method == "transfer" and reads.last_read.vmax == pytest.approx(bound)
    assert "reused" not in reads.last_read.reason
    second = reads.read_many(vectors[:7] * 0.5)               # smaller voltages: the cached verdict
    assert reads.last_read.method == "transfer" and "reused" in reads.last_read.reason
    assert _rel(second, reads.read(vectors[:7] * 0.5)) < 1e-9
    assert _rel(first, reads.read(vectors)) < 1e-9
    # check() takes the vectors of the last read_many
    chk = reads.check()
    assert chk["converged"] and chk["vectors"] == 7


def test_dc_read_matches_engine_with_floating_rows_and_no_wires(tmp_path):
    vec = [0.2, None, 0.1, None, 0.05]
    c = _circuit(tmp_path, 5, wires="r_row = 0; r_col = 0", vector=vec)
    ref = _engine_currents(c, 5)
    got = dc_read(c, [0.2, 0.0, 0.1, 0.0, 0.05])
    assert _rel(got, ref) < 1e-9
    reads = LinearReads(c)
    # entries of floating rows are ignored
    assert _rel(reads.read_many([[0.2, 9.0, 0.1, -3.0, 0.05]])[0], ref) < 1e-9


def test_newton_check_linear_devices_exact(tmp_path):
    c = _circuit(tmp_path, 6)
    chk = LinearReads(c).check()
    assert chk["converged"]
    assert chk["max_residual"] <= 1e-12 * chk["current_scale"]


def test_opamp_tia_reads_equal_engine(tmp_path):
    c = _circuit(tmp_path, 6, sense="opamp(rf = 2k, gain = 1e4)")
    reads = LinearReads(c)
    vectors = np.random.default_rng(5).uniform(0, 0.2, (10, 6))
    assert _rel(reads.read_many(vectors), reads.read(vectors)) < 1e-9
    assert _rel(reads.read()[0], _engine_currents(c, 6)) < 1e-9


def test_1t1r_linearisation_is_flagged_by_the_newton_check(tmp_path):
    c = _circuit(tmp_path, 4, cell="1T1R", extra_driver="; vgate = 1.8")
    reads = LinearReads(c)
    vectors = np.round(np.random.default_rng(2).uniform(0, 0.2, (5, 4)), 5)   # exactly as written to the files
    with pytest.warns(LinearisedReadWarning, match="5 of 5 vectors"):
        assert _rel(reads.read_many_linear(vectors), reads.read(vectors)) < 1e-9
    chk = reads.check(vectors)
    assert not chk["converged"]            # the transistor is nonlinear in v_ds
    assert chk["failed_vectors"] == 5
    # read_many is the DC solution of the nonlinear circuit (Newton), not the linearisation
    exact = reads.read_many(vectors)
    assert reads.last_read.method == "newton"
    for k in (0, 4):
        ck = _circuit(tmp_path, 4, cell="1T1R", extra_driver="; vgate = 1.8", vector=vectors[k], name=f"v{k}.xbar")
        assert _rel(exact[k], _engine_currents(ck, 4)) < 1e-8
    # the small-signal read is still close to the Newton solution at 0.2 V
    with pytest.warns(LinearisedReadWarning):
        assert _rel(reads.read()[0], _engine_currents(c, 4)) < 0.2


def test_bad_vector_length_is_rejected(tmp_path):
    reads = LinearReads(_circuit(tmp_path, 3))
    with pytest.raises(ValueError, match="3 values"):
        reads.read_many(np.zeros((2, 4)))


def test_dc_read_is_the_dc_solution_of_nonlinear_cells(tmp_path):
    """``dc_read`` returned the linearised read whatever the cells: a ``stanford_pku`` cell at 0.7 V was 66 %
    off. Reference: the cell behind its 10 ohm driver solved by bisection on the model twin's I-V."""
    from scipy.optimize import brentq

    from circuitkit.devices.registry import get_model
    (tmp_path / "one.xbar").write_text("""title "one nonlinear cell"
crossbar xb {
    rows = 1
    cols = 1
    cell = 1R
    device = stanford_pku()
}
driver rows { r_out = 10 }
sense cols { tia = ideal(rf = 1k) }
stimulus {
    read = [0.7]
}
analysis op()
record column_currents
""")
    c = load(tmp_path / "one.xbar")[1]
    from circuitkit.circuit.model import Devices
    g = c.groups_of(Devices)[0]
    model, p = get_model("stanford_pku"), g.resolved()
    x = np.asarray([[float(np.asarray(p[st.init]).ravel()[0])] for st in model.states])
    cur = lambda v: float(np.asarray(model.current(np.array([v]), x, p)).ravel()[0])   # noqa: E731
    v = brentq(lambda v: v + 10.0 * cur(v) - 0.7, 0.0, 0.7, xtol=1e-15)
    want = cur(v)
    with pytest.warns(LinearisedReadWarning, match="not the DC solution of 1 of 1"):
        lin = LinearReads(c).read([[0.7]])[0, 0]
    assert abs(abs(lin) - want) > 0.1 * want                      # the linearised read is far off here, and says so
    got = dc_read(c, [0.7])
    assert abs(abs(got[0]) - want) <= 1e-6 * want
    assert _rel(dc_read(c), got) < 1e-12                          # the circuit's own vector: the same read


def test_linear_read_of_linear_cells_says_nothing(tmp_path, recwarn):
    """No warning where the linearised read is the DC solution: linear cells, with ideal and op-amp TIAs."""
    for kw in ({}, dict(sense="opamp(rf = 2k, gain = 1e4)")):
        c = _circuit(tmp_path, 5, **kw)
        LinearReads(c).read(np.random.default_rng(1).uniform(0, 0.2, (4, 5)))
        LinearReads(c).read()
    assert not [w for w in recwarn if issubclass(w.category, LinearisedReadWarning)]
