"""A sweep's results on disk: one file per finished point, one table rebuilt from them.

Layout of the output directory::

    DIR/sweep.json            what was asked: sweep file, grid (point -> key), versions
    DIR/points/<key>.json     one finished point (ok or failed), written atomically
    DIR/netlists/<key>/       netlist + ngspice log, when keep_netlists is set
    DIR/results.parquet       one row per finished point of the current grid
    DIR/results.csv           the same, on request

A point's key is a content hash of everything that decides its result (the
description, its data files, the models, the versions), so a point file is
also a cache entry. Each point file carries ``checksum``, the SHA-256 of its
own content (key and inputs' hash included); a file whose checksum does not
match (edited, truncated, written by an older version) is not trusted: it is
left out of the table and its point is run again. (A checksum guards against
damage and casual edits, not against someone who recomputes it.) A point
file is thus a cache entry: re-running a sweep skips every point whose
file exists, whichever run (or sweep) wrote it. Point files are written with
a unique temporary name and ``os.replace``, the table the same way under an
exclusive ``flock``, so a killed run leaves whole files only and parallel
runs (``make -j``) never interleave writes.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from ..errors import Location
from ..results import atomic_write_bytes, atomic_write_json, atomic_write_parquet
from .spec import SweepError

SCHEMA = 1
FIRST_COLUMNS = ("point",)
LAST_COLUMNS = ("status", "error", "engines", "run_s", "description_hash", "circuitkit_version",
                "ngspice_version", "key")


#: largest point record or manifest read back (a record is a few kB)
MAX_RECORD_BYTES = 16 << 20


def _read_json(path: Path):
    """A JSON file of the store, read as untrusted: a regular file of at most MAX_RECORD_BYTES (a FIFO or
    a link to /dev/zero is refused unopened); a missing or unreadable one raises ValueError (the callers
    treat both as missing: the point runs again)."""
    from ..description.safeio import read_bytes
    from ..errors import DescriptionError
    try:
        data = read_bytes(path, None, "sweep record", MAX_RECORD_BYTES)
    except DescriptionError as exc:
        raise ValueError(exc.message) from None
    return json.loads(data)


class PointStore:
    """The output directory of one sweep."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.points_dir = self.root / "points"
        self.rejected: set[str] = set()      # keys whose point file failed its checksum

    # -- set-up ------------------------------------------------------------------
    def prepare(self, where: Location | None = None) -> None:
        """Create the directory and prove it is writable (before anything runs)."""
        try:
            self.points_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.points_dir, prefix=".probe.", suffix=".tmp")
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise SweepError(f"output directory '{self.root}' is not writable: {reason}", where) from None
        if not os.access(self.points_dir, os.R_OK | os.X_OK):
            raise SweepError(f"output directory '{self.root}' is not readable", where)

    def netlist_dir(self, key: str) -> Path:
        return self.root / "netlists" / key

    # -- points ------------------------------------------------------------------
    def point_path(self, key: str) -> Path:
        return self.points_dir / f"{key}.json"

    def finished(self) -> dict[str, str]:
        """key -> status of every point file present."""
        out = {}
        for p in self.points_dir.glob("*.json"):
            rec = self.read_point(p.stem)
            if rec is not None:
                out[p.stem] = rec.get("status", "failed")
        return out

    def read_point(self, key: str) -> dict | None:
        """The record of point ``key``, or None when missing, unreadable or failing its checksum."""
        try:
            rec = _read_json(self.point_path(key))
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):
            return None
        if not (isinstance(rec, dict) and rec.get("key") == key):
            return None
        if rec.get("checksum") != checksum(rec):
            self.rejected.add(key)
            return None
        return rec

    def write_point(self, record: dict) -> Path:
        from ..results import _json_default
        path = self.point_path(record["key"])
        body = {k: v for k, v in record.items() if k != "checksum"}
        record = json.loads(json.dumps(body, default=_json_default))     # the checksum of what is read back
        record["checksum"] = checksum(record)
        atomic_write_json(path, record)
        return path

    # -- the table ---------------------------------------------------------------
    def write_manifest(self, manifest: dict) -> None:
        atomic_write_json(self.root / "sweep.json", {"schema": SCHEMA, **manifest})

    def manifest(self) -> dict | None:
        try:
            return _read_json(self.root / "sweep.json")
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):
            return None

    def _manifest_grid(self) -> list[dict]:
        """The grid recorded in ``sweep.json`` (none when there is no manifest), each entry checked: the
        manifest is read back from disk, so an edited or damaged one is a located error, not a traceback."""
        manifest = self.manifest()
        if manifest is None:
            return []
        where = Location(file=str(self.root / "sweep.json"), parameter="points")
        grid = manifest.get("points", []) if isinstance(manifest, dict) else None
        if not isinstance(grid, list):
            raise SweepError("the sweep manifest is damaged: 'points' is not a list of points; run the sweep "
                             "again to rewrite it", where)
        for n, entry in enumerate(grid):
            if not (isinstance(entry, dict) and isinstance(entry.get("key"), str)
                    and isinstance(entry.get("index"), int) and not isinstance(entry.get("index"), bool)
                    and isinstance(entry.get("params", {}), (dict, type(None)))):
                raise SweepError(f"the sweep manifest is damaged: entry {n} of 'points' is not a point "
                                 "(index, key, params); run the sweep again to rewrite it", where)
        return grid

    @contextmanager
    def lock(self) -> Iterator[None]:
        with open(self.root / ".results.lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def table(self, grid: list[dict] | None = None) -> pd.DataFrame:
        """One row per finished point of ``grid`` (the manifest's grid by default), in grid order."""
        order = None
        if grid is None:
            grid = self._manifest_grid()
            manifest = self.manifest()
            names = manifest.get("parameters") if isinstance(manifest, dict) else None
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                order = names               # the sweep file's order (the manifest's point params are sorted)
        rows = []
        for entry in grid:
            rec = self.read_point(entry["key"])
            if rec is not None:
                rows.append(flatten(rec, entry["index"], entry.get("params")))
        frame = pd.DataFrame(rows)
        if not len(frame):
            return frame
        params = list((grid[0].get("params") or {}).keys()) if grid else []
        if order is not None and sorted(order) == sorted(params):
            params = order
        metric_cols = sorted(c for c in frame.columns
                             if c not in params and c not in FIRST_COLUMNS and c not in LAST_COLUMNS)
        order = [c for c in (*FIRST_COLUMNS, *params, *metric_cols, *LAST_COLUMNS) if c in frame.columns]
        frame = frame[order]
        for c in params:          # a column mixing numbers and words is stored as text
            kinds = {type(v) for v in frame[c] if v is not None}
            if str in kinds and len(kinds) > 1:
                frame[c] = frame[c].map(lambda v: None if v is None else str(v))
        return frame

    def rebuild(self, grid: list[dict] | None = None, csv: bool = False) -> pd.DataFrame:
        """Rewrite ``results.parquet`` (and ``results.csv``) atomically from the point files."""
        with self.lock():
            frame = self.table(grid)
            atomic_write_parquet(self.root / "results.parquet", frame)
            if csv:
                atomic_write_bytes(self.root / "results.csv", frame.to_csv(index=False).encode())
        return frame


def checksum(record: dict) -> str:
    """SHA-256 of a point record without its ``checksum`` field (canonical JSON: sorted keys)."""
    import hashlib
    body = {k: v for k, v in record.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def flatten(record: dict, index: int, params: dict | None = None) -> dict:
    """A point record as one table row: parameters, metrics, status and provenance."""
    row = {"point": int(index)}
    row.update(params if params is not None else record.get("params", {}))
    row.update(record.get("metrics", {}))
    row.update(status=record.get("status", "failed"), error=record.get("error") or "",
               engines=",".join(record.get("engines", [])), run_s=record.get("run_s"),
               description_hash=record.get("description_hash", ""),
               circuitkit_version=record.get("circuitkit_version", ""),
               ngspice_version=record.get("ngspice_version") or "", key=record["key"])
    return row


def load_results(root: str | Path) -> pd.DataFrame:
    """The results table of a sweep directory (rebuilt from the points if the table is missing)."""
    store = PointStore(root)
    path = store.root / "results.parquet"
    manifest = store.manifest() if path.is_file() else None
    if (path.is_file() and isinstance(manifest, dict) and isinstance(manifest.get("points"), list)
            and manifest["points"] and _stale(path, store)):
        try:
            return store.table()      # a run started or finished points since (killed before its rebuild)
        except SweepError:            # a damaged manifest: the table as last written
            pass
    if path.is_file():
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 -- truncated, edited or not Parquet at all
            raise SweepError(f"results table '{path}' is unreadable ({type(exc).__name__}); the point files "
                             "are kept: run the sweep again to rebuild it", Location(file=str(path))) from None
    if store.manifest() is not None:
        return store.table()
    raise SweepError(f"'{root}' holds no sweep results (no results.parquet or sweep.json); "
                     "run 'circuitkit sweep run SWEEP.toml --out DIR' first", Location(file=str(root)))


def _stale(table: Path, store: PointStore) -> bool:
    """Whether the table predates the manifest (a run started since) or a point file (one finished since): the
    table is rebuilt every 30 s and at the end, so after a ``kill -9`` it still shows the earlier grid."""
    try:
        t = table.stat().st_mtime_ns
        return any(p.exists() and p.stat().st_mtime_ns > t for p in (store.root / "sweep.json", store.points_dir))
    except OSError:
        return False
