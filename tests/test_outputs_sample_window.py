"""A read phase whose sample instant lies beyond the simulated time has no output row (it was not simulated)."""
import numpy as np

from circuitkit.engines import simulate
from circuitkit.outputs import outputs_table
from circuitkit.workflow import load

XBAR = """crossbar xb { rows = 2; cols = 2; cell = 1R; device = vteam(iv = 0, ron = 10k, roff = 100k, von = -5, voff = 5)
                state = file("x.csv") }
sense cols { tia = ideal(rf = 2k); adc = adc(bits = 6, vmin = -0.1, vmax = 0) }
stimulus { duration = 20n; read = [0.12, 0.28]; read = [0.3, 0.06]; read = [0.0, 0.02] }
analysis tran(step = 0.5n, stop = 30n)
"""


def test_phases_sampled_after_the_stop_are_not_reported(tmp_path):
    (tmp_path / "x.csv").write_text("0.0,0.3\n0.7,1.0\n")
    f = tmp_path / "stop.xbar"
    f.write_text(XBAR)
    _, c = load(f)
    table = outputs_table(c, simulate(c, "behavioural"))
    # samples at 0.9 of each 20 ns phase: 18 ns, 38 ns, 58 ns; the run stops at 30 ns
    assert sorted(set(table["phase"])) == [0]
    # phase 0, closed form: I_j = sum_i V_i / R_ij with R = ron + (roff - ron) x
    r = 10e3 + 90e3 * np.array([[0.0, 0.3], [0.7, 1.0]])
    expected = np.array([0.12, 0.28]) @ (1 / r)
    assert np.allclose(table["current"].to_numpy(), expected, rtol=1e-9, atol=0)
    assert np.allclose(table["tia_v"].to_numpy(), -2e3 * expected, rtol=1e-9, atol=0)
