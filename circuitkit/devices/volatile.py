"""A volatile memristor with optional long-term consolidation; twin of ``volatile.va``.

Short-term plasticity needs a state that decays when the drive stops. The
volatile state ``w`` in [0, 1] grows while ``|v|`` exceeds ``vth`` and relaxes
towards ``wrest`` with time constant ``tau``; a second, non-volatile state
``m`` in [0, 1] grows while ``w`` exceeds ``wth`` (short- and long-term
plasticity in one device, as in the SrTiO3 devices of Weilenmann et al.)::

    dw/dt = kw ramp(|v| - vth, vblend) taper(1 - w, wedge) - (w - wrest)/tau
    dm/dt = klt ramp(w - wth, wblend) (1 - m)
    I     = (gmin + (gmax - gmin) w + glt m) v

``klt = 0`` (the default) is a purely volatile device: m stays at m0. Both
polarities drive w (a diffusive filament forms either way); below ``vth``
(e.g. a read) nothing grows and w only relaxes. The relaxation is exact: a
drive-free w follows ``wrest + (w - wrest) exp(-t/tau)``. ``m`` cannot leave
[0, 1]: its rate is >= 0 and vanishes at m = 1. ``w`` cannot exceed 1 (the
taper) and relaxes back into [0, 1] from anywhere.

Time scale: tau = 1 us and kw such that a 100 ns, 1 V pulse raises w by
about 0.2 -- the shape of published short-term dynamics, scaled to
circuit-simulation times (real devices relax in ms to s: set tau).
"""
from __future__ import annotations

import numpy as np

from .base import DeviceModel, Parameter, ParamSet, State, register
from .smooth import ramp, taper


@register
class Volatile(DeviceModel):
    name = "volatile"
    description = "volatile memristor, state w relaxes with tau; optional non-volatile state m fed by w"
    kind = "memristor"
    references = (
        "Volatile dynamics dx/dt = growth(V) - x/tau after the volatile "
        "VTEAM of A. Patni, J. Daniels, S. Kvatinsky, IFETC 2024, and the two-state short/long-term "
        "plasticity of SrTiO3 memristors, C. Weilenmann et al., Nat. Commun. 2024. Parameter set: "
        "illustrative (circuitkit), scaled to microseconds."
    )
    parameters = (
        Parameter("gmin", 1e-5, "S", "conductance at w = 0, m = 0", 0.0, None),
        Parameter("gmax", 1e-4, "S", "conductance at w = 1, m = 0", 0.0, None),
        Parameter("glt", 5e-5, "S", "conductance added by the long-term state at m = 1", 0.0, None),
        Parameter("vth", 0.5, "V", "drive threshold voltage", 0.0, None),
        Parameter("kw", 4e6, "1/(V s)", "growth rate of w per volt above threshold", 0.0, None),
        Parameter("tau", 1e-6, "s", "relaxation time constant of w", 0.0, None, lower_inclusive=False),
        Parameter("wrest", 0.0, "", "rest value of w", 0.0, 1.0),
        Parameter("klt", 0.0, "1/s", "consolidation rate of m (0: volatile only)", 0.0, None),
        Parameter("wth", 0.3, "", "threshold of w for consolidation", 0.0, 1.0),
        Parameter("vblend", 2e-3, "V", "drive threshold blend width", 0.0, None, lower_inclusive=False),
        Parameter("wblend", 0.02, "", "consolidation threshold blend width", 0.0, None, lower_inclusive=False),
        Parameter("wedge", 0.01, "", "taper width of w at its upper bound", 0.0, 0.5, lower_inclusive=False),
        Parameter("w0", 0.0, "", "initial volatile state", 0.0, 1.0, instance=True),
        Parameter("m0", 0.0, "", "initial long-term state", 0.0, 1.0, instance=True),
    )
    states = (State("w", "w0", "volatile state: grows under drive, relaxes to wrest with tau"),
              State("m", "m0", "non-volatile state fed by w (klt > 0)"))

    @staticmethod
    def conductance(x: np.ndarray, p: ParamSet) -> np.ndarray:
        """Conductance (S) at states ``x`` (2, n)."""
        return p.gmin + (p.gmax - p.gmin) * x[0] + p.glt * x[1]

    @staticmethod
    def current(v, x, p):
        return Volatile.conductance(x, p) * v

    @staticmethod
    def dxdt(v, x, p):
        w, m = x[0], x[1]
        fw = p.kw * ramp(np.abs(v) - p.vth, p.vblend) * taper(1 - w, p.wedge) - (w - p.wrest) / p.tau
        fm = p.klt * ramp(w - p.wth, p.wblend) * (1 - m)
        return np.stack([fw, np.broadcast_to(fm, np.shape(fw))])
