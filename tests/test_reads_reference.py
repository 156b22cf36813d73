"""Batched reads against an independent exact nodal solver, on generated crossbars.

The reference below is written here from the circuit model alone -- Kirchhoff's current law at
every node that no source fixes, dense Newton (steps limited to 50 mV) with each device's
conductance by a central difference, iterated until the update is below 1e-13 V -- sharing no code with
``behavioural.batch`` / ``reads`` / ``linesolve`` / ``batchlines`` (only the device twins' I-V,
which the lockstep tests tie to the Verilog-A). Hypothesis draws the array (non-square, 1-10
rows and columns), the wire and driver resistances (0 included: nodes fixed by their sources),
the cells (linear ``vteam(iv = 0)``, nonlinear ``stanford_pku``) and the read vectors (both signs),
so every path -- transfer matrix, per-vector Newton on the line solver, no free nodes, and the
operating point through ``simulate`` -- is held to the same exact answer.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from circuitkit.behavioural import simulate
from circuitkit.behavioural.batch import CrossbarReader
from circuitkit.circuit.model import Devices, Resistors, VoltageSources
from circuitkit.workflow import load


def _describe(rows, cols, device, r_row, r_col, r_out, vector, cell="1R") -> str:
    wires = f"wires {{ r_row = {r_row}; r_col = {r_col} }}\n" if (r_row or r_col) else ""
    driver = f"driver rows {{ r_out = {r_out} }}\n" if r_out else ""
    return f"""title "generated read"
crossbar xb {{
    rows = {rows}
    cols = {cols}
    cell = {cell}
    device = {device}
    state = uniform(0.0, 1.0, seed = 3)
}}
{wires}{driver}sense cols {{ tia = ideal(rf = 1k) }}
stimulus {{
    read = [{", ".join(f"{v:.17g}" for v in vector)}]
}}
analysis op()
record column_currents
"""


def exact_reads(circuit, vectors: np.ndarray, voltages: bool = False):
    """Column currents (k, cols) of row-voltage vectors (k, rows): dense Newton on KCL (see the module doc);
    with ``voltages`` also every node's voltage (n_nodes, k), state terminals 0."""
    lay = circuit.crossbar
    n = circuit.n_nodes
    value = np.full(n, np.nan)                 # fixed node voltages (per vector below); ground 0
    value[0] = 0.0
    rows_src = circuit.group(lay.row_sources[0]) if len(lay.row_sources) == 1 else None
    assert rows_src is not None, "one row-source group expected"
    fixed_const = {}
    for g in circuit.groups_of(VoltageSources):
        assert np.all(g.n_ == 0), "grounded sources only"
        if g.name == rows_src.name:
            continue
        for node, w in zip(g.p, g.waveforms):
            fixed_const[int(node)] = float(w(0.0))
    devices = []
    for g in circuit.groups_of(Devices):
        p = g.resolved()
        x = np.vstack([np.broadcast_to(np.asarray(p[s.init], float), (g.n,)) for s in g.model.states]) \
            if g.model.states else np.empty((0, g.n))
        devices.append((g, p, x))
    resistors = [(g, 1.0 / np.broadcast_to(np.asarray(g.r, float), g.a.shape)) for g in circuit.groups_of(Resistors)]
    out = np.zeros((len(vectors), lay.cols))
    nodes = np.zeros((n, len(vectors)))
    for k, vec in enumerate(vectors):
        fixed = dict(fixed_const)
        for node, r in zip(rows_src.p, lay.driven_rows):
            fixed[int(node)] = float(vec[r])
        V = np.zeros(n)
        known = np.zeros(n, bool)
        known[0] = True
        for node, v in fixed.items():
            V[node], known[node] = v, True
        for g, *_ in devices:                      # state terminals: not part of a DC read
            known[g.states.ravel()] = True
        free = np.flatnonzero(~known)
        pos = np.full(n, -1)
        pos[free] = np.arange(free.size)

        def kcl(V):
            """Current leaving every node through resistors and devices, and the Jacobian on free nodes."""
            f = np.zeros(n)
            J = np.zeros((free.size, free.size))
            pairs = []
            for g, cond in resistors:
                i = cond * (V[g.a] - V[g.b])
                np.add.at(f, g.a, i)
                np.add.at(f, g.b, -i)
                pairs.append((g.a, g.b, cond))
            for g, p, x in devices:
                v = V[g.p] - V[g.n_]
                i = np.asarray(g.model.current(v, x, p), float)
                h = 1e-7
                gd = (np.asarray(g.model.current(v + h, x, p), float)
                      - np.asarray(g.model.current(v - h, x, p), float)) / (2 * h)
                np.add.at(f, g.p, i)
                np.add.at(f, g.n_, -i)
                pairs.append((g.p, g.n_, gd))
            for a, b, gg in pairs:
                pa, pb = pos[a], pos[b]
                for r_, c_, s in ((pa, pa, 1.0), (pb, pb, 1.0), (pa, pb, -1.0), (pb, pa, -1.0)):
                    m = (r_ >= 0) & (c_ >= 0)
                    np.add.at(J, (r_[m], c_[m]), s * gg[m])
            return f, J

        for _ in range(300):
            if free.size == 0:
                break
            f, J = kcl(V)
            dv = np.clip(np.linalg.solve(J, -f[free]), -0.05, 0.05)   # limited steps: selectors are steep
            V[free] += dv
            if np.max(np.abs(dv)) < 1e-13:
                break
        else:
            raise AssertionError("reference Newton did not converge")
        f, _ = kcl(V)
        sense = circuit.group(lay.current_source)
        out[k, lay.sensed] = -f[sense.p]           # into the column source: the icol_j sign
        for g, *_ in devices:
            V[g.states.ravel()] = 0.0
        nodes[:, k] = V
    return (out, nodes) if voltages else out


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 10), cols=st.integers(1, 10),
       device=st.sampled_from(["vteam(iv = 0, ron = 10k, roff = 100k)", "stanford_pku()"]),
       r_row=st.sampled_from([0, 0.5, 3, 20]), r_col=st.sampled_from([0, 0.5, 3, 20]),
       r_out=st.sampled_from([0, 10]), seed=st.integers(0, 2**16), k=st.integers(1, 11))
@example(rows=1, cols=1, device="vteam(iv = 0, ron = 10k, roff = 100k)", r_row=0, r_col=0, r_out=10, seed=0, k=1)
@example(rows=1, cols=7, device="stanford_pku()", r_row=3, r_col=0, r_out=10, seed=1, k=3)
@example(rows=9, cols=1, device="stanford_pku()", r_row=0, r_col=20, r_out=0, seed=2, k=9)
@example(rows=1, cols=1, device="stanford_pku()", r_row=0.5, r_col=0.5, r_out=10, seed=3, k=1)
def test_batched_reads_equal_an_independent_exact_solve(tmp_path, rows, cols, device, r_row, r_col, r_out, seed, k):
    vectors = np.round(np.random.default_rng(seed).uniform(-0.25, 0.25, (k, rows)), 6)
    path = tmp_path / "gen.xbar"
    path.write_text(_describe(rows, cols, device, r_row, r_col, r_out, vectors[0]))
    circuit = load(path)[1]
    ref = exact_reads(circuit, vectors)
    reader = CrossbarReader(circuit)
    scale = max(np.abs(ref).max(), 1e-30)
    for force in (None, "newton"):
        res = reader.read(vectors, force=force)
        err = np.abs(res.currents - ref).max() / scale
        assert err < 1e-8, (force, res.summary(), err)
    # the operating point through simulate (its line-solver fast path where it applies) agrees too
    wf = simulate(circuit)
    icol = np.array([float(wf[f"icol_{j}"]) for j in range(cols)])
    assert np.abs(icol - ref[0]).max() <= 1e-8 * max(np.abs(ref[0]).max(), 1e-30), wf.meta.get("fast_path")


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 6), cols=st.integers(1, 6), r=st.sampled_from([0, 2, 10]), r_out=st.sampled_from([0, 10]),
       seed=st.integers(0, 999), k=st.integers(1, 5))
@example(rows=1, cols=1, r=0, r_out=0, seed=0, k=3)       # -0.92 V across one 1S1R cell: needs limited steps
def test_1s1r_reads_equal_an_independent_exact_solve(tmp_path, rows, cols, r, r_out, seed, k):
    """Selector cells (steep, far from linear at +-1 V; no line structure: the chord path and per-vector
    Newton with limited steps) against the same exact solve."""
    vectors = np.round(np.random.default_rng(seed).uniform(-1.0, 1.0, (k, rows)), 6)
    path = tmp_path / "sel.xbar"
    path.write_text(_describe(rows, cols, "vteam(iv = 0, ron = 10k, roff = 100k)", r, r, r_out, vectors[0], "1S1R"))
    circuit = load(path)[1]
    ref = exact_reads(circuit, vectors)
    res = CrossbarReader(circuit).read(vectors)
    scale = max(np.abs(ref).max(), 1e-30)
    assert np.abs(res.currents - ref).max() <= 1e-7 * scale, res.summary()
    wf = simulate(circuit)
    icol = np.array([float(wf[f"icol_{j}"]) for j in range(cols)])
    assert np.abs(icol - ref[0]).max() <= 1e-7 * scale
