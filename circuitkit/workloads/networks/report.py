"""Files of a network run: ``summary.json``, ``predictions.parquet``, ``layers.parquet``, ``verify.parquet``,
``network.png``; and the data loader of the ``infer`` command (.npy, .npz, .csv; never pickles)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import Location
from ...results import atomic_write_json, atomic_write_parquet
from .engine import NetworkResult
from .spec import NetworkError

MAX_DATA_BYTES = 2_000_000_000


def _data_limit() -> int:
    """Largest data array (bytes): MAX_DATA_BYTES, and at most a quarter of the memory limit."""
    from ... import limits
    return int(min(MAX_DATA_BYTES, limits.current().memory // 4))


def load_array(path: str | Path, what: str = "data", key: str | None = None, required: bool = True):
    """An array from ``.npy``, ``.npz`` (``key``, else ``x``/``data``/``labels``/``y`` or its only array) or ``.csv``.

    Read through :func:`circuitkit.description.safeio.read_array` (regular files only, sizes and an
    ``.npz`` member's header checked before anything is decompressed). ``required=False``: None when an
    ``.npz`` holds none of the names (labels inside a data file).
    """
    from ...description import safeio
    from ...errors import DescriptionError
    path = Path(path)
    loc = Location(file=str(path), parameter=what)
    pref = (key,) if key else (("x", "data", "images") if what == "data" else ("y", "labels", "target"))
    try:
        arr = safeio.read_array(path, loc, what, max_bytes=_data_limit(), max_array_bytes=_data_limit(),
                                keys=pref, only_ok=required, required=required, keep_dtype=True)
    except DescriptionError as exc:
        raise NetworkError(exc.message, loc) from None
    if arr is None:
        return None
    if what != "data" and path.suffix.lower() in (".csv", ".txt") and 1 in arr.shape:
        arr = arr.reshape(-1)
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiub":
        raise NetworkError(f"{what}: expected numbers, got dtype {arr.dtype}", loc)
    return arr


def write_results(result: NetworkResult, out: Path, extra: dict | None = None) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.as_dict()
    summary.update(extra or {})
    atomic_write_json(out / "summary.json", summary)
    pred = pd.DataFrame({"index": np.arange(result.n), "prediction": result.predictions,
                         "float_prediction": result.float_predictions})
    if result.labels is not None:
        pred["label"] = result.labels
    for j in range(result.outputs.shape[1]):
        pred[f"out_{j}"] = result.outputs[:, j]
    atomic_write_parquet(out / "predictions.parquet", pred)
    layers = pd.DataFrame([{k: v for k, v in L.as_dict().items() if not isinstance(v, (list, dict))}
                           for L in result.layers])
    atomic_write_parquet(out / "layers.parquet", layers)
    if result.verify:
        atomic_write_parquet(out / "verify.parquet", pd.DataFrame([v.as_dict() for v in result.verify]))
    plot_result(result, out / "network.png")
    return summary


def plot_result(result: NetworkResult, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    names = [L.name for L in result.layers]
    x = np.arange(len(names))
    ax[0].bar(x - 0.2, [L.rel_error for L in result.layers], 0.4, label="vs float layer (same input)")
    ax[0].bar(x + 0.2, [L.rel_error_vs_float for L in result.layers], 0.4, label="vs float network")
    ax[0].set_xticks(x, names)
    ax[0].set_ylabel("relative output error")
    ax[0].legend(fontsize=7)
    title = f"{result.network}: " + ("" if result.accuracy is None else
                                     f"accuracy {result.accuracy:.3f} (float {result.float_accuracy:.3f})")
    ax[0].set_title(title, fontsize=9)
    parts: dict[str, float] = {}
    for L in result.layers:
        for k, v in L.energy_breakdown_j.items():
            parts[k] = parts.get(k, 0.0) + v
        parts["dac"] = parts.get("dac", 0.0) + L.energy_dac_j
        parts["adc"] = parts.get("adc", 0.0) + L.energy_adc_j
    ax[1].bar(list(parts), [v * 1e12 for v in parts.values()])
    ax[1].set_ylabel("energy per inference (pJ)")
    ax[1].set_title(f"total {result.energy_per_inference * 1e12:.2f} pJ, latency {result.latency * 1e9:.0f} ns",
                    fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
