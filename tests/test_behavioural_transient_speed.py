"""The fast-transient machinery of the behavioural engine, checked against plain formulations.

* static condensation (``mna.Condensation``, ``newton._Factors``): the
  block-eliminated solve equals a direct solve of the full Jacobian, in both
  analysis modes and for one- and two-state devices; states that are not
  private to their device stay in the factored system;
* factor reuse across step coefficients and relinearised state blocks:
  exact whenever the reused part of the matrix did not change;
* the transient predictor (``transient.extrapolate``);
* the rewritten switching functions (``devices/smooth.py``) and VTEAM rate
  law (evaluated on the devices beyond a threshold only) against their
  branch-by-branch definitions;
* end to end: a small crossbar under programming pulses gives the same
  waveforms with and without condensation, with few factorisations.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from circuitkit.behavioural import engine as engine_mod
from circuitkit.behavioural import newton as newton_mod
from circuitkit.behavioural.mna import Condensation, MnaSystem
from circuitkit.behavioural.newton import Solver
from circuitkit.behavioural.nonlinear import DeviceStamp
from circuitkit.behavioural.transient import extrapolate
from circuitkit.devices.smooth import ramp, taper
from circuitkit.devices.vteam import Vteam
from circuitkit.workflow import load

MIXED = """title "mixed"
source vin (in, 0) pulse(v1 = 0, v2 = 1.2, delay = 1n, rise = 1n, fall = 1n, width = 20n, period = 50n)
resistor r1 (in, a) 100
device m1 (a, b) vteam(x0 = 0.3)
resistor r2 (b, 0) 50
capacitor c1 (b, 0) 1p
device m2 (a, 0) volatile(w0 = 0.2, m0 = 0.1)
analysis tran(stop = 60n, step = 1n)
record v(a), v(b), x(m1), w(m2), m(m2)
"""


def _load(tmp_path, text: str, name: str = "t"):
    path = tmp_path / f"{name}.xbar"
    path.write_text(text)
    return load(path, {})[1]


def _crossbar(n: int) -> str:
    return f"""title "{n}x{n} programming"
crossbar xb {{
    rows = {n}
    cols = {n}
    cell = 1R
    device = vteam(iv = 0)
    state = uniform(0.2, 0.8, seed = 3)
}}
wires {{ r_row = 1; r_col = 1 }}
driver rows {{ r_out = 5; rise = 2n; fall = 2n }}
driver cols {{ r_out = 5; rise = 2n; fall = 2n }}
stimulus {{
    program = pulses(row = 1, col = 2, amplitude = 1.6, width = 40n, count = 2, gap = 30n, scheme = v2)
}}
analysis tran(step = 1n)
record supply_currents, states
"""


def _random_state(system, rng):
    y = rng.normal(scale=0.5, size=system.size)
    for blk in system.condensation.blocks:
        y[blk["s"]] = rng.uniform(0.1, 0.9, blk["s"].shape)
    y[: system.n_v] += 0.6          # most devices beyond their thresholds
    return y


@pytest.mark.parametrize("mode, a", [("tran", 2e9), ("tran", 1e10), ("op", 0.0)])
def test_condensed_solve_equals_full_solve(tmp_path, mode, a):
    system = MnaSystem(_load(tmp_path, MIXED))
    cond = system.condensation
    assert cond is not None and sorted(b["ns"] for b in cond.blocks) == [1, 2]
    assert cond.n_keep == system.size - 3           # x of m1, w and m of m2 eliminated
    assert cond.c_reduced                           # c1 sits on a kept node
    solver = Solver(system, dense=False)            # the condensed (sparse) path; small systems default to dense
    rng = np.random.default_rng(1)
    y = _random_state(system, rng)
    vext = np.append(0.0, y[: system.n_v])
    base = solver.base(mode, a)[0]
    _, j_nl = system.nonlinear.evaluate(vext, mode)
    data = base + j_nl
    factors = solver._factor(data, base, (mode, a))
    full = system.pattern.matrix(data).tocsc()
    for _ in range(3):
        b = rng.normal(size=system.size)
        exact = spla.spsolve(full, b)
        assert np.allclose(factors.solve(b), exact, rtol=1e-10, atol=1e-12 * np.abs(exact).max())


def test_retargeted_and_relinearised_factors_are_exact_when_the_kept_part_is(tmp_path):
    # no capacitor on kept nodes and devices below threshold: the reduced matrix does not depend on a
    text = MIXED.replace("capacitor c1 (b, 0) 1p\n", "")
    system = MnaSystem(_load(tmp_path, text))
    assert not system.condensation.c_reduced
    solver = Solver(system, dense=False)            # the condensed (sparse) path
    y = np.zeros(system.size)
    for blk in system.condensation.blocks:
        y[blk["s"]] = 0.4
    vext = np.append(0.0, y[: system.n_v])            # all voltages 0: df/dv = 0 at every device
    _, j_nl = system.nonlinear.evaluate(vext, "tran")
    base1 = solver.base("tran", 2e9)[0]
    factors = solver._factor(base1 + j_nl, base1, ("tran", 2e9))
    base2 = solver.base("tran", 3e10)[0]
    moved = factors.retarget(base2, ("tran", 3e10))
    assert moved.lu is factors.lu                    # no new factorisation
    b = np.random.default_rng(2).normal(size=system.size)
    exact = spla.spsolve(system.pattern.matrix(base2 + j_nl).tocsc(), b)
    assert np.allclose(moved.solve(b), exact, rtol=1e-12, atol=1e-14)
    again = moved.relinearized(base2 + j_nl, base2)
    assert np.allclose(again.solve(b), exact, rtol=1e-12, atol=1e-14)


def test_states_shared_with_other_elements_are_not_condensed(tmp_path):
    system = MnaSystem(_load(tmp_path, MIXED))
    stamps = [s for s in system.nonlinear.stamps if isinstance(s, DeviceStamp)]
    x_m1 = stamps[0].terms[2:].ravel() if stamps[0].model is Vteam else stamps[1].terms[2:].ravel()
    terms = np.concatenate([s.terms.ravel() for s in system.nonlinear.stamps])
    # pretend a linear element connects the VTEAM state to something else
    cond = Condensation.build(system, stamps, np.array([x_m1[0], 0]), terms)
    assert x_m1[0] in cond.keep
    assert cond.n_keep == system.size - 2
    # and a state used as another device's terminal
    cond = Condensation.build(system, stamps, np.empty(0, np.int64), np.concatenate([terms, x_m1]))
    assert x_m1[0] in cond.keep


def test_engine_results_do_not_depend_on_condensation(tmp_path, monkeypatch):
    c = _load(tmp_path, MIXED)
    # the sparse path (chord iterations across steps); small systems otherwise take the dense path, which
    # refreshes the Jacobian per solve (tests/test_behavioural_dense.py)
    monkeypatch.setattr(newton_mod, "DENSE_MAX", 0)
    fast = engine_mod.simulate(c)
    assert fast.meta["linear_solver"] == "sparse LU"
    # chord iterations reuse factors (variable steps with c1 on a kept node need one per step size)
    assert fast.meta["factorizations"] < fast.meta["newton_iterations"] / 3
    monkeypatch.setattr(Condensation, "build", classmethod(lambda cls, *a: None))
    plain = engine_mod.simulate(c)
    for name in fast.signals:
        ref = np.asarray(plain[name])
        assert np.allclose(fast[name], ref, rtol=1e-6, atol=1e-9 * max(np.abs(ref).max(), 1e-3)), name


def test_crossbar_programming_reuses_factors_and_matches_without_condensation(tmp_path, monkeypatch):
    c = _load(tmp_path, _crossbar(6))
    fast = engine_mod.simulate(c)
    steps = fast.meta["steps"]
    assert fast.meta["factorizations"] <= 5
    assert fast.meta["newton_iterations"] < 3 * (steps + fast.meta["rejected_steps"])   # chord solves
    monkeypatch.setattr(Condensation, "build", classmethod(lambda cls, *a: None))
    plain = engine_mod.simulate(c)
    for name in fast.signals:
        ref = np.asarray(plain[name])
        scale = np.sqrt(np.mean(ref ** 2)) or 1.0
        assert np.sqrt(np.mean((np.asarray(fast[name]) - ref) ** 2)) <= 1e-7 * scale, name


def test_extrapolate_is_exact_on_polynomials_and_constants():
    t = [0.0, 1e-9, 1.7e-9]
    poly = lambda s: np.array([3.0 - 2e9 * s + 5e17 * s * s, 0.1 + 1e8 * s])  # noqa: E731
    pts = [(tk, poly(tk)) for tk in t]
    assert np.allclose(extrapolate(pts, 2.9e-9), poly(2.9e-9), rtol=1e-12)
    assert np.allclose(extrapolate(pts[1:], 2.9e-9)[1], poly(2.9e-9)[1], rtol=1e-12)   # linear: 2 points
    const = [(tk, np.array([1.0, 0.3])) for tk in t]
    assert np.all(extrapolate(const, 2.3e-9) == np.array([1.0, 0.3]))                 # bit for bit


def _ramp_ref(u, d):
    return np.where(u <= 0, 0.0, np.where(u < d, 2 * u * u / d - u ** 3 / (d * d), u))


def _taper_ref(u, d):
    s = u / d
    return np.where(u <= 0, 0.0, np.where(u < d, s * s * (3 - 2 * s), 1.0))


def test_switching_functions_match_their_branch_definitions():
    d = 2e-3
    u = np.concatenate([np.linspace(-3 * d, 3 * d, 1001), [0.0, d, -d, 1e-300, d * (1 - 1e-15), 5.0, -5.0]])
    assert np.allclose(ramp(u, d), _ramp_ref(u, d), rtol=1e-13, atol=1e-18)
    assert np.allclose(taper(u, d), _taper_ref(u, d), rtol=1e-13, atol=1e-18)
    assert np.all(ramp(u[u <= 0], d) == 0.0) and np.all(ramp(u[u >= d], d) == u[u >= d])
    assert np.all(taper(u[u <= 0], d) == 0.0) and np.all(taper(u[u >= d], d) == 1.0)
    dd = np.full(u.shape, 0.01)                         # per-element widths
    assert np.allclose(ramp(u, dd), _ramp_ref(u, dd), rtol=1e-13, atol=1e-18)


def _vteam_rate_ref(v, x, p):
    off = p.koff * (_ramp_ref(v - p.voff, p.vblend) / p.voff) ** p.alphaoff \
        * np.exp(-np.exp((x - p.aoff) / p.wc)) * _taper_ref(1 - x, p.xedge)
    on = p.kon * (_ramp_ref(p.von - v, p.vblend) / -p.von) ** p.alphaon \
        * np.exp(-np.exp(-(x - p.aon) / p.wc)) * _taper_ref(x, p.xedge)
    return np.where(v > p.voff, off, 0.0) + np.where(v < p.von, on, 0.0)


@pytest.mark.parametrize("overrides", [{}, {"alphaon": 2.5, "alphaoff": 2.0, "iv": 1.0},
                                       {"alphaon": 1.0, "alphaoff": 3.0}])
def test_vteam_rate_on_active_subset_matches_the_full_formula(overrides):
    rng = np.random.default_rng(4)
    n = 400
    v = np.concatenate([rng.uniform(-0.5, 1.5, n - 8), [0.02, 0.021, 0.0205, -0.2, -0.201, -0.2005, 0.0, 2.0]])
    x = rng.uniform(-0.05, 1.05, v.size)
    p = Vteam.resolve({**overrides, "x0": rng.uniform(0, 1, v.size)}, n=v.size)
    got = Vteam.dxdt(v, x[None], p)
    assert got.shape == (1, v.size)
    ref = _vteam_rate_ref(v, x, p)
    assert np.allclose(got[0], ref, rtol=1e-12, atol=0.0)
    assert np.all(got[0][(v <= p.voff) & (v >= p.von)] == 0.0)
    r = p.ron * np.exp(np.log(p.roff / p.ron) * x) if p.iv > 0.5 else p.ron + (p.roff - p.ron) * x
    assert np.allclose(Vteam.current(v, x[None], p), v / r, rtol=1e-14)
