"""What to build: the typed design a description (or Python code) produces.

A :class:`Design` says *what* the user wants (a crossbar of 1T1R cells with
these wires, drivers, sense amplifiers and stimuli); ``circuitkit.circuit.build``
turns it into the element-level :class:`~circuitkit.circuit.model.Circuit` both
engines simulate. Everything here is plain data with validation, usable
directly from Python::

    from circuitkit.design import Design, Crossbar, ReadPhase
    d = Design(title="8x8 read", crossbar=Crossbar(rows=8, cols=8, model="vteam"),
               stimulus=[ReadPhase([0.2] * 8)])

Validation lives here, not in the ``.xbar`` loader: every field is checked when
it is set (construction or assignment), so the Python API refuses exactly what
a description refuses, with the same message and a location naming the
parameter (``parameter 'Crossbar.cell'`` from Python; the file, line, column and
parameter from the loader, which passes each setting's location). Kinds are
typed variants (:class:`CellType`, :class:`Scheme`, ...; string enums, so
``xb.cell == "1T1R"`` still reads naturally). Cross-field and whole-design
rules (a read vector per row, a stimulus for a crossbar, ...) are checked by
:meth:`Design.check`, which the loader and ``build_circuit`` both call, so the
builder's own checks are never reached with a bad design.
"""
from __future__ import annotations

import enum
import math
import numbers
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from . import limits
from .circuit.model import IDENTIFIER, MosfetModel
from .circuit.waveforms import Waveform
from .errors import DescriptionError, Location


# -- typed variants ---------------------------------------------------------------

class _Variant(str, enum.Enum):
    """A closed set of spellings; parse with :meth:`parse` (case-insensitive) for a located error."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value, loc: Location | None = None, what: str | None = None):
        if isinstance(value, cls):
            return value
        choices = ", ".join(m.value for m in cls)
        what = what or cls.__name__
        if isinstance(value, str):
            key = value.lower().replace("/", "")
            for m in cls:
                if m.value.lower() == key:
                    return m
        raise DescriptionError(f"{what} must be one of {choices}, got {brief(value)}", loc)


class CellType(_Variant):
    R1 = "1R"
    T1R1 = "1T1R"
    S1R1 = "1S1R"


class Scheme(_Variant):
    V2 = "v2"
    V3 = "v3"
    FLOAT = "float"


class SenseKind(_Variant):
    IDEAL = "ideal"
    OPAMP = "opamp"


class DriveEnd(_Variant):
    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"


class SenseEnd(_Variant):
    BOTTOM = "bottom"
    TOP = "top"


class StateKind(_Variant):
    CONSTANT = "constant"
    UNIFORM = "uniform"
    FILE = "file"
    WEIGHTS = "weights"
    VALUES = "values"


class Mapping(_Variant):
    SINGLE = "single"
    DIFFERENTIAL = "differential"


class AnalysisKind(_Variant):
    TRAN = "tran"
    OP = "op"


CELL_TYPES = tuple(m.value for m in CellType)
SCHEMES = tuple(m.value for m in Scheme)
SENSE_KINDS = tuple(m.value for m in SenseKind)


# -- value checks (shared with the loader) ----------------------------------------------

def brief(value, limit: int = 60) -> str:
    """A short, bounded repr for error messages (never the whole of a long list)."""
    if isinstance(value, (list, tuple)):
        inner = ", ".join(brief(v, 20) for v in list(value[:4]))
        text = f"[{inner}{', ...' if len(value) > 4 else ''}]"
    elif isinstance(value, str):
        text = repr(str(value)[:limit])
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = f"{value:g}" if isinstance(value, float) else (str(value) if abs(value) < 10 ** 30 else "a huge integer")
    else:
        nm = getattr(value, "name", None)
        text = f"{nm}(...)" if isinstance(nm, str) else type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_num(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def real(value, loc: Location | None, what: str, lo: float | None = None, hi: float | None = None,
         *, lo_open: bool = False, zero_ok: bool = False) -> float:
    """A finite number within [lo, hi] (``lo_open``: > lo; ``zero_ok``: 0 also allowed)."""
    if not _is_num(value):
        raise DescriptionError(f"{what} must be a number, got {brief(value)}", loc)
    try:
        v = float(value)
    except (OverflowError, ValueError):
        raise DescriptionError(f"{what} is too large", loc) from None
    if not math.isfinite(v):
        raise DescriptionError(f"{what} must be finite, got {v}", loc)
    if zero_ok and v == 0:
        return 0.0
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise DescriptionError(f"{what} must be {'>' if lo_open else '>='} {lo:g}{' (or 0)' if zero_ok else ''}, "
                               f"got {v:.15g}", loc)
    if hi is not None and v > hi:
        raise DescriptionError(f"{what} must be <= {hi:.15g}, got {v:.15g}", loc)
    return v


def integer(value, loc: Location | None, what: str, lo: int = 0, hi: int = limits.MAX_SEED) -> int:
    """A whole number in [lo, hi]."""
    v = real(value, loc, what)
    if v != math.floor(v):
        raise DescriptionError(f"{what} must be a whole number, got {v:.15g}", loc)
    if not lo <= v <= hi:
        raise DescriptionError(f"{what} must be from {lo} to {hi}, got {v:.15g}", loc)
    return int(v)


def resistance(value, loc, what, zero_ok=False) -> float:
    """Ohms in [R_MIN, R_MAX] (``zero_ok``: 0 means an ideal connection)."""
    return real(value, loc, f"{what} (ohm)", limits.R_MIN, limits.R_MAX, zero_ok=zero_ok)


def capacitance(value, loc, what) -> float:
    return real(value, loc, f"{what} (F)", limits.C_MIN, limits.C_MAX, zero_ok=True)


def seconds(value, loc, what) -> float:
    return real(value, loc, f"{what} (s)", limits.T_MIN, limits.T_MAX)


def volts(value, loc, what) -> float:
    return real(value, loc, f"{what} (V)", -limits.V_MAX, limits.V_MAX)


def name(value, loc, what) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise DescriptionError(f"{what} {brief(value)} is not a safe identifier "
                               "(a letter, then letters, digits or _, at most 64)", loc)
    return str(value)


def node_name(value, loc, what="node") -> str:
    if isinstance(value, str) and value == "0":
        return "0"
    return name(value, loc, what)


def bits(value, loc, what) -> int:
    return integer(value, loc, what, 1, limits.MAX_BITS)


def _opt(check: Callable) -> Callable:
    return lambda v, loc, what: None if v is None else check(v, loc, what)


def _indices(value, loc, what, n_max=limits.MAX_LINES) -> list[int]:
    if _is_num(value):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str):
        try:
            value = list(value)
        except TypeError:
            raise DescriptionError(f"{what} must be an index or a list of indices, got {brief(value)}", loc) from None
    if len(value) > n_max:
        raise DescriptionError(f"{what} lists {len(value)} indices, more than {n_max}", loc)
    return [integer(v, loc, what, 0, n_max - 1) for v in value]


def _at(loc: Location | None, parameter: str) -> Location:
    """``loc`` naming ``parameter`` (a loader location keeps its file, line and column)."""
    if loc is None:
        return Location(parameter=parameter)
    return Location(loc.file, loc.line, loc.column, loc.parameter or parameter)


class _Checked:
    """Dataclass mix-in: every assignment to a field in ``_checks`` runs its check.

    ``location`` (keyword-only, set first) is where the object was described;
    errors name it and the parameter (``Class.field`` from Python, the
    setting's key from a description).
    """

    _checks: ClassVar[dict[str, tuple[str, Callable]]] = {}

    def __setattr__(self, key, value):
        spec = type(self)._checks.get(key)
        if spec is not None:
            what, check = spec
            loc = self.__dict__.get("location")
            value = check(value, _at(loc, what) if loc is not None else Location(parameter=f"{type(self).__name__}.{key}"),
                          what)
        object.__setattr__(self, key, value)

    def set_checked(self, key: str, value, loc: Location | None):
        """Assign ``key`` with errors located at ``loc`` (the loader's setting)."""
        what, check = type(self)._checks[key]
        object.__setattr__(self, key, check(value, _at(loc, what), what))

    def where(self, parameter: str | None = None) -> Location:
        loc = self.__dict__.get("location")
        if parameter is None:
            return loc or Location(parameter=type(self).__name__)
        return _at(loc, parameter)


def _loc_field():
    return field(default=None, kw_only=True, compare=False, repr=False)


def _checks(**spec) -> dict[str, tuple[str, Callable]]:
    return {k: (k, v) for k, v in spec.items()}


def _waveform(value, loc, what):
    if not isinstance(value, Waveform):
        raise DescriptionError(f"{what} must be a waveform (DC, Sine, Pulse, PWL), got {brief(value)}", loc)
    for f in fields(value):
        v = getattr(value, f.name)
        for x in (v if isinstance(v, tuple) else (v,)):
            real(x, loc, f"{type(value).__name__.lower()}({f.name})")
    return value


def _instance(cls):
    def check(value, loc, what):
        if not isinstance(value, cls):
            raise DescriptionError(f"{what} must be a {cls.__name__}, got {brief(value)}", loc)
        return value
    return check


def _params(value, loc, what):
    if not isinstance(value, dict):
        raise DescriptionError(f"{what} must be a dict of parameter values, got {brief(value)}", loc)
    for k in value:
        name(k, loc, f"{what} name")
    return value


def _text(value, loc, what):
    if not isinstance(value, str):
        raise DescriptionError(f"{what} must be text, got {brief(value)}", loc)
    if len(value) > limits.MAX_TITLE:
        raise DescriptionError(f"{what} is longer than {limits.MAX_TITLE} characters", loc)
    return value


# -- element-level designs (single devices, small testbenches) ---------------

@dataclass
class _Located(_Checked):
    location: Location | None = _loc_field()


_Element = _Located


@dataclass
class SourceSpec(_Element):
    name: str
    p: str
    n: str
    waveform: Waveform
    _checks = _checks(name=lambda v, l, w: name(v, l, "source name"), p=node_name, n=node_name, waveform=_waveform)


@dataclass
class ResistorSpec(_Element):
    name: str
    a: str
    b: str
    r: float
    _checks = _checks(name=lambda v, l, w: name(v, l, "resistor name"), a=node_name, b=node_name,
                      r=lambda v, l, w: resistance(v, l, "resistance"))


@dataclass
class CapacitorSpec(_Element):
    name: str
    a: str
    b: str
    c: float
    _checks = _checks(name=lambda v, l, w: name(v, l, "capacitor name"), a=node_name, b=node_name,
                      c=lambda v, l, w: capacitance(v, l, "capacitance"))


@dataclass
class DeviceSpec(_Element):
    """A single Verilog-A device between nodes ``p`` and ``n``."""

    name: str
    p: str
    n: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    _checks = _checks(name=lambda v, l, w: name(v, l, "device name"), p=node_name, n=node_name,
                      model=lambda v, l, w: name(v, l, "model"), params=_params)


# -- crossbar designs ---------------------------------------------------------

@dataclass
class StateInit(_Located):
    """Initial device states of a crossbar.

    ``kind``: ``constant`` (``value``), ``uniform`` (``low``, ``high``, ``seed``),
    ``file`` (``path`` to .npy/.csv of shape rows x cols) or ``weights``
    (``path`` to a weight matrix mapped to conductances in [``gmin``, ``gmax``]
    at ``vread``, ``mapping`` ``single`` (with an offset column) or
    ``differential`` (pairs of columns)), or ``values`` (``values``, an array
    rows x cols, from the Python API: e.g. states carried from one run to the next).
    """

    kind: StateKind = StateKind.CONSTANT
    value: float = 0.5
    low: float = 0.0
    high: float = 1.0
    seed: int = 0
    path: Path | None = None
    mapping: Mapping = Mapping.DIFFERENTIAL
    gmin: float | None = None
    gmax: float | None = None
    vread: float = 0.2
    values: Any = None
    _checks = _checks(kind=lambda v, l, w: StateKind.parse(v, l, "state kind"), value=real, low=real, high=real,
                      seed=integer, path=_opt(lambda v, l, w: Path(v)),
                      mapping=lambda v, l, w: Mapping.parse(v, l, "mapping"),
                      gmin=_opt(lambda v, l, w: real(v, l, "gmin (S)", 0, lo_open=True)),
                      gmax=_opt(lambda v, l, w: real(v, l, "gmax (S)", 0, lo_open=True)),
                      vread=lambda v, l, w: real(v, l, "vread (V)", 0, limits.V_MAX, lo_open=True))

    def __post_init__(self):
        self.check()

    def check(self, in_use: bool = False):
        """Cross-field rules; ``in_use`` (a crossbar's state being built) also needs its source: a path or values.
        (A weights mapping without a path is a parameter set, e.g. for ``weights_to_conductance``.)"""
        if self.kind == StateKind.UNIFORM and self.high < self.low:
            raise DescriptionError("uniform(low, high): high must be >= low", self.where("state"))
        if in_use and self.kind in (StateKind.FILE, StateKind.WEIGHTS) and self.path is None:
            raise DescriptionError(f"state kind '{self.kind}' needs a path", self.where("state"))
        if self.kind == StateKind.WEIGHTS:
            if self.gmin is None or self.gmax is None:
                raise DescriptionError("weights(): give gmin and gmax", self.where("state"))
            if self.gmax <= self.gmin:
                raise DescriptionError("weights(): gmax must be > gmin", self.where("state"))
        if in_use and self.kind == StateKind.VALUES and self.values is None:
            raise DescriptionError("state kind 'values' needs values (an array rows x cols)", self.where("state"))


@dataclass
class Wires(_Located):
    """Wire parasitics per segment (between adjacent cells, and from a line's
    driver or sensor to its first cell). Zero resistance merges a line into
    one node."""

    r_row: float = 0.0
    r_col: float = 0.0
    c_row: float = 0.0
    c_col: float = 0.0
    drive: DriveEnd = DriveEnd.LEFT     # where row drivers attach: left | right | both
    sense: SenseEnd = SenseEnd.BOTTOM   # where columns end in drivers/sensors: bottom | top
    _checks = _checks(r_row=lambda v, l, w: resistance(v, l, w, zero_ok=True),
                      r_col=lambda v, l, w: resistance(v, l, w, zero_ok=True),
                      c_row=lambda v, l, w: capacitance(v, l, w), c_col=lambda v, l, w: capacitance(v, l, w),
                      drive=lambda v, l, w: DriveEnd.parse(v, l, "drive"),
                      sense=lambda v, l, w: SenseEnd.parse(v, l, "sense"))


@dataclass
class Crossbar(_Located):
    name: str = "xb"
    rows: int = 8
    cols: int = 8
    cell: CellType = CellType.R1
    model: str = "vteam"
    params: dict[str, Any] = field(default_factory=dict)
    selector: str = "selector"
    selector_params: dict[str, Any] = field(default_factory=dict)
    transistor: MosfetModel = field(default_factory=MosfetModel)
    state: StateInit = field(default_factory=StateInit)
    wires: Wires = field(default_factory=Wires)
    #: device-to-device variability: model parameter -> sigma of a lognormal factor (median 1)
    variability: dict[str, float] = field(default_factory=dict)
    variability_seed: int = 0
    #: stuck-at faults: fractions of cells stuck at the ON and at the OFF bound of their state
    stuck_on: float = 0.0
    stuck_off: float = 0.0
    faults_seed: int = 0
    _checks = _checks(
        name=lambda v, l, w: name(v, l, "crossbar name"),
        rows=lambda v, l, w: integer(v, l, w, 1, limits.MAX_LINES),
        cols=lambda v, l, w: integer(v, l, w, 1, limits.MAX_LINES),
        cell=lambda v, l, w: CellType.parse(v, l, "cell"),
        model=lambda v, l, w: name(v, l, "device model"), params=_params,
        selector=lambda v, l, w: name(v, l, "selector model"), selector_params=_params,
        transistor=_instance(MosfetModel), state=_instance(StateInit), wires=_instance(Wires),
        variability=lambda v, l, w: {name(k, l, "varied parameter"): real(s, l, f"variability of '{k}'", 0, 10)
                                     for k, s in _params(v, l, w).items()},
        variability_seed=integer, faults_seed=integer,
        stuck_on=lambda v, l, w: real(v, l, "faults: stuck(on)", 0, 1),
        stuck_off=lambda v, l, w: real(v, l, "faults: stuck(off)", 0, 1))

    def __post_init__(self):
        self.check()

    def check(self):
        if self.stuck_on + self.stuck_off > 1:
            raise DescriptionError("faults: stuck(on + off) must not exceed 1", self.where("faults"))
        self.state.check()


@dataclass
class Driver(_Located):
    """Line drivers: an ideal source behind ``r_out`` with edges ``rise``/``fall``.

    With ``dac_bits`` set, the requested line voltages are quantised to that
    many bits over [``vmin``, ``vmax``] before they reach the sources.
    ``vgate`` is the word-select (gate) voltage of 1T1R rows that are selected.
    """

    r_out: float = 0.0
    rise: float = 1e-9
    fall: float = 1e-9
    dac_bits: int | None = None
    vmin: float = 0.0
    vmax: float = 1.0
    vgate: float = 1.8
    _checks = _checks(r_out=lambda v, l, w: resistance(v, l, w, zero_ok=True), rise=seconds, fall=seconds,
                      dac_bits=_opt(lambda v, l, w: bits(v, l, "dac(bits)")),
                      vmin=lambda v, l, w: volts(v, l, "dac(vmin)"), vmax=lambda v, l, w: volts(v, l, "dac(vmax)"),
                      vgate=volts)

    def __post_init__(self):
        self.check()

    def check(self):
        if self.vmax <= self.vmin:
            raise DescriptionError("dac(): vmax must be > vmin", self.where("dac"))


@dataclass
class Sense(_Located):
    """Column sensing: a transimpedance amplifier and optionally an ADC.

    ``kind`` ``ideal`` holds the column at virtual ground (0 V) and reports
    ``v_out = -rf * I``; ``opamp`` is an op-amp macro-model with DC gain
    ``gain`` and gain-bandwidth ``gbw`` (None: no pole) and feedback ``rf``.
    The ADC converts ``v_out`` with ``adc_bits`` over [``adc_vmin``, ``adc_vmax``]
    at ``sample`` (fraction of each read phase, default 0.9).
    """

    kind: SenseKind = SenseKind.IDEAL
    rf: float = 10e3
    gain: float = 1e5
    gbw: float | None = None
    adc_bits: int | None = None
    adc_vmin: float = -1.0
    adc_vmax: float = 1.0
    sample: float = 0.9
    _checks = _checks(kind=lambda v, l, w: SenseKind.parse(v, l, "tia"),
                      rf=lambda v, l, w: resistance(v, l, "tia(rf)"),
                      gain=lambda v, l, w: real(v, l, "tia(gain)", 0, 1e12, lo_open=True),
                      gbw=_opt(lambda v, l, w: real(v, l, "tia(gbw) (Hz)", 0, 1e15, lo_open=True)),
                      adc_bits=_opt(lambda v, l, w: bits(v, l, "adc(bits)")),
                      adc_vmin=lambda v, l, w: volts(v, l, "adc(vmin)"),
                      adc_vmax=lambda v, l, w: volts(v, l, "adc(vmax)"),
                      sample=lambda v, l, w: real(v, l, "adc(sample) (fraction of a read phase)", 0, 1, lo_open=True))

    def __post_init__(self):
        self.check()

    def check(self):
        if self.adc_vmax <= self.adc_vmin:
            raise DescriptionError("adc(): vmax must be > vmin", self.where("adc"))


def _vector(value, loc, what):
    if isinstance(value, str) or not hasattr(value, "__len__"):
        raise DescriptionError(f"{what} must be a list of numbers, got {brief(value)}", loc)
    if not 1 <= len(value) <= limits.MAX_LINES:
        raise DescriptionError(f"{what} must hold 1 to {limits.MAX_LINES} values, got {len(value)}", loc)
    if {type(v) for v in value} <= {float, int, type(None)}:          # fast path: plain numbers
        import numpy as np
        arr = np.array([0.0 if v is None else v for v in value], dtype=float)
        if np.all(np.abs(arr) <= limits.V_MAX):                        # also False for nan
            return value
    for v in value:
        if v is not None:
            volts(v, loc, what)
    return value


@dataclass
class ReadPhase(_Located):
    """Apply ``vector`` (one value per row, volts or DAC input) for ``duration``.

    A ``None`` entry leaves that row floating (undriven). ``select`` lists the
    rows whose word-select is on (1T1R; None: all); ``sense`` the columns held
    at the sense amplifiers' virtual ground (None: all; the others float).
    A line must float in every phase or in none.
    """

    vector: Sequence[float | None]
    duration: float | None = None
    select: Sequence[int] | None = None
    sense: Sequence[int] | None = None
    _checks = _checks(vector=lambda v, l, w: _vector(v, l, "read vector"), duration=_opt(seconds),
                      select=_opt(_indices), sense=_opt(_indices))


@dataclass
class ProgramPhase(_Located):
    """``count`` pulses of ``amplitude`` and ``width``, ``gap`` apart, on the cells where the
    selected rows and columns cross (``row``/``col``: one index or a list), with the
    unselected lines biased by ``scheme`` (``v2``, ``v3`` or ``float``)."""

    row: int | list[int]
    col: int | list[int]
    amplitude: float
    width: float
    count: int = 1
    gap: float = 0.0
    scheme: Scheme = Scheme.V2
    _checks = _checks(row=lambda v, l, w: _selection(v, l, "row"), col=lambda v, l, w: _selection(v, l, "col"),
                      amplitude=lambda v, l, w: volts(v, l, "amplitude"), width=seconds,
                      count=lambda v, l, w: integer(v, l, "count", 1, limits.MAX_PULSES),
                      gap=lambda v, l, w: real(v, l, "gap (s)", 0, limits.T_MAX),
                      scheme=lambda v, l, w: Scheme.parse(v, l, "scheme"))


def _selection(value, loc, what):
    """One line index or a non-empty list of distinct ones."""
    if _is_num(value):
        return integer(value, loc, what, 0, limits.MAX_LINES - 1)
    idx = _indices(value, loc, what)
    if not idx or len(set(idx)) != len(idx):
        raise DescriptionError(f"{what} must be an index or a non-empty list of distinct indices", loc)
    return idx


@dataclass(frozen=True)
class SpikeShape:
    """The voltage pulse one spike puts on its line: PWL points (``times`` after the spike, ``values``).

    Starts at t = 0 and ends at 0 V; a spike at time s contributes ``shape(t - s)``,
    and overlapping spikes on one line add (the sum of PWLs is a PWL, so this is exact).
    """

    times: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self):
        t, v = tuple(map(float, self.times)), tuple(map(float, self.values))
        object.__setattr__(self, "times", t)
        object.__setattr__(self, "values", v)
        if len(t) != len(v) or len(t) < 2:
            raise ValueError("spike shape needs equally many times and values, at least two")
        if not all(math.isfinite(x) for x in t + v):
            raise ValueError("spike shape times and values must be finite")
        if t[0] != 0.0 or any(b <= a for a, b in zip(t, t[1:])):
            raise ValueError("spike shape times must start at 0 and increase strictly")
        if v[-1] != 0.0:
            raise ValueError("a spike shape must end at 0 V")

    @property
    def duration(self) -> float:
        return self.times[-1]

    def __call__(self, t):
        return np.interp(np.asarray(t, dtype=float), self.times, self.values, left=0.0, right=0.0)


@dataclass
class LineWave:
    """An arbitrary waveform on one line during a :class:`WavePhase`.

    ``line`` is ``"row"`` (word line) or ``"col"`` (bit line), ``index`` its number.
    Either ``waveform`` (a :class:`~circuitkit.circuit.waveforms.PWL` in phase time) or
    a spike train: ``shape`` (:class:`SpikeShape`) at each of ``spikes`` (phase time; a
    negative time is a spike before the phase whose tail reaches into it).
    """

    line: str
    index: int
    waveform: Any = None
    shape: SpikeShape | None = None
    spikes: Sequence[float] = ()

    def points(self, duration: float) -> tuple[np.ndarray, np.ndarray]:
        """Exact PWL corners of this line's voltage on [0, duration] (phase time)."""
        if self.shape is not None:
            s = np.asarray(self.spikes, dtype=float).ravel()
            tp = np.asarray(self.shape.times)
            corners = (s[:, None] + tp[None, :]).ravel()
            t = np.unique(np.concatenate([[0.0, duration], corners[(corners > 0) & (corners < duration)]]))
            v = self.shape(t[None, :] - s[:, None]).sum(axis=0) if s.size else np.zeros_like(t)
            return t, v
        tw = np.asarray(self.waveform.times, dtype=float)
        t = np.unique(np.concatenate([[0.0, duration], tw[(tw > 0) & (tw < duration)]]))
        return t, np.asarray(self.waveform(t), dtype=float)


def wave(waveform=None, *, row: int | None = None, col: int | None = None) -> LineWave:
    """``wave(PWL(...), row=2)``: an arbitrary waveform on word line 2 (or ``col=``: a bit line)."""
    return LineWave(*_line(row, col), waveform=waveform)


def spikes(shape: SpikeShape, times: Sequence[float], *, row: int | None = None, col: int | None = None) -> LineWave:
    """``spikes(shape, [t1, t2], row=0)``: a spike train (pre-synaptic on a row, post-synaptic on a column)."""
    return LineWave(*_line(row, col), shape=shape, spikes=tuple(float(t) for t in times))


def _line(row, col) -> tuple[str, int]:
    if (row is None) == (col is None):
        raise ValueError("give exactly one of row= and col=")
    return ("row", int(row)) if row is not None else ("col", int(col))


@dataclass
class WavePhase:
    """``duration`` in which every line is held at 0 V except those given a waveform
    in ``waves`` (:func:`wave`, :func:`spikes`); all word-selects on (1T1R)."""

    waves: Sequence[LineWave]
    duration: float | None = None


Phase = ReadPhase | ProgramPhase | WavePhase


@dataclass
class Analysis(_Located):
    """``kind`` ``tran`` (``step``; ``stop`` None = from the stimulus) or ``op``."""

    kind: AnalysisKind = AnalysisKind.TRAN
    step: float | None = None
    stop: float | None = None
    max_step: float | None = None
    _checks = _checks(kind=lambda v, l, w: AnalysisKind.parse(v, l, "analysis"),
                      step=_opt(lambda v, l, w: seconds(v, l, "tran(step)")),
                      stop=_opt(lambda v, l, w: seconds(v, l, "tran(stop)")),
                      max_step=_opt(lambda v, l, w: seconds(v, l, "tran(max_step)")))

    def __post_init__(self):
        self.check()

    def check(self):
        if self.step is not None and self.stop is not None and self.step > self.stop:
            raise DescriptionError(f"tran(): step {self.step:g} s exceeds stop {self.stop:g} s", self.where("step"))


@dataclass
class Record(_Located):
    """A recorded signal: ``what`` is ``v``/``i``/a state name with ``args`` (element level),
    or a crossbar group: ``column_currents``, ``tia_out``, ``adc_codes``, ``states``,
    ``line_voltages``, ``supply_currents``, or ``energy`` (what :mod:`circuitkit.energy` needs)."""

    what: str
    args: tuple[str, ...] = ()
    _checks = _checks(what=lambda v, l, w: name(v, l, "signal"),
                      args=lambda v, l, w: tuple(node_name(a, l, "signal argument") for a in v))


def _list_of(*classes):
    def check(value, loc, what):
        if not isinstance(value, list):
            raise DescriptionError(f"{what} must be a list, got {brief(value)}", loc)
        for v in value:
            if not isinstance(v, classes):
                raise DescriptionError(f"{what} holds a {type(v).__name__}, not a "
                                       f"{' or '.join(c.__name__ for c in classes)}", loc)
        return value
    return check


@dataclass
class Design(_Located):
    title: str = "circuitkit design"
    source: str | None = None
    sources: list[SourceSpec] = field(default_factory=list)
    resistors: list[ResistorSpec] = field(default_factory=list)
    capacitors: list[CapacitorSpec] = field(default_factory=list)
    devices: list[DeviceSpec] = field(default_factory=list)
    crossbar: Crossbar | None = None
    row_driver: Driver = field(default_factory=Driver)
    col_driver: Driver = field(default_factory=Driver)
    sense: Sense = field(default_factory=Sense)
    stimulus: list[Phase] = field(default_factory=list)
    phase_duration: float = 100e-9
    analysis: Analysis = field(default_factory=Analysis)
    records: list[Record] = field(default_factory=list)
    digest: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    _checks = _checks(title=_text, sources=_list_of(SourceSpec), resistors=_list_of(ResistorSpec),
                      capacitors=_list_of(CapacitorSpec), devices=_list_of(DeviceSpec),
                      crossbar=_opt(_instance(Crossbar)), row_driver=_instance(Driver), col_driver=_instance(Driver),
                      sense=_instance(Sense), stimulus=_list_of(object),
                      phase_duration=lambda v, l, w: seconds(v, l, "duration"), analysis=_instance(Analysis),
                      records=_list_of(Record))

    def _at(self, obj, parameter: str | None = None) -> Location:
        loc = getattr(obj, "location", None)
        if loc is None:
            loc = Location(file=self.source, parameter=parameter or type(obj).__name__)
        elif parameter is not None and loc.parameter is None:
            loc = _at(loc, parameter)
        return loc

    def stimulus_time(self) -> float:
        """Length of the crossbar stimulus (s), as the builder lays the phases out."""
        rd = self.row_driver
        edge = max(rd.rise, rd.fall)
        t = 0.0
        for ph in self.stimulus:
            if isinstance(ph, ProgramPhase):
                t += ph.count * (edge + ph.width + edge + max(ph.gap, edge))
            else:                    # a read, or a phase kind this module does not know: its duration
                t += getattr(ph, "duration", None) or self.phase_duration
        return t

    def check(self, resources: bool = False) -> None:
        """Whole-design rules (also every part's own cross-field rules); ``resources`` adds the
        :mod:`circuitkit.limits` estimate. Raises :class:`DescriptionError` at the part's location."""
        for part in (self.crossbar, self.row_driver, self.col_driver, self.sense, self.analysis):
            if part is not None:
                for key, (what, chk) in type(part)._checks.items():      # fields assigned in place (lists)
                    if key in ("vector", "select", "sense", "row", "col", "variability", "params"):
                        part.set_checked(key, getattr(part, key), part.where(what))
                part.check()
        self._check_names()
        if self.crossbar is not None:
            self._check_crossbar()
        elif self.stimulus:
            raise DescriptionError("a stimulus needs a crossbar", self._at(self.stimulus[0], "stimulus"))
        an = self.analysis
        if an.kind == AnalysisKind.TRAN:
            stop = an.stop
            if stop is None:
                if self.crossbar is None:
                    raise DescriptionError("tran(): give stop= (there is no crossbar stimulus to take it from)",
                                           self._at(an, "stop"))
                stop = self.stimulus_time()
            if an.step is not None and an.step > stop:
                raise DescriptionError(f"tran(): step {an.step:g} s exceeds stop {stop:g} s", self._at(an, "step"))
        if not (self.sources or self.resistors or self.capacitors or self.devices or self.crossbar):
            raise DescriptionError("the description builds an empty circuit (no elements, no crossbar)",
                                   Location(file=self.source, parameter="design"))
        if resources:
            limits.check_design(self)

    def _check_names(self) -> None:
        """Names are case-insensitive in SPICE: two spellings of one name are refused here, where they are."""
        names: dict[str, str] = {}
        nodes: dict[str, str] = {}
        prefix = f"{self.crossbar.name.lower()}_" if self.crossbar is not None else None
        elements = self.sources + self.resistors + self.capacitors + self.devices
        for el in elements:
            loc = self._at(el, "name")
            key = el.name.lower()
            if key in names:
                raise DescriptionError(f"'{el.name}' is already defined ({names[key]}); names are case-insensitive",
                                       loc)
            names[key] = f"as '{el.name}'" + (f" at line {el.location.line}" if el.location and el.location.line else "")
            if prefix and key.startswith(prefix):
                raise DescriptionError(f"name '{el.name}' starts with '{prefix}', which crossbar "
                                       f"'{self.crossbar.name}' reserves for its parts", loc)
            for n in (getattr(el, "p", None) or el.a, getattr(el, "n", None) or el.b):
                low = n.lower()
                if nodes.setdefault(low, n) != n:
                    raise DescriptionError(f"node '{n}' differs from node '{nodes[low]}' only in case "
                                           "(SPICE would join them); spell it one way", _at(el.location, "node")
                                           if el.location else Location(file=self.source, parameter="node"))
                if prefix and low.startswith(prefix):
                    raise DescriptionError(f"node '{n}' starts with '{prefix}', which crossbar "
                                           f"'{self.crossbar.name}' reserves for its lines", self._at(el, "node"))
        known = {e.name for e in elements}
        for rec in self.records:
            if rec.what == "i" and rec.args and rec.args[0] not in known:
                raise DescriptionError(f"i({rec.args[0]}): no source, resistor, capacitor or device named "
                                       f"'{rec.args[0]}'", self._at(rec, "record"))
            if rec.what == "v" and rec.args and rec.args[0] not in nodes.values():
                raise DescriptionError(f"v({rec.args[0]}): no node named '{rec.args[0]}'", self._at(rec, "record"))

    def _check_crossbar(self) -> None:
        xb = self.crossbar
        R, C = xb.rows, xb.cols
        rd, cd = self.row_driver, self.col_driver
        if not self.stimulus:
            raise DescriptionError("a crossbar needs a stimulus (read vectors or programming pulses)",
                                   self._at(xb, "stimulus"))
        if self.analysis.kind == AnalysisKind.OP and (len(self.stimulus) != 1
                                                      or not isinstance(self.stimulus[0], ReadPhase)):
            raise DescriptionError("analysis op() takes exactly one read vector; use tran() for sequences",
                                   self._at(self.analysis, "analysis"))
        opamp = self.sense.kind == SenseKind.OPAMP
        row_float: dict[int, tuple[bool, Any]] = {}
        col_float: dict[int, tuple[bool, Any]] = {}
        edges = max(rd.rise, cd.rise, rd.fall)
        for k, ph in enumerate(self.stimulus):
            loc = self._at(ph, "stimulus")
            if isinstance(ph, ReadPhase):
                if len(ph.vector) != R:
                    raise DescriptionError(f"read phase {k}: vector has {len(ph.vector)} values for {R} rows", loc)
                dur = ph.duration or self.phase_duration
                if dur <= edges:
                    raise DescriptionError(f"read phase {k}: duration {dur:g} s is not longer than the driver "
                                           f"edges ({edges:g} s)", loc)
                for what, idx, n in (("select", ph.select, R), ("sense", ph.sense, C)):
                    if idx is not None and any(not 0 <= v < n for v in idx):
                        raise DescriptionError(f"read phase {k}: {what} names a line outside 0..{n - 1}", loc)
                if ph.select is not None and xb.cell != CellType.T1R1:
                    # without access transistors every driven row reaches its cells: a select would only relabel
                    # the phase's selected rows (energy classes, layout), not change the circuit
                    raise DescriptionError(f"read phase {k}: select = [...] switches 1T1R word-selects; a {xb.cell} "
                                           "array has none (give unselected rows 0 V, or float)", loc)
                rf = [v is None for v in ph.vector]
                cf = [False] * C if ph.sense is None else [j not in set(ph.sense) for j in range(C)]
            elif isinstance(ph, ProgramPhase):
                if opamp:
                    raise DescriptionError("programming pulses need column drivers; an op-amp TIA cannot drive "
                                           "its column", loc)
                sr = [ph.row] if isinstance(ph.row, int) else list(ph.row)
                sc = [ph.col] if isinstance(ph.col, int) else list(ph.col)
                if max(sr) >= R or max(sc) >= C:
                    raise DescriptionError(f"program phase {k}: rows {sr} / columns {sc} outside the {R}x{C} array",
                                           loc)
                fl = ph.scheme == Scheme.FLOAT
                rset, cset = set(sr), set(sc)
                rf = [fl and i not in rset for i in range(R)]
                cf = [fl and j not in cset for j in range(C)]
            else:                    # a phase kind added elsewhere: the builder checks it
                continue
            for what, seen, flags in (("row", row_float, rf), ("column", col_float, cf)):
                for i, f in enumerate(flags):
                    first = seen.setdefault(i, (f, k))
                    if first[0] != f:
                        raise DescriptionError(f"{what} {i} floats in phase {first[1] if first[0] else k} but not in "
                                               f"phase {k if first[0] else first[1]}; a line must float in every "
                                               "phase or in none", loc)
            if opamp and any(cf):
                raise DescriptionError("floating columns need ideal column drivers, not op-amp TIAs", loc)
        st = xb.state
        st.check(in_use=True)
        if st.kind == StateKind.VALUES:
            import numpy as np
            shape = np.shape(st.values)
            if shape != (R, C):
                raise DescriptionError(f"state values have shape {shape}, expected ({R}, {C})",
                                       self._at(st, "state"))
