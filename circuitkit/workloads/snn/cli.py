"""``circuitkit stdp DESC`` (the STDP window of a device) and ``circuitkit snn TASK.toml`` (a learning run)."""
from __future__ import annotations

import math
import time
from pathlib import Path

from ...errors import DescriptionError, Location, printable

ENGINES = ("behavioural", "spice")
RULES = ("stdp", "three_factor", "three_factor_device")     # circuitkit.workloads.snn.tasks.RULES
#: what --spread varies (device-to-device) and --c2c scales per chunk (cycle-to-cycle), per model
SPREAD_PARAMS = {"vteam": ("ron", "roff", "koff", "kon"), "volatile": ("gmin", "glt", "kw", "klt"),
                 "yakopcic": ("a1", "a2", "ap", "an")}
C2C_PARAMS = {"vteam": ("koff", "kon"), "volatile": ("kw", "klt"), "yakopcic": ("ap", "an")}


def add_snn_commands(sub) -> None:
    p = sub.add_parser("stdp", help="STDP window of a device model: dG/G against the pre/post delay")
    p.add_argument("description", type=Path, help=".xbar with a crossbar and a wave phase with pre (row) and "
                                                 "post (column) spikes(...)")
    p.add_argument("--engine", choices=ENGINES + ("both",), default="both",
                   help="engine(s) to measure with; both also reports their disagreement (default: both)")
    p.add_argument("--dt-max", type=float, default=1.2e-6, help="largest |post - pre| delay in s (default 1.2e-6)")
    p.add_argument("--points", type=int, default=25, help="delays from -dt-max to +dt-max (default 25)")
    p.add_argument("--step", type=float, help="transient step (default: the description's)")
    p.add_argument("--out", type=Path, help="directory for stdp.csv and stdp.png")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a param of the description (repeatable)")
    p.set_defaults(func=cmd_stdp)

    p = sub.add_parser("snn", help="learning run: LIF neurons on a simulated synaptic array (TOML task)")
    p.add_argument("task", type=Path, help="task file (TOML): array description, neuron, task, rules")
    p.add_argument("--out", type=Path, required=True, help="directory for spikes/conductances Parquet, curves, PNG")
    p.add_argument("--engine", choices=ENGINES, help="override the task's engine")
    p.add_argument("--rule", choices=RULES, action="append", help="override the task's rules")
    p.add_argument("--train", type=int, help="override the number of training presentations")
    p.add_argument("--test", type=int, help="override the number of test presentations per evaluation")
    p.add_argument("--spread", type=float, help="device-to-device lognormal sigma on the parameters of "
                                                "[variability] (default per model: vteam ron, roff, koff, kon)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a param of the array description (e.g. a pulse amplitude)")
    p.add_argument("--c2c", type=float, help="cycle-to-cycle lognormal sigma per chunk on the rate parameters "
                                             "of [c2c] (default per model: vteam koff, kon)")
    p.set_defaults(func=cmd_snn)


def _overrides(items):
    out = {}
    for item in items:
        if "=" not in item:
            raise DescriptionError(f"--set expects NAME=VALUE, got {item!r}", Location(parameter=item))
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cmd_stdp(args) -> int:
    from ...description.loader import load_description
    import numpy as np

    from .stdp import stdp_window
    from ...limits import MAX_LINES
    if not 2 <= args.points <= MAX_LINES:
        # one crossbar column per delay: a larger count was refused as the description's 'cols', misleadingly
        raise DescriptionError(f"--points must be between 2 and {MAX_LINES:,} (one crossbar column per delay), "
                               f"got {args.points}", Location(parameter="points"))
    if not (math.isfinite(args.dt_max) and args.dt_max > 0):
        raise DescriptionError(f"--dt-max must be a positive finite delay, got {args.dt_max:g}",
                               Location(parameter="dt-max"))
    if args.step is not None and not args.step > 0:
        raise DescriptionError(f"--step must be a positive time step, got {args.step:g}", Location(parameter="step"))
    design = load_description(args.description, _overrides(args.overrides))
    delays = np.linspace(-args.dt_max, args.dt_max, args.points)
    engines = ENGINES if args.engine == "both" else (args.engine,)
    windows = {e: stdp_window(design, delays, engine=e, step=args.step) for e in engines}
    import pandas as pd
    table = pd.DataFrame({"dt_us": delays * 1e6})
    for e, w in windows.items():
        table[f"dG/G {e}"] = w.dg_over_g
    print(table.to_string(index=False, float_format=lambda v: f"{v:+.5f}"))
    summary = {"description": str(args.description), "delays": delays.tolist(),
               **{e: {"dG/G": w.dg_over_g.tolist(), "wall_s": w.wall_s} for e, w in windows.items()}}
    if len(windows) == 2:
        a, b = windows["behavioural"].dg_over_g, windows["spice"].dg_over_g
        floor = 1e-3 * max(np.max(np.abs(b)), 1e-12)
        sel = np.abs(b) > floor
        rel = float(np.max(np.abs(a[sel] - b[sel]) / np.abs(b[sel]))) if sel.any() else 0.0
        summary["max_rel_disagreement"] = rel
        print(f"engines: max relative difference of dG/G {rel:.2e} (points with |dG/G| > {floor:.1e}); "
              f"zero-change points agree to {float(np.max(np.abs(a[~sel] - b[~sel]), initial=0)):.1e}")
    if args.out:
        from ...results import atomic_write_json
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / "stdp.csv", index=False)
        atomic_write_json(args.out / "stdp.json", summary)
        plot_window(windows, args.out / "stdp.png", title=design.title)
        print(f"-> {args.out}/stdp.csv, stdp.png")
    return 0


def plot_window(windows, path: Path, title: str = "") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for (e, w), style in zip(windows.items(), ("o-", "x--")):
        ax.plot(w.dt * 1e6, 100 * w.dg_over_g, style, label=e, ms=4)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set_xlabel("t_post - t_pre (us)")
    ax.set_ylabel("dG/G (%)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- learning runs ------------------------------------------------------------------------------

_SECTIONS = {
    "neuron": ("tau", "cm", "threshold", "refractory", "v_reset", "rectify", "adapt", "adapt_tau"),
    "task": ("n_inputs", "k", "period", "onset", "p_noise", "train", "test", "seed", "tail"),
    "run": ("rules", "engine", "step", "max_chunk", "eval_every", "reward_amplitude", "reward_width",
            "reward_delay"),
    "variability": None,
    "c2c": None,
}
MAX_SEED = 2 ** 32 - 1                 # seeds in [0, 2^32)
MAX_TRAIN = 100_000                 # training presentations
MAX_TEST = 10_000                   # test presentations per evaluation
#: (kind, low, high, low open): "float" finite number, "int" integer, "bool"; times in s, voltages in V
_RANGES = {
    "neuron.tau": ("float", 0.0, 1.0, True), "neuron.cm": ("float", 0.0, 1.0, True),
    "neuron.threshold": ("float", 0.0, 1e4, True), "neuron.refractory": ("float", 0.0, 1.0, False),
    "neuron.v_reset": ("float", -1e4, 1e4, False), "neuron.rectify": ("bool", None, None, False),
    "neuron.adapt": ("float", 0.0, 1e4, False), "neuron.adapt_tau": ("float", 0.0, 1.0, True),
    "task.n_inputs": ("int", 2, 4096, False), "task.k": ("int", 1, 4095, False),
    "task.period": ("float", 0.0, 1e-3, True), "task.onset": ("float", 0.0, 1e-3, False),
    "task.p_noise": ("float", 0.0, 1.0, False), "task.train": ("int", 0, MAX_TRAIN, False),
    "task.test": ("int", 1, MAX_TEST, False), "task.seed": ("int", 0, MAX_SEED, False),
    "task.tail": ("float", 0.0, 1e-3, False),
    "run.step": ("float", 1e-15, 1e-6, False), "run.max_chunk": ("float", 1e-12, 1e-3, False),
    "run.eval_every": ("int", 1, MAX_TRAIN, False), "run.reward_amplitude": ("float", -1e4, 1e4, False),
    "run.reward_width": ("float", 0.0, 1e-3, True), "run.reward_delay": ("float", 0.0, 1e-3, False),
    "variability.seed": ("int", 0, MAX_SEED, False),
}
_SIGMA = ("float", 0.0, 3.0, False)          # lognormal sigma of [variability] and [c2c] parameters


def _task_error(path, text: str, key: str, msg: str) -> DescriptionError:
    """An error at the line of ``key`` ("table.name") in the task file, naming table and key."""
    from ...tomlkeys import key_line
    table, _, name = key.partition(".")
    line = key_line(text, key)
    where = f"[{table}] {name}" if name else table
    return DescriptionError(f"{where}: {msg}", Location(file=str(path), line=line, parameter=key))


def check_value(key: str, value, rule, fail):
    """``value`` of ``key`` checked against ``rule`` = (kind, low, high, low open); ``fail(key, msg)`` raises."""
    kind, lo, hi, lo_open = rule
    if kind == "bool":
        if not isinstance(value, bool):
            fail(key, f"must be true or false, got {type(value).__name__}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(key, f"must be {'an integer' if kind == 'int' else 'a number'}, got {type(value).__name__}")
    if not math.isfinite(value):
        fail(key, f"must be finite, got {value}")
    if kind == "int" and not float(value).is_integer():
        fail(key, f"must be an integer, got {value}")
    if value < lo or (lo_open and value == lo) or value > hi:
        fail(key, f"{value:.15g} is outside {'(' if lo_open else '['}{lo:.15g}, {hi:.15g}]")
    return int(value) if kind == "int" else float(value)


def load_task(path: Path) -> dict:
    """Read and check a task file: every value typed, finite and in range; an error names file, table and key."""
    import tomllib

    from ...description import safeio
    path = Path(path)
    text = safeio.read_text(path, Location(file=str(path)), "task file")
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DescriptionError(f"not valid TOML: {exc}", Location(file=str(path))) from None

    def fail(key, msg):
        raise _task_error(path, text, key, msg)

    from ...tomlkeys import MAX_INT, oversized_int
    huge = oversized_int(spec)
    if huge is not None:
        fail(huge, f"an integer beyond +-{MAX_INT} (64 bits)")
    for key, value in spec.items():
        if key == "array":
            continue
        if key not in _SECTIONS:
            fail(key, f"unknown section '{key}' (known: array, {', '.join(_SECTIONS)})")
        if not isinstance(value, dict):
            fail(key, f"'{key}' must be a table [{key}]")
        allowed = _SECTIONS[key]
        for k, v in value.items():
            full = f"{key}.{k}"
            if allowed is not None and k not in allowed:
                fail(full, f"[{key}] has no setting '{k}' (known: {', '.join(allowed)})")
            if full == "run.rules":
                if not isinstance(v, list) or not v or not all(isinstance(r, str) and r in RULES for r in v):
                    fail(full, f"must be a non-empty list of rules from {', '.join(RULES)}")
            elif full == "run.engine":
                if not isinstance(v, str) or v not in ENGINES:
                    fail(full, f"must be one of {', '.join(ENGINES)}")
            else:
                value[k] = check_value(full, v, _RANGES.get(full, _SIGMA), fail)
    if not isinstance(spec.get("array"), str):
        fail("array", "array = \"DESC.xbar\" (the synaptic array and its pulse shapes) is required")
    try:
        safeio.check_path_text(spec["array"], None, "array")
    except DescriptionError as exc:
        fail("array", exc.message)
    if not spec["array"].lower().endswith(".xbar"):
        fail("array", f"array = '{printable(spec['array'], 200)}': must name an .xbar description")
    spec["array_path"] = (path.parent / spec["array"]).resolve()
    spec["_text"] = text
    return spec


def check_work(task, eval_every: int, step: float, max_chunk: float, fail) -> None:
    """Refuse, with the numbers, a run whose presentations or transient time points exceed the limits."""
    from ... import limits
    evaluations = task.train // eval_every + 2
    presentations = task.train + task.test * evaluations
    points = presentations * task.period / step
    lim = limits.current().timepoints
    if points > lim:
        fail("task.train", f"{task.train} training presentations and {task.test} test presentations per evaluation "
             f"({evaluations} evaluations) of {task.period:g} s are {presentations:,} presentations, "
             f"{points:.3g} time steps of {step:g} s: more than the limit of {lim:,} (CIRCUITKIT_MAX_TIMEPOINTS)")
    if max_chunk < 4 * step:
        fail("run.max_chunk", f"{max_chunk:g} s must be at least 4 time steps ({4 * step:g} s)")


def cmd_snn(args) -> int:
    import pandas as pd

    from ... import design as d
    from ...description.loader import load_description
    from ...results import atomic_write_json, atomic_write_parquet
    from .cosim import LIF
    from .stdp import shapes_from
    from .tasks import Task, learn

    spec = load_task(args.task)
    loc = Location(file=str(args.task))
    design = load_description(spec["array_path"], _overrides(args.overrides))
    pre, post = shapes_from(design)
    run = dict(spec.get("run", {}))
    engine = args.engine or run.get("engine", "behavioural")     # both checked: argparse choices, load_task
    rules = args.rule or run.get("rules", ["stdp", "three_factor"])
    if len(set(rules)) != len(rules):
        twice = sorted({r for r in rules if rules.count(r) > 1})
        where = Location(parameter="--rule") if args.rule else Location(file=str(args.task), parameter="run.rules")
        raise DescriptionError(f"rule {', '.join(twice)} given twice (each rule runs once; its files would be "
                               "overwritten)", where)

    def fail(key, msg):
        raise _task_error(args.task, spec["_text"], key, msg)

    def fail_cli(key, msg):
        raise DescriptionError(f"{key} {msg}", Location(parameter=key))

    try:
        neuron = LIF(**spec.get("neuron", {}))
        task = Task(**spec.get("task", {}))
    except (TypeError, ValueError) as exc:
        raise DescriptionError(f"task: {exc}", loc) from None
    if args.train is not None:
        task.train = check_value("--train", args.train, _RANGES["task.train"], fail_cli)
    if args.test is not None:
        task.test = check_value("--test", args.test, _RANGES["task.test"], fail_cli)
    if not 1 <= task.k < task.n_inputs:
        fail("task.k", f"{task.k} must be at least 1 and less than n_inputs = {task.n_inputs}")
    if task.onset >= task.period:
        fail("task.onset", f"{task.onset:g} s must be less than the period ({task.period:g} s)")
    # a presentation: the coincidence at onset, background spikes from onset + 0.3 us until tail + 0.1 us
    # before the next presentation (tasks.presentations)
    if task.period < task.onset + task.tail + 0.4e-6:
        fail("task.period", f"{task.period:g} s is too short: a presentation needs onset + tail + 0.4 us = "
             f"{task.onset + task.tail + 0.4e-6:g} s (the coincidence, then background spikes whose pulses end "
             "before the next presentation)")
    pre_len = max(pre.times) if pre.times else 0.0
    if task.tail < pre_len:
        fail("task.tail", f"{task.tail:g} s is shorter than the array's pre-synaptic pulse ({pre_len:g} s): "
             "background pulses would run into the next presentation")
    step = run.get("step") or design.analysis.step or 2e-9
    max_chunk = run.get("max_chunk", 0.2e-6)
    eval_every = run.get("eval_every", 10)
    check_work(task, eval_every, step, max_chunk, fail)
    if "three_factor_device" in rules and "reward_amplitude" not in run:
        raise DescriptionError("rule three_factor_device needs [run] reward_amplitude (and reward_width, reward_delay)",
                               Location(file=str(args.task), parameter="run.reward_amplitude"))
    variability = dict(spec.get("variability", {}))
    seed = int(variability.pop("seed", 0))
    model = design.crossbar.model
    try:
        from ...devices.registry import get_model
        known = {prm.name for prm in get_model(model).parameters}
    except Exception:  # noqa: BLE001 - the loader accepted the model; without its parameter list, skip the check
        known = None
    for table in ("variability", "c2c"):
        for name in spec.get(table, {}):
            if name != "seed" or table == "c2c":
                if known is not None and name not in known:
                    fail(f"{table}.{name}", f"model '{model}' has no parameter '{name}'")
    if args.spread is not None:
        check_value("--spread", args.spread, _SIGMA, fail_cli)
        names = [k for k in variability] or list(SPREAD_PARAMS.get(model, ()))
        if not names:
            raise DescriptionError(f"--spread: list the parameters of '{model}' to vary in [variability]",
                                   Location(file=str(args.task), parameter="variability"))
        variability = {name: args.spread for name in names}
    if args.c2c is not None:
        check_value("--c2c", args.c2c, _SIGMA, fail_cli)
        names = list(spec.get("c2c", {})) or list(C2C_PARAMS.get(model, ()))
        if not names:
            raise DescriptionError(f"--c2c: list the rate parameters of '{model}' in [c2c]",
                                   Location(file=str(args.task), parameter="c2c"))
        spec["c2c"] = {name: args.c2c for name in names}
    if variability:
        design.crossbar.variability = {k: float(v) for k, v in variability.items()}
        design.crossbar.variability_seed = seed
    c2c = {k: float(v) for k, v in spec.get("c2c", {}).items()}
    reward = None
    if "reward_amplitude" in run:
        edge, width = 10e-9, float(run.get("reward_width", 100e-9))
        try:
            reward = d.SpikeShape((0.0, edge, edge + width, 2 * edge + width),
                                  (0.0, float(run["reward_amplitude"]), float(run["reward_amplitude"]), 0.0))
        except ValueError as exc:
            raise DescriptionError(f"reward pulse: {exc}", Location(file=str(args.task), parameter="run.reward_width")) from None
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"task": str(args.task), "engine": engine, "overrides": _overrides(args.overrides), "variability": variability, "c2c": c2c, "rules": {},
               "train": task.train, "test": task.test}
    curves = []
    results = {}
    for rule in rules:
        t0 = time.perf_counter()
        try:
            res = learn(design, pre, post, neuron, task, rule=rule, engine=engine, c2c=c2c or None,
                        step=run.get("step"), max_chunk=max_chunk, eval_every=eval_every,
                        reward_shape=reward, reward_delay=float(run.get("reward_delay", 0.1e-6)))
        except ValueError as exc:          # a combination of task values the co-simulation cannot run
            raise DescriptionError(f"rule {rule}: {exc}", loc) from None
        wall = time.perf_counter() - t0
        results[rule] = res
        sim = res.cosim
        r = sim.result()
        atomic_write_parquet(args.out / f"spikes_{rule}.parquet", r.spikes_frame())
        atomic_write_parquet(args.out / f"conductances_{rule}.parquet", r.conductance_frame())
        curves += [{"rule": rule, "presentations": n, "accuracy": a} for n, a in res.curve]
        summary["rules"][rule] = {"accuracy": res.accuracy, "curve": res.curve, "g_pattern": res.g_pattern,
                                  "g_other": res.g_other, "chunks": r.chunks, "simulated_chunks": r.simulated_chunks,
                                  "wall_s": wall}
        summary["complete"] = len(summary["rules"]) == len(rules)     # a later failure keeps this rule's results
        atomic_write_json(args.out / "summary.json", summary)
        pd.DataFrame(curves).to_csv(args.out / "curves.csv", index=False)
        print(f"{rule}: accuracy {res.accuracy:.2f} after {task.train} presentations "
              f"(curve {[round(a, 2) for _, a in res.curve]}); G pattern {res.g_pattern * 1e6:.1f} uS, "
              f"other {res.g_other * 1e6:.1f} uS; {r.simulated_chunks} transients, {wall:.1f} s")
    pd.DataFrame(curves).to_csv(args.out / "curves.csv", index=False)
    atomic_write_json(args.out / "summary.json", summary)
    plot_learning(results, task, args.out / "learning.png")
    print(f"-> {args.out}")
    return 0


def plot_learning(results, task, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for rule, res in results.items():
        n, a = zip(*res.curve)
        axes[0].plot(n, a, "o-", label=rule)
        snaps = res.cosim.snapshots
        t = [s[0] * 1e6 for s in snaps]
        axes[1].plot(t, [1e6 * s[1][:task.k, 0].mean() for s in snaps], "-", label=f"{rule}: pattern")
        axes[1].plot(t, [1e6 * s[1][task.k:, 0].mean() for s in snaps], "--", label=f"{rule}: others")
    axes[0].set_xlabel("training presentations")
    axes[0].set_ylabel("test accuracy")
    axes[0].set_ylim(0, 1.05)
    axes[0].legend()
    axes[1].set_xlabel("time (us)")
    axes[1].set_ylabel("mean G (uS)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
