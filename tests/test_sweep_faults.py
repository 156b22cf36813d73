"""Sweep faults: tampered point files are re-run, a cluster without workers fails clearly and resumes,
and a killed sweep takes its children (pool workers, ngspice) and temporary directories with it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from circuitkit.sweep import run_sweep
from circuitkit.sweep.executors import ExecutorError, descendants, _proc_table
from circuitkit.sweep.store import PointStore, checksum

ROOT = Path(__file__).resolve().parents[1]
READ_ARRAY = ROOT / "sweeps" / "read_array.xbar"
READ_TRAN = ROOT / "sweeps" / "read_array_tran.xbar"
TIMING = ("wall_s", "run_s", "speedup")


def _sweep(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in table.columns if not any(c.startswith(t) for t in TIMING)]
    return table[keep].sort_values("point").reset_index(drop=True)


def _small(tmp_path):
    return _sweep(tmp_path, f"""
        description = "{READ_ARRAY}"
        engines = ["behavioural"]
        metrics = ["read_error"]
        [parameters]
        rows = [4]
        cols = [4]
        rw = [0.5, 1.0, 2.0]
        """)


def test_point_files_carry_a_checksum_and_a_tampered_point_is_run_again(tmp_path):
    path, out = _small(tmp_path), tmp_path / "out"
    clean = run_sweep(path, out, workers=1, progress=False).table
    files = sorted((out / "points").glob("*.json"))
    assert len(files) == 3
    for f in files:
        rec = json.loads(f.read_text())
        assert rec["checksum"] == checksum(rec)
    # edit a metric (valid JSON, plausible value), truncate another, strip the checksum of the third
    rec = json.loads(files[0].read_text())
    key = next(k for k in rec["metrics"] if k.startswith("read_error"))
    rec["metrics"][key] = 0.0
    files[0].write_text(json.dumps(rec))
    files[1].write_text(files[1].read_text()[:50])
    rec2 = json.loads(files[2].read_text())
    del rec2["checksum"]
    files[2].write_text(json.dumps(rec2))
    store = PointStore(out)
    assert store.read_point(files[0].stem) is None and files[0].stem in store.rejected
    again = run_sweep(path, out, workers=1, progress=False)
    assert again.computed == 3 and again.skipped == 0
    pd.testing.assert_frame_equal(_comparable(again.table), _comparable(clean))


@pytest.mark.slow
def test_a_dask_cluster_without_workers_fails_clearly_and_the_sweep_resumes(tmp_path):
    distributed = pytest.importorskip("distributed")
    import logging
    path, out = _small(tmp_path), tmp_path / "out"
    cluster = distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
    try:
        t0 = time.monotonic()
        with pytest.raises(ExecutorError, match=r"no worker for 2 s; 3 point\(s\) not run.*resume"):
            run_sweep(path, out, executor="dask", scheduler=cluster.scheduler_address, progress=False,
                      worker_timeout=2.0)
        assert time.monotonic() - t0 < 60
    finally:
        cluster.close()
    resumed = run_sweep(path, out, workers=1, progress=False)
    assert resumed.computed == 3
    clean = run_sweep(path, tmp_path / "clean", workers=1, progress=False)
    pd.testing.assert_frame_equal(_comparable(resumed.table), _comparable(clean.table))


def _alive(procs: dict[int, str]) -> list[int]:
    table = _proc_table()
    return [p for p, st in procs.items() if table.get(p, (0, None))[1] == st]


@pytest.mark.slow
@pytest.mark.spice
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_sweep_leaves_no_process_or_temporary_directory_and_resumes(tmp_path, sig):
    path = _sweep(tmp_path, f"""
        description = "{READ_TRAN}"
        engines = ["spice"]
        metrics = ["read_error"]
        [parameters]
        rows = [4]
        cols = [4]
        seed = {list(range(1, 7))}
        """)
    out = tmp_path / "out"
    scratch = tmp_path / "tmp"                 # the sweep's TMPDIR: only its own files land here
    scratch.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "circuitkit", "sweep", "run", str(path), "--out", str(out),
                             "--workers", "2", "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch)})
    children: dict[int, str] = {}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        kids = descendants(proc.pid)
        children.update(kids)
        names = {open(f"/proc/{p}/comm").read().strip() for p in kids if os.path.exists(f"/proc/{p}/comm")}
        if len(list((out / "points").glob("*.json"))) >= 1 and "ngspice" in names:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    children.update(descendants(proc.pid))
    ours = [p for p in children if os.path.exists(f"/proc/{p}/comm")]
    assert len(ours) >= 3                                  # watchdog, forkserver, workers (and ngspice)
    os.kill(proc.pid, sig)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 20
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(children), [open(f"/proc/{p}/cmdline").read() for p in _alive(children)]
    assert not list(scratch.iterdir()), list(scratch.iterdir())
    done = len(list((out / "points").glob("*.json")))
    assert 1 <= done < 6
    report = run_sweep(path, out, workers=2, progress=False)
    assert report.skipped == done and report.computed == 6 - done and (report.table["status"] == "ok").all()
