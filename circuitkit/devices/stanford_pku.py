"""Stanford–PKU RRAM: the filament-gap model of Jiang et al.; twin of ``stanford_pku.va``.

A conductive filament leaves a tunnelling gap ``g`` to the electrode. The
state is the normalised gap ``x = (g - gmin)/(gmax - gmin)`` in [0, 1]: 0 is
the low-resistance end (g = gmin), 1 the high-resistance end (g = gmax)::

    I     = i0 exp(-g/g0) sinh(v/v0)
    T     = t0 + v I rth                         (v I >= 0 since I has the sign of v)
    gam   = gamma0 - beta (g/g1)^3
    dg/dt = -vel0 exp(-ea/vt) sinh(gam a0 v/(tox vt)) taper(gam |v|/tox - fmin, fblend)
    vt    = kB T / q                             (ea in eV)
    dx/dt = dg/dt/(gmax - gmin) edge_wall(x, xedge)         v > 0: the gap closes (SET)
          = dg/dt/(gmax - gmin) edge_wall(1 - x, xedge)     v < 0: the gap opens (RESET)

Reworked from the public v1.0.0 file for OpenVAF, which keeps no variable
between time steps and has no ``$rdist_*``:

* the gap is integrated on the state node, never read back from a variable;
* no cycle-to-cycle variability (vary parameters per instance instead);
* the temperature is quasi-static (algebraic: the thermal time constant is
  taken as zero, so T follows the dissipated power instantly);
* the hard field threshold of the original ("gamma = 0 when gamma |v|/tox <
  fmin") is a C1 :func:`~circuitkit.devices.smooth.taper` of width
  ``fblend``; beyond ``fmin + fblend`` the published law holds exactly;
* the gap is kept in [gmin, gmax] by :func:`edge_wall` (a taper of width
  ``xedge`` inside the range, C1, and linear far past the bound): the rate
  vanishes at the bound being approached, and a state a time step (or a Newton iterate)
  carried past it is driven back in proportion to the distance, so it stays
  within about ``xedge`` of the range (with the plain taper a trapezoidal
  step during an abrupt RESET could land anywhere past gmax, and stay there);
* the current and the field enhancement use the gap clamped to [gmin, gmax]
  (the state itself is not clipped): a Newton iterate far past a bound must
  not overflow ``exp(-g/g0)``, and past gmax the field would fall below the
  threshold and stop the wall.

Numerics: 3 V pulses and 4 V sines through 100 Ohm at requested steps of
0.2-1 us stopped ngspice with "timestep too small": a long step into a
strong RESET (a drive edge, or a 0.41 us step across a zero crossing) sent
Newton's state iterates far past a bound (the 3 V pulse: cycling on a
spurious root near x = 0.8, then an iterate past gmax, where the earlier
odd wall pushed back by a constant, with no slope for Newton, and on to
x = 244 and -238; the 4 V sine: x = 242 and v = -365 V in one update).
There ``exp(-g/g0)`` overflowed (or underflowed against an overflowed
sinh), the current became inf or NaN, then every unknown, and ngspice
retried each shorter step from that NaN iterate. The clamped gap alone
removes all of these; the linear wall alone only the pulse ones; both are in.

The defaults are the published set: at 0.1 V the resistance is 542 Ohm at
gmin and 218.6 kOhm at gmax; SET at +1.8 V and RESET at -1.3 V switch within
100 ns pulses. With the published rth a device near gmin dissipates enough at
+1.8 V to heat by >1000 K; the SET then runs away until the taper stops it
at gmin (a compliance resistor in series limits it, as in measurements).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import Location, ParameterError
from .base import DeviceModel, Parameter, ParamSet, ScalarKernel, State, register
from .smooth import taper, taper_float

#: elementary charge (C) and Boltzmann constant (J/K); the same literals as the .va file
Q = 1.602176634e-19
KB = 1.380649e-23


@register
class StanfordPku(DeviceModel):
    name = "stanford_pku"
    description = "Stanford-PKU RRAM gap model (Jiang 2016), x = normalised gap: 0 LRS .. 1 HRS"
    kind = "memristor"
    references = (
        "Equations and parameter set: Z. Jiang, Y. Wu, S. Yu, L. Yang, K. Song, Z. Karim, H.-S. P. Wong, "
        "'A compact model for metal-oxide resistive random access memory with experiment verification', "
        "IEEE TED 63(5):1884-1892, 2016, and the Stanford-PKU RRAM model v1.0.0 "
        "(Stanford University and Peking University, as published with that paper): i0 1 mA, g0 0.25 nm, v0 0.25 V, vel0 10 m/s, ea 0.6 eV, a0 0.25 nm, "
        "tox 12 nm, gamma0 16, beta 0.8, fmin 1.4e9 V/m, gap 0.2-1.7 nm, rth 2.1e3 K/W, t0 298 K. "
        "Changes for OpenVAF: deterministic, quasi-static temperature, C1 field threshold and gap bounds."
    )
    parameters = (
        Parameter("i0", 1e-3, "A", "current prefactor", 0.0, None, lower_inclusive=False),
        Parameter("g0", 0.25e-9, "m", "gap decay length of the current", 0.0, None, lower_inclusive=False),
        Parameter("v0", 0.25, "V", "voltage scale of the current", 0.0, None, lower_inclusive=False),
        Parameter("vel0", 10.0, "m/s", "gap velocity prefactor", 0.0, None),
        Parameter("ea", 0.6, "eV", "activation energy", 0.0, None),
        Parameter("a0", 0.25e-9, "m", "atomic hopping distance", 0.0, None, lower_inclusive=False),
        Parameter("tox", 12e-9, "m", "oxide thickness", 0.0, None, lower_inclusive=False),
        Parameter("gamma0", 16.0, "", "field enhancement factor at zero gap", 0.0, None),
        Parameter("beta", 0.8, "", "field enhancement gap coefficient", 0.0, None),
        Parameter("g1", 1e-9, "m", "gap normalisation of the enhancement", 0.0, None, lower_inclusive=False),
        Parameter("fmin", 1.4e9, "V/m", "field threshold of gap motion", 0.0, None),
        Parameter("fblend", 1e7, "V/m", "field threshold blend width", 0.0, None, lower_inclusive=False),
        Parameter("gmin", 0.2e-9, "m", "minimum gap (x = 0)", 0.0, None, lower_inclusive=False),
        Parameter("gmax", 1.7e-9, "m", "maximum gap (x = 1)", 0.0, None, lower_inclusive=False),
        Parameter("rth", 2.1e3, "K/W", "thermal resistance", 0.0, None),
        Parameter("t0", 298.0, "K", "ambient temperature", 0.0, None, lower_inclusive=False),
        Parameter("xedge", 0.01, "", "state taper width at the bounds", 0.0, 0.5, lower_inclusive=False),
        Parameter("x0", 0.0, "", "initial normalised gap", 0.0, 1.0, instance=True),
    )
    states = (State("x", "x0", "normalised gap (g - gmin)/(gmax - gmin): 0 LRS, 1 HRS", on_bound="lower"),)

    @classmethod
    def resolve(cls, overrides=None, n=None, location=None) -> ParamSet:
        """As :meth:`DeviceModel.resolve`, and the gap range must not be empty."""
        p = super().resolve(overrides, n, location)
        if np.any(np.asarray(p.gmax) <= np.asarray(p.gmin)):
            loc = location if location is not None else Location(parameter="gmax")
            raise ParameterError(f"parameter 'gmax' = {np.min(p.gmax):g} must exceed 'gmin' = "
                                 f"{np.max(p.gmin):g}", loc)
        return p

    @staticmethod
    def gap(x: np.ndarray, p: ParamSet) -> np.ndarray:
        """Gap (m) at normalised state ``x`` (one state row)."""
        return p.gmin + (p.gmax - p.gmin) * x

    @staticmethod
    def current(v, x, p):
        """Device current (A); the gap clamped to [gmin, gmax] (an iterate far past a bound must not
        overflow the exponential), the state itself not clipped."""
        return p.i0 * np.exp(-StanfordPku.gap(np.clip(x[0], 0.0, 1.0), p) / p.g0) * np.sinh(v / p.v0)

    @staticmethod
    def temperature(v, x, p):
        """Quasi-static filament temperature (K): ambient plus Joule heating through ``rth``."""
        return p.t0 + v * StanfordPku.current(v, x, p) * p.rth

    @staticmethod
    def _law(v, x, p):
        """``(dg/dt of the published law without the field threshold, field excess over fmin (V/m), vt)``.

        The field enhancement uses the gap clamped to [gmin, gmax]: past gmax
        it would fall below the threshold and stop the :func:`edge_wall` from
        driving an overshooting state back.
        """
        g = StanfordPku.gap(np.clip(x[0], 0.0, 1.0), p)
        vt = KB * StanfordPku.temperature(v, x, p) / Q
        gam = p.gamma0 - p.beta * (g / p.g1) * (g / p.g1) * (g / p.g1)
        return (-p.vel0 * np.exp(-p.ea / vt) * np.sinh(gam * p.a0 * v / (p.tox * vt)),
                gam * np.abs(v) / p.tox - p.fmin, vt)

    @staticmethod
    def gap_rate(v, x, p):
        """dg/dt (m/s) of the published law with the C1 field threshold; no bound tapers."""
        law, excess, _ = StanfordPku._law(v, x, p)
        return law * taper(excess, p.fblend)

    @classmethod
    def step_move(cls, x, p):
        """The ``$bound_step``'s second term in the .va: at most 0.05*g0 of gap per step (the current,
        exp(-g/g0), changes by at most ~5 %)."""
        return np.atleast_1d(0.05 * p.g0 / (p.gmax - p.gmin))[None]

    @classmethod
    def bound_step(cls, v, x, p):
        """:meth:`DeviceModel.bound_step`, and near the field threshold (below it and up to one e-fold
        of the sinh above it) at most 0.006*g0 of gap per step at the rate the law would have without
        the threshold: the rate switches on and off within the ``fblend`` taper, and a step across it
        misplaces the state by up to half its move (the same term as the .va's ``$bound_step``)."""
        v = np.asarray(v, dtype=float)
        x = np.asarray(x, dtype=float).reshape(1, -1)
        h = super().bound_step(v, x, p)
        law, excess, vt = cls._law(v, x, p)
        f0 = law / (p.gmax - p.gmin) * _window(v, x[0], p)
        near = (excess * p.a0 < vt) & (f0 != 0)
        with np.errstate(divide="ignore"):
            h0 = np.where(near, 0.006 * p.g0 / (p.gmax - p.gmin) / np.abs(np.where(near, f0, 1.0)), np.inf)
        return np.minimum(h, h0)

    @staticmethod
    def dxdt(v, x, p):
        rate = StanfordPku.gap_rate(v, x, p) / (p.gmax - p.gmin)
        return (rate * _window(v, x[0], p))[None, :]

    @classmethod
    def scalar_kernel(cls, p):
        """``(current, dxdt)`` on floats for one device (see ``DeviceModel.scalar_kernel``): the
        expressions of :meth:`current`, :meth:`temperature`, :meth:`_law`, :meth:`gap_rate`,
        :meth:`dxdt` and :func:`edge_wall` operation for operation. None unless every parameter is one
        number."""
        q = cls.scalar_params(p)
        return None if q is None else _Kernel(q)

    @classmethod
    def bound_step_one(cls, kernel, v, x):
        """:meth:`bound_step` through the kernel (the same three terms)."""
        law, excess, vt, w = kernel.parts(v, x, kernel.current(v, x))
        f = kernel.combine(law, excess, w)
        if f > 0:
            h = min(0.5 * max(1.0 - x, 1e-9), kernel.move) / f
        elif f < 0:
            h = min(0.5 * max(x - 0.0, 1e-9), kernel.move) / (-f)
        else:
            h = math.inf
        f0 = law / kernel.span * w
        if excess * kernel.a0 < vt and f0 != 0:
            h = min(h, kernel.near / abs(f0))
        return h


class _Kernel(ScalarKernel):
    """Stanford-PKU on floats (:meth:`StanfordPku.scalar_kernel`); ``math`` raises where numpy would
    overflow to inf (``sinh``), and the caller then evaluates the numpy twin."""

    def __init__(self, q: dict):
        for name in ("i0", "g0", "v0", "vel0", "ea", "a0", "tox", "gamma0", "beta", "g1", "fmin", "fblend",
                     "gmin", "gmax", "rth", "t0", "xedge"):
            setattr(self, name, q[name])
        self.span = self.gmax - self.gmin
        self.move = 0.05 * self.g0 / self.span
        self.near = 0.006 * self.g0 / self.span

    def current(self, v, x):
        g = self.gmin + self.span * min(max(x, 0.0), 1.0)
        return self.i0 * math.exp(-g / self.g0) * math.sinh(v / self.v0)

    def parts(self, v, x, i):
        """(law, field excess, vt, window) of :meth:`StanfordPku._law` and :func:`_window`, given the
        device current ``i`` at ``(v, x)`` (its heating)."""
        g = self.gmin + self.span * min(max(x, 0.0), 1.0)
        vt = KB * (self.t0 + v * i * self.rth) / Q
        r = g / self.g1
        gam = self.gamma0 - self.beta * r * r * r
        law = -self.vel0 * math.exp(-self.ea / vt) * math.sinh(gam * self.a0 * v / (self.tox * vt))
        w = _edge_wall_s(x, self.xedge) if v > 0 else _edge_wall_s(1 - x, self.xedge)
        return law, gam * abs(v) / self.tox - self.fmin, vt, w

    def combine(self, law, excess, w):
        """dx/dt from :meth:`parts`: the law through the field-threshold taper, per unit of state, walled."""
        return law * taper_float(excess, self.fblend) / self.span * w

    def dxdt(self, v, x):
        law, excess, _, w = self.parts(v, x, self.current(v, x))
        return self.combine(law, excess, w)

    def points(self, v, x, vp, vm, xp, xm):
        """As :meth:`ScalarKernel.points`, each point's current computed once (the rate's heating uses it)."""
        pts = ((v, x), (vp, x), (vm, x), (v, xp), (v, xm))
        currents = tuple(self.current(a, b) for a, b in pts)
        rates = []
        for (a, b), i in zip(pts, currents):
            law, excess, _, w = self.parts(a, b, i)
            rates.append(self.combine(law, excess, w))
        return currents + tuple(rates)


def _edge_wall_s(u, d):
    """:func:`edge_wall` on a float (same operations)."""
    if u >= 0:
        return taper_float(max(u, 0.0), d)
    s = max(-u / d, 0.0)
    return -s * s if s < 0.5 else 0.25 - s


def _window(v, x, p):
    """The :func:`edge_wall` towards the bound the drive moves the state to (x: one state row)."""
    return np.where(v > 0, edge_wall(x, p.xedge), edge_wall(1 - x, p.xedge))


def edge_wall(u, d):
    """stanford_pku's wall: :func:`taper` inside the range (``u >= 0``); past the bound ``-(u/d)^2``
    down to ``u = -d/2``, then ``u/d + 1/4``.

    ``u`` is the distance of the state from the bound the drive moves it
    towards. Inside the range the rate vanishes at the bound (the exact
    solution never reaches it); a state a time step or a Newton iterate has
    carried past the bound is driven back in proportion to the distance. The
    odd extension used before (``-taper(-u, d)``, a constant push beyond ``d``) gave Newton no
    slope there: ngspice's iterates on a 3 V pulse edge went on to x = 244
    and x = -238 and overflowed the current. C1 everywhere (slope 0 at the
    bound from both sides, 1/d at u = -d/2 from both sides).
    """
    u = np.asarray(u, dtype=float)
    s = np.maximum(-u / d, 0.0)
    return np.where(u >= 0, taper(np.maximum(u, 0.0), d), np.where(s < 0.5, -s * s, 0.25 - s))

