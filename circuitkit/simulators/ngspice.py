"""ngspice: the classic SPICE deck (``netlist_templates/*.j2``), batch or shared-library runner."""
from __future__ import annotations

from pathlib import Path

from ..circuit.model import Circuit, Probe
from .base import SimRun, Simulator


class Ngspice(Simulator):
    engine = "spice"
    label = "ngspice"
    dialect = "ngspice"
    netlist_name = "circuit.cir"

    def vector(self, circuit: Circuit, probe: Probe) -> str:
        from ..netlist.render import spice_vector
        return spice_vector(circuit, probe)

    def run(self, netlist: Path, workdir: Path, timeout: float, backend: str = "batch", **_) -> SimRun:
        from ..spice.runner import run_netlist
        run = run_netlist(netlist, backend=backend, timeout=timeout, workdir=workdir)
        return SimRun(run.vectors, run.log, run.warnings, run.backend, run.wall_s, run.ngspice_version)

    def waveforms(self, circuit, run, render_s=0.0):
        wf = super().waveforms(circuit, run, render_s)
        wf.meta["ngspice_version"] = run.version
        return wf
