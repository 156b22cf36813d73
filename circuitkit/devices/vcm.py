"""A simplified valence-change (VCM) memristor for programming studies; twin of ``vcm.va``.

Filamentary VCM cells (e.g. Pt/HfO2/Ti, Pt/Ta2O5/Ta) switch by moving oxygen
vacancies into and out of a disc next to the active electrode. The JART VCM
model (Bengel et al. 2020) computes the disc's vacancy concentration with a
Schottky-barrier current, ionic hopping driven by field and by Joule
heating. This model keeps what matters for *programming* and drops the
rest, in one normalised state ``x`` in [0, 1] (0: HRS, few vacancies in the
disc; 1: LRS)::

    G(x)  = goff (gon/goff)^x                       conductance, log-linear in the state
    I     = G(x) vnl sinh(v/vnl)                     mildly nonlinear I-V
    T     = t0 + rth v I                             quasi-static Joule heating (v I >= 0)
    heat  = exp(ea/vt0 - ea/vt)                      Arrhenius acceleration, 1 at T = t0
            vt = kB T/q, vt0 = kB t0/q
    dx/dt = ratecap(kset heat sinh(v/vset), rmax) wall(1 - x, xedge)        v > 0  (SET)
          = -ratecap(kreset heat sinh(-v/vreset), rmax) wall(x, xedge)      v < 0  (RESET)
    ratecap(r, rmax) = r / (1 + (r/rmax)^4)^(1/4)    r below rmax, rmax above

``G`` takes the state clamped to [0, 1] (a Newton iterate past a bound must not
overflow it); the state itself is not clipped.

What it reproduces (and the tests check):

* **ultra-nonlinear kinetics** (Menzel et al. 2011): the switching time falls
  exponentially with the pulse voltage (``sinh(v/vset)``: a factor
  exp(0.1 V/vset) per 100 mV), and a read at 0.2 V moves the state by a
  negligible amount (the "voltage-time dilemma");
* **asymmetry**: SET and RESET have their own rate constants and voltage
  scales; SET is *self-accelerating* (the current, hence the temperature and
  the hopping rate, grow as the cell approaches the LRS bound, abrupt SET)
  and RESET *self-limiting* (the current falls as the disc empties, a
  gradual RESET), as measured on VCM cells and reproduced by JART;
* **state dependence** through the temperature, **gradual** conductance
  change under repeated identical pulses;
* **bounded states by the equations**: :func:`wall` makes the rate vanish at
  the bound approached (a C1 taper over ``xedge``) and drives a state a time
  step or a Newton iterate carried past it back, in proportion to the
  distance (linear past the bound: a constant push made ngspice's Newton
  cycle between +-50 on a 2 V step);
* **a largest rate** ``rmax`` (1e10 /s, about one full switch per 100 ps, the
  fastest VCM SET reported): without it the SET rate at 2 V through 100 Ohm
  reached 1e16 /s, the model's ``$bound_step`` asked for steps of 1e-18 s,
  below ngspice's minimum (1e-11 of the maximum step), and ngspice stopped
  with "Timestep too small". At 1 V the cap changes the rate by ~1e-13.

Cycle-to-cycle variability is not in the model (OpenVAF has no random
numbers): the programming workload draws lognormal per-cell factors on
``kset``/``kreset`` for every programming round and writes them into the
netlist and the behavioural circuit alike
(:mod:`circuitkit.workloads.programming.noise`). A factor ``F`` on the rate
constant is a rescaling of time (while the rate stays well below ``rmax``):
the state after a pulse of width ``w`` is the nominal state after ``F w``.

Parameter set (illustrative, circuitkit): HRS 200 kOhm, LRS 10 kOhm at low
voltage; at +1 V a full SET takes about 0.3 us, at -1.2 V a full RESET
about 1 us; the heating ``rth`` = 1e6 K/W lifts the filament by about 150 K
at LRS under a 1 V pulse. The voltage scales ``vset`` = ``vreset`` = 50 mV
make the kinetics steep enough that the half-select bias of a V/3 scheme
(0.4 V during a -1.2 V pulse) moves cells ~1e7 times slower than the pulse;
with 0.1 V the half-select disturb of a 32x32 array's RESET pulses undid
the programming of the other cells (measured).
"""
from __future__ import annotations

import math

import numpy as np

from .base import DeviceModel, Parameter, ParamSet, ScalarKernel, State, register
from .smooth import taper, taper_float
from .stanford_pku import KB, Q


@register
class Vcm(DeviceModel):
    name = "vcm"
    description = "simplified VCM (JART-like): log-linear G(x), Joule-heated ionic hopping, x: 0 HRS .. 1 LRS"
    kind = "memristor"
    references = (
        "Physics after the JART VCM model: C. Bengel, A. Siemon, F. Cueppers, S. Hoffmann-Eifert, "
        "A. Hardtdegen, M. von Witzleben, L. Hellmich, R. Waser, S. Menzel, 'Variability-aware modeling of "
        "filamentary oxide-based bipolar resistive switching cells using SPICE level compact models', "
        "IEEE TCAS-I 67(12):4618-4630, 2020; switching kinetics: S. Menzel, M. Waters, A. Marchewka, "
        "U. Boettger, R. Dittmann, R. Waser, 'Origin of the ultra-nonlinear switching kinetics in oxide-based "
        "resistive switches', Adv. Funct. Mater. 21:4487-4492, 2011; use for predictor-based programming: "
        "J. Yu et al., 'The Ouroboros of memristors: neural networks facilitating memristor programming', "
        "arXiv:2403.06712, 2024. Equations: a circuitkit simplification (one normalised state, "
        "log-linear conductance, quasi-static heating), not the JART equations; parameter set illustrative."
    )
    parameters = (
        Parameter("goff", 5e-6, "S", "low-voltage conductance at x = 0 (HRS)", 0.0, None, lower_inclusive=False),
        Parameter("gon", 1e-4, "S", "low-voltage conductance at x = 1 (LRS)", 0.0, None, lower_inclusive=False),
        Parameter("vnl", 0.5, "V", "I-V nonlinearity voltage: I = G vnl sinh(v/vnl)", 0.0, None,
                  lower_inclusive=False),
        Parameter("kset", 8e-3, "1/s", "SET rate constant", 0.0, None),
        Parameter("kreset", 5e-5, "1/s", "RESET rate constant", 0.0, None),
        Parameter("vset", 0.05, "V", "SET voltage scale (rate ~ sinh(v/vset))", 0.0, None, lower_inclusive=False),
        Parameter("vreset", 0.05, "V", "RESET voltage scale (rate ~ sinh(-v/vreset))", 0.0, None,
                  lower_inclusive=False),
        Parameter("ea", 0.1, "eV", "activation energy of the thermal acceleration", 0.0, None),
        Parameter("rth", 1e6, "K/W", "thermal resistance of the filament", 0.0, None),
        Parameter("t0", 298.0, "K", "ambient temperature", 0.0, None, lower_inclusive=False),
        Parameter("rmax", 1e10, "1/s", "largest state rate (hopping attempt limit): see ratecap", 0.0, None,
                  lower_inclusive=False),
        Parameter("xedge", 0.01, "", "state taper width at the bounds", 0.0, 0.5, lower_inclusive=False),
        Parameter("x0", 0.0, "", "initial state", 0.0, 1.0, instance=True),
    )
    states = (State("x", "x0", "normalised disc vacancy concentration: 0 HRS, 1 LRS"),)

    @staticmethod
    def conductance(x: np.ndarray, p: ParamSet) -> np.ndarray:
        """Low-voltage conductance (S) at state ``x`` (one state row)."""
        return p.goff * np.exp(np.log(p.gon / p.goff) * np.clip(x, 0.0, 1.0))

    @staticmethod
    def current(v, x, p):
        return Vcm.conductance(x[0], p) * p.vnl * np.sinh(v / p.vnl)

    @staticmethod
    def temperature(v, x, p):
        """Quasi-static filament temperature (K)."""
        return p.t0 + p.rth * v * Vcm.current(v, x, p)

    @staticmethod
    def heat(v, x, p):
        """Arrhenius acceleration exp(ea/vt0 - ea/vt): 1 at ambient, > 1 when Joule-heated."""
        vt = KB * Vcm.temperature(v, x, p) / Q
        vt0 = KB * p.t0 / Q
        return np.exp(p.ea / vt0 - p.ea / vt)

    @classmethod
    def step_move(cls, x, p):
        """The ``$bound_step``'s second term in the .va: at most the move that changes G by 3 %
        (``0.03 / |ln(gon / goff)|``): the SET runs away (G, the current and the Joule heating rise together)."""
        return np.atleast_1d(0.03 / np.maximum(np.abs(np.log(p.gon / p.goff)), 1e-30))[None]

    @staticmethod
    def dxdt(v, x, p):
        v = np.asarray(v, dtype=float)
        xs = np.asarray(x, dtype=float)[0]
        h = Vcm.heat(v, x, p)
        with np.errstate(over="ignore"):
            set_rate = ratecap(p.kset * h * np.sinh(np.maximum(v, 0.0) / p.vset), p.rmax) * wall(1 - xs, p.xedge)
            reset_rate = -ratecap(p.kreset * h * np.sinh(np.maximum(-v, 0.0) / p.vreset), p.rmax) * wall(xs, p.xedge)
        return np.where(v > 0, set_rate, reset_rate)[None, :]


    @classmethod
    def scalar_kernel(cls, p):
        """``(current, dxdt)`` on floats for one device (see ``DeviceModel.scalar_kernel``): the
        expressions of :meth:`conductance`, :meth:`current`, :meth:`heat`, :meth:`dxdt`, :func:`ratecap`
        and :func:`wall` operation for operation. None unless every parameter is one number."""
        q = cls.scalar_params(p)
        return None if q is None else _Kernel(q)

    @classmethod
    def bound_step_one(cls, kernel, v, x):
        """:meth:`bound_step` through the kernel: half the way to the bound, at most :meth:`step_move`."""
        f = kernel.dxdt(v, x)
        if f > 0:
            return min(0.5 * max(1.0 - x, 1e-9), kernel.move) / f
        if f < 0:
            return min(0.5 * max(x - 0.0, 1e-9), kernel.move) / (-f)
        return math.inf


class _Kernel(ScalarKernel):
    """VCM on floats (:meth:`Vcm.scalar_kernel`); ``math`` raises where numpy would overflow to inf
    (``sinh``, ``exp``), and the caller then evaluates the numpy twin."""

    def __init__(self, q: dict):
        self.goff, self.log_ratio, self.vnl = q["goff"], math.log(q["gon"] / q["goff"]), q["vnl"]
        self.kset, self.kreset, self.vset, self.vreset = q["kset"], q["kreset"], q["vset"], q["vreset"]
        self.ea, self.rth, self.t0, self.rmax, self.xedge = q["ea"], q["rth"], q["t0"], q["rmax"], q["xedge"]
        self.vt0 = KB * self.t0 / Q
        self.move = 0.03 / max(abs(self.log_ratio), 1e-30)

    def current(self, v, x):
        g = self.goff * math.exp(self.log_ratio * min(max(x, 0.0), 1.0))
        return g * self.vnl * math.sinh(v / self.vnl)

    def dxdt(self, v, x):
        return self.rate(v, x, self.current(v, x))

    def points(self, v, x, vp, vm, xp, xm):
        """As :meth:`ScalarKernel.points`, each point's current computed once (the rate's heating uses it)."""
        pts = ((v, x), (vp, x), (vm, x), (v, xp), (v, xm))
        currents = tuple(self.current(a, b) for a, b in pts)
        return currents + tuple(self.rate(a, b, i) for (a, b), i in zip(pts, currents))

    def rate(self, v, x, i):
        """dx/dt at ``(v, x)`` given the device current ``i`` there."""
        vt = KB * (self.t0 + self.rth * v * i) / Q
        h = math.exp(self.ea / self.vt0 - self.ea / vt)
        if v > 0:
            return _ratecap_s(self.kset * h * math.sinh(max(v, 0.0) / self.vset), self.rmax) * _wall_s(1 - x, self.xedge)
        return -_ratecap_s(self.kreset * h * math.sinh(max(-v, 0.0) / self.vreset), self.rmax) * _wall_s(x, self.xedge)


def _wall_s(u, d):
    """:func:`wall` on a float (same operations)."""
    return u / d if u < 0 else taper_float(max(u, 0.0), d)


def _ratecap_s(r, rmax):
    """:func:`ratecap` on a float (same operations)."""
    q = r / rmax
    if q < 1e8:
        return r / math.sqrt(math.sqrt(1 + q * q * q * q))
    return rmax


def wall(u, d):
    """:func:`taper` inside the range (``u >= 0``), ``u/d`` past the bound: the rate vanishes at the
    bound approached, and a state past it is driven back in proportion to the distance."""
    u = np.asarray(u, dtype=float)
    return np.where(u < 0, u / d, taper(np.maximum(u, 0.0), d))


def ratecap(r, rmax):
    """``r / (1 + (r/rmax)^4)^(1/4)``: ``r`` well below ``rmax``, ``rmax`` above (and for an overflowed ``r``)."""
    r = np.asarray(r, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        q = r / rmax
        return np.where(q < 1e8, r / np.sqrt(np.sqrt(1 + q * q * q * q)), rmax)   # not rmax + 0 r: inf
