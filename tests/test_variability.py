"""Device-to-device variability: per-device model parameters, identical in both engines."""
from __future__ import annotations

import re

import numpy as np
import pytest

from circuitkit.engines import simulate
from circuitkit.errors import DescriptionError
from circuitkit.netlist import render_text
from circuitkit.outputs import outputs_table
from circuitkit.workflow import load

TEXT = '''title "variability"
param sigma = 0.2
param seed = 1
crossbar xb {
    rows = 6; cols = 5
    device = vteam(ron = 10k, roff = 100k, voff = 0.5, von = -0.5)
    state = uniform(0, 1, seed = 2)
    variability = lognormal(ron = sigma, roff = sigma / 2, seed = seed)
}
wires { r_row = 2; r_col = 2 }
stimulus { read = [0.2, 0.1, 0.15, 0.05, 0.2, 0.1] }
analysis op()
record column_currents
'''


def _circuit(tmp_path, **overrides):
    f = tmp_path / "var.xbar"
    f.write_text(TEXT)
    return load(f, overrides={k: str(v) for k, v in overrides.items()})[1]


def _params(circuit):
    p = circuit.group("xb_m").resolved()
    return np.asarray(p["ron"]), np.asarray(p["roff"])


def test_factors_are_lognormal_and_reproducible(tmp_path):
    ron, roff = _params(_circuit(tmp_path))
    assert ron.shape == (30,) and np.unique(ron).size == 30
    again, _ = _params(_circuit(tmp_path))
    other, _ = _params(_circuit(tmp_path, seed=2))
    np.testing.assert_array_equal(ron, again)
    assert not np.array_equal(ron, other)
    big, _ = _params(_circuit(tmp_path, sigma=0.3))
    assert np.std(np.log(big)) > np.std(np.log(ron))             # sigma really scales the spread
    np.testing.assert_allclose(np.log(roff / 100e3), np.log(_params(_circuit(tmp_path, sigma=0.2))[1] / 100e3))


def test_netlist_has_one_card_per_device_parameter_set(tmp_path):
    circuit = _circuit(tmp_path)
    deck = render_text(circuit, {"vteam": "/opt/ck/vteam.osdi"})
    cards = re.findall(r"^\.model (xb_m_vteam_v\d+) vteam", deck, flags=re.M)
    assert len(cards) == 30 and len(set(cards)) == 30
    used = re.findall(r"^Nxb_m_\S+ .* (xb_m_vteam_v\d+)", deck, flags=re.M)
    assert sorted(set(used)) == sorted(cards)
    assert render_text(circuit, {"vteam": "/opt/ck/vteam.osdi"}) == deck       # deterministic


def test_variability_changes_the_read_and_the_ideal_product_follows(tmp_path):
    from circuitkit.ideal import ideal_column_currents
    plain = _circuit(tmp_path, sigma=0.0)
    varied = _circuit(tmp_path)
    a = outputs_table(plain, simulate(plain, "behavioural"))["current"].to_numpy()
    b = outputs_table(varied, simulate(varied, "behavioural"))["current"].to_numpy()
    assert np.max(np.abs(a - b) / np.abs(a)) > 0.01
    ideal = ideal_column_currents(varied)[0]
    assert np.max(np.abs(b - ideal) / ideal) < 0.01          # only the small IR drop remains


@pytest.mark.spice
def test_both_engines_see_the_same_devices(tmp_path):
    circuit = _circuit(tmp_path)
    s = outputs_table(circuit, simulate(circuit, "spice"))["current"].to_numpy()
    b = outputs_table(circuit, simulate(circuit, "behavioural"))["current"].to_numpy()
    assert np.max(np.abs(s - b)) / np.max(np.abs(s)) < 1e-9


@pytest.mark.parametrize("setting,message", [
    ("lognormal(nosuch = 0.1)", "nosuch"),
    ("lognormal(x0 = 0.1)", "instance parameter"),
    ("lognormal(ron = -0.1)", "variability of 'ron'"),
    ("normal(ron = 0.1)", "variability must be lognormal"),
    ("lognormal(seed = 3)", "names no model parameter"),
    ("lognormal(xedge = 50)", "xedge"),          # pushes xedge past its upper bound 0.5
])
def test_bad_variability_is_located(tmp_path, setting, message):
    f = tmp_path / "bad.xbar"
    f.write_text(TEXT.replace("lognormal(ron = sigma, roff = sigma / 2, seed = seed)", setting))
    with pytest.raises(DescriptionError, match=message) as exc:
        load(f)
    assert "bad.xbar" in str(exc.value)
