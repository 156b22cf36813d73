"""``circuitkit`` command line: generate, simulate, compare, models, doctor, sweep, plot, table."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import CircuitkitError


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SystemExit(f"error: --set expects name=value, got '{pair}'")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("description", type=Path, help="description file (.xbar)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a 'param' of the description (repeatable)")
    p.add_argument("--models-dir", type=Path, help="directory with extra NAME.va + NAME.py device models")


def cmd_generate(args) -> int:
    from .engines import write_netlist
    from .workflow import load
    _, circuit = load(args.description, _overrides(args.overrides), args.models_dir)
    out = write_netlist(circuit, args.output)
    print(f"wrote {out} ({sum(g.n for g in circuit.groups)} elements, {circuit.n_nodes - 1} nodes)")
    return 0


def cmd_simulate(args) -> int:
    from .engines import simulate
    from .workflow import load, write_results
    _, circuit = load(args.description, _overrides(args.overrides), args.models_dir)
    wf = simulate(circuit, args.engine, backend=args.backend,
                  workdir=(args.out / "spice") if args.engine == "spice" and args.keep_netlist else None)
    summary = write_results(circuit, wf, args.out)
    print(f"{args.engine}: {len(wf.signals)} signals, {summary['wall_s']:.3f} s -> {args.out}")
    return 0


def cmd_compare(args) -> int:
    from .compare import plot_comparison
    from .results import atomic_write_json
    from .workflow import cross_check, load
    _, circuit = load(args.description, _overrides(args.overrides), args.models_dir)
    check = cross_check(circuit, tolerance=args.tol, backend=args.backend)
    print(check.comparison.table())
    if args.report:
        atomic_write_json(args.report, check.comparison.to_json())
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot_comparison(circuit, check.spice, check.behavioural, check.comparison, args.plot)
        print(f"plot: {args.plot}")
    return 0 if check.comparison.passed else 1


def cmd_models(args) -> int:
    from . import devices
    if args.models_dir:
        devices.registry.load_models_dir(args.models_dir)
    if args.action in (None, "list"):
        for m in devices.list_models():
            print(f"{m.name:<14} {m.kind:<10} {m.description}")
        return 0
    if args.action == "show":
        if not args.name:
            raise SystemExit("error: models show needs a model name")
        m = devices.get_model(args.name)
        print(f"{m.name}: {m.description}\nstates: {', '.join(s.name for s in m.states) or 'none'}")
        print(f"{'name':<12} {'default':>12} {'unit':<8} {'range':<18} {'kind':<8} description")
        for p in m.parameters:
            print(f"{p.name:<12} {p.default:>12.5g} {p.unit:<8} {p.range_text():<18} "
                  f"{'instance' if p.instance else 'model':<8} {p.description}")
        if m.references:
            print(f"references: {m.references}")
        return 0
    if args.action == "compile":
        from .spice.osdi import compile_all
        for name, osdi in compile_all([args.name] if args.name else None).items():
            print(f"{name:<14} -> {osdi}")
        return 0
    if args.action == "check":
        from .devices.va_params import lockstep_differences
        models = [devices.get_model(args.name)] if args.name else devices.list_models()
        failed = 0
        for m in models:
            diffs = lockstep_differences(m)
            failed += bool(diffs)
            print(f"{m.name:<14} {'ok' if not diffs else 'DIFFERS'}")
            for d in diffs:
                print(f"    {d}")
        return 1 if failed else 0
    raise SystemExit(f"error: unknown models action '{args.action}' (list, show, compile, check)")


def cmd_doctor(args) -> int:
    from .doctor import main as doctor_main
    return doctor_main()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="circuitkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write the ngspice netlist of a description")
    _common(p)
    p.add_argument("-o", "--output", type=Path, required=True, help="netlist file to write")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("simulate", help="simulate a description in one engine")
    _common(p)
    p.add_argument("--engine", choices=("spice", "behavioural"), default="behavioural")
    p.add_argument("--backend", choices=("batch", "shared"), default="batch", help="ngspice backend")
    p.add_argument("--out", type=Path, required=True, help="directory for waveforms.parquet, outputs.parquet, summary.json")
    p.add_argument("--keep-netlist", action="store_true", help="keep the netlist and ngspice log in OUT/spice")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("compare", help="run both engines and compare them")
    _common(p)
    p.add_argument("--tol", type=float, default=0.01, help="relative RMS tolerance per signal (default 0.01)")
    p.add_argument("--backend", choices=("batch", "shared"), default="batch")
    p.add_argument("--report", type=Path, help="write the comparison as JSON")
    p.add_argument("--plot", type=Path, help="write a PNG of the worst signals (and the I-V loop)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("models", help="list, show, compile or lockstep-check device models")
    p.add_argument("action", nargs="?", choices=("list", "show", "compile", "check"))
    p.add_argument("name", nargs="?")
    p.add_argument("--models-dir", type=Path)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("doctor", help="check ngspice, OSDI, OpenVAF and libngspice")
    p.set_defaults(func=cmd_doctor)

    try:
        from .sweep.cli import add_sweep_commands
    except ImportError:
        pass
    else:
        add_sweep_commands(sub)
    from .workloads.programming.cli import add_program_commands; add_program_commands(sub)  # noqa: E702
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CircuitkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
