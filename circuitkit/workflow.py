"""The steps every front end (CLI, sweeps, tests) composes.

description -> design -> circuit -> waveforms (one engine or both) -> files / comparison
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


from . import __version__, limits
from .circuit.build import build_circuit
from .circuit.model import Circuit, Devices, Transient
from .compare import Comparison, compare_waveforms
from .description.loader import load_description
from .design import Design
from .devices.registry import load_models_dir
from .engines import simulate
from .outputs import clipping_summary, has_outputs, outputs_table
from .results import Waveforms, atomic_write_json, atomic_write_parquet


def load(description: str | Path, overrides: Mapping[str, str] | None = None,
         models_dir: str | Path | None = None, trust_python: bool = True,
         engines: str | tuple[str, ...] | None = None) -> tuple[Design, Circuit]:
    """Parse, check and build a description (``overrides``: ``--set`` values).

    ``models_dir``: a user model directory; its Python twins are imported when
    ``trust_python`` (the caller named the directory itself), else only its ``.va``
    models load, with generated twins. ``engines``: the engine(s) the circuit is for
    (``spice``, ``vacask``, ``behavioural``); the design's estimate is checked against
    their memory or netlist limits before the circuit is built (:func:`circuitkit.limits.check_design`),
    so a design too large for the engine is refused without building it first."""
    if models_dir is not None:
        load_models_dir(models_dir, trust_python=trust_python)
    design = load_description(description, overrides)
    for engine in (engines,) if isinstance(engines, str) else (engines or ()):
        limits.check_design(design, engine=engine)
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
    atomic_write_parquet(out / "waveforms.parquet", wf.columns(exclude=[p.name for p in circuit.probes if p.internal]))
    table = outputs_table(circuit, wf) if has_outputs(circuit, wf) else None
    if table is not None and len(table):
        atomic_write_parquet(out / "outputs.parquet", table)
    summary = circuit_summary(circuit)
    summary["adc_clipping"] = clipping_summary(table)
    try:
        en = energy(circuit, wf)
    except EnergyError as exc:
        summary["energy"] = {"recorded": False, "why": str(exc)}
    else:
        atomic_write_parquet(out / "energy.parquet", en.columns())
        summary["energy"] = {"recorded": True, **en.summary()}
    summary.update(engine=wf.engine, wall_s=wf.wall_s, engine_meta=wf.meta, phases=[ph.as_dict() for ph in circuit.crossbar.phases] if circuit.crossbar is not None else [])
    atomic_write_json(out / "summary.json", summary)
    return summary


@dataclass
class CrossCheck:
    """Waveforms of every engine run and the comparison of each against the reference (the first).

    ``spice``/``behavioural``/``comparison`` keep their meaning for the default
    pair: the first engine, the second engine, and their comparison.
    """

    waveforms: dict[str, Waveforms]
    comparisons: dict[str, Comparison]

    @property
    def engines(self) -> tuple[str, ...]:
        return tuple(self.waveforms)

    @property
    def reference(self) -> str:
        return self.engines[0]

    @property
    def spice(self) -> Waveforms:
        return self.waveforms[self.engines[0]]

    @property
    def behavioural(self) -> Waveforms:
        return self.waveforms[self.engines[1]]

    @property
    def comparison(self) -> Comparison:
        return next(iter(self.comparisons.values()))

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons.values())


def cross_check(circuit: Circuit, tolerance: float = 0.01, backend: str = "batch",
                workdir: Path | None = None, engines: tuple[str, ...] = ("spice", "behavioural")) -> CrossCheck:
    """Run ``engines`` (two or three of ``spice``, ``vacask``, ``behavioural``) on ``circuit``
    and compare every other engine with the first (the reference)."""
    from .engines import SPICE_ENGINES, check_engine
    engines = tuple(check_engine(e) for e in engines)
    if len(engines) < 2 or len(set(engines)) != len(engines):
        raise ValueError(f"cross_check needs two or three distinct engines, got {engines}")
    waves: dict[str, Waveforms] = {}
    for engine in engines:
        t0 = time.perf_counter()
        wd = None
        if workdir is not None and engine in SPICE_ENGINES:
            wd = Path(workdir) / engine if sum(e in SPICE_ENGINES for e in engines) > 1 else Path(workdir)
        wf = simulate(circuit, engine, backend=backend, workdir=wd)
        wf.wall_s = wf.wall_s or time.perf_counter() - t0
        waves[engine] = wf
    ref = engines[0]
    ref_out = outputs_table(circuit, waves[ref])
    comparisons = {}
    for engine in engines[1:]:
        outs = (ref_out, outputs_table(circuit, waves[engine]))
        comparisons[f"{ref}-{engine}"] = compare_waveforms(circuit, waves[ref], waves[engine], tolerance, outs)
    return CrossCheck(waves, comparisons)
