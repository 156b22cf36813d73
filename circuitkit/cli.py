"""circuitkit: circuit-level simulation of memristive crossbars, in ngspice, VACASK and a behavioural engine.

Run 'circuitkit COMMAND -h' for a command's options and their defaults."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import CircuitkitError, ConvergenceError, SpiceError, ToolchainError, UsageError, printable
from .models_cli import add_models_commands, trusted_models_dir


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (when it has one worth showing)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default in (None, False, [], argparse.SUPPRESS) or "default" in text or not action.option_strings
                and action.nargs not in ("?", "*")):
            return text
        return f"{text} (default: %(default)s)"


class _SubcommandParser(argparse.ArgumentParser):
    """Every subcommand's parser (however its module adds it) lists its options' defaults."""

    def __init__(self, *args, **kwargs):
        kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)


def add_parser(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand (its parser lists each option's default: :class:`_SubcommandParser`)."""
    return sub.add_parser(name, **kwargs)


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UsageError(f"--set expects name=value, got '{printable(pair, 200)}'")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _tolerance(text: str) -> float:
    """A relative tolerance: a finite number in (0, 1] (argparse reports anything else, exit status 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{printable(text, 40)}' is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} is not in (0, 1]")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("description", type=Path, help="description file (.xbar)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a 'param' of the description (repeatable)")
    p.add_argument("--models-dir", type=Path,
                   help="directory with extra NAME.va + NAME.py device models (default: the shipped models only)")


def cmd_generate(args) -> int:
    from .engines import write_netlist
    from .workflow import load
    _, circuit = load(args.description, _overrides(args.overrides), trusted_models_dir(args), engines=args.engine)
    # write_netlist renders next to the target and moves it into place: a refused or failed
    # netlist leaves no file behind
    out = write_netlist(circuit, args.output, args.engine)
    print(f"wrote {out} ({sum(g.n for g in circuit.groups)} elements, {circuit.n_nodes - 1} nodes)")
    return 0


def cmd_simulate(args) -> int:
    from .engines import simulate
    from .workflow import load, write_results
    from .energy import DEFAULT_BUDGET, record_energy
    _, circuit = load(args.description, _overrides(args.overrides), trusted_models_dir(args), engines=args.engine)
    if args.energy != "off" and not record_energy(circuit, budget=DEFAULT_BUDGET if args.energy == "auto" else None):
        if args.energy == "on":
            raise CircuitkitError("--energy on: the circuit has no element whose energy is counted")
    from .engines import SPICE_ENGINES
    wf = simulate(circuit, args.engine, backend=args.backend,
                  workdir=(args.out / args.engine) if args.engine in SPICE_ENGINES and args.keep_netlist else None)
    summary = write_results(circuit, wf, args.out)
    print(f"{args.engine}: {len(summary['signals'])} signals, {summary['wall_s']:.3f} s -> {args.out}")
    en, clip = summary.get("energy") or {}, summary["adc_clipping"]
    if en.get("recorded"):
        print(f"energy: {en['total_J']:.4g} J dissipated, {en['supplied_J']:.4g} J supplied -> {args.out / 'energy.parquet'}")
    if wf.meta.get("conditioning"):                # also in summary.json (engine_meta.conditioning)
        print(f"note: {wf.meta['conditioning']}")
    if clip["clipped"]:
        print(f"note: the ADC clipped {clip['clipped']} of {clip['samples']} samples "
              f"({clip['below']} below, {clip['above']} above its range; column adc_clipped in outputs.parquet)")
    return 0


def cmd_compare(args) -> int:
    from .compare import plot_comparison
    from .results import atomic_write_json
    from .workflow import cross_check, load
    from .engines import ENGINE_LABELS, parse_engines
    try:
        engines = parse_engines(args.engines)
    except ValueError as exc:
        raise UsageError(f"{exc}") from None
    _, circuit = load(args.description, _overrides(args.overrides), trusted_models_dir(args), engines=engines)
    check = cross_check(circuit, tolerance=args.tol, backend=args.backend, engines=engines)
    many = len(check.comparisons) > 1
    for key, comparison in check.comparisons.items():
        ref, other = key.split("-")
        if many or engines != ("spice", "behavioural"):
            print(f"== {ENGINE_LABELS[other]} against {ENGINE_LABELS[ref]} (reference)")
        print(comparison.table())
    if args.report:
        if many:
            report = {"reference": check.reference, "passed": check.passed,
                      "comparisons": {k: c.to_json() for k, c in check.comparisons.items()}}
        else:
            report = dict(check.comparison.to_json(), engines=list(engines))
        atomic_write_json(args.report, report)
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        for k, (key, comparison) in enumerate(check.comparisons.items()):
            other = key.split("-")[1]
            path = args.plot if k == 0 else args.plot.with_name(f"{args.plot.stem}-{other}{args.plot.suffix}")
            plot_comparison(circuit, check.spice, check.waveforms[other], comparison, path)
            print(f"plot: {path}")
    return 0 if check.passed else 1


def cmd_doctor(args) -> int:
    from .doctor import main as doctor_main
    return doctor_main()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="circuitkit", description=__doc__, formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_SubcommandParser)

    from .engines import ENGINES, SPICE_ENGINES
    p = add_parser(sub, "generate", help="write the ngspice (or VACASK) netlist of a description")
    _common(p)
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="netlist file to write (not created when the description is refused)")
    p.add_argument("--engine", choices=SPICE_ENGINES, default="spice",
                   help="netlist dialect: 'spice' (ngspice, default) or 'vacask' (VACASK)")
    p.set_defaults(func=cmd_generate)

    p = add_parser(sub, "simulate", help="simulate a description in one engine")
    _common(p)
    p.add_argument("--engine", choices=ENGINES, default="behavioural",
                   help="'spice': ngspice on the generated netlist; 'vacask': VACASK on its own netlist of the "
                        "same circuit; 'behavioural': the numpy engine")
    p.add_argument("--backend", choices=("batch", "shared"), default="batch",
                   help="how ngspice runs (spice engine only): 'batch' a subprocess, 'shared' libngspice in a "
                        "child process")
    p.add_argument("--out", type=Path, required=True, help="directory for waveforms.parquet, outputs.parquet, summary.json")
    p.add_argument("--keep-netlist", action="store_true",
                   help="keep the netlist and the simulator's log in OUT/ENGINE (spice or vacask)")
    p.add_argument("--energy", choices=("auto", "on", "off"), default="auto",
                   help="record what the energy needs and write OUT/energy.parquet: 'auto' when the node "
                        "voltages over time fit in memory (about 160 MB), 'on' always, 'off' never")
    p.set_defaults(func=cmd_simulate)

    p = add_parser(sub, "compare", help="run two or three engines and compare them with the first")
    _common(p)
    p.add_argument("--engines", default="spice,behavioural", metavar="A,B[,C]",
                   help=f"engines to compare, the first is the reference (of {', '.join(ENGINES)}; "
                        "default: spice,behavioural)")
    p.add_argument("--tol", type=_tolerance, default=0.01,
                   help="relative RMS tolerance per signal, in (0, 1] (default 0.01); exit status 1 when a "
                        "signal exceeds it")
    p.add_argument("--backend", choices=("batch", "shared"), default="batch",
                   help="how ngspice runs: 'batch' a subprocess, 'shared' libngspice in a child process")
    p.add_argument("--report", type=Path, help="write the comparison as JSON to this file (default: none)")
    p.add_argument("--plot", type=Path,
                   help="write a PNG of the worst signals (and the I-V loop) to this file (default: none)")
    p.set_defaults(func=cmd_compare)

    add_models_commands(sub)

    p = add_parser(sub, "doctor", help="check ngspice, OSDI, OpenVAF and libngspice")
    p.set_defaults(func=cmd_doctor)

    from .synapse_cli import add_synapse_commands
    add_synapse_commands(sub)
    try:
        from .sweep.cli import add_sweep_commands
    except ImportError:
        pass
    else:
        add_sweep_commands(sub)
    from .workloads.networks.cli import add_network_commands; add_network_commands(sub)  # noqa: E702
    from .workloads.snn.cli import add_snn_commands; add_snn_commands(sub)  # noqa: E702  (stdp, snn)
    from .workloads.programming.cli import add_program_commands; add_program_commands(sub)  # noqa: E702
    return parser


def _os_message(exc: OSError) -> str:
    """One line for a failed file operation: the path and what is wrong with it."""
    name = printable(str(exc.filename), 300) if exc.filename is not None else None
    if isinstance(exc, FileExistsError) and name:
        return f"'{name}' exists and is not a directory (an output directory was expected)"
    if isinstance(exc, IsADirectoryError) and name:
        return f"'{name}' is a directory (a file name was expected)"
    if isinstance(exc, NotADirectoryError) and name:
        return f"'{name}': a part of this path is a file, not a directory"
    what = printable(exc.strerror or str(exc), 300)
    return f"'{name}': {what}" if name else what


def _check_outputs(args) -> None:
    """Output paths refused before any work: a file option (``--report``, ``--plot``, ``-o``) naming a
    directory, an ``--out`` directory naming a file (``program train --out`` names a file)."""
    from .results import output_dir, writable_file
    for name in ("report", "plot", "output"):
        value = getattr(args, name, None)
        if isinstance(value, Path):
            writable_file(value)
    out = getattr(args, "out", None)
    trains = getattr(args, "command", None) == "program" and (getattr(args, "target", None) or [""])[0] == "train"
    if isinstance(out, Path) and not trains:
        output_dir(out)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_outputs(args)
        return int(args.func(args) or 0)
    except CircuitkitError as exc:
        # a simulator's log excerpt or a usage text keeps its lines; anything that may echo input is one line
        lines = isinstance(exc, (UsageError, SpiceError, ConvergenceError, ToolchainError))
        print(f"error: {printable(str(exc), keep_newlines=lines)}", file=sys.stderr)
        return 2
    except OSError as exc:                  # a path the user gave that cannot be written or read: no traceback
        print(f"error: {_os_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
