"""The SPICE-class simulators behind the ``spice`` (ngspice) and ``vacask`` engines.

Each simulator is a netlist dialect (rendered from the same :class:`Circuit`
by :func:`circuitkit.netlist.render.render_netlist`) plus a runner (start the
simulator in a private working directory, read its raw file, turn a failure
into a typed :class:`~circuitkit.errors.SpiceError` carrying the simulator's
log). :class:`~circuitkit.simulators.base.Simulator` does the part they share:
compile the Verilog-A models (cached OSDI, loaded by both), render, run, map
the raw-file vectors back to probe names, return :class:`Waveforms`.
"""
from __future__ import annotations

from .base import SimRun, Simulator


def get_simulator(engine: str) -> Simulator:
    """The simulator of a SPICE engine name (``spice`` = ngspice, ``vacask``)."""
    if engine == "spice":
        from .ngspice import Ngspice
        return Ngspice()
    if engine == "vacask":
        from .vacask import Vacask
        return Vacask()
    from ..engines import SPICE_ENGINES
    raise ValueError(f"unknown SPICE engine '{engine}' (known: {', '.join(SPICE_ENGINES)})")


__all__ = ["SimRun", "Simulator", "get_simulator"]
