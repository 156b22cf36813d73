"""Run a policy on a :class:`ProgrammingArray` until it stops, and measure the result.

RPD (relative percentage difference) is reported two ways, both in percent:

* ``rpd = 100 (G - G*)/G*`` -- the error relative to the target (signed; the tolerance test
  ``|rpd| <= 100 tol`` uses it);
* ``rpd_sym = 200 |G - G*|/(G + G*)`` -- the symmetric form (bounded by 200 %).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .array import ProgrammingArray, ProgrammingError, Pulses, RoundStats

if TYPE_CHECKING:                    # pandas loads only where a frame is built (start-up time)
    import pandas as pd


def rpd(g, target) -> np.ndarray:
    """100 (G - G*)/G*, percent."""
    return 100.0 * (np.asarray(g) - np.asarray(target)) / np.asarray(target)


def rpd_sym(g, target) -> np.ndarray:
    """200 |G - G*|/(G + G*), percent."""
    g, target = np.asarray(g), np.asarray(target)
    return 200.0 * np.abs(g - target) / (g + target)


@dataclass
class ProgramResult:
    policy: str
    target: np.ndarray                        # (R, C) S
    seen: list[np.ndarray]                    # what each verify saw, (R, C) each: before round 0, after each round
    actual: list[np.ndarray]                  # ideal conductance after each verify point (the truth)
    pulses: list[Pulses]                      # per round
    stats: list[RoundStats]                   # per round
    states: np.ndarray                        # final states (S, R, C)
    wall_s: float = 0.0
    meta: dict = field(default_factory=dict)

    @property
    def rounds(self) -> int:
        return len(self.pulses)

    @property
    def conductance(self) -> np.ndarray:
        return self.actual[-1]

    def pulse_counts(self) -> np.ndarray:
        """Pulses each cell received in the whole run, (R, C)."""
        if not self.pulses:
            return np.zeros(self.target.shape, dtype=np.int64)
        return np.sum([p.pulsed for p in self.pulses], axis=0).astype(np.int64)

    def pulses_to_reach(self, tol: float, truth: bool = True) -> np.ndarray:
        """Per cell, the pulses it had received when its conductance was first within ``tol``
        (``truth``: the ideal conductance, else what the verify read saw); NaN if never."""
        hist = self.actual if truth else self.seen
        out = np.full(self.target.shape, np.nan)
        count = np.zeros(self.target.shape)
        for k, g in enumerate(hist):
            hit = np.isnan(out) & (np.abs(g / self.target - 1) <= tol)
            out[hit] = count[hit]
            if k < len(self.pulses):
                count += self.pulses[k].pulsed
        return out

    def cost_to_reach(self, tol: float) -> dict:
        """Rounds, programming time (simulated, write and verify reads) and supply energy until every cell
        was within ``tol`` at one verify (ideal conductance); None where never."""
        t = e = 0.0
        for k, g in enumerate(self.actual):
            if np.all(np.abs(g / self.target - 1) <= tol):
                return {"rounds": k, "time_s": t, "energy_j": e}
            if k < len(self.stats):
                t += self.stats[k].write_time + self.stats[k].read_time
                e += self.stats[k].energy
        return {"rounds": None, "time_s": None, "energy_j": None}

    def to_frame(self) -> "pd.DataFrame":
        """One row per cell per round: conductance seen and true before, the pulse, after."""
        import pandas as pd
        R, C = self.target.shape
        rows, cols = np.divmod(np.arange(R * C), C)
        frames = []
        for k, p in enumerate(self.pulses):
            frames.append(pd.DataFrame({
                "policy": self.policy, "round": k, "row": rows, "col": cols,
                "target": self.target.ravel(), "g_seen": self.seen[k].ravel(), "g_before": self.actual[k].ravel(),
                "amplitude": p.amplitude.ravel(), "width": p.width.ravel(), "pulsed": p.pulsed.ravel(),
                "g_after": self.actual[k + 1].ravel(), "rpd_after": rpd(self.actual[k + 1], self.target).ravel(),
                "rpd_sym_after": rpd_sym(self.actual[k + 1], self.target).ravel(),
                "round_write_time": self.stats[k].write_time, "round_energy": self.stats[k].energy}))
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True)

    def summary(self, tols=(0.5, 0.1)) -> dict:
        first = self.actual[1] if len(self.actual) > 1 else self.actual[0]
        r1 = rpd(first, self.target)
        out = {"policy": self.policy, "cells": int(self.target.size), "rounds": self.rounds,
               "total_pulses": int(self.pulse_counts().sum()),
               "rpd_before_abs_median": float(np.median(np.abs(rpd(self.actual[0], self.target)))),
               "one_shot": {"rpd_abs_median": float(np.median(np.abs(r1))),
                            "rpd_abs_p90": float(np.percentile(np.abs(r1), 90)),
                            "rpd_sym_median": float(np.median(rpd_sym(first, self.target))),
                            **{f"within_{int(100 * t)}pct": float(np.mean(np.abs(r1) <= 100 * t)) for t in tols},
                            **{f"within_{int(100 * t)}pct_before": float(np.mean(np.abs(
                                rpd(self.actual[0], self.target)) <= 100 * t)) for t in tols}},
               "final": {"rpd_abs_max": float(np.max(np.abs(rpd(self.actual[-1], self.target)))),
                         **{f"within_{int(100 * t)}pct": float(np.mean(np.abs(rpd(self.actual[-1], self.target))
                                                                    <= 100 * t)) for t in tols}},
               "wall_s": self.wall_s, **self.meta}
        for t in tols:
            reach = self.pulses_to_reach(t)
            ok = ~np.isnan(reach)
            out[f"to_{int(100 * t)}pct"] = {
                "cells_reached": float(np.mean(ok)),
                "pulses_mean": float(np.mean(reach[ok])) if ok.any() else None,
                "pulses_max": float(np.max(reach[ok])) if ok.any() else None,
                **self.cost_to_reach(t)}
        return out


def program(array: ProgrammingArray, target, policy, *, max_rounds: int = 20, progress=None) -> ProgramResult:
    """Program ``array`` towards ``target`` (R, C, siemens) with ``policy`` for at most ``max_rounds`` rounds.

    ``progress(round, g)``, if given, is called after each round with what the verify step saw."""
    target = np.asarray(target, dtype=float)
    if target.shape != array.shape or not np.all(np.isfinite(target)) or np.any(target <= 0):
        raise ProgrammingError(f"target must be positive conductances of shape {array.shape} "
                               f"(got shape {target.shape}, min {np.min(target) if target.size else 'n/a'})")
    if max_rounds < 0:
        raise ProgrammingError(f"max_rounds must be >= 0, got {max_rounds}")
    start = time.perf_counter()
    g = array.verify()
    seen, actual = [g], [array.ideal_conductance()]
    pulses: list[Pulses] = []
    stats: list[RoundStats] = []
    policy.start(g, target)
    for k in range(max_rounds):
        p = policy.decide(k, g, target)
        if not p.pulsed.any():
            break
        stats.append(array.write(p))
        pulses.append(p)
        g = array.verify()
        seen.append(g)
        actual.append(array.ideal_conductance())
        if progress is not None:
            progress(k, g)
    return ProgramResult(getattr(policy, "name", type(policy).__name__), target, seen, actual, pulses, stats,
                         array.x.copy(), wall_s=time.perf_counter() - start,
                         meta={"engine": array.engine, "verify": array.verify_mode})
