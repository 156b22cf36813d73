"""The ideal answer a crossbar read approximates: I_j = sum_i I_cell(V_i, x_ij).

No wire resistance, ideal drivers and virtual grounds, no stuck cells: every
cell has its intended state and sees exactly its row voltage (after the DAC). For devices linear at the read voltage this
is the matrix-vector product G^T·V with G_ij = I(V, x_ij)/V. Used to measure
the error that IR drop, sneak paths and converters add.
"""
from __future__ import annotations

import numpy as np

from .circuit.model import Circuit, Devices


def ideal_column_currents(circuit: Circuit) -> np.ndarray:
    """Array (read phases, cols) of ideal column currents; empty without a crossbar."""
    xb = circuit.crossbar
    if xb is None:
        return np.empty((0, 0))
    R, C = xb.rows, xb.cols
    cells: Devices = circuit.group(xb.cells, Devices)
    model = cells.model
    p = cells.resolved()
    x = xb.intended_states     # what was meant to be programmed (before faults)
    if x is None:
        x = np.array([np.broadcast_to(p[s.init], (R * C,)) for s in model.states]).reshape(model.n_states(), R * C)
    out = []
    for ph in xb.read_phases():
        vec = np.asarray(ph.vector, dtype=float)
        if xb.cell == "1T1R":
            # a row whose word-select is off (or that floats) has its access transistors off: no cell current
            on = np.zeros(R, bool)
            on[list(ph.rows)] = True
            vec = np.where(on, vec, 0.0)
        v = np.repeat(vec, C)     # row voltage seen by each cell
        out.append(model.current(v, x, p).reshape(R, C).sum(axis=0))
    return np.array(out)


def read_error(circuit: Circuit, measured: np.ndarray) -> float:
    """Relative RMS error of measured column currents (phases, cols) against the ideal product."""
    ideal = ideal_column_currents(circuit)
    if ideal.size == 0:
        return float("nan")
    scale = np.sqrt(np.mean(ideal ** 2))
    return float(np.sqrt(np.mean((measured - ideal) ** 2)) / scale) if scale else float("nan")
