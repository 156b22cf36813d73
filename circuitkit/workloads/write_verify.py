"""Programming a crossbar to target conductances by write-and-verify, on either engine.

The original circuitkit write-and-verify, now one policy
(:class:`~circuitkit.workloads.programming.policies.GlobalHalving`) run by the
programming workload (:mod:`circuitkit.workloads.programming`). Each round:

1. **verify** -- every cell's conductance ``I(vread, x)/vread`` at its
   simulated states (an ideal verify read through the device twin, all of a
   multi-state model's states included);
2. **decide** -- cells below ``target (1 - tol)`` get a SET pulse
   (``vset``, the polarity that raises conductance), cells above
   ``target (1 + tol)`` a RESET pulse (``vreset``), the rest are done;
3. **write** -- one transient of the whole array with, per row, one program
   phase for its SET cells and one for its RESET cells (the other lines
   biased by ``scheme``), so half-select disturb of every other cell is part
   of the result. States carry over to the next round.

A cell whose error changed sign overshot: the pulse width is halved for the
next round (down to ``width / 2**max_halvings``). Stops when every cell is
within tolerance or after ``max_rounds``. Other policies (ISPP, per-cell
halving, a learned predictor), verify reads through the array and
cycle-to-cycle noise: see :mod:`circuitkit.workloads.programming`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..design import Design
from .programming.array import ProgrammingArray
from .programming.policies import GlobalHalving
from .programming.run import program


@dataclass
class WriteVerifyResult:
    states: np.ndarray              # (rows, cols) final first state
    conductance: np.ndarray         # (rows, cols) at vread
    target: np.ndarray              # (rows, cols)
    converged: np.ndarray           # (rows, cols) within tolerance
    pulses: np.ndarray              # (rows, cols) pulses each cell received
    rounds: int                     # write rounds done
    history: list[float] = field(default_factory=list)   # max relative conductance error per verify

    @property
    def max_rel_error(self) -> float:
        return float(np.max(np.abs(self.conductance / self.target - 1)))


def write_verify(design: Design, target: np.ndarray, *, vset: float, vreset: float, width: float,
                 vread: float = 0.1, tol: float = 0.05, max_rounds: int = 20, scheme: str = "v3",
                 step: float = 1e-9, max_halvings: int = 4, engine: str = "behavioural") -> WriteVerifyResult:
    """Program the crossbar of ``design`` to conductances ``target`` (rows x cols, S)."""
    array = ProgrammingArray(design, engine=engine, step=step, scheme=scheme, vread=vread, verify="ideal")
    res = program(array, target, GlobalHalving(vset, vreset, width, tol=tol, max_halvings=max_halvings),
                  max_rounds=max_rounds)
    g = res.seen[-1]
    err = g / res.target - 1
    return WriteVerifyResult(res.states[0], g, res.target, np.abs(err) <= tol, res.pulse_counts(), res.rounds,
                             [float(np.max(np.abs(s / res.target - 1))) for s in res.seen])
