"""The level-1 MOSFET twin's two entry points agree: ``level1_currents`` (a chord iteration's residual)
is ``level1``'s currents to the bit, and ``level1``'s Jacobian is the derivative of those currents
(central differences, away from the piecewise boundaries), for both polarities, both modes (vds of
either sign), cutoff, saturation and triode, forward and reverse junctions."""
import numpy as np
import pytest

from circuitkit.circuit.model import MosfetModel
from circuitkit.devices.mosfet import level1, level1_currents


@pytest.mark.parametrize("polarity", ["nmos", "pmos"])
@pytest.mark.parametrize("lam", [0.0, 0.05])
def test_currents_and_jacobian(polarity, lam):
    model = MosfetModel(polarity, vto=0.5 if polarity == "nmos" else -0.5, kp=2e-4, lambda_=lam, w=2e-6, l=1e-6)
    rng = np.random.default_rng(7)
    n = 4000
    v = rng.uniform(-1.5, 1.5, (4, n))
    typ = 1.0 if polarity == "nmos" else -1.0
    # bulk: both junctions reverse or at most 0.3 V forward (in the polarity's own sense)
    v[3] = typ * (np.minimum(typ * v[0], typ * v[2]) + rng.uniform(-0.8, 0.3, n))
    cur, jac = level1(model, *v)
    assert cur.shape == (3, n) and jac.shape == (3, 4, n)
    assert np.array_equal(level1_currents(model, *v), cur)
    # KCL: the currents into drain, source and bulk sum to zero (the gate draws none)
    assert np.all(np.abs(cur.sum(axis=0)) <= 1e-14 * np.abs(cur).max(axis=0))
    h = 1e-7
    vds, vgs, vbs = typ * (v[0] - v[2]), typ * (v[1] - v[2]), typ * (v[3] - v[2])
    vgst = np.where(vds >= 0, vgs, vgs - vds) - 0.5
    # away from the region boundaries (cutoff, saturation edge, vds = 0, the junction's -3 vt knee)
    far = ((np.abs(vgst) > 1e-3) & (np.abs(vgst - np.abs(vds)) > 1e-3) & (np.abs(vds) > 1e-3)
           & (np.abs(vbs + 0.0776) > 1e-3) & (np.abs(vbs - vds + 0.0776) > 1e-3)
           & (vbs < 0.4) & (vbs - vds < 0.4))             # (a junction far forward carries amperes: fd noise)
    assert far.sum() > n / 4
    for c in range(4):
        up, dn = v.copy(), v.copy()
        up[c] += h
        dn[c] -= h
        fd = (level1_currents(model, *up) - level1_currents(model, *dn)) / (2 * h)
        scale = np.abs(jac).max()                    # fd noise is that of the largest currents
        assert np.all(np.abs(fd - jac[:, c])[:, far] <= 1e-6 * scale), (polarity, lam, c)
