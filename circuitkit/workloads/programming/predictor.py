"""A learned pulse predictor: (present conductance, target conductance) -> pulse width and polarity.

After Yu et al., "The Ouroboros of memristors: neural networks facilitating memristor
programming" (arXiv:2403.06712, 2024): instead of write-and-verify, a small neural network
predicts the pulse that moves a device from its present conductance to the target.

* **Training set** (:func:`training_set`) -- simulated single-pulse responses: a training
  crossbar (its own device-to-device variability, its own cycle-to-cycle noise seed) gets, per
  round, one pulse per cell of random polarity and log-uniform random width in [wmin, wmax];
  each cell's conductance before and after (ideal read) is one sample. Rounds chain, so the
  samples start from everywhere in the range. The responses are simulated by the same
  :class:`~circuitkit.workloads.programming.array.ProgrammingArray` that programs (one transient
  of the whole array per round, half-select disturb and wire drops included).
* **Model** (:class:`PulsePredictor`) -- polarity is the sign of ln(G*/G) (SET raises G); a
  small MLP (scikit-learn ``MLPRegressor``, tanh) maps the standardised (ln G, ln G*) to ln(width).
  Stored as plain arrays in ``.npz`` (no pickle: loading a model file runs no code); the forward
  pass is numpy.
* **Policy** (:class:`PredictorPolicy`) -- round 0 is the one-shot attempt; later rounds (if
  ``max_rounds`` allows) fine-tune the cells still outside ``tol`` with the same predictor from
  the newly verified conductance.
"""
from __future__ import annotations

import io
import json
import zlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...description.safeio import read_bytes
from ...errors import printable
from ...devices.base import ParamSet
from .array import ProgrammingArray, ProgrammingError, Pulses
from .policies import _check_polarity, quantise_width

FORMAT = "circuitkit-pulse-predictor-1"


def training_set(array: ProgrammingArray, *, vset: float, vreset: float, wmin: float, wmax: float,
                 rounds: int, seed: int = 0, ratio: float = 2 ** (1 / 8)) -> pd.DataFrame:
    """Simulated single-pulse responses of every cell of ``array`` over ``rounds`` rounds.

    Polarity: a fair coin per cell, except that a cell within 5 % of the bottom (top) of the
    conductance range of the model gets a SET (RESET), so the chain keeps covering the range.
    """
    _check_polarity(vset, vreset)
    if not (0 < wmin < wmax):
        raise ProgrammingError(f"need 0 < wmin < wmax, got wmin={wmin:g}, wmax={wmax:g}")
    rng = np.random.default_rng(seed)
    lo, hi = _range(array)
    frames = []
    for r in range(rounds):
        g0 = array.ideal_conductance()
        pos = (np.log(g0) - np.log(lo)) / (np.log(hi) - np.log(lo))
        up = np.where(pos < 0.05, True, np.where(pos > 0.95, False, rng.uniform(size=g0.shape) < 0.5))
        width = quantise_width(np.exp(rng.uniform(np.log(wmin), np.log(wmax), size=g0.shape)), ratio)
        amp = np.where(up, vset, vreset)
        array.write(Pulses(amp, width))
        g1 = array.ideal_conductance()
        frames.append(pd.DataFrame({"round": r, "g_before": g0.ravel(), "g_after": g1.ravel(),
                                    "amplitude": amp.ravel(), "width": width.ravel()}))
    return pd.concat(frames, ignore_index=True)


def _range(array: ProgrammingArray) -> tuple[float, float]:
    """Conductance of the nominal model at the first state's bounds (ascending)."""
    lo_hi = []
    for v in (0.0, 1.0):
        x = np.zeros((len(array.model.states), 1))
        x[0] = v
        for k, st in enumerate(array.model.states[1:], 1):
            x[k] = float(np.median(np.asarray(array.params[st.init])))
        p = {name: float(np.median(np.asarray(array.params[name]))) for name in array.params}
        lo_hi.append(float(array.model.current(np.array([array.vread]), x, ParamSet(p))[0] / array.vread))
    return min(lo_hi), max(lo_hi)


#: the largest pulse-predictor file read (the shipped one is a few kB)
MAX_MODEL_BYTES = 16 << 20


@dataclass
class PulsePredictor:
    """Standardised (ln G, ln G*) -> ln(width) MLP, and the pulse settings it was trained for."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    mean: np.ndarray              # (2,) of the inputs
    scale: np.ndarray
    out_mean: float
    out_scale: float
    meta: dict = field(default_factory=dict)   # vset, vreset, wmin, wmax, ratio, vread, model, ...

    @classmethod
    def fit(cls, data: pd.DataFrame, *, hidden=(16, 16), min_change: float = 0.02, saturated: float = 0.03,
            seed: int = 0, max_iter: int = 2000, meta: dict | None = None) -> "PulsePredictor":
        """Train on a :func:`training_set` frame. Dropped, as they carry no information on the width:
        samples whose conductance changed by less than ``min_change`` (relative), and samples that
        ended within ``saturated`` (fraction of the log conductance range seen in the data) of either
        end of the range -- there any longer pulse gives the same conductance, and keeping them
        teaches the network too long pulses for targets near the ends (measured: SET overshoots)."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor
        from threadpoolctl import threadpool_limits

        g0, g1 = data["g_before"].to_numpy(), data["g_after"].to_numpy()
        keep = np.abs(np.log(g1 / g0)) > np.log1p(min_change)
        lo, hi = np.log(min(g0.min(), g1.min())), np.log(max(g0.max(), g1.max()))
        pos = (np.log(g1) - lo) / max(hi - lo, 1e-12)
        keep &= (pos > saturated) & (pos < 1 - saturated)
        if keep.sum() < 20:
            raise ProgrammingError(f"training set has {int(keep.sum())} informative samples; need >= 20 "
                                   "(more rounds or cells, or longer widths)")
        x = np.column_stack([np.log(g0[keep]), np.log(g1[keep])])
        y = np.log(data["width"].to_numpy()[keep])
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-12
        out_mean, out_scale = float(y.mean()), float(y.std() + 1e-12)
        mlp = MLPRegressor(hidden_layer_sizes=tuple(hidden), activation="tanh", solver="lbfgs", max_iter=max_iter,
                           alpha=1e-4, random_state=seed, tol=1e-7)
        # one BLAS thread: the network is tiny, and threads fighting over a shared machine cost minutes
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)    # a fixed iteration budget is the stopping rule
            mlp.fit((x - mean) / scale, (y - out_mean) / out_scale)
        pred = mlp.predict((x - mean) / scale) * out_scale + out_mean
        info = dict(meta or {})
        info.update(samples=int(keep.sum()), dropped=int((~keep).sum()), hidden=list(hidden),
                    train_rmse_ln_width=float(np.sqrt(np.mean((pred - y) ** 2))))
        return cls([w.copy() for w in mlp.coefs_], [b.copy() for b in mlp.intercepts_], mean, scale,
                   out_mean, out_scale, info)

    def log_width(self, g, target) -> np.ndarray:
        """ln(width) the MLP predicts for moving conductance ``g`` to ``target`` (same shapes)."""
        g, target = np.asarray(g, dtype=float), np.asarray(target, dtype=float)
        h = (np.column_stack([np.log(g).ravel(), np.log(target).ravel()]) - self.mean) / self.scale
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if k < len(self.weights) - 1:
                h = np.tanh(h)
        return (h[:, 0] * self.out_scale + self.out_mean).reshape(g.shape)

    def pulses(self, g, target, mask=None) -> Pulses:
        """The predicted pulses (polarity from the sign of ln(G*/G), width clipped to the trained range
        and put on the width grid); no pulse where ``mask`` is False."""
        m = self.meta
        up = np.asarray(target) > np.asarray(g)
        width = np.clip(np.exp(self.log_width(g, target)), m["wmin"], m["wmax"])
        width = quantise_width(width, m.get("ratio", 2 ** (1 / 8)))
        amp = np.where(up, m["vset"], m["vreset"])
        if mask is not None:
            amp = np.where(mask, amp, 0.0)
            width = np.where(mask, width, 0.0)
        return Pulses(amp, width)

    # -- storage: plain arrays, no pickle -----------------------------------------------
    def save(self, path: str | Path) -> Path:
        from ...results import atomic_write_bytes
        path = Path(path)
        arrays = {f"w{k}": w for k, w in enumerate(self.weights)}
        arrays.update({f"b{k}": b for k, b in enumerate(self.biases)})
        arrays.update(mean=self.mean, scale=self.scale, out=np.array([self.out_mean, self.out_scale]),
                      meta=np.array(json.dumps({"format": FORMAT, **self.meta})))
        # written through a unique temporary file (atomic_write_bytes), not a fixed '<name>.tmp.npz' that a
        # symbolic link could redirect and that a failed rename left behind
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PulsePredictor":
        path = Path(path)
        # untrusted like any input file: a regular file of bounded size whose members, as the zip
        # directory states them, decompress to a bounded size (a zip bomb is refused unread)
        data = read_bytes(path, None, "pulse-predictor file", MAX_MODEL_BYTES)
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                unpacked = sum(info.file_size for info in zf.infolist())
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ProgrammingError(f"{path}: not a circuitkit pulse-predictor file ({exc})") from None
        if unpacked > 4 * MAX_MODEL_BYTES:
            raise ProgrammingError(f"{path}: its arrays decompress to {unpacked:,} bytes, more than the limit "
                                   f"of {4 * MAX_MODEL_BYTES:,}")
        def real(a):                    # real numbers only: a complex array would lose its imaginary part
            a = np.asarray(a)
            if a.dtype.kind not in "fiu":
                raise ValueError(f"an array of dtype {a.dtype}, not real numbers")
            return a.astype(float)

        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                n = sum(1 for k in z.files if k.startswith("w"))
                weights = [real(z[f"w{k}"]) for k in range(n)]
                biases = [real(z[f"b{k}"]) for k in range(n)]
                mean, scale, out = (real(z[k]) for k in ("mean", "scale", "out"))
        except (OSError, KeyError, ValueError, EOFError, TypeError, json.JSONDecodeError, zipfile.BadZipFile,
                zlib.error, RecursionError, NotImplementedError) as exc:
            # a damaged member (bad CRC, corrupt deflate), nesting too deep for the JSON reader, ...
            what = printable(str(exc), 200) if not isinstance(exc, RecursionError) else "nesting too deep"
            raise ProgrammingError(f"{path}: not a circuitkit pulse-predictor file ({what})") from None
        if not isinstance(meta, dict):
            raise ProgrammingError(f"{path}: not a circuitkit pulse-predictor file (its metadata is not a table)")
        if meta.get("format") != FORMAT:
            raise ProgrammingError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
        shapes_ok = (n >= 1 and all(w.ndim == 2 for w in weights) and all(b.ndim == 1 for b in biases)
                     and weights[0].shape[0] == 2 and weights[-1].shape[1] == 1 and mean.shape == (2,)
                     and scale.shape == (2,) and out.shape == (2,)
                     and all(w.shape[1] == b.shape[0] for w, b in zip(weights, biases))
                     and all(a.shape[1] == b.shape[0] for a, b in zip(weights, weights[1:])))
        if not shapes_ok or not all(np.all(np.isfinite(a)) for a in (*weights, *biases, mean, scale, out)):
            raise ProgrammingError(f"{path}: inconsistent or non-finite network arrays")
        for key in ("vset", "vreset", "wmin", "wmax"):
            v = meta.get(key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not -1e300 < v < 1e300:
                raise ProgrammingError(f"{path}: metadata lacks a (finite) number '{key}'")
            meta[key] = float(v)
        # the pulses it predicts must be pulses: SET and RESET non-zero and of opposite signs (the policies'
        # own rule), widths a positive range, the width grid a ratio above 1
        vs, vr = meta["vset"], meta["vreset"]
        try:
            _check_polarity(vs, vr)
        except ProgrammingError as exc:
            raise ProgrammingError(f"{path}: metadata {exc}") from None
        if max(abs(vs), abs(vr)) > 100:
            raise ProgrammingError(f"{path}: metadata vset = {vs:g} V, vreset = {vr:g} V: at most 100 V")
        if not 0 < meta["wmin"] < meta["wmax"] <= 1.0:
            raise ProgrammingError(f"{path}: metadata widths wmin = {meta['wmin']:g} s, wmax = {meta['wmax']:g} s "
                                   "must satisfy 0 < wmin < wmax <= 1 s")
        ratio = meta.get("ratio", 2 ** (1 / 8))
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 1 < ratio <= 16:
            raise ProgrammingError(f"{path}: metadata ratio = {ratio!r}: the width grid's ratio must be in (1, 16]")
        if np.any(scale <= 0) or out[1] <= 0:
            raise ProgrammingError(f"{path}: the input and output scales must be positive")
        return cls(weights, biases, mean, scale, float(out[0]), float(out[1]), meta)


@dataclass
class PredictorPolicy:
    """One-shot prediction, then fine-tuning rounds with the same predictor on the cells outside ``tol``."""

    predictor: PulsePredictor
    tol: float = 0.1
    name: str = "predictor"

    def start(self, g, target):
        pass

    def decide(self, round_index, g, target) -> Pulses:
        outside = np.abs(np.asarray(g) / np.asarray(target) - 1) > self.tol
        return self.predictor.pulses(g, target, mask=outside)
