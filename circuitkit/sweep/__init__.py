"""Parameter sweeps: a TOML grid over a description's params, run in parallel, resumable.

``circuitkit sweep run SWEEP.toml`` expands the grid (:mod:`.grid`), checks
every point before anything runs (:mod:`.spec`, :mod:`.runner`), runs the
points on a process pool or Dask (:mod:`.executors`), records the metrics of
each (:mod:`.metrics`) as one atomic file per point and rebuilds one table
from them (:mod:`.store`); ``circuitkit plot`` and ``circuitkit table`` read it
(:mod:`.plot`).
"""
import importlib

#: public names and the submodule that defines each; imported on first use, so that
#: every ``circuitkit`` command (which registers the sweep subcommands) does not pay
#: for pandas and the runner at start-up
_EXPORTS = {
    "Point": "grid", "combine": "grid", "expand_values": "grid",
    "SweepReport": "runner", "run_point": "runner", "run_sweep": "runner",
    "METRICS": "spec", "SweepError": "spec", "SweepSpec": "spec", "load_spec": "spec",
    "PointStore": "store", "load_results": "store",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
