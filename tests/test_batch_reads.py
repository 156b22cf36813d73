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
