"""A crossbar being programmed: one transient of the whole array per round, on either engine.

:class:`ProgrammingArray` holds the cells' states between rounds and turns a
round's per-cell pulses (:class:`Pulses`: signed amplitude at the selected
row and width, per cell) into one transient:

* **write** -- for each row in turn and each amplitude among its pulsed
  cells, one row pulse at that amplitude, *gated per column*: the row is at
  the amplitude, the columns of the cells still being pulsed at 0 V, every
  other line biased by the scheme (``v3``: unselected rows at V/3,
  unselected columns at 2V/3). When a cell's width is reached its column
  goes to the inhibit bias, so each cell gets one pulse of its own width
  and the row pulse lasts as long as its longest cell. In the transient the
  row pulse is a sequence of program phases, one per distinct width, with
  the lines back at 0 V for the drivers' edges between them (with short
  edges, e.g. 10 ps, a negligible interruption); every cell of the array
  sees the half-select disturb of every pulse. Cells of a row with equal
  widths (fixed-pulse policies) share one phase;
* **verify through the array** (``verify="array"``) -- after the program
  phases, one read phase per row (that row at ``vread``, all other lines at
  0 V, columns at the sense amplifiers' virtual ground); the sampled column
  currents, through the TIA and ADC when the design has one, divided by the
  applied read voltage, are what the policy sees next. ``verify="ideal"``
  reads each cell's conductance ``I(vread, x)/vread`` from its state through
  the device twin instead.

States carry over to the next round as the cells' initial states (every
state of multi-state models). Cycle-to-cycle noise (:class:`CycleNoise`)
draws new rate factors for each round. The crossbar's typed layout
(``circuit.crossbar``) names the cells, state nodes, sources and phases;
nothing is found by element name.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np

from ...circuit.build import build_circuit
from ...circuit.model import VoltageSources
from ...design import SCHEMES, Analysis, Design, ProgramPhase, ReadPhase
from ...devices.registry import get_model
from ...engines import simulate
from ...errors import CircuitkitError
from ...peripherals import adc_convert, adc_lsb
from .noise import CycleNoise

VERIFY_MODES = ("ideal", "array")


class ProgrammingError(CircuitkitError, ValueError):
    """A programming run cannot be set up as asked (bad targets, design, options)."""


@dataclass
class Pulses:
    """One round's pulses: ``amplitude`` (R, C) signed volts at the selected row (0: no pulse), ``width`` (R, C) s."""

    amplitude: np.ndarray
    width: np.ndarray

    @classmethod
    def none(cls, shape) -> "Pulses":
        return cls(np.zeros(shape), np.zeros(shape))

    @property
    def pulsed(self) -> np.ndarray:
        return (self.amplitude != 0) & (self.width > 0)


@dataclass
class RoundStats:
    """What one round's transient cost: simulated time (program part and verify reads), supply energy, wall time."""

    write_time: float
    read_time: float
    energy: float
    wall_s: float
    phases: int


class ProgrammingArray:
    """The crossbar of ``design`` with its states, programmed round by round on ``engine``."""

    def __init__(self, design: Design, *, engine: str = "behavioural", step: float | None = None,
                 scheme: str = "v3", vread: float = 0.2, verify: str = "ideal", noise: CycleNoise | None = None,
                 read_duration: float = 20e-9, spice_options: dict | None = None):
        xb = design.crossbar
        if xb is None:
            raise ProgrammingError("programming needs a design with a crossbar")
        if scheme not in SCHEMES:
            raise ProgrammingError(f"scheme '{scheme}' is not one of {', '.join(SCHEMES)}")
        if verify not in VERIFY_MODES:
            raise ProgrammingError(f"verify '{verify}' is not one of {', '.join(VERIFY_MODES)}")
        if not (np.isfinite(vread) and vread > 0):
            raise ProgrammingError(f"vread must be a positive voltage, got {vread}")
        if design.sense.kind != "ideal":
            raise ProgrammingError("programming needs column drivers: use an ideal TIA (sense kind 'ideal')")
        self.model = get_model(xb.model)
        if not self.model.states:
            raise ProgrammingError(f"model '{self.model.name}' has no state to program")
        self.noise = noise
        if noise is not None:
            noise.check(self.model)
        self.engine, self.scheme, self.vread, self.verify_mode = engine, scheme, float(vread), verify
        self.read_duration = float(read_duration)
        self.spice_options = dict(spice_options or {})
        self.design = copy.deepcopy(design)
        self.design.records = []
        self.design.analysis = Analysis(kind="tran", step=step if step is not None else design.analysis.step)
        self.design.stimulus = [ProgramPhase(row=0, col=0, amplitude=0.0, width=1e-3)]   # resolves parameters only
        circuit = build_circuit(self.design)
        self.layout = circuit.crossbar
        self.shape = self.layout.shape
        cells = circuit.group(self.layout.cells)
        self.params = cells.resolved()                # device-to-device values, without cycle noise
        n = cells.n
        self.x = np.array([np.broadcast_to(np.asarray(self.params[st.init], dtype=float), (n,))
                           for st in self.model.states]).reshape((len(self.model.states),) + self.shape)
        self.round = 0                                  # programming rounds (transients with pulses) done
        self._seen: np.ndarray | None = None            # what the last array read saw
        self.stats: list[RoundStats] = []

    # -- reads ------------------------------------------------------------------
    def ideal_conductance(self, x: np.ndarray | None = None) -> np.ndarray:
        """``I(vread, x)/vread`` of every cell from its states (all of them), shape (R, C)."""
        x = self.x if x is None else x
        n = self.shape[0] * self.shape[1]
        i = self.model.current(np.full(n, self.vread), x.reshape(len(self.model.states), n), self.params)
        return (np.asarray(i) / self.vread).reshape(self.shape)

    def verify(self) -> np.ndarray:
        """The conductances the policy sees: ideal read, or the last read through the array."""
        if self.verify_mode == "ideal":
            return self.ideal_conductance()
        if self._seen is None:                 # nothing read yet: a read-only transient
            self._run(Pulses.none(self.shape), program=False)
        return self._seen.copy()

    # -- one round ----------------------------------------------------------------
    def write(self, pulses: Pulses) -> RoundStats:
        """Apply ``pulses`` in one transient of the whole array (with the verify reads, if through the array)."""
        amp = np.asarray(pulses.amplitude, dtype=float)
        width = np.asarray(pulses.width, dtype=float)
        if amp.shape != self.shape or width.shape != self.shape:
            raise ProgrammingError(f"pulses must have the array's shape {self.shape}")
        if not np.all(np.isfinite(amp)) or not np.all(np.isfinite(width)) or np.any(width < 0):
            raise ProgrammingError("pulse amplitudes must be finite and widths finite and >= 0")
        stats = self._run(Pulses(amp, width), program=True)
        self.round += 1
        self.stats.append(stats)
        return stats

    def _phases(self, pulses: Pulses) -> list:
        """Per row, per amplitude: one row pulse, gated per column (see the module docstring)."""
        phases = []
        pulsed = pulses.pulsed
        for i in range(self.shape[0]):
            cols = np.flatnonzero(pulsed[i])
            for a in sorted({float(pulses.amplitude[i, j]) for j in cols}):
                mine = cols[pulses.amplitude[i, cols] == a]
                done = 0.0
                for w in sorted({float(pulses.width[i, j]) for j in mine}):
                    sel = [int(j) for j in mine if pulses.width[i, j] >= w]
                    phases.append(ProgramPhase(row=i, col=sel, amplitude=a, width=w - done, count=1, gap=0.0,
                                               scheme=self.scheme))
                    done = w
        return phases

    def _run(self, pulses: Pulses, program: bool) -> RoundStats:
        R, C = self.shape
        d = self.design
        d.stimulus = self._phases(pulses)
        n_write = len(d.stimulus)
        if self.verify_mode == "array":
            d.stimulus += [ReadPhase([self.vread if r == i else 0.0 for r in range(R)], duration=self.read_duration)
                           for i in range(R)]
        if not d.stimulus:              # nothing to pulse, nothing to read: nothing happens
            return RoundStats(0.0, 0.0, 0.0, 0.0, 0)
        circuit = build_circuit(d)
        if self.spice_options:
            circuit.options["spice_options"] = dict(self.spice_options)
        layout = circuit.crossbar
        cells = circuit.group(layout.cells)
        for k, st in enumerate(self.model.states):          # carry every state over
            prm = self.model.parameter(st.init)
            lo = -np.inf if prm.lower is None else prm.lower
            hi = np.inf if prm.upper is None else prm.upper
            cells.params[st.init] = np.clip(self.x[k].ravel(), lo, hi)
        if self.noise is not None and program:
            self.noise.apply(circuit, self.round)
        cells.resolved()
        for k in range(len(self.model.states)):
            for f in range(R * C):
                circuit.probe(f"pg_x{k}_{f}", "v", int(layout.state_nodes[k].ravel()[f]))
        sources = [g for g in (circuit.group(name) for name in
                               (*layout.row_sources, layout.col_source, layout.select_source) if name)
                   if isinstance(g, VoltageSources)]
        for g in sources:
            for k in range(g.n):
                circuit.probe(f"pg_isup_{g.name}_{k}", "i", (g.name, k))
        if self.verify_mode == "array":
            for k in range(layout.sensed.size):
                circuit.probe(f"pg_column{k}_current", "i", (layout.current_source, k))
        t0 = time.perf_counter()
        wf = simulate(circuit, self.engine)
        wall = time.perf_counter() - t0
        t = np.asarray(wf.time, dtype=float)
        x = np.array([[float(np.asarray(wf[f"pg_x{k}_{f}"])[-1]) for f in range(R * C)]
                      for k in range(len(self.model.states))])
        self.x = x.reshape(self.x.shape)
        power = np.zeros_like(t)
        for g in sources:                    # power delivered by the sources: -v i (SPICE current sign)
            for k in range(g.n):
                power -= np.asarray(g.waveforms[k](t), dtype=float) * np.asarray(wf[f"pg_isup_{g.name}_{k}"])
        energy = float(np.trapezoid(power, t)) if t.size > 1 else 0.0
        reads = layout.read_phases()
        if self.verify_mode == "array":
            self._seen = self._read_back(wf, layout, reads)
        write_end = layout.phases[n_write - 1].end if n_write else 0.0
        return RoundStats(write_time=float(write_end), read_time=float(layout.stop - write_end), energy=energy,
                          wall_s=wall, phases=n_write)

    def _read_back(self, wf, layout, reads) -> np.ndarray:
        R, C = self.shape
        g = np.full(self.shape, np.nan)
        sense = layout.sense
        for i, ph in enumerate(reads):
            v_applied = ph.vector[i]
            for k, j in enumerate(layout.sensed):
                cur = float(np.interp(ph.sample, wf.time, np.asarray(wf[f"pg_column{k}_current"])))
                if sense.adc_bits:          # through the ideal TIA (v = -rf i) and the ADC, back to a current
                    code = adc_convert(-sense.rf * cur, sense.adc_bits, sense.adc_vmin, sense.adc_vmax)
                    cur = -(sense.adc_vmin + float(code) * adc_lsb(sense.adc_bits, sense.adc_vmin,
                                                                     sense.adc_vmax)) / sense.rf
                g[i, j] = cur / v_applied
        return g
