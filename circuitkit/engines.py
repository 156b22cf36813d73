"""Run a :class:`Circuit` in either engine and get :class:`Waveforms` keyed by probe name.

``simulate(circuit, engine)`` is the one entry point the CLI, sweeps and tests
use. The SPICE path compiles the Verilog-A models it needs (cached), renders
the netlist, runs ngspice and maps ngspice's vector names back to probe
names; the behavioural path calls the numpy engine. Both then add the derived
signals (ideal TIA outputs) with the same code.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .circuit.model import Circuit
from .results import Waveforms

ENGINES = ("spice", "behavioural")


def simulate(circuit: Circuit, engine: str = "behavioural", *, workdir: Path | None = None,
             backend: str = "batch", timeout: float = 3600.0) -> Waveforms:
    from .limits import check_circuit
    check_circuit(circuit, engine)        # refuse, with the estimate, what would not fit
    if engine == "spice":
        wf = simulate_spice(circuit, workdir=workdir, backend=backend, timeout=timeout)
    elif engine == "behavioural":
        from .behavioural import simulate as behavioural_simulate
        wf = behavioural_simulate(circuit)
    else:
        raise ValueError(f"unknown engine '{engine}' (known: {', '.join(ENGINES)})")
    add_derived(circuit, wf)
    return wf


def compile_models(circuit: Circuit) -> dict[str, Path]:
    """Compile (or take from the cache) every Verilog-A model the circuit uses."""
    from .spice.osdi import compile_all
    return compile_all([m.name for m in circuit.device_models()])


def write_netlist(circuit: Circuit, path: Path) -> Path:
    """Render the netlist to ``path`` (models compiled as needed)."""
    from .netlist.render import render_netlist
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    osdi = compile_models(circuit)
    with open(path, "w") as fh:
        render_netlist(circuit, osdi, fh)
    return path


def simulate_spice(circuit: Circuit, *, workdir: Path | None = None, backend: str = "batch",
                   timeout: float = 3600.0) -> Waveforms:
    from .netlist.render import spice_vector
    from .spice.runner import run_netlist

    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="circuitkit-")
        workdir = Path(tmp.name)
    try:
        workdir = Path(workdir)
        t0 = time.perf_counter()
        netlist = write_netlist(circuit, workdir / "circuit.cir")
        render_s = time.perf_counter() - t0
        run = run_netlist(netlist, backend=backend, timeout=timeout, workdir=workdir)
        signals = {}
        for probe in circuit.probes:
            name = spice_vector(circuit, probe)
            if name not in run.vectors:
                raise KeyError(f"ngspice did not return vector '{name}' for signal '{probe.name}'")
            values = np.asarray(run.vectors[name], dtype=float) * probe.scale
            signals[probe.name] = values if run.vectors.get("time") is not None else values.reshape(-1)[0]
        t = run.vectors.get("time")
        return Waveforms("spice", None if t is None else np.asarray(t, dtype=float), signals, wall_s=run.wall_s,
                         meta={"render_s": render_s, "ngspice_version": run.ngspice_version,
                               "backend": run.backend, "warnings": run.warnings[:20]})
    finally:
        if tmp is not None:
            tmp.cleanup()


def add_derived(circuit: Circuit, wf: Waveforms) -> None:
    """Signals computed from recorded ones, identically for both engines (ideal TIA: v = -rf * i)."""
    for d in (circuit.crossbar.derived if circuit.crossbar is not None else ()):
        if d.source in wf.signals:
            wf.signals[d.name] = d.factor * np.asarray(wf.signals[d.source])
