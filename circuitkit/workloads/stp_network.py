"""A crossbar layer with short-term plastic synapses on a short-term-memory task.

Task (cue order): ``K`` cues are presented one after another, in a random order,
each as a programming pulse on its own word line of a ``K x N`` crossbar (all
columns selected, unselected rows at V/2 below threshold). After a ``delay``
the layer is probed: each row is read alone at ``vread`` (one read phase per
cue), before the cues (baseline) and after them. The network must tell which
cue came *first*.

The synapses carry a fixed long-term weight plus a short-term part that grows
with each pulse and decays with its time constant -- the STPN picture
``G_t = W + F_t`` (Rodriguez, Guo, Moraitis, ICML 2022) realised by the device
(:mod:`circuitkit.devices.multisynapse`, after Weilenmann et al., Nat. Commun.
15, 2024). The readout is the row whose summed probe current grew least over
its baseline: the oldest cue has decayed longest. With purely non-volatile
synapses (the same device with a decay time far beyond the trial) every order
leaves the same trace, and the readout is at chance (1/K).

Every trial is one transient of the whole array on the chosen engine, with
device-to-device variability (lognormal, seeded per trial). Energy per
inference is what the circuit dissipates over the trial (cells, wires,
drivers; :mod:`circuitkit.energy`), from the simulated waveforms.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .. import design as d
from ..circuit.build import build_circuit
from ..errors import Location, ParameterError
from ..outputs import outputs_table

#: short-term synapse: the shipped multi-mechanism device without consolidation (the task is short-term)
SHORT_TERM = {"kl": 0.0}
#: the same device with a decay time far beyond a trial: purely non-volatile synapses
NON_VOLATILE = {"kl": 0.0, "tau_s": 1.0}


@dataclass
class CueTask:
    """The cue-order task and the layer it runs on (times in seconds, voltages in volts)."""

    cues: int = 4                      # K: word lines, one per cue
    cols: int = 4                      # N: bit lines (output columns)
    model: str = "multisynapse"
    params: dict = field(default_factory=lambda: dict(SHORT_TERM))
    variability: dict = field(default_factory=lambda: {"gs": 0.1, "ks": 0.1, "gmin": 0.1})
    amplitude: float = 1.5
    width: float = 100e-9
    interval: float = 300e-9           # from one cue's start to the next
    delay: float = 200e-9              # from the last cue to the probe
    vread: float = 0.1
    read_time: float = 40e-9
    r_wire: float = 1.0
    edge: float = 1e-9

    def __post_init__(self):
        if not (2 <= int(self.cues) <= 64 and 1 <= int(self.cols) <= 256):
            raise ParameterError("cue task: cues must be 2..64 and cols 1..256", Location(parameter="cues"))
        for name in ("amplitude", "width", "interval", "delay", "vread", "read_time", "edge"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ParameterError(f"cue task: '{name}' must be a finite number > 0, got {value!r}",
                                      Location(parameter=name))
        if self.interval <= self.width + 2 * self.edge:
            raise ParameterError("cue task: 'interval' must exceed a pulse and its edges", Location(parameter="interval"))

    def design(self, order, seed: int) -> d.Design:
        """The crossbar design of one trial with cues presented in ``order``."""
        K, N = int(self.cues), int(self.cols)
        probe = [d.ReadPhase([self.vread if i == k else 0.0 for i in range(K)], duration=self.read_time)
                 for k in range(K)]
        gap = self.interval - self.width - 2 * self.edge
        # the delay before the probe: the last cue's phase ends with min(gap, delay) at 0 V (a shorter
        # delay than the cue spacing used to be lengthened to the spacing without a word), the rest of a
        # longer one is a phase of its own
        last = len(order) - 1
        cues = [d.ProgramPhase(row=int(k), col=list(range(N)), amplitude=self.amplitude, width=self.width,
                               count=1, gap=gap if n < last else min(gap, self.delay), scheme="v2")
                for n, k in enumerate(order)]
        rest = d.ReadPhase([0.0] * K, duration=max(self.delay - gap, 4 * self.edge)) if self.delay > gap else None
        stimulus = probe + cues + ([rest] if rest else []) + probe
        xb = d.Crossbar(name="xb", rows=K, cols=N, cell="1R", model=self.model, params=dict(self.params),
                        state=d.StateInit(kind="constant", value=0.0),
                        wires=d.Wires(r_row=self.r_wire, r_col=self.r_wire),
                        variability=dict(self.variability), variability_seed=int(seed))
        return d.Design(title="cue order", crossbar=xb, stimulus=stimulus,
                        row_driver=d.Driver(rise=self.edge, fall=self.edge),
                        col_driver=d.Driver(rise=self.edge, fall=self.edge),
                        analysis=d.Analysis("tran", step=min(self.edge, self.width / 100)),
                        records=[d.Record("column_currents")])


@dataclass
class Trial:
    order: tuple[int, ...]
    growth: np.ndarray          # (K,) summed probe current after the cues minus before, per cue row
    predicted: int
    energy: float               # J dissipated over the trial (cells, wires, drivers): circuitkit.energy
    cell_energy: float          # J of it in the cells
    wall_s: float


def run_trial(task: CueTask, order, seed: int, engine: str = "behavioural") -> Trial:
    """One trial: cues in ``order``; the prediction is the row whose probe current grew least."""
    import time

    from ..energy import simulate_energy
    order = tuple(int(k) for k in order)
    K = int(task.cues)
    if sorted(order) != list(range(K)):
        raise ParameterError(f"cue order {order} is not a permutation of 0..{K - 1}", Location(parameter="order"))
    circuit = build_circuit(task.design(order, seed))
    t0 = time.perf_counter()
    wf, energy = simulate_energy(circuit, engine)
    wall = time.perf_counter() - t0
    table = outputs_table(circuit, wf)
    per_phase = table.groupby("phase")["current"].sum()
    reads = [p.index for p in circuit.crossbar.read_phases() if any(p.vector)]
    before = per_phase.loc[reads[:K]].to_numpy()
    after = per_phase.loc[reads[-K:]].to_numpy()
    growth = after - before
    totals = energy.totals
    cells = totals["cells_selected"] + totals["cells_half_selected"] + totals["cells_unselected"]
    return Trial(order, growth, int(np.argmin(growth)), totals["total"], cells, wall)


def evaluate(task: CueTask, trials: int = 40, seed: int = 0, engine: str = "behavioural") -> pd.DataFrame:
    """``trials`` random orders (seeded); one row per trial: first cue, prediction, correct, energy."""
    if not 1 <= int(trials) <= 100_000:
        raise ParameterError(f"trials must be 1..100000, got {trials!r}", Location(parameter="trials"))
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(int(trials)):
        order = rng.permutation(int(task.cues))
        tr = run_trial(task, order, seed=int(rng.integers(2**31)), engine=engine)
        rows.append({"trial": n, "first": tr.order[0], "predicted": tr.predicted,
                     "correct": tr.predicted == tr.order[0], "energy": tr.energy,
                     "cell_energy": tr.cell_energy, "wall_s": tr.wall_s,
                     "order": " ".join(map(str, tr.order))})
    return pd.DataFrame(rows)


def compare_synapses(task: CueTask, trials: int = 40, seed: int = 0, engine: str = "behavioural") -> pd.DataFrame:
    """Accuracy and energy per inference of the layer with short-term and with non-volatile synapses."""
    out = []
    for kind, params in (("short-term", {**task.params, **SHORT_TERM}),
                         ("non-volatile", {**task.params, **NON_VOLATILE})):
        res = evaluate(replace(task, params=params), trials, seed, engine)
        out.append({"synapses": kind, "trials": len(res), "accuracy": float(res["correct"].mean()),
                    "chance": 1.0 / task.cues, "energy_per_inference": float(res["energy"].mean()),
                    "cell_energy_per_inference": float(res["cell_energy"].mean()),
                    "wall_s_per_trial": float(res["wall_s"].mean())})
    return pd.DataFrame(out)
