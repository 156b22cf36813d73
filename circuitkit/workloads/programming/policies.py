"""Programming policies: per round and per cell, the pulse to apply from what the verify read saw.

A policy is an object with

* ``start(g, target)`` -- called once with the first verify read and the targets (R, C), S;
* ``decide(round, g, target) -> Pulses`` -- the pulses of round ``round`` (0-based) given the
  conductances ``g`` the verify step saw; no pulse anywhere ends the run.

Polarity: ``vset`` is the (signed) row voltage that raises a cell's conductance, ``vreset`` the one
that lowers it (for the VCM model +1.0 V and -1.2 V; for VTEAM with x = 0 ON a negative ``vset``).
A cell is done while ``|g/target - 1| <= tol``; done cells get no pulse (a disturbed cell that
drifts out is pulsed again).

Shipped policies:

* :class:`FixedPulse` -- write-and-verify with one fixed pulse per polarity;
* :class:`ISPP` -- incremental step pulse programming: the amplitude of a cell's pulses grows by
  ``vstep`` per consecutive pulse in the same direction (from ``vset``/``vreset``, up to
  ``vmax``), and restarts when the direction flips;
* :class:`WidthHalving` -- fixed amplitude, each cell's width halved when its error changes sign
  (overshoot), down to ``width / 2**max_halvings``;
* :class:`GlobalHalving` -- the original ``write_verify``: one width for all cells, halved whenever
  any cell overshoots;
* :class:`~circuitkit.workloads.programming.predictor.PredictorPolicy` -- a learned pulse width.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .array import ProgrammingError, Pulses


def error_sign(g: np.ndarray, target: np.ndarray, tol: float) -> np.ndarray:
    """-1 where the cell is below ``target (1 - tol)`` (needs SET), +1 above ``target (1 + tol)``, else 0."""
    err = g / target - 1
    return np.where(err < -tol, -1.0, np.where(err > tol, 1.0, 0.0))


def quantise_width(width, ratio: float = 2 ** (1 / 8), base: float = 1e-9) -> np.ndarray:
    """Nearest point of the log grid ``base * ratio**k`` (k integer); 0 stays 0.

    Cells of a row with the same pulse share one program phase, so a coarse grid keeps a round's
    transient short; the grid step bounds the width error to ``sqrt(ratio) - 1`` (4.4 % for 2^(1/8)).
    """
    w = np.asarray(width, dtype=float)
    out = np.zeros_like(w)
    pos = w > 0
    out[pos] = base * ratio ** np.rint(np.log(w[pos] / base) / np.log(ratio))
    return out


def _check_polarity(vset: float, vreset: float) -> None:
    if vset == 0 or vreset == 0 or np.sign(vset) == np.sign(vreset):
        raise ProgrammingError(f"vset ({vset:g} V) and vreset ({vreset:g} V) must be non-zero and of opposite signs")


@dataclass
class FixedPulse:
    """Write-and-verify: every cell outside tolerance gets the fixed SET or RESET pulse."""

    vset: float
    vreset: float
    width: float
    tol: float = 0.1
    name: str = "verify"

    def __post_init__(self):
        _check_polarity(self.vset, self.vreset)
        if not self.width > 0:
            raise ProgrammingError(f"width must be > 0, got {self.width}")

    def start(self, g, target):
        pass

    def decide(self, round_index, g, target) -> Pulses:
        s = error_sign(g, target, self.tol)
        amp = np.where(s < 0, self.vset, np.where(s > 0, self.vreset, 0.0))
        return Pulses(amp, np.where(s != 0, self.width, 0.0))


@dataclass
class ISPP:
    """Incremental step pulse programming: amplitude ramps per consecutive pulse in one direction."""

    vset: float
    vreset: float
    width: float
    vstep: float = 0.05
    vmax: float = 1.6
    tol: float = 0.1
    name: str = "ispp"
    _steps: np.ndarray | None = field(default=None, repr=False)
    _last: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        _check_polarity(self.vset, self.vreset)
        if not (self.width > 0 and self.vstep >= 0 and self.vmax >= max(abs(self.vset), abs(self.vreset))):
            raise ProgrammingError("ISPP needs width > 0, vstep >= 0 and vmax >= |vset|, |vreset|")

    def start(self, g, target):
        self._steps = np.zeros(g.shape)
        self._last = np.zeros(g.shape)

    def decide(self, round_index, g, target) -> Pulses:
        s = error_sign(g, target, self.tol)
        same = (s != 0) & (s == self._last)
        self._steps = np.where(same, self._steps + 1, 0.0)
        self._last = np.where(s != 0, s, self._last)
        base = np.where(s < 0, self.vset, self.vreset)
        mag = np.minimum(np.abs(base) + self.vstep * self._steps, self.vmax)
        amp = np.where(s != 0, np.sign(base) * np.round(mag, 6), 0.0)
        return Pulses(amp, np.where(s != 0, self.width, 0.0))


@dataclass
class WidthHalving:
    """Per-cell width: halved at each overshoot of that cell, down to ``width / 2**max_halvings``."""

    vset: float
    vreset: float
    width: float
    tol: float = 0.1
    max_halvings: int = 4
    name: str = "halving"
    _w: np.ndarray | None = field(default=None, repr=False)
    _last: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        _check_polarity(self.vset, self.vreset)

    def start(self, g, target):
        self._w = np.full(g.shape, float(self.width))
        self._last = np.zeros(g.shape)

    def decide(self, round_index, g, target) -> Pulses:
        s = error_sign(g, target, self.tol)
        flipped = (s * self._last) < 0
        self._w = np.where(flipped, np.maximum(self._w / 2, self.width / 2 ** self.max_halvings), self._w)
        self._last = np.where(s != 0, s, self._last)
        amp = np.where(s < 0, self.vset, np.where(s > 0, self.vreset, 0.0))
        return Pulses(amp, np.where(s != 0, self._w, 0.0))


@dataclass
class GlobalHalving:
    """The original write-and-verify: one width for every cell, halved whenever any cell overshoots."""

    vset: float
    vreset: float
    width: float
    tol: float = 0.05
    max_halvings: int = 4
    name: str = "global-halving"
    _w: float = field(default=0.0, repr=False)
    _last: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        _check_polarity(self.vset, self.vreset)

    def start(self, g, target):
        self._w = float(self.width)
        self._last = np.zeros(g.shape)

    def decide(self, round_index, g, target) -> Pulses:
        s = error_sign(g, target, self.tol)
        if np.any((s * self._last) < 0):
            self._w = max(self._w / 2, self.width / 2 ** self.max_halvings)
        self._last = np.where(s != 0, s, self._last)
        amp = np.where(s < 0, self.vset, np.where(s > 0, self.vreset, 0.0))
        return Pulses(amp, np.where(s != 0, self._w, 0.0))
