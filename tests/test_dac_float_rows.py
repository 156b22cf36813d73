"""A floating row gets no DAC level: with a DAC whose range excludes 0 V, the ideal product and the phase's
vector must not give the floating row the DAC's lowest level."""
import numpy as np

from circuitkit.ideal import ideal_column_currents
from circuitkit.workflow import load

XBAR = """crossbar xb { rows = 2; cols = 2; cell = 1R; device = vteam(iv = 0, ron = 10k, roff = 100k, von = -5, voff = 5)
                state = file("x.csv") }
driver rows { dac = dac(bits = 4, vmin = 0.1, vmax = 0.4) }
sense cols { tia = ideal(rf = 2k) }
stimulus { duration = 20n; read = [0.3, float] }
analysis op()
"""


def test_floating_row_has_no_dac_level(tmp_path):
    (tmp_path / "x.csv").write_text("0.0,0.3\n0.7,1.0\n")
    f = tmp_path / "fl.xbar"
    f.write_text(XBAR)
    _, c = load(f)
    ph = c.crossbar.read_phases()[0]
    # 0.3 V is DAC level 10 of 15 over [0.1, 0.4] (0.1 + 10 * 0.02); the floating row carries no level
    np.testing.assert_allclose(ph.vector, [0.3, 0.0], rtol=1e-12, atol=0)
    g = 1 / (10e3 + 90e3 * np.array([[0.0, 0.3], [0.7, 1.0]]))
    np.testing.assert_allclose(ideal_column_currents(c), [0.3 * g[0]], rtol=1e-12, atol=0)
