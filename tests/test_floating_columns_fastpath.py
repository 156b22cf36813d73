"""Two DC cases an independent nodal solver caught (session-20 audit):

* ``read(..., sense = [])`` leaves every column floating (it used to build op-amp TIAs on all of them);
* the line-solver fast path of an ``op()`` reports the cells' states at their initial values (it used to
  report 0 for every recorded state).

Expected values are closed forms of the circuit written in each test.
"""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.behavioural import simulate
from circuitkit.energy import energy, record_energy
from circuitkit.workflow import load

RON, ROFF, X, ROUT = 10e3, 100e3, 0.5, 10.0
R_CELL = RON + (ROFF - RON) * X            # vteam iv = 0: linear in the state


def _design(tmp_path, sense: str, records: str, rows: str = "2", cols: str = "1"):
    text = f"""title "audit"
crossbar xb {{
  rows = {rows}; cols = {cols}
  cell = 1R
  device = vteam(iv = 0, ron = {RON:g}, roff = {ROFF:g}, voff = 1.5, von = -1.5)
  state = {X}
}}
wires {{ r_row = 0; r_col = 0; drive = left; sense = bottom }}
driver rows {{ r_out = {ROUT:g} }}
driver cols {{ r_out = 0 }}
sense cols {{ tia = ideal(rf = 1k) }}
stimulus {{ duration = 20n
  read = read([0.1, 0.2]{sense}) }}
analysis op()
record {records}
"""
    path = tmp_path / "audit.xbar"
    path.write_text(text)
    return load(path)[1]


def test_no_sensed_column_floats_every_column(tmp_path):
    c = _design(tmp_path, ", sense = []", "supply_currents, line_voltages")
    assert not [g.name for g in c.groups if g.name.startswith(("xb_am", "xb_rf", "xb_oa", "xb_vcol"))]
    record_energy(c)
    wf = simulate(c)
    # the only path: row 1 (0.2 V) -> its driver -> cell -> the floating bit line -> cell -> row 0 (0.1 V)
    i = (0.2 - 0.1) / (2 * (ROUT + R_CELL))
    assert float(wf["isup_row_1"]) == pytest.approx(i, rel=1e-9)
    assert float(wf["isup_row_0"]) == pytest.approx(-i, rel=1e-9)
    assert float(wf["vbl_0"]) == pytest.approx(0.15, rel=1e-9)         # half way, by symmetry
    e = energy(c, wf)
    assert abs(e.balance) < 1e-9                                         # supplied = dissipated


def test_fast_operating_point_reports_states(tmp_path):
    c = _design(tmp_path, "", "column_currents, states", cols="3")
    wf = simulate(c)
    assert wf.meta["fast_path"] is True
    # no wire resistance: each row node sits at v / (1 + 3 ROUT / R) (its driver carries three cells'
    # currents), and every column, a virtual ground, takes both rows' cell currents
    i = sum(v / (1 + 3 * ROUT / R_CELL) / R_CELL for v in (0.1, 0.2))
    for j in range(3):
        assert abs(float(wf[f"icol_{j}"])) == pytest.approx(i, rel=1e-9)
        for r in range(2):
            assert float(wf[f"x_{r}_{j}"]) == X
