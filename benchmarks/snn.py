"""Benchmark: a 64x16 synaptic array learning with pulse-level STDP, behavioural engine vs ngspice.

Inputs spike in slots of ``slot`` seconds (each input with probability 1/2 at the
slot's start, so ``spikes_per_input`` spikes need about twice as many slots);
16 LIF neurons on the columns fire and put their pulses on the bit lines
(``circuitkit.workloads.snn``). The behavioural engine runs the full run,
ngspice a shortened one (the first ``spice_spikes`` spikes per input) on the
same inputs; both engines also run that shortened run side by side, which gives
the time per simulated second of each and the agreement of the final
conductances (relative, max over cells that changed).

    python -m benchmarks.snn [--spikes 1000] [--spice-spikes 10] [--quick]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "bench"


def _inputs(rows: int, spikes: int, slot: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    slots = int(np.ceil(2.2 * spikes))
    fire = rng.uniform(size=(slots, rows)) < 0.5
    out = []
    for i in range(rows):
        times = (np.flatnonzero(fire[:, i]) * slot + 0.1e-6)[:spikes]
        out.append(times.tolist())
    return out, slots * slot


def _sim(engine: str):
    from circuitkit.description.loader import load_description
    from circuitkit.workloads.snn.cosim import LIF, CoSim
    from circuitkit.workloads.snn.stdp import shapes_from
    design = load_description(REPO / "testbenches" / "stdp_vteam.xbar")
    pre, post = shapes_from(design)
    design.crossbar.rows, design.crossbar.cols = 64, 16
    design.crossbar.state.kind, design.crossbar.state.low, design.crossbar.state.high = "uniform", 0.4, 0.6
    design.crossbar.state.seed = 5
    neuron = LIF(tau=0.2e-6, cm=1e-12, threshold=6.0, refractory=1e-6, adapt=0.5)
    return CoSim(design, pre, post, neuron, engine=engine, step=5e-9, max_chunk=0.25e-6)


def run(spikes: int, spice_spikes: int, slot: float = 2e-6) -> dict:
    pre_short, stop_short = _inputs(64, spice_spikes, slot)
    res = {"array": "64x16", "slot_s": slot}
    short = {}
    for engine in ("behavioural", "spice"):
        sim = _sim(engine)
        g0 = sim.conductance()
        t0 = time.perf_counter()
        sim.run(pre_short, stop_short)
        wall = time.perf_counter() - t0
        r = sim.result()
        short[engine] = (r, g0)
        res[f"{engine}_short_wall_s"] = wall
        res[f"{engine}_short_s_per_sim_s"] = wall / stop_short
        res[f"{engine}_short_transients"] = r.simulated_chunks
        print(f"{engine:12s} {spice_spikes} spikes/input ({stop_short * 1e6:.0f} us simulated): {wall:.1f} s, "
              f"{r.simulated_chunks} transients, {sum(s.kind == 'post' for s in r.spikes)} post spikes")
    (rb, g0), (rs, _) = short["behavioural"], short["spice"]
    changed = np.abs(rs.conductance - g0) > 1e-3 * g0
    res["cells_changed"] = int(changed.sum())
    res["final_g_max_rel_diff"] = float(np.max(np.abs(rb.conductance / rs.conductance - 1)))
    dgb, dgs = rb.conductance - g0, rs.conductance - g0
    res["dG_max_rel_diff_changed"] = float(np.max(np.abs(dgb[changed] - dgs[changed]) / np.abs(dgs[changed]))) \
        if changed.any() else 0.0
    res["same_post_spikes"] = [(s.time, s.index) for s in rb.spikes if s.kind == "post"] == \
        [(s.time, s.index) for s in rs.spikes if s.kind == "post"]
    res["speedup_per_sim_s"] = res["spice_short_s_per_sim_s"] / res["behavioural_short_s_per_sim_s"]
    print(f"final conductances: max relative difference {res['final_g_max_rel_diff']:.2e}; dG of the "
          f"{res['cells_changed']} changed cells within {res['dG_max_rel_diff_changed']:.2e}; "
          f"same post spikes: {res['same_post_spikes']}; behavioural {res['speedup_per_sim_s']:.1f}x faster per simulated second")
    if spikes > spice_spikes:
        pre, stop = _inputs(64, spikes, slot)
        sim = _sim("behavioural")
        t0 = time.perf_counter()
        sim.run(pre, stop)
        wall = time.perf_counter() - t0
        r = sim.result()
        res.update(full_spikes_per_input=spikes, full_sim_s=stop, full_wall_s=wall,
                   full_s_per_sim_s=wall / stop, full_transients=r.simulated_chunks,
                   full_post_spikes=int(sum(s.kind == "post" for s in r.spikes)))
        print(f"behavioural  {spikes} spikes/input ({stop * 1e3:.2f} ms simulated): {wall:.1f} s "
              f"({wall / stop:.3g} s per simulated s), {r.simulated_chunks} transients; ngspice at its short-run "
              f"rate would take ~{res['spice_short_s_per_sim_s'] * stop:.0f} s")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.snn", description=__doc__.split("\n")[0])
    ap.add_argument("--spikes", type=int, default=1000, help="spikes per input, behavioural full run")
    ap.add_argument("--spice-spikes", type=int, default=10, help="spikes per input of the run both engines do")
    ap.add_argument("--quick", action="store_true", help="50 spikes per input, 3 in the side-by-side run")
    a = ap.parse_args(argv)
    if a.quick:
        a.spikes, a.spice_spikes = 50, 3
    res = run(a.spikes, a.spice_spikes)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "snn.json").write_text(json.dumps(res, indent=2))
    print(f"-> {OUT / 'snn.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
