"""Networks on tiled crossbars (circuitkit.workloads.networks).

The network is small and closed-form trained on scikit-learn's digits: a fixed random ReLU
hidden layer and a least-squares output layer; accuracy is always measured against the data
set's own labels. Expected values are derived: an ideal periphery (no wires, no converters) on
linear cells must give the float network to rounding; energies against sum G V^2; ngspice is the
second simulator for tile reads.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from circuitkit.cli import main as cli_main
from circuitkit.workloads.networks import NetworkError, float_forward, load_network, run_network
from circuitkit.workloads.networks import tiles as T

NET = """
name = "tiny"
seed = 5
[input]
range = [0.0, 16.0]
[tile]
rows = 24
cols = 16
[mapping]
kind = "{mapping}"
vread = 0.2
[device]
model = "vteam"
params = {{ ron = 10e3, roff = 100e3, iv = 0, voff = 0.3, von = -0.3 }}
[periphery]
dac = {{ bits = 8 }}
wires = {{ r_row = 1.0, r_col = 1.0 }}
tia = {{ rf = 1e3 }}
adc = {{ bits = 8, calibration = "batch", samples = 32 }}
[[layers]]
name = "hidden"
weights = "w.npz:w1"
bias = "w.npz:b1"
activation = "{act}"
[[layers]]
name = "out"
weights = "w.npz:w2"
bias = "w.npz:b2"
activation = "argmax"
"""


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.data.astype(float), d.target.astype(np.int64)


def _write(tmp: Path, digits, mapping="differential", act="relu", hidden=12) -> Path:
    x, y = digits
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(64, hidden)) / 16.0
    b1 = rng.normal(size=hidden) * 0.1
    h = x[:1000] @ w1 + b1
    h = np.maximum(h, 0) if act == "relu" else h
    a = np.hstack([h, np.ones((1000, 1))])
    sol = np.linalg.lstsq(a, np.eye(10)[y[:1000]], rcond=None)[0]
    np.savez(tmp / "w.npz", w1=w1, b1=b1, w2=sol[:-1], b2=sol[-1])
    p = tmp / "net.toml"
    p.write_text(NET.format(mapping=mapping, act=act))
    return p


def test_ideal_periphery_reproduces_float_network(tmp_path, digits):
    """No wires, ideal DAC/ADC, linear cells: the hardware is the float network to rounding."""
    x, y = digits
    ideal = {"periphery.wires.r_row": "0", "periphery.wires.r_col": "0",
             "periphery.dac.bits": "0", "periphery.adc.bits": "0"}
    for mapping, act in (("differential", "relu"), ("offset", "none")):   # offset mapping; signed inputs
        net = load_network(_write(tmp_path, digits, mapping, act), ideal)
        xs, ys = x[1500:1530], y[1500:1530]
        res = run_network(net, xs, ys)
        want = float_forward(net, xs)[-1]
        assert np.allclose(res.outputs, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
        assert res.accuracy == pytest.approx(np.mean(np.argmax(want, 1) == ys))
        per = 16 // 2 if mapping == "differential" else 16 - 1       # outputs per 24x16 tile
        assert res.layers[0].tiles == -(-64 // 24) * -(-12 // per)
        assert res.layers[1].tiles == -(-10 // per)
        assert res.layers[1].signed_inputs == (act == "none")


def test_converters_and_wires_change_accuracy(tmp_path, digits):
    x, y = digits
    path = _write(tmp_path, digits)
    xs, ys = x[1500:1620], y[1500:1620]
    r8 = run_network(load_network(path), xs, ys)
    r3 = run_network(load_network(path, {"periphery.adc.bits": "3"}), xs, ys)
    # labels come from the data: the float network is not perfect, the hardware is measured against the data
    assert r8.float_accuracy < 1.0
    assert abs(r8.accuracy - r8.float_accuracy) <= 0.02          # 1 ohm wires, 8-bit converters
    assert not np.array_equal(r3.outputs, r8.outputs)
    assert r3.layers[1].rel_error > 2 * r8.layers[1].rel_error    # 3-bit quantisation error dominates
    rw = run_network(load_network(path, {"periphery.wires.r_row": "40", "periphery.wires.r_col": "40"}), xs, ys)
    assert rw.layers[0].rel_error > 3 * r8.layers[0].rel_error    # IR drop
    # one conversion per input per column; the converter energy model is exactly FoM * 2^bits per conversion
    cols = sum(s[1] for s in r8.layers[0].tile_shapes)
    assert r8.layers[0].adc_conversions == len(xs) * cols
    assert r8.layers[0].energy_adc_j == pytest.approx(cols * 5e-15 * 2 ** 8)
    assert r3.layers[0].energy_adc_j == pytest.approx(cols * 5e-15 * 2 ** 3)


def test_adc_clipping_is_counted(tmp_path, digits):
    x, y = digits
    path = _write(tmp_path, digits)
    r = run_network(load_network(path, {"periphery.adc.vmin": "-0.01", "periphery.adc.vmax": "0.0"}),
                    x[1500:1520], y[1500:1520])
    # ground truth: TIA swings larger than 10 mV exist; the count is bounded by the conversions
    assert 0 < r.layers[0].adc_clipped <= r.layers[0].adc_conversions


def test_adc_clipping_counts_what_changes_a_code(tmp_path, digits):
    """A conversion is clipped where the clip changes its code: more than half an LSB outside the range
    (``peripherals.adc_clip``, as a crossbar's ``outputs.adc_clipped``). The networks counted any excess."""
    x, y = digits
    path = _write(tmp_path, digits)
    xs, ys = x[1500:1520], y[1500:1520]
    # the range calibrated on all 20 inputs with no margin: [-M, 0] per tile, M the largest TIA swing
    cal = run_network(load_network(path, {"periphery.adc.samples": "1000", "periphery.adc.margin": "1"}), xs, ys)
    M = max(-lo for lo, _ in cal.layers[0].adc_ranges)
    assert M > 0 and cal.layers[0].adc_clipped == 0
    # 1 bit over [-M/1.4, 0]: every TIA voltage lies within [1.4 vmin, 0], inside half an LSB (|vmin|/2) of the
    # range, so no code changes; the largest swing is past vmin (counted as clipped before)
    def run(vmin):
        net = load_network(path, {"periphery.adc.bits": "1", "periphery.adc.vmin": repr(vmin),
                                  "periphery.adc.vmax": "0"})
        return run_network(net, xs, ys).layers[0]
    assert run(-M / 1.4).adc_clipped == 0
    # over [-M/1.6, 0] the largest swing is past 1.5 vmin: its code is clipped
    assert run(-M / 1.6).adc_clipped >= 1


def test_tile_energy_is_sum_g_v2_without_wires(tmp_path, digits):
    net = load_network(_write(tmp_path, digits), {"periphery.wires.r_row": "0", "periphery.wires.r_col": "0"})
    tile = T.make_tiles(net, 0)[0]
    reader = T.TileReader(T.build_tile(net, tile, tile.states), net.vread)
    u = np.random.default_rng(1).uniform(0, 0.2, (3, tile.shape[0]))
    out = reader.read(u, energy=True)
    g = tile.g_target                    # states were mapped to reach exactly these conductances
    assert np.allclose(out.power["cell"], np.einsum("ki,ij,ki->k", u, g, u), rtol=1e-6)
    assert np.allclose(out.currents, u @ g, rtol=1e-6)


def test_tile_energy_matches_the_energy_module(tmp_path, digits):
    """Dissipation from the batched nonlinear solve = circuitkit.energy on the engine's own operating point."""
    from circuitkit.energy import simulate_energy
    net = load_network(_write(tmp_path, digits), {"device.model": "stanford_pku", "device.params": "{}",
                                                  "periphery.wires.r_row": "2", "periphery.wires.r_col": "2"})
    tile = T.make_tiles(net, 0)[0]
    u = np.random.default_rng(2).uniform(0, 0.2, (1, tile.shape[0]))
    mine = T.TileReader(T.build_tile(net, tile, tile.states), net.vread).read(u, energy=True).power
    _, e = simulate_energy(T.build_tile(net, tile, tile.states, u[0]), "behavioural")
    parts = e.totals
    cells = parts["cells_selected"] + parts["cells_half_selected"] + parts["cells_unselected"]
    t = net.periphery.t_read
    assert mine["cell"][0] * t == pytest.approx(cells, rel=1e-6)
    assert mine["wire"][0] * t == pytest.approx(parts["wires"], rel=1e-6)


def test_nonlinear_tile_reads_go_through_the_engines_batched_reads(tmp_path, digits):
    """Nonlinear tiles are read by behavioural.batch (the one entry point for reads); an independent exact
    nodal solve (tests/test_reads_reference.py) gives the same node voltages and currents."""
    from test_reads_reference import exact_reads
    net = load_network(_write(tmp_path, digits), {"device.model": "stanford_pku", "device.params": "{}",
                                                  "periphery.wires.r_row": "2", "periphery.wires.r_col": "2"})
    tile = T.make_tiles(net, 0)[0]
    reader = T.TileReader(T.build_tile(net, tile, tile.states), net.vread)
    assert not reader.linear
    u = np.random.default_rng(3).uniform(0, 0.2, (5, tile.shape[0]))
    out = reader.read(u)
    assert reader.solver.startswith("behavioural.batch")
    V, _ = reader.solve(u)
    exact, W = exact_reads(reader.circuit, u, voltages=True)
    assert np.max(np.abs(V - W)) <= 1e-8 * np.max(np.abs(W))
    assert np.allclose(out.currents, exact, rtol=1e-9, atol=1e-15)
    from circuitkit.behavioural import read_crossbar
    ref = read_crossbar(reader.circuit, u, force="newton").currents
    assert np.allclose(out.currents, ref, rtol=1e-9, atol=1e-15)


def test_read_noise_is_seeded(tmp_path, digits):
    x, y = digits
    path = _write(tmp_path, digits)
    ov = {"device.read_noise.sigma": "0.05", "device.read_noise.batch": "8"}
    xs, ys = x[1500:1520], y[1500:1520]
    a = run_network(load_network(path, ov), xs, ys)
    b = run_network(load_network(path, ov), xs, ys)
    c = run_network(load_network(path, {**ov, "seed": "6"}), xs, ys)
    clean = run_network(load_network(path), xs, ys)
    assert np.array_equal(a.outputs, b.outputs)
    assert not np.array_equal(a.outputs, c.outputs)
    assert a.layers[0].rel_error > clean.layers[0].rel_error
    f = load_network(path, {"device.faults.on": "0.1", "device.variability.sigma.roff": "0.2"})
    assert run_network(f, xs, ys).layers[0].rel_error > clean.layers[0].rel_error


@pytest.mark.spice
@pytest.mark.parametrize("model", ["vteam", "stanford_pku"])
def test_verify_tile_against_ngspice(tmp_path, digits, model):
    """One tile checked in ngspice (the second simulator): the engine contract 1e-6 relative."""
    x, y = digits
    path = _write(tmp_path, digits)
    text = path.read_text().split("[[layers]]")
    path.write_text("[[layers]]".join(text[:2]).replace('activation = "relu"', 'activation = "argmax"')
                    .replace("w.npz:w1", "w.npz:w1").replace("rows = 24", "rows = 64").replace("cols = 16", "cols = 8"))
    ov = {} if model == "vteam" else {"device.model": "stanford_pku", "device.params": "{}"}
    net = load_network(path, ov)
    assert len(net.layers) == 1
    res = run_network(net, x[:4], None, verify_tiles=1, verify_vectors=1)
    assert len(res.verify) == 1 and res.verify[0].vectors == 1
    assert res.verify[0].rel_error <= 1e-6 and res.verify_ok
    if model == "stanford_pku":      # the nonlinear path really ran
        assert "Newton" in res.layers[0].read_method


def test_errors_name_file_line_and_key(tmp_path, digits):
    path = _write(tmp_path, digits)
    text = path.read_text()
    cases = [
        (text.replace("bits = 8 }\nwires", "bits = 99 }\nwires"), "periphery.dac.bits", "<= 24"),
        (text.replace("kind = \"differential\"", "kind = \"diagonal\""), "mapping.kind", "one of"),
        (text.replace("[tile]", "[tile]\nsize = 3"), "tile.size", "unknown key"),
        (text.replace("w.npz:w2", "missing.npy"), "layers.1.weights", "not found"),
        (text.replace("w.npz:w2", "w.npz:nokey"), "layers.1.weights", "no array 'nokey'"),
        (text.replace("w.npz:w2", "net.toml"), "layers.1.weights", "only .npy and .npz"),
        (text.replace("w.npz:w2", "w.npz:w1"), "layers.1.weights", "takes 64 inputs"),
        (text.replace("ron = 10e3", "ron = -1"), "device.params", "ron"),
        (text.replace("model = \"vteam\"", "model = \"nosuch\""), "device.model", "unknown device model"),
    ]
    for k, (bad, key, words) in enumerate(cases):
        p = tmp_path / f"bad{k}.toml"
        p.write_text(bad)
        with pytest.raises(NetworkError) as exc:
            load_network(p)
        msg = str(exc.value)
        assert f"parameter '{key}'" in msg and words in msg and str(p) in msg, msg
        assert exc.value.location.line is not None, msg
        assert key.split(".")[-1].split("_")[0] in bad.splitlines()[exc.value.location.line - 1] or \
            key.startswith("device.params"), msg
    # reads that would move the cells (VTEAM threshold 20 mV below the 0.2 V read) are refused
    with pytest.raises(NetworkError, match="would move the 'vteam' cells' state"):
        run_network(load_network(path, {"device.params.voff": "0.02"}), digits[0][:2])
    with pytest.raises(NetworkError, match="no entry 5"):
        load_network(path, {"layers.5.activation": "relu"})
    with pytest.raises(NetworkError, match="must be an integer"):
        load_network(path, {"periphery.adc.bits": "eight"})


def test_cli_infer(tmp_path, digits, capsys):
    x, y = digits
    path = _write(tmp_path, digits)
    np.savez(tmp_path / "data.npz", x=x[1500:1516], y=y[1500:1516])
    out = tmp_path / "out"
    assert cli_main(["infer", str(path), "--data", str(tmp_path / "data.npz"), "--out", str(out),
                     "--set", "periphery.adc.bits=6"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"] == 16 and summary["overrides"] == {"periphery.adc.bits": 6}
    import pandas as pd
    pred = pd.read_parquet(out / "predictions.parquet")
    assert (pred["label"].to_numpy() == y[1500:1516]).all()
    assert summary["accuracy"] == pytest.approx(np.mean(pred["prediction"] == pred["label"]))
    assert (out / "network.png").stat().st_size > 0 and (out / "layers.parquet").exists()
    np.save(tmp_path / "bad.npy", x[:3, :10])
    assert cli_main(["infer", str(path), "--data", str(tmp_path / "bad.npy"), "--out", str(out)]) == 2
    assert "expected (n, 64)" in capsys.readouterr().err


def test_network_sweep(tmp_path, digits):
    from circuitkit.workloads.networks.sweep import run_sweep
    x, y = digits
    path = _write(tmp_path, digits)
    np.savez(tmp_path / "data.npz", x=x[1500:1540], y=y[1500:1540])
    (tmp_path / "sw.toml").write_text('network = "net.toml"\ndata = "data.npz"\n[parameters]\n'
                                      '"periphery.adc.bits" = [2, 8]\n')
    table = run_sweep(tmp_path / "sw.toml", tmp_path / "sw", log=None)
    assert list(table["periphery.adc.bits"]) == [2, 8]
    assert table["accuracy"].iloc[0] < table["accuracy"].iloc[1]
    assert (tmp_path / "sw" / "accuracy_energy.png").exists() and (tmp_path / "sw" / "results.parquet").exists()


def test_padded_tiles(tmp_path, digits):
    """Full-size tiles: without wires the unused cells carry no current (same outputs); with wires they
    load the word lines, so the IR-drop error grows."""
    x, y = digits
    path = _write(tmp_path, digits)
    xs, ys = x[1500:1530], y[1500:1530]
    ideal = {"periphery.wires.r_row": "0", "periphery.wires.r_col": "0", "periphery.adc.bits": "0",
             "tile.cols": "48"}
    a = run_network(load_network(path, ideal), xs, ys)
    b = run_network(load_network(path, {**ideal, "tile.pad": "true"}), xs, ys)
    assert b.layers[1].tile_shapes == [[24, 48]] and a.layers[1].tile_shapes == [[12, 20]]
    assert np.allclose(a.outputs, b.outputs, rtol=1e-9, atol=1e-12)
    wires = {"periphery.wires.r_row": "20", "periphery.wires.r_col": "20", "periphery.adc.bits": "0",
             "tile.cols": "48"}
    c = run_network(load_network(path, wires), xs, ys)
    d = run_network(load_network(path, {**wires, "tile.pad": "true"}), xs, ys)
    assert d.layers[1].rel_error > c.layers[1].rel_error


# -- ADC calibration, sizes (from the independent audit of the workload) ----------------------------

def test_batch_calibration_covers_both_halves_of_signed_inputs(tmp_path, digits):
    """With every input in the calibration batch, no conversion can fall outside the range the batch set
    (the same reads are converted). The signed layer's u- reads used to be converted over the range of
    the u+ reads alone: most of them clipped."""
    x, y = digits
    path = _write(tmp_path, digits, act="none")
    xs, ys = x[1500:1530], y[1500:1530]
    r = run_network(load_network(path, {"periphery.adc.samples": "30"}), xs, ys)
    assert r.layers[1].signed_inputs
    assert r.layers[1].adc_conversions > 0 and r.layers[1].adc_clipped == 0
    assert r.layers[0].adc_clipped == 0


def test_calibration_ignores_noise_batches_and_padding(tmp_path, digits):
    """Batch calibration uses the first ``adc.samples`` inputs however read noise batches them; weight
    calibration counts only the block's own rows (padded rows sit at 0 V and draw nothing)."""
    x, y = digits
    path = _write(tmp_path, digits)
    xs, ys = x[1500:1520], y[1500:1520]
    base = {"periphery.adc.samples": "16"}
    a = run_network(load_network(path, base), xs, ys)
    noisy = {**base, "device.read_noise.sigma": "1e-12", "device.read_noise.batch": "3"}
    b = run_network(load_network(path, noisy), xs, ys)
    for la, lb in zip(a.layers, b.layers):
        assert np.allclose(la.adc_ranges, lb.adc_ranges, rtol=1e-6)
    ideal = {"periphery.wires.r_row": "0", "periphery.wires.r_col": "0", "periphery.adc.calibration": "weights",
             "tile.cols": "48"}
    c = run_network(load_network(path, ideal), xs, ys)
    d = run_network(load_network(path, {**ideal, "tile.pad": "true"}), xs, ys)
    assert d.layers[1].tile_shapes == [[24, 48]]
    assert np.allclose(c.layers[1].adc_ranges, d.layers[1].adc_ranges, rtol=1e-12)
    assert np.allclose(c.outputs, d.outputs, rtol=1e-9, atol=1e-12)


def test_labels_must_pair_with_inputs_before_limit(tmp_path, digits, capsys):
    x, y = digits
    path = _write(tmp_path, digits)
    np.savez(tmp_path / "d.npz", x=x[:10], y=y[:9])
    assert cli_main(["infer", str(path), "--data", str(tmp_path / "d.npz"), "--limit", "5",
                     "--out", str(tmp_path / "o")]) == 2
    assert "9 labels for 10 inputs" in capsys.readouterr().err


def test_tile_count_and_tile_memory_refused_before_running(tmp_path, digits, monkeypatch):
    from circuitkit import limits
    from circuitkit.workloads.networks import spec as S
    path = _write(tmp_path, digits)
    monkeypatch.setattr(S, "MAX_TILES", 800)    # 1x2 tiles: 64 x 12 for the hidden layer, 12 x 10 for the output
    with pytest.raises(NetworkError, match="888 tiles of 1x2, more than the limit of 800") as e:
        load_network(path, {"tile.rows": "1", "tile.cols": "2"})
    assert e.value.location.parameter == "tile.rows"
    net = load_network(path, {"tile.rows": "64", "tile.cols": "64", "tile.pad": "true"})
    tile = T.make_tiles(net, 0)[0]
    limits.configure(memory=50 << 20)
    try:
        with pytest.raises(NetworkError, match="over the limit .* smaller tiles") as e:
            T.build_tile(net, tile, tile.states)
        assert e.value.location.parameter == "tile.rows"
    finally:
        limits.configure()


def test_network_sweep_interrupted_keeps_every_finished_point(tmp_path, digits, monkeypatch):
    """A run interrupted after a new point keeps the earlier run's later points (it rewrote the table with
    only the rows it had reached, so finished points were lost and ran again)."""
    import pandas as pd

    import circuitkit.workloads.networks.sweep as S
    x, y = digits
    _write(tmp_path, digits)
    np.savez(tmp_path / "data.npz", x=x[1500:1510], y=y[1500:1510])
    sw = tmp_path / "sw.toml"
    head = 'network = "net.toml"\ndata = "data.npz"\n[parameters]\n'
    sw.write_text(head + '"periphery.adc.bits" = [2, 8]\n')
    S.run_sweep(sw, tmp_path / "sw", log=None)
    sw.write_text(head + '"periphery.adc.bits" = [2, 3, 4, 8]\n')
    real, calls = S.run_network, []

    def interrupted(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt            # Ctrl-C during the second new point
        return real(*a, **kw)
    monkeypatch.setattr(S, "run_network", interrupted)
    with pytest.raises(KeyboardInterrupt):
        S.run_sweep(sw, tmp_path / "sw", log=None)
    table = pd.read_parquet(tmp_path / "sw" / "results.parquet")
    assert list(table["periphery.adc.bits"]) == [2, 3, 8]
    monkeypatch.setattr(S, "run_network", real)
    calls.clear()
    monkeypatch.setattr(S, "run_network", lambda *a, **kw: (calls.append(1), real(*a, **kw))[1])
    table = S.run_sweep(sw, tmp_path / "sw", log=None)
    assert list(table["periphery.adc.bits"]) == [2, 3, 4, 8] and len(calls) == 1     # only the point never run
