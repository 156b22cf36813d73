"""``circuitkit characterise`` (device protocols) and ``circuitkit cue-task`` (short-term-memory network)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from .errors import Location, ParameterError


def _floats(text: str, what: str) -> list[float]:
    from .units import parse_si
    try:
        return [parse_si(s.strip()) for s in text.split(",") if s.strip()]
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"--{what}: {exc}", Location(parameter=what)) from None


def _engines(text: str) -> tuple[str, ...]:
    from .engines import ENGINES
    names = tuple(e.strip() for e in text.split(",") if e.strip())
    bad = [e for e in names if e not in ENGINES]
    if not names or bad:
        raise ParameterError(f"--engines: unknown engine(s) {bad or names} (known: {', '.join(ENGINES)})",
                              Location(parameter="engines"))
    return names


def cmd_characterise(args) -> int:
    from .results import atomic_write_json, atomic_write_parquet
    from .workloads.characterise import Device, Pulses, characterise, plot
    from .cli import _overrides
    from .limits import V_MAX
    for name in ("amplitude", "vread"):
        value = getattr(args, name)
        if not (math.isfinite(value) and abs(value) <= V_MAX):
            raise ParameterError(f"--{name}: {value:g} V is not a voltage within [-{V_MAX:g}, {V_MAX:g}] V",
                                 Location(parameter=name))
    device = Device.from_description(args.description, _overrides(args.overrides))
    pulses = Pulses(amplitude=args.amplitude, width=args.width, edge=args.edge, vread=args.vread,
                    delay=args.delay, period=args.period)
    options = {}
    if args.gaps:
        options["gaps"] = _floats(args.gaps, "gaps")
    if args.priming:
        priming = _floats(args.priming, "priming")
        if any(not math.isfinite(v) or v != int(v) for v in priming):
            raise ParameterError(f"--priming: pulse counts must be whole numbers, got {args.priming!r}",
                                 Location(parameter="priming"))
        options["priming"] = [int(v) for v in priming]
    result = characterise(device, args.protocol, _engines(args.engines), pulses, **options)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(out / f"{args.protocol}.parquet", result.frame())
    atomic_write_json(out / f"{args.protocol}.json", {"protocol": args.protocol, "model": device.model,
                                                       "params": device.params, "engines": list(result.tables),
                                                       "agreement": result.agreement, "fits": result.fits})
    plot(result, out / f"{args.protocol}.png")
    first = next(iter(result.tables.values()))
    shown = first.iloc[::max(1, len(first) // 12)]       # at most about a dozen rows on the terminal
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for engine, fit in result.fits.items():
        print(f"{engine}: " + ", ".join(f"{k} = {v:.4g}" for k, v in fit.items()))
    if result.agreement is not None:
        print(f"engines agree within {result.agreement:.2e} (relative, on '{args.protocol}')")
    print(f"-> {out}")
    return 0


def cmd_cue_task(args) -> int:
    from .results import atomic_write_json, atomic_write_parquet
    from .workloads.stp_network import CueTask, compare_synapses
    import pandas as pd
    from .engines import ENGINES
    from .errors import printable
    engine = args.engine
    if engine not in ENGINES:
        raise ParameterError(f"--engine: unknown engine '{printable(engine, 40)}' (known: {', '.join(ENGINES)})",
                             Location(parameter="engine"))
    if not 0 <= args.seed < 2 ** 63:
        raise ParameterError(f"--seed must be a non-negative integer below 2^63, got {args.seed}",
                             Location(parameter="seed"))
    spreads = _floats(args.spread, "spread")
    if not spreads:
        raise ParameterError(f"--spread: no sigma given in '{printable(args.spread, 40)}'", Location(parameter="spread"))
    tables = []
    for spread in spreads:
        if not 0 <= spread <= 2:
            raise ParameterError(f"--spread: sigma {spread:g} outside [0, 2]", Location(parameter="spread"))
        task = CueTask(cues=args.cues, cols=args.cols, delay=args.delay,
                       variability={k: spread for k in ("gs", "ks", "gmin")} if spread else {})
        tables.append(compare_synapses(task, args.trials, args.seed, engine).assign(spread=spread))
    table = pd.concat(tables, ignore_index=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(out / "cue_task.parquet", table)
    atomic_write_json(out / "cue_task.json", table.to_dict(orient="records"))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def add_synapse_commands(sub) -> None:
    p = sub.add_parser("characterise",
                       help="device protocols: paired-pulse facilitation, decay, LTP/LTD, meta-plasticity")
    p.add_argument("description", type=Path, help="element description (.xbar); its first 'device' is measured")
    p.add_argument("--protocol", required=True, choices=("ppf", "decay", "ltp", "meta"), help="what to measure")
    p.add_argument("--engines", default="behavioural", help="comma-separated engines; the first is the reference")
    p.add_argument("--out", type=Path, required=True, help="directory for PROTOCOL.parquet, .json and .png")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a 'param' of the description (repeatable)")
    p.add_argument("--amplitude", type=float, default=1.5, help="pulse amplitude (V)")
    p.add_argument("--width", type=float, default=100e-9, help="pulse width, flat top (s)")
    p.add_argument("--edge", type=float, default=1e-9, help="pulse rise and fall time (s)")
    p.add_argument("--vread", type=float, default=0.1, help="read level between pulses (V)")
    p.add_argument("--delay", type=float, default=20e-9, help="read this long after a pulse ends (s)")
    p.add_argument("--period", type=float, default=400e-9, help="period of pulse trains (s)")
    p.add_argument("--gaps", help="ppf: comma-separated gaps (s, SPICE suffixes allowed), e.g. 50n,200n,1u")
    p.add_argument("--priming", help="meta: comma-separated priming pulse counts, e.g. 0,5,10,20")
    p.set_defaults(func=cmd_characterise)

    p = sub.add_parser("cue-task",
                       help="short-term-memory task (which cue came first) with short-term vs non-volatile synapses")
    p.add_argument("--cues", type=int, default=4, help="number of cues (word lines)")
    p.add_argument("--cols", type=int, default=4, help="output columns")
    p.add_argument("--delay", type=float, default=200e-9, help="from the last cue to the probe (s)")
    p.add_argument("--spread", default="0.1",
                   help="comma-separated sigmas of the lognormal device-to-device spread of gs, ks and gmin")
    p.add_argument("--trials", type=int, default=40, help="random cue orders per synapse kind")
    p.add_argument("--seed", type=int, default=0, help="seed of the orders and the device variability")
    p.add_argument("--engine", default="behavioural", help="engine of every trial")
    p.add_argument("--out", type=Path, required=True, help="directory for cue_task.parquet and .json")
    p.set_defaults(func=cmd_cue_task)
