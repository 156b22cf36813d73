"""Look at a sweep's table: line plots, heatmaps and pivot tables.

Column names may be given without the engine suffix when only one engine
has that metric (``--y read_error`` means ``read_error_behavioural`` in a
behavioural-only sweep). Only points with status ``ok`` are plotted; values
are averaged over parameters that vary but are on no axis (the title says
which), and ``--where name=value`` keeps the rows where a parameter has a
value.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import Location
from .spec import SweepError
from .store import LAST_COLUMNS, load_results

ENGINE_SUFFIXES = ("_spice", "_behavioural")


def resolve_column(frame: pd.DataFrame, name: str, what: str, root) -> str:
    """``name`` or the single ``name_<engine>`` column of ``frame``."""
    if name in frame.columns:
        return name
    matches = [name + s for s in ENGINE_SUFFIXES if name + s in frame.columns]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise SweepError(f"{what} '{name}' is ambiguous: use one of {', '.join(matches)}", Location(file=str(root)))
    raise SweepError(f"{what} '{name}' is not a column of the results (columns: {', '.join(frame.columns)})",
                     Location(file=str(root)))


def parameters(root, frame: pd.DataFrame) -> list[str]:
    """The swept parameter names (from the manifest, else the columns before the metrics)."""
    from .store import PointStore
    manifest = PointStore(root).manifest()
    names = manifest.get("parameters") if isinstance(manifest, dict) else None
    if isinstance(names, list):         # read back from disk: only names that are columns count
        return [n for n in names if isinstance(n, str) and n in frame.columns]
    return []


def select(root, where: Sequence[str] = (), ok_only: bool = True) -> pd.DataFrame:
    frame = load_results(root)
    if not len(frame):
        raise SweepError(f"'{root}' has no finished points yet", Location(file=str(root)))
    if ok_only and "status" in frame.columns:
        frame = frame[frame["status"] == "ok"]
    for cond in where or ():
        if "=" not in cond:
            raise SweepError(f"--where expects name=value, got '{cond}'", Location(file=str(root)))
        key, value = (s.strip() for s in cond.split("=", 1))
        col = resolve_column(frame, key, "--where", root)
        frame = frame[frame[col].map(lambda v: _matches(v, value))]
    if not len(frame):
        raise SweepError("no successful points match the selection", Location(file=str(root)))
    return frame


def _matches(v, text: str) -> bool:
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        try:
            return bool(np.isclose(float(v), float(text), rtol=1e-9, atol=0.0))
        except ValueError:
            return False
    return str(v) == text


def plot_sweep(root, x: str, y: str, hue: str | None = None, z: str | None = None, out: Path | None = None,
               where: Sequence[str] = (), logx: bool = False, logy: bool = False) -> Path:
    """PNG of ``y`` against ``x`` (one line per ``hue`` value), or a heatmap of ``z`` over ``x`` and ``y``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = Path(root)
    frame = select(root, where)
    params = parameters(root, frame)
    x = resolve_column(frame, x, "--x", root)
    y = resolve_column(frame, y, "--y", root)
    hue = resolve_column(frame, hue, "--hue", root) if hue else None
    z = resolve_column(frame, z, "--z", root) if z else None
    if z and len({x, y, z}) != 3:                       # pandas: "Grouper for 'x' not 1-dimensional"
        raise SweepError(f"plot: a heatmap needs three different columns for --x, --y and --z (got {x}, {y}, {z})",
                         Location(file=str(root)))
    axes_cols = list(dict.fromkeys(c for c in (x, y if z else None, hue) if c))
    value = z or y
    if not pd.api.types.is_numeric_dtype(frame[value]):
        raise SweepError(f"'{value}' is not numeric", Location(file=str(root)))
    averaged = [p for p in params if p not in axes_cols
                and frame.groupby(axes_cols, dropna=False)[p].nunique().max() > 1]   # zipped ones do not count
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    if z:
        table = frame.pivot_table(index=y, columns=x, values=z, aggfunc="mean").sort_index()
        data = table.to_numpy(dtype=float)
        im = ax.imshow(data, origin="lower", aspect="auto", cmap="viridis",
                       norm=matplotlib.colors.LogNorm() if logy and np.nanmin(data) > 0 else None)
        ax.set_xticks(range(len(table.columns)), [_label(v) for v in table.columns], rotation=45)
        ax.set_yticks(range(len(table.index)), [_label(v) for v in table.index])
        for (i, j), v in np.ndenumerate(data):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7, color="w")
        fig.colorbar(im, ax=ax, label=z)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
    else:
        groups = [(None, frame)] if hue is None else list(frame.groupby(hue, sort=True))
        for key, part in groups:
            line = part.groupby(x, sort=True)[y].mean()
            ax.plot(line.index, line.to_numpy(dtype=float), "o-", label=None if hue is None else f"{hue} = {_label(key)}")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        if hue is not None:
            ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    manifest_name = Path(root).name
    title = manifest_name + (f" (mean over {', '.join(averaged)})" if averaged else "")
    if where:
        title += "\n" + ", ".join(where)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    if out is None:
        out = root / (f"{z}_over_{x}_{y}.png" if z else f"{y}_vs_{x}" + (f"_by_{hue}" if hue else "") + ".png")
    out = Path(out)
    if not out.suffix:                  # matplotlib would add '.png' itself, to a name we did not report
        out = out.with_name(out.name + ".png")
    from ..results import writable_file
    out = writable_file(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _label(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:g}"
    return str(v)


def pivot_table(root, index: str | None = None, columns: str | None = None, values: str | None = None,
                agg: str = "mean", where: Sequence[str] = ()) -> pd.DataFrame:
    """A pivot of ``values`` by ``index`` x ``columns``; without them, the table's main columns."""
    root = Path(root)
    if index is None and columns is None and values is None:
        frame = load_results(root)
        if not len(frame):
            raise SweepError(f"'{root}' has no finished points yet", Location(file=str(root)))
        if where:
            frame = select(root, where, ok_only=False)
        drop = [c for c in LAST_COLUMNS if c not in ("status", "error") and c in frame.columns]
        frame = frame.drop(columns=drop)
        if "error" in frame.columns and not frame["error"].astype(bool).any():
            frame = frame.drop(columns=["error"])
        return frame.set_index("point") if "point" in frame.columns else frame
    if not (index and values):
        raise SweepError("table: give --index and --values (and optionally --columns)", Location(file=str(root)))
    frame = select(root, where)
    index = resolve_column(frame, index, "--index", root)
    values = resolve_column(frame, values, "--values", root)
    columns = resolve_column(frame, columns, "--columns", root) if columns else None
    if agg not in ("mean", "min", "max", "median", "count", "std"):
        raise SweepError(f"--agg must be mean, min, max, median, count or std, got '{agg}'", Location(file=str(root)))
    axes = [c for c in (index, columns) if c]
    if len(set(axes + [values])) != len(axes) + 1:      # pandas: "Grouper for 'x' not 1-dimensional"
        raise SweepError(f"table: --index, --columns and --values must name different columns "
                         f"(got {', '.join(axes + [values])})", Location(file=str(root)))
    hidden = {p: int(frame.groupby(axes, dropna=False)[p].nunique().max()) for p in parameters(root, frame)
              if p not in axes}
    hidden = {p: n for p, n in hidden.items() if n > 1}           # zipped parameters do not count
    table = frame.pivot_table(index=index, columns=columns, values=values, aggfunc=agg)
    table.attrs["aggregated_over"] = hidden
    table.attrs["agg"] = agg
    return table


def format_table(frame: pd.DataFrame) -> str:
    """The table as text; a pivot that combined points differing in hidden parameters says so below it."""
    with pd.option_context("display.max_rows", 500, "display.max_columns", 50, "display.width", 200,
                           "display.float_format", "{:.4g}".format):
        text = frame.to_string()
    hidden = frame.attrs.get("aggregated_over")
    if hidden:
        over = ", ".join(f"{p} ({n} values)" for p, n in hidden.items())
        text += (f"\nnote: each cell is the {frame.attrs.get('agg', 'mean')} over {over}; "
                 "pick one with --where NAME=VALUE or show it with --columns")
    return text
