"""What every SPICE-class simulator shares: compile, render, run, map vectors to probes."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..circuit.model import Circuit, Probe
from ..errors import SpiceError
from ..results import Waveforms


@dataclass
class SimRun:
    """Vectors of one run (lowercase raw-file names) and what the simulator said."""

    vectors: dict[str, np.ndarray]
    log: str
    warnings: list[str] = field(default_factory=list)
    backend: str = "batch"
    wall_s: float = 0.0
    version: str = ""


#: netlist bytes per element line and per PWL pair (measured: 60 B per element of a 512x512 deck), rounded up
NETLIST_BYTES_ELEMENT = 64
NETLIST_BYTES_POINT = 48
#: a simulator's resident memory: fixed part and per element, measured and rounded up
#: (ngspice 46 with KLU on DC crossbar reads: 131 MB at 16x16, 560 MB at 256x256 -> 2.2 kB per element;
#: VACASK 0.3.4: 41 MB at 64x64, 513 MB at 256x256 -> 2.4 kB per element)
SIM_FIXED_BYTES = 160 << 20
SIM_BYTES_ELEMENT = {"spice": 3000, "vacask": 3000}


def estimate_netlist_bytes(circuit: Circuit) -> int:
    """Upper estimate of the deck's size from the element and PWL point counts."""
    from ..circuit.model import VoltageSources
    n_el = sum(g.n for g in circuit.groups)
    points = 0
    for g in circuit.groups_of(VoltageSources):
        for wave in g.waveforms:
            points += len(getattr(wave, "times", ())) or 1
    return n_el * NETLIST_BYTES_ELEMENT + points * NETLIST_BYTES_POINT


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


def check_resources(circuit: Circuit, out_dir: Path, engine: str, run: bool) -> None:
    """Refuse, with the estimate, a deck that would not fit on disk or a run that would not fit in memory.

    Uses :mod:`circuitkit.limits` (configurable limits) when it is present, then checks the
    free space of ``out_dir`` and, for a run, the memory available now.
    """
    from ..errors import DescriptionError, Location
    try:
        from .. import limits
    except ImportError:
        limits = None
    if limits is not None and hasattr(limits, "check_circuit"):
        limits.check_circuit(circuit, "spice")
    where = Location(file=circuit.source, parameter="design")
    n_el = sum(g.n for g in circuit.groups)
    need = estimate_netlist_bytes(circuit)
    try:
        free = shutil.disk_usage(out_dir).free
    except OSError:
        free = None
    if free is not None and need > free:
        raise DescriptionError(f"too large: the netlist needs an estimated {_gb(need)} ({n_el:,} elements), "
                           f"{out_dir} has {_gb(free)} free", where)
    if run:
        mem = SIM_FIXED_BYTES + SIM_BYTES_ELEMENT.get(engine, 3000) * n_el
        avail = _mem_available()
        if avail is not None and mem > avail:
            raise DescriptionError(f"too large: {engine} would need an estimated {_gb(mem)} of memory for "
                               f"{n_el:,} elements, {_gb(avail)} is available; use the behavioural engine "
                               "or a smaller circuit", where)


class Simulator:
    """One simulator: a netlist dialect and a runner.

    Subclasses set :attr:`engine` (the engine name), :attr:`dialect`,
    :attr:`netlist_name`, and implement :meth:`run` and :meth:`vector`.
    """

    engine = ""
    label = ""
    dialect = ""
    netlist_name = "circuit.cir"

    # -- dialect ------------------------------------------------------------------
    def write_netlist(self, circuit: Circuit, path: Path, stage: Path | None = None) -> Path:
        """Render the deck to ``path`` atomically (models compiled as needed): never a partial file.

        A compiled model whose cache path cannot be written into a deck (a space
        in ``CIRCUITKIT_CACHE``, say: ngspice's ``pre_osdi`` takes no quotes) is
        copied into ``stage`` (default: ``<deck stem>_osdi/`` next to the deck).
        """
        from ..netlist.render import render_netlist
        from ..results import writable_file
        path = writable_file(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        check_resources(circuit, path.parent, self.engine, run=stage is not None)
        osdi = stage_osdi(compile_models(circuit), stage or path.with_name(f"{path.stem}_osdi"))
        tmp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # the umask decides, as for open()
        try:
            with os.fdopen(fd, "w", buffering=1 << 20) as fh:
                if self.dialect == "ngspice":         # the default dialect: the three-argument call
                    render_netlist(circuit, osdi, fh)
                else:
                    render_netlist(circuit, osdi, fh, self.dialect)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return path

    def vector(self, circuit: Circuit, probe: Probe) -> str:
        raise NotImplementedError

    # -- runner -------------------------------------------------------------------
    def run(self, netlist: Path, workdir: Path, timeout: float, **options) -> SimRun:
        raise NotImplementedError

    # -- both -------------------------------------------------------------------------
    def simulate(self, circuit: Circuit, workdir: Path | None = None, timeout: float = 3600.0,
                 **options) -> Waveforms:
        tmp = None
        if workdir is None:
            tmp = tempfile.TemporaryDirectory(prefix="circuitkit-")
            workdir = Path(tmp.name)
        stage = tempfile.TemporaryDirectory(prefix="circuitkit-osdi-")
        try:
            workdir = Path(workdir)
            t0 = time.perf_counter()
            netlist = self.write_netlist(circuit, workdir / self.netlist_name, stage=Path(stage.name))
            render_s = time.perf_counter() - t0
            run = self.run(netlist, workdir=workdir, timeout=timeout, **options)
            return self.waveforms(circuit, run, render_s)
        finally:
            stage.cleanup()
            if tmp is not None:
                tmp.cleanup()

    def waveforms(self, circuit: Circuit, run: SimRun, render_s: float = 0.0) -> Waveforms:
        signals = {}
        t = run.vectors.get("time")
        for probe in circuit.probes:
            name = self.vector(circuit, probe)
            if name not in run.vectors:
                raise SpiceError("failed", f"{self.label} did not return vector '{name}' for signal "
                                           f"'{probe.name}'", log=run.log)
            values = np.asarray(run.vectors[name], dtype=float) * probe.scale
            signals[probe.name] = values if t is not None else values.reshape(-1)[0]
        meta = {"render_s": render_s, "simulator": self.label, f"{self.label}_version": run.version,
                "backend": run.backend, "warnings": run.warnings[:20]}
        return Waveforms(self.engine, None if t is None else np.asarray(t, dtype=float), signals,
                         wall_s=run.wall_s, meta=meta)


def stage_osdi(osdi: dict[str, Path], stage: Path) -> dict[str, Path]:
    """``osdi`` with every path a deck cannot hold replaced by a copy in ``stage`` (created if needed)."""
    import shutil

    from ..netlist.safety import NetlistError, safe_path
    out = {}
    for name, path in osdi.items():
        try:
            safe_path(path, "OSDI file")
            out[name] = Path(path)
            continue
        except NetlistError:
            pass
        stage = Path(stage).resolve()
        target = stage / Path(path).name
        safe_path(target, f"staging copy of the OSDI file of model '{name}' (the cache path {path} cannot "
                          "be written into a deck; choose an output directory or CIRCUITKIT_CACHE without "
                          "spaces or special characters)")
        stage.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        out[name] = target
    return out


def compile_models(circuit: Circuit) -> dict[str, Path]:
    """Compile (or take from the cache) every Verilog-A model the circuit uses."""
    from ..spice.osdi import compile_all
    return compile_all([m.name for m in circuit.device_models()])
