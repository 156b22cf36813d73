"""Sweeps of network parameters: every point is the network file with ``--set`` overrides.

A network sweep file (TOML)::

    name    = "digits_accuracy"
    network = "network.toml"                        # inside this file's directory
    data    = "test.npz"                            # x (inputs) and y (labels), likewise
    limit   = 360                                   # first N inputs (optional)
    mode    = "product"                             # or "zip"

    [parameters]
    "periphery.wires.r_row" = [1, 5, 10]             # dotted key paths of the network file
    "periphery.adc.bits"    = [3, 4, 6, 8]

Values take the sweep machinery's forms (lists, ``{ range = ...}``,
``{ logrange = ...}``; :mod:`circuitkit.sweep.grid`). ``zip`` lists
parameters varied together (a parameter may also name several keys joined by
``+``, e.g. ``"periphery.wires.r_row+periphery.wires.r_col"``, to set them to
the same value). The result is ``OUT/results.parquet`` and ``results.csv``
(one row per point: the parameters, accuracy, float accuracy, agreement,
energy, latency, ADC clipping) and ``OUT/accuracy_energy.png``.

Resume: each row carries ``point_key``, a digest of everything the point's
answer depends on (the loaded network -- every setting, weight and bias,
after the point's overrides --, the inputs and labels used, circuitkit's
version). Running the same command again keeps the rows whose key matches a
point and runs only the others; a changed weight file, data file or value
re-runs the points it touches. An unreadable earlier table is set aside
(``results.parquet.unreadable``), never silently overwritten.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from ...description import safeio
from ...errors import DescriptionError, Location, printable
from ...results import atomic_write_bytes, atomic_write_parquet
from ...sweep.grid import GridError, combine, expand_values
from ...sweep.spec import NAME
from .engine import check_data, run_network
from .report import load_array
from .spec import NetworkError, load_network, read_toml_text

KEYS = ("name", "network", "data", "labels", "limit", "mode", "zip", "parameters")


def _fail(path, text, key, msg):
    line = None
    m = re.search(rf"^\s*\"?{re.escape(key)}\"?\s*=", text, re.M) if key else None
    if m:
        line = text[:m.start()].count("\n") + 1
    raise NetworkError(msg, Location(file=str(path), line=line, parameter=key))


def load_sweep(path: str | Path) -> dict:
    path = Path(path)
    text = read_toml_text(path, "sweep file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NetworkError(f"TOML syntax: {exc}", Location(file=str(path))) from None
    for k in data:
        if k not in KEYS:
            _fail(path, text, k, f"unknown key '{printable(k, 100)}' (known: {', '.join(KEYS)})")
    from ...tomlkeys import MAX_INT, oversized_int
    huge = oversized_int(data)
    if huge is not None:
        _fail(path, text, huge.split(".")[0], f"'{printable(huge, 200)}': an integer beyond +-{MAX_INT} (64 bits)")
    zipped = data.get("zip", [])
    if not isinstance(zipped, list) or not all(isinstance(g, list) and all(isinstance(n, str) for n in g)
                                               for g in zipped):
        _fail(path, text, "zip", "'zip' must be a list of lists of parameter names, e.g. [[\"a\", \"b\"]]")
    for k in ("network", "data"):
        if not isinstance(data.get(k), str):
            _fail(path, text, k, f"'{k}' must name a file")
    params = data.get("parameters")
    if not isinstance(params, dict) or not params:
        _fail(path, text, "parameters", "a [parameters] table with at least one parameter is needed")
    values = {}
    for name, spec in params.items():
        try:
            values[name] = expand_values(name, spec)
        except GridError as exc:
            _fail(path, text, name, str(exc))
    try:
        points = combine(values, data.get("zip", []), data.get("mode", "product"))
    except GridError as exc:
        _fail(path, text, exc.key or "mode", str(exc))
    limit = data.get("limit")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        _fail(path, text, "limit", "'limit' must be a positive integer")
    if len(points) > 10_000:
        _fail(path, text, "parameters", f"{len(points)} points: more than 10000")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not NAME.match(name):
        _fail(path, text, "name", "'name' must be a plain name (a letter or digit, then up to 99 letters, digits, "
                                  "'_', '.' or '-'): it names the output directory results/sweeps/NAME")
    if data.get("labels") is not None and not isinstance(data["labels"], str):
        _fail(path, text, "labels", "'labels' must name a file")
    files = {}
    for k in ("network", "data", "labels"):
        if data.get(k) is not None:
            try:
                files[k] = safeio.contained(path.parent, data[k], None, f"'{k}'")
            except DescriptionError as exc:
                _fail(path, text, k, exc.message)
    if files["network"].suffix.lower() != ".toml":
        _fail(path, text, "network", f"'network' = '{printable(data['network'], 200)}': must name a .toml network file")
    return {"path": path, "name": name, "network": files["network"], "data": files["data"],
            "labels": files.get("labels"), "limit": limit, "points": points, "parameters": list(values), "text": text}


def _point_overrides(pt) -> dict[str, str]:
    ov = {}
    for name, value in pt.params.items():
        for key in name.split("+"):
            ov[key] = str(value) if not isinstance(value, str) else value
    return ov


def _load_point(spec: dict, pt, k: int):
    """The network of sweep point ``k``; a bad value names the sweep file and the parameter that carried it."""
    try:
        return load_network(spec["network"], _point_overrides(pt))
    except NetworkError as exc:
        bad = exc.location.parameter
        if bad is None:                 # the network file itself cannot be read
            _fail(spec["path"], spec["text"], "network", f"network file '{spec['network']}': {exc.message}")
        for name, value in pt.params.items():
            if bad in name.split("+"):
                _fail(spec["path"], spec["text"], name, f"point {k + 1} of {len(spec['points'])}: {exc.message} "
                      f"(network key '{bad}' of {spec['network']})")
        where = ", ".join(f"{n}={v}" for n, v in pt.params.items())
        raise NetworkError(f"{exc.message} (sweep {spec['path']}, point {k + 1}: {where})", exc.location) from None


def run_sweep(path: str | Path, out: str | Path | None = None, log=print, limit: int | None = None) -> pd.DataFrame:
    """Run every point; all points are checked before the first runs, and ``results.parquet`` /
    ``results.csv`` are rewritten (atomically) after each point, so a failure keeps the finished points."""
    spec = load_sweep(path)
    if limit is not None:
        if limit < 1:
            raise NetworkError("--limit must be a positive integer", Location(parameter="--limit"))
        spec["limit"] = limit
    out = Path(out or Path("results") / "sweeps" / spec["name"])
    def data(key, what, **kw):
        try:
            return load_array(spec[key], what, **kw)
        except NetworkError as exc:
            _fail(spec["path"], spec["text"], key, f"{key} file '{spec[key]}': {exc.message}")

    x = data("data", "data")
    if spec["labels"] is not None:
        y = data("labels", "labels")
    elif spec["data"].suffix == ".npz":
        y = data("data", "labels", required=False)
    else:
        y = None
    first = _load_point(spec, spec["points"][0], 0)     # every point's network is valid before any runs
    for k, pt in enumerate(spec["points"][1:], 1):
        _load_point(spec, pt, k)
    try:                                  # the whole files pair up, before 'limit' cuts both
        x, y = check_data(first, x, y)
    except NetworkError as exc:
        key = "labels" if exc.location.parameter == "labels" and spec["labels"] is not None else "data"
        _fail(spec["path"], spec["text"], key, f"{key} file '{spec[key]}': {exc.message}")
    if spec["limit"]:
        x = x[:spec["limit"]]
        y = None if y is None else y[:spec["limit"]]
    data_key = _array_digest(x) + _array_digest(y)
    done = _finished_rows(out / "results.parquet", log)
    keys = [point_key(_load_point(spec, pt, k), data_key) for k, pt in enumerate(spec["points"])]
    rows: dict[int, dict] = {}
    for k, (pt, key) in enumerate(zip(spec["points"], keys)):
        if key in done:
            # the same network and data under this sweep's parameter names (an earlier sweep may have
            # reached it by other names: its row lacks these columns). Taken before any point runs, so a
            # table rewritten after a new point keeps every finished point (an interrupted run loses none)
            rows[k] = {**pt.params, **{c: v for c, v in done[key].items() if c not in pt.params}}

    def write():
        table = pd.DataFrame([rows[k] for k in sorted(rows)])     # this sweep's finished points, in its order
        atomic_write_parquet(out / "results.parquet", table)
        atomic_write_bytes(out / "results.csv", table.to_csv(index=False).encode())
        return table

    for k, pt in enumerate(spec["points"]):
        key = keys[k]
        if key in done:
            if k not in rows:           # the same network as a point run earlier in this run
                rows[k] = {**pt.params, **{c: v for c, v in done[key].items() if c not in pt.params}}
                write()
            if log:
                log(", ".join(f"{n}={v}" for n, v in pt.params.items()) + ": finished before (resumed)")
            continue
        net = _load_point(spec, pt, k)
        res = run_network(net, x, y)
        row = dict(pt.params)
        row.update(accuracy=res.accuracy, float_accuracy=res.float_accuracy, agreement=res.agreement,
                   energy_per_inference_j=res.energy_per_inference, latency_s=res.latency,
                   adc_clipped=int(sum(L.adc_clipped for L in res.layers)),
                   adc_conversions=int(sum(L.adc_conversions for L in res.layers)), run_s=res.wall_s,
                   point_key=key)
        rows[k] = row
        done[key] = row                 # a later point of the same network and data reuses it
        write()                         # after every point: an interrupted sweep keeps what it finished
        if log:
            log(", ".join(f"{k}={v}" for k, v in pt.params.items()) + f": accuracy {res.accuracy}, "
                f"energy {res.energy_per_inference:.3e} J ({res.wall_s:.1f} s)")
    table = write()                     # every point of this sweep, resumed ones included, in its order
    plot_sweep(table, spec["parameters"], out / "accuracy_energy.png")
    return table


def _array_digest(a) -> str:
    if a is None:
        return "none;"
    a = np.ascontiguousarray(a)
    return f"{a.dtype.str}{a.shape}:" + hashlib.sha256(a.tobytes()).hexdigest() + ";"


def point_key(net, data_key: str = "") -> str:
    """Digest of everything a point's result depends on: the network as loaded (overrides applied;
    weights and biases by content, every other setting by value), the data and circuitkit's version."""
    from ... import __version__
    h = hashlib.sha256(f"circuitkit {__version__};{data_key}".encode())
    for f in dataclasses.fields(net):
        if f.name in ("path", "text", "overrides", "layers"):
            continue                    # the text and overrides are what the loaded values come from
        h.update(f"{f.name}={getattr(net, f.name)!r};".encode())
    for layer in net.layers:
        h.update(f"layer {layer.name} {layer.activation} {layer.input_max!r};".encode())
        h.update((_array_digest(layer.weights) + _array_digest(layer.bias)).encode())
    return h.hexdigest()[:32]


def _finished_rows(path: Path, log) -> dict[str, dict]:
    """Rows of an earlier run of this sweep by ``point_key`` (empty if none); an unreadable table is
    renamed aside with a message, so it is neither trusted nor lost."""
    if not path.is_file():
        return {}
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 -- any damage: keep the file, start over
        aside = path.with_name(path.name + ".unreadable")
        path.replace(aside)
        if log:
            log(f"earlier results unreadable ({type(exc).__name__}); kept as {aside.name}, running every point")
        return {}
    if "point_key" not in table.columns:
        return {}
    return {r["point_key"]: r for r in table.to_dict("records") if isinstance(r.get("point_key"), str)}


def plot_sweep(table: pd.DataFrame, params: list[str], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    xname = params[0]
    hue = params[1] if len(params) > 1 else None
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    groups = table.groupby(hue, sort=True) if hue else [(None, table)]
    for key, g in groups:
        g = g.sort_values(xname)
        lab = None if hue is None else f"{hue.split('.')[-1]} = {key}"
        ax[0].plot(g[xname], 100 * g["accuracy"], "o-", label=lab)
        ax[1].plot(g[xname], g["energy_per_inference_j"] * 1e12, "o-", label=lab)
    if "float_accuracy" in table and table["float_accuracy"].notna().any():
        ax[0].axhline(100 * table["float_accuracy"].iloc[0], color="k", ls="--", lw=0.8, label="float network")
    for a, yl in zip(ax, ("accuracy (%)", "energy per inference (pJ)")):
        a.set_xlabel(xname.split("+")[0])
        a.set_ylabel(yl)
        vals = pd.to_numeric(table[xname], errors="coerce")
        if vals.notna().all() and vals.min() > 0 and vals.max() / vals.min() >= 20:
            a.set_xscale("log")
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
