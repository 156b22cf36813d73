"""Run a :class:`Circuit` in any engine and get :class:`Waveforms` keyed by probe name.

``simulate(circuit, engine)`` is the one entry point the CLI, sweeps and tests
use. The engines are named once, here (:data:`ENGINES`):

* ``spice``: ngspice, from a generated deck with the Verilog-A models compiled
  to OSDI (batch process or the shared library, see ``backend``);
* ``vacask``: VACASK, an independent OSDI simulator, from a deck in its own
  Spectre-like dialect rendered from the same circuit, loading the same ``.osdi``;
* ``behavioural``: the vectorised numpy engine with the models' numpy twins.

The two SPICE-class engines live in :mod:`circuitkit.simulators` (a netlist
dialect and a runner each). All engines then add the derived signals (ideal
TIA outputs) with the same code.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .circuit.model import Circuit
from .results import Waveforms

#: every engine, the reference first (sweeps order their columns this way)
ENGINES = ("spice", "vacask", "behavioural")
#: engines that run an external simulator from a netlist
SPICE_ENGINES = ("spice", "vacask")
#: what each engine is, for messages and plots
ENGINE_LABELS = {"spice": "ngspice", "vacask": "VACASK", "behavioural": "behavioural"}


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine '{engine}' (known: {', '.join(ENGINES)})")
    return engine


def parse_engines(text: str) -> tuple[str, ...]:
    """``"spice,vacask"`` -> ("spice", "vacask"); at least two distinct known engines."""
    names = [e.strip() for e in str(text).split(",") if e.strip()]
    for e in names:
        check_engine(e)
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"--engines needs two or three distinct engines separated by commas "
                         f"(of {', '.join(ENGINES)}), got {text!r}")
    return tuple(names)


def simulate(circuit: Circuit, engine: str = "behavioural", *, workdir: Path | None = None,
             backend: str = "batch", timeout: float = 3600.0) -> Waveforms:
    check_engine(engine)
    from .limits import check_circuit
    check_circuit(circuit, engine)        # refuse, with the estimate, what would not fit
    if engine in SPICE_ENGINES:
        from .simulators import get_simulator
        wf = get_simulator(engine).simulate(circuit, workdir=workdir, timeout=timeout, backend=backend)
    else:
        from .behavioural import simulate as behavioural_simulate
        wf = behavioural_simulate(circuit)
    add_derived(circuit, wf)
    return wf


def compile_models(circuit: Circuit) -> dict[str, Path]:
    """Compile (or take from the cache) every Verilog-A model the circuit uses."""
    from .simulators.base import compile_models as _compile
    return _compile(circuit)


def write_netlist(circuit: Circuit, path: Path, engine: str = "spice") -> Path:
    """Render the netlist of a SPICE engine to ``path`` (atomically; models compiled as needed)."""
    from .simulators import get_simulator
    return get_simulator(engine).write_netlist(circuit, path)


def simulate_spice(circuit: Circuit, *, workdir: Path | None = None, backend: str = "batch",
                   timeout: float = 3600.0) -> Waveforms:
    """ngspice alone (kept for callers of the earlier API); derived signals not added."""
    from .simulators import get_simulator
    return get_simulator("spice").simulate(circuit, workdir=workdir, timeout=timeout, backend=backend)


def add_derived(circuit: Circuit, wf: Waveforms) -> None:
    """Signals computed from recorded ones, identically for every engine (ideal TIA: v = -rf * i)."""
    for d in (circuit.crossbar.derived if circuit.crossbar is not None else ()):
        if d.source in wf.signals:
            wf.signals[d.name] = d.factor * np.asarray(wf.signals[d.source])
