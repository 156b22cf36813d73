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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

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


Phase = ReadPhase | ProgramPhase


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
