"""One measurement in a fresh process (so peak RSS belongs to it): ``python -m benchmarks.child TASK N``.

Prints one JSON line: wall time and peak resident memory (for ``dc`` also the
process's peak before the solve: the interpreter, numpy/scipy and the built
circuit). ``dc``: the
behavioural fast DC read (build the circuit, factor, solve); ``spice_dc``: the
same read in ngspice, with ngspice's own peak RSS (a child of this process).
"""
from __future__ import annotations

import json
import resource
import sys
import time


def main() -> None:
    task, n = sys.argv[1], int(sys.argv[2])
    from benchmarks import circuits
    from benchmarks.suite import spice_run
    from circuitkit.behavioural.reads import dc_read
    circuit = circuits.read_circuit(n)
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    start = time.perf_counter()
    if task == "dc":
        dc_read(circuit)
        who = resource.RUSAGE_SELF
    elif task == "spice_dc":
        spice_run(circuit)
        who = resource.RUSAGE_CHILDREN
    else:
        raise SystemExit(f"unknown task {task}")
    wall = time.perf_counter() - start
    rss_mb = resource.getrusage(who).ru_maxrss / 1024.0     # Linux: kilobytes
    print(json.dumps({"task": task, "n": n, "wall_s": wall, "peak_rss_mb": rss_mb,
                      "baseline_rss_mb": base_mb if task == "dc" else 0.0}))


if __name__ == "__main__":
    main()
