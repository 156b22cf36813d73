"""Where sweep points run: in this process, a local process pool, or Dask.

Each executor is a generator ``results(fn, tasks)`` yielding ``(task,
result)`` as points finish, in completion order. ``fn`` must be a top-level
function (it is pickled by reference) that catches its own errors and returns
a record; an exception that still escapes (a worker killed by the OS, a lost
Dask worker) comes back as a :class:`PointCrash` result so the runner can
record it. Closing the generator (Ctrl-C) cancels what has not started.

* ``serial``: one point after the other in this process (``--workers 1``).
* ``process``: :class:`concurrent.futures.ProcessPoolExecutor` with the
  ``forkserver`` start method (no fork of a threaded parent; circuitkit is
  imported once by the server, not per worker).
* ``dask``: a running cluster (``scheduler`` = its address, which must see
  the same files as this machine) or, without one, a
  :class:`distributed.LocalCluster` of ``workers`` single-threaded processes
  started and stopped here. A cluster that has had no worker for
  ``worker_timeout`` seconds (``CIRCUITKIT_WORKER_TIMEOUT``, default 60) ends
  the run with an :class:`ExecutorError`; the finished points are saved and the
  same command resumes.

Children go with the parent (:class:`Guard`): during a sweep a watchdog
process in its own session snapshots the sweep's descendants (pool workers,
the forkserver, Dask workers, ngspice) every quarter second; when the sweep
process dies without saying goodbye (``kill -9``, out-of-memory killer) it
freezes them, adds the children they started since, kills them all and
removes the sweep's private temporary directory. Ctrl-C, SIGTERM and SIGHUP
are turned into an interrupt that kills the descendants and removes the
directory in this process.
"""
from __future__ import annotations

import multiprocessing
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from ..errors import CircuitkitError

EXECUTORS = ("process", "dask")


@dataclass
class PointCrash:
    """A point whose worker died or whose task could not be run."""

    message: str


class ExecutorError(CircuitkitError):
    """The executor itself failed (pool broken, scheduler unreachable)."""


def serial_results(fn: Callable, tasks: Iterable) -> Iterator[tuple]:
    for task in tasks:
        yield task, fn(task)


def process_results(fn: Callable, tasks: Iterable, workers: int) -> Iterator[tuple]:
    tasks = list(tasks)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["circuitkit.sweep.runner"])
    pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx)
    futures = {}
    try:
        for task in tasks:
            futures[pool.submit(fn, task)] = task
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    raise ExecutorError("a worker process died (out of memory? killed?); the points that "
                                        "finished are saved: run the same command again to resume") from None
                except Exception as exc:          # noqa: BLE001 - recorded, not fatal
                    result = PointCrash(f"{type(exc).__name__}: {exc}")
                yield futures[fut], result
    except BaseException:
        # interrupted or abandoned: stop the running points now (workers and their ngspice), not after they end
        procs: dict[int, str] = {}
        table = _proc_table()
        for proc in list(getattr(pool, "_processes", {}).values()):
            if proc.pid in table:
                procs[proc.pid] = table[proc.pid][1]
                procs.update(descendants(proc.pid, table))
        kill_all(procs)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def worker_timeout() -> float:
    """Seconds a Dask cluster may have no worker before the sweep gives up (``CIRCUITKIT_WORKER_TIMEOUT``)."""
    text = os.environ.get("CIRCUITKIT_WORKER_TIMEOUT", "60")
    try:
        value = float(text)
        if not 0 < value < 1e9:
            raise ValueError
    except ValueError:
        raise ExecutorError(f"CIRCUITKIT_WORKER_TIMEOUT={text[:40]!r} is not a positive number of seconds") from None
    return value


def dask_results(fn: Callable, tasks: Iterable, workers: int, scheduler: str | None = None,
                 timeout: float | None = None) -> Iterator[tuple]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ExecutorError("the dask executor needs dask[distributed] (pip install 'circuitkit[dask]')") from None
    import logging
    tasks = list(tasks)
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        else:
            cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
    except ExecutorError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ExecutorError(f"cannot start a local Dask cluster: {exc}") from None
    timeout = worker_timeout() if timeout is None else timeout
    try:
        futures = client.map(fn, tasks, pure=False)
        index = {f.key: t for f, t in zip(futures, tasks)}
        try:
            pending = list(futures)
            idle_since = None
            while pending:
                done = [f for f in pending if f.done()]
                if not done:
                    time.sleep(0.1)
                    n_workers = _dask_workers(client)
                    if n_workers:
                        idle_since = None
                    else:
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since > timeout:
                            raise ExecutorError(
                                f"the Dask cluster{' at ' + scheduler if scheduler else ''} has had no worker for "
                                f"{timeout:g} s; {len(pending)} point(s) not run. The finished points are saved: "
                                "run the same command again (with workers) to resume")
                    continue
                done_keys = {f.key for f in done}
                pending = [f for f in pending if f.key not in done_keys]
                for fut in done:
                    try:
                        result = fut.result()
                    except Exception as exc:      # noqa: BLE001 - a killed worker, a lost task
                        result = PointCrash(f"{type(exc).__name__}: {exc}")
                    yield index[fut.key], result
        finally:
            for fut in futures:
                if not fut.done():
                    fut.cancel()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


_last_worker_check = [0.0, 1]


def _dask_workers(client) -> int:
    """Workers the scheduler knows (asked at most once a second; errors count as none)."""
    now = time.monotonic()
    if now - _last_worker_check[0] >= 1.0:
        try:
            _last_worker_check[1] = len(client.nthreads())
        except Exception:  # noqa: BLE001 - an unreachable scheduler has no workers for us
            _last_worker_check[1] = 0
        _last_worker_check[0] = now
    return _last_worker_check[1]


def run_tasks(fn: Callable, tasks: list, executor: str = "process", workers: int = 1,
              scheduler: str | None = None, worker_timeout: float | None = None) -> Iterator[tuple]:
    """Dispatch to the executor; ``process`` with one worker (or one task) runs in this process."""
    if executor == "dask":
        return dask_results(fn, tasks, workers, scheduler, worker_timeout)
    if executor != "process":
        raise ExecutorError(f"unknown executor '{executor}' (known: {', '.join(EXECUTORS)})")
    if workers <= 1 or len(tasks) <= 1:
        return serial_results(fn, tasks)
    return process_results(fn, tasks, workers)


# -- children and temporary files go with the parent -------------------------------------------

def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process (Linux /proc); empty elsewhere."""
    out: dict[int, tuple[int, str]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2:].split()
        if len(rest) > 19:
            out[int(name)] = (int(rest[1]), rest[19].decode())
    return out


def descendants(pid: int, table: dict[int, tuple[int, str]] | None = None) -> dict[int, str]:
    """Every process below ``pid``: pid -> start time (to tell a reused pid from the original)."""
    table = _proc_table() if table is None else table
    children: dict[int, list[int]] = {}
    for p, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(p)
    out, todo = {}, list(children.get(pid, []))
    while todo:
        p = todo.pop()
        if p not in out and p in table:
            out[p] = table[p][1]
            todo.extend(children.get(p, []))
    return out


def kill_all(procs: dict[int, str], exclude: set[int] = frozenset()) -> int:
    """Freeze ``procs`` (and what they started since), then kill them all; returns how many were killed."""
    table = _proc_table()
    alive = {p: st for p, st in procs.items() if p not in exclude and table.get(p, (0, None))[1] == st}
    for p in alive:
        _signal(p, signal.SIGSTOP)
    table = _proc_table()
    for p in list(alive):
        alive.update({q: st for q, st in descendants(p, table).items() if q not in exclude})
    for p in alive:
        _signal(p, signal.SIGKILL)
    return len(alive)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP during a sweep (unwinds like Ctrl-C)."""


class Guard:
    """Context of one sweep run: a private temporary directory (``root``) for the points' scratch files, a
    watchdog that cleans up after a killed parent, and signal handlers that clean up after an interrupted one."""

    PREFIX = "circuitkit-sweep-"

    def __init__(self):
        self.root: str | None = None
        self.watchdog: subprocess.Popen | None = None
        self._old: dict[int, object] = {}

    def __enter__(self) -> "Guard":
        _remove_stale_roots(self.PREFIX)
        self.root = tempfile.mkdtemp(prefix=f"{self.PREFIX}{os.getpid()}-")
        import multiprocessing.util
        mp_tmp = multiprocessing.util.get_temp_dir()     # the forkserver's socket directory (pymp-*)
        if os.path.isdir("/proc"):
            try:
                self.watchdog = subprocess.Popen(
                    [sys.executable, "-c", "from circuitkit.sweep.executors import watchdog_main; watchdog_main()",
                     str(os.getpid()), self.root, mp_tmp],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True, close_fds=True,
                    env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
            except OSError:
                self.watchdog = None
        import threading
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                try:
                    self._old[sig] = signal.signal(sig, self._on_signal)
                except (ValueError, OSError):
                    pass
        return self

    @staticmethod
    def _on_signal(signum, frame):
        raise _Interrupted(f"signal {signum}")

    def __exit__(self, exc_type, exc, tb):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if exc_type is not None and issubclass(exc_type, BaseException) and not issubclass(exc_type, Exception):
            # interrupted (Ctrl-C, SIGTERM, SIGHUP): no child outlives the sweep
            kill_all(descendants(os.getpid()), exclude={self.watchdog.pid} if self.watchdog else set())
        if self.watchdog is not None:
            try:
                self.watchdog.stdin.write(b"done\n")
                self.watchdog.stdin.close()
                self.watchdog.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.watchdog.kill()
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
        return False


def _remove_stale_roots(prefix: str) -> None:
    """Private directories of sweeps whose process is gone (a watchdog killed with its parent)."""
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}") and os.path.isdir("/proc"):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def watchdog_main(argv: list[str] | None = None) -> None:
    """The watchdog process: ``PARENT_PID ROOT [DIR...]``; stdin carries ``done`` when the parent ends normally.
    After an abnormal end, the extra directories (the parent's multiprocessing scratch) are removed too."""
    argv = sys.argv[1:] if argv is None else argv
    parent, root, extra = int(argv[0]), argv[1], argv[2:]
    me = os.getpid()
    seen: dict[int, str] = {}
    normal = False
    while True:
        ready, _, _ = select.select([0], [], [], 0.25)
        if ready:
            data = os.read(0, 64)
            if data.startswith(b"done"):
                normal = True
            break                         # "done", or EOF: the parent is gone
        table = _proc_table()
        if parent not in table:
            break
        seen = {p: st for p, st in descendants(parent, table).items() if p != me}
    if not normal:
        kill_all(seen, exclude={me})
        for d in extra:
            shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
