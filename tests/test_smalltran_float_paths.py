"""The small-circuit float paths of the behavioural transient, checked against their numpy forms.

For one-device groups and systems of a few unknowns the engine evaluates on
Python floats what the numpy forms evaluate on arrays (numpy's fixed cost per
call dominates there): the VTEAM float kernel (``DeviceModel.scalar_kernel``,
``linearize_one``, ``bound_step_one``) against the numpy twin, which stays the
reference of the Verilog-A lockstep; the truncation estimate, the predictor
check, the Newton update norm and the predictor polynomial against their array
forms; the precomputed sine against ``sources._sine``. Every float path must
give the array path's numbers to rounding and hand non-finite inputs to the
array path. End to end, ``vteam_sine.xbar`` and a crossbar take the same steps
and Newton iterations with the float paths switched off, with the same
waveforms to 1e-9.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from circuitkit.behavioural import engine as engine_mod
from circuitkit.behavioural import newton as newton_mod
from circuitkit.behavioural import transient as transient_mod
from circuitkit.behavioural.mna import MnaSystem
from circuitkit.behavioural.sources import _SinePlan, _sine
from circuitkit.behavioural.transient import LteTolerances, _Truncation
from circuitkit.devices.base import DeviceModel
from circuitkit.devices.vteam import Vteam
from circuitkit.workflow import load
from test_behavioural_transient_speed import _crossbar, _load

REPO = Path(__file__).resolve().parents[1]

PARAMETER_SETS = [{}, {"iv": 1.0}, {"alphaoff": 1.5, "alphaon": 2.0}, {"alphaoff": 2.0, "alphaon": 3.5, "iv": 1.0}]


def _points(rng, n=400):
    """Voltages in every regime (below von, dead band, blend widths, far beyond) and states incl. the tapers."""
    v = np.concatenate([rng.uniform(-1.5, 1.5, n), rng.uniform(0.02, 0.023, 50), rng.uniform(-0.203, -0.2, 50),
                        [0.02, -0.2, 0.0, 0.022, -0.202]])
    x = np.concatenate([rng.uniform(0, 1, n), rng.uniform(0, 0.012, 50), rng.uniform(0.988, 1, 50),
                        [0.0, 1.0, 0.5, 0.01, 0.99]])
    return v, x


def _close(got, want, rtol):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    same = got == want                          # equal infinities included
    with np.errstate(invalid="ignore"):
        return bool(np.all(same | (np.abs(got - want) <= rtol * np.maximum(np.abs(want), 1e-300))))


@pytest.mark.parametrize("overrides", PARAMETER_SETS)
def test_vteam_float_kernel_equals_the_numpy_twin(overrides):
    p = Vteam.resolve(overrides)
    kernel = Vteam.scalar_kernel(p)
    assert kernel is not None
    v, x = _points(np.random.default_rng(1))
    cur = Vteam.current(v, x[None], p)
    rate = Vteam.dxdt(v, x[None], p)[0]
    bound = Vteam.bound_step(v, x[None], p)
    assert _close([kernel.current(a, b) for a, b in zip(v, x)], cur, 1e-14)
    assert _close([kernel.dxdt(a, b) for a, b in zip(v, x)], rate, 1e-14)
    assert _close([Vteam.bound_step_one(kernel, a, b) for a, b in zip(v, x)], bound, 1e-14)
    # the five difference points at once (shared factors) are the same numbers as one by one
    for a, b in zip(v[:60], x[:60]):
        pts = kernel.points(a, b, a + 1e-7, a - 1e-7, b + 1e-7, b - 1e-7)
        assert pts == super(type(kernel), kernel).points(a, b, a + 1e-7, a - 1e-7, b + 1e-7, b - 1e-7)


@pytest.mark.parametrize("overrides", PARAMETER_SETS)
def test_vteam_float_linearisation_equals_the_batched_differences(overrides):
    p = Vteam.resolve({**overrides, "x0": 0.4})
    kernel = Vteam.scalar_kernel(p)
    v, x = _points(np.random.default_rng(2), 100)
    for a, b in zip(v, x):
        want = Vteam.linearize(np.array([a]), np.array([[b]]), p)
        got = Vteam.linearize_one(kernel, float(a), float(b), 0.4)
        for g, w in zip(got, want):
            w = float(np.ravel(w)[0])
            # values to rounding; differences of values agreeing to rounding, over 2e-6 relative steps
            assert abs(g - w) <= 1e-9 * max(abs(w), 1e-300), (a, b, g, w)


def test_kernels_only_for_one_number_per_parameter():
    assert DeviceModel.scalar_kernel(Vteam.resolve()) is None          # the base class has none
    assert Vteam.scalar_kernel(Vteam.resolve({"ron": np.array([50.0, 60.0])})) is None
    assert Vteam.scalar_kernel(Vteam.resolve({"ron": np.array([50.0])})) is not None


def _one_device(tmp_path, model="vteam(iv = 1, x0 = 0.3)"):
    text = f"""title "one"
source vin (in, 0) sine(offset = 0, amplitude = 1, freq = 10k)
resistor r1 (in, a) 100
device m1 (a, 0) {model}
analysis tran(stop = 100u, step = 1u)
record v(a), x(m1)
"""
    return _load(tmp_path, text, "one")


def test_device_stamp_float_path_equals_the_array_path_and_falls_back(tmp_path):
    system = MnaSystem(_one_device(tmp_path))
    stamp = system.nonlinear.stamps[0]
    assert stamp._kernel is not None
    rng = np.random.default_rng(5)
    # ordinary points, then states far outside [0, 1]: exp(log(roff/ron) x) overflows on floats
    # (OverflowError) where numpy returns inf; the stamp must then give numpy's numbers
    for xs in list(rng.uniform(0, 1, 20)) + [400.0, -1e3]:
        vext = np.zeros(system.n_v + 1)
        vext[1:] = rng.normal(scale=0.5, size=system.n_v)
        vext[stamp.nodes[2, 0]] = xs
        with np.errstate(all="ignore"):         # as in Newton: the fallback meets numpy's overflow
            got_r, got_j = stamp.evaluate(vext)
            got_res = stamp.residual(vext).copy()
            got_bound = stamp.bound_step(vext)
        kernel, stamp._kernel = stamp._kernel, None
        try:
            with np.errstate(all="ignore"):
                want_r, want_j = stamp.evaluate(vext)
                want_res = stamp.residual(vext).copy()
                want_bound = stamp.bound_step(vext)
        finally:
            stamp._kernel = kernel
        assert got_r.shape == want_r.shape and got_j.shape == want_j.shape
        for g, w in ((got_r, want_r), (got_res, want_res)):
            assert np.array_equal(np.isfinite(g), np.isfinite(w))
            assert _close(g[np.isfinite(w)], w[np.isfinite(w)], 1e-14)
        fin = np.isfinite(want_j)
        assert np.array_equal(np.isfinite(got_j), fin)
        assert _close(got_j[fin], want_j[fin], 1e-8)
        assert got_bound == pytest.approx(want_bound, rel=1e-14)


def _history(rng, m, scale=1.0):
    trunc = _Truncation.__new__(_Truncation)
    trunc.rows = np.arange(m)
    trunc.tol = LteTolerances()
    trunc.q = [rng.normal(scale=scale, size=m) for _ in range(4)]
    trunc.h = list(rng.uniform(1e-9, 3e-9, 3))
    return trunc


@pytest.mark.parametrize("m", [1, 3, 16])
def test_truncation_limit_on_floats_equals_the_array_form(monkeypatch, m):
    rng = np.random.default_rng(m)
    for _ in range(50):
        trunc = _history(rng, m, scale=10 ** rng.uniform(-6, 1))
        args = (rng.normal(size=m), float(rng.uniform(1e-9, 3e-9)), rng.normal(size=m), rng.normal(size=m))
        for order in (1, 2):
            got = trunc.step_limit(order, *args)
            monkeypatch.setattr(transient_mod, "FLOAT_ROWS", 0)
            want = trunc.step_limit(order, *args)
            monkeypatch.setattr(transient_mod, "FLOAT_ROWS", 16)
            assert got == pytest.approx(want, rel=1e-14)


def test_truncation_limit_hands_non_finite_values_to_the_array_form():
    rng = np.random.default_rng(9)
    trunc = _history(rng, 2)
    q = np.array([np.nan, 1.0])
    assert trunc._step_limit_floats(2, q, 1e-9, np.ones(2), np.ones(2)) is None
    assert trunc._step_limit_floats(2, np.ones(2), 1e-9, np.array([np.inf, 0.0]), np.ones(2)) is None
    with np.errstate(all="ignore"):
        assert math.isnan(trunc.step_limit(2, q, 1e-9, np.ones(2), np.ones(2)))   # numpy's NaN, not a float guess


def test_voltage_limit_on_floats_equals_the_array_form(monkeypatch):
    rng = np.random.default_rng(11)
    lte = LteTolerances()
    for _ in range(100):
        n = int(rng.integers(1, 12))
        y1, pred, y0 = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
        pred = y1 + 10 ** rng.uniform(-9, -2) * (pred - y1)
        got = transient_mod._voltage_limit(y1, pred, y0, 1e-9, lte)
        monkeypatch.setattr(transient_mod, "FLOAT_ROWS", 0)
        want = transient_mod._voltage_limit(y1, pred, y0, 1e-9, lte)
        monkeypatch.setattr(transient_mod, "FLOAT_ROWS", 16)
        assert got == pytest.approx(want, rel=1e-14)
    # a NaN anywhere (even in y0, which Python's max would swallow) gives the array form's answer: 0
    with np.errstate(all="ignore"):
        assert transient_mod._voltage_limit(np.ones(3), np.ones(3) * 1.1, np.array([1.0, np.nan, 1.0]), 1e-9, lte) == 0.0
    assert transient_mod._voltage_ratio_floats(np.ones(2), np.ones(2), np.array([np.inf, 1.0]), lte) is None


def test_newton_update_norm_on_floats_equals_the_array_form():
    rng = np.random.default_rng(13)
    reltol, atol = 1e-9, np.array([1e-12] * 4 + [1e-15] * 2)
    for _ in range(200):
        y = rng.normal(size=6) * 10 ** rng.uniform(-6, 2, 6)
        dy = rng.normal(size=6) * 10 ** rng.uniform(-15, -3, 6)
        y_new = y + dy
        want = float(np.max(np.abs(dy) / (np.maximum(np.abs(y_new), np.abs(y)) * reltol + atol)))
        assert newton_mod._update_norm(y, dy, y_new, reltol, atol.tolist()) == want
    assert newton_mod._update_norm(np.ones(2), np.array([np.nan, 0.0]), np.ones(2), reltol, [1e-12] * 2) is None
    assert newton_mod._update_norm(np.zeros(2), np.zeros(2), np.zeros(2), reltol, [0.0, 0.0]) is None   # 0/0


def test_float_predictor_equals_the_array_form(monkeypatch):
    rng = np.random.default_rng(17)
    for k in (2, 3):
        pts = [(float(t), rng.normal(size=5)) for t in np.sort(rng.uniform(0, 1e-6, k))]
        pts[-1][1][0] = pts[0][1][0] = pts[-2][1][0]           # a component that did not change
        got = transient_mod.extrapolate(pts, 1.2e-6)
        monkeypatch.setattr(transient_mod, "FLOAT_ROWS", 0)
        want = transient_mod.extrapolate(pts, 1.2e-6)
        monkeypatch.setattr(transient_mod, "FLOAT_ROWS", 16)
        assert np.array_equal(got, want)
        assert got[0] == pts[-1][1][0]                          # predicted exactly


@pytest.mark.parametrize("delay, damping, phase", [(0.0, 0.0, 0.0), (2e-6, 0.0, 0.0), (0.0, 3e4, 0.0),
                                                   (1e-6, 2e3, 30.0), (0.0, 0.0, -45.0)])
def test_precomputed_sine_equals_the_sine_formula(delay, damping, phase):
    p = {name: np.array([val, 0.5 * val]) for name, val in
         (("offset", 0.1), ("amplitude", 1.3), ("freq", 1e4), ("delay", delay), ("damping", damping),
          ("phase", phase))}
    plan = _SinePlan(p)
    started = float(p["delay"].max())
    for t in np.linspace(0, 2e-4, 101):
        got = plan.values(t, t >= started)
        want = _sine(t, **p, started=t >= started)
        assert np.array_equal(got, want), t


def _float_paths_off(monkeypatch):
    monkeypatch.setattr(Vteam, "scalar_kernel", classmethod(lambda cls, p: None))
    monkeypatch.setattr(transient_mod, "FLOAT_ROWS", 0)
    monkeypatch.setattr(newton_mod, "FLOAT_SIZE", 0)


@pytest.mark.parametrize("name", ["sine", "crossbar3"])
def test_transients_equal_with_the_float_paths_off(tmp_path, monkeypatch, name):
    c = (load(REPO / "testbenches" / "vteam_sine.xbar", {})[1] if name == "sine"
         else _load(tmp_path, _crossbar(3), "xb3"))
    fast = engine_mod.simulate(c)
    _float_paths_off(monkeypatch)
    ref = engine_mod.simulate(c)
    for key in ("steps", "rejected_steps", "newton_iterations", "factorizations"):
        assert fast.meta[key] == ref.meta[key], key
    assert np.array_equal(fast.time, ref.time)
    for key in ref.signals:
        r = np.asarray(ref[key])
        assert np.max(np.abs(np.asarray(fast[key]) - r)) <= 1e-9 * np.abs(r).max(), key


@pytest.mark.parametrize("mode", ["tran", "op"])
def test_float_evaluation_from_the_unknowns_equals_the_node_voltage_path(tmp_path, mode):
    system = MnaSystem(_one_device(tmp_path, "vteam(x0 = 0.3)"))
    nl = system.nonlinear
    assert nl.floats
    rng = np.random.default_rng(21)
    for _ in range(20):
        y = rng.normal(scale=0.5, size=system.size)
        vext = np.append(0.0, y[: system.n_v])
        r_f, j_f = nl.evaluate_floats(y, mode)
        r_a, j_a = nl.evaluate_raw(vext, mode)
        assert np.array_equal(r_f, r_a) and np.array_equal(j_f, j_a)
        assert np.array_equal(nl.residual_floats(y, mode), nl.residual(vext, mode))


def test_source_bank_equals_the_waveforms_and_the_per_call_pwl():
    from circuitkit.behavioural.sources import SourceBank, _PwlPlan, _pwl
    from circuitkit.circuit.waveforms import DC, PWL, Pulse, Sine
    waves = [Sine(offset=0.1, amplitude=1.0, freq=1e3, delay=1e-4, damping=10.0, phase=20.0), DC(0.3),
             PWL([0, 1e-3, 2e-3], [0, 1, 0.5]), Pulse(v1=0, v2=1, delay=1e-5, rise=1e-6, fall=1e-6, width=1e-4,
                                                     period=3e-4), PWL([0, 1e-3, 2e-3], [1, 2, 0.5])]
    bank = SourceBank(waves)
    times = np.concatenate([np.linspace(-1e-4, 3e-3, 307), [1e-3, 2e-3, 0.0]])
    for t in times:
        assert np.allclose(bank.values(t), [float(w(t)) for w in waves], rtol=1e-12, atol=1e-15), t
    rng = np.random.default_rng(23)
    pts = np.sort(rng.uniform(0, 1, 9))
    vals = rng.normal(size=(4, 9))
    plan = _PwlPlan(pts, vals)
    for t in np.concatenate([rng.uniform(-0.1, 1.1, 200), pts]):
        assert np.array_equal(plan.values(t), _pwl(t, pts, vals)), t
    assert SourceBank([]).values(0.0).shape == (0,)
