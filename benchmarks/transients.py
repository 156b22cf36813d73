"""Transient speed of the behavioural engine against ngspice, side by side in one process (issue 9, item 5).

``bench_small``: ``testbenches/vteam_sine.xbar`` (one VTEAM device behind a
resistor, 3 unknowns after condensation) through the engine call
``circuitkit.engines.simulate(circuit, engine)`` -- for ``"spice"`` that
includes rendering the netlist, the ngspice process and reading the raw
file. Best of ``repeats`` runs each, wall and CPU (for ngspice: this
process's CPU plus the child's).

``bench_programming``: the V/2 programming transients of
``benchmarks.circuits.write_circuit(n, count)`` on n x n VTEAM crossbars,
both engines, with the agreement measured as ``suite.bench_transient`` does
(maximum relative RMS difference over the supply currents carrying at least
1 % of the largest one's RMS, and over all states, the behavioural waveform
interpolated onto ngspice's time points; contract 1e-2).

Targets (issue 9): vteam_sine and 8x8 / 32x32 programming at least 5x
faster than ngspice, 128x128 at least 30x. Run ``python -m benchmarks.transients``
(``--quick``: sizes 8 and 32 only, one repeat of the programming runs).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from . import circuits
from .suite import _children_cpu, _rel_rms, agreement, quit_after_write

REPO = Path(__file__).resolve().parents[1]
SINE = REPO / "testbenches" / "vteam_sine.xbar"
SMALL_TARGET = 5.0
PROGRAMMING_TARGET = {8: 5.0, 32: 5.0, 128: 30.0}
CONTRACT = 1e-2


def _run(circuit, engine: str):
    """(waveforms, wall s, cpu s) of one engine call; cpu includes ngspice's child process."""
    from circuitkit.engines import simulate
    w, c, cc = time.perf_counter(), time.process_time(), _children_cpu()
    if engine == "spice":
        with quit_after_write():
            out = simulate(circuit, engine)
    else:
        out = simulate(circuit, engine)
    return out, time.perf_counter() - w, time.process_time() - c + _children_cpu() - cc


def _best(circuit, engine: str, repeats: int):
    """(last waveforms, best wall s, best cpu s) over ``repeats`` runs."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        out, w, c = _run(circuit, engine)
        walls.append(w)
        cpus.append(c)
    return out, min(walls), min(cpus)


def bench_small(path: Path | str = SINE, repeats: int = 3) -> dict:
    """The engine-call ratio on a small testbench (default vteam_sine.xbar), best of ``repeats``."""
    from circuitkit.workflow import load
    circuit = load(Path(path))[1]
    beh, bw, bc = _best(circuit, "behavioural", repeats)
    ref, sw, sc = _best(circuit, "spice", repeats)
    signals = [k for k in ref.signals if k in beh.signals]
    err = max(_rel_rms(ref.time, ref[k], beh.time, beh[k]) for k in signals)
    res = {"circuit": Path(path).name, "beh_wall_s": bw, "beh_cpu_s": bc, "ngspice_wall_s": sw, "ngspice_cpu_s": sc,
           "ratio_wall": sw / bw, "ratio_cpu": sc / bc, "steps": beh.meta.get("steps"),
           "newton_iterations": beh.meta.get("newton_iterations"), "linear_solver": beh.meta.get("linear_solver"),
           "max_rel_rms_vs_ngspice": err, "target": SMALL_TARGET}
    print(f"{res['circuit']}: behavioural {bw:.3f} s wall / {bc:.3f} s cpu ({res['steps']} steps, "
          f"{res['newton_iterations']} Newton, {res['linear_solver']}) | ngspice {sw:.3f} s wall / {sc:.3f} s cpu "
          f"-> x{res['ratio_wall']:.1f} wall, x{res['ratio_cpu']:.1f} cpu (target x{SMALL_TARGET:g}); "
          f"max rel RMS vs ngspice {err:.1e}")
    return res


def bench_programming(sizes=(8, 32, 128), count: int = 5, repeats: int = 1) -> dict:
    """V/2 programming transients on n x n VTEAM crossbars, both engines; one entry per size."""
    out = {}
    for n in sizes:
        circuit = circuits.write_circuit(n, count=count)
        reps = repeats if n < 128 else 1
        beh, bw, bc = _best(circuit, "behavioural", max(reps, 1))
        ref, sw, sc = _best(circuit, "spice", max(reps, 1))
        res = {"n": n, "tstop": circuit.analysis.tstop, "beh_wall_s": bw, "beh_cpu_s": bc,
               "ngspice_wall_s": sw, "ngspice_cpu_s": sc, "ratio_wall": sw / bw, "ratio_cpu": sc / bc,
               "steps": beh.meta.get("steps"), "newton_iterations": beh.meta.get("newton_iterations"),
               "factorizations": beh.meta.get("factorizations"), "linear_solver": beh.meta.get("linear_solver"),
               "target": PROGRAMMING_TARGET.get(n, 5.0), **agreement(ref, beh)}
        res["within_contract"] = bool(max(res["max_rel_rms_current"], res["max_rel_rms_state"]) <= CONTRACT)
        out[n] = res
        print(f"programming {n}x{n} ({circuit.analysis.tstop * 1e6:.2f} us): behavioural {bw:.3f} s wall / "
              f"{bc:.3f} s cpu ({res['steps']} steps, {res['newton_iterations']} Newton, "
              f"{res['factorizations']} LU, {res['linear_solver']}) | ngspice {sw:.3f} s wall / {sc:.3f} s cpu "
              f"-> x{res['ratio_wall']:.1f} wall, x{res['ratio_cpu']:.1f} cpu (target x{res['target']:g}); "
              f"max rel RMS currents {res['max_rel_rms_current']:.1e}, states {res['max_rel_rms_state']:.1e} "
              f"(contract {CONTRACT:g}: {'met' if res['within_contract'] else 'NOT met'})")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.transients", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="sizes 8 and 32 only")
    ap.add_argument("--sizes", type=int, nargs="+", help="programming sizes (default 8 32 128)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the small runs (best of)")
    args = ap.parse_args(argv)
    sizes = tuple(args.sizes) if args.sizes else ((8, 32) if args.quick else (8, 32, 128))
    bench_small(repeats=args.repeats)
    bench_programming(sizes, repeats=1 if args.quick else min(args.repeats, 3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
