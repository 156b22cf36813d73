"""``simulate(circuit)``: run the circuit's analysis and return its probes as :class:`Waveforms`."""
from __future__ import annotations

import time

import numpy as np

from ..circuit.model import Circuit, OperatingPoint, Probe, Transient, VoltageSources
from ..errors import ConvergenceError
from ..results import Waveforms
from .mna import MnaSystem
from .newton import NewtonFailure, Solver, Tolerances
from .operating_point import operating_point
from .transient import run_transient


def simulate(circuit: Circuit, tolerances: Tolerances = Tolerances()) -> Waveforms:
    """Simulate ``circuit`` (operating point or transient) with the behavioural engine.

    Signals are keyed by probe name and multiplied by the probe's scale:
    0-d values for an operating point, one value per grid time for a transient.
    Raises :class:`ConvergenceError` (with the time) if Newton fails.
    """
    start = time.perf_counter()
    system = MnaSystem(circuit)
    solver = Solver(system, tolerances)
    index, scale = probe_indices(system, circuit.probes)

    def record(y: np.ndarray) -> np.ndarray:
        return np.append(y, 0.0)[index] * scale   # index `size` is ground

    setup_s = time.perf_counter() - start
    analysis = circuit.analysis
    if isinstance(analysis, OperatingPoint):
        try:
            y, stats = operating_point(system, solver)
        except NewtonFailure as exc:
            raise ConvergenceError(f"operating point: {exc}") from None
        times, values = None, record(y)
        signals = {p.name: np.float64(v) for p, v in zip(circuit.probes, values)}
    elif isinstance(analysis, Transient):
        times, values, stats = run_transient(system, solver, analysis, record)
        signals = {p.name: values[:, k].copy() for k, p in enumerate(circuit.probes)}
    else:
        raise TypeError(f"behavioural engine: unsupported analysis {type(analysis).__name__}")
    meta = {"unknowns": system.size, "nonzeros": system.pattern.nnz, "newton_iterations": solver.iterations,
            "max_newton_iterations": solver.max_iterations_seen, "factorizations": solver.factorizations,
            "setup_s": setup_s, **stats}
    return Waveforms("behavioural", times, signals, wall_s=time.perf_counter() - start, meta=meta)


def probe_indices(system: MnaSystem, probes: list[Probe]) -> tuple[np.ndarray, np.ndarray]:
    """Index into ``[y, 0]`` and scale of each probe (ground reads the trailing 0)."""
    index = np.empty(len(probes), dtype=np.int64)
    for k, probe in enumerate(probes):
        if probe.kind == "v":
            index[k] = system.unknown(int(probe.target))
        elif probe.kind == "i":
            name, element = probe.target
            group = system.circuit.group(name, VoltageSources)
            if not 0 <= int(element) < group.n:
                raise ValueError(f"probe '{probe.name}': source group '{name}' has no element {element}")
            index[k] = system.branch(group, int(element))
        else:
            raise ValueError(f"probe '{probe.name}': unknown kind '{probe.kind}' (expected 'v' or 'i')")
    return index, np.array([p.scale for p in probes], dtype=float)
