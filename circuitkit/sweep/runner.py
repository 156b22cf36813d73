"""Run a sweep: check every point, skip the finished ones, run the rest, record each as it ends.

1. :func:`prepare` loads the description once per grid point (``--set``
   style overrides), so a bad value stops the sweep before anything runs,
   with the sweep file's line of the parameter to blame; it also computes
   each point's key (see :func:`point_key`).
2. Points whose file exists in ``OUT/points`` are skipped (failed ones too,
   unless ``retry_failed``).
3. The rest go to an executor; :func:`run_point` runs one point in a worker
   and never raises: an engine failure is recorded with its message and the
   other engine's metrics are kept.
4. Each result is written atomically as it arrives; the table is rebuilt
   every half minute and at the end (also after Ctrl-C).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
import re
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import __version__
from ..engines import SPICE_ENGINES, simulate
from ..errors import CircuitkitError, Location
from ..workflow import load
from .executors import Guard, PointCrash, run_tasks
from .grid import Point
from .metrics import add_metric_probes, applicable_metrics, cross_metrics, engine_metrics
from .spec import SweepError, SweepSpec, load_spec
from .store import PointStore

KEY_SCHEMA = "circuitkit-sweep-point/1"
CHANGED = "changed"          # status of a point not run: its description changed after the keys were computed
REBUILD_EVERY_S = 30.0
_QUOTED_OR_COMMENT = re.compile(r'"([^"\n\\]*)"|#[^\n]*')


# -- versions and keys -----------------------------------------------------------

def tool_versions(engines: tuple[str, ...]) -> dict[str, str | None]:
    """circuitkit's version and ngspice's (``None`` when ngspice is not installed)."""
    ng = None
    try:
        from ..spice.toolchain import ngspice_version
        ng = str(ngspice_version())
    except Exception as exc:  # noqa: BLE001
        if "spice" in engines:
            raise SweepError(f"engine 'spice' needs ngspice: {exc}") from None
    out = {"circuitkit": __version__, "ngspice": ng}
    if "vacask" in engines:
        try:
            from ..spice.toolchain import find_vacask, vacask_version
            find_vacask()
            out["vacask"] = vacask_version()
        except Exception as exc:  # noqa: BLE001
            raise SweepError(f"engine 'vacask' needs VACASK: {exc}") from None
    return out


_DIGEST_MAX_BYTES = 1 << 30        # a data file larger than this is hashed by size and time, not content
_DIGEST_TOTAL_BYTES = 4 << 30      # content hashed per description; files beyond it by size and time
_MODEL_SUFFIXES = (".va", ".py", ".npy", ".csv", ".txt", ".json", ".toml")


def _file_digest(path: Path, h, budget: list[int] | None = None) -> None:
    """Hash a regular file (never a device or FIFO: opened without blocking, checked on the open file),
    or a models directory's own model files (not a tree walk). ``budget`` ([bytes left]) bounds the content
    hashed; a file beyond it, or beyond ``_DIGEST_MAX_BYTES``, is hashed by size and modification time."""
    import stat as _stat
    try:
        st = path.stat()
    except (OSError, ValueError):
        return
    if _stat.S_ISREG(st.st_mode):
        h.update(f"\0{path.name}\0".encode())
        if st.st_size > _DIGEST_MAX_BYTES or (budget is not None and st.st_size > budget[0]):
            h.update(f"size={st.st_size} mtime={st.st_mtime_ns}".encode())
            return
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return
        try:
            if not _stat.S_ISREG(os.fstat(fd).st_mode):       # replaced by a FIFO or device since the stat
                return
            left = st.st_size
            while left > 0:                                    # never past the size seen (a growing file)
                chunk = os.read(fd, min(1 << 20, left))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
            if budget is not None:
                budget[0] -= st.st_size
        except OSError:
            pass
        finally:
            os.close(fd)
    elif _stat.S_ISDIR(st.st_mode):
        try:
            entries = sorted(p for p in path.iterdir() if p.suffix in _MODEL_SUFFIXES)[:1000]
        except OSError:
            return
        for p in entries:
            if p.is_file():
                h.update(f"\0{p.name}\0".encode())
                _file_digest(p, h, budget)


def _quoted_names(text: str) -> list[tuple[str, bool]]:
    """(name, on a ``models`` line) of every quoted string outside comments."""
    out = []
    for line in text.splitlines():
        is_models = line.lstrip().startswith("models")
        for m in _QUOTED_OR_COMMENT.finditer(line):
            if m.group(1) is None:             # a comment: the rest of the line
                break
            if m.group(1):
                out.append((m.group(1), is_models))
    return out


def inputs_digest(description: Path, overrides: dict[str, str]) -> str:
    """Hash of the files a description reads besides itself: data files, included files, models.

    Found as quoted names in the description text outside comments (and string overrides),
    resolved relative to the description; the parser's own digest covers the description text,
    its includes and the overrides. Only what the loader could read is hashed: ``.xbar`` files
    through :func:`safeio.read_text` (regular files within the description size limit, at most
    ``limits.MAX_FILES`` of them), data files (``.npy``, ``.csv``, ``.txt``) within the data size
    limit, models directories; at most ``_DIGEST_TOTAL_BYTES`` of content in all.
    """
    from .. import limits
    from ..description import safeio
    h = hashlib.sha256()
    seen: set[Path] = set()
    todo = [description.resolve()]
    budget = [_DIGEST_TOTAL_BYTES]
    texts = 0
    read: dict[Path, str] = {}

    def xbar_text(p: Path) -> str | None:
        if p not in read:
            try:
                read[p] = safeio.read_text(p, None)
            except CircuitkitError:      # the loader refuses it too (not regular, too large, not UTF-8)
                read[p] = None
        return read[p]

    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        if texts >= limits.MAX_FILES + 1:
            break
        texts += 1
        text = xbar_text(f)
        if text is None:
            continue
        names = _quoted_names(text)
        names += [(v.strip('"'), False) for v in overrides.values() if '"' in v]
        for name, is_models in names:
            try:      # every path is relative to the file that names it, as the loader reads it
                p = (f.parent / name).resolve() if not Path(name).is_absolute() else Path(name)
                if p in seen or not (p.is_file() or (is_models and p.is_dir())):
                    continue
            except (OSError, ValueError):
                continue
            if p.suffix == ".xbar":
                inc = xbar_text(p)
                if inc is not None:
                    h.update(f"\0{p.name}\0".encode() + inc.encode())
                    todo.append(p)
                continue
            seen.add(p)
            if is_models or p.suffix.lower() in safeio.DATA_SUFFIXES:
                try:
                    if p.is_file() and p.stat().st_size > limits.MAX_DATA_BYTES:
                        continue                 # refused by the loader: cannot change a result
                except OSError:
                    continue
                _file_digest(p, h, budget)
    return h.hexdigest()


def models_digest(circuit) -> str:
    """Hash of the Verilog-A file and Python twin of every device model the circuit uses."""
    h = hashlib.sha256()
    for m in circuit.device_models():
        h.update(f"\0model {m.name}\0".encode())
        for getter in (lambda: Path(m.va_file()), lambda: Path(inspect.getsourcefile(m) or "")):
            try:
                _file_digest(getter(), h)
            except (OSError, TypeError, ValueError, AttributeError):
                pass
    return h.hexdigest()


def point_key(spec: SweepSpec, description_hash: str, inputs: str, models: str, versions: dict) -> str:
    """Content hash of everything that decides a point's results (first 24 hex digits)."""
    payload = {
        "schema": KEY_SCHEMA,
        "description": description_hash,           # description text + includes + overrides
        "inputs": inputs,                          # data files it reads
        "models": models,                          # device model sources
        "engines": list(spec.engines),
        "metrics": list(spec.metrics) if spec.metrics else "auto",
        "tolerance": spec.tolerance if "spice" in spec.engines and len(spec.engines) > 1 else None,
        "backend": spec.backend if "spice" in spec.engines else None,
        "circuitkit": versions["circuitkit"],
        "ngspice": versions["ngspice"] if "spice" in spec.engines else None,
    }
    if "vacask" in spec.engines:        # only then, so keys of existing sweeps stay valid
        payload["vacask"] = versions.get("vacask")
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


# -- preparing ------------------------------------------------------------------------

@dataclass
class PreparedPoint:
    point: Point
    key: str
    description_hash: str
    inputs: str = ""          # digest of the data files, models directories and includes it reads


def _text_overrides(overrides: dict[str, str]) -> dict[str, str]:
    """The overrides that name files (quoted values), sorted: what :func:`inputs_digest` reads, in one order."""
    return dict(sorted((k, v) for k, v in overrides.items() if '"' in v))


def prepare(spec: SweepSpec, versions: dict) -> list[PreparedPoint]:
    """Load every point (errors name the sweep line to blame) and compute its key."""
    inputs_cache: dict[str, str] = {}
    models_cache: dict[tuple, str] = {}
    out = []
    for point in spec.points:
        overrides = point.overrides()
        try:
            _, circuit = load(spec.description, overrides, spec.models_dir, trust_python=False)
        except (CircuitkitError, ValueError) as exc:
            raise _blame(spec, point, exc) from None
        text_over = _text_overrides(overrides)
        ikey = repr(text_over)
        if ikey not in inputs_cache:
            inputs_cache[ikey] = inputs_digest(spec.description, text_over)
        mkey = tuple(m.name for m in circuit.device_models())
        if mkey not in models_cache:
            models_cache[mkey] = models_digest(circuit)
        digest = circuit.options.get("digest", "")
        out.append(PreparedPoint(point, point_key(spec, digest, inputs_cache[ikey], models_cache[mkey], versions),
                                 digest, inputs_cache[ikey]))
    return out


def _blame(spec: SweepSpec, point: Point, exc: Exception) -> SweepError:
    """The sweep error for a point that does not load: which parameter's line, and why."""
    values = ", ".join(f"{k}={v!r}" for k, v in point.params.items())
    culprit = None
    for name, value in point.overrides().items():
        try:
            load(spec.description, {name: value}, spec.models_dir, trust_python=False)
        except (CircuitkitError, ValueError):
            culprit = name
            break
    if culprit is None:
        culprit = next(iter(point.params))
        how = f"the combination {values} is invalid"
    else:
        how = f"{culprit} = {point.params[culprit]!r} is invalid"
    return SweepError(f"{how} (grid point {point.index}): {exc}", spec.param_location(culprit))


# -- one point ------------------------------------------------------------------------

def run_point(task: dict) -> dict:
    """Simulate one point in each engine and compute its metrics; never raises."""
    start = time.perf_counter()
    old_tmp = tempfile.tempdir
    if task.get("tmp_root") and os.path.isdir(task["tmp_root"]):
        tempfile.tempdir = task["tmp_root"]       # scratch files in the sweep's private directory
    try:
        return _run_point(task, start)
    finally:
        tempfile.tempdir = old_tmp


def _run_point(task: dict, start: float) -> dict:
    record = {
        "key": task["key"], "index": task["index"], "params": task["params"], "overrides": task["overrides"],
        "engines": list(task["engines"]), "status": "ok", "error": "", "metrics": {},
        "description": task["description"], "description_hash": task.get("description_hash", ""),
        "circuitkit_version": task["versions"]["circuitkit"], "ngspice_version": task["versions"]["ngspice"],
        "host": socket.gethostname(), "pid": os.getpid(), "python": platform.python_version(),
    }
    errors = []
    try:
        _, circuit = load(task["description"], task["overrides"], task.get("models_dir"), trust_python=False)
        digest = circuit.options.get("digest", record["description_hash"])
        if task.get("description_hash") and digest != task["description_hash"]:
            # edited since the sweep computed this point's key: a result under that key would be another
            # description's (and reused as the old one's if the edit is undone)
            record.update(status=CHANGED, error="the description or an included file changed during the sweep")
            return record
        if task.get("inputs_digest"):         # likewise a data file it read (hashed after the load: what it used)
            now = inputs_digest(Path(task["description"]), _text_overrides(task["overrides"]))
            if now != task["inputs_digest"]:
                record.update(status=CHANGED, error="a data file of the description changed during the sweep")
                return record
        record["description_hash"] = digest
        metrics = tuple(task["metrics"] or applicable_metrics(circuit, tuple(task["engines"])))
        record["metric_groups"] = list(metrics)
        add_metric_probes(circuit, metrics)
        waves = {}
        for engine in task["engines"]:
            t0 = time.perf_counter()
            try:
                workdir = None
                if engine in SPICE_ENGINES and task.get("netlist_dir"):
                    workdir = Path(task["netlist_dir"]) / ("" if engine == "spice" else engine)
                    workdir.mkdir(parents=True, exist_ok=True)
                wf = simulate(circuit, engine, workdir=workdir, backend=task.get("backend", "batch"),
                              timeout=task.get("timeout", 3600.0))
                run_s = time.perf_counter() - t0
                values = engine_metrics(circuit, wf, metrics)
                if "wall_time" in metrics:
                    values["run_s"] = run_s
                record["metrics"].update({f"{k}_{engine}": v for k, v in values.items()})
                waves[engine] = wf
            except Exception as exc:  # noqa: BLE001 - a failed engine is recorded, not fatal
                errors.append(f"{engine}: {_message(exc)}")
        if "cross_check" in metrics and len(waves) >= 2:
            ref, other = list(waves)[:2]            # engines come in ENGINES order: the reference first
            record["metrics"].update(cross_metrics(circuit, waves[ref], waves[other],
                                                   task.get("tolerance", 0.01)))
    except Exception as exc:  # noqa: BLE001
        errors.append(_message(exc))
    if errors:
        record["status"] = "failed"
        record["error"] = "; ".join(errors)[:4000]
    record["run_s"] = time.perf_counter() - start
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return record


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, CircuitkitError) else f"{type(exc).__name__}: {text}"


# -- the sweep ------------------------------------------------------------------------

@dataclass
class SweepReport:
    out: Path
    total: int             # grid points
    skipped: int           # already finished before this run
    computed: int          # finished in this run
    failed: int            # failed in this run
    failed_total: int      # failed points in the table
    table: pd.DataFrame
    changed: int = 0       # not run: the description changed during the run

    def summary(self) -> str:
        text = (f"{self.total} points: {self.skipped} already done, {self.computed} run now "
                f"({self.failed} failed); {self.failed_total} failed in total -> {self.out / 'results.parquet'}")
        if self.changed:
            text += (f"; {self.changed} not run: the description changed during the sweep (run it again to "
                     "compute them for the description as it is now)")
        return text


def default_out(spec: SweepSpec) -> Path:
    return Path("results") / "sweeps" / spec.name


def run_sweep(sweep: str | Path | SweepSpec, out: str | Path | None = None, *, workers: int | None = None,
              executor: str = "process", scheduler: str | None = None, retry_failed: bool = False,
              csv: bool = False, progress: bool = True, limit: int | None = None,
              worker_timeout: float | None = None) -> SweepReport:
    """Run (or resume) a sweep; returns counts and the table. ``limit`` caps the points run now;
    ``worker_timeout`` (s) ends a Dask run whose cluster has no worker (default ``CIRCUITKIT_WORKER_TIMEOUT``)."""
    spec = sweep if isinstance(sweep, SweepSpec) else load_spec(sweep)
    out = Path(out) if out is not None else default_out(spec)
    store = PointStore(out)
    store.prepare(Location(file=str(spec.path)))
    if workers is not None and workers < 1:
        raise SweepError(f"--workers must be >= 1, got {workers}")
    if executor not in ("process", "dask"):
        raise SweepError(f"unknown executor '{executor}' (known: process, dask)")
    try:
        versions = tool_versions(spec.engines)
    except SweepError as exc:
        raise SweepError(exc.message, spec.location("engines")) from None
    prepared = prepare(spec, versions)

    grid = [{"index": p.point.index, "key": p.key, "params": p.point.params} for p in prepared]
    store.write_manifest({"name": spec.name, "sweep_file": str(spec.path.resolve()),
                          "sweep_sha256": hashlib.sha256(spec.text.encode()).hexdigest(),
                          "description": str(spec.description.resolve()), "engines": list(spec.engines),
                          "metrics": list(spec.metrics) if spec.metrics else None,
                          "parameters": list(spec.parameters), "versions": versions, "points": grid})

    done = store.finished()
    if store.rejected and progress:
        import sys
        print(f"{spec.name}: {len(store.rejected)} point file(s) failed their checksum and are run again",
              file=sys.stderr)
    todo, skipped = [], 0
    seen_keys: set[str] = set()
    for p in prepared:
        status = done.get(p.key)
        if p.key in seen_keys or (status is not None and (status == "ok" or not retry_failed)):
            skipped += 1
            continue
        seen_keys.add(p.key)
        todo.append(p)
    if limit is not None:
        todo = todo[:max(0, limit)]
    guard = Guard()
    tasks = [_task(spec, p, versions, store) for p in todo]

    n_workers = workers or os.cpu_count() or 1
    n_workers = max(1, min(n_workers, len(tasks) or 1))
    computed = failed = changed = 0
    bar = _progress(len(tasks), spec.name, skipped, len(prepared), progress)
    last = time.monotonic()
    try:
        guard.__enter__()
        for task in tasks:
            task["tmp_root"] = guard.root
        for task, result in run_tasks(run_point, tasks, executor, n_workers, scheduler, worker_timeout):
            if isinstance(result, PointCrash):
                result = _crash_record(task, result.message)
            if result.get("status") == CHANGED:
                changed += 1                  # not recorded: the next run computes it under its new key
                if bar is not None:
                    bar.update(1)
                continue
            store.write_point(result)
            computed += 1
            failed += result["status"] != "ok"
            if bar is not None:
                bar.set_postfix_str(f"failed {failed}", refresh=False)
                bar.update(1)
            if time.monotonic() - last > REBUILD_EVERY_S:
                store.rebuild(grid)
                last = time.monotonic()
    except BaseException:
        guard.__exit__(*__import__("sys").exc_info())
        raise
    else:
        guard.__exit__(None, None, None)
    finally:
        if bar is not None:
            bar.close()
        frame = store.rebuild(grid, csv=csv)
    failed_total = int((frame["status"] != "ok").sum()) if len(frame) else 0
    return SweepReport(out, len(prepared), skipped, computed, failed, failed_total, frame, changed)


def _task(spec: SweepSpec, p: PreparedPoint, versions: dict, store: PointStore) -> dict:
    return {"index": p.point.index, "key": p.key, "params": p.point.params, "overrides": p.point.overrides(),
            "description": str(spec.description.resolve()), "description_hash": p.description_hash,
            "inputs_digest": p.inputs,
            "engines": list(spec.engines), "metrics": list(spec.metrics) if spec.metrics else None,
            "tolerance": spec.tolerance, "timeout": spec.timeout, "backend": spec.backend,
            "netlist_dir": str(store.netlist_dir(p.key).resolve()) if spec.keep_netlists else None,
            "models_dir": str(spec.models_dir) if spec.models_dir else None, "versions": versions}


def _crash_record(task: dict, message: str) -> dict:
    return {"key": task["key"], "index": task["index"], "params": task["params"], "overrides": task["overrides"],
            "engines": task["engines"], "status": "failed", "error": f"worker crashed: {message}"[:4000],
            "metrics": {}, "description": task["description"], "description_hash": task["description_hash"],
            "circuitkit_version": task["versions"]["circuitkit"], "ngspice_version": task["versions"]["ngspice"],
            "run_s": None}


def _progress(total: int, name: str, skipped: int, grid: int, enabled: bool):
    if not enabled or total == 0:
        if enabled:
            import sys
            print(f"{name}: all {grid} points already done", file=sys.stderr)
        return None
    import sys
    from tqdm import tqdm
    tqdm.monitor_interval = 0          # no monitor thread (workers start from a forkserver anyway)
    if skipped:
        print(f"{name}: {skipped} of {grid} points already done", file=sys.stderr)
    bar = tqdm(total=total, desc=name, unit="point", dynamic_ncols=True, file=sys.stderr,
               bar_format="{desc}: {n_fmt}/{total_fmt} points |{bar}| "
                          "[{elapsed} elapsed, {remaining} left{postfix}]")
    bar.set_postfix_str("failed 0")
    return bar
