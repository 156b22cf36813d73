"""Run an ngspice netlist and return its vectors, or a :class:`SpiceError` saying why not.

Netlist contract (written by ``circuitkit/netlist/render.py``): an ordinary
ngspice deck whose ``.control`` block loads the compiled models with
``pre_osdi <absolute path>``, then ``run`` and ``write circuitkit.raw``; the
raw file appears in ngspice's working directory.

ngspice always runs with ``-n`` (no ``spinit``/``.spiceinit``: an init file
planted next to a description or in the output directory never runs) in a
private temporary working directory (removed afterwards), never in the
output directory; its log is kept as ``ngspice.log`` in ``workdir``.

Two backends give the same :class:`SpiceRun`:

* ``batch`` runs ``ngspice -n -b <netlist>`` in its own process group (killed
  whole on timeout), keeps stdout+stderr as the log and parses ``circuitkit.raw``.
* ``shared`` (:mod:`circuitkit.spice.shared`) runs the deck in libngspice
  through PySpice, in a long-lived child Python process (its own private
  directory, HOME pointed there too), so a crash of ngspice (e.g. SIGBUS) is
  a :class:`SpiceError`, not a dead interpreter.

Success or failure is decided from the log's content, not from whether
ngspice wrote to stderr (it writes warnings and notes there too): a run fails
when ngspice says an error happened or aborted, exits non-zero, or leaves no
results. The failure's ``kind`` comes from the log (:func:`classify`); a
``timestep`` error also carries ``time``, the simulation time ngspice gave up
at (None when it did not print one).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SpiceError
from .rawfile import RawFileError, read_vectors
from .toolchain import find_ngspice, ngspice_version

RAW_NAME = "circuitkit.raw"
LOG_NAME = "ngspice.log"
BACKENDS = ("batch", "shared")
CONTEXT_LINES = 2
MAX_WARNINGS = 200


@dataclass
class SpiceRun:
    """Vectors (normalised names, see :func:`rawfile.normalise_name`) and what ngspice said."""

    vectors: dict[str, np.ndarray]
    log: str
    warnings: list[str] = field(default_factory=list)
    backend: str = "batch"
    wall_s: float = 0.0
    ngspice_version: str = ""


def run_netlist(netlist: Path, backend: str = "batch", timeout: float = 3600.0,
                workdir: Path | None = None) -> SpiceRun:
    """Run ``netlist`` with the chosen backend; raise :class:`SpiceError` on failure."""
    netlist = Path(netlist).resolve()
    if not netlist.is_file():
        raise SpiceError("failed", f"netlist not found: {netlist}", netlist=netlist)
    workdir = Path(workdir).resolve() if workdir is not None else netlist.parent
    workdir.mkdir(parents=True, exist_ok=True)
    if backend == "batch":
        return run_batch(netlist, timeout=timeout, workdir=workdir)
    if backend == "shared":
        from .shared import run_shared_isolated
        return run_shared_isolated(netlist, timeout=timeout, workdir=workdir)
    raise ValueError(f"unknown ngspice backend '{backend}' (known: {', '.join(BACKENDS)})")


def private_dir(kind: str = "ngspice") -> Path:
    """A fresh private (mode 0700) working directory for one simulator run."""
    return Path(tempfile.mkdtemp(prefix=f"circuitkit-{kind}-"))


def run_batch(netlist: Path, timeout: float, workdir: Path) -> SpiceRun:
    """``ngspice -n -b netlist`` in a private directory; parse its ``circuitkit.raw``; log to ``workdir``."""
    exe = find_ngspice()
    private = private_dir()
    try:
        return _run_batch(exe, netlist, timeout, workdir, private)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _run_batch(exe: Path, netlist: Path, timeout: float, workdir: Path, private: Path) -> SpiceRun:
    raw = private / RAW_NAME
    env = dict(os.environ, LC_ALL="C", LANG="C", HOME=str(private))
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen([str(exe), "-n", "-b", str(netlist)], cwd=private, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as exc:
        raise SpiceError("failed", f"cannot start ngspice ({exe}): {exc}", netlist=netlist) from None
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException as exc:  # timeout, or Ctrl-C / cancellation: never leave ngspice running
        _kill_group(proc)
        if not isinstance(exc, subprocess.TimeoutExpired):
            proc.wait()
            raise
        out, _ = proc.communicate()
        log = _decode(out)
        _save_log(workdir, log)
        raise SpiceError("timeout", f"ngspice did not finish within {timeout:g} s",
                         log.splitlines()[-10:], log=log, netlist=netlist) from None
    wall = time.perf_counter() - t0
    log = _decode(out)
    _save_log(workdir, log)

    vectors: dict[str, np.ndarray] | None = None
    if raw.is_file():
        try:
            vectors = read_vectors(raw)
        except RawFileError as exc:
            log += f"\n{exc}"
    check_log(log, netlist, returncode=proc.returncode, have_results=bool(vectors))
    return SpiceRun(vectors=vectors or {}, log=log, warnings=find_warnings(log), backend="batch",
                    wall_s=wall, ngspice_version=str(ngspice_version()))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the process group we started (start_new_session)
    except ProcessLookupError:
        pass


def _decode(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def _save_log(workdir: Path, log: str, name: str = LOG_NAME) -> None:
    try:
        (workdir / name).write_text(log)
    except OSError:
        pass


# --------------------------------------------------------------------------- log analysis

#: lines that say a run went wrong (a warning alone never fails a run)
_FATAL = [re.compile(p, re.I) for p in (
    r"^\s*error\b", r"simulation\(s\) aborted", r"simulation interrupted", r"run simulation not started",
    r"cannot recover", r"timestep too small", r"no simulations run", r"internal error",
)]

#: failure kinds, most specific first, with the log lines that identify them
KIND_PATTERNS: list[tuple[str, list[re.Pattern]]] = [
    ("model_load", [re.compile(p, re.I) for p in (
        r"error opening osdi", r"couldn'?t be loaded", r"\bosdi\b.*(fail|invalid|not found|no such)",
        r"pre_osdi.*no such command", r"^\s*osdi:.*no such command")]),
    ("unknown_device", [re.compile(p, re.I) for p in (
        r"unknown device", r"could not find a valid modelname", r"unable to find definition of model",
        r"can'?t find model", r"unknown model type")]),
    ("syntax", [re.compile(p, re.I) for p in (
        r"syntax error", r"is not a valid .* line", r"error on line", r"unknown subckt",
        r"too few (nodes|parameters)", r"unknown parameter", r"unrecognized", r"no such command",
        r"missing \.end", r"unbalanced")]),
    ("convergence", [re.compile(p, re.I) for p in (
        r"no convergence", r"singular matrix", r"iteration limit", r"too many iterations",
        r"operating point could not", r"dc solution failed", r"transient op failed")]),
    ("timestep", [re.compile(p, re.I) for p in (r"timestep too small",)]),
]

_TIME = re.compile(r"\btime\s*=\s*([-+0-9.eE]+)")
_WARNING = re.compile(r"^\s*warning\b", re.I)


def find_warnings(log: str) -> list[str]:
    """ngspice's warning lines, in order (at most MAX_WARNINGS)."""
    return [line.strip() for line in log.splitlines() if _WARNING.match(line)][:MAX_WARNINGS]


def classify(log: str) -> tuple[str, list[int]]:
    """Failure kind and the indices of the log lines that show it (``failed`` and [] if none match)."""
    lines = log.splitlines()
    for kind, patterns in KIND_PATTERNS:
        hits = [k for k, line in enumerate(lines) if any(p.search(line) for p in patterns)]
        if hits:
            return kind, hits
    return "failed", [k for k, line in enumerate(lines) if any(p.search(line) for p in _FATAL)]


def failure_time(log: str) -> float | None:
    """Simulation time of a 'timestep too small' failure, when ngspice printed it."""
    for line in log.splitlines():
        if re.search(r"timestep too small", line, re.I):
            m = _TIME.search(line)
            if m:
                try:
                    return float(m.group(1))
                except ValueError:
                    return None
    return None


def is_failure(log: str, returncode: int | None = None, have_results: bool = True) -> bool:
    if returncode not in (0, None) or not have_results:
        return True
    return any(p.search(line) for line in log.splitlines() for p in _FATAL)


def check_log(log: str, netlist: Path | None, returncode: int | None = None,
              have_results: bool = True) -> None:
    """Raise the SpiceError the log describes, if the run failed."""
    if not is_failure(log, returncode, have_results):
        return
    kind, hits = classify(log)
    lines = log.splitlines()
    context = _dedupe(_with_context(lines, hits))
    if hits:
        message = lines[hits[0]].strip()
    elif not have_results:
        message = f"ngspice produced no results (no {RAW_NAME} or no vectors)"
    else:
        message = f"ngspice exited with status {returncode}"
    if not context:
        context = _dedupe([line for line in lines if line.strip()])[-10:]
    if returncode is not None and returncode < 0:
        sig = -returncode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        message = f"ngspice was killed by {name}" + (f" after: {message}" if hits else "")
    t = failure_time(log) if kind == "timestep" else None
    if t is not None:
        message += f" (at t = {t:.6g} s)"
    err = SpiceError(kind, message, context, log=log, netlist=netlist)
    err.time = t  # type: ignore[attr-defined]
    raise err


def _dedupe(lines: list[str]) -> list[str]:
    """Each distinct line once, in order of first appearance, with a repeat count: a flood of one
    warning must not push the real error out of the lines shown."""
    counts: dict[str, int] = {}
    for line in lines:
        key = line.strip()
        counts[key] = counts.get(key, 0) + 1
    out, seen = [], set()
    for line in lines:
        key = line.strip()
        if key in seen:
            continue
        seen.add(key)
        out.append(line if counts[key] == 1 else f"{line}  [repeated {counts[key]} times]")
    return out


def _with_context(lines: list[str], hits: list[int], n: int = CONTEXT_LINES, limit: int = 60) -> list[str]:
    keep: list[int] = []
    for k in hits:
        for j in range(max(0, k - n), min(len(lines), k + n + 1)):
            if not keep or j > keep[-1]:
                keep.append(j)
    # hit lines first, so a long context never cuts the error itself off
    hit_set = set(hits)
    ordered = [j for j in keep if j in hit_set][:limit] + [j for j in keep if j not in hit_set]
    chosen = sorted(set(ordered[:limit]))
    return [lines[j].rstrip() for j in chosen if lines[j].strip()]
