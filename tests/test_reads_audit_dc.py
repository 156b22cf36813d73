"""Reads that were silently wrong or crashed (DC audit), held to answers computed here.

* A transient description's sources start at 0 V at t = 0 (its phases' edges come later), so a read
  that evaluated the sources that are not read inputs at t = 0 had every 1T1R word-select gate at 0 V:
  every column current ~0 A, ``run_inference`` outputs all zero (relative error 1.0), with no warning.
  Reads now evaluate them at the first read phase's sample time. The expected current is the closed
  form of one 1T1R cell: a linear memristor R in series with ngspice's level-1 transistor in triode,
  solved for the middle node by bisection.
* The chord path of the batched reads could step a vector far off (a 1S1R array at +-1.6 V), where the
  cells overflow; the Jacobian there was not finite and SuperLU raised a bare ``RuntimeError`` instead
  of the per-vector fallback running. Expected currents: the independent exact nodal solve of
  ``test_reads_reference``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from circuitkit.behavioural import LinearReads, read_crossbar
from circuitkit.workflow import load

from test_reads_reference import exact_reads

ONE_T_ONE_R = """title "one 1T1R cell, read in a transient"
crossbar xb {{
    rows = 1; cols = 1
    cell = 1T1R
    device = vteam(iv = 0, ron = 10k, roff = 100k, voff = 0.5, von = -0.5)
    transistor = nmos(vto = 0.5, kp = 200u, lambda_ = 0.02, w = 1u, l = 100n)
    state = constant(0)
}}
driver rows {{ vgate = 1.8 }}
sense cols {{ tia = ideal(rf = 1k) }}
stimulus {{
    duration = 20n
    read = [0.2]
}}
analysis {analysis}
record column_currents
"""


def _cell_current(v: float) -> float:
    """Closed form: row at v, memristor R = ron (x = 0) to the middle node m, nmos drain m, gate 1.8 V,
    source and bulk at the virtual ground. ngspice level 1 (beta = kp w / l, triode for vds < vgs - vto)
    plus its bulk-drain junction (IS = 1e-14 A, GMIN = 1e-12 S, reverse biased here)."""
    R, beta, lam, vgst = 10e3, 200e-6 * 1e-6 / 100e-9, 0.02, 1.8 - 0.5
    vt = 1.38064852e-23 * 300.15 / 1.6021766208e-19

    def drain(m):                                  # current into the drain: channel minus junction b->d
        ich = beta * (1 + lam * m) * m * (vgst - m / 2)
        vbd = -m
        ibd = 1e-12 * vbd - 1e-14 if vbd <= -3 * vt else 1e-14 * (math.exp(vbd / vt) - 1) + 1e-12 * vbd
        return ich - ibd

    lo, hi = 0.0, v
    for _ in range(200):                           # (v - m) / R = drain(m), increasing in m
        mid = 0.5 * (lo + hi)
        if (v - mid) / R - drain(mid) > 0:
            lo = mid
        else:
            hi = mid
    m = 0.5 * (lo + hi)
    return (v - m) / R


@pytest.mark.parametrize("analysis", ["tran(step = 0.5n)", "op()"])
def test_1t1r_reads_of_a_transient_description_have_their_gates_on(tmp_path, analysis):
    path = tmp_path / "cell.xbar"
    path.write_text(ONE_T_ONE_R.format(analysis=analysis))
    circuit = load(path)[1]
    vectors = np.array([[0.2], [0.1], [-0.15]])
    expected = np.array([_cell_current(v) for v in (0.2, 0.1)])
    assert expected.min() > 1e-6                     # microamps: the transistor conducts
    got = read_crossbar(circuit, vectors[:2]).currents[:, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-7)
    got = LinearReads(circuit).read_many(vectors[:2])[:, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-7)
    # an explicit time still reads there (t = 0 of the transient: gates at 0 V, nothing flows)
    if analysis.startswith("tran"):
        assert np.abs(read_crossbar(circuit, vectors, t=0.0).currents).max() < 1e-12


def test_1t1r_inference_of_a_transient_description_is_not_zero(tmp_path):
    from circuitkit.workloads.inference import run_inference
    w = np.array([[0.5, -1.0], [1.0, 0.25]])
    np.save(tmp_path / "w.npy", w)
    (tmp_path / "layer.xbar").write_text("""title "1T1R layer"
crossbar xb {
    rows = 2; cols = 4
    cell = 1T1R
    device = vteam(iv = 0, ron = 10k, roff = 100k, voff = 0.5, von = -0.5)
    transistor = nmos(vto = 0.5, kp = 200u, lambda_ = 0.02, w = 1u, l = 100n)
    state = weights("w.npy", mapping = differential, gmin = 1e-5, gmax = 1e-4, vread = 0.2)
}
driver rows { vgate = 1.8 }
sense cols { tia = ideal(rf = 1k) }
stimulus {
    duration = 20n
    read = [0.2, 0.1]
}
analysis tran(step = 0.5n)
record column_currents
""")
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    res = run_inference(tmp_path / "layer.xbar", x)
    # the transistors' on-resistance (~400 ohm in triode against 10-100 kohm cells) costs a few percent
    assert res.rel_error < 0.1, res.summary()


SNEAKY_1S1R = """title "1S1R array whose chord iteration overflows"
crossbar xb {
    rows = 3; cols = 3
    cell = 1S1R
    device = multisynapse()
    state = constant(0)
    selector = selector(vth = 0.4, ron = 1000, roff = 1meg)
}
wires { r_row = 0; r_col = 1000 }
driver rows { r_out = 10 }
driver cols { r_out = 100 }
sense cols { tia = ideal(rf = 1k) }
stimulus {
    read = [1.5769, 0.6064, 0.907]
}
analysis op()
record column_currents
"""


def test_batched_reads_recover_from_a_chord_step_into_overflow(tmp_path):
    path = tmp_path / "sneaky.xbar"
    path.write_text(SNEAKY_1S1R)
    circuit = load(path)[1]
    vectors = np.array([[1.5769, 0.6064, 0.907], [-1.4638, -0.3875, -1.1862],
                        [0.5246, 1.5007, 0.5608], [0.0, 0.0, 0.0]])
    ref = exact_reads(circuit, vectors)
    res = read_crossbar(circuit, vectors)            # raised RuntimeError: Factor is exactly singular
    assert np.abs(res.currents - ref).max() <= 1e-8 * np.abs(ref).max(), res.summary()


ILL = """title "floating row of 1e-6 ohm wires over 100 Mohm..1 Gohm cells"
crossbar xb {{
    rows = 5; cols = 6
    cell = 1R
    device = vteam(iv = 1, ron = 100meg, roff = 1g, voff = 0.5, von = -0.5)
    state = uniform(0, 1, seed = 79)
}}
wires {{ r_row = 1e-06; r_col = 100000.0; drive = both; sense = bottom }}
driver rows {{ r_out = 0.0 }}
sense cols {{ tia = ideal(rf = 1k) }}
stimulus {{
    duration = 20n
    read = read([-0.4523, -0.7103, {row}, -1.3109, 0.019], sense = [0, 2, 5])
}}
analysis op()
record column_currents
"""


def test_an_ill_conditioned_operating_point_says_so(tmp_path, capsys):
    """A floating row of 1e-6 ohm wires over 100 Mohm cells keeps its tie (1e-8 S against a 2e6 S diagonal)
    to a few digits: the fast path was 7.2e-3 off an exact rational solve (the full path and ngspice
    6.4e-4) and said nothing. Now the rounding check sends it to the full path with a note; with the row
    driven (well conditioned, every path exact) the fast path is taken without one."""
    from circuitkit.behavioural import simulate
    from circuitkit.cli import main
    (tmp_path / "ill.xbar").write_text(ILL.format(row="float"))
    (tmp_path / "ok.xbar").write_text(ILL.format(row="-0.9"))
    wf = simulate(load(tmp_path / "ill.xbar")[1])
    assert wf.meta["conditioning"].startswith("ill-conditioned") and wf.meta["fast_path"] == wf.meta["conditioning"]
    ok = simulate(load(tmp_path / "ok.xbar")[1])
    assert ok.meta["fast_path"] is True and "conditioning" not in ok.meta
    assert main(["simulate", str(tmp_path / "ill.xbar"), "--out", str(tmp_path / "o")]) == 0
    assert "note: ill-conditioned" in capsys.readouterr().out
