"""Programming a crossbar to target conductances by write-and-verify, on either engine.

Each round:

1. **verify** -- every cell's conductance ``I(vread, x)/vread`` at its
   simulated state (an ideal verify read through the device twin, so the
   decision does not depend on the array's sneak paths);
2. **decide** -- cells below ``target (1 - tol)`` get a SET pulse
   (``vset``, the polarity that raises conductance), cells above
   ``target (1 + tol)`` a RESET pulse (``vreset``), the rest are done;
3. **write** -- one transient of the whole array with, per row, one program
   phase for its SET cells and one for its RESET cells (the cells of a row
   pulsed together, the other lines biased by ``scheme``), so half-select
   disturb of every other cell is part of the result. States carry over to
   the next round.

A cell whose error changed sign overshot: the pulse width is halved for the
next round (down to ``width / 2**max_halvings``). Stops when every cell is
within tolerance or after ``max_rounds``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ..circuit.build import build_circuit
from ..design import Analysis, Design, ProgramPhase, Record, StateInit
from ..devices.registry import get_model
from ..engines import simulate


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
    xb = design.crossbar
    if xb is None:
        raise ValueError("write_verify needs a design with a crossbar")
    target = np.asarray(target, dtype=float)
    if target.shape != (xb.rows, xb.cols) or np.any(target <= 0):
        raise ValueError(f"target must be positive conductances of shape ({xb.rows}, {xb.cols})")
    model = get_model(xb.model)
    d = copy.deepcopy(design)
    d.records = [Record("states")]
    d.analysis = Analysis(kind="tran", step=step)
    circuit = build_circuit(_with_states(d, None))
    params = circuit.group(circuit.crossbar.cells).resolved()
    x = np.asarray(circuit.crossbar.intended_states[0], dtype=float).reshape(xb.rows, xb.cols)
    pulses = np.zeros(x.shape, dtype=np.int64)
    history: list[float] = []
    last_sign = np.zeros(x.shape)
    w = width
    rounds = 0
    while True:
        err = model.read_conductance(vread, x, params) / target - 1
        history.append(float(np.max(np.abs(err))))
        low, high = err < -tol, err > tol
        if not (low.any() or high.any()) or rounds == max_rounds:
            break
        sign = np.where(low, -1.0, np.where(high, 1.0, 0.0))
        if np.any((sign * last_sign) < 0):
            w = max(w / 2, width / 2 ** max_halvings)
        last_sign = np.where(sign != 0, sign, last_sign)
        d.stimulus = []
        for i in range(xb.rows):
            for mask, amplitude in ((low[i], vset), (high[i], vreset)):
                cols = np.flatnonzero(mask)
                if cols.size:
                    d.stimulus.append(ProgramPhase(row=i, col=cols.tolist(), amplitude=amplitude, width=w,
                                                   count=1, gap=0.0, scheme=scheme))
        pulses += low | high
        wf = simulate(build_circuit(_with_states(d, x)), engine)
        x = np.array([[float(np.asarray(wf[f"x_{i}_{j}"])[-1]) for j in range(xb.cols)] for i in range(xb.rows)])
        rounds += 1
    return WriteVerifyResult(x, target * (1 + err), target, np.abs(err) <= tol, pulses, rounds, history)


def _with_states(design: Design, x: np.ndarray | None) -> Design:
    if x is not None:
        design.crossbar.state = StateInit(kind="values", values=np.clip(x, 0.0, 1.0))
    if not design.stimulus:       # the first build only resolves parameters and states
        design.stimulus = [ProgramPhase(row=0, col=0, amplitude=0.0, width=1e-9)]
    return design
