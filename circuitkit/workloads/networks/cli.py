"""``circuitkit infer NETWORK --data FILE [--labels FILE] [--verify-tiles K] --out DIR`` and
``circuitkit infer-sweep SWEEP.toml [--out DIR]``."""
from __future__ import annotations

import sys
from pathlib import Path


def add_network_commands(sub) -> None:
    from ...cli import add_parser           # the shared subcommand parser (help lists defaults)

    p = add_parser(sub, "infer", help="run a network (network.toml) on simulated crossbar tiles")
    p.add_argument("network", type=Path, help="network description (.toml)")
    p.add_argument("--data", required=True, help="inputs: .npy, .npz (x / data) or .csv, one row per input")
    p.add_argument("--labels", help="labels: .npy, .npz (y / labels) or .csv; default: 'y' of an .npz --data")
    p.add_argument("--limit", type=int, help="use only the first N inputs")
    p.add_argument("--verify-tiles", type=int, default=0, metavar="K",
                   help="also read K random tiles per layer in ngspice (a few inputs) and report agreement")
    p.add_argument("--verify-vectors", type=int, default=2, metavar="N", help="inputs per verified tile")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a network key (dotted path, e.g. periphery.adc.bits=4); repeatable")
    p.add_argument("--out", type=Path, required=True,
                   help="directory for summary.json, predictions.parquet, layers.parquet, network.png")
    p.set_defaults(func=cmd_infer)

    p = add_parser(sub, "infer-sweep", help="sweep network parameters (accuracy, energy) from a sweep TOML")
    p.add_argument("sweep", type=Path, help="network sweep file (.toml): network, data, [parameters]")
    p.add_argument("--out", type=Path, help="output directory (default results/sweeps/NAME)")
    p.add_argument("--limit", type=int, help="use only the first N inputs (overrides the sweep's 'limit')")
    p.set_defaults(func=cmd_infer_sweep)


def cmd_infer(args) -> int:
    from .engine import run_network
    from .report import load_array, write_results
    from .spec import NetworkError, load_network, parse_overrides
    from ...errors import Location

    net = load_network(args.network, parse_overrides(args.overrides))
    x = load_array(args.data, "data")
    y = None
    if args.labels:
        y = load_array(args.labels, "labels")
    elif str(args.data).endswith(".npz"):
        y = load_array(args.data, "labels", required=False)
    from .engine import check_data          # the whole files pair up, before --limit cuts both
    x, y = check_data(net, x, y, files=(str(args.data), str(args.labels or args.data)))
    if args.limit is not None:
        if args.limit < 1:
            raise NetworkError("--limit must be positive", Location(parameter="--limit"))
        x = x[:args.limit]
        y = None if y is None else y[:args.limit]
    if args.verify_tiles < 0 or args.verify_vectors < 1:
        raise NetworkError("--verify-tiles must be >= 0 and --verify-vectors >= 1", Location(parameter="--verify-tiles"))
    result = run_network(net, x, y, verify_tiles=args.verify_tiles, verify_vectors=args.verify_vectors,
                         log=lambda m: print(m, file=sys.stderr))
    write_results(result, args.out, {"network_file": str(args.network), "overrides": net.overrides})
    print(result.summary())
    return 0 if result.verify_ok in (None, True) else 1


def cmd_infer_sweep(args) -> int:
    from .sweep import run_sweep
    table = run_sweep(args.sweep, args.out, limit=args.limit)
    print(table.to_string(index=False))
    return 0
