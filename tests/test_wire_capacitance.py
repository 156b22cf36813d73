"""Wire capacitance is per segment: a line of zero wire resistance (one node) carries all of its segments'.

Closed form: a row of ``C`` cells of very high resistance, driven through the
row driver's output resistance ``R`` by a source ramping from 0 to ``V`` over
``tr``, is a single RC node of capacitance ``C * c_row`` (for ``r_row`` = 0,
and to within ``r_row * c_row`` for tiny ``r_row``). For ``t >= tr``:
``v(t) = V (1 - (tau / tr) (exp(tr / tau) - 1) exp(-t / tau))``, ``tau = R C c_row``.
"""
import math

import numpy as np
import pytest

from circuitkit.engines import simulate
from circuitkit.workflow import load

CELL = "vteam(iv = 0, ron = 1e12, roff = 1e13, von = -5, voff = 5)"


def _row(tmp_path, r_row: str, cols: int = 4):
    f = tmp_path / f"cap_{r_row}.xbar"
    f.write_text(f"crossbar xb {{ rows = 1; cols = {cols}; cell = 1R; device = {CELL}; state = 0.5 }}\n"
                 f"wires {{ r_row = {r_row}; c_row = 1p }}\n"
                 "driver rows { r_out = 1k; rise = 0.1n; fall = 0.1n }\n"
                 "stimulus { duration = 40n; read = [0.2] }\n"
                 "analysis tran(step = 0.01n, stop = 10n)\nrecord line_voltages\n")
    return load(f)[1]


def _closed_form(t, v=0.2, tau=1e3 * 4 * 1e-12, tr=0.1e-9):
    return v * (1 - (tau / tr) * (math.exp(tr / tau) - 1) * np.exp(-t / tau))


@pytest.mark.parametrize("r_row", ["0", "1m"])
def test_row_capacitance_adds_over_segments(tmp_path, r_row):
    c = _row(tmp_path, r_row)
    caps = c.group("xb_cwl")
    assert float(np.sum(caps.c)) == pytest.approx(4e-12, rel=1e-12)
    w = simulate(c, "behavioural")
    name = "vwl_0" if r_row == "0" else "vwl_0_3"
    t = np.asarray(w.time)
    keep = (t >= 0.5e-9) & (t <= 10e-9)
    np.testing.assert_allclose(np.asarray(w[name])[keep], _closed_form(t[keep]), rtol=2e-3, atol=1e-6)


def test_merged_row_capacitance_in_ngspice(tmp_path):
    """The netlist carries the same per-node capacitance: ngspice follows the closed form too."""
    c = _row(tmp_path, "0")
    w = simulate(c, "spice")
    t = np.asarray(w.time)
    keep = (t >= 0.5e-9) & (t <= 10e-9)
    np.testing.assert_allclose(np.asarray(w["vwl_0"])[keep], _closed_form(t[keep]), rtol=5e-3, atol=1e-6)
