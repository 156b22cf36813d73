"""Parameter sweeps: a TOML grid over a description's params, run in parallel, resumable.

``circuitkit sweep run SWEEP.toml`` expands the grid (:mod:`.grid`), checks
every point before anything runs (:mod:`.spec`, :mod:`.runner`), runs the
points on a process pool or Dask (:mod:`.executors`), records the metrics of
each (:mod:`.metrics`) as one atomic file per point and rebuilds one table
from them (:mod:`.store`); ``circuitkit plot`` and ``circuitkit table`` read it
(:mod:`.plot`).
"""
from .grid import Point, combine, expand_values  # noqa: F401
from .runner import SweepReport, run_point, run_sweep  # noqa: F401
from .spec import METRICS, SweepError, SweepSpec, load_spec  # noqa: F401
from .store import PointStore, load_results  # noqa: F401
