"""VTEAM: the voltage-controlled threshold memristor of Kvatinsky et al.; twin of ``vteam.va``.

State ``x = (w - won)/(woff - won)`` in [0, 1], 0 fully ON (``ron``), 1 fully
OFF (``roff``). Positive voltage above ``voff`` moves x towards OFF, negative
voltage below ``von`` towards ON; in between nothing moves, exactly::

    dx/dt = koff (ramp(v - voff)/voff)^alphaoff foff(x)     v > voff
          + kon  (ramp(von - v)/-von)^alphaon   fon(x)      v < von
    foff(x) = exp(-exp((x - aoff)/wc)) taper(1 - x)
    fon(x)  = exp(-exp(-(x - aon)/wc)) taper(x)

``ramp`` (width ``vblend``) and ``taper`` (width ``xedge``) are the C1
functions of :mod:`circuitkit.devices.smooth`: the published law holds
exactly beyond ``vblend`` above threshold, and a state at a bound stays there.
I–V: ``iv = 0`` linear ``R = ron + (roff - ron) x``; ``iv = 1`` exponential
``R = ron exp(ln(roff/ron) x)``.

Rate constants: the set's ``k`` (m/s) over ``D = woff - won = 3 nm`` gives
1/s (koff 5e-4/3e-9 = 1.67e5 /s, kon -10/3e-9 = -3.33e9 /s); at those rates a
10 kHz drive switches within microseconds, a square loop. The defaults scale
time by 1e-2, so the default device at 10 kHz behaves like the published one
at 1 MHz: switching takes a visible part of the period. Set ``koff`` and
``kon`` back to 100x the defaults for the published speed.
"""
from __future__ import annotations

import math

import numpy as np

from .base import DeviceModel, Parameter, ParamSet, ScalarKernel, State, register
from .smooth import ramp, ramp_float, taper, taper_float


@register
class Vteam(DeviceModel):
    name = "vteam"
    description = "VTEAM voltage-threshold memristor (Kvatinsky 2015), x: 0 ON .. 1 OFF"
    kind = "memristor"
    references = (
        "Equations: S. Kvatinsky, M. Ramadan, E. G. Friedman, A. Kolodny, 'VTEAM: a general model for "
        "voltage-controlled memristors', IEEE TCAS-II 62(8):786-790, 2015; window: S. Kvatinsky et al., "
        "'TEAM: threshold adaptive memristor model', IEEE TCAS-I 60(1):211-221, 2013. "
        "Parameter set: the example set of the VTEAM authors' public Verilog-A code (Kvatinsky et al. 2015; "
        "values not re-checked against the paper): "
        "ron 50 Ohm, roff 1 kOhm, D 3 nm, kon -10 m/s, koff 5e-4 m/s, alphaon 3, alphaoff 1, "
        "von -0.2 V, voff 0.02 V; k normalised by D and time-scaled by 1e-2 (see module docstring)."
    )
    parameters = (
        Parameter("ron", 50.0, "Ohm", "ON resistance (x = 0)", 0.0, None, lower_inclusive=False),
        Parameter("roff", 1000.0, "Ohm", "OFF resistance (x = 1)", 0.0, None, lower_inclusive=False),
        Parameter("koff", 5e-4 / 3e-9 * 1e-2, "1/s", "OFF-switching rate constant", 0.0, None),
        Parameter("kon", -10 / 3e-9 * 1e-2, "1/s", "ON-switching rate constant (negative)", None, 0.0),
        Parameter("voff", 0.02, "V", "OFF threshold voltage", 0.0, None, lower_inclusive=False),
        Parameter("von", -0.2, "V", "ON threshold voltage (negative)", None, 0.0, upper_inclusive=False),
        Parameter("alphaoff", 1.0, "", "OFF-switching exponent", 1.0, None),
        Parameter("alphaon", 3.0, "", "ON-switching exponent", 1.0, None),
        Parameter("aoff", 1.0, "", "Kvatinsky OFF window position (normalised)"),
        Parameter("aon", 0.0, "", "Kvatinsky ON window position (normalised)"),
        Parameter("wc", 0.1, "", "Kvatinsky window width (normalised)", 0.0, None, lower_inclusive=False),
        Parameter("iv", 0.0, "", "I-V relation: 0 linear, 1 exponential", 0.0, 1.0),
        Parameter("vblend", 2e-3, "V", "threshold blend width", 0.0, None, lower_inclusive=False),
        Parameter("xedge", 0.01, "", "state taper width at the bounds", 0.0, 0.5, lower_inclusive=False),
        Parameter("x0", 0.5, "", "initial state", 0.0, 1.0, instance=True),
    )
    states = (State("x", "x0", "normalised filament/undoped width: 0 ON, 1 OFF", on_bound="lower"),)

    @staticmethod
    def resistance(x: np.ndarray, p: ParamSet) -> np.ndarray:
        """Device resistance at state ``x`` (one state row)."""
        iv = p["iv"]
        if type(iv) is float or np.ndim(iv) == 0:   # one I-V law for the whole group: evaluate only that one
            if iv > 0.5:
                return p.ron * np.exp(np.log(p.roff / p.ron) * x)
            return p.ron + (p.roff - p.ron) * x
        linear = p.ron + (p.roff - p.ron) * x
        exponential = p.ron * np.exp(np.log(p.roff / p.ron) * x)
        return np.where(iv > 0.5, exponential, linear)

    @staticmethod
    def current(v, x, p):
        return v / Vteam.resistance(x[0], p)

    @staticmethod
    def dxdt(v, x, p):
        # Only devices beyond a threshold move; the rate laws are evaluated on those alone (in a crossbar
        # most cells sit below both thresholds, and the rate terms -- powers, double exponentials -- are
        # the expensive part). Same equations as ``vteam.va``.
        v = np.asarray(v, dtype=float)
        x = np.asarray(x, dtype=float)[0]
        if v.shape != x.shape:
            v, x = np.broadcast_arrays(v, x)
        scalar = p.derived("vteam-rates", _scalar_rates) if isinstance(p, ParamSet) else _scalar_rates(p)
        off = (v > p["voff"]).ravel().nonzero()[0]
        if off.size == v.size and v.ndim == 1:      # every device beyond voff, so none below von (< 0 < voff)
            return _off_rate(v, x, scalar if scalar is not None else _subset(p, off))[None, :]
        out = np.zeros(v.shape)
        if off.size:
            out[off] = _off_rate(v[off], x[off], scalar if scalar is not None else _subset(p, off))
        on = (v < p["von"]).ravel().nonzero()[0]
        if on.size:
            out[on] = _on_rate(v[on], x[on], scalar if scalar is not None else _subset(p, on))
        return out[None, :]


    @classmethod
    def scalar_kernel(cls, p):
        """``(current, dxdt)`` on floats for one device (see ``DeviceModel.scalar_kernel``): the
        expressions of :meth:`resistance`, :meth:`current`, :meth:`dxdt`, ``_off_rate``, ``_on_rate``
        and ``devices.smooth`` operation for operation. None unless every parameter is one number."""
        q = {}
        for name in _RATE_PARAMS + ("ron", "roff", "iv"):
            value = np.asarray(p[name], dtype=float)
            if value.size != 1:
                return None
            q[name] = float(value.reshape(-1)[0])
        return _Kernel(q)


class _Kernel(ScalarKernel):
    """VTEAM on floats (:meth:`Vteam.scalar_kernel`). A rate is ``(k * power) * window * taper``,
    evaluated in that order as ``_off_rate``/``_on_rate`` do; :meth:`points` computes the
    voltage factor once per voltage and the window and taper once per state (the same values)."""

    def __init__(self, q: dict):
        self.ron, roff = q["ron"], q["roff"]
        self.exponential, self.log_ratio, self.span = q["iv"] > 0.5, math.log(roff / self.ron), roff - self.ron
        self.koff, self.kon, self.voff, self.von = q["koff"], q["kon"], q["voff"], q["von"]
        self.alphaoff, self.alphaon, self.aoff, self.aon = q["alphaoff"], q["alphaon"], q["aoff"], q["aon"]
        self.wc, self.vblend, self.xedge = q["wc"], q["vblend"], q["xedge"]

    def resistance(self, x):
        return self.ron * math.exp(self.log_ratio * x) if self.exponential else self.ron + self.span * x

    def current(self, v, x):
        return v / self.resistance(x)

    def drive(self, v):
        """(branch, voltage factor): 1 and ``koff * power`` beyond voff, -1 and ``kon * power`` below
        von, (0, 0.0) in between."""
        if v > self.voff:
            return 1, self.koff * _power_s(ramp_float(v - self.voff, self.vblend) / self.voff, self.alphaoff)
        if v < self.von:
            return -1, self.kon * _power_s(ramp_float(self.von - v, self.vblend) / -self.von, self.alphaon)
        return 0, 0.0

    def window(self, branch, x):
        """(window, taper) of the state ``x`` for the OFF (1) or ON (-1) branch."""
        if branch > 0:
            return math.exp(-math.exp(min((x - self.aoff) / self.wc, 700.0))), taper_float(1 - x, self.xedge)
        return math.exp(-math.exp(min(-(x - self.aon) / self.wc, 700.0))), taper_float(x, self.xedge)

    def dxdt(self, v, x):
        branch, k = self.drive(v)
        if branch == 0:
            return 0.0
        w, t = self.window(branch, x)
        return k * w * t

    def points(self, v, x, vp, vm, xp, xm):
        r0, rp, rm = self.resistance(x), self.resistance(xp), self.resistance(xm)
        currents = (v / r0, vp / r0, vm / r0, v / rp, v / rm)
        windows = {}

        def rate(drive, xx):
            branch, k = drive
            if branch == 0:
                return 0.0
            key = (branch, xx)
            if key not in windows:
                windows[key] = self.window(branch, xx)
            w, t = windows[key]
            return k * w * t
        d0 = self.drive(v)
        return currents + (rate(d0, x), rate(self.drive(vp), x), rate(self.drive(vm), x),
                           rate(d0, xp), rate(d0, xm))


def _power_s(base, exponent):
    """:func:`_power` on floats; a non-finite or complex result of ``**`` raises ArithmeticError."""
    out = _power(base, exponent)            # OverflowError beyond the float range
    if isinstance(out, complex):            # a negative base gives a complex number where numpy gives NaN
        raise ArithmeticError("complex power")
    return out


def _off_rate(v, x, q):
    """The OFF-switching rate of devices beyond ``voff`` (parameters ``q`` of those devices)."""
    return q["koff"] * _power(ramp(v - q["voff"], q["vblend"]) / q["voff"], q["alphaoff"]) \
        * np.exp(-np.exp(np.minimum((x - q["aoff"]) / q["wc"], 700.0))) * taper(1 - x, q["xedge"])


def _on_rate(v, x, q):
    """The ON-switching rate of devices below ``von``."""
    return q["kon"] * _power(ramp(q["von"] - v, q["vblend"]) / -q["von"], q["alphaon"]) \
        * np.exp(-np.exp(np.minimum(-(x - q["aon"]) / q["wc"], 700.0))) * taper(x, q["xedge"])


_RATE_PARAMS = ("koff", "kon", "voff", "von", "alphaoff", "alphaon", "aoff", "aon", "wc", "vblend", "xedge")


def _scalar_rates(p) -> dict | None:
    """The rate-law parameters as floats when all are scalars (the usual group), else None
    (kept per parameter set by ``ParamSet.derived``: no per-call dictionary building)."""
    if any(np.ndim(p[name]) for name in _RATE_PARAMS):
        return None
    return {name: float(p[name]) for name in _RATE_PARAMS}


def _subset(p: ParamSet, k: np.ndarray) -> dict:
    """The rate-law parameters at devices ``k`` (scalars stay scalars)."""
    return {name: (p[name] if np.ndim(p[name]) == 0 else np.asarray(p[name])[k]) for name in _RATE_PARAMS}


def _power(base, exponent):
    """``base ** exponent``, with the common integer exponents 1, 2, 3 as products (``pow`` is slow)."""
    if type(exponent) is float or np.ndim(exponent) == 0:
        if exponent == 1.0:
            return base
        if exponent == 2.0:
            return base * base
        if exponent == 3.0:
            return base * base * base
    return base ** exponent
