"""Energy of a simulated crossbar, per stimulus phase and per part, from either engine's waveforms.

What is counted, element by element, from node voltages (and the models' own
current equations), never from the names of elements:

* **cells** (:class:`~circuitkit.circuit.layout.Role` CELL, with their
  SELECTOR and ACCESS parts): ``∫ v(t) i(v, x) dt`` with the twin's current
  ``i(v, x)`` at the recorded terminal voltages and states (a level-1 MOSFET's
  ``Σ v_k i_k`` for access transistors), split per phase into *selected*
  cells (selected rows x selected columns), *half-selected* cells (sharing a
  row or a column with them) and *unselected* cells
  (:meth:`~circuitkit.circuit.layout.PhaseInfo.cell_classes`; in a read the
  selected rows are the word-selected ones and the columns the sensed ones);
* **wires** (WIRE): ``∫ (va - vb)^2 / r dt`` in line segments plus the change
  of energy stored in line capacitances, ``c (v1^2 - v0^2) / 2``;
* **drivers** (DRIVER): ``∫ (va - vb)^2 / r dt`` in driver output resistances;
* **sense** (SENSE): dissipation in TIA feedback resistors; the op-amp
  macro-model's internals (controlled sources, its pole network; role MACRO)
  are not a physical circuit and its supply is not modelled, so they count
  nothing (an ideal TIA's virtual ground is a 0 V source and costs nothing);
* **other**: the resistors, capacitors and devices of element testbenches;
* not counted: fault clamps (CLAMP: sources holding stuck cells' state
  terminals), 0 V ammeters (PROBE) and the state terminals of devices (they
  are model variables, not charge).

``supplied`` is what the stimulus sources deliver, ``-∫ v i dt`` (SPICE's
current direction). Without an op-amp TIA it equals the sum of the parts
(energy conservation); :attr:`Energy.balance` is their relative difference and
checks the bookkeeping and the time grid on every run.

Integration is exact for voltages and currents linear between the engine's own
time points (trapezoidal power minus ``dv di / 6`` per interval, :func:`_cumulative`),
split at the phase boundaries (interpolated). An operating point is one read phase at
constant power, so energy = power x the phase's duration.

The waveforms must hold the needed signals: :func:`record_energy` adds them
(node voltages of every counted element, currents of the stimulus sources) to
a circuit before it is simulated; :func:`simulate_energy` does both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .circuit.layout import Role
from .circuit.model import Capacitors, Circuit, Devices, Mosfets, OperatingPoint, Resistors, Transient, VoltageSources
from .errors import CircuitkitError
from .results import Waveforms

if TYPE_CHECKING:                    # pandas loads only where the table is built (start-up time)
    import pandas as pd

PARTS = ("cells_selected", "cells_half_selected", "cells_unselected", "wires", "drivers", "sense", "other")
COLUMNS = ("phase", "kind", "start", "end", *PARTS, "total", "supplied")
CELL_PARTS = ("cells_unselected", "cells_half_selected", "cells_selected")    # by PhaseInfo.cell_classes value
COUNTED = (Role.CELL, Role.SELECTOR, Role.ACCESS, Role.WIRE, Role.DRIVER, Role.SENSE, Role.OTHER)
PREFIX = "energy."
#: time points x nodes above which ``record_energy(..., budget=)`` declines (values held in memory).
DEFAULT_BUDGET = 2e7


class EnergyError(CircuitkitError):
    """The waveforms lack what the energy needs, or the circuit has no energy to count."""


@dataclass
class Energy:
    """Energy per phase (rows of :attr:`table`) and part (its columns), in joules."""

    rows: list[dict]                    # one dict per phase: COLUMNS
    notes: list[str] = field(default_factory=list)
    cells: np.ndarray | None = None     # (rows, cols) energy of each crossbar cell over the whole run

    def columns(self) -> dict[str, np.ndarray]:
        """The table as one array per column (:data:`COLUMNS`, ``total`` the sum of the parts)."""
        return {c: np.array([r[c] for r in self.rows]) for c in COLUMNS}

    @property
    def table(self) -> "pd.DataFrame":
        """One row per phase, one column per part (plus phase, kind, start, end, total, supplied)."""
        import pandas as pd
        return pd.DataFrame(self.columns(), columns=list(COLUMNS))

    @property
    def totals(self) -> dict[str, float]:
        """Sum over phases of every part, ``total`` (the parts) and ``supplied``."""
        return {k: float(sum(r[k] for r in self.rows)) for k in PARTS + ("total", "supplied")}

    @property
    def balance(self) -> float:
        """(supplied - total) / supplied: 0 when every joule the sources deliver is accounted for."""
        t = self.totals
        return (t["supplied"] - t["total"]) / t["supplied"] if t["supplied"] else 0.0

    def summary(self) -> dict:
        return {"total_J": self.totals["total"], "supplied_J": self.totals["supplied"],
                "parts_J": {k: self.totals[k] for k in PARTS}, "balance": self.balance, "notes": list(self.notes)}


# -- what to record ------------------------------------------------------------------

def _counted_groups(circuit: Circuit) -> list:
    return [g for g in circuit.groups if g.role in COUNTED and isinstance(g, (Resistors, Capacitors, Devices, Mosfets))]


def _nodes_needed(circuit: Circuit) -> np.ndarray:
    nodes = []
    for g in _counted_groups(circuit):
        if isinstance(g, (Resistors, Capacitors)):
            nodes += [g.a, g.b]
        elif isinstance(g, Devices):
            nodes += [g.p, g.n_, g.states.ravel()]
        else:
            nodes += [g.d, g.g, g.s, g.b]
    if not nodes:
        return np.empty(0, np.int64)
    u = np.unique(np.concatenate(nodes))
    return u[u != 0]


def _stimuli(circuit: Circuit) -> list[VoltageSources]:
    return [g for g in circuit.groups_of(VoltageSources) if g.role is Role.STIMULUS]


def record_energy(circuit: Circuit, budget: float | None = None) -> bool:
    """Add the probes the energy needs (idempotent). Returns False, adding nothing, when the circuit has
    nothing to count or, with ``budget``, when nodes x time points would exceed it."""
    nodes = _nodes_needed(circuit)
    if not nodes.size:
        return False
    if budget is not None and isinstance(circuit.analysis, Transient):
        points = circuit.analysis.tstop / circuit.analysis.max_step + 1
        if nodes.size * points > budget:
            return False
    have_v = {int(p.target) for p in circuit.probes if p.kind == "v"}
    have_i = {tuple(p.target) for p in circuit.probes if p.kind == "i"}
    for node in nodes:
        if int(node) not in have_v:
            circuit.probe(f"{PREFIX}v{int(node)}", "v", int(node), internal=True)
    for g in _stimuli(circuit):
        for k in range(g.n):
            if (g.name, k) not in have_i:
                circuit.probe(f"{PREFIX}i.{g.name}.{k}", "i", (g.name, k), internal=True)
    return True


def simulate_energy(circuit: Circuit, engine: str = "behavioural", **kwargs) -> tuple[Waveforms, Energy]:
    """Record what the energy needs, simulate, and return the waveforms and the energy."""
    from .engines import simulate
    record_energy(circuit)
    wf = simulate(circuit, engine, **kwargs)
    return wf, energy(circuit, wf)


# -- computing it ------------------------------------------------------------------------

class _Signals:
    """Node voltages and source currents over time, (T,) arrays, from whatever probes hold them."""

    def __init__(self, circuit: Circuit, wf: Waveforms):
        self.wf = wf
        self.t = None if wf.time is None else np.asarray(wf.time, dtype=float)
        self.v = {}
        self.i = {}
        for p in circuit.probes:
            if p.name not in wf.signals:
                continue
            if p.kind == "v":
                self.v.setdefault(int(p.target), p)
            else:
                self.i.setdefault((p.target[0], int(p.target[1])), p)
        self.n_t = 1 if self.t is None else self.t.size

    def _values(self, probe) -> np.ndarray:
        return np.atleast_1d(np.asarray(self.wf.signals[probe.name], dtype=float)).reshape(-1) / probe.scale

    def volt(self, nodes: np.ndarray) -> np.ndarray:
        """(T, n) voltages of ``nodes`` (ground 0)."""
        nodes = np.asarray(nodes, dtype=np.int64).ravel()
        out = np.zeros((self.n_t, nodes.size))
        missing = [int(n) for n in np.unique(nodes) if n != 0 and int(n) not in self.v]
        if missing:
            raise EnergyError(f"energy: {len(missing)} node voltage(s) were not recorded; call "
                              "circuitkit.energy.record_energy(circuit) before simulating "
                              "(or use circuitkit.energy.simulate_energy)")
        for k, n in enumerate(nodes):
            if n != 0:
                out[:, k] = self._values(self.v[int(n)])
        return out

    def current(self, group: str, k: int) -> np.ndarray:
        probe = self.i.get((group, k))
        if probe is None:
            raise EnergyError(f"energy: the current of source {group}[{k}] was not recorded; call "
                              "circuitkit.energy.record_energy(circuit) before simulating")
        return self._values(probe)


def _power(circuit: Circuit, g, sig: _Signals) -> tuple[np.ndarray, np.ndarray]:
    """(T, n) power dissipated by each element of a resistive group, and (T - 1, n) the sum over its
    terminals of (change of voltage) x (change of current) over each time interval (see :func:`_cumulative`)."""
    if isinstance(g, Resistors):
        dv = sig.volt(g.a) - sig.volt(g.b)
        return dv * dv / g.r, _dd(dv, dv / g.r)
    if isinstance(g, Devices):
        v = sig.volt(g.p) - sig.volt(g.n_)
        T, n = v.shape
        ns = g.model.n_states()
        x = np.stack([sig.volt(g.states[s]) for s in range(ns)]) if ns else np.zeros((0, T, n))
        params = g.resolved()
        cur = np.empty((T, n))
        chunk = max(1, int(2e6 // max(n, 1)))
        for t0 in range(0, T, chunk):
            t1 = min(T, t0 + chunk)
            m = t1 - t0
            p = type(params)({k: (np.tile(val, m) if np.ndim(val) else val) for k, val in params.items()})
            vv = v[t0:t1].ravel()
            i = np.asarray(g.model.current(vv, x[:, t0:t1].reshape(ns, m * n), p), dtype=float)
            cur[t0:t1] = np.broadcast_to(i, vv.shape).reshape(m, n)
        return v * cur, _dd(v, cur)
    if isinstance(g, Mosfets):
        from .devices.mosfet import level1
        vd, vg, vs, vb = (sig.volt(a) for a in (g.d, g.g, g.s, g.b))
        cur, _ = level1(g.model, vd, vg, vs, vb)     # into d, s, b; the gate draws none
        return vd * cur[0] + vs * cur[1] + vb * cur[2], _dd(vd, cur[0]) + _dd(vs, cur[1]) + _dd(vb, cur[2])
    raise TypeError(type(g).__name__)


def _dd(v: np.ndarray, i: np.ndarray) -> np.ndarray:
    """(T - 1, ...) change of ``v`` times change of ``i`` over each time interval."""
    return np.diff(v, axis=0) * np.diff(i, axis=0)


def _cumulative(t: np.ndarray, p: np.ndarray, dd: np.ndarray | None = None) -> np.ndarray:
    """Running integral of (T, ...) power ``p = v i`` over ``t`` (T,), starting at 0.

    Between two time points ``v`` and ``i`` are taken as linear (the waveforms the engines return),
    so ``v i`` is quadratic and its integral over an interval of length h is exactly
    ``h ((p0 + p1) / 2 - dv di / 6)``, ``dd`` holding ``dv di`` (summed over terminals). The
    trapezoidal rule alone (``dd`` None) overestimates a ramp's ``G v^2`` by ``G dv^2 h / 6``
    per interval: 4 % of a read phase's energy at the shipped testbenches' 0.5 ns step on 1 ns edges.
    """
    out = np.zeros_like(p)
    if t.size > 1:
        dt = np.diff(t).reshape((-1,) + (1,) * (p.ndim - 1))
        inc = (p[1:] + p[:-1]) / 2
        if dd is not None:
            inc = inc - dd.reshape(inc.shape) / 6
        out[1:] = np.cumsum(inc * dt, axis=0)
    return out


def _windows(circuit: Circuit, t: np.ndarray | None) -> list[tuple[int, str, float, float]]:
    """(phase, kind, start, end) of the stimulus phases, plus what the analysis runs past them."""
    xb = circuit.crossbar
    phases = [(p.index, p.kind, p.start, p.end) for p in xb.phases] if xb is not None else []
    if t is None:
        if not phases:
            raise EnergyError("energy: an operating point without a crossbar read phase has no duration")
        return phases[:1]
    end = float(t[-1])
    if not phases:
        return [(0, "all", float(t[0]), end)]
    if end > phases[-1][3] * (1 + 1e-9):
        phases.append((len(phases), "after", phases[-1][3], end))
    return [(k, kind, s, min(e, end)) for k, kind, s, e in phases if s < end]


def energy(circuit: Circuit, wf: Waveforms) -> Energy:
    """Energy per phase and part of the simulated ``circuit`` (see the module docstring)."""
    sig = _Signals(circuit, wf)
    xb = circuit.crossbar
    windows = _windows(circuit, sig.t)
    notes: list[str] = []
    rows = {k: {"phase": k, "kind": str(getattr(kind, "value", kind)), "start": s, "end": e, **{p: 0.0 for p in PARTS}, "supplied": 0.0}
            for k, kind, s, e in windows}

    def per_window(power: np.ndarray, dd: np.ndarray | None = None) -> list[np.ndarray]:
        """Energy of each element (…, n) in each window."""
        if sig.t is None:
            return [power[0] * (e - s) for _, _, s, e in windows]
        cum = _cumulative(sig.t, power, dd)
        return [_at(sig.t, cum, e) - _at(sig.t, cum, s) for _, _, s, e in windows]

    per_cell = np.zeros(xb.rows * xb.cols) if xb is not None else None
    cell_groups = [g for g in _counted_groups(circuit) if g.role in (Role.CELL, Role.SELECTOR, Role.ACCESS)]
    for g in _counted_groups(circuit):
        if isinstance(g, Capacitors):
            v = sig.volt(g.a) - sig.volt(g.b)
            stored = 0.5 * g.c * v * v
            for (k, _, s, e) in windows:
                if sig.t is None:
                    continue
                rows[k][_part_of(g.role)] += float(np.sum(_at(sig.t, stored, e) - _at(sig.t, stored, s)))
            continue
        power, dd = _power(circuit, g, sig)
        power = power.reshape(power.shape[0], -1)
        energies = per_window(power, None if sig.t is None else dd.reshape(dd.shape[0], power.shape[1]))
        for (k, _, _, _), en in zip(windows, energies):
            if g in cell_groups:
                if xb is not None and g.n == xb.rows * xb.cols:
                    ph = next((p for p in xb.phases if p.index == k), None)
                    cls = ph.cell_classes(xb.rows, xb.cols).ravel() if ph is not None else np.zeros(g.n, np.int8)
                    flat = np.asarray(g.index if g.index is not None else np.arange(g.n))
                    for c, part in enumerate(CELL_PARTS):
                        rows[k][part] += float(np.sum(en[cls[flat] == c]))
                    np.add.at(per_cell, flat, en)
                else:
                    rows[k]["other"] += float(np.sum(en))
            else:
                rows[k][_part_of(g.role)] += float(np.sum(en))

    for g in _stimuli(circuit):
        for m in range(g.n):
            i = sig.current(g.name, m)
            if sig.t is None:
                v = float(np.asarray(g.waveforms[m](np.array([0.0]))).reshape(-1)[0])
                p = np.array([[-v * float(i[0])]])
                dd = None
            else:
                v = np.asarray(g.waveforms[m](sig.t), dtype=float)
                p = (-v * i)[:, None]
                dd = _dd(v, -i)[:, None]
            for (k, _, _, _), en in zip(windows, per_window(p, dd)):
                rows[k]["supplied"] += float(en[0])
    if any(g.role is Role.MACRO for g in circuit.groups):
        notes.append("op-amp TIA: its macro-model and supply are not counted (sense = feedback resistors only), "
                     "so 'supplied' does not balance the parts")
    for r in rows.values():
        r["total"] = float(sum(r[p] for p in PARTS))
    return Energy([{c: r[c] for c in COLUMNS} for r in rows.values()], notes, None if per_cell is None else per_cell.reshape(xb.rows, xb.cols))


def _part_of(role: Role) -> str:
    return {Role.WIRE: "wires", Role.DRIVER: "drivers", Role.SENSE: "sense"}.get(role, "other")


def _at(t: np.ndarray, values: np.ndarray, x: float) -> np.ndarray:
    """Linear interpolation of every column of (T, n) ``values`` at time ``x`` (clamped to the ends)."""
    k = int(np.clip(np.searchsorted(t, x, side="right") - 1, 0, t.size - 1))
    if k >= t.size - 1 or t[k + 1] == t[k]:
        return values[k]
    w = (x - t[k]) / (t[k + 1] - t[k])
    w = min(max(w, 0.0), 1.0)
    return values[k] * (1 - w) + values[k + 1] * w
