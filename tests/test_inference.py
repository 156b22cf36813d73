"""A weight matrix mapped onto a crossbar runs a layer: outputs, accuracy and error against the ideal."""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.errors import DescriptionError
from circuitkit.workloads.inference import run_inference

GMIN, GMAX, VREAD = 1e-5, 1e-4, 0.2


def _layer(tmp_path, w, mapping="differential", rw=1.0, dac="", r_out=1.0):
    np.save(tmp_path / "w.npy", w)
    cols = 2 * w.shape[1] if mapping == "differential" else w.shape[1] + 1
    f = tmp_path / "layer.xbar"
    f.write_text(f'''title "layer"
param rw = {rw}
crossbar xb {{
    rows = {w.shape[0]}; cols = {cols}
    device = vteam(ron = 10k, roff = 100k, voff = 0.5, von = -0.5)
    state = weights("w.npy", mapping = {mapping}, gmin = {GMIN}, gmax = {GMAX}, vread = {VREAD})
}}
wires {{ r_row = rw; r_col = rw }}
driver rows {{ r_out = {r_out} {dac} }}
stimulus {{ duration = 10n; read = fill({w.shape[0]}, 0.1) }}
analysis op()
''')
    return f


@pytest.fixture
def task():
    rng = np.random.default_rng(7)
    w = rng.normal(size=(32, 6))
    x = rng.uniform(0, 1, size=(300, 32))
    return w, x, np.argmax(x @ w, axis=1)        # labels: what the exact layer answers


@pytest.mark.parametrize("mapping,max_error", [("differential", 0.02), ("single", 0.1)])
def test_layer_outputs_track_the_ideal_product(tmp_path, task, mapping, max_error):
    w, x, labels = task
    res = run_inference(_layer(tmp_path, w, mapping), x, labels)
    assert res.outputs.shape == (300, 6)
    assert res.ideal_accuracy == 1.0
    assert res.rel_error < max_error and res.accuracy > 0.9
    assert res.ideal_energy_per_vector > 0


def test_single_mapping_suffers_more_ir_drop_than_differential(tmp_path, task):
    # every single-mapped cell sits at mid-range conductance (more current, more IR drop), and the
    # offset column subtracts two large currents
    w, x, labels = task
    diff = run_inference(_layer(tmp_path, w), x, labels)
    single = run_inference(_layer(tmp_path, w, "single"), x, labels)
    assert single.rel_error > 2 * diff.rel_error


def test_wire_resistance_costs_accuracy(tmp_path, task):
    w, x, labels = task
    good = run_inference(_layer(tmp_path, w, rw=0.1), x, labels)
    bad = run_inference(_layer(tmp_path, w, rw=200.0), x, labels)
    assert good.rel_error < 0.2 * bad.rel_error
    assert bad.accuracy < good.accuracy


def test_dac_quantization_adds_error(tmp_path, task):
    w, x, _ = task
    exact = run_inference(_layer(tmp_path, w, rw=0.0, r_out=0.0), x)
    coarse = run_inference(_layer(tmp_path, w, rw=0.0, r_out=0.0, dac="; dac = dac(bits = 3, vmin = 0, vmax = 0.2)"), x)
    assert exact.rel_error < 1e-6 < 1e-2 < coarse.rel_error


def test_inputs_outside_the_range_are_refused(tmp_path, task):
    w, x, _ = task
    with pytest.raises(DescriptionError, match="values in \\[0, 1\\]"):
        run_inference(_layer(tmp_path, w), 2 * x)
