"""The benchmark circuits, written as descriptions and built with :func:`circuitkit.workflow.load`.

Going through the description language (not hand-built circuits) means the
benchmarks time exactly what users run: the builder's crossbar with wire
segments, driver output resistances and ideal TIAs (virtual-ground sources).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from circuitkit.circuit.model import Circuit
from circuitkit.workflow import load

#: wire segment resistance (ohm) and driver output resistance used by every benchmark crossbar
R_WIRE = 1.0
R_OUT = 10.0
V_READ = 0.2


def _vector(values) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


def read_description(n: int, seed: int = 1, vector=None) -> str:
    """An ``n`` x ``n`` 1R VTEAM crossbar (linear I-V), one DC read (``op()``), ideal TIAs."""
    if vector is None:
        vector = np.random.default_rng(seed).uniform(0.0, V_READ, n)
    return f"""title "{n}x{n} 1R DC read"
crossbar xb {{
    rows = {n}
    cols = {n}
    cell = 1R
    device = vteam(iv = 0)
    state = uniform(0.0, 1.0, seed = {seed})
}}
wires {{ r_row = {R_WIRE}; r_col = {R_WIRE} }}
driver rows {{ r_out = {R_OUT} }}
sense cols {{ tia = ideal(rf = 1k) }}
stimulus {{
    read = {_vector(vector)}
}}
analysis op()
record column_currents
"""


def write_description(n: int, amplitude: float = 1.6, width: float = 100e-9, count: int = 5,
                      gap: float = 80e-9, step: float = 1e-9) -> str:
    """An ``n`` x ``n`` 1R VTEAM crossbar programmed with V/2 pulses on one cell (about 1 us)."""
    return f"""title "{n}x{n} 1R V/2 programming"
crossbar xb {{
    rows = {n}
    cols = {n}
    cell = 1R
    device = vteam(iv = 0)
    state = uniform(0.2, 0.8, seed = 3)
}}
wires {{ r_row = {R_WIRE}; r_col = {R_WIRE} }}
driver rows {{ r_out = 5; rise = 2n; fall = 2n }}
driver cols {{ r_out = 5; rise = 2n; fall = 2n }}
stimulus {{
    program = pulses(row = {n // 3}, col = {n // 2}, amplitude = {amplitude}, width = {width:.6g}, count = {count}, gap = {gap:.6g}, scheme = v2)
}}
analysis tran(step = {step:.6g})
record supply_currents, states
"""


def load_text(text: str, name: str = "bench.xbar") -> Circuit:
    """Build the circuit of a description given as text."""
    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp:
        path = Path(tmp) / name
        path.write_text(text)
        return load(path)[1]


def read_circuit(n: int, seed: int = 1, vector=None) -> Circuit:
    return load_text(read_description(n, seed, vector))


def write_circuit(n: int, **kw) -> Circuit:
    return load_text(write_description(n, **kw))
