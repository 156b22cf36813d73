"""``circuitkit models``: list, show, compile, check and generate twins of device models."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import UsageError


def trusted_models_dir(args) -> Path | None:
    """Load ``--models-dir`` (the user named it: its Python twins are imported) and say
    on stderr what it contributed; return the directory for ``workflow.load``."""
    directory = getattr(args, "models_dir", None)
    if directory is None:
        return None
    from .devices.registry import load_models_dir
    loaded = load_models_dir(directory, trust_python=True)
    print(loaded.summary(), file=sys.stderr)
    return directory


def _source(m) -> str:
    if getattr(m, "generated", False):
        return "generated"
    return "user" if getattr(m, "va_dir", None) is not None else "shipped"


def _show(m) -> None:
    import numpy as np
    print(f"{m.name}: {m.description}")
    print(f"twin: {_source(m)} ({m.va_file()})")
    if m.states:
        print(f"{'state':<7} {'terminal':<9} {'initial':<8} {'range':<10} {'ON (high G)':<12} recorded as")
        for s in m.states:
            on = {"upper": f"x = {s.upper:g}", "lower": f"x = {s.lower:g}"}.get(s.on_bound, "-")
            print(f"{s.name:<7} {s.terminal:<9} {s.init:<8} {f'[{s.lower:g}, {s.upper:g}]':<10} {on:<12} "
                  f"{s.name}(<device>)")
        p = m.resolve({})
        s0 = m.states[0]
        g = [float(m.read_conductance(0.1, np.array([x]), p)[0]) for x in (s0.lower, s0.upper)]
        print(f"read-out: G = I(v, x)/v at v = 0.1 V: {g[0]:.6g} S at {s0.name} = {s0.lower:g}, "
              f"{g[1]:.6g} S at {s0.name} = {s0.upper:g} (other states at their initial values)")
    else:
        print("states: none")
    print(f"{'name':<12} {'default':>12} {'unit':<8} {'range':<18} {'kind':<8} description")
    for p in m.parameters:
        print(f"{p.name:<12} {p.default:>12.5g} {p.unit:<8} {p.range_text():<18} "
              f"{'instance' if p.instance else 'model':<8} {p.description}")
    if m.references:
        print(f"references: {m.references}")


def _check(m, simulate: bool) -> bool:
    """Declarations, portability and (with ``simulate``) the numeric lockstep; print, return ok."""
    from .devices.probe import lockstep
    from .devices.va_params import lockstep_differences
    from .devices.va_twin import portability_issues
    from .errors import CircuitkitError
    problems = list(lockstep_differences(m))
    va = m.va_file()
    try:
        problems += portability_issues(va.read_text(), str(va))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{va}: cannot read ({exc.__class__.__name__})")
    numeric = "not run"
    if simulate and not problems:
        try:
            result = lockstep(m)
        except CircuitkitError as exc:
            problems.append(f"numeric lockstep could not run: {exc}")
        else:
            numeric = f"{result.points} grid points, worst relative difference {result.worst:.1e}"
            problems += [f"numeric lockstep: {f}" for f in result.failures[:10]]
            if len(result.failures) > 10:
                problems.append(f"... and {len(result.failures) - 10} more grid points")
    print(f"{m.name:<14} {'ok' if not problems else 'DIFFERS'}  ({numeric})")
    for d in problems:
        print(f"    {d}")
    return not problems


def cmd_models(args) -> int:
    from . import devices
    trusted_models_dir(args)
    if args.action in (None, "list"):
        for m in devices.list_models():
            print(f"{m.name:<14} {m.kind:<10} {_source(m):<10} {m.description}")
        return 0
    if args.action == "show":
        if not args.name:
            raise UsageError("models show needs a model name")
        _show(devices.get_model(args.name))
        return 0
    if args.action == "compile":
        from .spice.osdi import compile_all
        for name, osdi in compile_all([args.name] if args.name else None).items():
            print(f"{name:<14} -> {osdi}")
        return 0
    if args.action == "check":
        models = [devices.get_model(args.name)] if args.name else devices.list_models()
        ok = [_check(m, not args.no_simulate) for m in models]
        return 0 if all(ok) else 1
    if args.action == "twin":
        if not args.name:
            raise UsageError("models twin needs a Verilog-A file")
        from .description import safeio
        from .devices.va_twin import MAX_SOURCE_CHARS, generate
        from .errors import Location
        path = Path(args.name)
        # untrusted like every input: a regular file of bounded size (/dev/zero or a FIFO refused unread)
        data = safeio.read_bytes(path, Location(file=str(path)), "Verilog-A file", MAX_SOURCE_CHARS)
        source = safeio.decode(data, str(path), "Verilog-A file")
        gen = generate(source, str(path))
        if args.output:
            from .results import atomic_write_bytes
            atomic_write_bytes(args.output, gen.source.encode())     # never written into a device or FIFO
            print(f"wrote the twin of {gen.name} to {args.output}")
        else:
            sys.stdout.write(gen.source)
        return 0
    raise UsageError(f"unknown models action '{args.action}' (list, show, compile, check, twin)")


def add_models_commands(sub) -> None:
    from .cli import HelpFormatter
    p = sub.add_parser(
        "models", help="list, show, compile, check device models; generate a twin from Verilog-A",
        description="list      every model: shipped, user (--models-dir) or generated from a .va\n"
                    "show      states (range, ON bound, record name), read-out, parameters\n"
                    "compile   Verilog-A to OSDI (cached)\n"
                    "check     declarations, portability rule, and the numeric lockstep of the Verilog-A\n"
                    "          (evaluated by ngspice on a voltage x state grid) against the twin\n"
                    "twin      print (or -o write) the numpy twin generated from a .va file",
        formatter_class=HelpFormatter)
    p.add_argument("action", nargs="?", choices=("list", "show", "compile", "check", "twin"), default="list",
                   help="list: one line per model; show NAME: states, ON bound, read-out, parameters, references; "
                        "compile [NAME]: Verilog-A to OSDI (cached); check [NAME]: declarations, portability, "
                        "numeric lockstep; twin FILE.va: the generated numpy twin")
    p.add_argument("name", nargs="?", help="model name (show needs one; compile and check: every model "
                                           "without) or the .va file (twin)")
    p.add_argument("--models-dir", type=Path, default=None,
                   help="your model directory: its NAME.va models and its NAME.py twins (Python runs) load "
                        "(default: the shipped models only)")
    p.add_argument("--no-simulate", action="store_true", help="check: skip the numeric lockstep (no ngspice)")
    p.add_argument("-o", "--output", type=Path, default=None, help="twin: write the twin to this file")
    p.set_defaults(func=cmd_models)
