"""The small-system paths of the behavioural engine, checked against the sparse path and exact solves.

* dense LU of the whole system (``newton._DenseLU``, chosen for systems of
  at most ``newton.DENSE_MAX`` unknowns): the same linear solve as the
  condensed sparse LU and as ``spsolve`` of the full Jacobian to ~1e-12; an exactly singular matrix raises ``NewtonFailure``; ``meta``
  names the path; whole transients agree with the sparse path within the
  Newton tolerance;
* the batched finite-difference linearisation (``DeviceModel.linearize``,
  one twin call on all perturbed copies) against the call-per-perturbation
  form, for every registered model, scalar and per-device parameters;
* ``transient.interpolate`` (per-interval clamp bounds, column chunks)
  against its branch-by-branch definition.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from circuitkit.behavioural import engine as engine_mod
from circuitkit.behavioural import newton as newton_mod
from circuitkit.behavioural import transient as transient_mod
from circuitkit.behavioural.mna import MnaSystem
from circuitkit.behavioural.newton import NewtonFailure, Solver, _DenseLU
from circuitkit.devices import REGISTRY
from circuitkit.devices.base import DeviceModel
from circuitkit.workflow import load
from test_behavioural_transient_speed import MIXED, _crossbar, _load   # the same circuits, both paths

REPO = Path(__file__).resolve().parents[1]


def _circuits(tmp_path):
    return {"sine": load(REPO / "testbenches" / "vteam_sine.xbar", {})[1],
            "mixed": _load(tmp_path, MIXED, "mixed"),
            "crossbar3": _load(tmp_path, _crossbar(3), "xb3")}


@pytest.mark.parametrize("name", ["sine", "mixed", "crossbar3"])
@pytest.mark.parametrize("mode, a", [("tran", 2e9), ("op", 0.0)])
def test_dense_and_sparse_factors_solve_alike_and_exactly(tmp_path, name, mode, a):
    system = MnaSystem(_circuits(tmp_path)[name])
    dense, sparse = Solver(system, dense=True), Solver(system, dense=False)
    assert (dense.linear_solver, sparse.linear_solver) == ("dense LU", "sparse LU")
    rng = np.random.default_rng(3)
    y = rng.normal(scale=0.3, size=system.size)
    y[: system.n_v] += 0.5                                  # devices beyond their thresholds
    vext = np.append(0.0, y[: system.n_v])
    _, j_nl = system.nonlinear.evaluate(vext, mode)
    base = dense.base(mode, a)[0]
    assert np.array_equal(base, sparse.base(mode, a)[0])
    data = base + j_nl
    fd, fs = dense._factor(data, base, (mode, a)), sparse._factor(data, base, (mode, a))
    full = system.pattern.matrix(data).tocsc()
    for _ in range(3):
        b = rng.normal(size=system.size)
        exact = spla.spsolve(full, b)
        tol = 1e-12 * np.abs(exact).max()
        xd, xs = fd.solve(b), fs.solve(b)
        assert np.max(np.abs(xd - xs)) <= tol
        assert np.max(np.abs(xd - exact)) <= tol
        assert np.max(np.abs(full @ xd - b)) <= 1e-12 * np.abs(b).max() * max(1.0, abs(full).max())


@pytest.mark.parametrize("name", ["sine", "mixed", "crossbar3"])
def test_residual_products_equal_the_assembled_matrix(tmp_path, name):
    system = MnaSystem(_circuits(tmp_path)[name])
    y = np.random.default_rng(4).normal(size=system.size)
    for dense in (True, False):
        solver = Solver(system, dense=dense)
        for mode, a in (("tran", 3e9), ("op", 0.0), ("tran", 7.5e10)):
            entry = solver.base(mode, a)
            exact = system.pattern.matrix(entry[0]) @ y
            assert np.allclose(solver.product(entry, y), exact, rtol=1e-13, atol=1e-13 * np.abs(exact).max())


def test_dense_lu_refuses_an_exactly_singular_matrix():
    n = 3
    m = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 1.0]])     # rows 0 and 1 dependent
    flat = np.arange(n * n)
    with pytest.raises(NewtonFailure, match="singular"):
        _DenseLU(m.T.ravel(), flat, n)                       # column-major flat positions
    lu = _DenseLU(np.eye(n).ravel(), flat, n)
    assert np.array_equal(lu.solve(np.array([1.0, 2.0, 3.0])), [1.0, 2.0, 3.0])
    assert _DenseLU(np.empty(0), np.empty(0, np.int64), 0).solve(np.empty(0)).shape == (0,)


def test_small_circuits_take_the_dense_path_and_say_so(tmp_path):
    c = _circuits(tmp_path)["sine"]
    out = engine_mod.simulate(c)
    assert out.meta["linear_solver"] == "dense LU"
    big = MnaSystem(_load(tmp_path, _crossbar(8), "xb8"))
    assert big.size > newton_mod.DENSE_MAX
    assert Solver(big).linear_solver == "sparse LU" and Solver(big).condensation is not None
    small = Solver(MnaSystem(c))
    assert small.linear_solver == "dense LU" and small.condensation is None    # factored whole


@pytest.mark.parametrize("name", ["sine", "mixed", "crossbar3"])
def test_transients_agree_with_the_sparse_path(tmp_path, monkeypatch, name):
    c = _circuits(tmp_path)[name]
    fast = engine_mod.simulate(c)
    assert fast.meta["linear_solver"] == "dense LU"
    monkeypatch.setattr(newton_mod, "DENSE_MAX", 0)
    ref = engine_mod.simulate(c)
    assert ref.meta["linear_solver"] == "sparse LU"
    for key in fast.signals:
        r = np.interp(fast.time, ref.time, np.asarray(ref[key]))
        scale = np.sqrt(np.mean(np.asarray(ref[key]) ** 2)) or 1.0
        # both converge each step to the Newton tolerance (reltol 1e-9); step control may then place a
        # step differently (measured: the same steps, differences up to 1e-10 of the RMS)
        assert np.sqrt(np.mean((np.asarray(fast[key]) - r) ** 2)) <= 1e-8 * scale, key


def _random_inputs(model, n, rng, per_device: bool):
    p = model.resolve()
    values = dict(p)
    if per_device:        # every parameter per device, jittered within its range where it has slack
        for prm in model.parameters:
            val = np.full(n, float(values[prm.name]))
            if prm.lower is not None and prm.upper is not None and prm.upper > prm.lower:
                val = np.clip(val * (1 + 0.05 * rng.uniform(-1, 1, n)), prm.lower, prm.upper)
            elif val[0] != 0:
                val = val * (1 + 0.05 * rng.uniform(0, 1, n))
            values[prm.name] = model.resolve({prm.name: val})[prm.name]
    p = model.resolve({k: v for k, v in values.items() if np.ndim(v)}) if per_device else p
    v = rng.uniform(-1.5, 1.5, n)
    x = np.vstack([rng.uniform(st.lower + 0.05, st.upper - 0.05, n) for st in model.states]) \
        if model.states else np.zeros((0, n))
    return v, x, p


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("per_device", [False, True])
def test_batched_linearisation_equals_one_call_per_perturbation(name, per_device):
    model = REGISTRY[name]
    if model.linearize.__func__ is not DeviceModel.linearize.__func__:
        pytest.skip("the model has its own (analytic) linearize")
    rng = np.random.default_rng(7)
    v, x, p = _random_inputs(model, 40, rng, per_device)
    batched = model.linearize(v, x, p)
    single = model._linearize_calls(v, x, p)
    for got, want in zip(batched, single):
        got, want = np.asarray(got), np.asarray(want)
        assert got.shape == want.shape
        scale = max(np.abs(want).max(initial=0.0), 1e-300)
        assert np.max(np.abs(got - want), initial=0.0) <= 1e-12 * scale


def _interpolate_reference(times, values, corner, at):
    """The branch-by-branch definition: linear after a corner, else the quadratic through the pair and
    the point before, kept between the pair where the three values are monotone (1e-8 flat tolerance)."""
    out = np.empty((at.size, values.shape[1]))
    for r, s in enumerate(at):
        if s <= times[0]:
            out[r] = values[0]
            continue
        k = min(max(int(np.searchsorted(times, s, side="left")), 1), times.size - 1)
        if times[k] == s:
            out[r] = values[k]
            continue
        t0, t1, v0, v1 = times[k - 1], times[k], values[k - 1], values[k]
        if corner[k - 1] or k < 2:
            out[r] = v0 + (v1 - v0) * (s - t0) / (t1 - t0)
            continue
        tm, vm = times[k - 2], values[k - 2]
        q = (vm * (s - t0) * (s - t1) / ((tm - t0) * (tm - t1)) + v0 * (s - tm) * (s - t1) / ((t0 - tm) * (t0 - t1))
             + v1 * (s - tm) * (s - t0) / ((t1 - tm) * (t1 - t0)))
        eps = 1e-8 * (np.abs(v0) + np.abs(v1)) + 1e-300
        d1 = np.where(np.abs(v0 - vm) <= eps, 0.0, v0 - vm)
        d2 = np.where(np.abs(v1 - v0) <= eps, 0.0, v1 - v0)
        mono = d1 * d2 >= 0
        out[r] = np.where(mono, np.clip(q, np.minimum(v0, v1), np.maximum(v0, v1)), q)
    return out


def test_interpolate_matches_its_definition_with_column_chunks(monkeypatch):
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 1, 60))
    times[0] = 0.0
    corner = rng.uniform(size=60) < 0.15
    corner[0] = True
    values = np.cumsum(rng.normal(size=(60, 37)), axis=0)
    values[:, :8] = np.round(values[:, :8])                 # flat stretches and monotone steps
    values[:, 8:10] = 1.0
    at = np.sort(np.concatenate([rng.uniform(-0.1, 1.0, 300), times[::5]]))
    ref = _interpolate_reference(times, values, corner, at)
    monkeypatch.setattr(transient_mod, "CHUNK_ELEMENTS", 1000)      # several column chunks
    got = transient_mod.interpolate(times, values, corner, at)
    assert np.allclose(got, ref, rtol=1e-13, atol=1e-13 * np.abs(ref).max())
