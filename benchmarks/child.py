"""One measurement in a fresh process (so peak RSS belongs to it): ``python -m benchmarks.child TASK N [R_WIRE]``.

Prints one JSON line. ``dc``: the behavioural fast DC read (what
``dc_read`` does: the line solver on a 1R crossbar) of a built circuit;
``dc_direct``: the same read by the direct factorisation; ``spice_dc``: the
same read in ngspice, with ngspice's own peak RSS (a child of this process).
``R_WIRE`` (ohm, default ``circuits.R_WIRE``) sets the wire segments.

The behavioural reads also report their phases (wall seconds): ``setup_s``
(``LinearReads(...)``: numbering and assembly of the reduced system, then
the line analysis or the ordering and factorisation), of which
``lines_s`` is ``LineSystem.build``'s line analysis (``assembly_s`` the
rest; for ``dc_direct`` it includes the ordering and factorisation), and
``solve_s`` (the read itself: the conjugate-gradient ``iterations``, of
which ``line_iterations`` with the lines alone, and -- when the solver
switched to two-level, ``coarse_in_solve`` -- the coarse space's
construction, ``coarse_s``); ``cpu_s`` is the process CPU time of both,
``setup_cpu_s`` and ``solve_cpu_s`` its split (on a shared machine the CPU
times are the steadier measure: wall time includes waiting for a core).

Memory of the behavioural reads is measured *around the solve*: the
resident set just before it (``baseline_rss_mb``: interpreter, numpy/scipy,
the built circuit) and the peak during it (``peak_rss_mb``), from
``/proc/self/status`` after resetting the kernel's high-water mark
(``echo 5 > /proc/self/clear_refs``); ``solve_rss_mb`` is their difference,
what the solve itself needs. Where the reset is not available, a sampling
thread (every 2 ms) estimates the peak instead (``peak_method``).
``process_peak_mb`` is the whole process's peak (``ru_maxrss``), which
includes building the circuit.
"""
from __future__ import annotations

import json
import resource
import sys
import threading
import time


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0      # kB
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class _Sampler(threading.Thread):
    """Fallback peak estimate: sample VmRSS until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = _status_mb("VmRSS") or 0.0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.002):
            self.peak = max(self.peak, _status_mb("VmRSS") or 0.0)


def main() -> None:
    task, n = sys.argv[1], int(sys.argv[2])
    from benchmarks import circuits
    from benchmarks.suite import spice_run
    from circuitkit.behavioural.reads import LinearReads
    if len(sys.argv) > 3:
        circuits.R_WIRE = float(sys.argv[3])
    circuit = circuits.read_circuit(n)
    out = {"task": task, "n": n, "r_wire": circuits.R_WIRE}
    if task in ("dc", "dc_direct"):
        method = "auto" if task == "dc" else "direct"
        base = _status_mb("VmRSS")
        exact = _reset_peak() and _status_mb("VmHWM") is not None
        sampler = None if exact else _Sampler()
        if sampler:
            sampler.start()
        start, cpu = time.perf_counter(), time.process_time()
        reads = LinearReads(circuit, method=method)         # what dc_read does, in two timed phases
        setup = time.perf_counter() - start
        setup_cpu = time.process_time() - cpu
        coarse_before = reads.lines.timings["coarse"] if reads.lines is not None else 0.0
        reads.read()
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        if sampler:
            sampler.stop.set()
            sampler.join()
            peak = max(sampler.peak, _status_mb("VmRSS") or 0.0)
        else:
            peak = _status_mb("VmHWM")
        lines = reads.lines.timings if reads.lines is not None else {"lines": 0.0, "coarse": 0.0}
        out.update(setup_s=setup, solve_s=wall - setup, lines_s=lines["lines"], coarse_s=lines["coarse"],
                   coarse_in_solve=lines["coarse"] > 0 and coarse_before == 0,
                   line_iterations=reads.lines.last_line_iterations if reads.lines is not None else 0,
                   assembly_s=setup - lines["lines"] - coarse_before, cpu_s=cpu,
                   setup_cpu_s=setup_cpu, solve_cpu_s=cpu - setup_cpu,
                   method=reads.stats["method"], iterations=reads.stats["iterations"],
                   coarse_size=reads.lines.coarse_size if reads.lines is not None else 0)
        out.update(wall_s=wall, baseline_rss_mb=base, peak_rss_mb=peak, solve_rss_mb=peak - base,
                   peak_method="VmHWM reset" if exact else "sampled",
                   process_peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    elif task == "spice_dc":
        start = time.perf_counter()
        spice_run(circuit)
        wall = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0     # Linux: kilobytes
        out.update(wall_s=wall, peak_rss_mb=rss, baseline_rss_mb=0.0, solve_rss_mb=rss)
    else:
        raise SystemExit(f"unknown task {task}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
