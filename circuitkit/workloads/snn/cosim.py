"""Spiking co-simulation: LIF neurons (numpy) in the loop with a crossbar simulated at pulse level.

Pre-synaptic neurons drive the word lines, post-synaptic neurons the bit lines.
Every spike puts its :class:`~circuitkit.design.SpikeShape` on its line, so a
weight changes only where a pre and a post pulse overlap on one device and the
device sees more than its threshold -- the plasticity comes from the device
physics (Serrano-Gotarredona et al., Front. Neurosci. 7:2, 2013), not from a
rule applied in software.

The circuit advances in **chunks** between events. A chunk ends at the next
pre-synaptic spike or after ``max_chunk`` (the neurons' decision interval),
whichever comes first. Each chunk is one transient of the whole array on the
chosen engine (``"behavioural"`` or ``"spice"``) whose initial device states
(every state of the model, as the instance parameters ``x0``...) are the
previous chunk's final states; spikes whose pulses started in an earlier chunk
continue into it (their shape is applied from the right offset), so a chunk
boundary changes nothing but the integration grid.

After each chunk, the neurons integrate their column currents over the chunk
(sampled on the transient's grid, exact exponential leak between samples).
A neuron that crosses threshold fires at the end of the chunk (a latency of at
most ``max_chunk``, stated in the results), is reset and stays refractory; its
input is disconnected while its own spike is on its bit line (as in the
neurons of Serrano-Gotarredona et al.).

Idle intervals (no pulse on any line) are skipped without a transient only
when the model says no state moves at 0 V (``dxdt(0, x) == 0`` for every
device, checked each time); otherwise (e.g. the ``volatile`` model, which
relaxes) they are simulated like any other chunk.

Cycle-to-cycle noise (``c2c``): per chunk, each device's named rate
parameters are multiplied by a fresh lognormal factor exp(sigma N(0, 1)), on top
of the device-to-device values (``variability`` of the crossbar); both engines
get the same draws.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ... import design as d
from ...circuit.build import build_circuit
from ...circuit.model import Transient, VoltageSources
from ...circuit.waveforms import DC, PWL
from ...engines import simulate


@dataclass
class LIF:
    """Leaky integrate-and-fire neurons, one per column: ``cm dv/dt = -cm v / tau + I``.

    ``threshold`` in volts of membrane potential; ``rectify``: only current flowing
    into the column charges the membrane (the input stage passes one direction).
    """

    tau: float = 5e-6
    cm: float = 1e-12
    threshold: float = 0.5
    refractory: float = 2e-6
    v_reset: float = 0.0
    rectify: bool = True
    adapt: float = 0.0              # homeostasis: threshold rises by this per spike (Querlioz et al. 2013) ...
    adapt_tau: float = 20e-6        # ... and relaxes back with this time constant (frozen when not learning)


@dataclass
class SpikeRecord:
    time: float
    kind: str        # "pre" | "post" | "mod" (modulatory line pulse)
    index: int


@dataclass
class CoSimResult:
    spikes: list[SpikeRecord]
    snapshots: list[tuple[float, np.ndarray]]     # (time, conductances R x C)
    states: np.ndarray                            # (S, R, C) final
    conductance: np.ndarray                       # (R, C) final, at vread
    chunks: int
    simulated_chunks: int
    wall_s: float
    engine: str
    max_chunk: float
    membrane: np.ndarray

    def spikes_frame(self):
        import pandas as pd
        return pd.DataFrame({"time": [s.time for s in self.spikes], "kind": [s.kind for s in self.spikes],
                             "index": [s.index for s in self.spikes]})

    def conductance_frame(self):
        import pandas as pd
        rows = []
        for t, g in self.snapshots:
            R, C = g.shape
            ii, jj = np.meshgrid(np.arange(R), np.arange(C), indexing="ij")
            rows.append(pd.DataFrame({"time": t, "row": ii.ravel(), "col": jj.ravel(), "g": g.ravel()}))
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["time", "row", "col", "g"])


class CoSim:
    """A crossbar from ``design`` with LIF neurons on its columns.

    ``design`` gives the array (model, parameters, states, variability, drivers,
    wires) and ``analysis.step`` (the transient step inside chunks); its stimulus is
    replaced by the spikes. ``pre_shape``/``post_shape`` are the pulse shapes.
    """

    def __init__(self, design: d.Design, pre_shape: d.SpikeShape, post_shape: d.SpikeShape, neuron: LIF,
                 *, engine: str = "behavioural", step: float | None = None, max_chunk: float = 0.25e-6,
                 vread: float = 0.1, c2c: dict[str, float] | None = None, seed: int = 0):
        if design.crossbar is None:
            raise ValueError("spiking co-simulation needs a design with a crossbar")
        if design.sense.kind != "ideal":
            raise ValueError("post-synaptic spikes drive the bit lines: the sense path must be 'ideal' "
                             "(column drivers), not an op-amp TIA")
        self.design = copy.deepcopy(design)
        xb = self.design.crossbar
        self.R, self.C = xb.rows, xb.cols
        self.pre_shape, self.post_shape, self.neuron = pre_shape, post_shape, neuron
        self.engine, self.vread = engine, vread
        self.step = step or design.analysis.step or 2e-9
        if not max_chunk >= 4 * self.step:
            raise ValueError(f"max_chunk {max_chunk:g} s must be at least 4 steps ({4 * self.step:g} s)")
        self.max_chunk = max_chunk
        self.design.stimulus = [d.WavePhase([d.wave(PWL((0.0, max_chunk), (0.0, 0.0)), row=0)], duration=max_chunk)]
        self.design.analysis = d.Analysis(kind="tran", step=self.step)
        self.design.records = [d.Record("states"), d.Record("column_currents")]
        self.circuit = build_circuit(self.design)
        lay = self.circuit.crossbar
        if lay.col_source is None or lay.sensed.size != self.C:
            raise ValueError("every bit line needs a column driver for post-synaptic spikes")
        self.layout = lay
        w = xb.wires
        self._plain = w.c_row == 0 and w.c_col == 0 and w.r_row == 0 and self.design.row_driver.r_out == 0
        cells = lay.cell_devices(self.circuit)
        self.cells = cells
        self.model = lay.model
        self.base_params = dict(cells.params)
        self.x = np.stack([np.asarray(cells.params[st.init], dtype=float) for st in self.model.states])
        self.ranges = [self.model.parameter(st.init) for st in self.model.states]
        self.c2c = dict(c2c or {})
        for name in self.c2c:
            self.model.parameter(name)
        self.rng = np.random.default_rng(seed)
        # probes: states in (S, R*C) order, currents per column
        self._state_probes = [list(np.asarray(lay.state_signals[st.name]).ravel()) for st in self.model.states]
        self._current_probes = [lay.current_signals[j] for j in range(self.C)]
        self.t = 0.0
        self.v = np.zeros(self.C)
        self.theta = np.zeros(self.C)          # adaptive part of the threshold
        self.learning = True
        self.refractory_until = np.full(self.C, -np.inf)
        self.pre: list[list[float]] = [[] for _ in range(self.R)]
        self.post: list[list[float]] = [[] for _ in range(self.C)]
        self.extra_rows: list[list[tuple[d.SpikeShape, float]]] = [[] for _ in range(self.R)]
        self.extra_cols: list[list[tuple[d.SpikeShape, float]]] = [[] for _ in range(self.C)]
        self.spikes: list[SpikeRecord] = []
        self.snapshots: list[tuple[float, np.ndarray]] = []
        self.chunks = 0
        self.simulated = 0
        self.wall = 0.0

    # -- conductances ---------------------------------------------------------------------
    def conductance(self) -> np.ndarray:
        p = self.model.resolve(self._params(self.x, c2c=False))
        return (self.model.current(np.full(self.R * self.C, self.vread), self.x, p) / self.vread).reshape(self.R, self.C)

    def snapshot(self) -> None:
        self.snapshots.append((self.t, self.conductance()))

    def _params(self, x: np.ndarray, c2c: bool) -> dict:
        params = dict(self.base_params)
        n = self.R * self.C
        for k, st in enumerate(self.model.states):
            prm = self.ranges[k]
            lo = prm.lower if prm.lower is not None else -np.inf
            hi = prm.upper if prm.upper is not None else np.inf
            params[st.init] = np.clip(x[k], lo, hi)
        if c2c and self.c2c:
            base = self.model.resolve(self.base_params)
            for name, sigma in sorted(self.c2c.items()):
                params[name] = np.broadcast_to(np.asarray(base[name], dtype=float), (n,)) * \
                    np.exp(sigma * self.rng.standard_normal(n))
        return params

    # -- line waveforms -------------------------------------------------------------------
    def _line_wave(self, spikes: Sequence[float], shape: d.SpikeShape, extra, t0: float, dur: float):
        active = []
        for s in reversed(spikes):           # spikes are in time order: stop at the first finished one
            if s - t0 + shape.duration <= 0:
                break
            if s - t0 < dur:
                active.append(s - t0)
        lws = []
        if active:
            lws.append(d.spikes(shape, active, row=0))
        for sh, s in extra:
            if s - t0 < dur and s - t0 + sh.duration > 0:
                lws.append(d.spikes(sh, [s - t0], row=0))
        if not lws:
            return None
        if len(lws) == 1:
            tt, vv = lws[0].points(dur)
        else:
            grids = [lw.points(dur)[0] for lw in lws]
            tt = np.unique(np.concatenate(grids))
            vv = sum(np.interp(tt, *lw.points(dur)) for lw in lws)
        return PWL(tuple(tt.tolist()), tuple(vv.tolist()))

    def _busy_until(self) -> float:
        """The time at which every pulse started so far has ended."""
        ends = [0.0]
        for spikes in self.pre:
            if spikes:
                ends.append(spikes[-1] + self.pre_shape.duration)
        for spikes in self.post:
            if spikes:
                ends.append(spikes[-1] + self.post_shape.duration)
        for ex in self.extra_rows + self.extra_cols:
            ends.extend(s + sh.duration for sh, s in ex)
        return max(ends)

    # -- one chunk ------------------------------------------------------------------------
    def _chunk(self, dur: float) -> tuple[np.ndarray, np.ndarray]:
        """Simulate [t, t + dur]; returns (times, column currents (n, C)) and advances the states."""
        t0 = self.t
        waves = {}
        for i in range(self.R):
            waves[("row", i)] = self._line_wave(self.pre[i], self.pre_shape, self.extra_rows[i], t0, dur)
        for j in range(self.C):
            waves[("col", j)] = self._line_wave(self.post[j], self.post_shape, self.extra_cols[j], t0, dur)
        lay, c = self.layout, self.circuit
        for name in lay.row_sources:
            g = c.group(name, VoltageSources)
            g.waveforms = [waves[("row", int(i))] or DC(0.0) for i in lay.driven_rows]
        g = c.group(lay.col_source, VoltageSources)
        g.waveforms = [waves[("col", int(j))] or DC(0.0) for j in lay.sensed]
        self.cells.params = self._params(self.x, c2c=True)
        c.analysis = Transient(tstop=dur, tstep=min(self.step, dur))
        wf = simulate(c, self.engine)
        self.simulated += 1
        self.x = np.array([[float(np.asarray(wf[name])[-1]) for name in names] for names in self._state_probes])
        times = np.asarray(wf.time, dtype=float)
        cur = np.stack([np.asarray(wf[name], dtype=float) for name in self._current_probes], axis=1)
        return times, cur

    def _inputs_may_charge(self) -> bool:
        """Whether any neuron can receive charge before the next pre-synaptic spike.

        Charge flows into column j only where some word line is above bit line j. With ideal
        lines (no wire capacitance) and passive devices (current has the sign of the voltage,
        checked for the present states), that needs a positive part of a pre-synaptic pulse
        (bit lines of listening neurons are at 0 V; a neuron is deaf while its own pulse is on
        its line). When the positive parts are over and no extra pulses are on, the chunk may
        run to the next event: the neurons cannot fire in it, so nothing is decided late.
        """
        if not self._plain or any(s + sh.duration > self.t for ex in self.extra_rows + self.extra_cols for sh, s in ex):
            return True
        k = [n for n, v in enumerate(self.pre_shape.values) if v > 0]
        pos_end = self.pre_shape.times[k[-1] + 1] if k else 0.0
        if any(sp and sp[-1] + pos_end > self.t for sp in self.pre):
            return True
        p = self.model.resolve(self._params(self.x, c2c=False))
        passive = np.all(self.model.current(np.full(self.R * self.C, 1e-3), self.x, p) >= 0)
        return not passive

    def _idle_is_static(self) -> bool:
        p = self.model.resolve(self._params(self.x, c2c=False))
        return bool(np.all(self.model.dxdt(np.zeros(self.R * self.C), self.x, p) == 0))

    def _integrate(self, times: np.ndarray, cur: np.ndarray, t0: float) -> np.ndarray:
        """Membranes over one chunk; returns the columns that crossed threshold."""
        nr = self.neuron
        fired = np.zeros(self.C, bool)
        post_busy_until = np.array([(s[-1] + self.post_shape.duration) if s else -np.inf for s in self.post])
        for k in range(1, times.size):
            h = times[k] - times[k - 1]
            tm = t0 + 0.5 * (times[k] + times[k - 1])
            i_in = 0.5 * (cur[k] + cur[k - 1])
            if nr.rectify:
                i_in = np.maximum(i_in, 0.0)
            live = (tm >= self.refractory_until) & (tm >= post_busy_until) & ~fired
            decay = np.exp(-h / nr.tau)
            self.v = np.where(live, self.v * decay + i_in * nr.tau / nr.cm * (1 - decay), self.v)
            fired |= live & (self.v >= nr.threshold + self.theta)
        return fired

    def _relax(self, dt: float, learn: bool) -> None:
        if learn and self.neuron.adapt:
            self.theta *= np.exp(-dt / self.neuron.adapt_tau)

    def fire(self, j: int, when: float | None = None, kind: str = "post") -> None:
        """Post-synaptic spike of neuron ``j`` now (its shape goes on bit line ``j``)."""
        t = self.t if when is None else when
        self.theta[j] += self.neuron.adapt
        self.post[j].append(t)
        self.spikes.append(SpikeRecord(t, kind, j))
        self.v[j] = self.neuron.v_reset
        self.refractory_until[j] = t + self.neuron.refractory

    def pulse_line(self, line: str, index: int, shape: d.SpikeShape, when: float | None = None) -> None:
        """An extra pulse on a line (e.g. a modulatory signal), not a neuron's spike."""
        t = self.t if when is None else when
        (self.extra_rows if line == "row" else self.extra_cols)[index].append((shape, t))
        self.spikes.append(SpikeRecord(t, f"mod_{line}", index))

    def run(self, pre_spikes: Sequence[Sequence[float]], until: float, *, learn: bool = True,
            on_fire: Callable[[int, float], bool] | None = None) -> np.ndarray:
        """Advance to ``until`` with pre-synaptic spikes ``pre_spikes[i]`` (absolute times >= now).

        Returns the number of post spikes per neuron in this call. ``learn=False`` keeps the neurons
        from putting their spikes on the bit lines (inference: they are counted, not applied).
        ``on_fire(j, t)`` may veto a spike's pulse (return False), e.g. to gate it by a modulatory signal.
        """
        start = time.perf_counter()
        events = sorted({float(s) for row in pre_spikes for s in row if self.t <= s < until})
        by_time: dict[float, list[int]] = {}
        for i, row in enumerate(pre_spikes):
            for s in row:
                if self.t <= s < until:
                    by_time.setdefault(float(s), []).append(i)
        counts = np.zeros(self.C, dtype=np.int64)
        ev = 0
        while self.t < until - 1e-15:
            while ev < len(events) and events[ev] <= self.t + 1e-15:
                for i in by_time[events[ev]]:
                    self.pre[i].append(events[ev])
                    self.spikes.append(SpikeRecord(events[ev], "pre", i))
                ev += 1
            nxt = events[ev] if ev < len(events) else until
            busy = self._busy_until()
            self.chunks += 1
            idle = busy <= self.t
            if idle and self._idle_is_static():
                # nothing on any line and no state moves at 0 V: membranes only leak (exactly)
                self.v = self.v * np.exp(-(nxt - self.t) / self.neuron.tau)
                self._relax(nxt - self.t, learn)
                self.t = nxt
                continue
            end = nxt if idle or not self._inputs_may_charge() else min(nxt, self.t + self.max_chunk)
            if end - self.t < 1e-15:
                self.t = end
                continue
            times, cur = self._chunk(end - self.t)
            fired = self._integrate(times, cur, self.t)
            self._relax(end - self.t, learn)
            self.t = end
            for j in np.flatnonzero(fired):
                counts[j] += 1
                if learn and (on_fire is None or on_fire(int(j), self.t)):
                    self.fire(int(j))
                else:
                    self.spikes.append(SpikeRecord(self.t, "post_silent", int(j)))
                    if learn:                 # homeostasis belongs to the neuron, not to the gating
                        self.theta[j] += self.neuron.adapt
                    self.v[j] = self.neuron.v_reset
                    self.refractory_until[j] = self.t + self.neuron.refractory
        self.wall += time.perf_counter() - start
        return counts

    def result(self) -> CoSimResult:
        return CoSimResult(self.spikes, self.snapshots, self.x.reshape(-1, self.R, self.C), self.conductance(),
                           self.chunks, self.simulated, self.wall, self.engine, self.max_chunk, self.v.copy())
