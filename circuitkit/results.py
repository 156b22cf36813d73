"""Simulation results, the same object from either engine.

:class:`Waveforms` holds the time axis (``None`` for an operating point) and
one array per recorded signal, keyed by the probe name the circuit model gave
it (e.g. ``v(a)``, ``i(dev)``, ``x(m1)``). Signals are 1-D over time for a
transient and 0-D (a single value) for an operating point.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Waveforms:
    engine: str                              # "spice" or "behavioural"
    time: np.ndarray | None                  # seconds; None for an operating point
    signals: dict[str, np.ndarray]
    wall_s: float = 0.0                      # simulation wall time (engine only)
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.signals[name]
        except KeyError:
            raise KeyError(f"no signal '{name}' (recorded: {', '.join(self.signals)})") from None

    def to_frame(self, exclude=()) -> pd.DataFrame:
        """One column per signal (but those in ``exclude``), plus ``time`` for a transient."""
        data: dict[str, np.ndarray] = {}
        if self.time is not None:
            data["time"] = np.asarray(self.time)
        skip = set(exclude)
        for name, values in self.signals.items():
            if name not in skip:
                data[name] = np.atleast_1d(np.asarray(values))
        return pd.DataFrame(data)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


def atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
