"""Bounds on what a description may ask for, and a resource estimate before anything is built.

A description is untrusted input (it travels between researchers), so every
size it controls is bounded twice:

* **hard bounds** on single values (:data:`MAX_LINES` rows or columns,
  :data:`MAX_PULSES` pulses per phase, converter bits, resistances in
  [:data:`R_MIN`, :data:`R_MAX`], file sizes, expression depth, ...) checked
  where the value is read, with its location;
* a **resource estimate** of the whole design (:func:`estimate`: elements,
  nodes, time points, memory to build the circuit and to run the behavioural
  engine, netlist bytes) checked against :class:`Limits` before the builder
  or an engine allocates anything (:func:`check_design`, :func:`check_circuit`).
  The limits default to what the machine has (``MemTotal`` in
  ``/proc/meminfo``) and are configurable through the environment
  (``CIRCUITKIT_MAX_MEMORY``, ``CIRCUITKIT_MAX_NETLIST``,
  ``CIRCUITKIT_MAX_ELEMENTS``, ``CIRCUITKIT_MAX_TIMEPOINTS``; SPICE suffixes
  allowed, e.g. ``8g``) or :func:`configure`.

The per-node byte cost below is measured (growth of the peak resident memory
of a two-phase transient behavioural read from 128x128 to 256x256 crossbars,
divided by the growth of the node count: 3.65 kB per node; an operating point
needs about half) and rounded up, so the estimate errs on the side of refusing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import DescriptionError, Location

if TYPE_CHECKING:  # pragma: no cover
    from .circuit.model import Circuit
    from .design import Design

# -- hard bounds on single values ---------------------------------------------------------------
MAX_LINES = 1 << 16              # rows or columns of a crossbar
MAX_PULSES = 1_000_000           # pulses in one programming phase
MAX_BITS = 32                    # DAC / ADC resolution
MAX_SEED = 2 ** 63 - 1
R_MIN, R_MAX = 1e-6, 1e15        # ohm; 0 is allowed only where it means "ideal" (wires, driver outputs)
C_MIN, C_MAX = 1e-24, 1.0        # farad (0 allowed: no capacitance)
T_MIN, T_MAX = 1e-18, 1e6        # seconds
V_MAX = 1e4                      # volts, magnitude
MAX_TITLE = 1000                 # characters

# description files and expressions. Parsing costs 40-65 us and about 0.5 kB per byte of dense expressions
# (LALR with positions), so the text a description may parse is bounded in total, not only per file:
# 256 kB (10-17 s and ~0.15 GB at worst) is 170 times the largest shipped description
# (testbenches/snn_vteam.xbar, 1.5 kB); data belong in data files (file(...), weights(...), reads = file(...)).
MAX_DESCRIPTION_BYTES = 256 << 10  # one .xbar file
MAX_SOURCE_BYTES = 256 << 10     # a description and all its includes together (and --set texts)
MAX_NESTING = 10_000             # open ( and [ at once (grouping parentheses included), checked before parsing
MAX_DATA_BYTES = 256 << 20       # one state / weight / read-vector file
MAX_FILES = 256                  # files in one description (includes)
MAX_INCLUDE_DEPTH = 32
MAX_DEPTH = 64                   # nesting of parentheses, lists, calls, unary signs and powers
MAX_LIST = 1_000_000             # values in one list (fill, linspace, rand, [...])
MAX_VALUES = 16_000_000          # values in all lists of a description together

# measured costs (bytes), rounded up
NODE_BYTES_BEHAVIOURAL = 4_000   # sparse MNA matrix + LU fill + Newton work arrays, per node (3.65 kB measured)
BEHAVIOURAL_FIXED = 64 << 20     # the engine's imports and work space at any size
ELEMENT_BYTES_BUILD = 200        # element arrays of the circuit model, per element
NETLIST_BYTES_ELEMENT = 60       # one element line
NETLIST_BYTES_POINT = 24         # one PWL time/value pair


def _meminfo_total() -> int:
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 8 << 30


@dataclass(frozen=True)
class Limits:
    memory: int            # bytes, building the circuit and the behavioural engine
    netlist: int           # bytes of netlist text
    elements: int          # circuit elements
    timepoints: int        # time points (tstop / min(tstep, max_step))
    points: int = 100_000_000   # corners of time-varying sources (PWL points of every line)

    @classmethod
    def from_machine(cls) -> "Limits":
        mem = _meminfo_total()
        # half of MemTotal: the same verdict on every run (MemAvailable would vary), and room for the
        # system, a simulator process and the estimate's own error
        lim = cls(memory=mem // 2, netlist=mem // 4, elements=200_000_000, timepoints=100_000_000)
        env = {"memory": "CIRCUITKIT_MAX_MEMORY", "netlist": "CIRCUITKIT_MAX_NETLIST",
               "elements": "CIRCUITKIT_MAX_ELEMENTS", "timepoints": "CIRCUITKIT_MAX_TIMEPOINTS",
               "points": "CIRCUITKIT_MAX_POINTS"}
        for key, var in env.items():
            text = os.environ.get(var)
            if text:
                from .units import parse_si
                try:
                    value = parse_si(text)
                    if not 0 < value < 2 ** 62:
                        raise ValueError
                except ValueError:
                    raise DescriptionError(f"{var}={text[:40]!r} is not a positive number",
                                           Location(parameter=var)) from None
                lim = replace(lim, **{key: int(value)})
        return lim


_configured: Limits | None = None


def current() -> Limits:
    """The limits in force: :func:`configure`'s, else the environment's and the machine's."""
    return _configured or Limits.from_machine()


def configure(**values) -> Limits:
    """Override some limits for this process (``configure(memory=2 << 30)``); ``configure()`` resets."""
    global _configured
    _configured = replace(Limits.from_machine(), **values) if values else None
    return current()


@dataclass(frozen=True)
class Estimate:
    elements: int
    nodes: int
    timepoints: int
    probes: int
    points: int
    build_bytes: int
    behavioural_bytes: int
    netlist_bytes: int

    def describe(self) -> str:
        return (f"{self.elements:,} elements, {self.nodes:,} nodes, {self.timepoints:,} time points, "
                f"{self.probes:,} recorded signals, {self.points:,} source corners")


def _gb(n: int) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


def estimate(design: "Design") -> Estimate:
    """Counts and bytes of the circuit a (checked) design builds, before building it."""
    from .design import CellType, ProgramPhase, ReadPhase, SenseKind
    n_el = len(design.sources) + len(design.resistors) + len(design.capacitors) + 2 * len(design.devices)
    nodes = 2 * (n_el + 1) + 2 * len(design.devices)
    probes = len(design.records)
    points = 2 * len(design.sources)
    xb = design.crossbar
    if xb is not None:
        R, C = xb.rows, xb.cols
        cells = R * C
        per_cell = 1 if xb.cell == CellType.R1 else 2
        w = xb.wires
        n_el += per_cell * cells                                       # devices (+ selector / transistor)
        n_el += cells * ((w.r_row > 0) + (w.r_col > 0) + (w.c_row > 0) + (w.c_col > 0))
        n_el += 4 * R + 8 * C                                          # drivers, sense, op-amp parts
        nodes += cells * (2 + per_cell)                                # line nodes, cell-internal, one state
        nodes += 4 * R + 6 * C
        n_phase_points = 0
        for ph in design.stimulus:
            n_phase_points += 4 * (ph.count if isinstance(ph, ProgramPhase) else 1)     # other kinds: one phase
            for w in getattr(ph, "waves", None) or ():                                  # line waveforms, spikes
                shape = getattr(w, "shape", None)
                if shape is not None:
                    points += len(getattr(w, "spikes", ())) * len(shape.times)
                elif getattr(w, "waveform", None) is not None:
                    points += len(getattr(w.waveform, "times", ()))
        points += (2 * R + C) * n_phase_points                         # PWL corners of every line
        groups = {r.what for r in design.records if not r.args} or {"column_currents", "tia_out"}
        probes += 2 * C * bool(groups & {"column_currents", "tia_out", "adc_codes"})
        probes += cells * ("states" in groups) + 2 * cells * ("line_voltages" in groups)
        probes += (2 * R + C) * ("supply_currents" in groups)
        probes += (per_cell * cells + 4 * R + 4 * C) * ("energy" in groups)       # every element's current
        probes += C * (design.sense.kind == SenseKind.OPAMP)
    an = design.analysis
    if an.kind == "op":
        t_points = 1
    else:
        stop = an.stop if an.stop is not None else (design.stimulus_time() if xb is not None else 0.0)
        if an.step is not None:
            step = an.step
        else:
            edges = [design.row_driver.rise, design.row_driver.fall] if xb is not None else []
            step = min([stop / 1000] + [e / 2 for e in edges]) if stop else 1.0
        if an.max_step is not None:                    # no step is longer than max_step (ngspice TMAX)
            step = min(step, an.max_step)
        t_points = int(min(stop / step, 1e18)) + 1 if step > 0 else 1
        if design.stimulus:
            t_points += 4 * sum(ph.count if isinstance(ph, ProgramPhase) else 1 for ph in design.stimulus)
    _ = ReadPhase
    build = n_el * ELEMENT_BYTES_BUILD + 8 * points * 2
    behavioural = build + BEHAVIOURAL_FIXED + nodes * NODE_BYTES_BEHAVIOURAL + 8 * t_points * (probes + 1)
    netlist = n_el * NETLIST_BYTES_ELEMENT + points * NETLIST_BYTES_POINT
    return Estimate(int(n_el), int(nodes), int(t_points), int(probes), int(points), int(build), int(behavioural),
                    int(netlist))


def _refuse(what: str, need: int, limit: int, unit: str, est: Estimate, var: str, loc: Location | None):
    fmt = _gb if unit == "bytes" else (lambda n: f"{n:,}")
    raise DescriptionError(
        f"too large: {what} needs an estimated {fmt(need)}, over the limit of {fmt(limit)} "
        f"({est.describe()}); reduce the size, or raise the limit with {var}", loc)


def check_estimate(est: Estimate, *, engine: str | None = None, limits: Limits | None = None,
                   location: Location | None = None) -> Estimate:
    """Refuse ``est`` when it exceeds ``limits``; ``engine`` ``behavioural`` or ``spice`` adds that engine's need."""
    lim = limits or current()
    if est.elements > lim.elements:
        _refuse("the circuit", est.elements, lim.elements, "elements", est, "CIRCUITKIT_MAX_ELEMENTS", location)
    if est.points > lim.points:
        _refuse("the sources' waveforms", est.points, lim.points, "corners", est, "CIRCUITKIT_MAX_POINTS", location)
    if est.timepoints > lim.timepoints:
        _refuse("the transient", est.timepoints, lim.timepoints, "time points", est, "CIRCUITKIT_MAX_TIMEPOINTS",
                location)
    if est.build_bytes > lim.memory:
        _refuse("building the circuit", est.build_bytes, lim.memory, "bytes", est, "CIRCUITKIT_MAX_MEMORY", location)
    if engine == "behavioural" and est.behavioural_bytes > lim.memory:
        _refuse("the behavioural engine", est.behavioural_bytes, lim.memory, "bytes", est,
                "CIRCUITKIT_MAX_MEMORY", location)
    if engine in ("spice", "vacask") and est.netlist_bytes > lim.netlist:
        _refuse("the netlist", est.netlist_bytes, lim.netlist, "bytes", est, "CIRCUITKIT_MAX_NETLIST", location)
    return est


def check_design(design: "Design", engine: str | None = None, limits: Limits | None = None) -> Estimate:
    """Estimate ``design`` and refuse it (located at its crossbar or analysis) when over the limits."""
    est = estimate(design)
    loc = getattr(design.crossbar, "location", None) if design.crossbar is not None else None
    loc = loc or getattr(design.analysis, "location", None) or Location(file=design.source, parameter="design")
    return check_estimate(est, engine=engine, limits=limits, location=loc)


def estimate_circuit(circuit: "Circuit") -> Estimate:
    """The same estimate from a built circuit (its real node, element and probe counts)."""
    from .circuit.model import Transient, VoltageSources
    n_el = sum(g.n for g in circuit.groups)
    points = 0
    for g in circuit.groups_of(VoltageSources):
        for wv in getattr(g, "waveforms", []) or []:
            points += len(getattr(wv, "times", ())) or 1
    an = circuit.analysis
    t_points = 1
    if isinstance(an, Transient) and an.tstep > 0:
        step = min(an.tstep, an.tmax) if an.tmax else an.tstep      # no step is longer than tmax
        t_points = int(min(an.tstop / step, 1e18)) + 1
    probes = len(circuit.probes)
    build = n_el * ELEMENT_BYTES_BUILD + 16 * points
    behavioural = build + BEHAVIOURAL_FIXED + circuit.n_nodes * NODE_BYTES_BEHAVIOURAL + 8 * t_points * (probes + 1)
    netlist = n_el * NETLIST_BYTES_ELEMENT + points * NETLIST_BYTES_POINT
    return Estimate(n_el, circuit.n_nodes, t_points, probes, points, build, behavioural, netlist)


def check_circuit(circuit: "Circuit", engine: str, limits: Limits | None = None) -> Estimate:
    """Refuse running ``circuit`` in ``engine`` (``behavioural`` | ``spice``) when it would not fit."""
    return check_estimate(estimate_circuit(circuit), engine=engine, limits=limits,
                          location=Location(file=circuit.source, parameter="design"))
