"""A pulse narrower than MIN_BREAK of the print step is resolved, not stepped over.

The behavioural transient merged source corners closer than ``MIN_BREAK * min(max step, print step)``
(5e-5 of the print step); a 0.4 ns pulse in a run printed every 100 us lost all its corners but the
first, the engine stepped across it evaluating the source only on either side, and the device never saw
it (x stayed at x0 = 0.1; the closed form says 0.340). With a 1 us print step the same circuit was
right: the answer depended on the print step.

Reference: the linear-drift (HP) model without a window has ``(rs + R)^2 = (rs + R0)^2 - 2 K phi``
(``K = (roff - ron) muv ron / d^2``, ``phi`` the flux of the drive) for any drive while x stays away
from the bound tapers.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from circuitkit.behavioural import simulate
from circuitkit.workflow import load

DESC = """title "narrow pulse"
source vin (in, 0) pulse(v1 = 0, v2 = 1, delay = 0.3m, rise = {rise}, fall = {rise}, width = {width}, period = 1)
resistor rs (in, a) 1u
device m1 (a, 0) linear_drift(x0 = 0.1, muv = 1e-5)
analysis tran(stop = 1m, step = {step})
record i(m1), x(m1)
"""


def closed_form(rise: float, width: float, x0=0.1, rs=1e-6, ron=100.0, roff=16e3, muv=1e-5, d=10e-9, v=1.0):
    phi = v * (width + rise)                  # a trapezoid: the two edges together add one rise of flux
    k = (roff - ron) * muv * ron / d ** 2
    r0 = rs + roff - (roff - ron) * x0
    r = math.sqrt(r0 ** 2 - 2 * k * phi)
    return (rs + roff - r) / (roff - ron)


@pytest.mark.parametrize("rise,width", [(1e-10, 2e-10), (2e-10, 4e-10)])
@pytest.mark.parametrize("step", [1e-4, 1e-6])
def test_narrow_pulse_moves_the_state_whatever_the_print_step(tmp_path, rise, width, step):
    path = tmp_path / "narrow.xbar"
    path.write_text(DESC.format(rise=rise, width=width, step=step))
    _, circuit = load(path)
    wf = simulate(circuit)
    expected = closed_form(rise, width)
    x = np.asarray(wf["x(m1)"])
    assert abs(x[-1] - expected) < 0.01 * (expected - 0.1)
    assert np.max(np.abs(wf["i(m1)"])) > 0.5 * (1.0 / (16e3 - 15.9e3 * expected))   # the pulse was seen
