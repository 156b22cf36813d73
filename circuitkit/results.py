"""Simulation results, the same object from either engine.

:class:`Waveforms` holds the time axis (``None`` for an operating point) and
one array per recorded signal, keyed by the probe name the circuit model gave
it (e.g. ``v(a)``, ``i(dev)``, ``x(m1)``). Signals are 1-D over time for a
transient and 0-D (a single value) for an operating point.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

if TYPE_CHECKING:                    # pandas loads only where a frame is built (start-up time)
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

    def columns(self, exclude=()) -> dict[str, np.ndarray]:
        """One array per signal (but those in ``exclude``), after ``time`` for a transient."""
        data: dict[str, np.ndarray] = {}
        if self.time is not None:
            data["time"] = np.asarray(self.time)
        skip = set(exclude)
        for name, values in self.signals.items():
            if name not in skip:
                data[name] = np.atleast_1d(np.asarray(values))
        return data

    def to_frame(self, exclude=()) -> "pd.DataFrame":
        """:meth:`columns` as a pandas ``DataFrame``."""
        import pandas as pd
        return pd.DataFrame(self.columns(exclude))


def writable_file(path: Path) -> Path:
    """``path`` as a file to (over)write: refused, naming it, when it is a directory (the rename of the
    finished temporary file would fail only after the work, with the temporary's name)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    if path.exists() and not path.is_file():
        # a device, FIFO or socket (or a link to one): the finished file would be renamed over it --
        # as root, '-o /dev/null' replaced the device node with a netlist
        raise OSError(errno.EINVAL, "exists and is not a regular file (a device, FIFO or socket): "
                                    "refused as an output, it would be replaced", str(path))
    return path


def output_dir(path: Path) -> Path:
    """``path`` as a directory to create (or write into): refused, naming it, when it or a part of it is
    a file. Returns its nearest existing part (``path`` itself when it exists), where it would be created."""
    path = Path(path)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise (FileExistsError(errno.EEXIST, "File exists", str(path)) if probe == path
               else NotADirectoryError(errno.ENOTDIR, "Not a directory", str(path)))
    return probe


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers never see a partial file."""
    path = writable_file(path)
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


def _arrow_column(values):
    """A 1-D array (numbers, booleans or strings) as an Arrow array, built from its buffers: pyarrow's
    ``pa.array`` imports pandas to inspect its argument, half a second of start-up that writing
    a few columns does not need."""
    import pyarrow as pa
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"parquet columns are 1-D, got shape {a.shape}")
    if a.dtype.kind == "b":
        a = a.astype(np.uint8)
        return pa.Array.from_buffers(pa.bool_(), a.size, [None, pa.py_buffer(np.packbits(a, bitorder="little"))])
    if a.dtype.kind in "iuf":
        a = np.ascontiguousarray(a)
        return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), a.size, [None, pa.py_buffer(a)])
    if a.dtype.kind in "UO" and all(isinstance(v, str) for v in a.tolist()):
        parts = [v.encode() for v in a.tolist()]
        offsets = np.zeros(len(parts) + 1, np.int64)
        offsets[1:] = np.cumsum([len(b) for b in parts])
        return pa.Array.from_buffers(pa.large_string() if offsets[-1] > 2**31 - 1 else pa.string(), len(parts),
                                     [None, pa.py_buffer(offsets if offsets[-1] > 2**31 - 1
                                                         else offsets.astype(np.int32)), pa.py_buffer(b"".join(parts))])
    raise TypeError(f"cannot write a column of dtype {a.dtype} to parquet")


def atomic_write_parquet(path: Path, frame: "pd.DataFrame | Mapping[str, np.ndarray]") -> None:
    """Write a ``DataFrame``, or a mapping of column name to equal-length 1-D array (written through
    pyarrow alone, without loading pandas), so readers never see a partial file."""
    path = writable_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if isinstance(frame, Mapping):
            import pyarrow as pa
            import pyarrow.parquet as pq
            pq.write_table(pa.Table.from_arrays([_arrow_column(v) for v in frame.values()],
                                                names=[str(k) for k in frame]), tmp)
        else:
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
