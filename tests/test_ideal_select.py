"""The ideal product of a 1T1R read counts only the word-selected rows (the others' access transistors are off)."""
import numpy as np

from circuitkit.ideal import ideal_column_currents
from circuitkit.workflow import load

XBAR = """crossbar xb { rows = 2; cols = 2; cell = 1T1R; device = vteam(iv = 0, ron = 10k, roff = 100k, von = -5, voff = 5)
                transistor = nmos(vto = 0.5, kp = 200u, lambda_ = 0.02, w = 1u, l = 100n)
                state = file("x.csv") }
driver rows { vgate = 1.2 }
sense cols { tia = ideal(rf = 2k) }
stimulus { duration = 20n; read = [0.3, 0.5]; read = read([0.3, 0.5], select = [1]) }
analysis tran(step = 0.5n)
"""


def test_ideal_product_skips_unselected_rows(tmp_path):
    (tmp_path / "x.csv").write_text("0.0,0.3\n0.7,1.0\n")
    f = tmp_path / "sel.xbar"
    f.write_text(XBAR)
    _, c = load(f)
    g = 1 / (10e3 + 90e3 * np.array([[0.0, 0.3], [0.7, 1.0]]))
    expected = np.array([np.array([0.3, 0.5]) @ g, np.array([0.0, 0.5]) @ g])
    np.testing.assert_allclose(ideal_column_currents(c), expected, rtol=1e-12, atol=0)
