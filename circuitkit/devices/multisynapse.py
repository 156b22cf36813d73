"""A multi-mechanism synapse; twin of ``multisynapse.va``.

One low-conductance, non-filamentary device with three mechanisms, as the
SrTiO3 memristors of Weilenmann et al. (Nat. Commun. 15, 2024) show them:

* **short-term plasticity**: state ``s`` grows under positive drive above
  ``vth`` and decays with ``tau_s (1 + nu h)``;
* **long-term memory**: state ``l`` consolidates from ``s`` above ``sth`` and
  is depressed by negative drive beyond ``vthd``;
* **meta-plasticity**: a slow trace ``h`` of recent activity lengthens the
  short-term decay (``nu``) and damps consolidation (``mu``), so the long-term
  learning rate depends on the recent history.

Equations (all states in [0, 1], kept there by the equations)::

    ap = ramp(v - vth, vblend),  ad = ramp(-v - vthd, vblend)
    ds/dt = ks ap (1 - s) - s / (tau_s (1 + nu h)) - kd ad s
    dl/dt = kl (1 - mu h) ramp(s - sth, sblend) (1 - l) - kd ad l
    dh/dt = kh (ap + ad) (1 - h) - h / tau_h
    I     = (gmin + gs s + gl l) vnl sinh(v / vnl)

Closed form (used by the tests): with ``nu = 0`` and ``kl = 0``, a rectangular
pulse of amplitude V > vth and width w starting from s = 0 leaves
``s1 = a/k (1 - exp(-k w))`` with ``a = ks (V - vth)``, ``k = a + 1/tau_s``; a
second identical pulse after a gap g leaves ``s2 = s1 + s1 exp(-g/tau_s - k w)``,
so the paired-pulse ratio of the conductances read at the same delay after
each pulse is ``1 + D/(G0 + D) exp(-g/tau_s - k w)`` with ``D`` the short-term
conductance of the first pulse at that delay.

Parameter set: illustrative (circuitkit), scaled to microseconds for circuit
simulation; real devices relax in milliseconds to seconds (set ``tau_s`` and
``tau_h``).
"""
from __future__ import annotations

import numpy as np

from .base import DeviceModel, Parameter, ParamSet, State, register
from .smooth import ramp

#: Second part of the step bound (the ``$bound_step`` of the .va): one time step moves a state by at most
#: TERM_MOVE through any one of its terms (growth and decay counted apart). The rates switch on and off
#: with the drive (ramp(v - vth) with a 2 mV blend): a trapezoidal step across the switch is off by up to
#: the switched rate times the step, which neither the half-way bound nor ngspice's truncation estimate
#: (reltol 1e-3, trtol 7) sees, and l, driven by s - sth, turns a small error in s into a large one in l.
TERM_MOVE = 0.005


@register
class MultiSynapse(DeviceModel):
    name = "multisynapse"
    description = "synapse with short-term plasticity (s), long-term memory (l) and meta-plasticity (h)"
    kind = "memristor"
    references = (
        "C. Weilenmann et al., 'Single neuromorphic memristor closely emulates multiple synaptic mechanisms "
        "for energy efficient neural networks', Nat. Commun. 15 (2024), arXiv 2402.16628 (short-term "
        "plasticity, long-term memory, meta-plastic control of the short-term decay in SrTiO3 devices); "
        "paired-pulse closed form for a linear short-term component; parameter set illustrative (circuitkit)."
    )
    parameters = (
        Parameter("gmin", 1e-7, "S", "base conductance (s = l = 0)", 0.0, None, lower_inclusive=False),
        Parameter("gs", 4e-7, "S", "conductance added by the short-term state at s = 1", 0.0, None),
        Parameter("gl", 1e-6, "S", "conductance added by the long-term state at l = 1", 0.0, None),
        Parameter("vnl", 0.5, "V", "voltage scale of the sinh conduction", 0.0, None, lower_inclusive=False),
        Parameter("vth", 0.8, "V", "potentiation threshold", 0.0, None),
        Parameter("vthd", 0.8, "V", "depression threshold (magnitude)", 0.0, None),
        Parameter("ks", 3e6, "1/(V s)", "short-term growth rate per volt above vth", 0.0, None),
        Parameter("tau_s", 1e-6, "s", "short-term decay time constant at h = 0", 0.0, None, lower_inclusive=False),
        Parameter("nu", 0.5, "", "meta control of the short-term decay time", 0.0, None),
        Parameter("kl", 2e6, "1/s", "consolidation rate of l", 0.0, None),
        Parameter("sth", 0.3, "", "short-term level above which l consolidates", 0.0, 1.0),
        Parameter("mu", 0.9, "", "meta-plastic damping of consolidation", 0.0, 1.0),
        Parameter("kd", 2e6, "1/(V s)", "depression rate per volt beyond vthd", 0.0, None),
        Parameter("kh", 2e6, "1/(V s)", "growth rate of the meta trace per volt", 0.0, None),
        Parameter("tau_h", 2e-5, "s", "decay time constant of the meta trace", 0.0, None, lower_inclusive=False),
        Parameter("vblend", 2e-3, "V", "drive threshold blend width", 0.0, None, lower_inclusive=False),
        Parameter("sblend", 0.02, "", "consolidation threshold blend width", 0.0, None, lower_inclusive=False),
        Parameter("s0", 0.0, "", "initial short-term state", 0.0, 1.0, instance=True),
        Parameter("l0", 0.0, "", "initial long-term state", 0.0, 1.0, instance=True),
        Parameter("h0", 0.0, "", "initial meta trace", 0.0, 1.0, instance=True),
    )
    states = (State("s", "s0", "short-term state: grows under positive drive, decays with tau_s (1 + nu h)"),
              State("l", "l0", "long-term state: consolidates from s, depressed by negative drive"),
              State("h", "h0", "meta trace of recent activity: slows the decay of s, damps consolidation",
                    on_bound=None))

    @staticmethod
    def conductance(x: np.ndarray, p: ParamSet) -> np.ndarray:
        """Small-signal conductance (S) at v = 0 for states ``x`` (3, n)."""
        return p.gmin + p.gs * x[0] + p.gl * x[1]

    @staticmethod
    def current(v, x, p):
        return MultiSynapse.conductance(x, p) * p.vnl * np.sinh(np.asarray(v, dtype=float) / p.vnl)

    @staticmethod
    def terms(v, x, p):
        """The growth and the decay term of each state (each >= 0 inside the range), two (3, n) arrays."""
        s, l, h = x[0], x[1], x[2]
        ap = ramp(v - p.vth, p.vblend)
        ad = ramp(-v - p.vthd, p.vblend)
        up = (p.ks * ap * (1 - s), p.kl * (1 - p.mu * h) * ramp(s - p.sth, p.sblend) * (1 - l),
              p.kh * (ap + ad) * (1 - h))
        down = (s / (p.tau_s * (1 + p.nu * h)) + p.kd * ad * s, p.kd * ad * l, h / p.tau_h)
        return np.stack(np.broadcast_arrays(*up)), np.stack(np.broadcast_arrays(*down))

    @staticmethod
    def dxdt(v, x, p):
        s, l, h = x[0], x[1], x[2]
        ap = ramp(v - p.vth, p.vblend)
        ad = ramp(-v - p.vthd, p.vblend)
        fs = p.ks * ap * (1 - s) - s / (p.tau_s * (1 + p.nu * h)) - p.kd * ad * s
        fl = p.kl * (1 - p.mu * h) * ramp(s - p.sth, p.sblend) * (1 - l) - p.kd * ad * l
        fh = p.kh * (ap + ad) * (1 - h) - h / p.tau_h
        return np.stack(np.broadcast_arrays(fs, fl, fh))

    @classmethod
    def bound_step(cls, v, x, p):
        """The ``$bound_step`` of the .va: half the way to the bound (:meth:`DeviceModel.bound_step`), and
        at most ``TERM_MOVE`` of a state through the sum of its growth and decay terms."""
        out = super().bound_step(v, x, p)
        v = np.asarray(v, dtype=float)
        x = np.asarray(x, dtype=float).reshape(cls.n_states(), -1)
        up, down = cls.terms(v, x, p)
        gross = (up + down).reshape(cls.n_states(), -1)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.where(gross > 0, TERM_MOVE / gross, np.inf)
        return np.minimum(out, h.min(axis=0))
