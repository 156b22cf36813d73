"""All independent voltage sources of a circuit, evaluated at once.

A crossbar has thousands of sources but only a few kinds of waveform, so
calling each waveform object at every time step would dominate the run time.
:class:`SourceBank` groups the waveforms by type (PWLs also by their time
points) and evaluates each group with one vectorised expression that repeats
the formula of the waveform class in ``circuitkit.circuit.waveforms`` (which
stays the reference; the tests check both agree).
"""
from __future__ import annotations

import bisect
import math
from typing import Sequence

import numpy as np

from ..circuit.waveforms import DC, PWL, Pulse, Sine, Waveform


class SourceBank:
    """Values and breakpoints of ``waveforms`` (one per source, in order)."""

    def __init__(self, waveforms: Sequence[Waveform]):
        self.waveforms = list(waveforms)
        self.n = len(self.waveforms)
        by_type: dict[type, list[int]] = {DC: [], Pulse: [], Sine: [], PWL: []}
        for k, wave in enumerate(self.waveforms):
            if type(wave) not in by_type:
                raise TypeError(f"source {k}: unsupported waveform {type(wave).__name__}")
            by_type[type(wave)].append(k)

        def params(kind, names):
            idx = np.asarray(by_type[kind], dtype=np.int64)
            return idx, {name: np.array([getattr(self.waveforms[k], name) for k in idx], dtype=float)
                         for name in names}

        self._dc_idx, dc = params(DC, ("value",))
        self._dc = dc["value"]
        self._pulse_idx, self._pulse = params(Pulse, ("v1", "v2", "delay", "rise", "fall", "width", "period"))
        self._sine_idx, self._sine = params(Sine, ("offset", "amplitude", "freq", "delay", "damping", "phase"))
        self._sine_started = float(self._sine["delay"].max()) if self._sine_idx.size else 0.0
        self._sine_plan = _SinePlan(self._sine) if self._sine_idx.size else None
        # one kind of waveform covering every source in order: its values are the output as they are
        self._only_sine = 0 < self._sine_idx.size == self.n and bool(np.all(self._sine_idx == np.arange(self.n)))
        pwl_groups: dict[tuple, list[int]] = {}
        for k in by_type[PWL]:
            pwl_groups.setdefault(tuple(self.waveforms[k].times), []).append(k)
        self._pwl = [(np.asarray(ks, dtype=np.int64), np.asarray(times, dtype=float),
                      np.array([self.waveforms[k].values for k in ks], dtype=float))
                     for times, ks in pwl_groups.items()]
        self._pwl_plans = [_PwlPlan(times, values) for _, times, values in self._pwl]
        self._template = np.zeros(self.n)          # the DC values in place; the other entries are overwritten
        self._template[self._dc_idx] = self._dc

    def values(self, t: float) -> np.ndarray:
        """Source values at time ``t``, shape (n,)."""
        if self._only_sine:
            return self._sine_plan.values(t, t >= self._sine_started)
        out = self._template.copy()
        if self._pulse_idx.size:
            out[self._pulse_idx] = _pulse(t, **self._pulse)
        if self._sine_idx.size:
            out[self._sine_idx] = self._sine_plan.values(t, t >= self._sine_started)
        for (idx, _, _), plan in zip(self._pwl, self._pwl_plans):
            out[idx] = plan.values(t)
        return out

    def breakpoints(self, tstop: float) -> np.ndarray:
        """Sorted corners of all waveforms in (0, tstop)."""
        distinct = {repr(w): w for w in self.waveforms}.values()  # sources often share a waveform
        points = [w.breakpoints(tstop) for w in distinct]
        points = np.unique(np.concatenate(points)) if points else np.empty(0)
        return points[(points > 0) & (points < tstop)]

    def shortest_feature(self, tstop: float) -> float:
        """The shortest gap between two corners of one waveform (a pulse's rise, width or fall, a PWL
        interval) in [0, tstop), ``inf`` without any. Gaps below 1e-11 of ``tstop`` are rounding (a
        period equal to rise + width + fall puts two corners at the same time) and do not count."""
        shortest = math.inf
        for wave in {repr(w): w for w in self.waveforms}.values():
            points = np.unique(np.append(np.asarray(wave.breakpoints(tstop), dtype=float), 0.0))
            gaps = np.diff(points[points < tstop])
            gaps = gaps[gaps > 1e-11 * tstop]
            if gaps.size:
                shortest = min(shortest, float(gaps.min()))
        return shortest


def _pulse(t, v1, v2, delay, rise, fall, width, period):
    tt = t - delay
    local = np.where(tt > 0, np.mod(tt, period), tt)
    out = v1.copy()
    dv = v2 - v1
    rising = (local > 0) & (local < rise)
    out = np.where(rising, v1 + dv * local / rise, out)
    high = (local >= rise) & (local <= rise + width)
    out = np.where(high, v2, out)
    falling = (local > rise + width) & (local < rise + width + fall)
    return np.where(falling, v2 - dv * (local - rise - width) / fall, out)


def _sine(t, offset, amplitude, freq, delay, damping, phase, started=False):
    """``started``: every delay has passed (t >= max delay), so the before-delay branch is skipped."""
    ph = phase * (math.pi / 180.0)
    td = np.maximum(t - delay, 0.0)
    out = offset + amplitude * np.exp(-td * damping) * np.sin(2 * math.pi * freq * td + ph)
    if started:
        return out
    return np.where(t < delay, offset + amplitude * np.sin(ph), out)


class _SinePlan:
    """:func:`_sine` for one parameter set with its time-independent parts computed once.

    The same operations on the same values, so the same results to the bit: ``2 pi freq`` and the
    phase in radians are the products :func:`_sine` forms first; where every damping is zero the
    factor ``exp(-td * 0) = 1`` is left out (``amplitude * 1.0`` is ``amplitude``), where every phase
    is zero the ``+ 0.0`` is, and once every delay has passed ``max(t - delay, 0)`` is ``t - delay``
    (``t`` itself where every delay is zero).
    """

    def __init__(self, p: dict):
        self.p = p
        self.omega = 2 * math.pi * p["freq"]
        self.ph = p["phase"] * (math.pi / 180.0)
        self.damped = bool(np.any(p["damping"] != 0.0))
        self.phased = bool(np.any(self.ph != 0.0))
        self.delayed = bool(np.any(p["delay"] != 0.0))

    def values(self, t: float, started: bool) -> np.ndarray:
        p = self.p
        if not started:
            return _sine(t, **p, started=False)
        td = t - p["delay"] if self.delayed else t
        arg = self.omega * td
        if self.phased:
            arg += self.ph
        wave = np.sin(arg)
        if self.damped:
            wave = p["amplitude"] * np.exp(-td * p["damping"]) * wave
        else:
            wave *= p["amplitude"]
        wave += p["offset"]
        return wave


class _PwlPlan:
    """:func:`_pwl` for one group with the slope of every interval computed once (the same quotient
    :func:`_pwl` forms per call, so the same values) and the interval found by ``bisect`` on a list."""

    def __init__(self, times: np.ndarray, values: np.ndarray):
        self.t_list = times.tolist()
        self.first, self.last = values[:, 0].copy(), values[:, -1].copy()
        with np.errstate(all="ignore"):           # repeated time points give intervals never selected
            self.slopes = np.ascontiguousarray(((values[:, 1:] - values[:, :-1]) / (times[1:] - times[:-1])).T)
        self.starts = np.ascontiguousarray(values[:, :-1].T)

    def values(self, t: float) -> np.ndarray:
        tl = self.t_list
        if t <= tl[0]:
            return self.first
        if t >= tl[-1]:
            return self.last
        j = bisect.bisect_right(tl, t) - 1
        return self.slopes[j] * (t - tl[j]) + self.starts[j]


def _pwl(t, times, values):
    """np.interp of every row of ``values`` over the shared ``times`` at scalar ``t``."""
    if t <= times[0]:
        return values[:, 0]
    if t >= times[-1]:
        return values[:, -1]
    j = int(np.searchsorted(times, t, side="right")) - 1
    slope = (values[:, j + 1] - values[:, j]) / (times[j + 1] - times[j])
    return slope * (t - times[j]) + values[:, j]
