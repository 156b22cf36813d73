"""Weight matrices mapped to conductances: the array computes W^T v through the device model."""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.engines import simulate
from circuitkit.errors import DescriptionError
from circuitkit.outputs import outputs_table
from circuitkit.workflow import load

GMIN, GMAX, VREAD = 1e-5, 1e-4, 0.2


def _design(tmp_path, w, mapping, cols, vector, rw=0.0):
    np.save(tmp_path / "w.npy", w)
    vec = ", ".join(repr(float(v)) for v in vector)
    f = tmp_path / "mvm.xbar"
    f.write_text(f'''title "weights"
crossbar xb {{
    rows = {w.shape[0]}; cols = {cols}
    device = vteam(ron = 10k, roff = 100k, voff = 0.5, von = -0.5)
    state = weights("w.npy", mapping = {mapping}, gmin = {GMIN}, gmax = {GMAX}, vread = {VREAD})
}}
wires {{ r_row = {rw}; r_col = {rw} }}
stimulus {{ read = [{vec}] }}
analysis op()
record column_currents
''')
    return load(f)[1]


def _cell_conductance(circuit):
    cells = circuit.group("xb_m")
    p = cells.resolved()
    R, C = circuit.crossbar.shape
    x = np.asarray(p["x0"], dtype=float).reshape(1, R * C)
    return (cells.model.current(np.full(R * C, VREAD), x, p) / VREAD).reshape(R, C)


def test_differential_mapping_reaches_target_conductances_and_computes_the_product(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.uniform(-1, 1, size=(8, 4))
    v = rng.uniform(0, VREAD, size=8)
    circuit = _design(tmp_path, w, "differential", 8, v)
    g = _cell_conductance(circuit)
    scale = np.max(np.abs(w))
    np.testing.assert_allclose(g[:, 0::2], GMIN + (GMAX - GMIN) * np.maximum(w, 0) / scale, rtol=1e-9)
    np.testing.assert_allclose(g[:, 1::2], GMIN + (GMAX - GMIN) * np.maximum(-w, 0) / scale, rtol=1e-9)
    i = np.asarray(outputs_table(circuit, simulate(circuit, "behavioural"))["current"])   # into the virtual grounds
    y = (i[0::2] - i[1::2]) * scale / (GMAX - GMIN)
    np.testing.assert_allclose(y, w.T @ v, rtol=1e-9, atol=1e-12)


def test_single_mapping_uses_an_offset_column(tmp_path):
    rng = np.random.default_rng(4)
    w = rng.uniform(-1, 1, size=(6, 3))
    v = rng.uniform(0, VREAD, size=6)
    circuit = _design(tmp_path, w, "single", 4, v)
    i = np.asarray(outputs_table(circuit, simulate(circuit, "behavioural"))["current"])
    y = (i[:-1] - i[-1]) * np.max(np.abs(w)) / (0.5 * (GMAX - GMIN))
    np.testing.assert_allclose(y, w.T @ v, rtol=1e-9, atol=1e-12)


def test_wire_resistance_degrades_the_mapped_product(tmp_path):
    rng = np.random.default_rng(5)
    w = rng.uniform(-1, 1, size=(16, 8))
    v = np.full(16, VREAD)
    errs = []
    for rw in (0.0, 20.0):
        circuit = _design(tmp_path, w, "differential", 16, v, rw=rw)
        i = np.asarray(outputs_table(circuit, simulate(circuit, "behavioural"))["current"])
        y = (i[0::2] - i[1::2]) * np.max(np.abs(w)) / (GMAX - GMIN)
        errs.append(np.linalg.norm(y - w.T @ v) / np.linalg.norm(w.T @ v))
    assert errs[0] < 1e-9 < 1e-3 < errs[1]


def test_weight_matrix_of_the_wrong_shape_is_refused(tmp_path):
    with pytest.raises(DescriptionError, match="differential mapping"):
        _design(tmp_path, np.ones((8, 3)), "differential", 8, np.zeros(8))


def test_targets_outside_the_device_range_are_refused(tmp_path):
    np.save(tmp_path / "w.npy", np.ones((2, 1)))
    f = tmp_path / "bad.xbar"
    f.write_text('crossbar xb {\n rows = 2; cols = 2\n device = vteam(ron = 10k, roff = 100k)\n'
                 ' state = weights("w.npy", gmin = 1e-6, gmax = 1e-4)\n}\nstimulus { read = [0.1, 0.1] }\nanalysis op()\n')
    with pytest.raises(DescriptionError, match="outside what model 'vteam' reaches") as exc:
        load(f)
    assert "bad.xbar" in str(exc.value)
