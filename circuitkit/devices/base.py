"""The contract between a Verilog-A device model and its numpy twin.

A device model is a two-terminal element (``p``, ``n``) with zero or more state
variables. Each state is an *external* terminal of the Verilog-A module, so the
netlist names it and ngspice saves it like any node. Every model file
``verilog_a/<name>.va`` follows the same pattern, and its twin (a subclass of
:class:`DeviceModel`) implements the same equations on numpy arrays::

    module <name>(p, n, xs[, ws ...]);        // one terminal per state
      ... parameters, with the same names and defaults as the twin ...
      I(p, n) <+ <current(v, x)>;
      f = <dxdt(v, x)>;
      if (f > 0)                               // step bound (see below)
          $bound_step(0.5*max(1 - V(xs), 1e-9)/f);
      else if (f < 0)
          $bound_step(0.5*max(V(xs), 1e-9)/(-f));
      I(xs) <+ ddt(V(xs));                     // ONE unconditional ddt() per state
      if ($abstime == 0)                       // operating point: hold x at its initial value
          I(xs) <+ V(xs) - x0;
      else                                     // transient: dx/dt = f(v, x) - GLEAK*(x - x0)
          I(xs) <+ -f + 1e-12*(V(xs) - x0);
    endmodule

So the state equation both engines solve is

    dx/dt = dxdt(v, x) - GLEAK * (x - x0)          GLEAK = 1e-12 1/s

and at the operating point x = x0 exactly. The hold tests ``$abstime == 0``,
not ``analysis("static")``: ngspice 46 evaluates the latter as false in a
transient's initial operating point, so a device biased above threshold at
t = 0 would integrate its state there (measured). The ``ddt()`` is
unconditional: with one ``ddt()`` in each branch OpenVAF makes two implicit
equations, and VACASK starts the second one's charge at 0, so the state was
lost at the first time step (VTEAM sine: 29 % RMS off ngspice; 4e-5 with one
``ddt()``).

**Bounds by the equations.** Every state has a range (``State.lower`` ..
``State.upper``, 0..1 for all shipped models); the rate vanishes at the bound
the state moves towards (a taper or window), so the exact solution never
leaves the range. A time step could still carry it across (trapezoidal rule
with a coarse step); the step bound ``$bound_step`` -- the same formula in
:meth:`DeviceModel.bound_step` for the behavioural engine -- lets one step
move the state at most half its distance to that bound. Because the rate
vanishes at least linearly there, the bound stays finite (no "Timestep too
small"). States are dimensionless and O(1)
(normalised to 0..1 where the physics has a bounded range) because ngspice's
tolerances are absolute volts on the state node.

Twins are vectorised: ``v`` has shape ``(n,)``, ``x`` shape ``(n_states, n)``,
and every parameter in ``p`` is a scalar or an array of shape ``(n,)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Mapping

import numpy as np

from ..errors import Location, ParameterError

#: Leak conductance of every state node (1/s); identical in the .va files.
GLEAK = 1e-12

#: Directory of the Verilog-A files shipped with circuitkit.
VERILOG_A_DIR = Path(__file__).resolve().parents[2] / "verilog_a"


@dataclass(frozen=True)
class Parameter:
    """One model parameter, declared identically in the .va file and the twin."""

    name: str
    default: float
    unit: str = ""
    description: str = ""
    lower: float | None = None          # None: unbounded
    upper: float | None = None
    lower_inclusive: bool = True
    upper_inclusive: bool = True
    instance: bool = False              # (*type="instance"*) in Verilog-A

    def check(self, value: float, location: Location | None = None) -> float:
        """Return ``value`` as float, or raise :class:`ParameterError` if out of range."""
        loc = location or Location(parameter=self.name)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"parameter '{self.name}' must be a number, got {value!r}", loc) from None
        if not np.isfinite(value):
            raise ParameterError(f"parameter '{self.name}' must be finite, got {value}", loc)
        lo, hi = self.lower, self.upper
        if lo is not None and (value < lo or (value == lo and not self.lower_inclusive)):
            raise ParameterError(f"parameter '{self.name}' = {value:g} is below its range {self.range_text()}", loc)
        if hi is not None and (value > hi or (value == hi and not self.upper_inclusive)):
            raise ParameterError(f"parameter '{self.name}' = {value:g} is above its range {self.range_text()}", loc)
        return value

    def range_text(self) -> str:
        if self.lower is None and self.upper is None:
            return "(-inf:inf)"
        lo = "-inf" if self.lower is None else f"{self.lower:g}"
        hi = "inf" if self.upper is None else f"{self.upper:g}"
        left = "[" if self.lower is not None and self.lower_inclusive else "("
        right = "]" if self.upper is not None and self.upper_inclusive else ")"
        return f"{left}{lo}:{hi}{right}"


@dataclass(frozen=True)
class State:
    """A state variable: its terminal name in the .va module, its initial-value parameter,
    its range and which end of the range conducts most (``on_bound``: "upper", "lower",
    or None for a state that does not set the read conductance monotonically)."""

    name: str          # e.g. "x"; the Verilog-A terminal is f"{name}s" ("xs")
    init: str          # name of the instance parameter holding its initial value, e.g. "x0"
    description: str = ""
    lower: float = 0.0
    upper: float = 1.0
    on_bound: str | None = "upper"

    @property
    def terminal(self) -> str:
        return f"{self.name}s"


class ParamSet(Mapping[str, object]):
    """Read-only attribute/mapping access to parameter values (scalars or arrays)."""

    def __init__(self, values: Mapping[str, object]):
        self._values = dict(values)
        self._derived: dict = {}         # values derived once from this set (see :meth:`derived`)

    def derived(self, key, make):
        """``make(self)``, computed once per set and kept (the values are read-only): per-group
        precomputation a twin needs at every evaluation (e.g. its parameters as floats)."""
        try:
            return self._derived[key]
        except KeyError:
            value = self._derived[key] = make(self)
            return value

    def tiled(self, n: int, k: int) -> "ParamSet":
        """This set for ``k`` copies of ``n`` devices side by side: per-device arrays of shape (n,)
        repeated ``k`` times (shape (k n,)), scalars kept (cached per ``(n, k)``)."""
        def make(p):
            return ParamSet({name: (np.tile(np.broadcast_to(np.asarray(val, dtype=float), (n,)), k)
                                    if np.ndim(val) else val) for name, val in p._values.items()})
        return self.derived(("tiled", n, k), make)

    def __getattr__(self, name: str):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class DeviceModel:
    """Base class of numpy twins. Subclasses set the class attributes and equations."""

    name: ClassVar[str]                            # Verilog-A module and file name
    description: ClassVar[str] = ""                # one line, for `circuitkit models`
    kind: ClassVar[str] = "memristor"              # "memristor" or "selector"
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    states: ClassVar[tuple[State, ...]] = ()
    references: ClassVar[str] = ""                 # sources of equations and parameter sets

    # -- equations (override) -------------------------------------------------
    @staticmethod
    def current(v: np.ndarray, x: np.ndarray, p: ParamSet) -> np.ndarray:
        """Current from p to n for branch voltage ``v`` and states ``x`` (n_states, n)."""
        raise NotImplementedError

    @staticmethod
    def dxdt(v: np.ndarray, x: np.ndarray, p: ParamSet) -> np.ndarray:
        """State derivatives, shape (n_states, n); without the GLEAK term."""
        return np.zeros((0, np.shape(v)[0]))

    # -- derived, shared by all models -----------------------------------------
    @classmethod
    def n_states(cls) -> int:
        return len(cls.states)

    @classmethod
    def va_file(cls) -> Path:
        return Path(getattr(cls, "va_dir", VERILOG_A_DIR)) / f"{cls.name}.va"

    @classmethod
    def terminals(cls) -> tuple[str, ...]:
        return ("p", "n") + tuple(s.terminal for s in cls.states)

    @classmethod
    def read_conductance(cls, v: float, x, p: ParamSet) -> np.ndarray:
        """I(v, x)/v: what a read at voltage ``v`` sees with the first state at ``x``
        (any shape; the result has that shape) and further states at their initial
        values in ``p``. Used to map weights to states, to verify writes and to find
        a model's ON bound."""
        x = np.asarray(x, dtype=float)
        n = x.size
        rows = [x.reshape(1, n)] + [np.broadcast_to(np.asarray(p[s.init], dtype=float), (n,))[None, :]
                                    for s in cls.states[1:]]
        return (cls.current(np.full(n, float(v)), np.vstack(rows), p) / v).reshape(x.shape)

    @classmethod
    def on_value(cls, state: int = 0) -> float:
        """Value of state ``state`` at its declared high-conductance (ON) bound."""
        s = cls.states[state]
        if s.on_bound not in ("upper", "lower"):
            raise ParameterError(f"model '{cls.name}': state '{s.name}' declares no ON bound",
                                 Location(parameter=s.name))
        return s.upper if s.on_bound == "upper" else s.lower

    @classmethod
    def off_value(cls, state: int = 0) -> float:
        """Value of state ``state`` at its low-conductance (OFF) bound."""
        s = cls.states[state]
        return s.lower if cls.on_value(state) == s.upper else s.upper

    @classmethod
    def parameter(cls, name: str) -> Parameter:
        for prm in cls.parameters:
            if prm.name == name:
                return prm
        known = ", ".join(p.name for p in cls.parameters)
        raise ParameterError(f"model '{cls.name}' has no parameter '{name}' (known: {known})",
                             Location(parameter=name))

    @classmethod
    def defaults(cls) -> dict[str, float]:
        return {p.name: p.default for p in cls.parameters}

    @classmethod
    def resolve(cls, overrides: Mapping[str, object] | None = None, n: int | None = None,
                location: Location | None = None) -> ParamSet:
        """Defaults updated with ``overrides``, each value checked against its range.

        Array overrides (per-instance values) are checked element-wise.
        """
        values: dict[str, object] = cls.defaults()
        for name, value in (overrides or {}).items():
            prm = cls.parameter(name)
            loc = location if location is not None else Location(parameter=name)
            if np.ndim(value) == 0:
                values[name] = prm.check(value, loc)
            else:
                arr = np.asarray(value, dtype=float)
                bad = ~np.isfinite(arr)
                if prm.lower is not None:
                    bad |= (arr < prm.lower) | ((arr == prm.lower) & (not prm.lower_inclusive))
                if prm.upper is not None:
                    bad |= (arr > prm.upper) | ((arr == prm.upper) & (not prm.upper_inclusive))
                if bad.any():
                    k = int(np.flatnonzero(bad)[0])
                    prm.check(float(arr.flat[k]), loc)
                values[name] = arr
        return ParamSet(values)

    @classmethod
    def state_derivative(cls, v: np.ndarray, x: np.ndarray, p: ParamSet) -> np.ndarray:
        """Full right-hand side both engines integrate: dxdt - GLEAK*(x - x0)."""
        f = np.asarray(cls.dxdt(v, x, p), dtype=float).reshape(cls.n_states(), -1)
        shape = np.shape(v)

        def initial(q):
            return np.array([np.broadcast_to(q[s.init], shape) for s in cls.states], dtype=float)
        x0 = p.derived(("x0", cls.name, shape), initial) if isinstance(p, ParamSet) else initial(p)
        return f - GLEAK * (x - x0.reshape(f.shape))

    @classmethod
    def step_move(cls, x: np.ndarray, p: ParamSet):
        """Largest move of each state in one time step besides half its distance to the bound, (S, n) or
        broadcastable, or None (no other limit). Models whose current is steep in the state limit it
        (the same term is in their ``$bound_step``)."""
        return None

    @classmethod
    def bound_step(cls, v: np.ndarray, x: np.ndarray, p: ParamSet) -> np.ndarray:
        """Largest time step the model allows at (v, x), shape (n,); ``inf`` where no state moves.

        The ``$bound_step`` of the Verilog-A files: a step moves each state at most half
        its distance to the bound it moves towards (``dxdt`` without the GLEAK term), and at most
        :meth:`step_move` where a model sets one.
        """
        v = np.asarray(v, dtype=float)
        x = np.asarray(x, dtype=float).reshape(cls.n_states(), -1)
        f = np.asarray(cls.dxdt(v, x, p), dtype=float).reshape(cls.n_states(), -1)
        move = cls.step_move(x, p)
        out = np.full(v.shape, np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            for k, s in enumerate(cls.states):
                fk = f[k]
                up = 0.5 * np.maximum(s.upper - x[k], 1e-9)
                down = 0.5 * np.maximum(x[k] - s.lower, 1e-9)
                if move is not None:
                    up, down = np.minimum(up, move[k]), np.minimum(down, move[k])
                up = up / fk
                down = down / (-fk)
                h = np.where(fk > 0, up, np.where(fk < 0, down, np.inf))
                out = h if k == 0 and h.shape == out.shape else np.minimum(out, h)   # min(inf, h) is h
        return out

    @classmethod
    def linearize(cls, v: np.ndarray, x: np.ndarray, p: ParamSet):
        """Values and partial derivatives for Newton's method.

        Returns ``(i, di_dv, di_dx, f, df_dv, df_dx)`` with ``f`` the full state
        derivative (:meth:`state_derivative`); ``di_dx`` has shape (n_states, n),
        ``df_dv`` (n_states, n) and ``df_dx`` (n_states, n_states, n).
        The default uses central finite differences; models may override with
        analytic derivatives.
        """
        v = np.asarray(v, dtype=float)
        ns = cls.n_states()
        x = np.asarray(x, dtype=float).reshape(ns, -1)
        if v.ndim != 1 or x.shape[1] != v.shape[0]:
            return cls._linearize_calls(v, x, p)
        # One call of ``current`` and one of ``state_derivative`` on the 3 + 2 ns perturbed copies of
        # the devices side by side (the twins are elementwise over devices): the same differences as
        # :meth:`_linearize_calls`, without 2 + 4 ns calls' fixed cost (which dominates small groups).
        n = v.shape[0]
        k = 3 + 2 * ns
        hv = 1e-6 * np.maximum(np.abs(v), 1e-3)
        vb = np.empty((k, n))
        vb[:] = v
        vb[1] += hv
        vb[2] -= hv
        xb = np.empty((ns, k, n))
        xb[:] = x[:, None, :]
        hx = 1e-6 * np.maximum(np.abs(x), 1e-3)
        for j in range(ns):
            xb[j, 3 + 2 * j] += hx[j]
            xb[j, 4 + 2 * j] -= hx[j]
        pk = p.tiled(n, k) if isinstance(p, ParamSet) else ParamSet(p).tiled(n, k)
        cur = np.asarray(cls.current(vb.reshape(-1), xb.reshape(ns, -1), pk), dtype=float).reshape(k, n)
        sd = np.asarray(cls.state_derivative(vb.reshape(-1), xb.reshape(ns, -1), pk), dtype=float).reshape(ns, k, n)
        i, f = cur[0], sd[:, 0]
        two_hv = 2 * hv
        di_dv = (cur[1] - cur[2]) / two_hv
        df_dv = (sd[:, 1] - sd[:, 2]) / two_hv
        di_dx = np.empty((ns, n))
        df_dx = np.empty((ns, ns, n))
        for j in range(ns):
            two_hx = 2 * hx[j]
            di_dx[j] = (cur[3 + 2 * j] - cur[4 + 2 * j]) / two_hx
            df_dx[:, j] = (sd[:, 3 + 2 * j] - sd[:, 4 + 2 * j]) / two_hx
        return i, di_dv, di_dx, f, df_dv, df_dx

    # -- one device on Python floats (optional, per model) -----------------------
    @classmethod
    def scalar_kernel(cls, p: ParamSet) -> "ScalarKernel | None":
        """A :class:`ScalarKernel` of ONE one-state device with parameters ``p``, or None when the
        model has none or ``p`` does not fit.

        For one-device groups the per-call cost of numpy (~1-2 us per operation on arrays of a few
        elements) dominates everything else; the same equations on floats cost far less. A kernel
        evaluates exactly the expressions of :meth:`current` and :meth:`dxdt` (same operations,
        same order: the results agree to rounding, which the tests check) and raises
        ``ArithmeticError`` wherever Python's float arithmetic refuses a value numpy would return
        as inf or NaN (overflow, division by zero): the callers then use the numpy twin.
        """
        return None

    @classmethod
    def scalar_params(cls, p: ParamSet) -> dict[str, float] | None:
        """The model (not instance) parameters of ``p`` as floats for a :class:`ScalarKernel`, or None
        when any of them is not one number (a group whose devices differ)."""
        q = {}
        for prm in cls.parameters:
            if prm.instance:
                continue
            value = np.asarray(p[prm.name], dtype=float)
            if value.size != 1:
                return None
            q[prm.name] = float(value.reshape(-1)[0])
        return q

    @classmethod
    def linearize_one(cls, kernel: "ScalarKernel", v: float, x: float, x0: float) -> tuple[float, ...]:
        """:meth:`linearize` of one one-state device through its :meth:`scalar_kernel`.

        The same central differences at the same perturbed points as :meth:`linearize`, on
        floats: ``(i, di_dv, di_dx, f, df_dv, df_dx)`` with ``f`` the full state derivative
        ``dxdt - GLEAK (x - x0)``. Raises ``ArithmeticError`` (see :meth:`scalar_kernel`).
        """
        hv = 1e-6 * max(abs(v), 1e-3)
        hx = 1e-6 * max(abs(x), 1e-3)
        vp, vm, xp, xm = v + hv, v - hv, x + hx, x - hx
        i0, ivp, ivm, ixp, ixm, r0, rvp, rvm, rxp, rxm = kernel.points(v, x, vp, vm, xp, xm)
        two_hv, two_hx = 2 * hv, 2 * hx
        leak = GLEAK * (x - x0)
        f0, fvp, fvm = r0 - leak, rvp - leak, rvm - leak
        fxp, fxm = rxp - GLEAK * (xp - x0), rxm - GLEAK * (xm - x0)
        return (i0, (ivp - ivm) / two_hv, (ixp - ixm) / two_hx, f0, (fvp - fvm) / two_hv, (fxp - fxm) / two_hx)

    @classmethod
    def bound_step_one(cls, kernel: "ScalarKernel", v: float, x: float) -> float:
        """:meth:`bound_step` of one one-state device through its :meth:`scalar_kernel` (same formula)."""
        f = kernel.dxdt(v, x)
        s = cls.states[0]
        if f > 0:
            return 0.5 * max(s.upper - x, 1e-9) / f
        if f < 0:
            return 0.5 * max(x - s.lower, 1e-9) / (-f)
        return math.inf

    @classmethod
    def _linearize_calls(cls, v: np.ndarray, x: np.ndarray, p: ParamSet):
        """:meth:`linearize` by separate calls per perturbation (any shape of ``v``)."""
        i = cls.current(v, x, p)
        f = cls.state_derivative(v, x, p)
        hv = 1e-6 * np.maximum(np.abs(v), 1e-3)
        di_dv = (cls.current(v + hv, x, p) - cls.current(v - hv, x, p)) / (2 * hv)
        df_dv = (cls.state_derivative(v + hv, x, p) - cls.state_derivative(v - hv, x, p)) / (2 * hv)
        ns = cls.n_states()
        di_dx = np.empty((ns,) + v.shape)
        df_dx = np.empty((ns, ns) + v.shape)
        for k in range(ns):
            hx = 1e-6 * np.maximum(np.abs(x[k]), 1e-3)
            xp, xm = x.copy(), x.copy()
            xp[k] += hx
            xm[k] -= hx
            di_dx[k] = (cls.current(v, xp, p) - cls.current(v, xm, p)) / (2 * hx)
            df_dx[:, k] = (cls.state_derivative(v, xp, p) - cls.state_derivative(v, xm, p)) / (2 * hx)
        return i, di_dv, di_dx, f, df_dv, df_dx


class ScalarKernel:
    """One one-state device's equations on Python floats (see :meth:`DeviceModel.scalar_kernel`)."""

    def current(self, v: float, x: float) -> float:
        raise NotImplementedError

    def dxdt(self, v: float, x: float) -> float:
        raise NotImplementedError

    def points(self, v, x, vp, vm, xp, xm) -> tuple[float, ...]:
        """Currents and rates (without GLEAK) at the five points of the central differences:
        ``(v, x), (vp, x), (vm, x), (v, xp), (v, xm)``, currents first. Kernels may share the parts
        that depend on ``v`` or ``x`` alone between points (same operations, so the same values)."""
        c, r = self.current, self.dxdt
        return (c(v, x), c(vp, x), c(vm, x), c(v, xp), c(v, xm),
                r(v, x), r(vp, x), r(vm, x), r(v, xp), r(v, xm))


#: name -> twin class; filled by :func:`register` (see ``circuitkit.devices``).
REGISTRY: dict[str, type[DeviceModel]] = {}


def register(cls: type[DeviceModel]) -> type[DeviceModel]:
    """Class decorator adding a twin to the registry under its ``name``."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"device model '{cls.name}' registered twice")
    REGISTRY[cls.name] = cls
    return cls
