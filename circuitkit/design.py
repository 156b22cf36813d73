"""What to build: the typed design a description (or Python code) produces.

A :class:`Design` says *what* the user wants (a crossbar of 1T1R cells with
these wires, drivers, sense amplifiers and stimuli); ``circuitkit.circuit.build``
turns it into the element-level :class:`~circuitkit.circuit.model.Circuit` both
engines simulate. Everything here is plain data with validation, usable
directly from Python::

    from circuitkit.design import Design, Crossbar, ReadPhase
    d = Design(title="8x8 read", crossbar=Crossbar(rows=8, cols=8, model="vteam"),
               stimulus=[ReadPhase([0.2] * 8)])
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .circuit.model import MosfetModel
from .circuit.waveforms import Waveform

CELL_TYPES = ("1R", "1T1R", "1S1R")
SCHEMES = ("v2", "v3", "float")
SENSE_KINDS = ("ideal", "opamp")


# -- element-level designs (single devices, small testbenches) ---------------

@dataclass
class SourceSpec:
    name: str
    p: str
    n: str
    waveform: Waveform


@dataclass
class ResistorSpec:
    name: str
    a: str
    b: str
    r: float


@dataclass
class CapacitorSpec:
    name: str
    a: str
    b: str
    c: float


@dataclass
class DeviceSpec:
    """A single Verilog-A device between nodes ``p`` and ``n``."""

    name: str
    p: str
    n: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)


# -- crossbar designs ---------------------------------------------------------

@dataclass
class StateInit:
    """Initial device states of a crossbar.

    ``kind``: ``constant`` (``value``), ``uniform`` (``low``, ``high``, ``seed``),
    ``file`` (``path`` to .npy/.csv of shape rows x cols) or ``weights``
    (``path`` to a weight matrix mapped to conductances in [``gmin``, ``gmax``]
    at ``vread``, ``mapping`` ``single`` (with an offset column) or
    ``differential`` (pairs of columns)), or ``values`` (``values``, an array
    rows x cols, from the Python API: e.g. states carried from one run to the next).
    """

    kind: str = "constant"
    value: float = 0.5
    low: float = 0.0
    high: float = 1.0
    seed: int = 0
    path: Path | None = None
    mapping: str = "differential"
    gmin: float | None = None
    gmax: float | None = None
    vread: float = 0.2
    values: Any = None


@dataclass
class Wires:
    """Wire parasitics per segment (between adjacent cells, and from a line's
    driver or sensor to its first cell). Zero resistance merges a line into
    one node."""

    r_row: float = 0.0
    r_col: float = 0.0
    c_row: float = 0.0
    c_col: float = 0.0
    drive: str = "left"     # where row drivers attach: left | right | both
    sense: str = "bottom"   # where columns end in drivers/sensors: bottom | top | both


@dataclass
class Crossbar:
    name: str = "xb"
    rows: int = 8
    cols: int = 8
    cell: str = "1R"
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


@dataclass
class Driver:
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


@dataclass
class Sense:
    """Column sensing: a transimpedance amplifier and optionally an ADC.

    ``kind`` ``ideal`` holds the column at virtual ground (0 V) and reports
    ``v_out = -rf * I``; ``opamp`` is an op-amp macro-model with DC gain
    ``gain`` and gain-bandwidth ``gbw`` (None: no pole) and feedback ``rf``.
    The ADC converts ``v_out`` with ``adc_bits`` over [``adc_vmin``, ``adc_vmax``]
    at ``sample`` (fraction of each read phase, default 0.9).
    """

    kind: str = "ideal"
    rf: float = 10e3
    gain: float = 1e5
    gbw: float | None = None
    adc_bits: int | None = None
    adc_vmin: float = -1.0
    adc_vmax: float = 1.0
    sample: float = 0.9


@dataclass
class ReadPhase:
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


@dataclass
class ProgramPhase:
    """``count`` pulses of ``amplitude`` and ``width``, ``gap`` apart, on the cells where the
    selected rows and columns cross (``row``/``col``: one index or a list), with the
    unselected lines biased by ``scheme`` (``v2``, ``v3`` or ``float``)."""

    row: int | list[int]
    col: int | list[int]
    amplitude: float
    width: float
    count: int = 1
    gap: float = 0.0
    scheme: str = "v2"


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
class Analysis:
    """``kind`` ``tran`` (``step``; ``stop`` None = from the stimulus) or ``op``."""

    kind: str = "tran"
    step: float | None = None
    stop: float | None = None
    max_step: float | None = None


@dataclass
class Record:
    """A recorded signal: ``what`` is ``v``/``i``/a state name with ``args`` (element level),
    or a crossbar group: ``column_currents``, ``tia_out``, ``adc_codes``, ``states``,
    ``line_voltages``, ``supply_currents``, or ``energy`` (what :mod:`circuitkit.energy` needs)."""

    what: str
    args: tuple[str, ...] = ()


@dataclass
class Design:
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
