"""Network benchmarks (issue 12): whole networks on tiled crossbars, ratios measured side by side.

* ``digits``: all 1,797 digits through the 64-64-10 MLP (examples/digits) on 64x64 tiles with 1 ohm
  wires and 8-bit converters, with linear (``vteam``, ``iv = 0``) and nonlinear (``stanford_pku``)
  cells: wall and CPU time, images per second; and the ratio against reading the same tiles with the
  behavioural engine's full nodal solve (``circuitkit.behavioural.simulate`` of an operating point)
  once per image and tile, timed on a few images of the first layer and compared per tile read. The
  currents of both agree (reported).
* ``tile512``: one 512x512 tile of ``stanford_pku`` cells (1 ohm wires) read for a batch of vectors
  with the nonlinear batched read, in a child process: reads per second and the child's peak RSS.

``python -m benchmarks.networks [--quick]``; results go to build/bench/networks.json. To run it from
``make bench``: in ``benchmarks/__main__.py`` add ``"networks"`` to ``NAMES`` and
``if "networks" in chosen: results["networks"] = networks.bench_networks(quick=q)`` (with
``from . import networks``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "bench"
DIGITS = REPO / "examples" / "digits"


def _digits_ready() -> None:
    if not (DIGITS / "weights.npz").exists() or not (DIGITS / "all.npz").exists():
        import runpy
        runpy.run_path(str(DIGITS / "train.py"), run_name="train")["train"](DIGITS)


def bench_digits(model: str = "vteam", n: int | None = None, full_images: int = 5) -> dict:
    from circuitkit.behavioural import simulate as behavioural_simulate
    from circuitkit.peripherals import dac_quantize
    from circuitkit.workloads.networks import load_network, run_network
    from circuitkit.workloads.networks import tiles as T

    _digits_ready()
    ov = {} if model == "vteam" else {"device.model": model, "device.params": "{}"}
    net = load_network(DIGITS / "network.toml", ov)
    with np.load(DIGITS / "all.npz") as f:
        x, y = f["x"], f["y"]
    if n:
        x, y = x[:n], y[:n]
    w0, c0 = time.perf_counter(), time.process_time()
    res = run_network(net, x, y, energy_samples=16)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    tile_reads = len(x) * sum(L.tiles for L in res.layers)
    # the same tiles read by the full nodal solve, one image at a time (first layer, a few images)
    tiles = T.make_tiles(net, 0)
    u = np.clip(x[:full_images] / net.input_max, 0, 1) * net.vread
    u = dac_quantize(u, net.periphery.dac_bits, 0.0, net.vread)
    fw, fc = time.perf_counter(), time.process_time()
    full = []
    for tile in tiles:
        for v in u:
            circuit = T.build_tile(net, tile, tile.states, v[tile.rows])
            wf = behavioural_simulate(circuit)
            sig = circuit.crossbar.current_signals
            full.append([float(np.asarray(wf.signals[sig[j]]).reshape(-1)[-1]) for j in range(tile.shape[1])])
    full_wall, full_cpu = time.perf_counter() - fw, time.process_time() - fc
    fast = np.vstack([T.TileReader(T.build_tile(net, t, t.states), net.vread).read(u[:, t.rows]).currents
                      for t in tiles])
    err = float(np.abs(np.array(full) - fast).max() / np.abs(fast).max())
    per_read_fast = cpu / tile_reads
    per_read_full = full_cpu / (len(tiles) * len(u))
    out = {"model": model, "images": len(x), "tiles": sum(L.tiles for L in res.layers), "wall_s": wall,
           "cpu_s": cpu, "images_per_s_wall": len(x) / wall, "images_per_s_cpu": len(x) / cpu,
           "accuracy": res.accuracy, "float_accuracy": res.float_accuracy,
           "full_solve_cpu_per_tile_read_s": per_read_full, "batched_cpu_per_tile_read_s": per_read_fast,
           "speedup_cpu": per_read_full / per_read_fast,
           "speedup_wall": (full_wall / (len(tiles) * len(u))) / (wall / tile_reads),
           "full_vs_batched_rel_current_error": err}
    print(f"digits {model}: {len(x)} images in {wall:.1f} s wall / {cpu:.1f} s CPU "
          f"({len(x) / cpu:.0f} images/s CPU), accuracy {res.accuracy:.4f} (float {res.float_accuracy:.4f}); "
          f"full nodal solve per image and tile {per_read_full * 1e3:.1f} ms CPU vs batched "
          f"{per_read_fast * 1e3:.3f} ms: x{out['speedup_cpu']:.0f} (currents agree to {err:.1e})")
    return out


def _tile512_child(size: int, vectors: int, model: str) -> dict:
    import resource

    from circuitkit.workloads.networks import tiles as T
    from circuitkit.workloads.networks.spec import DeviceSpec, Layer, Network, Periphery

    rng = np.random.default_rng(0)
    w = rng.normal(size=(size, size // 2))
    net = Network(None, "bench", 0, 0.0, 1.0, size, size, "differential", 0.2, None, None,
                  DeviceSpec(model=model), Periphery(r_row=1.0, r_col=1.0), [Layer("l", w, None, "none", 1.0)])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    tile = T.make_tiles(net, 0)[0]
    reader = T.TileReader(T.build_tile(net, tile, tile.states), net.vread)
    setup = time.perf_counter() - t0
    u = rng.uniform(0, net.vread, (vectors, size))
    w0, c0 = time.perf_counter(), time.process_time()
    out = reader.read(u)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"size": size, "model": model, "vectors": vectors, "setup_s": setup, "wall_s": wall, "cpu_s": cpu,
            "reads_per_s_wall": vectors / wall, "reads_per_s_cpu": vectors / cpu, "newton_iterations": out.iterations,
            "solver": reader.solver, "method": out.method,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_mb": rss0 / 1024}


def bench_tile512(size: int = 512, vectors: int = 32, model: str = "stanford_pku") -> dict:
    code = (f"import json,sys; sys.path.insert(0, {str(REPO)!r}); from benchmarks.networks import _tile512_child; "
            f"print(json.dumps(_tile512_child({size}, {vectors}, {model!r})))")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=3600)
    if p.returncode:
        raise RuntimeError(p.stderr[-2000:])
    out = json.loads(p.stdout.strip().splitlines()[-1])
    print(f"tile {size}x{size} {model}: {vectors} reads in {out['wall_s']:.1f} s wall / {out['cpu_s']:.1f} s CPU "
          f"({out['reads_per_s_cpu']:.2f} reads/s CPU, {out['newton_iterations']} Newton iterations, {out['solver']}); "
          f"peak RSS {out['peak_rss_mb']:.0f} MB")
    return out


def bench_networks(quick: bool = False) -> dict:
    res = {"digits_linear": bench_digits("vteam", 300 if quick else None),
           "digits_nonlinear": bench_digits("stanford_pku", 300 if quick else None),
           "tile": bench_tile512(256 if quick else 512, 16 if quick else 32)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "networks.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m benchmarks.networks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    bench_networks(ap.parse_args().quick)
