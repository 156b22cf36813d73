"""Hostile inputs of the workloads: files a network / sweep / task / target file names are untrusted.

Each case is from the hostile-input audit: zip bombs, devices, FIFOs, symlinks to them, absolute
paths, values that used to end in a traceback, and sweeps that lost finished points.
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from circuitkit.errors import CircuitkitError
from circuitkit.workloads.networks import NetworkError, load_network
from circuitkit.workloads.networks import report as R
from circuitkit.workloads.networks import spec as S

NET = """
name = "tiny"
[input]
range = [0.0, 1.0]
[tile]
rows = 8
cols = 8
[device]
model = "vteam"
params = {{ ron = 10e3, roff = 100e3, iv = 0, voff = 0.3, von = -0.3 }}
[periphery]
adc = {{ bits = 8, calibration = "batch", samples = 4 }}
[[layers]]
name = "out"
weights = "{weights}"
activation = "argmax"
"""


def _net(tmp: Path, weights: str = "w.npz:w1") -> Path:
    rng = np.random.default_rng(0)
    if not (tmp / "w.npz").exists():
        np.savez(tmp / "w.npz", w1=rng.normal(size=(4, 3)))
        np.savez(tmp / "data.npz", x=rng.uniform(0, 1, size=(6, 4)), y=np.arange(6) % 3)
    p = tmp / "net.toml"
    p.write_text(NET.format(weights=weights))
    return p


def _npy_header(shape, dtype="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _bomb(path: Path, member: str, nbytes: int) -> None:
    """A deflated .npz member of ``nbytes`` zeros (a few kB on disk)."""
    n = nbytes // 8
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open(member + ".npy", "w", force_zip64=True) as fh:
        fh.write(_npy_header((n,)))
        chunk = bytes(1 << 20)
        left = n * 8
        while left:
            fh.write(chunk[:min(left, len(chunk))])
            left -= min(left, len(chunk))


# -- networks: weights --------------------------------------------------------------------------

def test_npz_bomb_refused_before_decompression(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "MAX_WEIGHTS", 100_000)         # 800 kB of weights
    _bomb(tmp_path / "bomb.npz", "w1", 8_000_000)
    assert (tmp_path / "bomb.npz").stat().st_size < 100_000
    _net(tmp_path)
    p = tmp_path / "net.toml"
    p.write_text(NET.format(weights="bomb.npz:w1"))
    with pytest.raises(NetworkError, match="uncompressed, more than the limit") as e:
        load_network(p)
    assert e.value.location.parameter == "layers.0.weights" and e.value.location.file == str(p)


def test_npz_header_shape_checked_before_reading(tmp_path):
    _net(tmp_path)
    with zipfile.ZipFile(tmp_path / "lie.npz", "w") as zf:     # header claims 10^12 entries, holds 16 bytes
        zf.writestr("w1.npy", _npy_header((1_000_000, 1_000_000)) + bytes(16))
    p = tmp_path / "net.toml"
    p.write_text(NET.format(weights="lie.npz:w1"))
    with pytest.raises(NetworkError, match="more than the limit"):
        load_network(p)


def test_npz_object_array_and_missing_member(tmp_path):
    _net(tmp_path)
    np.savez(tmp_path / "obj.npz", w1=np.array([{"a": 1}, None], dtype=object))
    p = tmp_path / "net.toml"
    p.write_text(NET.format(weights="obj.npz:w1"))
    with pytest.raises(NetworkError, match="not a numeric"):
        load_network(p)
    p.write_text(NET.format(weights="w.npz:nope"))
    with pytest.raises(NetworkError, match="no array 'nope'"):
        load_network(p)


@pytest.mark.parametrize("ref", ["{abs}:w1", "/dev/zero.npy", "~/w.npz:w1"])
def test_absolute_weight_paths_refused(tmp_path, ref):
    _net(tmp_path)
    ref = ref.format(abs=tmp_path / "w.npz")
    p = tmp_path / "net.toml"
    p.write_text(NET.format(weights=ref))
    with pytest.raises(NetworkError, match="absolute path") as e:
        load_network(p)
    assert e.value.location.parameter == "layers.0.weights" and e.value.location.line is not None


@pytest.mark.parametrize("kind", ["devzero", "fifo", "dir"])
def test_weights_not_regular_refused(tmp_path, kind):
    _net(tmp_path)
    target = tmp_path / "bad.npy"
    if kind == "devzero":
        os.symlink("/dev/zero", target)
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    p = tmp_path / "net.toml"
    p.write_text(NET.format(weights="bad.npy"))
    # a symbolic link out of the network's directory is refused before it is opened
    with pytest.raises(NetworkError, match="not a regular file" if kind != "devzero" else "leads out of"):
        load_network(p)


def test_network_file_device_refused(tmp_path):
    with pytest.raises(NetworkError, match="not a regular file"):
        load_network("/dev/zero")


# -- networks: data -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["devzero", "fifo"])
def test_data_not_regular_refused(tmp_path, kind):
    target = tmp_path / "d.csv"
    if kind == "devzero":
        os.symlink("/dev/zero", target)
    else:
        os.mkfifo(target)
    with pytest.raises(NetworkError, match="not a regular file"):
        R.load_array(target, "data")


def test_data_bomb_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "MAX_DATA_BYTES", 1_000_000)
    _bomb(tmp_path / "d.npz", "x", 4_000_000)
    with pytest.raises(NetworkError, match="uncompressed, more than the limit"):
        R.load_array(tmp_path / "d.npz", "data")


def test_data_and_labels_from_npz(tmp_path):
    _net(tmp_path)
    assert R.load_array(tmp_path / "data.npz", "data").shape == (6, 4)
    assert list(R.load_array(tmp_path / "data.npz", "labels", required=False)) == [0, 1, 2, 0, 1, 2]
    np.savez(tmp_path / "xonly.npz", x=np.ones((2, 4)))
    assert R.load_array(tmp_path / "xonly.npz", "labels", required=False) is None
    (tmp_path / "l.csv").write_text("0\n1\n2\n")
    assert R.load_array(tmp_path / "l.csv", "labels").shape == (3,)


def test_data_csv_error_does_not_quote_contents(tmp_path):
    (tmp_path / "d.csv").write_text("1,2\npassword=hunter2,3\n")
    with pytest.raises(NetworkError) as e:
        R.load_array(tmp_path / "d.csv", "data")
    assert "hunter2" not in str(e.value) and "line 2, field 1" in str(e.value)


def test_csv_forms_and_located_errors(tmp_path):
    from circuitkit.description import safeio
    from circuitkit.errors import DescriptionError
    f = tmp_path / "m.csv"
    f.write_bytes(b"\xef\xbb\xbf# written by a spreadsheet\n1, 2.5 # a comment\n\n-3e-3,4\r\n")
    assert safeio.read_matrix(f, None).tolist() == [[1.0, 2.5], [-3e-3, 4.0]]
    f.write_text("# c\n1,2\n3,4,5\n")
    with pytest.raises(DescriptionError, match="line 3 has 3 values, the first row 2"):
        safeio.read_matrix(f, None)
    f.write_text("1,2\n3,\n")
    with pytest.raises(DescriptionError, match="line 2, field 2 is not a number"):
        safeio.read_matrix(f, None)


def test_csv_size_bounded_before_parsing_and_parsed_without_python_lists(tmp_path):
    """The value count is bounded from the separators before parsing; parsing costs about the array
    itself (the old reader built Python lists: ~30 bytes a value, several GB for a legal 256 MB file)."""
    import tracemalloc
    from circuitkit.description import safeio
    from circuitkit.errors import DescriptionError
    f = tmp_path / "m.csv"
    f.write_text("\n".join(",".join(["0.25"] * 100) for _ in range(2000)) + "\n")   # 200,000 values, 1 MB
    with pytest.raises(DescriptionError, match="up to 200,001 values, more than the limit of 100,000"):
        safeio.read_array(f, None, max_array_bytes=800_000)
    data = f.read_bytes()
    tracemalloc.start()
    arr = safeio._csv(data, f, None, "data file")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert arr.shape == (2000, 100) and np.all(arr == 0.25)
    assert peak < 3 * arr.nbytes, peak                   # lists of floats: > 6 MB for these 1.6 MB


# -- infer-sweep ---------------------------------------------------------------------------------

def _sweep(tmp: Path, body: str) -> Path:
    _net(tmp)
    p = tmp / "sw.toml"
    p.write_text(body)
    return p


@pytest.mark.parametrize("network, data, key", [('"/dev/zero"', '"data.npz"', "network"),
                                                 ('"net.toml"', '"zero.csv"', "data"),
                                                 ('"net.toml"', '"fifo.csv"', "data")])
def test_infer_sweep_unreadable_inputs(tmp_path, network, data, key):
    from circuitkit.workloads.networks.sweep import run_sweep
    os.symlink("/dev/zero", tmp_path / "zero.csv")
    os.mkfifo(tmp_path / "fifo.csv")
    p = _sweep(tmp_path, f'network = {network}\ndata = {data}\n[parameters]\n"periphery.adc.bits" = [4, 8]\n')
    # refused unopened: an absolute path, a link out of the sweep's directory, a FIFO
    with pytest.raises(NetworkError, match="must be a path inside|leads out of|not a regular file") as e:
        run_sweep(p, tmp_path / "out", log=None)
    assert e.value.location.file == str(p) and e.value.location.parameter == key


def test_infer_sweep_checks_all_points_first(tmp_path):
    from circuitkit.workloads.networks.sweep import run_sweep
    p = _sweep(tmp_path, 'network = "net.toml"\ndata = "data.npz"\n[parameters]\n'
                         '"periphery.adc.bits" = [4, 8, 99]\n')
    with pytest.raises(NetworkError, match="point 3 of 3") as e:
        run_sweep(p, tmp_path / "out", log=None)
    assert e.value.location.file == str(p) and e.value.location.line == 4
    assert e.value.location.parameter == "periphery.adc.bits"
    assert not (tmp_path / "out").exists()          # nothing ran


def test_infer_sweep_keeps_finished_points(tmp_path, monkeypatch):
    import pandas as pd

    from circuitkit.workloads.networks import sweep as SW
    p = _sweep(tmp_path, 'network = "net.toml"\ndata = "data.npz"\n[parameters]\n'
                         '"periphery.adc.bits" = [4, 6, 8]\n')
    real, calls = SW.run_network, []

    def flaky(net, x, y):
        calls.append(net.periphery.adc_bits)
        if len(calls) == 3:
            raise CircuitkitError("simulated failure of point 3")
        return real(net, x, y)

    monkeypatch.setattr(SW, "run_network", flaky)
    with pytest.raises(CircuitkitError, match="point 3"):
        SW.run_sweep(p, tmp_path / "out", log=None)
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert list(table["periphery.adc.bits"]) == [4, 6]
    assert (tmp_path / "out" / "results.csv").exists()
    # the same command again resumes: only point 3 runs, and its row joins the two kept ones
    calls.clear()
    monkeypatch.setattr(SW, "run_network", lambda net, x, y: calls.append(net.periphery.adc_bits) or real(net, x, y))
    SW.run_sweep(p, tmp_path / "out", log=None)
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert calls == [8] and list(table["periphery.adc.bits"]) == [4, 6, 8]
    # nothing left to run: the table is written again whole (it was left empty: a KeyError in the plot)
    calls.clear()
    SW.run_sweep(p, tmp_path / "out", log=None)
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert calls == [] and list(table["periphery.adc.bits"]) == [4, 6, 8]
    # a new point before finished ones: the finished rows after it are kept (they were dropped)
    p2 = _sweep(tmp_path, 'network = "net.toml"\ndata = "data.npz"\n[parameters]\n'
                          '"periphery.adc.bits" = [3, 4, 6, 8]\n')
    SW.run_sweep(p2, tmp_path / "out", log=None)
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert calls == [3] and list(table["periphery.adc.bits"]) == [3, 4, 6, 8]
    assert list(pd.read_csv(tmp_path / "out" / "results.csv")["periphery.adc.bits"]) == [3, 4, 6, 8]
    p = _sweep(tmp_path, 'network = "net.toml"\ndata = "data.npz"\n[parameters]\n'
                         '"periphery.adc.bits" = [4, 6, 8]\n')
    # a changed weight file re-runs every point (the key covers the weights by content)
    calls.clear()
    np.savez(tmp_path / "w.npz", w1=np.random.default_rng(7).normal(size=(4, 3)))
    SW.run_sweep(p, tmp_path / "out", log=None)
    assert calls == [4, 6, 8]
    # a damaged table is set aside, not trusted and not lost
    calls.clear()
    (tmp_path / "out" / "results.parquet").write_bytes(b"not parquet")
    logs = []
    SW.run_sweep(p, tmp_path / "out", log=logs.append)
    assert calls == [4, 6, 8] and (tmp_path / "out" / "results.parquet.unreadable").read_bytes() == b"not parquet"
    assert any("unreadable" in m for m in logs)


# -- program --targets and state files -----------------------------------------------------------

PROG = "examples/programming/program_vcm.xbar"
TARGETS = "examples/programming/targets_4x4.csv"


def _program(tmp: Path, targets, *extra):
    from circuitkit.cli import main
    return main(["program", PROG, "--set", "n=4", "--targets", str(targets), "--policy", "verify",
                 "--max-rounds", "1", "--out", str(tmp / "out"), *extra])


@pytest.mark.parametrize("kind, words", [
    ("devzero", "not a regular file"), ("fifo", "not a regular file"),
    ("secret", "line 1, field 1 is not a number"), ("huge", "row 1, column 2 is not a number in the allowed"),
    ("negative", "row 2, column 1 is not a number in the allowed"), ("nan", "non-finite"),
    ("shape", "holds 1 x 2 values; the crossbar is 4 x 4")])
def test_program_targets_refused(tmp_path, capsys, kind, words):
    t = tmp_path / "t.csv"
    good = Path(TARGETS).read_text().splitlines()
    if kind == "devzero":
        os.symlink("/dev/zero", t)
    elif kind == "fifo":
        os.mkfifo(t)
    elif kind == "secret":
        t.write_text("password=hunter2\n")
    elif kind == "huge":
        t.write_text("\n".join(["1e-5,1e300,1e-5,1e-5"] + good[1:]) + "\n")
    elif kind == "negative":
        t.write_text("\n".join(good[:1] + ["-1e-5,1e-5,1e-5,1e-5"] + good[2:]) + "\n")
    elif kind == "nan":
        t.write_text("\n".join(["nan,1e-5,1e-5,1e-5"] + good[1:]) + "\n")
    else:
        t.write_text("1e-5,1e-5\n")
    rc = _program(tmp_path, t)
    err = capsys.readouterr().err
    assert rc == 2 and words in err and str(t) in err and "hunter2" not in err, err
    assert "Traceback" not in err


def test_program_targets_with_byte_order_mark(tmp_path):
    t = tmp_path / "t.csv"
    t.write_bytes(b"\xef\xbb\xbf" + Path(TARGETS).read_bytes())
    from circuitkit.workloads.programming.cli import load_targets
    np.testing.assert_array_equal(load_targets(t, (4, 4)), np.loadtxt(TARGETS, delimiter=","))


def test_program_writes_each_policy_when_it_finishes(tmp_path, monkeypatch):
    import json

    from circuitkit.workloads.programming import cli as PC
    real, calls = PC._array, []

    def flaky(args, design):
        calls.append(1)
        if len(calls) == 2:
            raise CircuitkitError("simulated failure of the second policy")
        return real(args, design)

    monkeypatch.setattr(PC, "_array", flaky)
    rc = _program(tmp_path, TARGETS, "--policy", "verify,ispp")
    assert rc != 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert list(summary["policies"]) == ["verify"] and summary["complete"] is False
    assert (tmp_path / "out" / "results.parquet").exists()


def test_state_file_read_once_through_safeio(tmp_path, monkeypatch):
    """The state file is read through safeio: a FIFO is refused unread (no hang), text never quoted."""
    from circuitkit.circuit import states
    from circuitkit.description import safeio
    from circuitkit.errors import DescriptionError
    os.mkfifo(tmp_path / "s.csv")
    with pytest.raises(DescriptionError, match="not a regular file"):
        states.load_matrix(tmp_path / "s.csv", None)
    (tmp_path / "s.csv").unlink()
    (tmp_path / "s.csv").write_text("0.5,secret_token\n")
    with pytest.raises(DescriptionError) as e:
        states.load_matrix(tmp_path / "s.csv", None)
    assert "secret_token" not in str(e.value)
    seen = []
    monkeypatch.setattr(safeio, "read_bytes", lambda *a, **k: seen.append(a[0]) or b"0.5,0.5\n")
    loadtxt = np.loadtxt               # numpy parses the bytes safeio read; it never opens a path itself
    monkeypatch.setattr(np, "loadtxt", lambda f, *a, **k: pytest.fail("np.loadtxt of a path")
                        if isinstance(f, (str, os.PathLike)) else loadtxt(f, *a, **k))
    assert states.load_matrix(tmp_path / "s.csv", None).shape == (1, 2) and len(seen) == 1


# -- snn task files ------------------------------------------------------------------------------

SNN_TASK = """array = "{array}"
[neuron]
tau = 0.2e-6
cm = 1e-12
threshold = 1.2
[task]
n_inputs = 4
k = 2
train = 1
test = 1
seed = 1
[run]
rules = ["stdp"]
step = 5e-9
max_chunk = 0.2e-6
eval_every = 10
"""


@pytest.mark.parametrize("old, new, key, words", [
    ("eval_every = 10", "eval_every = 0", "run.eval_every", "0 is outside [1,"),
    ("max_chunk = 0.2e-6", "max_chunk = 1e-18", "run.max_chunk", "outside [1e-12,"),
    ("max_chunk = 0.2e-6", "max_chunk = 1e-8", "run.max_chunk", "at least 4 time steps"),
    ("seed = 1", "seed = -1", "task.seed", "-1 is outside"),
    ("tau = 0.2e-6", "tau = nan", "neuron.tau", "must be finite"),
    ("tau = 0.2e-6", "tau = -1", "neuron.tau", "outside (0,"),
    ("cm = 1e-12", "cm = 0", "neuron.cm", "outside (0,"),
    ("threshold = 1.2", "threshold = true", "neuron.threshold", "must be a number"),
    ("train = 1\n", "train = 1e12\n", "task.train", "1000000000000 is outside [0, 100000]"),
    ("train = 1\n", "train = 1.5\n", "task.train", "must be an integer"),
    ("train = 1\n", "train = 1000000000000\n", "task.train", "outside [0, 100000]"),
    ("train = 1\ntest = 1\n", "train = 90000\ntest = 1000\n", "task.train", "CIRCUITKIT_MAX_TIMEPOINTS"),
    ("k = 2", "k = 4", "task.k", "less than n_inputs"),
    ("n_inputs = 4", "n_inputs = 4.5", "task.n_inputs", "must be an integer"),
    ('rules = ["stdp"]', "rules = [1]", "run.rules", "list of rules"),
    ("[run]", "[variability]\nseed = inf\n[run]", "variability.seed", "must be finite"),
    ("[run]", "[variability]\nron = 0.1\nseed = nan\n[run]", "variability.seed", "must be finite"),
    ("[run]", "[variability]\nnosuch = 0.1\n[run]", "variability.nosuch", "has no parameter"),
    ("[run]", "[c2c]\nkoff = inf\n[run]", "c2c.koff", "must be finite"),
])
def test_snn_task_values_checked(tmp_path, capsys, old, new, key, words):
    from circuitkit.cli import main
    array = (Path("testbenches") / "snn_vteam.xbar").resolve()
    text = SNN_TASK.format(array=array)
    assert old in text
    task = tmp_path / "t.toml"
    task.write_text(text.replace(old, new, 1))
    rc = main(["snn", str(task), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    assert f"{task}:" in err and f"parameter '{key}'" in err and words in err, err
    table, name = key.split(".")
    assert f"[{table}] {name}" in err


@pytest.mark.parametrize("flag, value, words", [("--train", "1000000000", "outside [0, 100000]"),
                                                ("--spread", "nan", "must be finite")])
def test_snn_command_line_values_checked(tmp_path, capsys, flag, value, words):
    from circuitkit.cli import main
    task = tmp_path / "t.toml"
    task.write_text(SNN_TASK.format(array=(Path("testbenches") / "snn_vteam.xbar").resolve()))
    rc = main(["snn", str(task), "--out", str(tmp_path / "o"), flag, value])
    err = capsys.readouterr().err
    assert rc == 2 and flag in err and words in err, err


def test_snn_task_file_not_regular(tmp_path, capsys):
    from circuitkit.cli import main
    os.mkfifo(tmp_path / "t.toml")
    rc = main(["snn", str(tmp_path / "t.toml"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "not a regular file" in capsys.readouterr().err


# -- sweep: inputs digest -------------------------------------------------------------------------

def test_sweep_inputs_digest_is_bounded(tmp_path):
    """A 6 GB (sparse) .xbar quoted in a comment or a title is not read; data files named only in
    comments are not hashed; a FIFO is never opened."""
    import tracemalloc

    from circuitkit.sweep.runner import inputs_digest
    with open(tmp_path / "big.xbar", "wb") as fh:
        fh.truncate(6 << 30)
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "data.csv").write_text("1,2\n")
    (tmp_path / "inc.xbar").write_text("param q = 1\n")
    desc = tmp_path / "d.xbar"
    desc.write_text('title "big.xbar"\n# include "big.xbar", file("data.csv"), "pipe.csv"\n'
                    'include "inc.xbar"\nparam p = 1  # "data.csv"\n')
    tracemalloc.start()
    a = inputs_digest(desc, {})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 << 20
    (tmp_path / "data.csv").write_text("3,4\n")
    assert inputs_digest(desc, {}) == a                 # only named in comments
    (tmp_path / "inc.xbar").write_text("param q = 2\n")
    assert inputs_digest(desc, {}) != a                 # an included file counts


def test_pulse_predictor_file_is_read_safely(tmp_path):
    """``--model``: the pulse-predictor file goes through the safe reader (regular file, size limit) and a
    zip whose members claim to decompress past the limit is refused before anything is decompressed."""
    import zipfile

    from circuitkit.errors import CircuitkitError
    from circuitkit.workloads.programming.predictor import MAX_MODEL_BYTES, PulsePredictor
    shipped = Path(__file__).resolve().parent.parent / "examples" / "programming" / "vcm_predictor.npz"
    assert PulsePredictor.load(shipped).meta["format"]               # the shipped model still loads
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    with pytest.raises(CircuitkitError, match="not a regular file"):
        PulsePredictor.load(fifo)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("w0.npy", b"\0" * (4 * MAX_MODEL_BYTES + 1))       # compresses to a few kB
    assert bomb.stat().st_size < MAX_MODEL_BYTES
    with pytest.raises(CircuitkitError, match="decompress to"):
        PulsePredictor.load(bomb)


def test_infer_sweep_labels_pair_with_the_whole_data(tmp_path):
    from circuitkit.workloads.networks.sweep import run_sweep
    p = _sweep(tmp_path, 'network = "net.toml"\ndata = "data.npz"\nlabels = "l.npy"\nlimit = 3\n[parameters]\n'
                         '"periphery.adc.bits" = [4]\n')
    np.save(tmp_path / "l.npy", np.arange(5) % 3)           # 5 labels for the 6 inputs of data.npz
    with pytest.raises(NetworkError, match="5 labels for 6 inputs") as e:
        run_sweep(p, tmp_path / "out", log=None)
    assert e.value.location.file == str(p) and e.value.location.parameter == "labels"
    assert not (tmp_path / "out").exists()


# -- a second hostile-input audit: network sweeps, oversized values, decompression ------------------

@pytest.mark.parametrize("body, key, words", [
    ('name = "/tmp/x"\nnetwork = "net.toml"\ndata = "data.npz"\n', "name", "must be a plain name"),
    ('name = "../../x"\nnetwork = "net.toml"\ndata = "data.npz"\n', "name", "must be a plain name"),
    ('name = 5\nnetwork = "net.toml"\ndata = "data.npz"\n', "name", "must be a plain name"),
    ('network = "../net.toml"\ndata = "data.npz"\n', "network", "no absolute path, '~' or '..'"),
    ('network = "/etc/passwd"\ndata = "data.npz"\n', "network", "no absolute path"),
    ('network = "data.npz"\ndata = "data.npz"\n', "network", "must name a .toml network file"),
    ('network = "net.toml"\ndata = "data.npz"\nzip = 5\n', "zip", "must be a list of lists"),
    ('network = "net.toml"\ndata = "data.npz"\nzip = [5]\n', "zip", "must be a list of lists"),
])
def test_infer_sweep_names_and_paths_stay_inside(tmp_path, body, key, words):
    """A sweep's name chose its output directory unchecked (an absolute name wrote /tmp/x/...); its
    network could be any file, whose keys the errors then quoted; zip = 5 was a TypeError."""
    from circuitkit.workloads.networks.sweep import run_sweep
    p = _sweep(tmp_path, body + '[parameters]\n"periphery.adc.bits" = [4, 8]\n')
    with pytest.raises(NetworkError, match=words) as e:
        run_sweep(p, tmp_path / "out", log=None)
    assert e.value.location.parameter == key
    assert not (tmp_path / "out").exists()


def test_integers_beyond_64_bits_are_refused_at_their_key(tmp_path):
    big = "1" + "0" * 400
    p = _sweep(tmp_path, f'network = "net.toml"\ndata = "data.npz"\n[parameters]\n"periphery.adc.bits" = [{big}]\n')
    from circuitkit.workloads.networks.sweep import run_sweep
    with pytest.raises(NetworkError, match="an integer beyond"):
        run_sweep(p, tmp_path / "out", log=None)
    net = tmp_path / "net.toml"
    with pytest.raises(NetworkError, match="'seed': an integer beyond") as e:
        load_network(net, {"seed": big})
    assert e.value.location.parameter == "seed"


def test_a_small_archive_of_a_huge_array_is_refused_before_decompressing(tmp_path, monkeypatch):
    """1.8 MB of .npz held 1.9 GB of uint8 zeros, 15 GB once converted to float64 (the check counted the
    stored bytes): refused from the member's header, by its size as float64. Here at a 64 MB memory limit
    (data: 16 MB): 4.8 MB of uint8, 38 MB as float64."""
    from circuitkit import limits
    monkeypatch.setattr(limits, "_configured", None)
    limits.configure(memory=64 << 20)
    try:
        x = np.zeros((600_000, 8), np.uint8)
        np.savez_compressed(tmp_path / "bomb.npz", x=x)
        assert (tmp_path / "bomb.npz").stat().st_size < 100_000
        with pytest.raises(NetworkError, match=r"4,800,000 values \(38,400,000 bytes as float64\), more than"):
            R.load_array(tmp_path / "bomb.npz", "data")
        np.savez_compressed(tmp_path / "ok.npz", x=x[:100_000])          # 6.4 MB as float64: read
        assert R.load_array(tmp_path / "ok.npz", "data").shape == (100_000, 8)
    finally:
        limits.configure()


def test_run_directories_are_read_as_untrusted_files(tmp_path, capsys):
    """program compare/report and the sweep store read their own earlier files back: a summary.json
    linked to /dev/zero exhausted memory, a FIFO hung, a summary without the run's tables was a
    KeyError traceback (audit). Now: refused unopened or named in one line; a damaged point re-runs."""
    from circuitkit.cli import main
    from circuitkit.sweep.store import PointStore
    for name in ("z", "f", "a", "b"):
        (tmp_path / name).mkdir()
    os.symlink("/dev/zero", tmp_path / "z" / "summary.json")
    os.mkfifo(tmp_path / "f" / "summary.json")
    (tmp_path / "a" / "summary.json").write_text("{}")
    for bad, words in (("z", "not a regular file"), ("f", "not a regular file"), ("a", "no 'policies'")):
        assert main(["program", "compare", str(tmp_path / bad), str(tmp_path / "b")]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err
    assert main(["program", "report", str(tmp_path / "a"), "--out", str(tmp_path / "rep")]) == 2
    assert "no 'policies'" in capsys.readouterr().err
    store = PointStore(tmp_path / "sweep")
    store.prepare()
    os.symlink("/dev/zero", store.point_path("aaaa"))
    os.mkfifo(store.point_path("bbbb"))
    (store.root / "sweep.json").symlink_to("/dev/zero")
    assert store.read_point("aaaa") is None and store.read_point("bbbb") is None
    assert store.finished() == {} and store.manifest() is None


def test_errors_stay_on_one_line(tmp_path, capsys):
    """A quoted TOML key with a newline reached the error text raw: a second, forged line (audit)."""
    from circuitkit.cli import main
    _net(tmp_path)
    text = (tmp_path / "net.toml").read_text()
    (tmp_path / "net.toml").write_text('"x\\nerror: none, all good" = 1\n' + text)
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 4)))
    assert main(["infer", str(tmp_path / "net.toml"), "--data", str(tmp_path / "d.npz"),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "x\\nerror: none, all good" in err
