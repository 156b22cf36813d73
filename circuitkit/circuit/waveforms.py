"""Independent-source waveforms with exactly ngspice's semantics.

Each waveform knows its value at any time (the behavioural engine's twin of
the SPICE source) and its breakpoints (corners a time grid must hit).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DC:
    value: float

    def __call__(self, t):
        return np.full(np.shape(t), float(self.value))

    def breakpoints(self, tstop: float) -> np.ndarray:
        return np.empty(0)


@dataclass(frozen=True)
class Sine:
    """``SIN(offset amplitude freq delay damping phase_deg)`` as in ngspice."""

    offset: float
    amplitude: float
    freq: float
    delay: float = 0.0
    damping: float = 0.0
    phase: float = 0.0  # degrees, as in SPICE

    def __call__(self, t):
        t = np.asarray(t, dtype=float)
        ph = math.radians(self.phase)
        td = np.maximum(t - self.delay, 0.0)
        out = self.offset + self.amplitude * np.exp(-td * self.damping) * np.sin(2 * math.pi * self.freq * td + ph)
        return np.where(t < self.delay, self.offset + self.amplitude * math.sin(ph), out)

    def breakpoints(self, tstop: float) -> np.ndarray:
        return np.array([self.delay]) if 0 < self.delay < tstop else np.empty(0)


@dataclass(frozen=True)
class Pulse:
    """``PULSE(v1 v2 delay rise fall width period)``; rise and fall must be > 0.

    (ngspice replaces a zero rise/fall by TSTEP, which would make the two
    engines disagree, so circuitkit never writes a zero edge.)
    """

    v1: float
    v2: float
    delay: float
    rise: float
    fall: float
    width: float
    period: float

    def __post_init__(self):
        if self.rise <= 0 or self.fall <= 0:
            raise ValueError("pulse rise and fall times must be > 0")
        if self.period < self.rise + self.width + self.fall:
            raise ValueError("pulse period shorter than rise + width + fall")

    def __call__(self, t):
        t = np.asarray(t, dtype=float)
        tt = t - self.delay
        local = np.where(tt > 0, np.mod(tt, self.period), tt)
        # exact multiples of the period land on the start of a new cycle
        out = np.full(t.shape, float(self.v1))
        dv = self.v2 - self.v1
        r, w, f = self.rise, self.width, self.fall
        rising = (local > 0) & (local < r)
        out = np.where(rising, self.v1 + dv * local / r, out)
        high = (local >= r) & (local <= r + w)
        out = np.where(high, self.v2, out)
        falling = (local > r + w) & (local < r + w + f)
        out = np.where(falling, self.v2 - dv * (local - r - w) / f, out)
        return out

    def breakpoints(self, tstop: float) -> np.ndarray:
        pts = []
        start = self.delay
        while start < tstop:
            for off in (0.0, self.rise, self.rise + self.width, self.rise + self.width + self.fall):
                if start + off < tstop:
                    pts.append(start + off)
            start += self.period
        return np.array(pts)


@dataclass(frozen=True)
class PWL:
    """Piece-wise linear ``PWL(t0 v0 t1 v1 ...)``; held constant after the last point."""

    times: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self):
        if len(self.times) != len(self.values) or not self.times:
            raise ValueError("PWL needs equally many times and values, at least one")
        if any(b <= a for a, b in zip(self.times, self.times[1:])):
            raise ValueError("PWL times must increase strictly")

    def __call__(self, t):
        return np.interp(np.asarray(t, dtype=float), self.times, self.values)

    def breakpoints(self, tstop: float) -> np.ndarray:
        tp = np.asarray(self.times)
        return tp[(tp > 0) & (tp < tstop)]


Waveform = DC | Sine | Pulse | PWL
