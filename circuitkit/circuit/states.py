"""Initial device states of a crossbar: constant, random, from a file, or mapped from weights.

Weight mapping finds, for every cell, the state whose read conductance
I(vread, x)/vread equals the target conductance, by bisection on the device
twin's own I–V (so both engines start from identical states). The model's
conductance must be monotonic in its first state over [0, 1].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..design import Crossbar, StateInit
from ..devices.base import DeviceModel
from ..errors import DescriptionError, Location


def initial_states(xb: Crossbar, model: type[DeviceModel], source: str | None) -> np.ndarray:
    """Array (n_states, rows, cols); states beyond the first start at their model defaults."""
    R, C = xb.rows, xb.cols
    ns = model.n_states()
    out = np.empty((ns, R, C))
    p = model.resolve(xb.params)
    for k, st in enumerate(model.states):
        out[k] = float(p[st.init])
    if ns == 0:
        return out
    s = xb.state
    at = getattr(s, "location", None)
    loc = Location(file=source, line=getattr(at, "line", None), column=getattr(at, "column", None),
                   parameter="state")
    if s.kind == "constant":
        first = np.full((R, C), float(s.value))
    elif s.kind == "uniform":
        first = np.random.default_rng(s.seed).uniform(s.low, s.high, size=(R, C))
    elif s.kind == "file":
        first = load_matrix(s.path, loc, "state file()")
        if first.shape != (R, C):
            raise DescriptionError(f"state file '{Path(s.path).name}' has shape {first.shape}, expected ({R}, {C})", loc)
    elif s.kind == "values":
        first = np.asarray(s.values, dtype=float)
        if first.shape != (R, C):
            raise DescriptionError(f"state values have shape {first.shape}, expected ({R}, {C})", loc)
    elif s.kind == "weights":
        g = weights_to_conductance(load_matrix(s.path, loc, "state weights()"), s, R, C, loc)
        first = conductance_to_state(model, p, g, s.vread, loc)
    else:  # pragma: no cover - loader checks kinds
        raise DescriptionError(f"unknown state kind '{s.kind}'", loc)
    prm = model.parameter(model.states[0].init)
    bad = ((prm.lower is not None) & (first < (prm.lower if prm.lower is not None else -np.inf))) | \
          ((prm.upper is not None) & (first > (prm.upper if prm.upper is not None else np.inf)))
    if np.any(bad):
        r, c = (int(k) for k in np.argwhere(bad)[0])
        count = int(bad.sum())
        raise DescriptionError(f"initial states outside the range {prm.range_text()} of '{prm.name}': "
                               f"{count} cell{'s' if count > 1 else ''}, the first at row {r}, column {c} = "
                               f"{first[r, c]:.6g}", loc)
    out[0] = first
    return out


def load_matrix(path, loc, what: str = "data file") -> np.ndarray:
    """A finite, non-empty 2-D array from ``.npy`` or a comma-separated text file (``.csv``, ``.txt``), read
    once through :func:`circuitkit.description.safeio.read_matrix`: a regular file within the data size limit
    (devices, FIFOs and symlinks to them refused unread), no pickles, errors by line and field, never quoting
    the file."""
    from ..description import safeio
    return safeio.read_matrix(Path(path), loc, what)


def weights_to_conductance(w: np.ndarray, s: StateInit, rows: int, cols: int, loc) -> np.ndarray:
    """Target conductances (rows x cols) for weight matrix ``w`` (rows x k).

    ``differential``: column pairs (G+, G-) with G± = gmin + (gmax - gmin)·max(±w, 0)/max|w|, so k = cols/2.
    ``single``: G = gmid + (gmax - gmin)/2 · w/max|w| and a last offset column at gmid, so k = cols - 1.
    """
    w = np.atleast_2d(w)
    scale = np.max(np.abs(w)) or 1.0
    gmin, gmax = s.gmin, s.gmax
    if s.mapping == "differential":
        if w.shape != (rows, cols // 2) or cols % 2:
            raise DescriptionError(f"differential mapping of a {w.shape} weight matrix needs a crossbar of "
                                   f"{w.shape[0]} x {2 * w.shape[1]}, not {rows} x {cols}", loc)
        g = np.empty((rows, cols))
        g[:, 0::2] = gmin + (gmax - gmin) * np.maximum(w, 0) / scale
        g[:, 1::2] = gmin + (gmax - gmin) * np.maximum(-w, 0) / scale
        return g
    if w.shape != (rows, cols - 1):
        raise DescriptionError(f"single mapping of a {w.shape} weight matrix needs a crossbar of "
                               f"{w.shape[0]} x {w.shape[1] + 1} (one offset column), not {rows} x {cols}", loc)
    gmid = 0.5 * (gmin + gmax)
    g = np.empty((rows, cols))
    g[:, :-1] = gmid + 0.5 * (gmax - gmin) * w / scale
    g[:, -1] = gmid
    return g


def conductance_to_state(model: type[DeviceModel], p, g_target: np.ndarray, vread: float,
                         location: Location | None = None) -> np.ndarray:
    """State x (first state) with I(vread, x)/vread = g_target, by vectorised bisection on [0, 1]."""
    shape = g_target.shape
    gt = g_target.ravel()
    n = gt.size

    def g_of(x):
        return model.read_conductance(vread, x, p)

    lo, hi = np.zeros(n), np.ones(n)
    g_lo, g_hi = g_of(lo), g_of(hi)
    increasing = g_hi > g_lo
    gmin_dev, gmax_dev = np.minimum(g_lo, g_hi), np.maximum(g_lo, g_hi)
    if np.any(gt < gmin_dev * (1 - 1e-9)) or np.any(gt > gmax_dev * (1 + 1e-9)):
        raise DescriptionError(
            f"target conductances [{gt.min():.3g}, {gt.max():.3g}] S are outside what model '{model.name}' "
            f"reaches at {vread:g} V: [{gmin_dev.min():.3g}, {gmax_dev.max():.3g}] S",
            location or Location(parameter="state"))
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        above = g_of(mid) > gt
        go_low = above == increasing
        hi = np.where(go_low, mid, hi)
        lo = np.where(go_low, lo, mid)
    return (0.5 * (lo + hi)).reshape(shape)
