"""Initial crossbar states: constant, seeded uniform, from .npy/.csv files; bad files are located."""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.errors import DescriptionError
from circuitkit.workflow import load


def _circuit(tmp_path, state: str, rows: int = 3, cols: int = 4):
    f = tmp_path / "s.xbar"
    f.write_text(f'crossbar xb {{\n rows = {rows}; cols = {cols}\n state = {state}\n}}\n'
                 f'stimulus {{ read = fill({rows}, 0.1) }}\nanalysis op()\n')
    return load(f)[1]


def _x0(circuit):
    cells = circuit.group("xb_m")
    return np.broadcast_to(np.asarray(cells.resolved()["x0"], dtype=float), (cells.n,)).reshape(cells.shape)


def test_constant_and_seeded_uniform(tmp_path):
    assert np.all(_x0(_circuit(tmp_path, "0.25")) == 0.25)
    a = _x0(_circuit(tmp_path, "uniform(0.2, 0.4, seed = 3)"))
    b = _x0(_circuit(tmp_path, "uniform(0.2, 0.4, seed = 3)"))
    c = _x0(_circuit(tmp_path, "uniform(0.2, 0.4, seed = 4)"))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0.2 and a.max() <= 0.4 and np.ptp(a) > 0


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_state_from_file(tmp_path, suffix):
    x = np.random.default_rng(0).uniform(0, 1, size=(3, 4))
    path = tmp_path / f"x{suffix}"
    np.save(path, x) if suffix == ".npy" else np.savetxt(path, x, delimiter=",", fmt="%.17g")
    np.testing.assert_array_equal(_x0(_circuit(tmp_path, f'file("x{suffix}")')), x)


def test_state_file_of_the_wrong_shape_or_range_or_missing(tmp_path):
    np.save(tmp_path / "small.npy", np.zeros((2, 2)))
    with pytest.raises(DescriptionError, match=r"shape \(2, 2\), expected \(3, 4\)"):
        _circuit(tmp_path, 'file("small.npy")')
    np.save(tmp_path / "big.npy", np.full((3, 4), 1.5))
    with pytest.raises(DescriptionError, match="outside the range"):
        _circuit(tmp_path, 'file("big.npy")')
    with pytest.raises(DescriptionError) as exc:
        _circuit(tmp_path, 'file("nope.npy")')
    assert "s.xbar:3:10" in str(exc.value) and "not found" in str(exc.value)


def test_state_values_from_the_python_api_must_match_the_array():
    from circuitkit.circuit.build import build_circuit
    from circuitkit.design import Crossbar, Design, ReadPhase, StateInit
    design = Design(crossbar=Crossbar(rows=2, cols=3, state=StateInit(kind="values", values=np.full((3, 2), 0.5))),
                    stimulus=[ReadPhase([0.1, 0.1])])
    with pytest.raises(DescriptionError, match=r"shape \(3, 2\), expected \(2, 3\)"):
        build_circuit(design)
    design.crossbar.state.values = np.full((2, 3), 0.25)
    assert np.all(_x0_of(build_circuit(design)) == 0.25)


def _x0_of(circuit):
    return np.asarray(circuit.group("xb_m").resolved()["x0"], dtype=float)
