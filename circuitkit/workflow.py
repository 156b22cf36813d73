"""The steps every front end (CLI, sweeps, tests) composes.

description -> design -> circuit -> waveforms (one engine or both) -> files / comparison
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


from . import __version__
from .circuit.build import build_circuit
from .circuit.model import Circuit, Devices, Transient
from .compare import Comparison, compare_waveforms
from .description.loader import load_description
from .design import Design
from .devices.registry import load_models_dir
from .engines import simulate
from .outputs import clipping_summary, outputs_table
from .results import Waveforms, atomic_write_json, atomic_write_parquet


def load(description: str | Path, overrides: Mapping[str, str] | None = None,
         models_dir: str | Path | None = None, trust_python: bool = True) -> tuple[Design, Circuit]:
    """Parse, check and build a description (``overrides``: ``--set`` values).

    ``models_dir``: a user model directory; its Python twins are imported when
    ``trust_python`` (the caller named the directory itself), else only its ``.va``
    models load, with generated twins."""
    if models_dir is not None:
        load_models_dir(models_dir, trust_python=trust_python)
    design = load_description(description, overrides)
    return design, build_circuit(design)


def circuit_summary(circuit: Circuit) -> dict:
    n_dev = sum(g.n for g in circuit.groups_of(Devices))
    an = circuit.analysis
    return {
        "title": circuit.title,
        "source": circuit.source,
        "description_hash": circuit.options.get("digest", ""),
        "nodes": circuit.n_nodes - 1,
        "elements": sum(g.n for g in circuit.groups),
        "devices": n_dev,
        "rows": circuit.crossbar.rows if circuit.crossbar is not None else None,
        "cols": circuit.crossbar.cols if circuit.crossbar is not None else None,
        "analysis": {"kind": "tran", "tstop": an.tstop, "tstep": an.tstep} if isinstance(an, Transient) else {"kind": "op"},
        "signals": [p.name for p in circuit.probes if not p.internal] + [d.name for d in (circuit.crossbar.derived if circuit.crossbar is not None else ())],
        "circuitkit_version": __version__,
        "python": platform.python_version(),
    }


def write_results(circuit: Circuit, wf: Waveforms, out: Path) -> dict:
    """``waveforms.parquet``, ``outputs.parquet`` (crossbar reads), ``energy.parquet`` (when the energy
    probes were recorded, :func:`circuitkit.energy.record_energy`) and ``summary.json`` in ``out``."""
    from .energy import EnergyError, energy
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(out / "waveforms.parquet", wf.to_frame(exclude=[p.name for p in circuit.probes if p.internal]))
    table = outputs_table(circuit, wf)
    if len(table):
        atomic_write_parquet(out / "outputs.parquet", table)
    summary = circuit_summary(circuit)
    summary["adc_clipping"] = clipping_summary(table)
    try:
        en = energy(circuit, wf)
    except EnergyError as exc:
        summary["energy"] = {"recorded": False, "why": str(exc)}
    else:
        atomic_write_parquet(out / "energy.parquet", en.table)
        summary["energy"] = {"recorded": True, **en.summary()}
    summary.update(engine=wf.engine, wall_s=wf.wall_s, engine_meta=wf.meta, phases=[ph.as_dict() for ph in circuit.crossbar.phases] if circuit.crossbar is not None else [])
    atomic_write_json(out / "summary.json", summary)
    return summary


@dataclass
class CrossCheck:
    spice: Waveforms
    behavioural: Waveforms
    comparison: Comparison


def cross_check(circuit: Circuit, tolerance: float = 0.01, backend: str = "batch",
                workdir: Path | None = None) -> CrossCheck:
    """Run both engines on ``circuit`` and compare them."""
    spice = simulate(circuit, "spice", backend=backend, workdir=workdir)
    t0 = time.perf_counter()
    beh = simulate(circuit, "behavioural")
    beh.wall_s = beh.wall_s or time.perf_counter() - t0
    outs = (outputs_table(circuit, spice), outputs_table(circuit, beh))
    return CrossCheck(spice, beh, compare_waveforms(circuit, spice, beh, tolerance, outs))
