"""Sweeps of network parameters: every point is the network file with ``--set`` overrides.

A network sweep file (TOML)::

    name    = "digits_accuracy"
    network = "../examples/digits/network.toml"     # relative to this file
    data    = "../examples/digits/test.npz"         # x (inputs) and y (labels)
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
"""
from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import Location
from ...results import atomic_write_bytes, atomic_write_parquet
from ...sweep.grid import GridError, combine, expand_values
from .engine import run_network
from .report import load_array
from .spec import NetworkError, load_network

KEYS = ("name", "network", "data", "labels", "limit", "mode", "zip", "parameters")


def _fail(path, text, key, msg):
    line = None
    m = re.search(rf"^\s*\"?{re.escape(key)}\"?\s*=", text, re.M) if key else None
    if m:
        line = text[:m.start()].count("\n") + 1
    raise NetworkError(msg, Location(file=str(path), line=line, parameter=key))


def load_sweep(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise NetworkError(f"cannot read the sweep file: {exc}", Location(file=str(path))) from None
    except tomllib.TOMLDecodeError as exc:
        raise NetworkError(f"TOML syntax: {exc}", Location(file=str(path))) from None
    for k in data:
        if k not in KEYS:
            _fail(path, text, k, f"unknown key '{k}' (known: {', '.join(KEYS)})")
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
    return {"path": path, "name": data.get("name", path.stem), "network": path.parent / data["network"],
            "data": path.parent / data["data"],
            "labels": None if data.get("labels") is None else path.parent / data["labels"],
            "limit": limit, "points": points, "parameters": list(values)}


def run_sweep(path: str | Path, out: str | Path | None = None, log=print, limit: int | None = None) -> pd.DataFrame:
    spec = load_sweep(path)
    if limit is not None:
        if limit < 1:
            raise NetworkError("--limit must be a positive integer", Location(parameter="--limit"))
        spec["limit"] = limit
    out = Path(out or Path("results") / "sweeps" / spec["name"])
    x = load_array(spec["data"], "data")
    if spec["labels"] is not None:
        y = load_array(spec["labels"], "labels")
    elif spec["data"].suffix == ".npz":
        with np.load(spec["data"], allow_pickle=False) as f:
            y = f["y"] if "y" in f else None
    else:
        y = None
    if spec["limit"]:
        x = x[:spec["limit"]]
        y = None if y is None else y[:spec["limit"]]
    rows = []
    for pt in spec["points"]:
        ov = {}
        for name, value in pt.params.items():
            for key in name.split("+"):
                ov[key] = str(value) if not isinstance(value, str) else value
        net = load_network(spec["network"], ov)
        res = run_network(net, x, y)
        row = dict(pt.params)
        row.update(accuracy=res.accuracy, float_accuracy=res.float_accuracy, agreement=res.agreement,
                   energy_per_inference_j=res.energy_per_inference, latency_s=res.latency,
                   adc_clipped=int(sum(L.adc_clipped for L in res.layers)),
                   adc_conversions=int(sum(L.adc_conversions for L in res.layers)), run_s=res.wall_s)
        rows.append(row)
        if log:
            log(", ".join(f"{k}={v}" for k, v in pt.params.items()) + f": accuracy {res.accuracy}, "
                f"energy {res.energy_per_inference:.3e} J ({res.wall_s:.1f} s)")
    table = pd.DataFrame(rows)
    atomic_write_parquet(out / "results.parquet", table)
    atomic_write_bytes(out / "results.csv", table.to_csv(index=False).encode())
    plot_sweep(table, spec["parameters"], out / "accuracy_energy.png")
    return table


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
