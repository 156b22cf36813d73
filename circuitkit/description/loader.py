"""Turn parsed statements into a :class:`~circuitkit.design.Design`.

Every check here raises :class:`DescriptionError` with the file, line and
column of the offending statement or setting.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .. import design as d
from ..circuit.model import IDENTIFIER, MosfetModel
from ..circuit.waveforms import DC, PWL, Pulse, Sine
from ..devices.registry import get_model, load_models_dir
from .. import limits
from ..errors import DescriptionError, Location, ParameterError, printable
from . import safeio
from .parser import Call, ParsedDescription, Setting, Statement, Symbol, parse_file, parse_text

ELEMENT_KINDS = ("source", "resistor", "capacitor", "device")
RECORD_GROUPS = ("column_currents", "tia_out", "adc_codes", "states", "line_voltages", "supply_currents", "energy")


def load_description(path: str | Path, overrides: Mapping[str, str] | None = None) -> d.Design:
    """Parse and check a .xbar file; ``overrides`` are ``--set name=value`` pairs."""
    return design_from_parsed(parse_file(path, overrides))


def load_text(text: str, file: str | None = None, overrides: Mapping[str, str] | None = None) -> d.Design:
    return design_from_parsed(parse_text(text, file, overrides))


# -- small typed readers ------------------------------------------------------

def _err(msg: str, loc: Location) -> DescriptionError:
    return DescriptionError(msg, loc)


def _number(value, what: str, loc: Location, *, positive=False, nonneg=False) -> float:
    if isinstance(value, Symbol):
        raise _err(f"{what}: unknown parameter '{printable(value, 64)}'", loc)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _err(f"{what} must be a number, got {d.brief(value)}", loc)
    value = float(value)
    if not np.isfinite(value):
        raise _err(f"{what} must be finite, got {value}", loc)
    if positive and value <= 0:
        raise _err(f"{what} must be > 0, got {value:g}", loc)
    if nonneg and value < 0:
        raise _err(f"{what} must be >= 0, got {value:g}", loc)
    return value


def _integer(value, what: str, loc: Location, *, minimum: int | None = None, maximum: int | None = None) -> int:
    v = _number(value, what, loc)
    if v != int(v):
        raise _err(f"{what} must be a whole number, got {v:.15g}", loc)
    if minimum is not None and v < minimum:
        raise _err(f"{what} must be >= {minimum}, got {v:.15g}", loc)
    hi = limits.MAX_SEED if maximum is None else maximum
    if v > hi:
        raise _err(f"{what} must be <= {hi}, got {v:.15g}", loc)
    return int(v)


def _word(value, what: str, loc: Location, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise _err(f"{what} must be one of {', '.join(choices)}, got {d.brief(value)}", loc)
    low = {c.lower(): c for c in choices}
    key = str(value).lower().replace("/", "")
    if key not in low:
        raise _err(f"{what} must be one of {', '.join(choices)}, got '{value}'", loc)
    return low[key]


def _name(value: str, what: str, loc: Location) -> str:
    if not IDENTIFIER.match(value):
        raise _err(f"{what} '{printable(value, 64)}' is not a safe identifier (a letter, then up to 63 letters, "
                   "digits or _)", loc)
    return value


def _path(value, base: Path | None, what: str, loc: Location) -> Path:
    if not isinstance(value, str) or isinstance(value, Symbol):
        raise _err(f"{what} must be a file name in quotes, got {d.brief(value)}", loc)
    safeio.check_path_text(value, loc, what)
    p = Path(value)
    if not p.is_absolute() and base is not None:
        p = base / p
    try:
        found, regular = p.exists(), p.is_file()
    except (OSError, ValueError):
        found = regular = False
    if not found:
        raise _err(f"{what}: file '{printable(value, 200)}' not found", loc)
    if not regular:
        raise _err(f"{what}: '{printable(p.name, 200)}' is not a regular file", loc)
    return p


class _Kwargs:
    """Checked access to a call's arguments; complains about leftovers."""

    def __init__(self, call: Any, what: str, loc: Location, positional: tuple[str, ...] = ()):
        if not isinstance(call, Call):
            raise _err(f"{what} must be a call like name(...), got {d.brief(call)}", loc)
        self.call, self.what, self.loc = call, what, call.location
        if len(call.args) > len(positional):
            raise _err(f"{call.name}() takes at most {len(positional)} positional argument(s)", self.loc)
        self.values = dict(zip(positional, call.args))
        for k, v in call.kwargs.items():
            if k in self.values:
                raise _err(f"{call.name}(): argument '{k}' given twice", self.loc)
            self.values[k] = v
        self.used: set[str] = set()

    def get(self, key: str, default: Any = None, conv: Callable | None = None, required=False, **kw):
        self.used.add(key)
        if key not in self.values:
            if required:
                raise _err(f"{self.call.name}() needs argument '{key}'", self.loc)
            return default
        value = self.values[key]
        return conv(value, f"{self.call.name}({key})", self.loc, **kw) if conv else value

    def done(self):
        extra = sorted(set(self.values) - self.used)
        if extra:
            known = ", ".join(sorted(self.used))
            raise _err(f"{self.call.name}() has no argument '{extra[0]}' (known: {known})", self.loc)


class _Block:
    """Checked access to a section's settings (``key = value`` lines)."""

    def __init__(self, st: Statement):
        self.st = st
        self.settings = st.settings
        self.used: set[int] = set()

    def all(self, key: str) -> list[Setting]:
        out = []
        for i, s in enumerate(self.settings):
            if s.key == key:
                self.used.add(i)
                out.append(s)
        return out

    def one(self, key: str) -> Setting | None:
        found = self.all(key)
        if len(found) > 1:
            raise _err(f"'{key}' set twice in {self.st.kind}", found[1].location)
        return found[0] if found else None

    def done(self, known: tuple[str, ...]):
        for i, s in enumerate(self.settings):
            if i not in self.used:
                raise _err(f"unknown setting '{s.key}' in {self.st.kind} (known: {', '.join(known)})", s.location)


# -- waveforms, models ---------------------------------------------------------

def _volts(value, what: str, loc: Location) -> float:
    """A source voltage: a finite number within +-:data:`~circuitkit.limits.V_MAX`."""
    v = _number(value, what, loc)
    if abs(v) > limits.V_MAX:
        raise _err(f"{what} = {v:g} V is outside [-{limits.V_MAX:g}, {limits.V_MAX:g}] V", loc)
    return v


def _waveform(value, loc: Location):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return DC(_volts(value, "source value", loc))
    if isinstance(value, Call) and value.name not in ("dc", "sine", "pulse", "pwl"):
        raise _err(f"unknown waveform '{value.name}' (known: dc, sine, pulse, pwl)", value.location)
    a = _Kwargs(value, "source waveform", loc, positional=_WAVE_POSITIONAL.get(getattr(value, "name", ""), ()))
    name = value.name
    try:
        if name == "dc":
            w = DC(a.get("value", conv=_volts, required=True))
        elif name == "sine":
            # damping is ngspice's THETA, the decay rate of exp(-theta (t - td)): a negative one grows without bound
            offset, amplitude = a.get("offset", 0.0, _volts), a.get("amplitude", conv=_volts, required=True)
            if abs(offset) + abs(amplitude) > limits.V_MAX:
                raise _err(f"sine(): |offset| + |amplitude| = {abs(offset) + abs(amplitude):g} V exceeds "
                           f"{limits.V_MAX:g} V", a.loc)
            w = Sine(offset=offset, amplitude=amplitude,
                     freq=a.get("freq", conv=_number, required=True, positive=True),
                     delay=a.get("delay", 0.0, _number, nonneg=True), damping=a.get("damping", 0.0, _number,
                                                                                    nonneg=True),
                     phase=a.get("phase", 0.0, _number))
        elif name == "pulse":
            rise = a.get("rise", 1e-9, _number, positive=True)
            fall = a.get("fall", rise, _number, positive=True)
            width = a.get("width", conv=_number, required=True, positive=True)
            delay = a.get("delay", 0.0, _number, nonneg=True)
            period = a.get("period", None, _number, positive=True)
            if period is None:
                period = 1e30
            w = Pulse(v1=a.get("v1", 0.0, _volts), v2=a.get("v2", conv=_volts, required=True),
                      delay=delay, rise=rise, fall=fall, width=width, period=period)
        elif name == "pwl":
            times = a.get("times", required=True)
            values = a.get("values", required=True)
            if not (isinstance(times, list) and isinstance(values, list)):
                raise _err("pwl(times=[...], values=[...]) needs two lists", a.loc)
            w = PWL(tuple(_number(t, "pwl time", a.loc) for t in times),
                    tuple(_volts(v, "pwl value", a.loc) for v in values))
        else:
            raise _err(f"unknown waveform '{name}' (known: dc, sine, pulse, pwl)", a.loc)
    except ValueError as exc:
        raise _err(f"{name}(): {exc}", a.loc) from None
    a.done()
    return w


_WAVE_POSITIONAL = {"dc": ("value",), "sine": ("offset", "amplitude", "freq"), "pwl": ("times", "values")}


def _device_model(value, what: str, loc: Location):
    """``vteam(x0=0.1, koff=...)`` or a bare model name -> (name, params)."""
    if isinstance(value, str) and not isinstance(value, Call):
        name, kwargs, cloc = str(value), {}, loc
    elif isinstance(value, Call):
        if value.args:
            raise _err(f"{what}: model parameters must be named, e.g. {value.name}(x0=0.5)", value.location)
        name, kwargs, cloc = value.name, value.kwargs, value.location
    else:
        raise _err(f"{what} must name a device model, got {d.brief(value)}", loc)
    try:
        model = get_model(name, cloc)
    except ParameterError as exc:
        raise _err(exc.message, cloc) from None
    params = {}
    for key, v in kwargs.items():
        try:
            prm = model.parameter(key)
            params[key] = prm.check(_number(v, f"{name}({key})", cloc), cloc)
        except ParameterError as exc:
            raise _err(exc.message, cloc) from None
    try:
        model.resolve(params, location=cloc)       # cross-parameter checks of the model (e.g. gmax > gmin)
    except ParameterError as exc:
        raise _err(exc.message, cloc) from None
    return name, params


def _mosfet(value, loc: Location) -> MosfetModel:
    a = _Kwargs(value, "transistor", loc)
    if value.name not in ("nmos", "pmos"):
        raise _err(f"transistor must be nmos(...) or pmos(...), got {value.name}(...)", a.loc)
    kw = dict(polarity=value.name, vto=a.get("vto", 0.7, _number), kp=a.get("kp", 2e-4, _number, positive=True),
              lambda_=a.get("lambda_", a.get("lam", 0.0, _number, nonneg=True), _number, nonneg=True),
              w=a.get("w", 1e-6, _number, positive=True), l=a.get("l", 1e-6, _number, positive=True))
    a.done()
    return MosfetModel(**kw)


# -- sections ------------------------------------------------------------------

def _crossbar(st: Statement, base: Path | None) -> d.Crossbar:
    b = _Block(st)
    xb = d.Crossbar(name=_name(st.name, "crossbar name", st.location), location=st.location)
    for key in ("rows", "cols"):
        s = b.one(key)
        if s is None:
            raise _err(f"crossbar '{st.name}' needs '{key}'", st.location)
        xb.set_checked(key, _integer(s.value, key, s.location, minimum=1, maximum=limits.MAX_LINES), s.location)
    if (s := b.one("cell")) is not None:
        xb.set_checked("cell", s.value, s.location)
    if (s := b.one("device")) is not None:
        xb.model, xb.params = _device_model(s.value, "device", s.location)
    else:
        xb.model, xb.params = _device_model("vteam", "device", st.location)
    if (s := b.one("selector")) is not None:
        xb.selector, xb.selector_params = _device_model(s.value, "selector", s.location)
    if (s := b.one("transistor")) is not None:
        xb.transistor = _mosfet(s.value, s.location)
    if (s := b.one("state")) is not None:
        xb.state = _state(s.value, s.location, base)
        _check_state_file(xb, s.location)
    else:
        # device = vteam(x0 = 0.9) without a state setting: the cells start at the model's own initial-state
        # parameter, as an element testbench's device does (not at the state setting's default)
        states = get_model(xb.model).states
        dev = b.one("device")
        if states and dev is not None and states[0].init in xb.params:
            xb.state = d.StateInit(kind="constant", value=float(xb.params[states[0].init]), location=dev.location)
    if (s := b.one("variability")) is not None:
        sigmas, seed = _variability(s.value, xb.model, s.location)
        xb.set_checked("variability", sigmas, s.location)
        xb.set_checked("variability_seed", seed, s.location)
    if (s := b.one("faults")) is not None:
        on, off, seed = _faults(s.value, s.location)
        for key, v in (("stuck_on", on), ("stuck_off", off), ("faults_seed", seed)):
            xb.set_checked(key, v, s.location)
    b.done(("rows", "cols", "cell", "device", "selector", "transistor", "state", "variability", "faults"))
    _check_states(xb, b)
    return xb


def _check_states(xb: d.Crossbar, b: "_Block") -> None:
    """The builder's state checks, here where the settings' lines are known."""
    model = get_model(xb.model)
    if xb.cell == "1S1R":
        sel = get_model(xb.selector)
        if sel.kind != "selector":
            where = next((s.location for s in b.settings if s.key == "selector"), b.st.location)
            raise _err(f"selector model '{sel.name}' is a {sel.kind}, not a selector", where)
    faults = next((s for s in b.settings if s.key == "faults"), None)
    if faults is not None and (xb.stuck_on or xb.stuck_off) and not model.states:
        raise _err(f"faults: model '{model.name}' has no state to be stuck", faults.location)
    state = next((s for s in b.settings if s.key == "state"), None)
    if state is None or not model.states:
        return
    prm = model.parameter(model.states[0].init)
    s = xb.state
    values = {"constant": (s.value,), "uniform": (s.low, s.high)}.get(s.kind)
    for v in values or ():
        try:
            prm.check(v, state.location)
        except ParameterError:
            raise _err(f"initial states outside the range {prm.range_text()} of '{prm.name}'", state.location) \
                from None


def _check_state_file(xb: d.Crossbar, loc: Location) -> None:
    """Read a state or weight file now (safely, see :mod:`.safeio`) and check its shape, at the setting."""
    s = xb.state
    if s.kind not in ("file", "weights"):
        return
    arr = safeio.read_matrix(s.path, loc, f"state {s.kind}()")
    R, C = xb.rows, xb.cols
    name = Path(s.path).name
    if s.kind == "file" and arr.shape != (R, C):
        raise _err(f"state file '{name}' has shape {arr.shape}, expected ({R}, {C})", loc)
    if s.kind == "weights":
        if s.mapping == "differential" and (arr.shape != (R, C // 2) or C % 2):
            raise _err(f"differential mapping of a {arr.shape} weight matrix needs a crossbar of "
                       f"{arr.shape[0]} x {2 * arr.shape[1]}, not {R} x {C}", loc)
        if s.mapping == "single" and arr.shape != (R, C - 1):
            raise _err(f"single mapping of a {arr.shape} weight matrix needs a crossbar of "
                       f"{arr.shape[0]} x {arr.shape[1] + 1} (one offset column), not {R} x {C}", loc)


def _variability(value, model_name: str, loc: Location) -> tuple[dict[str, float], int]:
    """``lognormal(ron = 0.1, roff = 0.05, seed = 1)``: per-device factors exp(sigma * N(0, 1))."""
    if not (isinstance(value, Call) and value.name == "lognormal"):
        raise _err("variability must be lognormal(<model parameter> = sigma, ..., seed = n)", loc)
    model = get_model(model_name, value.location)
    seed = 0
    sigmas: dict[str, float] = {}
    for key, v in value.kwargs.items():
        if key == "seed":
            seed = _integer(v, "seed", value.location, minimum=0)
            continue
        try:
            prm = model.parameter(key)
        except ParameterError as exc:
            raise _err(exc.message, value.location) from None
        if prm.instance:
            raise _err(f"'{key}' of model '{model.name}' is an instance parameter (a state); "
                       "variability applies to model parameters", value.location)
        sigmas[key] = _number(v, f"variability of '{key}'", value.location, nonneg=True)
    if not sigmas:
        raise _err("lognormal() names no model parameter to vary", value.location)
    return sigmas, seed


def _faults(value, loc: Location) -> tuple[float, float, int]:
    """``stuck(on = fraction, off = fraction, seed = n)``: cells stuck at their ON / OFF bound."""
    if not (isinstance(value, Call) and value.name == "stuck"):
        raise _err("faults must be stuck(on = fraction, off = fraction, seed = n)", loc)
    a = _Kwargs(value, "faults", loc)
    on = a.get("on", 0.0, _number, nonneg=True)
    off = a.get("off", 0.0, _number, nonneg=True)
    seed = a.get("seed", 0, _integer, minimum=0)
    if on + off > 1:
        raise _err("faults: stuck(on + off) must not exceed 1", a.loc)
    a.done()
    return on, off, seed


def _state(value, loc: Location, base: Path | None) -> d.StateInit:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return d.StateInit(kind="constant", value=_number(value, "state", loc))
    kinds = {"constant": ("value",), "uniform": ("low", "high"), "file": ("path",), "weights": ("path",)}
    if not isinstance(value, Call) or value.name not in kinds:
        raise _err("state must be a number, constant(v), uniform(low, high, seed=), file(\"x.npy\") "
                   "or weights(\"w.npy\", mapping=differential, gmin=, gmax=, vread=)", loc)
    a = _Kwargs(value, "state", loc, positional=kinds[value.name])
    s = d.StateInit(location=loc)
    s.kind = value.name
    if value.name == "constant":
        s.value = a.get("value", conv=_number, required=True)
    elif value.name == "uniform":
        s.low = a.get("low", conv=_number, required=True)
        s.high = a.get("high", conv=_number, required=True)
        s.seed = a.get("seed", 0, _integer, minimum=0)
        if s.high < s.low:
            raise _err("uniform(low, high): high must be >= low", a.loc)
    else:
        s.path = a.get("path", required=True, conv=lambda v, w, l: _path(v, base, w, l))
        if value.name == "weights":
            s.mapping = _word(a.get("mapping", "differential"), "mapping", a.loc, ("single", "differential"))
            s.gmin = a.get("gmin", conv=_number, required=True, positive=True)
            s.gmax = a.get("gmax", conv=_number, required=True, positive=True)
            s.vread = a.get("vread", 0.2, _number, positive=True)
            if s.gmax <= s.gmin:
                raise _err("weights(): gmax must be > gmin", a.loc)
    a.done()
    return s


def _wires(st: Statement) -> d.Wires:
    b = _Block(st)
    w = d.Wires(location=st.location)
    for key in ("r_row", "r_col", "c_row", "c_col"):
        if (s := b.one(key)) is not None:
            w.set_checked(key, _number(s.value, key, s.location, nonneg=True), s.location)
    for key in ("drive", "sense"):                  # one sensing end per column
        if (s := b.one(key)) is not None:
            w.set_checked(key, s.value, s.location)
    b.done(("r_row", "r_col", "c_row", "c_col", "drive", "sense"))
    return w


def _driver(st: Statement) -> d.Driver:
    b = _Block(st)
    drv = d.Driver(location=st.location)
    if (s := b.one("r_out")) is not None:
        drv.set_checked("r_out", _number(s.value, "r_out", s.location, nonneg=True), s.location)
    for key in ("rise", "fall"):
        if (s := b.one(key)) is not None:
            drv.set_checked(key, _number(s.value, key, s.location, positive=True), s.location)
    if (s := b.one("vgate")) is not None:
        drv.set_checked("vgate", _number(s.value, "vgate", s.location), s.location)
    if (s := b.one("dac")) is not None:
        a = _Kwargs(s.value, "dac", s.location)
        drv.set_checked("dac_bits", a.get("bits", conv=_integer, required=True, minimum=1, maximum=limits.MAX_BITS),
                        a.loc)
        vmin = a.get("vmin", 0.0, _number)
        vmax = a.get("vmax", conv=_number, required=True)
        if vmax <= vmin:
            raise _err("dac(): vmax must be > vmin", a.loc)
        drv.set_checked("vmin", vmin, a.loc)
        drv.set_checked("vmax", vmax, a.loc)
        a.done()
    b.done(("r_out", "rise", "fall", "vgate", "dac"))
    return drv


def _sense(st: Statement) -> d.Sense:
    b = _Block(st)
    sn = d.Sense(location=st.location)
    if (s := b.one("tia")) is not None:
        v = s.value
        if isinstance(v, str) and not isinstance(v, Call):
            v = Call(str(v), [], {}, s.location)
        a = _Kwargs(v, "tia", s.location)
        sn.set_checked("kind", v.name, a.loc)
        sn.set_checked("rf", a.get("rf", sn.rf, _number, positive=True), a.loc)
        if sn.kind == "opamp":
            sn.set_checked("gain", a.get("gain", sn.gain, _number, positive=True), a.loc)
            sn.set_checked("gbw", a.get("gbw", None, _number, positive=True), a.loc)
        a.done()
    if (s := b.one("adc")) is not None:
        a = _Kwargs(s.value, "adc", s.location)
        sn.set_checked("adc_bits", a.get("bits", conv=_integer, required=True, minimum=1, maximum=limits.MAX_BITS),
                       a.loc)
        vmin = a.get("vmin", conv=_number, required=True)
        vmax = a.get("vmax", conv=_number, required=True)
        sample = a.get("sample", 0.9, _number)
        if not 0 < sample <= 1:
            raise _err("adc(sample=...) is the fraction of a read phase at which to sample, in (0, 1]", a.loc)
        if vmax <= vmin:
            raise _err("adc(): vmax must be > vmin", a.loc)
        for key, val in (("adc_vmin", vmin), ("adc_vmax", vmax), ("sample", sample)):
            sn.set_checked(key, val, a.loc)
        a.done()
    b.done(("tia", "adc"))
    return sn


def _vector(value, what: str, loc: Location) -> list[float | None]:
    """A list of numbers; the word ``float`` leaves that line undriven."""
    if not isinstance(value, list) or not value:
        raise _err(f"{what} must be a non-empty list of numbers", loc)
    if len(value) > limits.MAX_LINES:
        raise _err(f"{what} has {len(value):,} values, more than the {limits.MAX_LINES:,} lines a crossbar may have",
                   loc)
    if {type(v) for v in value} <= {float, int}:                       # fast path: plain numbers
        if np.all(np.isfinite(np.array(value, dtype=float))):
            return [float(v) for v in value]
    return [None if isinstance(v, Symbol) and v == "float" else _number(v, what, loc) for v in value]


def _stimulus(st: Statement, base: Path | None, design: d.Design, seen: dict[str, Location]) -> None:
    """One stimulus block. ``seen``: what the description set once, where (``design_from_parsed``'s register of
    sections): ``duration`` is the length of every read phase, so a second block's would silently re-time the
    first block's phases too."""
    b = _Block(st)
    if (s := b.one("duration")) is not None:
        if "stimulus duration" in seen:
            raise _err(f"'duration' set twice (first at line {seen['stimulus duration'].line}): it is the length of "
                       "every read phase, in all stimulus blocks", s.location)
        design.set_checked("phase_duration", _number(s.value, "duration", s.location, positive=True), s.location)
        seen["stimulus duration"] = s.location
    phases: list[d.Phase] = []
    for s in st.settings:
        if s.key == "read":
            v = s.value
            select = sense = None
            if isinstance(v, Call) and v.name == "read":
                a = _Kwargs(v, "read", s.location, positional=("vector",))
                vec = _vector(a.get("vector", required=True), "read vector", a.loc)
                select = _indices(a.get("select"), "select", a.loc)
                sense = _indices(a.get("sense"), "sense", a.loc)
                a.done()
            else:
                vec = _vector(v, "read vector", s.location)
            phases.append(d.ReadPhase(vec, select=select, sense=sense, location=s.location))
        elif s.key == "reads":
            if not (isinstance(s.value, Call) and s.value.name == "file"):
                raise _err('reads must be file("inputs.npy") (one read vector per row)', s.location)
            a = _Kwargs(s.value, "reads", s.location, positional=("path",))
            p = a.get("path", required=True, conv=lambda v, w, l: _path(v, base, w, l))
            a.done()
            arr = safeio.read_matrix(p, s.location, "reads file()")
            if arr.shape[1] > limits.MAX_LINES:
                raise _err(f"reads file has {arr.shape[1]:,} values per row, more than {limits.MAX_LINES:,}",
                           s.location)
            phases.extend(d.ReadPhase(row.tolist(), location=s.location) for row in arr)
        elif s.key == "program":
            a = _Kwargs(s.value, "program", s.location)
            if s.value.name != "pulses":
                raise _err("program must be pulses(row=, col=, amplitude=, width=, count=, gap=, scheme=)", a.loc)
            phases.append(d.ProgramPhase(
                row=_selection(a.get("row", required=True), "row", a.loc),
                col=_selection(a.get("col", required=True), "col", a.loc),
                amplitude=a.get("amplitude", conv=_number, required=True),
                width=a.get("width", conv=_number, required=True, positive=True),
                count=a.get("count", 1, _integer, minimum=1, maximum=limits.MAX_PULSES),
                gap=a.get("gap", 0.0, _number, nonneg=True),
                scheme=a.get("scheme", "v2"), location=a.loc))
            a.done()
        elif s.key == "wave":
            phases.append(_wave_phase(s))
    b.all("read"), b.all("reads"), b.all("program"), b.all("wave")
    b.done(("duration", "read", "reads", "program", "wave"))
    design.stimulus.extend(phases)


_WAVE_HELP = ("wave must be waves(line(pwl([t...], [v...]), row=|col=), "
              "spikes(shape=pwl([t...], [v...]), times=[...], row=|col=), ..., duration=)")


def _wave_phase(s: Setting) -> d.WavePhase:
    """``wave = waves(line(pwl(...), row=0), spikes(shape=pwl(...), times=[...], col=1), duration=4u)``."""
    v = s.value
    if not (isinstance(v, Call) and v.name == "waves") or not v.args:
        raise _err(_WAVE_HELP, getattr(v, "location", None) or s.location)
    extra = sorted(set(v.kwargs) - {"duration"})
    if extra:
        raise _err(f"waves() has no argument '{extra[0]}' (known: line(...)/spikes(...), then duration=)", v.location)
    duration = _number(v.kwargs["duration"], "waves(duration)", v.location, positive=True) \
        if "duration" in v.kwargs else None
    waves = []
    for spec in v.args:
        if not (isinstance(spec, Call) and spec.name in ("line", "spikes")):
            raise _err(_WAVE_HELP, getattr(spec, "location", None) or v.location)
        a = _Kwargs(spec, spec.name, v.location, positional=("waveform",) if spec.name == "line" else ())
        row, col = a.get("row", None, _integer, minimum=0), a.get("col", None, _integer, minimum=0)
        if (row is None) == (col is None):
            raise _err(f"{spec.name}() needs exactly one of row= and col=", a.loc)
        try:
            if spec.name == "line":
                wf = _waveform(a.get("waveform", required=True), a.loc)
                if not isinstance(wf, PWL):
                    raise _err("line() takes a pwl([t...], [v...]) waveform (phase time)", a.loc)
                lw = d.wave(wf, row=row, col=col)
            else:
                shape = a.get("shape", required=True)
                if not (isinstance(shape, Call) and shape.name == "pwl"):
                    raise _err("spikes(shape=) must be pwl([t...], [v...]) starting at t = 0 and ending at 0 V", a.loc)
                sw = _waveform(shape, a.loc)
                times = a.get("times", required=True)
                if not isinstance(times, list):
                    raise _err("spikes(times=) must be a list of spike times", a.loc)
                lw = d.spikes(d.SpikeShape(sw.times, sw.values), [_number(t, "spike time", a.loc) for t in times],
                              row=row, col=col)
        except ValueError as exc:
            raise _err(f"{spec.name}(): {exc}", a.loc) from None
        a.done()
        lw.location = a.loc
        waves.append(lw)
    return d.WavePhase(waves, duration=duration)


def _selection(value, what: str, loc: Location) -> int | list[int]:
    """One line index or a non-empty list of distinct ones."""
    if isinstance(value, list):
        idx = _indices(value, what, loc)
        if not idx or len(set(idx)) != len(idx):
            raise _err(f"{what} must be an index or a non-empty list of distinct indices", loc)
        return idx
    return _integer(value, what, loc, minimum=0)


def _indices(value, what: str, loc: Location) -> list[int] | None:
    if value is None:
        return None
    return [_integer(x, what, loc, minimum=0) for x in (value if isinstance(value, list) else [value])]


def _analysis(st: Statement) -> d.Analysis:
    v = st.value
    a = _Kwargs(v, "analysis", st.location)
    if v.name == "op":
        a.done()
        return d.Analysis(kind="op", location=a.loc)
    if v.name != "tran":
        raise _err(f"unknown analysis '{v.name}' (known: tran, op)", a.loc)
    an = d.Analysis(kind="tran", location=a.loc)
    an.set_checked("step", a.get("step", None, _number, positive=True), a.loc)
    stop = a.get("stop", None)
    if stop is not None and not (isinstance(stop, str) and stop == "auto"):
        an.set_checked("stop", _number(stop, "tran(stop)", a.loc, positive=True), a.loc)
    an.set_checked("max_step", a.get("max_step", None, _number, positive=True), a.loc)
    a.done()
    if an.step is not None and an.stop is not None and an.step > an.stop:
        raise _err("tran(): step must not exceed stop", a.loc)
    return an


# -- the whole description -------------------------------------------------------

def design_from_parsed(parsed: ParsedDescription) -> d.Design:
    base = parsed.path.parent if parsed.path else None
    design = d.Design(source=str(parsed.path) if parsed.path else None, digest=parsed.digest,
                      params=dict(parsed.params))
    seen_names: dict[str, Location] = {}
    sections_seen: dict[str, Location] = {}
    have_analysis = None
    wires = None
    for st in parsed.statements:
        k = st.kind
        # a relative path is relative to the file that names it, an include's as much as the description's
        here = st.base if st.base is not None else base
        if k == "title":
            design.set_checked("title", st.value, st.location)
        elif k == "models":
            safeio.check_path_text(st.value, st.location, "models")
            p = Path(st.value)
            p = p if p.is_absolute() or here is None else here / p
            if not p.is_dir():
                raise _err(f"models directory '{st.value}' not found", st.location)
            load_models_dir(p)
        elif k in ELEMENT_KINDS:
            name = _name(st.name, f"{k} name", st.location)
            if name.lower() in seen_names:
                first = seen_names[name.lower()]
                raise _err(f"'{name}' is already defined at line {first.line} (names are case-insensitive)",
                           st.location)
            seen_names[name.lower()] = st.location
            for node in st.nodes:
                _name(node, "node", st.location) if node != "0" else None
            p, n = st.nodes
            at = st.location
            if k == "source":
                design.sources.append(d.SourceSpec(name, p, n, _waveform(st.value, at), location=at))
            elif k == "resistor":
                design.resistors.append(d.ResistorSpec(name, p, n, _number(st.value, f"resistor {name}", at,
                                                                           positive=True), location=at))
            elif k == "capacitor":
                design.capacitors.append(d.CapacitorSpec(name, p, n, _number(st.value, f"capacitor {name}", at,
                                                                             nonneg=True), location=at))
            else:
                model, params = _device_model(st.value, f"device {name}", at)
                design.devices.append(d.DeviceSpec(name, p, n, model, params, location=at))
        elif k == "crossbar":
            if design.crossbar is not None:
                raise _err("only one crossbar per description", st.location)
            design.crossbar = _crossbar(st, here)
        elif k in ("wires", "driver", "sense"):
            key = f"{k} {st.name or ''}".strip()
            if key in sections_seen:
                raise _err(f"'{key}' defined twice (first at line {sections_seen[key].line})", st.location)
            sections_seen[key] = st.location
            if k == "wires":
                wires = (_wires(st), st.location)
            elif k == "driver":
                which = _word(st.name or "", "driver", st.location, ("rows", "cols"))
                setattr(design, "row_driver" if which == "rows" else "col_driver", _driver(st))
            else:
                if (st.name or "cols") != "cols":
                    raise _err("sense amplifiers attach to columns: write 'sense cols { ... }'", st.location)
                design.sense = _sense(st)
        elif k == "stimulus":
            _stimulus(st, here, design, sections_seen)
        elif k == "analysis":
            if have_analysis is not None:
                raise _err(f"analysis given twice (first at line {have_analysis.line})", st.location)
            have_analysis = st.location
            design.analysis = _analysis(st)
        elif k == "record":
            for what, args, loc in st.signals:
                if not args and what not in RECORD_GROUPS:
                    raise _err(f"unknown signal group '{what}' (known: {', '.join(RECORD_GROUPS)}, or v(node), i(element), x(device))", loc)
                design.records.append(d.Record(what, args, location=loc))
    if wires is not None:
        if design.crossbar is None:
            raise _err("a wires section needs a crossbar", wires[1])
        design.crossbar.wires = wires[0]
    where = Location(file=design.source, line=1, column=1)         # the whole description is to blame
    if not parsed.statements:
        raise _err("the description is empty: it has no statements (only blank lines, comments or params)"
                   if not parsed.params else "the description has only params: no elements, crossbar or analysis",
                   where)
    if have_analysis is None and design.crossbar is None:
        raise _err("the description has no analysis: add 'analysis tran(step = ..., stop = ...)' or "
                   "'analysis op()'", where)
    design.check()
    limits.check_design(design)
    return design
