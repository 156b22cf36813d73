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
  started and stopped here.
"""
from __future__ import annotations

import multiprocessing
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
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def dask_results(fn: Callable, tasks: Iterable, workers: int, scheduler: str | None = None) -> Iterator[tuple]:
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
    try:
        futures = client.map(fn, tasks, pure=False)
        index = {f.key: t for f, t in zip(futures, tasks)}
        try:
            for fut in as_completed(futures):
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


def run_tasks(fn: Callable, tasks: list, executor: str = "process", workers: int = 1,
              scheduler: str | None = None) -> Iterator[tuple]:
    """Dispatch to the executor; ``process`` with one worker (or one task) runs in this process."""
    if executor == "dask":
        return dask_results(fn, tasks, workers, scheduler)
    if executor != "process":
        raise ExecutorError(f"unknown executor '{executor}' (known: {', '.join(EXECUTORS)})")
    if workers <= 1 or len(tasks) <= 1:
        return serial_results(fn, tasks)
    return process_results(fn, tasks, workers)
