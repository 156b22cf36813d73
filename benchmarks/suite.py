"""The benchmarks: behavioural engine vs ngspice (KLU) vs a plain sparse solve, measured side by side.

Each benchmark returns a dict of measurements (and prints a few lines).
Times are wall-clock seconds (``perf_counter``) *and* CPU seconds of the
process (``process_time``; for ngspice the CPU time of the child process),
because the machines this runs on are shared: CPU time is the steadier
figure when other jobs compete for the cores. Ratios are given for both.
"""
from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import circuits

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "bench"


def _timed(fn, *args, **kw):
    """(result, wall s, cpu s) of one call."""
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return out, time.perf_counter() - w, time.process_time() - c


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@contextlib.contextmanager
def quit_after_write():
    """Make the rendered deck ``quit`` right after ``write``.

    ngspice 46 in batch mode spends a time growing faster than quadratically
    tearing a large circuit down at exit (measured: 128x128 DC read 0.8 s to
    the raw file, 18 s to exit; 256x256 over 14 minutes), after the results
    are written. ``quit`` skips that teardown. The shared renderer does not
    emit it yet (reported), so the benchmarks add it to time the simulation.
    """
    import circuitkit.engines as engines
    original = engines.write_netlist

    def write(circuit, path):
        path = original(circuit, path)
        text = path.read_text()
        if "\nquit\n" not in text:
            lines = text.splitlines()
            k = max(i for i, line in enumerate(lines) if line.startswith("write "))
            lines.insert(k + 1, "quit")
            path.write_text("\n".join(lines) + "\n")
        return path

    engines.write_netlist = write
    try:
        yield
    finally:
        engines.write_netlist = original


def spice_run(circuit):
    """(waveforms, wall s, ngspice cpu s) through the shared SPICE path (``engines.simulate``)."""
    from circuitkit.engines import simulate
    before = _children_cpu()
    w = time.perf_counter()
    with quit_after_write():
        wf = simulate(circuit, "spice")
    return wf, time.perf_counter() - w, _children_cpu() - before


def full_mna_spsolve(circuit):
    """The straightforward baseline: the engine's full MNA at the operating point, one ``spsolve``.

    Returns (column currents, solve wall s, solve cpu s, assembly wall s).
    Device conductances are linearised at zero bias exactly as the fast path does.
    """
    import scipy.sparse.linalg as spla

    from circuitkit.behavioural.engine import probe_indices
    from circuitkit.behavioural.mna import MnaSystem
    w = time.perf_counter()
    system = MnaSystem(circuit)
    vext = np.zeros(system.n_v + 1)
    vext[1:] = system.b_op[:system.n_v]          # device states at x0, every voltage at 0
    _, jac = system.nonlinear.evaluate(vext, "op")
    a = system.pattern.matrix(system.g_data + system.op_data + jac)
    b = system.b_op + system.source_vector(0.0)
    assembly = time.perf_counter() - w
    y, wall, cpu = _timed(spla.spsolve, a, b)
    index, scale = probe_indices(system, circuit.probes)
    values = np.append(y, 0.0)[index] * scale
    currents = np.array([v for p, v in zip(circuit.probes, values) if p.name.startswith("icol_")])
    return currents, wall, cpu, assembly


def _icol(wf, n):
    return np.array([float(wf[f"icol_{j}"]) for j in range(n)])


# ---------------------------------------------------------------------------------------------

def bench_dc(n: int = 256, repeats: int = 3) -> dict:
    """One DC read of an n x n 1R crossbar: line solver (auto) and direct factorisation vs spsolve vs ngspice.

    Each fast-path time covers everything after the circuit is built
    (assembly of the reduced system, line analysis or ordering and
    factorisation, the solve); spsolve's covers the ``spsolve`` call only
    (its assembly is reported apart). Best of ``repeats``.
    """
    from circuitkit.behavioural.reads import LinearReads
    circuit = circuits.read_circuit(n)

    def best(method):
        LinearReads(circuit, method=method).read()          # warm-up (lazy imports), not timed
        wall, cpu = [], []
        for _ in range(repeats):
            (reads, currents), w, c = _timed(lambda: (lambda r: (r, r.read()[0]))(LinearReads(circuit, method=method)))
            wall.append(w)
            cpu.append(c)
        return reads, currents, min(wall), min(cpu)

    reads, currents, fast_wall, fast_cpu = best("auto")
    direct, direct_currents, direct_wall, direct_cpu = best("direct")
    check = reads.check()
    base_wall, base_cpu = [], []
    full_mna_spsolve(circuit)                                # warm-up, not timed
    for _ in range(repeats):
        base, w, c, assembly = full_mna_spsolve(circuit)
        base_wall.append(w)
        base_cpu.append(c)
    spice_wf, spice_wall, spice_cpu = spice_run(circuit)
    ref = _icol(spice_wf, n)
    rel = lambda a, b: float(np.abs(a - b).max() / np.abs(b).max())  # noqa: E731
    res = {
        "n": n, "unknowns_fast": reads.stats["unknowns"], "fast_method": reads.stats["method"],
        "fast_iterations": reads.stats["iterations"], "line_solver_unavailable": reads.stats["line_solver"],
        "lu_nonzeros": direct.stats["lu_nonzeros"],
        "fast_wall_s": fast_wall, "fast_cpu_s": fast_cpu, "direct_wall_s": direct_wall, "direct_cpu_s": direct_cpu,
        "spsolve_wall_s": min(base_wall), "spsolve_cpu_s": min(base_cpu), "mna_assembly_s": assembly,
        "ngspice_wall_s": spice_wall, "ngspice_cpu_s": spice_cpu,
        "err_vs_ngspice": rel(currents, ref), "err_vs_spsolve": rel(currents, base),
        "err_vs_direct": rel(currents, direct_currents), "direct_err_vs_ngspice": rel(direct_currents, ref),
        "newton_check_converged": check["converged"], "newton_check_max_update": check["max_update"],
    }
    for who in ("fast", "direct"):
        for clock in ("wall", "cpu"):
            res[f"{who}_speedup_vs_spsolve_{clock}"] = res[f"spsolve_{clock}_s"] / res[f"{who}_{clock}_s"]
            res[f"{who}_speedup_vs_ngspice_{clock}"] = res[f"ngspice_{clock}_s"] / res[f"{who}_{clock}_s"]
    # names kept from earlier result files
    for clock in ("wall", "cpu"):
        res[f"speedup_vs_spsolve_{clock}"] = res[f"fast_speedup_vs_spsolve_{clock}"]
        res[f"speedup_vs_ngspice_{clock}"] = res[f"fast_speedup_vs_ngspice_{clock}"]
    print(f"DC read {n}x{n} ({res['unknowns_fast']} unknowns), seconds wall / cpu, best of {repeats}:")
    print(f"  {res['fast_method']:>6} (auto) {fast_wall:7.3f} / {fast_cpu:7.3f}  {res['fast_iterations']} iterations"
          + (f" [line solver unavailable: {res['line_solver_unavailable']}]" if res["fast_method"] != "pcg" else ""))
    print(f"  direct        {direct_wall:7.3f} / {direct_cpu:7.3f}  ({res['lu_nonzeros']} LU nonzeros)")
    print(f"  spsolve       {res['spsolve_wall_s']:7.3f} / {res['spsolve_cpu_s']:7.3f}  (+{assembly:.2f} s MNA assembly)")
    print(f"  ngspice       {spice_wall:7.3f} / {spice_cpu:7.3f}")
    print("  speed-up       vs spsolve wall / cpu      vs ngspice wall / cpu")
    for who, label in (("fast", res["fast_method"]), ("direct", "direct")):
        print(f"  {label:>6}       x{res[who + '_speedup_vs_spsolve_wall']:6.1f} / x{res[who + '_speedup_vs_spsolve_cpu']:<6.1f}"
              f"        x{res[who + '_speedup_vs_ngspice_wall']:6.1f} / x{res[who + '_speedup_vs_ngspice_cpu']:<6.1f}")
    print(f"  max rel err of {res['fast_method']}: vs ngspice {res['err_vs_ngspice']:.1e}, vs spsolve "
          f"{res['err_vs_spsolve']:.1e}, vs direct {res['err_vs_direct']:.1e} (direct vs ngspice "
          f"{res['direct_err_vs_ngspice']:.1e}); Newton check {'converged' if check['converged'] else 'NOT converged'}")
    return res


def bench_reads(n: int = 256, count: int = 10_000, repeats: int = 5) -> dict:
    """Batched reads (linear cells): vectors/second after the factorisation and transfer matrix.

    The first ``read_many`` also builds the batched reader and samples the cells' linearity (its verdict
    is cached); the rate is the best of ``repeats`` further calls (each still bounds the batch's
    voltages against the cached verdict), wall and CPU, and the first call is reported on its own."""
    from circuitkit.behavioural.reads import LinearReads
    circuit = circuits.read_circuit(n)
    vectors = np.random.default_rng(7).uniform(0.0, circuits.V_READ, (count, n))
    reads, setup_w, setup_c = _timed(LinearReads, circuit)
    _, transfer_w, transfer_c = _timed(lambda: reads.transfer)
    out, first_w, first_c = _timed(reads.read_many, vectors)
    walls, cpus = [], []
    for _ in range(repeats):
        out, w, c = _timed(reads.read_many, vectors)
        walls.append(w), cpus.append(c)
    w, c = min(walls), min(cpus)
    check = np.random.default_rng(8).choice(count, 16, replace=False)
    full = reads.read(vectors[check])
    err = float(np.abs(out[check] - full).max() / np.abs(full).max())
    lr = reads.last_read
    res = {"n": n, "vectors": count, "setup_s": setup_w, "transfer_s": transfer_w, "method": reads.transfer_method,
           "path": lr.method, "linear": lr.linear, "reason": lr.reason,
           "first_call_wall_s": first_w, "first_call_cpu_s": first_c,
           "batch_wall_s": w, "batch_cpu_s": c, "vectors_per_s": count / w, "vectors_per_s_cpu": count / c,
           "vectors_per_s_first_call": count / first_w,
           "vectors_per_s_incl_setup": count / (first_w + setup_w + transfer_w), "rel_err_vs_full_solve": err}
    print(f"Batched reads {n}x{n}: {count} vectors in {w * 1e3:.1f} ms (best of {repeats}; CPU {c * 1e3:.1f} ms) -> "
          f"{res['vectors_per_s']:.3g} vectors/s ({res['vectors_per_s_cpu']:.3g} by CPU time; first call "
          f"{first_w * 1e3:.1f} ms with the linearity check) [{lr.method}: {lr.reason}]; setup {setup_w:.2f} s + "
          f"transfer matrix {transfer_w:.2f} s [{reads.transfer_method}]; "
          f"{res['vectors_per_s_incl_setup']:.3g} vectors/s including them; rel err vs full solves {err:.1e}")
    return res


def _rel_rms(t_ref, ref, t, values):
    diff = np.interp(t_ref, t, values) - ref
    rms = np.sqrt(np.mean(ref ** 2))
    return float(np.sqrt(np.mean(diff ** 2)) / rms) if rms > 0 else float("nan")


def agreement(ref, beh) -> dict:
    """Max relative RMS difference of supply currents (those above 1 % of the largest RMS) and of states."""
    cur = [k for k in ref.signals if k.startswith("isup_")]
    out = {"max_rel_rms_current": float("nan"), "max_rel_rms_state": float("nan")}
    if cur:
        rms = {k: float(np.sqrt(np.mean(np.asarray(ref[k]) ** 2))) for k in cur}
        big = max(rms.values())
        errs = [_rel_rms(ref.time, ref[k], beh.time, beh[k]) for k in cur if rms[k] > 0.01 * big]
        out["max_rel_rms_current"] = max(errs) if errs else float("nan")
    st = [k for k in ref.signals if k.startswith("x_")]
    if st:
        out["max_rel_rms_state"] = max(_rel_rms(ref.time, ref[k], beh.time, beh[k]) for k in st)
    return out


def bench_transient(n: int = 64, count: int = 5, spice: bool = True) -> dict:
    """V/2 programming pulses (~1 us at 1 ns) on an n x n VTEAM crossbar, both engines."""
    from circuitkit.engines import simulate
    circuit = circuits.write_circuit(n, count=count)
    beh, w, c = _timed(simulate, circuit, "behavioural")
    res = {"n": n, "tstop": circuit.analysis.tstop, "beh_wall_s": w, "beh_cpu_s": c,
           "beh_steps": beh.meta.get("steps"), "beh_newton": beh.meta.get("newton_iterations"),
           "beh_factorizations": beh.meta.get("factorizations")}
    line = f"Transient {n}x{n}, {circuit.analysis.tstop * 1e6:.2f} us: behavioural {w:.2f} s wall / {c:.2f} s cpu"
    if spice:
        ref, sw, sc = spice_run(circuit)
        res.update(ngspice_wall_s=sw, ngspice_cpu_s=sc, ngspice_points=int(len(ref.time)),
                   speedup_wall=sw / w, speedup_cpu=sc / c)
        res.update(agreement(ref, beh))
        line += (f" | ngspice {sw:.2f} s wall / {sc:.2f} s cpu -> x{res['speedup_wall']:.1f} wall, "
                 f"x{res['speedup_cpu']:.1f} cpu; max rel RMS difference: currents {res['max_rel_rms_current']:.1e}, "
                 f"states {res['max_rel_rms_state']:.1e} (contract 1e-2)")
    print(line)
    return res


# -- memory and scaling: every point in a fresh process ------------------------------------

def _child(task: str, n: int, timeout: float = 1800.0, r_wire: float | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    args = [sys.executable, "-m", "benchmarks.child", task, str(n)] + ([repr(r_wire)] if r_wire is not None else [])
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        return {"task": task, "n": n, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_memory(n: int = 1024) -> dict:
    """DC read of an n x n crossbar in a fresh process: time per phase, iterations and the memory of the
    solve (see child.py)."""
    res = _child("dc", n)
    if "error" in res:
        print(f"DC read {n}x{n}: FAILED {res['error']}")
        return res
    where = "in the solve" if res["coarse_in_solve"] else "in the set-up"
    coarse = (f"coarse space of {res['coarse_size']} unknowns built {where} in {res['coarse_s']:.2f} s"
              if res["coarse_size"] else "no coarse space")
    print(f"DC read {n}x{n}: {res['wall_s']:.2f} s wall / {res['cpu_s']:.2f} s cpu = set-up {res['setup_s']:.2f} s "
          f"(assembly {res['assembly_s']:.2f}, line analysis {res['lines_s']:.2f}) + solve {res['solve_s']:.2f} s "
          f"({res['method']}, {res['iterations']} iterations, {res['line_iterations']} of them with the lines alone; "
          f"{coarse})")
    print(f"  RSS {res['baseline_rss_mb']:.0f} MB before the solve, peak {res['peak_rss_mb']:.0f} MB during it "
          f"(+{res['solve_rss_mb']:.0f} MB, {res['peak_method']}); process peak {res['process_peak_mb']:.0f} MB "
          f"({'within' if res['process_peak_mb'] <= 2048 else 'ABOVE'} 2 GB; issue 9 target: 1.5 s, 2 GB)")
    return res


def bench_scaling(sizes, spice_max: int = 256, direct: bool = True, wires=(2.5, 10.0)) -> list[dict]:
    """DC read time, memory and line-solver iterations per size, each point a fresh process.

    ``beh``: the default fast path (line solver; ``its`` its conjugate-gradient
    iterations, ``lines`` those of them with the lines alone before it switched
    to two-level, ``setup``/``solve`` the two phases of its time); ``dir``: the
    direct factorisation; ``+MB``: peak RSS increase of the solve over the RSS
    just before it (so growth with size shows; the process baseline --
    interpreter, numpy/scipy, the circuit -- is in ``base MB``); ngspice's MB
    is its own process's peak. ``wires``: other wire resistances (ohm) for
    which the line solver's iterations per size are measured too (the
    benchmark crossbar has 1 ohm).
    """
    rows = []
    print(f"Scaling (DC read; each point a fresh process; ngspice only up to {spice_max}x{spice_max}):")
    print(f"  {'n':>5} {'beh s':>8} {'setup':>7} {'solve':>7} {'its':>4} {'lines':>5} {'beh +MB':>8} {'dir s':>8} {'dir +MB':>8} "
          f"{'base MB':>8} {'spice s':>8} {'spice MB':>9}")
    fmt = lambda v, f: f"{v:{f}}" if isinstance(v, (int, float)) else f"{'-':>{int(f.split('.')[0])}}"  # noqa: E731
    for n in sizes:
        b = _child("dc", n)
        dd = _child("dc_direct", n) if direct else {}
        s = _child("spice_dc", n) if n <= spice_max else {}
        row = {"n": n, "beh_s": b.get("wall_s"), "beh_mb": b.get("solve_rss_mb"), "beh_peak_mb": b.get("peak_rss_mb"),
               "beh_setup_s": b.get("setup_s"), "beh_solve_s": b.get("solve_s"), "beh_cpu_s": b.get("cpu_s"),
               "iterations": b.get("iterations"), "line_iterations": b.get("line_iterations"),
               "coarse_size": b.get("coarse_size"),
               "base_mb": b.get("baseline_rss_mb"), "direct_s": dd.get("wall_s"), "direct_mb": dd.get("solve_rss_mb"),
               "spice_s": s.get("wall_s"), "spice_mb": s.get("peak_rss_mb")}
        rows.append(row)
        print(f"  {n:>5} {fmt(row['beh_s'], '8.3f')} {fmt(row['beh_setup_s'], '7.3f')} {fmt(row['beh_solve_s'], '7.3f')} "
              f"{fmt(row['iterations'], '4d')} {fmt(row['line_iterations'], '5d')} {fmt(row['beh_mb'], '8.1f')} "
              f"{fmt(row['direct_s'], '8.3f')} "
              f"{fmt(row['direct_mb'], '8.1f')} {fmt(row['base_mb'], '8.0f')} "
              f"{fmt(row['spice_s'], '8.3f')} {fmt(row['spice_mb'], '9.0f')}")
    for r_wire in wires:
        its = {n: _child("dc", n, r_wire=r_wire).get("iterations") for n in sizes}
        for row in rows:
            row[f"iterations_rw{r_wire:g}"] = its[row["n"]]
        print(f"  line-solver iterations with {r_wire:g} ohm wires: "
              + ", ".join(f"{n}: {fmt(k, 'd')}" for n, k in its.items()))
    _plot(rows)
    return rows


def _plot(rows) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    OUT.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4))
    for key, label, ax in (("beh_s", "behavioural (line solver)", ax1), ("direct_s", "behavioural (direct)", ax1),
                           ("spice_s", "ngspice (KLU)", ax1),
                           ("beh_mb", "behavioural (line solver)", ax2), ("direct_mb", "behavioural (direct)", ax2),
                           ("spice_mb", "ngspice (whole process)", ax2)):
        pts = [(r["n"], r[key]) for r in rows if r.get(key) is not None and r[key] > 0]
        if pts:
            ax.loglog(*zip(*pts), "o-", label=label)
    keys = {k for r in rows for k in r if k.startswith("iterations")}            # totals, per wire resistance
    for key in sorted(keys, key=lambda k: 1.0 if k == "iterations" else float(k.removeprefix("iterations_rw"))):
        pts = [(r["n"], r[key]) for r in rows if r.get(key) is not None]
        label = "1 ohm wires" if key == "iterations" else f"{key.removeprefix('iterations_rw')} ohm wires"
        if pts:
            ax3.semilogx(*zip(*pts), "o-", label=label)
    ax1.set(xlabel="rows = cols", ylabel="wall time of a DC read (s)", title="time")
    ax2.set(xlabel="rows = cols", ylabel="peak RSS increase of the solve (MB)", title="memory")
    ax3.set(xlabel="rows = cols", ylabel="conjugate-gradient iterations", title="line solver iterations", ylim=(0, None))
    for ax in (ax1, ax2, ax3):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "scaling.png", dpi=120)
    plt.close(fig)
    print(f"  plot: {OUT / 'scaling.png'}")


# -- issue 9: whole-process runs, op() through simulate, nonlinear batched reads -------------------------

def _cli_run(args: list[str]) -> tuple[float, float]:
    """(wall s of one whole ``python -m circuitkit ...`` process, imports and all; the engine's own
    seconds as the command prints them: ``<engine>: N signals, T s -> ...``)."""
    import re
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        w = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "circuitkit", *args, "--out", tmp], check=True,
                              capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        wall = time.perf_counter() - w
    m = re.search(r"signals, ([0-9.]+) s ->", proc.stdout)
    return wall, float(m.group(1)) if m else float("nan")


def bench_process(description: str = "testbenches/vteam_sine.xbar", repeats: int = 3) -> dict:
    """``circuitkit simulate`` as whole processes, behavioural vs ngspice, best of ``repeats``: the whole
    process (Python start-up, imports, parsing, the engine, writing the results) and the engine's own
    time inside it (for ngspice: rendering, the ngspice process and reading its raw file)."""
    beh = [_cli_run(["simulate", description, "--engine", "behavioural"]) for _ in range(repeats)]
    spi = [_cli_run(["simulate", description, "--engine", "spice"]) for _ in range(repeats)]
    bw, be = min(b[0] for b in beh), min(b[1] for b in beh)
    sw, se = min(s[0] for s in spi), min(s[1] for s in spi)
    print(f"[process] {description}: whole process behavioural {bw:.2f} s, ngspice {sw:.2f} s, ratio {sw / bw:.2f}x; "
          f"engine inside it {be:.3f} s vs {se:.3f} s, ratio {se / be:.1f}x")
    return {"description": description, "behavioural_s": bw, "spice_s": sw, "ratio": sw / bw,
            "behavioural_engine_s": be, "spice_engine_s": se, "engine_ratio": se / be}


def bench_op_simulate(n: int = 256) -> dict:
    """op() of an n x n 1R crossbar with wires: behavioural ``simulate`` (line-solver fast path) vs ngspice
    vs the in-process batched read of the same vector."""
    from circuitkit.behavioural import simulate
    from circuitkit.behavioural.batch import CrossbarReader
    vector = np.random.default_rng(1).uniform(0.0, circuits.V_READ, n)
    circuit = circuits.read_circuit(n, vector=vector)
    simulate(circuits.read_circuit(8))                                  # warm-up (lazy imports)
    wf, w_sim, _ = _timed(simulate, circuit)
    res, w_read, _ = _timed(lambda: CrossbarReader(circuit).read(vector[None]))
    spice, w_spice, _ = spice_run(circuit)
    ref, got = _icol(spice, n), _icol(wf, n)
    err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
    print(f"[op] {n}x{n}: simulate {w_sim:.3f} s (fast path {wf.meta.get('fast_path')}), batched read "
          f"{w_read:.3f} s, ngspice {w_spice:.2f} s; ratio to ngspice {w_spice / w_sim:.1f}x, to the read "
          f"{w_sim / w_read:.2f}x; max rel error {err:.1e}")
    return {"n": n, "simulate_s": w_sim, "read_s": w_read, "spice_s": w_spice, "fast_path": wf.meta.get("fast_path"),
            "ratio_spice": w_spice / w_sim, "ratio_read": w_sim / w_read, "max_rel_error": err}


def bench_nonlinear_reads(n: int = 64, count: int = 100, sample: int = 2) -> dict:
    """Batched reads of an n x n array of ``stanford_pku`` cells with the benchmark wires (1 ohm segments,
    10 ohm drivers, ideal TIAs): vectors/s *after the first batch* (whose set-up -- the reader, the
    Newton structure, compiled kernels loaded from numba's cache -- is timed on its own), and agreement
    with ngspice on ``sample`` vectors of the timed batch (each its own op()).

    The first batch is 8 vectors (one batch of the line solver). Rates by wall and CPU time."""
    from circuitkit.behavioural.batch import CrossbarReader
    rng = np.random.default_rng(0)
    # 6 decimals: the description writes values with 6 significant digits, so ngspice sees these exact values
    vectors = np.round(rng.uniform(0.0, 0.2, (count, n)), 6)

    def pku(vector, name):
        text = circuits.read_description(n, vector=vector)
        if "vteam(iv = 0)" not in text:
            raise RuntimeError("benchmark circuit changed: no vteam(iv = 0) cell to replace")
        return circuits.load_text(text.replace("vteam(iv = 0)", "stanford_pku()"), name)

    circuit = pku(vectors[0], "pku.xbar")
    reader, w_setup, c_setup = _timed(CrossbarReader, circuit)
    first = min(8, count - 1)
    res0, w_first, c_first = _timed(reader.read, vectors[:first])
    rest = vectors[first:]
    res, w, c = _timed(reader.read, rest)
    errs = []
    picks = np.linspace(0, len(rest) - 1, sample).astype(int) if sample else []
    spice_s = []
    for k in picks:
        spice, sw, _ = spice_run(pku(rest[k], f"pku{k}.xbar"))
        spice_s.append(sw)
        ref = _icol(spice, n)
        errs.append(float(np.max(np.abs(res.currents[k] - ref)) / np.max(np.abs(ref))))
    worst = max(errs) if errs else float("nan")
    print(f"[nonlinear reads] {n}x{n} stanford_pku, {len(rest)} vectors after the first {first}: "
          f"{len(rest) / w:.1f} vectors/s ({len(rest) / c:.1f} by CPU time); first batch {w_first:.2f} s "
          f"(+ reader {w_setup:.2f} s); {res.method} [{res.solver}], {res.iterations} Newton iterations, "
          f"{res.inner_iterations} CG iterations, {res.factorizations} factorisations; max rel error vs ngspice "
          f"on {len(errs)}: {worst:.1e} (ngspice op {np.mean(spice_s) if spice_s else float('nan'):.1f} s each)")
    return {"n": n, "count": count, "first_batch": first, "vectors_per_s": len(rest) / w,
            "vectors_per_s_cpu": len(rest) / c, "first_batch_s": w_first, "setup_s": w_setup,
            "method": res.method, "solver": res.solver, "iterations": res.iterations,
            "inner_iterations": res.inner_iterations, "factorizations": res.factorizations,
            "max_rel_error_vs_spice": worst, "spice_samples": len(errs),
            "spice_op_s": float(np.mean(spice_s)) if spice_s else None}
