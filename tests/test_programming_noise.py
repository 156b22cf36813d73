"""Cycle-to-cycle variability: per-round per-cell lognormal rate factors, identical in both engines.

The expected motion is derived from the VCM equations: without Joule heating (rth = 0), away from
the bounds' tapers and with ideal lines, a SET pulse of amplitude V and width w moves a cell by
kset F sinh(V/vset) w, where F is the cell's factor in that round; N pulses move it by
kset sinh(V/vset) w sum_k F_k, and sum_k F_k of N iid lognormal(0, sigma) has mean
N exp(sigma^2/2) and variance N (exp(sigma^2) - 1) exp(sigma^2).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from circuitkit.design import Crossbar, Design, Driver, StateInit, Wires
from circuitkit.devices import get_model
from circuitkit.errors import ParameterError
from circuitkit.netlist import render_text
from circuitkit.workloads.programming import CycleNoise, FixedPulse, ProgrammingArray, Pulses, program

VCM = get_model("vcm")
SIGMA = 0.2


def _design(rows, cols, x0=0.2, params=None, variability=None, r=0.0):
    return Design(title="c2c", crossbar=Crossbar(rows=rows, cols=cols, model="vcm", params=dict(params or {}),
                                                 state=StateInit(kind="constant", value=x0),
                                                 wires=Wires(r_row=r, r_col=r), variability=dict(variability or {}),
                                                 variability_seed=4),
                  row_driver=Driver(r_out=0, rise=1e-11, fall=1e-11), col_driver=Driver(r_out=0, rise=1e-11, fall=1e-11))


def test_factors_are_reproducible_per_round_and_lognormal():
    noise = CycleNoise({"kset": SIGMA, "kreset": 0.1}, seed=3)
    a, b = noise.factors(5, 40000), noise.factors(5, 40000)
    np.testing.assert_array_equal(a["kset"], b["kset"])
    assert not np.array_equal(a["kset"], noise.factors(6, 40000)["kset"])
    assert not np.array_equal(a["kset"], CycleNoise({"kset": SIGMA}, seed=4).factors(5, 40000)["kset"])
    z = np.log(a["kset"])
    assert abs(z.mean()) < 4 * SIGMA / np.sqrt(z.size) and np.std(z) == pytest.approx(SIGMA, rel=0.02)
    assert np.std(np.log(a["kreset"])) == pytest.approx(0.1, rel=0.02)
    # the sum over N rounds: the closed-form mean and variance of a sum of N iid lognormals
    n = 5
    s = sum(noise.factors(r, 40000)["kset"] for r in range(n))
    mean = n * np.exp(SIGMA ** 2 / 2)
    var = n * (np.exp(SIGMA ** 2) - 1) * np.exp(SIGMA ** 2)
    assert s.mean() == pytest.approx(mean, abs=4 * np.sqrt(var / s.size))
    assert s.var() == pytest.approx(var, rel=0.05)


def test_each_round_writes_its_factors_into_netlist_and_circuit():
    arr = ProgrammingArray(_design(2, 3, variability={"kset": 0.1}), noise=CycleNoise({"kset": SIGMA}, seed=1),
                           step=1e-9)
    base = np.asarray(arr.params["kset"])           # device-to-device values
    from circuitkit.circuit.build import build_circuit
    arr.design.stimulus = arr._phases(Pulses(np.full((2, 3), 1.0), np.full((2, 3), 5e-9)))
    circuit = build_circuit(arr.design)
    f = arr.noise.apply(circuit, 7)["kset"]
    kset = np.asarray(circuit.group(circuit.crossbar.cells).resolved()["kset"])
    np.testing.assert_allclose(kset, base * f, rtol=1e-15)
    deck = render_text(circuit, {"vcm": "/opt/ck/vcm.osdi"})
    cards = re.findall(r"^\.model (\S+) vcm(.*\n(?:\+.*\n)*)", deck, flags=re.M)
    assert len(cards) == 6
    values = sorted(float(re.search(r"kset=(\S+)", c[1]).group(1)) for c in cards)
    np.testing.assert_allclose(values, np.sort(kset), rtol=1e-6)


def test_spread_after_identical_pulses_matches_the_factors():
    """One row of 32 cells, 5 identical SET pulses: each cell moved by c * sum of its own factors."""
    cols, n, width = 32, 5, 20e-9
    noise = CycleNoise({"kset": SIGMA}, seed=9)
    arr = ProgrammingArray(_design(1, cols, params={"rth": 0.0}), noise=noise, step=1e-9)
    for _ in range(n):
        arr.write(Pulses(np.full((1, cols), 1.0), np.full((1, cols), width)))
    p = VCM.resolve({"rth": 0.0})
    c = p.kset * np.sinh(1.0 / p.vset) * width
    moved = arr.x[0, 0] - 0.2
    total = sum(noise.factors(r, cols)["kset"] for r in range(n))
    assert 0.1 < moved.min() and moved.max() + 0.2 < 0.95          # inside the tapers: the closed form holds
    np.testing.assert_allclose(moved, c * total, rtol=2e-3)
    # and the spread over the cells is that of the derived distribution (loose: 32 samples)
    mean = n * np.exp(SIGMA ** 2 / 2)
    sd = np.sqrt(n * (np.exp(SIGMA ** 2) - 1) * np.exp(SIGMA ** 2))
    assert (moved / c).mean() == pytest.approx(mean, abs=4 * sd / np.sqrt(cols))
    assert 0.5 * sd < (moved / c).std() < 1.6 * sd


def test_without_noise_the_cells_move_alike():
    arr = ProgrammingArray(_design(1, 4, params={"rth": 0.0}), step=1e-9)
    arr.write(Pulses(np.full((1, 4), 1.0), np.full((1, 4), 20e-9)))
    assert np.ptp(arr.x[0]) < 1e-9


@pytest.mark.parametrize("sigma, message", [({"nosuch": 0.1}, "nosuch"), ({"x0": 0.1}, "instance parameter"),
                                            ({"kset": -0.1}, "sigma must be >= 0")])
def test_bad_noise_is_refused_by_name(sigma, message):
    with pytest.raises(ParameterError, match=message):
        ProgrammingArray(_design(2, 2), noise=CycleNoise(sigma))


@pytest.mark.spice
def test_both_engines_follow_the_same_noisy_history():
    """A 3x3 array with wires, d2d and c2c noise, programmed by write-and-verify on both engines."""
    d = _design(3, 3, x0=0.0, variability={"kset": 0.05, "kreset": 0.05}, r=1.0)
    g = VCM.read_conductance(0.2, np.random.default_rng(2).uniform(0.1, 0.9, (3, 3)), VCM.resolve())
    runs = {}
    for engine in ("behavioural", "spice"):
        arr = ProgrammingArray(d, engine=engine, step=1e-9, noise=CycleNoise({"kset": 0.15, "kreset": 0.15}, seed=5))
        runs[engine] = program(arr, g, FixedPulse(1.0, -1.2, 20e-9, tol=0.1), max_rounds=12)
    b, s = runs["behavioural"], runs["spice"]
    assert b.rounds >= 4 and b.pulse_counts().sum() > 9
    np.testing.assert_array_equal(b.pulse_counts(), s.pulse_counts())
    np.testing.assert_allclose(b.states, s.states, atol=1e-3)
