"""Threshold selector for 1S1R cells; twin of ``selector.va``.

A static, symmetric threshold switch (no state: terminals ``p``, ``n`` only)::

    i    = v goff exp(ln(roff/ron) s(v)),    goff = 1/roff
    s(v) = sig((v - vth)/dv) + sig((-v - vth)/dv),   sig(u) = (1 + tanh(u/2))/2

Below ``|v| = vth`` the device is ``roff``, above it ``ron``: the conductance
is interpolated in log scale by logistic steps (width ``dv``), so the OFF
leakage stays close to ``goff`` until a few ``dv`` below ``vth`` (a linear
blend would let the logistic tail times ``roff/ron`` dominate there) and
rises exponentially towards the threshold, like a real selector's. The I–V
is infinitely smooth, odd and monotonic, and the current is bounded by about
``v/ron``, so neither engine's Newton iteration meets an exponential runaway. Volatile hysteresis and snapback of real
threshold switches are not modelled: in series with a memristor the selector
settles where its I–V meets the load line (about ``vth`` across it while
ON), which is what blocks sneak paths whose cells see less than ``vth``.

The crossbar builder uses the model name ``selector`` (``kind = "selector"``)
for 1S1R cells; all its parameters are model (card) parameters.
"""
from __future__ import annotations

import numpy as np

from .base import DeviceModel, Parameter, register


@register
class Selector(DeviceModel):
    name = "selector"
    description = "static smooth threshold switch for 1S1R cells (roff below |v| = vth, ron above)"
    kind = "selector"
    references = (
        "Behavioural threshold selector written for circuitkit: conductance blended between 1/roff and "
        "1/ron by logistic steps at +-vth (cf. the threshold-switch behaviour of e.g. Ag/HfO2 or OTS "
        "selectors; volatile hysteresis not modelled). Default set: ron 100 Ohm, roff 1 MOhm, vth 0.4 V."
    )
    parameters = (
        Parameter("ron", 100.0, "Ohm", "ON resistance (|v| well above vth)", 0.0, None, lower_inclusive=False),
        Parameter("roff", 1e6, "Ohm", "OFF resistance (|v| well below vth)", 0.0, None, lower_inclusive=False),
        Parameter("vth", 0.4, "V", "threshold voltage magnitude", 0.0, None),
        Parameter("dv", 0.025, "V", "threshold transition width", 0.0, None, lower_inclusive=False),
    )
    states = ()

    @staticmethod
    def switch(v, p):
        """``s(v)`` in [0, 2) (about 1 beyond the threshold) and its derivative ``ds/dv``."""
        up = np.tanh(0.5 * (v - p.vth) / p.dv)
        dn = np.tanh(0.5 * (-v - p.vth) / p.dv)
        s = 0.5 * (1 + up) + 0.5 * (1 + dn)
        ds = 0.25 / p.dv * ((1 - up * up) - (1 - dn * dn))
        return s, ds

    @staticmethod
    def conductance(v, p):
        """Chord conductance ``i/v`` at voltage ``v``."""
        s, _ = Selector.switch(v, p)
        return np.exp(np.log(p.roff / p.ron) * s) / p.roff

    @staticmethod
    def current(v, x, p):
        return v * Selector.conductance(v, p)

    @classmethod
    def state_derivative(cls, v, x, p):
        return np.zeros((0, np.shape(v)[0]))

    @classmethod
    def linearize(cls, v, x, p):
        """Analytic values and slopes; the state arrays are empty (no states)."""
        v = np.asarray(v, dtype=float)
        s, ds = cls.switch(v, p)
        lr = np.log(p.roff / p.ron)
        g = np.exp(lr * s) / p.roff
        n = v.shape[0]
        return v * g, g * (1 + v * lr * ds), np.zeros((0, n)), np.zeros((0, n)), np.zeros((0, n)), np.zeros((0, 0, n))
