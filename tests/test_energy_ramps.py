"""Read energy at the shipped testbenches' time step (0.5 ns on 1 ns edges) against the closed form.

A linear cell G under a row voltage ramping linearly from a to b over the edge e dissipates
G e (a^2 + a b + b^2) / 3 there, and G b^2 (d - e) for the rest of the phase; the ramp from the previous
phase's level starts at each phase's start. The trapezoidal rule on the engine's points overestimated
the ramp (4.6 % of the last phase's energy here).
"""
import numpy as np
import pytest

from circuitkit.energy import simulate_energy
from circuitkit.workflow import load

XBAR = """crossbar xb { rows = 2; cols = 2; cell = 1R; device = vteam(iv = 0, ron = 10k, roff = 100k, von = -5, voff = 5)
                state = file("x.csv") }
driver rows { rise = 1n; fall = 1n }
sense cols { tia = ideal(rf = 2k) }
stimulus { duration = 20n; read = [0.12, 0.28]; read = [0.3, 0.06]; read = [0.0, 0.02] }
analysis tran(step = 0.5n)
"""


def _expected():
    g = 1 / (10e3 + 90e3 * np.array([[0.0, 0.3], [0.7, 1.0]]))
    e, d = 1e-9, 20e-9
    prev = np.zeros(2)
    out = []
    for v in ([0.12, 0.28], [0.3, 0.06], [0.0, 0.02]):
        v = np.asarray(v)
        v2t = e * (prev ** 2 + prev * v + v ** 2) / 3 + (d - e) * v ** 2
        out.append(float(np.sum(g.sum(axis=1) * v2t)))
        prev = v
    return np.array(out)


@pytest.mark.parametrize("engine", ["behavioural", pytest.param("spice", marks=pytest.mark.spice)])
def test_read_phase_energy_with_coarse_steps_on_the_edges(tmp_path, engine):
    (tmp_path / "x.csv").write_text("0.0,0.3\n0.7,1.0\n")
    f = tmp_path / "ramps.xbar"
    f.write_text(XBAR)
    _, c = load(f)
    _, en = simulate_energy(c, engine)
    table = en.table
    expected = _expected()
    assert table["cells_selected"].to_numpy() == pytest.approx(expected, rel=1e-9, abs=0)
    assert table["supplied"].to_numpy() == pytest.approx(expected, rel=1e-9, abs=0)
