"""Parameter sweeps: grid expansion, checks naming the TOML line, resume, failures, executors, plots."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from circuitkit.cli import main as cli_main
from circuitkit.sweep import load_spec, run_sweep
from circuitkit.sweep import runner as sweep_runner
from circuitkit.sweep.grid import GridError, combine, expand_values
from circuitkit.sweep.spec import SweepError, key_line
from circuitkit.sweep.store import PointStore

ROOT = Path(__file__).resolve().parents[1]
READ_ARRAY = ROOT / "sweeps" / "read_array.xbar"
READ_TRAN = ROOT / "sweeps" / "read_array_tran.xbar"
TIMING = ("wall_s", "run_s", "speedup")


def write_sweep(tmp_path: Path, body: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def copied_sweep(tmp_path: Path, body: str, text: str | None = None) -> tuple[Path, Path]:
    """(sweep file, description) of a sweep over ``d.xbar``, a copy of READ_ARRAY (or ``text``) that the test
    may edit; ``body``: the sweep file after its ``description`` line."""
    desc = tmp_path / "d.xbar"
    desc.write_text(READ_ARRAY.read_text() if text is None else text)
    return write_sweep(tmp_path, 'description = "d.xbar"\n' + textwrap.dedent(body).lstrip()), desc


def small_read_sweep(tmp_path: Path, rw=(0.5, 2.0), sizes=(4, 6), extra: str = "") -> Path:
    return write_sweep(tmp_path, f"""
        name = "small"
        description = "{READ_ARRAY}"
        engines = ["behavioural"]
        metrics = ["read_error", "energy", "wall_time"]
        zip = [["rows", "cols"]]
        {extra}
        [parameters]
        rows = {list(sizes)}
        cols = {list(sizes)}
        rw = {list(rw)}
        """)


# -- grid ------------------------------------------------------------------------------

def test_grid_lists_ranges_and_logranges():
    assert expand_values("a", [1, 2.5, "v3"]) == [1, 2.5, "v3"]
    assert expand_values("a", {"values": [3]}) == [3]
    assert expand_values("a", {"range": [8, 32], "step": 8}) == [8, 16, 24, 32]
    assert expand_values("a", {"range": [0.1, 0.5], "step": 0.1}) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert expand_values("a", {"range": [1.0, 2.0], "num": 3}) == [1.0, 1.5, 2.0]
    assert expand_values("a", {"logrange": [8, 128], "factor": 2}) == [8, 16, 32, 64, 128]
    assert expand_values("a", {"logrange": [1e-3, 1e-1], "num": 3}) == pytest.approx([1e-3, 1e-2, 1e-1])
    assert expand_values("a", {"logrange": [8, 100], "num": 4, "integer": True}) == [8, 19, 43, 100]
    for bad in ([], {"range": [1, 2]}, {"range": [2, 1], "step": 1}, {"logrange": [0, 1], "num": 3},
                {"range": [1, 2], "step": 1, "bogus": 1}, [True], {"range": [1, 2], "num": 0}):
        with pytest.raises(GridError):
            expand_values("a", bad)


def test_grid_product_and_zip():
    pts = combine({"a": [1, 2], "b": ["x", "y", "z"]})
    assert [p.params for p in pts][:4] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
                                           {"a": 2, "b": "x"}]
    assert len(pts) == 6 and [p.index for p in pts] == list(range(6))
    zipped = combine({"rows": [4, 8], "rw": [1, 2, 3], "cols": [4, 8]}, [["rows", "cols"]])
    assert len(zipped) == 6
    assert all(p.params["rows"] == p.params["cols"] for p in zipped)
    assert [p.params for p in combine({"a": [1, 2], "b": [3, 4]}, mode="zip")] == [{"a": 1, "b": 3}, {"a": 2, "b": 4}]
    with pytest.raises(GridError, match="same number of values"):
        combine({"a": [1, 2], "b": [3]}, mode="zip")
    assert combine({"a": [0.1]})[0].overrides() == {"a": "0.1"}


# -- the sweep file: every error names the file and the line ----------------------------

BAD_FILES = [
    ("malformed", 'description = "x.xbar"\nengines = ["behavioural"\n', 2),
    ("unknown param", f'description = "{READ_ARRAY}"\n\n[parameters]\nrows = [4]\nbogus = [1, 2]\n', 5),
    ("empty grid", f'description = "{READ_ARRAY}"\n[parameters]\nrows = [4]\nrw = []\n', 4),
    ("unknown engine", f'description = "{READ_ARRAY}"\nengines = ["hspice"]\n[parameters]\nrw = [1]\n', 2),
    ("unknown metric", f'description = "{READ_ARRAY}"\nmetrics = ["snr"]\n[parameters]\nrw = [1]\n', 2),
    ("cross-check one engine", f'description = "{READ_ARRAY}"\nmetrics = ["cross_check"]\n[parameters]\nrw = [1]\n', 2),
    ("missing description", 'description = "nope.xbar"\n[parameters]\nrw = [1]\n', 1),
    ("zip lengths", f'description = "{READ_ARRAY}"\nmode = "zip"\n[parameters]\nrows = [4, 8]\ncols = [4]\n', 5),
    ("bad range", f'description = "{READ_ARRAY}"\n[parameters]\n\nrw = {{ range = [1, 2] }}\n', 4),
    ("unknown key", f'description = "{READ_ARRAY}"\nworkers = 3\n[parameters]\nrw = [1]\n', 2),
]


@pytest.mark.parametrize("what,text,line", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_sweep_files_name_the_line(tmp_path, what, text, line):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SweepError) as err:
        load_spec(path)
    assert err.value.location.file == str(path)
    assert err.value.location.line == line, str(err.value)
    assert f"bad.toml:{line}" in str(err.value)


def test_value_outside_model_range_stops_before_running(tmp_path):
    # vteam's ron must be > 0: the grid point with ron = -5 is refused, naming the ron line, and nothing runs
    path = write_sweep(tmp_path, f"""
        description = "{READ_ARRAY}"
        [parameters]
        rows = [4]
        cols = [4]
        ron = [1000, -5]
        """)
    with pytest.raises(SweepError) as err:
        run_sweep(path, tmp_path / "out", workers=1, progress=False)
    assert err.value.location.line == 5 and err.value.location.parameter == "ron"
    assert "ron = -5" in str(err.value)
    assert not list((tmp_path / "out" / "points").glob("*.json"))


def test_value_that_is_not_an_expression(tmp_path):
    path = write_sweep(tmp_path, f"""
        description = "{READ_ARRAY}"
        [parameters]
        rows = ["4; .control"]
        """)
    with pytest.raises(SweepError) as err:
        run_sweep(path, tmp_path / "out", workers=1, progress=False)
    assert err.value.location.line == 3


def test_unwritable_output_directory(tmp_path):
    path = small_read_sweep(tmp_path)
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    with pytest.raises(SweepError, match="not writable") as err:
        run_sweep(path, blocker / "out", workers=1, progress=False)
    assert err.value.location.file == str(path)


def test_key_line_finds_keys_in_tables():
    text = 'name = "a"\n[parameters]\n"rw" = [1]\nrows = { range = [1, 4], step = 1 }\n[other]\nrw = 3\n'
    assert key_line(text, "name") == 1
    assert key_line(text, "rw", "parameters") == 3
    assert key_line(text, "rows", "parameters") == 4
    assert key_line(text, "missing", "parameters") == 2


# -- running, resuming, failures --------------------------------------------------------

def test_sweep_records_metrics_and_resumes(tmp_path):
    path = small_read_sweep(tmp_path, rw=(0.0, 0.5, 2.0))
    out = tmp_path / "out"
    first = run_sweep(path, out, workers=1, progress=False, limit=2)      # an "interrupted" run: 2 of 6
    assert (first.total, first.computed, first.skipped) == (6, 2, 0)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}
    assert len(mtimes) == 2
    second = run_sweep(path, out, workers=1, progress=False, csv=True)
    assert (second.computed, second.skipped, second.failed) == (4, 2, 0)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.json") if p.name in mtimes} == mtimes
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 6 and list(table["point"]) == list(range(6))
    assert (out / "results.csv").is_file()
    for col in ("rows", "cols", "rw", "read_error_behavioural", "energy_J_behavioural", "power_W_behavioural",
                "wall_s_behavioural", "description_hash", "circuitkit_version", "ngspice_version", "status"):
        assert col in table.columns, col
    # the read error grows with the wire resistance and is ~0 without wires (only the 1-ohm drivers)
    for size, part in table.groupby("rows"):
        err = part.sort_values("rw")["read_error_behavioural"].to_numpy()
        assert err[0] < err[1] < err[2]
    assert (table["power_W_behavioural"] > 0).all()
    third = run_sweep(path, out, workers=1, progress=False)
    assert third.computed == 0 and third.skipped == 6


def test_changed_description_is_recomputed(tmp_path):
    path, desc = copied_sweep(tmp_path, """
        metrics = ["read_error"]
        [parameters]
        rows = [4]
        cols = [4]
        """)
    out = tmp_path / "out"
    assert run_sweep(path, out, workers=1, progress=False).computed == 1
    assert run_sweep(path, out, workers=1, progress=False).computed == 0
    desc.write_text(READ_ARRAY.read_text().replace("param vread = 0.2", "param vread = 0.3"))
    assert run_sweep(path, out, workers=1, progress=False).computed == 1
    assert len(list((out / "points").glob("*.json"))) == 2


def test_failed_point_is_recorded_and_others_succeed(tmp_path, monkeypatch):
    real = sweep_runner.simulate

    def flaky(circuit, engine, **kw):
        wires = circuit.group("xb_rwl")
        if float(np.asarray(wires.r).ravel()[0]) == 2.0:
            raise RuntimeError("no convergence (injected)")
        return real(circuit, engine, **kw)

    monkeypatch.setattr(sweep_runner, "simulate", flaky)
    path = small_read_sweep(tmp_path, rw=(0.5, 2.0), sizes=(4,))
    out = tmp_path / "out"
    report = run_sweep(path, out, workers=1, progress=False)
    assert (report.computed, report.failed) == (2, 1)
    table = report.table.set_index("rw")
    assert table.loc[2.0, "status"] == "failed"
    assert "no convergence (injected)" in table.loc[2.0, "error"] and "behavioural" in table.loc[2.0, "error"]
    assert table.loc[0.5, "status"] == "ok" and table.loc[0.5, "error"] == ""
    assert np.isfinite(table.loc[0.5, "read_error_behavioural"])
    # a failed point is finished: skipped on resume, run again on request
    assert run_sweep(path, out, workers=1, progress=False).computed == 0
    monkeypatch.setattr(sweep_runner, "simulate", real)
    again = run_sweep(path, out, workers=1, progress=False, retry_failed=True)
    assert (again.computed, again.failed_total) == (1, 0)


@pytest.mark.slow
def test_kill_9_then_resume(tmp_path):
    path = write_sweep(tmp_path, f"""
        description = "{READ_TRAN}"
        metrics = ["read_error"]
        [parameters]
        rows = [4]
        cols = [4]
        seed = {list(range(1, 13))}
        """)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "circuitkit", "sweep", "run", str(path), "--out", str(out),
                             "--workers", "1", "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "points").glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}
    assert 2 <= len(before) < 12, proc.stderr.read().decode()[-2000:]
    for p in (out / "points").glob("*.json"):               # whole files only
        assert json.loads(p.read_text())["status"] == "ok"
    report = run_sweep(path, out, workers=1, progress=False)
    assert report.skipped == len(before) and report.computed == 12 - len(before)
    assert len(report.table) == 12 and (report.table["status"] == "ok").all()
    assert all((out / "points" / name).stat().st_mtime_ns == t for name, t in before.items())


# -- executors --------------------------------------------------------------------------

def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in table.columns if not any(c.startswith(t) for t in TIMING)]
    return table[keep].sort_values("point").reset_index(drop=True)


@pytest.mark.slow
def test_dask_local_cluster_matches_process_pool(tmp_path):
    path = small_read_sweep(tmp_path, rw=(0.5, 1.0, 2.0), sizes=(4, 6))
    pool = run_sweep(path, tmp_path / "pool", workers=2, progress=False)
    dask = run_sweep(path, tmp_path / "dask", workers=2, executor="dask", progress=False)
    assert pool.computed == dask.computed == 6 and pool.failed == dask.failed == 0
    a, b = _comparable(pool.table), _comparable(dask.table)
    pd.testing.assert_frame_equal(a, b)
    pids = {json.loads(p.read_text())["pid"] for p in (tmp_path / "pool" / "points").glob("*.json")}
    assert os.getpid() not in pids                       # the points ran in worker processes


def test_concurrent_rebuilds_leave_a_valid_table(tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    path = small_read_sweep(tmp_path, rw=(0.5,), sizes=(4,))
    out = tmp_path / "out"
    run_sweep(path, out, workers=1, progress=False)
    store = PointStore(out)
    with ThreadPoolExecutor(4) as pool:
        frames = list(pool.map(lambda _: store.rebuild(csv=True), range(8)))
    assert all(len(f) == 1 for f in frames)
    assert len(pd.read_parquet(out / "results.parquet")) == 1
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# -- plot, table, command line --------------------------------------------------------

def test_cli_sweep_plot_and_table(tmp_path, capsys):
    path = small_read_sweep(tmp_path, rw=(0.5, 2.0), sizes=(4, 6))
    out = tmp_path / "out"
    assert cli_main(["sweep", str(path), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    assert "4 points" in capsys.readouterr().out
    assert cli_main(["sweep", "run", str(path), "--out", str(out), "--no-progress"]) == 0
    assert "4 already done" in capsys.readouterr().out

    png = tmp_path / "err.png"
    assert cli_main(["plot", str(out), "--x", "rows", "--y", "read_error", "--hue", "rw", "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    heat = tmp_path / "heat.png"
    assert cli_main(["plot", str(out), "--x", "rows", "--y", "rw", "--z", "read_error", "-o", str(heat)]) == 0
    assert heat.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()

    assert cli_main(["table", str(out), "--index", "rows", "--columns", "rw", "--values", "read_error"]) == 0
    text = capsys.readouterr().out
    table = pd.read_parquet(out / "results.parquet")
    cell = table[(table.rows == 6) & (table.rw == 2.0)]["read_error_behavioural"].iloc[0]
    assert f"{cell:.4g}" in text and "rows" in text.splitlines()[1]
    assert cli_main(["table", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert sum(line.rstrip().endswith(" ok") for line in lines) == 4 and "read_error_behavioural" in lines[0]

    assert cli_main(["plot", str(out), "--x", "rows", "--y", "nonsense"]) == 2
    assert "not a column" in capsys.readouterr().err


def test_cli_bad_sweep_exits_with_the_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(f'description = "{READ_ARRAY}"\n[parameters]\nrows = [4]\nnope = [1]\n')
    assert cli_main(["sweep", "run", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "bad.toml:4" in capsys.readouterr().err


# -- both engines -----------------------------------------------------------------------

@pytest.mark.spice
def test_both_engines_cross_check(tmp_path):
    path = write_sweep(tmp_path, f"""
        description = "{READ_TRAN}"
        engines = ["spice", "behavioural"]
        metrics = ["cross_check", "read_error", "wall_time", "energy"]
        keep_netlists = true
        [parameters]
        rows = [4]
        cols = [4]
        rw = [1.0, 5.0]
        """)
    out = tmp_path / "out"
    report = run_sweep(path, out, workers=2, progress=False)
    assert report.failed == 0, report.table["error"].tolist()
    t = report.table
    assert (t["xcheck_rel_rms_max"] < 0.01).all() and t["xcheck_passed"].all()
    assert (t["xcheck_adc_codes_differing"] <= 1).all()
    assert np.allclose(t["read_error_spice"], t["read_error_behavioural"], rtol=1e-2)
    assert np.allclose(t["energy_J_spice"], t["energy_J_behavioural"], rtol=1e-2)
    assert (t["speedup"] > 0).all() and (t["wall_s_spice"] > 0).all()
    assert t["ngspice_version"].str.len().min() > 0
    assert len(list((out / "netlists").glob("*/circuit.cir"))) == 2


def test_sweep_check_finds_an_output_directory_that_cannot_be_written(tmp_path, capsys):
    """docs/sweeps.md: every problem is reported before anything runs, an unwritable output directory
    included; 'sweep check' said nothing about it (audit). It creates nothing where it can write."""
    sweep = Path(__file__).resolve().parents[1] / "sweeps" / "ir_drop.toml"
    afile = tmp_path / "afile"
    afile.write_text("")
    for out in (afile / "x", afile) + ((Path("/proc/circuitkit-x"),) if Path("/proc/self").exists() else ()):
        assert cli_main(["sweep", "check", str(sweep), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "not a directory" in err or "output directory '/proc/circuitkit-x' is not writable" in err
    assert cli_main(["sweep", "check", str(sweep), "--out", str(tmp_path / "new" / "x")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_grid_ranges_end_on_the_stop_as_written():
    """The last value is the stop written (0.2 + 0.8 was 1.0000000000000002, refused by a [0, 1] param) and
    arithmetic noise is dropped (0.30000000000000004 for 0.3, 0.009999999999999998 for 0.01)."""
    assert expand_values("a", {"range": [0.2, 1.0], "num": 4})[-1] == 1.0
    assert expand_values("a", {"range": [0.2, 0.9], "num": 2}) == [0.2, 0.9]
    assert expand_values("a", {"logrange": [0.1, 1.7], "num": 3})[-1] == 1.7
    assert expand_values("a", {"range": [0.1, 0.5], "step": 0.1}) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert expand_values("a", {"range": [0, 1], "step": 0.1})[6:8] == [0.6, 0.7]
    assert expand_values("a", {"logrange": [1e-3, 1], "num": 4}) == [1e-3, 1e-2, 1e-1, 1.0]
    assert expand_values("a", {"logrange": [1e-9, 1e-6], "factor": 10}) == [1e-9, 1e-8, 1e-7, 1e-6]
    assert expand_values("a", {"range": [0.2, 1.0], "num": 4})[1:3] == [0.2 + 0.8 / 3, 0.2 + 1.6 / 3]


def test_range_to_one_runs_for_a_param_limited_to_one(tmp_path):
    path, _ = copied_sweep(tmp_path, """
        metrics = ["read_error"]
        [parameters]
        rows = 2
        cols = 2
        smax = { range = [0.2, 1.0], num = 4 }
        """, READ_ARRAY.read_text().replace("param seed  = 11", "param smax = 1.0\nparam seed  = 11")
                                  .replace("uniform(0.0, 1.0,", "uniform(0.0, smax,"))
    spec = load_spec(path)
    assert [p.params["smax"] for p in spec.points][-1] == 1.0
    sweep_runner.prepare(spec, {"circuitkit": "x", "ngspice": None})      # raised: smax = 1.0000000000000002


def test_data_file_of_an_include_in_a_subdirectory_is_hashed(tmp_path):
    """file("s.npy") in parts/xb.xbar is read next to that file (paths are relative to the file that names
    them); changing it must change the point's key and run the point again, not reuse the old results."""
    (tmp_path / "parts").mkdir()
    desc = tmp_path / "top.xbar"
    desc.write_text('param rw = 1\ninclude "parts/xb.xbar"\nwires { r_row = rw; r_col = rw }\n'
                    'sense cols { tia = ideal(rf = 1k) }\nstimulus {\n    read = [0.2, 0.1, 0.15]\n}\n'
                    'analysis op()\nrecord column_currents\n')
    (tmp_path / "parts" / "xb.xbar").write_text(
        'crossbar xb {\n    rows = 3\n    cols = 2\n    cell = 1R\n'
        '    device = vteam(iv = 0, ron = 10k, roff = 100k, voff = 0.5, von = -0.5)\n'
        '    state = file("s.npy")\n}\n')
    np.save(tmp_path / "parts" / "s.npy", np.full((3, 2), 0.2))
    path = write_sweep(tmp_path, """
        description = "top.xbar"
        metrics = ["energy"]
        [parameters]
        rw = [1]
        """)
    out = tmp_path / "out"
    first = run_sweep(path, out, workers=1, progress=False)
    np.save(tmp_path / "parts" / "s.npy", np.full((3, 2), 0.9))
    second = run_sweep(path, out, workers=1, progress=False)
    assert second.computed == 1
    assert second.table["energy_J_behavioural"].iloc[0] != first.table["energy_J_behavioural"].iloc[0]


def test_table_after_a_killed_run_shows_the_points_of_the_current_grid(tmp_path, monkeypatch):
    """A run killed before its table rebuild left results.parquet of the earlier run (another description's
    numbers) as what 'table' and 'plot' showed; the point files and the manifest are newer."""
    from circuitkit.sweep.plot import pivot_table
    from circuitkit.sweep.store import load_results
    path, desc = copied_sweep(tmp_path, """
        metrics = ["energy"]
        [parameters]
        rows = [3]
        cols = [3, 4]
        """)
    out = tmp_path / "out"
    old = run_sweep(path, out, workers=1, progress=False).table
    time.sleep(0.05)
    desc.write_text(READ_ARRAY.read_text().replace("param vread = 0.2", "param vread = 0.3"))
    monkeypatch.setattr(PointStore, "rebuild", lambda self, grid=None, csv=False: pd.DataFrame())   # kill -9
    run_sweep(path, out, workers=1, progress=False, limit=1)
    monkeypatch.undo()
    shown = load_results(out)
    assert len(shown) == 1 and list(shown.columns[:3]) == ["point", "rows", "cols"]
    assert shown["energy_J_behavioural"].iloc[0] != old["energy_J_behavioural"].iloc[0]
    assert len(pivot_table(out, "cols", None, "energy_J")) == 1


def test_description_edited_during_a_run_is_not_stored_under_the_old_key(tmp_path, monkeypatch):
    """Points run after an edit were stored under the key of the text the sweep started with: undoing the
    edit then showed the edited description's numbers as finished points of the original."""
    original = READ_ARRAY.read_text()
    path, desc = copied_sweep(tmp_path, """
        metrics = ["energy"]
        [parameters]
        rows = [3]
        cols = [3, 4]
        """, original)
    real = sweep_runner.prepare

    def prepare_then_edit(spec, versions):
        out = real(spec, versions)
        desc.write_text(original.replace("param vread = 0.2", "param vread = 0.3"))
        return out
    monkeypatch.setattr(sweep_runner, "prepare", prepare_then_edit)
    report = run_sweep(path, tmp_path / "out", workers=1, progress=False)
    assert report.changed == 2 and report.computed == 0 and "changed during the sweep" in report.summary()
    monkeypatch.undo()
    desc.write_text(original)
    again = run_sweep(path, tmp_path / "out", workers=1, progress=False)
    fresh = run_sweep(path, tmp_path / "fresh", workers=1, progress=False)
    assert again.computed == 2
    assert list(again.table["energy_J_behavioural"]) == list(fresh.table["energy_J_behavioural"])


def test_data_file_edited_during_a_run_is_not_stored_under_the_old_key(tmp_path, monkeypatch):
    path, _ = copied_sweep(tmp_path, """
        metrics = ["energy"]
        [parameters]
        rows = [3]
        cols = [3]
        rw = [1, 2]
        """, READ_ARRAY.read_text().replace("state = uniform(0.0, 1.0, seed = seed)", 'state = file("s.npy")'))
    np.save(tmp_path / "s.npy", np.full((3, 3), 0.2))
    real = sweep_runner.prepare

    def prepare_then_edit(spec, versions):
        out = real(spec, versions)
        np.save(tmp_path / "s.npy", np.full((3, 3), 0.9))
        return out
    monkeypatch.setattr(sweep_runner, "prepare", prepare_then_edit)
    report = run_sweep(path, tmp_path / "out", workers=1, progress=False)
    assert report.changed == 2 and not list((tmp_path / "out" / "points").glob("*.json"))
