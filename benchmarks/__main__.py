"""``python -m benchmarks [--quick] [--only NAME ...]``: the benchmark suite, ratios side by side.

Benchmarks (``--only`` names): ``dc`` (256x256 DC read: the line solver
(default fast path) and the direct factorisation vs plain spsolve vs ngspice
KLU, ratios side by side, iterations, accuracy), ``reads`` (10,000 read
vectors through one factorisation), ``tran`` (64x64 VTEAM programming
transient, both engines), ``memory`` (1024x1024 DC read in a subprocess: RSS
before the solve and its peak during it), ``scaling`` (DC read time and the
solve's peak-RSS increase for sizes 16..1024, line solver and direct,
ngspice up to 256; table and log-log plot in build/bench/), ``process``
(``circuitkit simulate testbenches/vteam_sine.xbar`` as whole processes, both
engines), ``op`` (op() of a 256x256 1R crossbar through ``simulate`` vs ngspice
vs the in-process batched read), ``nlreads`` (batched reads of a 128x128
``stanford_pku`` array, 1,000 vectors (``--quick``: 128x128, 50): vectors/s after the first batch, agreement
with ngspice on a sample), ``transients`` (the engine call on ``vteam_sine.xbar`` and V/2 programming
transients of 8x8, 32x32 and 128x128 VTEAM crossbars, both engines, agreement with ngspice), ``networks`` (the 1,797 digits
through the 64-64-10 MLP on tiles, linear and ``stanford_pku`` cells, against the full nodal solve per
image; a 512x512 nonlinear tile), ``snn`` (a 64x16 synaptic array learning: behavioural against ngspice
per simulated second; not in the default run, ``--only snn`` or ``make bench-snn``). ``--quick`` shrinks the
sizes to stay within a few minutes. Results also go to build/bench/results.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

from . import suite

NAMES = ("dc", "reads", "tran", "memory", "scaling", "process", "op", "nlreads", "transients", "networks", "snn")
DEFAULT = tuple(n for n in NAMES if n != "snn")      # snn takes about 12 minutes on its own


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes in all)")
    ap.add_argument("--only", nargs="+", choices=NAMES, help="run only these benchmarks")
    args = ap.parse_args(argv)
    chosen = args.only or DEFAULT
    q = args.quick
    print(f"circuitkit benchmarks ({'quick' if q else 'full'}) on {platform.node()}, "
          f"python {platform.python_version()}; times: wall and process CPU")
    results: dict = {"quick": q}
    start = time.perf_counter()
    if "dc" in chosen:
        results["dc"] = suite.bench_dc(256, repeats=3 if q else 5)
    if "reads" in chosen:
        results["reads"] = suite.bench_reads(256, 10_000)
    if "tran" in chosen:
        results["tran"] = suite.bench_transient(32 if q else 64, count=2 if q else 5)
    if "memory" in chosen:
        results["memory"] = suite.bench_memory(512 if q else 1024)
    if "scaling" in chosen:
        sizes = [16, 32, 64, 128, 256] if q else [16, 32, 64, 128, 256, 512, 1024]
        results["scaling"] = suite.bench_scaling(sizes, spice_max=128 if q else 256)
    if "process" in chosen:
        results["process"] = suite.bench_process("testbenches/vteam_sine.xbar", repeats=1 if q else 3)
    if "op" in chosen:
        results["op"] = suite.bench_op_simulate(128 if q else 256)
    if "nlreads" in chosen:
        results["nlreads"] = suite.bench_nonlinear_reads(128 if q else 256, count=50 if q else 1000, sample=2 if q else 3)
    if "transients" in chosen:
        from . import transients
        results["transients"] = {"small": transients.bench_small(repeats=1 if q else 3),
                                 "programming": transients.bench_programming((8, 32) if q else (8, 32, 128),
                                                                             repeats=1 if q else 3)}
    if "networks" in chosen:
        from . import networks
        results["networks"] = networks.bench_networks(quick=q)
    if "snn" in chosen:
        from . import snn
        results["snn"] = snn.run(50 if q else 1000, 3 if q else 10)
    suite.OUT.mkdir(parents=True, exist_ok=True)
    (suite.OUT / "results.json").write_text(json.dumps(results, indent=2, default=float))
    print(f"done in {time.perf_counter() - start:.0f} s; results in {suite.OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
