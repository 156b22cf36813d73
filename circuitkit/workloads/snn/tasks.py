"""Learning tasks on a simulated synaptic array: coincidence detection with STDP and with a three-factor rule.

**Coincidence detection** (after Prezioso et al., Nat. Commun. 9:5311, 2018):
one LIF neuron on a column of ``n_inputs`` synapses. Every presentation lasts
``period``; in a *pattern* presentation the ``k`` pattern inputs spike together
(at ``onset``), in a *distractor* presentation ``k`` other inputs, drawn at
random, do; in both, every input also spikes with probability ``p_noise`` at a
random time (background). Initially all synapses are equal, so the neuron fires
for any coincidence. It has learned when it fires for the pattern and not for
distractors: accuracy = fraction of test presentations answered correctly
(fired <=> pattern), measured with plasticity off.

**Rules** (the same array, the same pulses; only what reaches the lines differs):

* ``stdp``: every post spike puts its shape on the bit line (pair-based STDP from pulse overlap);
* ``three_factor``: a post spike's pulse reaches the bit line only when a global modulatory
  signal (reward: the neuron fired in a pattern presentation) allows it; unrewarded spikes
  (fired for a distractor: an error) are counted but put nothing on the line. The eligibility
  trace is the pre-synaptic pulse tail on each word line: only inputs whose tail is still
  present when the gated pulse arrives cross the device threshold and change. This is the
  gating of update pulses by a third factor (Fremaux and Gerstner, Front. Neural Circuits
  9:85, 2016) at pulse level, with the trace kept by the line waveform (not by a device state).

* ``three_factor_device``: for arrays of ``volatile`` devices with consolidation (``klt > 0``):
  the eligibility trace is the device's volatile state ``w``, raised where pre and post pulses
  overlap beyond ``vth`` and relaxing with ``tau``; every post pulse goes out, and a reward
  (the neuron fired for the pattern) adds a modulatory pulse (``reward_shape``, ``reward_delay``
  after the spike) on the bit line that lifts ``w`` of every synapse of the neuron by about the
  same amount -- only those already eligible cross ``wth`` and consolidate into the
  non-volatile state ``m`` (the weight). Without reward nothing consolidates.

Device-to-device spread: ``variability`` (lognormal sigma on the named parameters);
cycle-to-cycle noise: ``c2c`` (lognormal sigma per chunk on rate parameters).
Agreement is reported, never assumed: the same run on both engines gives the same
spikes and conductances within the transient contract (see ``tests/test_snn_learning.py``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ... import design as d
from ...errors import CircuitkitError
from .cosim import LIF, CoSim


RULES = ("stdp", "three_factor", "three_factor_device")


@dataclass
class Task:
    n_inputs: int = 20
    k: int = 5
    period: float = 3.5e-6
    onset: float = 0.3e-6
    p_noise: float = 0.2
    tail: float = 1.5e-6            # pulse duration: background spikes end this long before the next onset
    train: int = 60
    test: int = 40
    seed: int = 1


@dataclass
class LearningResult:
    rule: str
    engine: str
    accuracy: float
    curve: list[tuple[int, float]]          # (presentations trained, accuracy)
    g_pattern: float                        # mean final conductance of pattern synapses
    g_other: float
    cosim: object = None
    history: list[dict] = field(default_factory=list)


def presentations(task: Task, n: int, rng: np.random.Generator, t0: float = 0.0):
    """``n`` presentations from ``t0``: (is_pattern, pre spike times per input)."""
    out = []
    others = np.arange(task.k, task.n_inputs)
    for m in range(n):
        start = t0 + m * task.period
        is_pattern = bool(rng.uniform() < 0.5)
        group = np.arange(task.k) if is_pattern else rng.choice(others, task.k, replace=False)
        spikes = [[] for _ in range(task.n_inputs)]
        for i in group:
            spikes[i].append(start + task.onset)
        noisy = rng.uniform(size=task.n_inputs) < task.p_noise
        # background spikes after the coincidence, early enough that no tail reaches the next presentation
        when = rng.uniform(task.onset + 0.3e-6, task.period - task.tail - 0.1e-6, size=task.n_inputs)
        for i in np.flatnonzero(noisy):
            if i not in group:
                spikes[i].append(start + float(when[i]))
        out.append((is_pattern, spikes))
    return out


def _evaluate(sim: CoSim, task: Task, rng: np.random.Generator) -> float:
    """Accuracy with plasticity off (the neuron's spikes are counted, never applied); time runs on."""
    # states that relax by themselves (a volatile w) may move; the others (the weights) must not
    p = sim.model.resolve(sim._params(sim.x, c2c=False))
    drift = sim.model.dxdt(np.zeros(sim.R * sim.C), sim.x, p)
    fixed = ~np.any(drift != 0, axis=1)
    x_before = sim.x.copy()
    correct = 0
    for is_pattern, spikes in presentations(task, task.test, rng, sim.t):
        fired = sim.run(spikes, sim.t + task.period, learn=False)[0] > 0
        correct += int(fired == is_pattern)
    moved = float(np.max(np.abs(sim.x[fixed] - x_before[fixed]), initial=0.0))
    if moved > 1e-6:
        raise CircuitkitError("test presentations changed the synapses: pre-synaptic pulses alone exceed a threshold "
                           f"(max state change {moved:.2e}); lower their amplitudes or space the spikes")
    return correct / task.test


def learn(design: d.Design, pre_shape: d.SpikeShape, post_shape: d.SpikeShape, neuron: LIF, task: Task, *,
          rule: str = "stdp", engine: str = "behavioural", eval_every: int = 20, c2c: dict | None = None,
          step: float | None = None, max_chunk: float = 0.1e-6, reward_shape: d.SpikeShape | None = None,
          reward_delay: float = 0.1e-6) -> LearningResult:
    """Train on ``task.train`` presentations with ``rule``; accuracy on fresh test sets along the way."""
    if rule not in RULES:
        raise ValueError(f"unknown rule '{rule}' ({', '.join(RULES)})")
    if rule == "three_factor_device" and reward_shape is None:
        raise ValueError("rule three_factor_device needs a reward pulse shape (reward_shape)")
    des = copy.deepcopy(design)
    des.crossbar.rows, des.crossbar.cols = task.n_inputs, 1
    sim = CoSim(des, pre_shape, post_shape, neuron, engine=engine, step=step, max_chunk=max_chunk,
                c2c=c2c, seed=task.seed + 1000)
    if rule == "three_factor_device":
        # the eligibility trace is a device state that relaxes by itself: with none (e.g. VTEAM) the
        # reward pulse is one more plasticity pulse on every synapse of the neuron, not a third factor
        n = sim.R * sim.C
        p = sim.model.resolve(sim._params(sim.x, c2c=False))
        if not np.any(sim.model.dxdt(np.zeros(n), np.full_like(sim.x, 0.5), p) != 0):
            raise ValueError(f"rule three_factor_device needs synapses with a volatile state (the eligibility "
                             f"trace, e.g. the 'volatile' model with klt > 0); no state of '{sim.model.name}' "
                             "relaxes at 0 V")
    rng = np.random.default_rng(task.seed)
    test_rng = np.random.default_rng(task.seed + 1)
    curve = [(0, _evaluate(sim, task, test_rng))]
    sim.snapshot()
    history = []
    current = {"pattern": False}

    def gate(j: int, t: float) -> bool:
        if rule == "three_factor_device":
            if current["pattern"]:                         # reward: the modulatory pulse on the neuron's bit line
                sim.pulse_line("col", j, reward_shape, t + reward_delay)
            return True                                    # the post pulse always goes out (it marks eligibility)
        return rule == "stdp" or current["pattern"]

    for m in range(task.train):
        is_pattern, spikes = presentations(task, 1, rng, sim.t)[0]     # from now: test blocks move time on
        current["pattern"] = is_pattern
        fired = sim.run(spikes, sim.t + task.period, on_fire=gate)[0]
        history.append({"presentation": m, "pattern": is_pattern, "post_spikes": int(fired), "time": sim.t})
        sim.snapshot()
        if (m + 1) % eval_every == 0 or m + 1 == task.train:
            curve.append((m + 1, _evaluate(sim, task, test_rng)))
    g = sim.conductance()[:, 0]
    return LearningResult(rule, engine, curve[-1][1], curve, float(g[:task.k].mean()), float(g[task.k:].mean()),
                          sim, history)
