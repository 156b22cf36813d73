"""Yakopcic generalized memristor model; twin of ``yakopcic.va``.

State ``x`` in [0, 1]; the current is proportional to it::

    i     = a1 x sinh(b v)   (v >= 0),    a2 x sinh(b v)   (v < 0)
    g(v)  =  ap e^vp (e^ramp(v - vp)  - 1)    v > vp      = ap (e^v - e^vp) beyond the blend
          = -an e^vn (e^ramp(-v - vn) - 1)    v < -vn     = -an (e^-v - e^vn)
          = 0                                 otherwise   (exactly: reads do not disturb)
    f(x)  = e^(-alphap (x - xp)) (1 - x)/(1 - xp)   eta v >= 0 and x >= xp, else 1
          = e^(alphan (x + xn - 1)) x/(1 - xn)      eta v <  0 and x <= 1 - xn, else 1
    dx/dt = eta g(v) f(x)

``vn`` is a positive magnitude (the negative threshold is ``-vn``); voltages
enter ``exp`` in volts, as in the paper. The published ``g`` has a slope step
at each threshold; :func:`~circuitkit.devices.smooth.ramp` (width ``vblend``)
makes it C1 and leaves it exact beyond ``vblend`` above threshold. The window
``f`` is the published one: continuous, with a slope step at ``xp`` and
``1 - xn``, and it vanishes linearly at x = 1 (growing) and x = 0
(shrinking), so the state approaches its bounds but does not cross them.
With ``a1 != a2`` the I–V has a slope step at v = 0, as published.

Default set: the Ag-chalcogenide device fit of Yakopcic et al. (IEEE TCAD
32(8), 2013; values not re-checked against the paper): a 0.45 V, 100 Hz sine moves x over most of [0, 1].
"""
from __future__ import annotations

import numpy as np

from .base import DeviceModel, Parameter, State, register
from .smooth import ramp


@register
class Yakopcic(DeviceModel):
    name = "yakopcic"
    description = "Yakopcic generalized memristor (TCAD 2013): sinh I-V, exponential thresholds, x: 0 .. 1"
    kind = "memristor"
    references = (
        "Equations: C. Yakopcic, T. M. Taha, G. Subramanyam, R. E. Pino, 'Generalized memristive device "
        "SPICE model and its application in circuit design', IEEE TCAD 32(8):1201-1214, 2013. "
        "Parameter set: the Ag-chalcogenide device fit of the same paper (values not re-checked against it)."
    )
    parameters = (
        Parameter("a1", 0.17, "A", "I-V amplitude for v >= 0", 0.0, None, lower_inclusive=False),
        Parameter("a2", 0.17, "A", "I-V amplitude for v < 0", 0.0, None, lower_inclusive=False),
        Parameter("b", 0.05, "1/V", "I-V sinh steepness", 0.0, None, lower_inclusive=False),
        Parameter("vp", 0.16, "V", "positive threshold voltage", 0.0, None),
        Parameter("vn", 0.15, "V", "negative threshold voltage magnitude", 0.0, None),
        Parameter("ap", 4000.0, "1/s", "positive switching rate", 0.0, None),
        Parameter("an", 4000.0, "1/s", "negative switching rate", 0.0, None),
        Parameter("xp", 0.3, "", "state where positive motion starts to slow", 0.0, 1.0, upper_inclusive=False),
        Parameter("xn", 0.5, "", "1 - state where negative motion starts to slow", 0.0, 1.0,
                  upper_inclusive=False),
        Parameter("alphap", 1.0, "", "positive window decay", 0.0, None),
        Parameter("alphan", 5.0, "", "negative window decay", 0.0, None),
        Parameter("eta", 1.0, "", "direction of state motion (+1 or -1)", -1.0, 1.0),
        Parameter("vblend", 2e-3, "V", "threshold blend width", 0.0, None, lower_inclusive=False),
        Parameter("x0", 0.11, "", "initial state", 0.0, 1.0, instance=True),
    )
    states = (State("x", "x0", "normalised state: current proportional to x"),)

    @staticmethod
    def current(v, x, p):
        a = np.where(v >= 0, p.a1, p.a2)
        return a * x[0] * np.sinh(p.b * v)

    @staticmethod
    def drive(v, p):
        """``g(v)``: the state rate before the window (1/s)."""
        up = p.ap * np.exp(p.vp) * (np.exp(ramp(v - p.vp, p.vblend)) - 1)
        down = -p.an * np.exp(p.vn) * (np.exp(ramp(-v - p.vn, p.vblend)) - 1)
        return np.where(v > p.vp, up, 0.0) + np.where(v < -p.vn, down, 0.0)

    @staticmethod
    def window(v, x, p):
        """``f(x)`` for the direction ``eta v`` drives the state."""
        with np.errstate(over="ignore"):
            grow = np.where(x >= p.xp, np.exp(-p.alphap * (x - p.xp)) * (1 - x) / (1 - p.xp), 1.0)
            shrink = np.where(x <= 1 - p.xn, np.exp(p.alphan * (x + p.xn - 1)) * x / (1 - p.xn), 1.0)
        return np.where(p.eta * v >= 0, grow, shrink)

    @staticmethod
    def dxdt(v, x, p):
        return (p.eta * Yakopcic.drive(v, p) * Yakopcic.window(v, x[0], p))[None, :]
