"""The ``program`` subcommand of ``circuitkit``.

    circuitkit program DESC --targets FILE --policy verify|ispp|halving|predictor[,...] [--model FILE] --out DIR
    circuitkit program train DESC --out MODEL.npz [--rounds N] [--wmin 2n] [--wmax 1u]
    circuitkit program compare DIR_A DIR_B     (per-cell pulse counts of two runs, e.g. two engines)
    circuitkit program report DIR... --out DIR (merge runs, e.g. one policy per process, and plot)

``DESC`` is a crossbar description (its stimulus is replaced by the programming rounds; its
``analysis tran(step = ...)`` sets the time step). Several policies (comma-separated) run one
after the other from the same initial states with the same cycle-to-cycle device history.
Outputs in ``DIR``: ``results.parquet`` (one row per policy, round and cell), ``summary.json``,
``rpd_one_shot.png`` (RPD after the first round, per policy) and ``pulses_per_cell.png``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...errors import UsageError, printable

POLICIES = ("verify", "ispp", "halving", "predictor")
#: rounds a run or a training set may ask for (each round is one transient of the array; the shipped
#: 32x32 runs need at most 50): a larger request is refused before anything runs, not left to run for days
MAX_ROUNDS = 100_000
USAGE = """circuitkit program DESC --targets FILE --out DIR [--policy P[,P...]] [options]
       circuitkit program train DESC --out MODEL.npz [options]
       circuitkit program compare DIR_A DIR_B
       circuitkit program report DIR [DIR ...] --out DIR"""


def add_program_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "program", help="program a crossbar to target conductances (write-and-verify, ISPP, learned predictor)",
        usage=USAGE,
        description="Program a crossbar to target conductances, train a pulse predictor, compare two "
                    "programming runs, or report the runs of a study (the four forms above).")
    p.add_argument("target", nargs="+", metavar="ARGS",
                   help="DESC; train DESC; compare DIR_A DIR_B; or report DIR [DIR ...]")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a 'param' of the description (repeatable)")
    p.add_argument("--models-dir", type=Path, help="directory with extra NAME.va + NAME.py device models")
    p.add_argument("--out", type=Path, help="output directory (program, report) or model file (train)")
    p.add_argument("--engine", choices=("behavioural", "spice"), default="behavioural",
                   help="simulator of the rounds (default behavioural)")
    p.add_argument("--c2c", action="append", default=[], metavar="PARAM=SIGMA",
                   help="cycle-to-cycle lognormal sigma of a model parameter per round (repeatable)")
    p.add_argument("--c2c-seed", type=int, default=0, help="seed of the cycle-to-cycle draws")
    p.add_argument("--scheme", choices=("v2", "v3", "float"), default="v3", help="half-select bias scheme (default v3)")
    p.add_argument("--spice-option", action="append", default=[], metavar="NAME=VALUE",
                   help="extra ngspice .options for the spice engine, e.g. reltol=1e-5 (repeatable)")
    p.add_argument("--vread", default="0.2", help="verify read voltage (default 0.2)")
    p.add_argument("--verify", choices=("ideal", "array"), default="ideal",
                   help="verify by ideal device read or by a read through the array, TIA and ADC (default ideal)")
    p.add_argument("--vset", default="1.0", help="SET (conductance-raising) row voltage (default 1.0)")
    p.add_argument("--vreset", default="-1.2", help="RESET row voltage (default -1.2)")
    # program
    p.add_argument("--targets", type=Path, help="target conductances (S), rows x cols, .npy or .csv")
    p.add_argument("--policy", default="verify",
                   help=f"one or more of {', '.join(POLICIES)} (comma-separated; default verify)")
    p.add_argument("--model", type=Path, help="pulse-predictor file (.npz) for --policy predictor")
    p.add_argument("--tol", type=float, default=0.1, help="relative tolerance of the target (default 0.1)")
    p.add_argument("--max-rounds", type=int, default=50, help="rounds per policy at most (default 50)")
    p.add_argument("--width", default="10n", help="pulse width of verify, ispp and halving (default 10n)")
    p.add_argument("--ispp-start", default="0.9,-1.1", help="ISPP first SET,RESET amplitudes (default 0.9,-1.1)")
    p.add_argument("--vstep", default="0.03", help="ISPP amplitude step (default 0.03)")
    p.add_argument("--vmax", default="1.4", help="ISPP largest amplitude (default 1.4)")
    # train
    p.add_argument("--rounds", type=int, default=10, help="train: rounds of random pulses (default 10)")
    p.add_argument("--wmin", default="2n", help="train: shortest pulse (default 2n)")
    p.add_argument("--wmax", default="1u", help="train: longest pulse (default 1u)")
    p.add_argument("--seed", type=int, default=0, help="train: seed of the random pulses")
    p.set_defaults(func=cmd_program)


def _num(text: str, what: str) -> float:
    from ...errors import CircuitkitError
    from ...units import parse_si
    try:
        value = parse_si(str(text))
    except (ValueError, TypeError):
        raise CircuitkitError(f"--{what}: not a number: '{text}'") from None
    if not np.isfinite(value):
        raise CircuitkitError(f"--{what}: must be finite, got '{text}'")
    return float(value)


def _volts(text: str, what: str) -> float:
    """:func:`_num` of a voltage: within +-``limits.V_MAX``, as a description's voltages are (a 1e5 V
    verify read overflowed the device equations into warnings and nonsense)."""
    from ...errors import CircuitkitError
    from ...limits import V_MAX
    value = _num(text, what)
    if abs(value) > V_MAX:
        raise CircuitkitError(f"--{what}: {value:g} V is outside [-{V_MAX:g}, {V_MAX:g}] V")
    return value


def _noise(args):
    from ...errors import CircuitkitError
    from .noise import CycleNoise
    sigma = {}
    for pair in args.c2c:
        if "=" not in pair:
            raise CircuitkitError(f"--c2c expects PARAM=SIGMA, got '{pair}'")
        k, v = pair.split("=", 1)
        sigma[k.strip()] = _num(v, "c2c")
    return CycleNoise(sigma, seed=args.c2c_seed) if sigma else None


def _array(args, design):
    from .array import ProgrammingArray
    from ...errors import CircuitkitError
    options = {}
    for pair in args.spice_option:
        if "=" not in pair:
            raise CircuitkitError(f"--spice-option expects NAME=VALUE, got '{pair}'")
        k, v = pair.split("=", 1)
        options[k.strip()] = _num(v, "spice-option")
    return ProgrammingArray(design, engine=args.engine, scheme=args.scheme, vread=_volts(args.vread, "vread"),
                            verify=args.verify, noise=_noise(args), spice_options=options)


def cmd_program(args) -> int:
    from ...cli import _overrides
    from ...description.loader import load_description
    from ...devices.registry import load_models_dir
    t = args.target
    if len(t) == 3 and t[0] == "compare":
        return _compare(Path(t[1]), Path(t[2]))
    if len(t) >= 2 and t[0] == "report":
        if args.out is None:
            raise UsageError("program report needs --out DIR")
        return _report([Path(x) for x in t[1:]], args.out)
    if len(t) == 2 and t[0] == "train":
        action, desc = "train", Path(t[1])
    elif len(t) == 1:
        action, desc = "program", Path(t[0])
    else:
        raise UsageError("usage: " + USAGE)
    if args.out is None:
        raise UsageError(f"program {'train ' if action == 'train' else ''}needs --out")
    if args.models_dir:
        load_models_dir(args.models_dir)
    _check_options(args, action)
    design = load_description(desc, _overrides(args.overrides))
    return _train(args, design) if action == "train" else _program(args, design, desc)


def _check_options(args, action: str) -> None:
    """Option values with a meaning: refused with the option's name before anything runs."""
    import math
    from ...errors import Location, ParameterError

    def bad(name, msg):
        raise ParameterError(f"--{name} {msg}", Location(parameter=name))
    if not 0 <= args.c2c_seed < 2 ** 63:
        bad("c2c-seed", f"must be a non-negative integer, got {args.c2c_seed}")
    if action == "train" and not 1 <= args.rounds <= MAX_ROUNDS:
        bad("rounds", f"must be between 1 and {MAX_ROUNDS:,}, got {args.rounds}")
    if action == "train" and not 0 <= args.seed < 2 ** 32:     # numpy and scikit-learn seeds
        bad("seed", f"must be an integer in [0, 2^32), got {args.seed}")
    if action == "program":
        if not (math.isfinite(args.tol) and 0 < args.tol < 1):
            bad("tol", f"is a relative tolerance in (0, 1), got {args.tol:g}")
        if not 1 <= args.max_rounds <= MAX_ROUNDS:
            bad("max-rounds", f"must be between 1 and {MAX_ROUNDS:,}, got {args.max_rounds}")


def _train(args, design) -> int:
    from ...results import atomic_write_parquet
    from .predictor import PulsePredictor, training_set
    vset, vreset = _volts(args.vset, "vset"), _volts(args.vreset, "vreset")
    wmin, wmax = _num(args.wmin, "wmin"), _num(args.wmax, "wmax")
    array = _array(args, design)
    data = training_set(array, vset=vset, vreset=vreset, wmin=wmin, wmax=wmax, rounds=args.rounds, seed=args.seed)
    meta = {"vset": vset, "vreset": vreset, "wmin": wmin, "wmax": wmax, "ratio": 2 ** (1 / 8),
            "vread": array.vread, "model": array.model.name, "description": design.title,
            "c2c": dict(array.noise.sigma) if array.noise else {}, "train_cells": int(np.prod(array.shape)),
            "train_rounds": args.rounds}
    predictor = PulsePredictor.fit(data, seed=args.seed, meta=meta)
    out = predictor.save(args.out)
    atomic_write_parquet(out.with_suffix(".train.parquet"), data)
    print(f"trained on {predictor.meta['samples']} pulses ({predictor.meta['dropped']} dropped), "
          f"rmse ln(width) {predictor.meta['train_rmse_ln_width']:.3f} -> {out}")
    return 0


def _policy(name: str, args):
    from ...errors import CircuitkitError
    from .policies import ISPP, FixedPulse, WidthHalving
    from .predictor import PredictorPolicy, PulsePredictor
    vset, vreset, width = _volts(args.vset, "vset"), _volts(args.vreset, "vreset"), _num(args.width, "width")
    if name == "verify":
        return FixedPulse(vset, vreset, width, tol=args.tol)
    if name == "ispp":
        start = [_volts(v, "ispp-start") for v in str(args.ispp_start).split(",")]
        if len(start) != 2:
            raise CircuitkitError("--ispp-start expects SET,RESET amplitudes, e.g. 0.8,-1.0")
        return ISPP(start[0], start[1], width, vstep=_volts(args.vstep, "vstep"), vmax=_volts(args.vmax, "vmax"),
                    tol=args.tol)
    if name == "halving":
        return WidthHalving(vset, vreset, 8 * width, tol=args.tol)
    if name == "predictor":
        if args.model is None:
            raise CircuitkitError("--policy predictor needs --model FILE (make one with 'circuitkit program train')")
        return PredictorPolicy(PulsePredictor.load(args.model), tol=args.tol)
    raise CircuitkitError(f"unknown policy '{name}' (known: {', '.join(POLICIES)})")


def _check_predictors(policies, model: str, vread: float, path) -> None:
    """A pulse predictor answers for the device model and the verify read it was trained with: on another
    model its SET and RESET amplitudes may have the other polarity (VTEAM's ON state is x = 0), at another
    read voltage it sees other conductances; refused, naming both."""
    import math

    from ...errors import CircuitkitError
    from .predictor import PredictorPolicy
    for pol in policies:
        if not isinstance(pol, PredictorPolicy):
            continue
        meta = pol.predictor.meta
        trained = meta.get("model")
        if isinstance(trained, str) and trained != model:
            raise CircuitkitError(f"--model {path}: the predictor was trained on model '{printable(trained, 40)}', "
                                  f"the crossbar's cells are '{model}' (train one for them with 'program train')")
        v = meta.get("vread")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isclose(v, vread, rel_tol=1e-9):
            raise CircuitkitError(f"--model {path}: the predictor was trained with verify reads at {v:g} V, "
                                  f"this run reads at {vread:g} V (--vread {v:g}, or train one at {vread:g} V)")


#: conductance targets a file may ask for (S): the resistances a description may hold, 1e-6 .. 1e15 ohm
G_TARGET_RANGE = (1e-15, 1e6)


def load_targets(path, shape: tuple[int, int]) -> np.ndarray:
    """Target conductances (S) from ``--targets``: read through :mod:`safeio` (a regular .csv/.txt/.npy file within
    the data size limit), of the array's ``shape``, every value in :data:`G_TARGET_RANGE`. Errors name the file,
    a row and a column, never the file's contents."""
    from ...circuit.states import load_matrix
    from ...errors import DescriptionError, Location
    loc = Location(file=str(path), parameter="--targets")
    target = load_matrix(path, loc, "--targets")
    if target.shape != tuple(shape):
        raise DescriptionError(f"--targets: '{Path(path).name}' holds {target.shape[0]} x {target.shape[1]} values; "
                               f"the crossbar is {shape[0]} x {shape[1]}", loc)
    lo, hi = G_TARGET_RANGE
    bad = np.argwhere(~((target >= lo) & (target <= hi)))
    if bad.size:
        r, c = (int(v) + 1 for v in bad[0])
        more = f" (and {len(bad) - 1} more cells)" if len(bad) > 1 else ""
        raise DescriptionError(f"--targets: '{Path(path).name}' row {r}, column {c}{more} is not a number in the "
                               f"allowed conductance range [{lo:g}, {hi:g}] S", loc)
    return target


def _program(args, design, desc: Path) -> int:
    import pandas as pd

    from ...errors import CircuitkitError
    from ...results import atomic_write_json, atomic_write_parquet
    from .run import program
    if args.targets is None:
        raise CircuitkitError("program needs --targets FILE (target conductances, S)")
    names = [n.strip() for n in args.policy.split(",") if n.strip()]
    if not names:
        raise CircuitkitError("--policy names no policy")
    policies = [_policy(n, args) for n in names]           # every option checked before anything runs
    _check_predictors(policies, design.crossbar.model, _volts(args.vread, "vread"), args.model)
    target = load_targets(args.targets, (design.crossbar.rows, design.crossbar.cols))
    results = []
    # the summary's tolerances: +-50 %, +-10 % and the run's own (the plot and report read to_<tol>pct)
    tols = tuple(sorted({0.5, 0.1, float(args.tol)}, reverse=True))

    def save() -> tuple:               # after every policy: a failure later keeps the finished policies
        done = names[:len(results)]
        frames = [r.to_frame() for r in results]
        frame = pd.concat([f for f in frames if not f.empty] or [pd.DataFrame()], ignore_index=True)
        atomic_write_parquet(args.out / "results.parquet", frame)
        summary = {"description": str(desc), "targets": str(args.targets), "engine": args.engine,
                   "verify": args.verify, "tol": args.tol, "c2c": args.c2c, "c2c_seed": args.c2c_seed,
                   "rpd_definition": "rpd = 100 (G - G*)/G*; rpd_sym = 200 |G - G*|/(G + G*)",
                   "policies": {n: r.summary(tols) for n, r in zip(done, results)},
                   "pulses_per_cell": {n: r.pulse_counts().tolist() for n, r in zip(done, results)},
                   "complete": len(done) == len(names)}
        atomic_write_json(args.out / "summary.json", summary)
        return frame, summary

    args.out.mkdir(parents=True, exist_ok=True)
    for name, policy in zip(names, policies):
        array = _array(args, design)
        res = program(array, target, policy, max_rounds=args.max_rounds,
                      progress=lambda k, g: print(f"  {name} round {k}: {100 * np.mean(np.abs(g / target - 1) <= args.tol):.1f} "
                                                  f"% within {100 * args.tol:g} %", flush=True))
        results.append(res)
        s = res.summary(tols)
        print(f"{name:<10} one shot: {100 * s['one_shot']['within_50pct']:5.1f} % within 50 %, "
              f"{100 * s['one_shot']['within_10pct']:5.1f} % within 10 %; pulses to 10 %: mean "
              f"{_fmt(s['to_10pct']['pulses_mean'])}, all cells after "
              f"{'(not reached)' if s['to_10pct']['rounds'] is None else s['to_10pct']['rounds']} rounds "
              f"({s['rounds']} rounds, {s['wall_s']:.1f} s)")
        frame, summary = save()
    if not frame.empty:
        plot_results(frame, summary, args.out)
    print(f"-> {args.out}")
    return 0


def _compare(a: Path, b: Path) -> int:
    """Exit 0 when both runs gave every cell the same number of pulses under every common policy.

    For each cell that differs, the round where the two runs first decided differently and what
    their verify reads were there (RPD, %): a decision flips when the engines' small difference
    straddles the tolerance boundary.
    """
    import pandas as pd

    from ...errors import CircuitkitError
    runs, frames = [], []
    for d in (a, b):
        summary, frame = _read_run(d)
        runs.append(summary)
        frames.append(frame)
    common = [n for n in runs[0]["pulses_per_cell"] if n in runs[1]["pulses_per_cell"]]
    if not common:
        raise CircuitkitError(f"{a} and {b} share no policy")
    differ = 0
    for n in common:
        pa, pb = (np.asarray(r["pulses_per_cell"][n]) for r in runs)
        if pa.shape != pb.shape:
            raise CircuitkitError(f"policy {n}: arrays of shape {pa.shape} and {pb.shape}")
        bad = np.argwhere(pa != pb)
        differ += len(bad)
        print(f"{n:<10} {pa.size} cells, {int(pa.sum())} vs {int(pb.sum())} pulses, {len(bad)} cells differ "
              f"({runs[0].get('engine')} vs {runs[1].get('engine')})")
        fa, fb = (f[f.policy == n].set_index(["round", "row", "col"]) for f in frames)
        for i, j in bad:
            ca, cb = fa.xs((i, j), level=("row", "col")), fb.xs((i, j), level=("row", "col"))
            rounds = sorted(set(ca.index) & set(cb.index))
            k = next((r for r in rounds if ca.loc[r, "pulsed"] != cb.loc[r, "pulsed"]), None)
            if k is None:                  # one run stopped: every cell was in tolerance there, not in the other
                short, long_ = (ca, cb) if len(ca) < len(cb) else (cb, ca)
                k = len(short)
                last = short.loc[k - 1]
                ra = 100 * (last["g_after"] / last["target"] - 1)
                rb = 100 * (long_.loc[k, "g_seen"] / long_.loc[k, "target"] - 1)
                print(f"    cell ({i}, {j}): the run with fewer rounds stopped after round {k - 1} (cell at "
                      f"{ra:+.4f} %); the other read it at {rb:+.4f} % and went on")
                continue
            ra, rb = (100 * (c.loc[k, "g_seen"] / c.loc[k, "target"] - 1) for c in (ca, cb))
            print(f"    cell ({i}, {j}): first differs in round {k}, verify read RPD {ra:+.4f} % vs {rb:+.4f} %")
    return 0 if differ == 0 else 1


def _fmt(v):
    return "n/a" if v is None else f"{v:.2f}"


def plot_results(frame, summary: dict, out: Path) -> None:
    """``rpd_one_shot.png`` and ``pulses_per_cell.png`` in ``out`` from a results frame and its summary."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["policies"])
    tol = summary.get("tol", 0.1)
    fig, ax = plt.subplots(figsize=(6.4, 4))
    bins = np.linspace(-200, 200, 81)
    before = None
    for n in names:
        first = frame[(frame.policy == n) & (frame["round"] == 0)]
        if first.empty:
            continue
        r1 = 100 * (first.g_after / first.target - 1)
        before = 100 * (first.g_before / first.target - 1)
        ax.hist(np.clip(r1, -200, 200), bins=bins, histtype="step", lw=1.5,
                label=f"{n}: {100 * np.mean(np.abs(r1) <= 50):.0f} % within 50 %")
    if before is not None:
        ax.hist(np.clip(before, -200, 200), bins=bins, histtype="stepfilled", alpha=0.2, color="grey",
                label=f"before: {100 * np.mean(np.abs(before) <= 50):.0f} % within 50 %")
    for x in (-50, 50):
        ax.axvline(x, color="k", ls=":", lw=0.8)
    ax.set_xlabel("RPD after one round, 100 (G - G*)/G* (%, clipped to +-200)")
    ax.set_ylabel("cells")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "rpd_one_shot.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.4, 4))
    counts = {n: np.asarray(summary["pulses_per_cell"][n]).ravel() for n in names}
    top = max(int(c.max()) for c in counts.values()) + 1
    b = np.arange(0, top + 1) - 0.5
    for n in names:
        reach = (summary["policies"][n].get(f"to_{int(100 * tol)}pct") or {}).get("pulses_mean")
        ax.hist(counts[n], bins=b, histtype="step", lw=1.5,
                label=f"{n}: {counts[n].mean():.1f} pulses/cell; to +-{100 * tol:.0f} %: {_fmt(reach)}")
    ax.set_xlabel("pulses per cell (whole run)")
    ax.set_ylabel("cells")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "pulses_per_cell.png", dpi=120)
    plt.close(fig)


#: largest summary.json / results.parquet of a programming run read back (a 128x128 study: a few MB)
MAX_RUN_FILE = 256 << 20


def _read_run(d: Path):
    """(summary, results frame) of a programming run directory, read as untrusted files: regular files of
    bounded size (a FIFO or a link to /dev/zero is refused unopened), the summary a table with the
    run's policies and pulse counts; anything else a one-line error naming the file."""
    import io

    import pandas as pd

    from ...description.safeio import read_bytes
    from ...errors import CircuitkitError, DescriptionError

    def read(name: str) -> bytes:
        try:
            return read_bytes(d / name, None, name, MAX_RUN_FILE)
        except DescriptionError as exc:
            raise CircuitkitError(f"{d}: {exc.message}") from None

    path = d / "summary.json"
    try:
        summary = json.loads(read("summary.json"))
    except (ValueError, RecursionError):
        raise CircuitkitError(f"{path}: not a programming run's summary (not JSON)") from None
    if not isinstance(summary, dict) or not all(isinstance(summary.get(k), dict)
                                                for k in ("policies", "pulses_per_cell")):
        raise CircuitkitError(f"{path}: not a programming run's summary (no 'policies' and 'pulses_per_cell' "
                              f"tables)")
    data = read("results.parquet")
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 -- pyarrow raises its own kinds for a damaged file
        raise CircuitkitError(f"{d / 'results.parquet'}: not readable ({type(exc).__name__})") from None
    return summary, frame


#: settings of a run's summary.json that the runs merged by ``program report`` must share
SETUP_KEYS = ("engine", "verify", "tol", "c2c", "c2c_seed")


def _setup_value(summary: dict, key: str):
    v = summary.get(key)
    return sorted(map(str, v)) if isinstance(v, list) else v


def _report(dirs: list[Path], out: Path) -> int:
    """Merge runs (e.g. one policy per process) into one results.parquet, summary.json and plots."""
    import pandas as pd

    from ...errors import CircuitkitError
    from ...results import atomic_write_json, atomic_write_parquet
    frames, summary = [], None
    owner: dict[str, Path] = {}                 # policy -> the run that holds it
    targets = None                              # (row, col) -> target of the first run
    for d in dirs:
        s, frame = _read_run(d)
        # one study: every policy once (summary.json keeps one summary per policy; its rows of
        # results.parquet would be mixed with another run's), the same setup and the same targets
        for n in s["policies"]:
            if n in owner:
                raise CircuitkitError(f"policy '{n}' is in both {owner[n]} and {d}: a report merges runs of "
                                      "different policies of one study (compare two runs with 'program compare')")
            owner[n] = d
        if summary is not None:
            for key in SETUP_KEYS:
                mine, theirs = _setup_value(s, key), _setup_value(summary, key)
                if mine != theirs:
                    raise CircuitkitError(f"{d}: '{key}' is {mine!r}, but {theirs!r} in {dirs[0]}: "
                                          "a report merges runs of one study")
        if not frame.empty and {"row", "col", "target"} <= set(frame.columns):
            t = frame.drop_duplicates(["row", "col"]).set_index(["row", "col"])["target"].sort_index()
            if targets is None:
                targets = t
            elif not (t.index.equals(targets.index) and np.array_equal(t.to_numpy(), targets.to_numpy())):
                raise CircuitkitError(f"{d}: its targets differ from those of {dirs[0]}: "
                                      "a report merges runs of one study")
        frames.append(frame)
        if summary is None:
            summary = s
        else:
            summary["policies"].update(s["policies"])
            summary["pulses_per_cell"].update(s["pulses_per_cell"])
            summary["complete"] = summary.get("complete", True) and s.get("complete", True)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.concat(frames, ignore_index=True)
    atomic_write_parquet(out / "results.parquet", frame)
    atomic_write_json(out / "summary.json", summary)
    plot_results(frame, summary, out)
    print(f"{', '.join(summary['policies'])} -> {out}")
    return 0
