"""Hostile inputs found by the second audit: each used to end in a traceback, a hang on a device file, or
an output path that replaced a device node. Every case must now be a one-line located error (exit 2)."""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from circuitkit.cli import main
from circuitkit.errors import CircuitkitError

ROOT = Path(__file__).resolve().parents[1]


def _one_line_error(capsys, argv) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


# -- sweep files -----------------------------------------------------------------------------------

def _sweep(tmp_path: Path, body: str) -> Path:
    shutil.copy(ROOT / "sweeps" / "read_array.xbar", tmp_path / "read_array.xbar")
    p = tmp_path / "s.toml"
    p.write_text('description = "read_array.xbar"\n' + body)
    return p


def test_logrange_whose_ratio_underflows_is_located(tmp_path, capsys):
    """``1e300 -> 1e-300`` by a factor: the ratio underflowed to 0 and math.log raised (a traceback)."""
    p = _sweep(tmp_path, "[parameters]\nrw = { logrange = [1e300, 1e-300], factor = 1e-308 }\n")
    err = _one_line_error(capsys, ["sweep", "check", p])
    assert "s.toml:3" in err and "'rw'" in err
    p = _sweep(tmp_path, "[parameters]\nrw = { logrange = [1e300, 1e-300], num = 3 }\n")
    _one_line_error(capsys, ["sweep", "check", p])


def test_metrics_and_engines_that_are_not_strings_are_located(tmp_path, capsys):
    """A list inside 'metrics' was looked up in a dict: TypeError unhashable type (a traceback)."""
    p = _sweep(tmp_path, 'metrics = ["read_error", [1]]\n[parameters]\nrw = [1, 2]\n')
    assert "s.toml:2" in _one_line_error(capsys, ["sweep", "check", p])
    p = _sweep(tmp_path, 'engines = ["behavioural", {a = 1}]\n[parameters]\nrw = [1, 2]\n')
    assert "s.toml:2" in _one_line_error(capsys, ["sweep", "check", p])


# -- a sweep's output directory read back ------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    p = _sweep(tmp, 'engines = ["behavioural"]\nmetrics = ["read_error"]\n[parameters]\nrows = [4, 8]\n')
    assert main(["sweep", "run", str(p), "--out", str(tmp / "out"), "--no-progress", "--workers", "1"]) == 0
    return tmp / "out"


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def test_truncated_results_table_is_a_located_error(finished_sweep, tmp_path, capsys):
    out = _copy(finished_sweep, tmp_path)
    with open(out / "results.parquet", "r+b") as fh:
        fh.truncate(100)
    assert "results.parquet" in _one_line_error(capsys, ["table", out])
    _one_line_error(capsys, ["plot", out, "--x", "rows", "--y", "read_error"])


@pytest.mark.parametrize("points", [[5], [{"index": "abc", "key": "k"}], {"a": 1}, None])
def test_edited_manifest_is_a_located_error(finished_sweep, tmp_path, capsys, points):
    out = _copy(finished_sweep, tmp_path)
    (out / "results.parquet").unlink()
    manifest = json.loads((out / "sweep.json").read_text())
    manifest = [1, 2] if points is None else dict(manifest, points=points)
    (out / "sweep.json").write_text(json.dumps(manifest))
    assert "sweep.json" in _one_line_error(capsys, ["table", out])


def test_plot_with_a_manifest_that_is_not_a_table(finished_sweep, tmp_path, capsys):
    out = _copy(finished_sweep, tmp_path)
    (out / "sweep.json").write_text("[1, 2]")
    assert main(["plot", str(out), "--x", "rows", "--y", "read_error"]) == 0
    (out / "sweep.json").write_text(json.dumps({"parameters": [["x"], {"a": 1}, "rows"]}))
    assert main(["plot", str(out), "--x", "rows", "--y", "read_error"]) == 0


# -- network --set key paths -------------------------------------------------------------------------

def test_set_list_index_that_is_a_unicode_digit(tmp_path, capsys):
    """'²'.isdigit() is True but int('²') raises: a traceback from --set layers.².name=x."""
    from tests.test_hostile_workloads import _net
    net = _net(tmp_path)
    err = _one_line_error(capsys, ["infer", net, "--data", tmp_path / "data.npz", "--out", tmp_path / "o",
                                   "--set", "layers.\u00b2.name=x"])
    assert "layers" in err


# -- outputs that are not regular files ----------------------------------------------------------------

def test_an_output_file_that_is_a_fifo_or_device_is_not_replaced(tmp_path, capsys):
    """-o renamed the finished netlist over whatever was there: as root, '-o /dev/null' replaced the
    device node with a regular file."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    err = _one_line_error(capsys, ["generate", ROOT / "testbenches" / "read_8x8.xbar", "-o", fifo])
    assert "not a regular file" in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    from circuitkit.results import atomic_write_bytes
    with pytest.raises(OSError):
        atomic_write_bytes(fifo, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    _one_line_error(capsys, ["generate", ROOT / "testbenches" / "read_8x8.xbar", "-o", link])
    assert link.is_symlink()


def test_predictor_save_uses_a_unique_temporary_file(tmp_path):
    """save() wrote '<name>.tmp.npz' (a fixed name a symbolic link could redirect) and left it behind when
    the rename failed."""
    from circuitkit.workloads.programming.predictor import PulsePredictor
    pred = PulsePredictor.__new__(PulsePredictor)
    pred.weights, pred.biases = [np.zeros((2, 2))], [np.zeros(2)]
    pred.mean, pred.scale, pred.out_mean, pred.out_scale, pred.meta = np.zeros(2), np.ones(2), 0.0, 1.0, {}
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "m.npz.tmp.npz").symlink_to(victim)
    pred.save(tmp_path / "m.npz")
    assert victim.read_text() == "keep"
    with pytest.raises(IsADirectoryError):
        pred.save(tmp_path)
    assert not list(tmp_path.parent.glob(f"{tmp_path.name}*.tmp*"))


# -- models twin ---------------------------------------------------------------------------------------

def test_models_twin_refuses_devices_and_fifos_unread(tmp_path, capsys):
    """'models twin /dev/zero' read the device until memory ran out (read_text, no size limit)."""
    assert "not a regular file" in _one_line_error(capsys, ["models", "twin", "/dev/zero"])
    fifo = tmp_path / "m.va"
    os.mkfifo(fifo)
    assert "not a regular file" in _one_line_error(capsys, ["models", "twin", fifo])
    big = tmp_path / "big.va"
    big.write_bytes(b" " * 1_100_000)
    _one_line_error(capsys, ["models", "twin", big])


# -- command-line numbers --------------------------------------------------------------------------------

def test_characterise_numbers_that_used_to_raise(capsys):
    xbar = ROOT / "testbenches" / "multisynapse_train.xbar"
    assert "priming" in _one_line_error(capsys, ["characterise", xbar, "--protocol", "meta", "--priming", "1e400",
                                                 "--out", "/nonexistent/never"])
    assert "width" in _one_line_error(capsys, ["characterise", xbar, "--protocol", "ppf", "--width", "1e-30",
                                               "--out", "/nonexistent/never"])


@pytest.mark.parametrize("argv, words", [
    (["cue-task", "--spread", ","], "--spread"),
    (["cue-task", "--seed", "-1"], "--seed"),
])
def test_cue_task_options(tmp_path, capsys, argv, words):
    assert words in _one_line_error(capsys, argv + ["--out", tmp_path / "o"])


@pytest.mark.parametrize("seed", ["-1", str(2 ** 80)])
def test_program_train_seed(tmp_path, capsys, seed):
    desc = ROOT / "examples" / "programming" / "program_vcm.xbar"
    assert "seed" in _one_line_error(capsys, ["program", "train", desc, "--out", tmp_path / "m.npz",
                                              "--rounds", "1", "--seed", seed])


@pytest.mark.parametrize("argv", [
    ["program", "train", "{desc}", "--out", "{tmp}/m.npz", "--rounds", "99999999999"],
    ["program", "{desc}", "--targets", "{tmp}/t.csv", "--out", "{tmp}/o", "--max-rounds", "99999999999"],
])
def test_program_rounds_are_bounded(tmp_path, capsys, argv):
    """``program train --rounds 99999999999`` ran (each round a transient, memory growing) until killed."""
    desc = ROOT / "examples" / "programming" / "program_vcm.xbar"
    argv = [a.format(desc=desc, tmp=tmp_path) for a in argv]
    msg = _one_line_error(capsys, argv)
    assert "rounds" in msg and "100,000" in msg
    assert not (tmp_path / "m.npz").exists() and not (tmp_path / "o").exists()


def test_everything_is_a_circuitkit_error_from_the_python_api(tmp_path):
    from circuitkit.sweep.grid import GridError, expand_values
    with pytest.raises(GridError):
        expand_values("rw", {"logrange": [1e300, 1e-300], "factor": 1e-308})
    from circuitkit.workloads.networks.spec import _apply_override
    with pytest.raises(CircuitkitError):
        _apply_override({"layers": [{}]}, "layers.\u00b2.name", "x", tmp_path / "n.toml")


@pytest.mark.parametrize("argv", [
    ["table", "{out}", "--index", "rows", "--columns", "rows", "--values", "read_error"],
    ["table", "{out}", "--index", "rows", "--values", "rows"],
    ["plot", "{out}", "--x", "rows", "--y", "rows", "--z", "read_error"],
    ["plot", "{out}", "--x", "rows", "--y", "read_error", "--z", "rows"],
])
def test_table_and_plot_with_one_column_twice(finished_sweep, tmp_path, capsys, argv):
    """pandas raised "Grouper for 'rows' not 1-dimensional" (a traceback)."""
    argv = [a.format(out=finished_sweep) for a in argv]
    if argv[0] == "plot":
        argv += ["-o", str(tmp_path / "p.png")]
    assert "different columns" in _one_line_error(capsys, argv)


@pytest.mark.parametrize("argv, words", [
    # a 1e5 V verify read ran to the end with overflow warnings (descriptions refuse voltages past 1e4 V)
    (["program", "{vcm}", "--targets", "{tmp}/t.csv", "--out", "{tmp}/o", "--vread", "1e5"], ["--vread", "100000 V"]),
    (["program", "{vcm}", "--targets", "{tmp}/t.csv", "--out", "{tmp}/o", "--vset=-2e4"], ["--vset", "V"]),
    (["program", "train", "{vcm}", "--out", "{tmp}/m.npz", "--vreset", "1e300"], ["--vreset", "V"]),
    (["characterise", "{ms}", "--protocol", "ppf", "--amplitude", "1e300", "--out", "{tmp}/c"], ["--amplitude"]),
    (["characterise", "{ms}", "--protocol", "ppf", "--vread", "nan", "--out", "{tmp}/c"], ["--vread"]),
    # one crossbar column per delay: 1e8 points was refused as the description's 'cols' at its line 11
    (["stdp", "{stdp}", "--points", "100000000"], ["--points", "65,536"]),
    (["stdp", "{stdp}", "--dt-max", "inf"], ["--dt-max"]),
])
def test_workload_voltages_and_counts_are_bounded(tmp_path, capsys, argv, words):
    paths = {"vcm": ROOT / "examples" / "programming" / "program_vcm.xbar", "tmp": tmp_path,
             "ms": ROOT / "testbenches" / "multisynapse_train.xbar", "stdp": ROOT / "testbenches" / "stdp_vteam.xbar"}
    err = _one_line_error(capsys, [a.format(**paths) for a in argv])
    assert all(w in err for w in words), err
    assert "cols" not in err and not any(p.exists() for p in tmp_path.iterdir())


def test_models_twin_output_is_never_a_fifo_or_device(tmp_path, capsys):
    """``models twin X.va -o FIFO`` is refused unopened (the CLI checks output paths first); the twin itself is
    written atomically, like every other output, so a failed write leaves no partial file."""
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    err = _one_line_error(capsys, ["models", "twin", ROOT / "examples" / "user_models" / "pershin.va", "-o", fifo])
    assert "not a regular file" in err and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert main(["models", "twin", str(ROOT / "examples" / "user_models" / "pershin.va"), "-o", str(tmp_path / "t.py")]) == 0
    assert "def " in (tmp_path / "t.py").read_text()
