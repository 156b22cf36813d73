"""The ``sweep``, ``plot`` and ``table`` subcommands of ``circuitkit``.

    circuitkit sweep SWEEP.toml [--out DIR]       (same as: circuitkit sweep run SWEEP.toml)
    circuitkit sweep run SWEEP.toml [--out DIR] [--workers N] [--executor process|dask]
                         [--scheduler ADDRESS] [--csv] [--retry-failed] [--limit N] [--no-progress]
    circuitkit sweep check SWEEP.toml             (check the file and every point; run nothing)
    circuitkit plot DIR --x PARAM --y METRIC [--hue PARAM] [--z METRIC] [-o FILE] [--where P=V]
    circuitkit table DIR [--index P --columns P --values M] [--agg mean] [--where P=V]

The default output directory is ``results/sweeps/<sweep name>``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UsageError

ACTIONS = ("run", "check")


def add_sweep_commands(subparsers) -> None:
    """Register ``sweep``, ``plot`` and ``table`` on circuitkit's subparsers."""
    from ..cli import add_parser
    p = add_parser(subparsers, "sweep", help="run a parameter sweep (TOML), resumable",
                              description="Run or check a parameter sweep: 'circuitkit sweep [run|check] SWEEP.toml'.")
    p.add_argument("target", nargs="+", metavar="[run|check] SWEEP.toml", help="the sweep file, optionally after run or check")
    p.add_argument("--out", type=Path, help="output directory (default results/sweeps/<sweep name>)")
    p.add_argument("--workers", type=int, help="parallel points (default: one per core)")
    p.add_argument("--executor", choices=("process", "dask"), default="process",
                   help="process pool on this machine (default) or Dask")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (e.g. tcp://host:8786); without it a local Dask cluster is started")
    p.add_argument("--csv", action="store_true", help="also write results.csv")
    p.add_argument("--retry-failed", action="store_true", help="run failed points again (default: keep their record)")
    p.add_argument("--limit", type=int, help="run at most N of the unfinished points now (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = add_parser(subparsers, "plot", help="plot a sweep's results (PNG)")
    p.add_argument("dir", type=Path, help="sweep output directory")
    p.add_argument("--x", required=True, help="parameter (or metric) on the x axis")
    p.add_argument("--y", required=True, help="metric on the y axis, or a parameter with --z")
    p.add_argument("--hue", help="parameter: one line per value (default: one line)")
    p.add_argument("--z", help="metric: heatmap over --x and --y (default: a line plot)")
    p.add_argument("-o", "--output", type=Path, help="PNG to write (default: in DIR, named after the axes)")
    p.add_argument("--where", action="append", default=[], metavar="NAME=VALUE",
                   help="keep only rows where parameter NAME has VALUE (repeatable; default: all rows)")
    p.add_argument("--logx", action="store_true", help="logarithmic x axis (default: linear)")
    p.add_argument("--logy", action="store_true", help="log y axis, or log colour scale for a heatmap (default: linear)")
    p.set_defaults(func=cmd_plot)

    p = add_parser(subparsers, "table", help="print a sweep's results or a pivot of them")
    p.add_argument("dir", type=Path, help="sweep output directory")
    p.add_argument("--index", help="parameter for the rows (default: print the whole table)")
    p.add_argument("--columns", help="parameter for the columns (default: one column)")
    p.add_argument("--values", help="metric in the cells (needed with --index)")
    p.add_argument("--agg", default="mean", choices=("mean", "min", "max", "median", "count", "std"),
                   help="how points that share a cell are combined; a note names the parameters they differ in")
    p.add_argument("--where", action="append", default=[], metavar="NAME=VALUE",
                   help="keep only rows where parameter NAME has VALUE (repeatable; default: all rows)")
    p.set_defaults(func=cmd_table)


def _target(args) -> tuple[str, Path]:
    t = args.target
    if len(t) == 1 and t[0] not in ACTIONS:
        return "run", Path(t[0])
    if len(t) == 2 and t[0] in ACTIONS:
        return t[0], Path(t[1])
    raise UsageError("usage: circuitkit sweep [run|check] SWEEP.toml [--out DIR] ...")


def _check_writable(out: Path) -> None:
    """What ``sweep run`` would find when it creates ``out``, found without creating anything: the
    nearest existing part of the path must be a directory this process can write into."""
    import os
    import tempfile

    from ..errors import Location
    from ..results import output_dir
    from .spec import SweepError
    probe = output_dir(out)             # a file in the way: refused, naming it
    try:                                # a trial directory, removed at once (permission bits alone can lie: root)
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".circuitkit-check-"))
    except OSError as exc:
        raise SweepError(f"output directory '{out}' is not writable ('{probe}': {exc.strerror or exc})",
                         Location(parameter="out")) from None


def cmd_sweep(args) -> int:
    from .runner import default_out, prepare, run_sweep, tool_versions
    from .spec import SweepError, load_spec
    action, path = _target(args)
    spec = load_spec(path)
    if action == "check":
        try:
            versions = tool_versions(spec.engines)
        except SweepError as exc:
            raise SweepError(exc.message, spec.location("engines")) from None
        points = prepare(spec, versions)
        _check_writable(Path(args.out or default_out(spec)))
        print(f"{path}: {len(points)} points over {', '.join(spec.parameters)}; engines {', '.join(spec.engines)}; "
              f"output {args.out or default_out(spec)}")
        return 0
    report = run_sweep(spec, args.out, workers=args.workers, executor=args.executor, scheduler=args.scheduler,
                       retry_failed=args.retry_failed, csv=args.csv, progress=not args.no_progress,
                       limit=args.limit)
    print(report.summary())
    if report.failed:
        failed = report.table[report.table["status"] != "ok"]
        for _, row in failed.head(5).iterrows():
            print(f"  point {row['point']}: {str(row['error']).splitlines()[0][:200]}", file=sys.stderr)
    return 0          # failed points are recorded in the table, not fatal


def cmd_plot(args) -> int:
    from .plot import plot_sweep
    if args.z is None and args.y is None:
        raise UsageError("plot needs --y")
    out = plot_sweep(args.dir, args.x, args.y, hue=args.hue, z=args.z, out=args.output, where=args.where,
                     logx=args.logx, logy=args.logy)
    print(f"plot: {out}")
    return 0


def cmd_table(args) -> int:
    from .plot import format_table, pivot_table
    frame = pivot_table(args.dir, args.index, args.columns, args.values, args.agg, args.where)
    print(format_table(frame))
    return 0


def main(argv: list[str] | None = None) -> int:      # pragma: no cover - circuitkit.cli is the entry point
    parser = argparse.ArgumentParser(prog="circuitkit")
    add_sweep_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)
