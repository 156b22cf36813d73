"""Neural-network layer inference on a crossbar whose states map a weight matrix.

A description with ``state = weights("w.npy", mapping=..., gmin=, gmax=,
vread=)`` programs ``W`` (rows = inputs, columns = outputs) as conductances.
Inference then encodes each input vector ``x`` (values in [0, 1]) as row
voltages ``vread * x`` (through the row DAC when the description has one),
reads the column currents with :meth:`~circuitkit.behavioural.reads.LinearReads.read_many`
(the DC solution of every vector: the transfer matrix where the cells are linear at
the read voltages, else Newton batched over the vectors) and decodes them back to ``W^T x``:

    differential   y_k = (I_2k - I_2k+1) * max|W| / ((gmax - gmin) * vread)
    single         y_k = (I_k - I_offset) * max|W| / ((gmax - gmin) / 2 * vread)

The result holds the hardware outputs beside the ideal ones (``W^T x`` in
floating point), their relative error, the top-1 accuracy against labels (and
the ideal layer's accuracy on the same labels), and the energy an ideal array
(no wires, ideal drivers) spends per read, ``duration * sum_ij G_ij V_i^2``.
The energy of the simulated hardware, per phase and part (cells, wires,
drivers, sense), comes from a simulation: :func:`circuitkit.energy.simulate_energy`.
Reads only: no state moves (the read is a DC solution at the mapped states); the
mapping must be that of the description.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from ..behavioural.reads import LinearReads
from ..circuit.states import load_matrix
from ..errors import DescriptionError, Location
from ..peripherals import dac_quantize
from ..workflow import load


@dataclass
class InferenceResult:
    outputs: np.ndarray            # (n, k) decoded hardware outputs
    ideal: np.ndarray              # (n, k) W^T x
    rel_error: float               # ||outputs - ideal|| / ||ideal|| over all vectors
    accuracy: float | None         # top-1 against labels (hardware)
    ideal_accuracy: float | None   # top-1 against labels (ideal layer)
    ideal_energy_per_vector: float  # J per read, ideal array

    def summary(self) -> str:
        acc = "" if self.accuracy is None else \
            f", top-1 accuracy {self.accuracy:.3f} (ideal {self.ideal_accuracy:.3f})"
        return (f"{len(self.outputs)} vectors: relative output error {self.rel_error:.3e}{acc}; "
                f"ideal-array read energy {self.ideal_energy_per_vector:.3e} J/vector")


def run_inference(description: str | Path, inputs, labels=None,
                  overrides: Mapping[str, str] | None = None) -> InferenceResult:
    """Run ``inputs`` (n, rows), values in [0, 1], through the mapped layer of ``description``."""
    design, circuit = load(description, overrides)
    xb = design.crossbar
    s = xb.state if xb is not None else None
    if s is None or s.kind != "weights":
        raise DescriptionError("inference needs a crossbar whose state is weights(...)",
                               Location(file=design.source, parameter="state"))
    x = np.atleast_2d(np.asarray(inputs, dtype=float))
    if x.shape[1] != xb.rows or np.any(x < 0) or np.any(x > 1):
        raise DescriptionError(f"inputs must be (n, {xb.rows}) with values in [0, 1], got shape {x.shape}",
                               Location(file=design.source, parameter="inputs"))
    w = load_matrix(s.path, Location(file=design.source, parameter="state"))
    v = s.vread * x
    drv = design.row_driver
    if drv.dac_bits:
        v = dac_quantize(v, drv.dac_bits, drv.vmin, drv.vmax)
    reads = LinearReads(circuit)
    currents = reads.read_many(v)
    outputs = decode(currents, w, s.mapping, s.gmin, s.gmax, s.vread)
    ideal = x @ w
    err = float(np.linalg.norm(outputs - ideal) / (np.linalg.norm(ideal) or 1.0))
    acc = ideal_acc = None
    if labels is not None:
        labels = np.asarray(labels)
        acc = float(np.mean(np.argmax(outputs, axis=1) == labels))
        ideal_acc = float(np.mean(np.argmax(ideal, axis=1) == labels))
    duration = design.phase_duration
    g = _cell_conductance(circuit, s.vread)
    ideal_energy = float(np.mean(duration * np.einsum("ni,ij,ni->n", v, g, v)))
    return InferenceResult(outputs, ideal, err, acc, ideal_acc, ideal_energy)


def decode(currents: np.ndarray, w: np.ndarray, mapping: str, gmin: float, gmax: float,
           vread: float) -> np.ndarray:
    """Column currents (n, cols) -> layer outputs (n, k) in the units of ``W^T x``."""
    scale = np.max(np.abs(w)) or 1.0
    if mapping == "differential":
        return (currents[:, 0::2] - currents[:, 1::2]) * scale / ((gmax - gmin) * vread)
    return (currents[:, :-1] - currents[:, -1:]) * scale / (0.5 * (gmax - gmin) * vread)


def _cell_conductance(circuit, vread: float) -> np.ndarray:
    cells = circuit.group(circuit.crossbar.cells)
    p = cells.resolved()
    x = np.broadcast_to(np.asarray(p[cells.model.states[0].init], dtype=float), (cells.n,))
    return cells.model.read_conductance(vread, x, p).reshape(cells.shape)
