"""The typed layout of a crossbar on a built :class:`~circuitkit.circuit.model.Circuit`.

``build_circuit`` records here what each part of an array *is* (cells, lines,
drivers, sense ends, fault clamps, phases) so that consumers (reads, outputs,
the ideal product, energy, metrics, workloads) never re-derive it from element
or node names. ``circuit.crossbar`` is a :class:`CrossbarLayout` or ``None``.

Shapes: R rows (word lines), C columns (bit lines), S states per cell.
Arrays of node ids use the circuit's node numbering (0 is ground).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


class Role(str, Enum):
    """What an element group is for; energy and outputs use it, never the group's name."""

    OTHER = "other"              # user elements of element testbenches
    STIMULUS = "stimulus"        # a source that drives the circuit (word/bit/select lines, user sources)
    DRIVER = "driver"            # driver output resistances
    WIRE = "wire"                # line segments and line capacitances
    CELL = "cell"                # memristors of an array (or user devices)
    SELECTOR = "selector"        # selectors of 1S1R cells
    ACCESS = "access"            # access transistors of 1T1R cells
    SENSE = "sense"              # TIA parts (feedback resistors, op-amp macro-model)
    PROBE = "probe"              # 0 V ammeters: no energy of their own
    CLAMP = "clamp"              # sources holding state terminals (stuck-at faults): not physical
    MACRO = "macro"              # internals of behavioural macro-models (op-amp gain and pole): no physical energy


class PhaseKind(str, Enum):
    """Kind of a stimulus phase (a ``str``: ``PhaseKind.READ == "read"``)."""

    READ = "read"
    PROGRAM = "program"
    WAVE = "wave"          # arbitrary line waveforms (design.WavePhase): ``rows``/``cols`` the lines given one


@dataclass(frozen=True)
class PhaseInfo:
    """One stimulus phase of a crossbar.

    ``kind`` is ``"read"`` (``vector``: row voltages after the DAC, ``sample``:
    the time the outputs are sampled; ``rows``: the word-selected rows,
    ``cols``: the sensed columns) or ``"program"`` (``rows``/``cols``:
    selected lines, ``amplitude``, ``scheme``: v2 | v3 | float).
    The selected cells of a phase are ``rows x cols``; cells sharing a row or a
    column with them are half-selected, the others unselected.
    """

    index: int
    kind: PhaseKind
    start: float
    end: float
    sample: float | None = None
    vector: tuple[float, ...] | None = None
    rows: tuple[int, ...] = ()
    cols: tuple[int, ...] = ()
    amplitude: float | None = None
    scheme: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "kind", PhaseKind(self.kind))     # refuses anything but read / program / wave

    def as_dict(self) -> dict[str, Any]:
        d = {"phase": self.index, "kind": self.kind.value, "start": self.start, "end": self.end}
        if self.kind == "read":
            d.update(sample=self.sample, vector=list(self.vector or ()), select=list(self.rows), sense=list(self.cols))
        else:
            d.update(row=list(self.rows), col=list(self.cols), amplitude=self.amplitude, scheme=self.scheme)
        return d

    def cell_classes(self, rows: int, cols: int) -> np.ndarray:
        """(rows, cols) int array: 2 selected, 1 half-selected, 0 unselected cells in this phase."""
        r = np.zeros(rows, bool)
        c = np.zeros(cols, bool)
        r[list(self.rows)] = True
        c[list(self.cols)] = True
        out = np.zeros((rows, cols), np.int8)
        out[r[:, None] | c[None, :]] = 1
        out[r[:, None] & c[None, :]] = 2
        return out


@dataclass(frozen=True)
class SenseInfo:
    """Column sense path: ``kind`` ideal (virtual ground + ideal TIA) or opamp; ADC range and bits (0: none)."""

    kind: str
    rf: float
    adc_bits: int = 0
    adc_vmin: float = 0.0
    adc_vmax: float = 0.0


@dataclass(frozen=True)
class Derived:
    """A signal computed from a recorded one, identically for both engines: ``name = factor * source``."""

    name: str
    source: str
    factor: float


@dataclass
class CrossbarLayout:
    """What ``build_circuit`` made of one crossbar.

    Attributes
    ----------
    name, rows, cols, cell : the array's name, size and cell kind (``1R``, ``1S1R``, ``1T1R``).
    cells : name of the :class:`Devices` group of the memristors (flat index ``i * cols + j``).
    selectors, access : names of the selector device group (1S1R) or MOSFET group (1T1R), else None.
    model : the memristor's device model class; ``state_names`` its states (S of them).
    state_nodes : (S, R, C) node ids of the cells' state terminals.
    wl, bl : (R, C) node ids where cell (i, j) meets its word line / bit line.
    row_sources : names of the word-line driver source groups (one per driven end).
    driven_rows : row indices those sources drive, in source order.
    col_source : name of the column source group (virtual ground / programming bias), None with op-amp TIAs.
    select_source : name of the word-select source group (1T1R), else None.
    current_source : group whose branch current is the column current; ``sensed`` its columns, in order.
    tia_out : (C,) node ids of op-amp TIA outputs, or None for ideal TIAs.
    stuck : flat indices of stuck cells, ``stuck_levels`` the state each is held at; ``clamp`` the clamp group.
    intended_states : (S, R*C) states that were meant to be programmed (before faults).
    phases : the stimulus phases; ``sense`` the sense path; ``stop`` the end of the stimulus.
    records : the crossbar signal groups recorded (``column_currents``, ``tia_out``, ...).
    current_signals : sensed column -> name of the signal holding its current (SPICE direction).
    tia_signals : column -> name of the signal holding its TIA output voltage (recorded or derived).
    state_signals : state name -> (R, C) array of signal names (``states`` recorded), else empty.
    derived : signals the engines compute from recorded ones (ideal TIA outputs).
    supply_signals : names of the recorded supply-current signals (``supply_currents``).
    """

    name: str
    rows: int
    cols: int
    cell: str
    cells: str
    model: Any
    state_names: tuple[str, ...]
    state_nodes: np.ndarray
    wl: np.ndarray
    bl: np.ndarray
    row_sources: tuple[str, ...]
    driven_rows: np.ndarray
    col_source: str | None
    current_source: str | None
    sensed: np.ndarray
    sense: SenseInfo
    phases: list[PhaseInfo] = field(default_factory=list)
    stop: float = 0.0
    selectors: str | None = None
    access: str | None = None
    select_source: str | None = None
    tia_out: np.ndarray | None = None
    stuck: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    stuck_levels: np.ndarray = field(default_factory=lambda: np.empty(0))
    clamp: str | None = None
    intended_states: np.ndarray | None = None
    records: tuple[str, ...] = ()
    current_signals: dict[int, str] = field(default_factory=dict)
    tia_signals: dict[int, str] = field(default_factory=dict)
    state_signals: dict[str, np.ndarray] = field(default_factory=dict)
    derived: tuple[Derived, ...] = ()
    supply_signals: tuple[str, ...] = ()

    @property
    def stuck_cells(self) -> list[tuple[int, int, float]]:
        """(row, column, held state) of every stuck cell, in flat order."""
        return [(int(k) // self.cols, int(k) % self.cols, float(v)) for k, v in zip(self.stuck, self.stuck_levels)]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    def read_phases(self) -> list[PhaseInfo]:
        return [p for p in self.phases if p.kind is PhaseKind.READ]

    def program_phases(self) -> list[PhaseInfo]:
        return [p for p in self.phases if p.kind is PhaseKind.PROGRAM]

    def state_index(self, name: str) -> int:
        """Position of state ``name`` in :attr:`state_names` (KeyError naming the model's states)."""
        try:
            return self.state_names.index(name)
        except ValueError:
            raise KeyError(f"model '{self.model.name}' has states {list(self.state_names)}, not '{name}'") from None

    def cell_devices(self, circuit):
        """The memristor :class:`Devices` group."""
        return circuit.group(self.cells)
