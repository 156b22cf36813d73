"""A word-select that turns off falls with the row driver's fall time, as the row lines do."""
from circuitkit.workflow import load

XBAR = """crossbar xb { rows = 2; cols = 2; cell = 1T1R; device = vteam(iv = 0, ron = 10k, roff = 100k, von = -5, voff = 5)
                transistor = nmos(vto = 0.5, kp = 200u, lambda_ = 0.02, w = 1u, l = 100n); state = 0.5 }
driver rows { rise = 1n; fall = 5n; vgate = 1.2 }
sense cols { tia = ideal(rf = 2k) }
stimulus { duration = 20n; read = [0.3, 0.5]; read = read([0.1, 0.5], select = [1]) }
analysis tran(step = 0.5n)
"""


def test_deselected_gate_falls_with_the_fall_time(tmp_path):
    f = tmp_path / "edges.xbar"
    f.write_text(XBAR)
    _, c = load(f)
    sel = c.group(c.crossbar.select_source)
    rows = c.group(c.crossbar.row_sources[0])
    # row 0: selected in phase 0 (gate up over rise = 1 ns), deselected at 20 ns (down over fall = 5 ns)
    assert list(sel.waveforms[0].times) == [0.0, 1e-9, 20e-9, 25e-9]
    assert list(sel.waveforms[0].values) == [0.0, 1.2, 1.2, 0.0]
    # the row line itself already falls over 5 ns (0.3 V -> 0.1 V)
    assert list(rows.waveforms[0].times) == [0.0, 1e-9, 20e-9, 25e-9]
