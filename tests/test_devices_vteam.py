"""VTEAM twin: thresholds, windows, bounds, I–V options and the pinched loop (numpy only)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from circuitkit.devices import get_model

VTEAM = get_model("vteam")


def rate(v, x, **overrides):
    v = np.atleast_1d(np.asarray(v, dtype=float))
    x = np.broadcast_to(np.asarray(x, dtype=float), v.shape)[None, :]
    return VTEAM.dxdt(v, x, VTEAM.resolve(overrides))[0]


def test_no_motion_between_thresholds():
    p = VTEAM.resolve()
    v = np.linspace(p.von, p.voff, 201)
    for x in (0.0, 0.3, 1.0):
        assert np.all(rate(v, x) == 0.0)


def test_published_law_holds_beyond_the_blend():
    p = VTEAM.resolve()
    x = 0.5
    v_off, v_on = 0.5, -0.6
    f_off = np.exp(-np.exp((x - p.aoff) / p.wc))
    f_on = np.exp(-np.exp(-(x - p.aon) / p.wc))
    assert rate(v_off, x)[0] == pytest.approx(p.koff * (v_off / p.voff - 1) ** p.alphaoff * f_off, rel=1e-12)
    assert rate(v_on, x)[0] == pytest.approx(p.kon * (v_on / p.von - 1) ** p.alphaon * f_on, rel=1e-12)


@pytest.mark.parametrize("threshold", ["voff", "von"])
def test_threshold_is_continuously_differentiable(threshold):
    p = VTEAM.resolve()
    vt = p[threshold]
    sign = 1.0 if threshold == "voff" else -1.0
    # sample across the whole blend; slopes between neighbours must change gradually
    v = vt + sign * np.linspace(-p.vblend, 2 * p.vblend, 3001)
    r = rate(v, 0.5)
    slope = np.diff(r) / np.diff(v)
    assert np.max(np.abs(np.diff(slope))) < 0.01 * np.max(np.abs(slope))
    assert r[0] == 0 and abs(r[-1]) > 0


def test_state_cannot_leave_its_bounds():
    assert rate(1.0, 1.0)[0] == 0.0 and rate(1.0, 1.02)[0] == 0.0    # OFF drive at/after x = 1
    assert rate(-1.0, 0.0)[0] == 0.0 and rate(-1.0, -0.02)[0] == 0.0  # ON drive at/after x = 0
    assert rate(1.0, 0.0)[0] > 0 and rate(-1.0, 1.0)[0] < 0            # but leaves a bound freely


@pytest.mark.parametrize("iv", [0, 1])
def test_iv_ends_are_ron_and_roff(iv):
    p = VTEAM.resolve({"iv": iv})
    v = np.array([0.1, 0.1])
    r = v / VTEAM.current(v, np.array([[0.0, 1.0]]), p)
    assert r == pytest.approx([p.ron, p.roff], rel=1e-12)


def test_exponential_iv_is_geometric_midway():
    p = VTEAM.resolve({"iv": 1})
    r_mid = 0.1 / VTEAM.current(np.array([0.1]), np.array([[0.5]]), p)[0]
    assert r_mid == pytest.approx(np.sqrt(p.ron * p.roff), rel=1e-12)


def test_parameters_vectorise_per_device():
    v = np.array([0.5, 0.5, -0.5])
    x = np.array([[0.2, 0.2, 0.7]])
    p = VTEAM.resolve({"x0": np.array([0.2, 0.4, 0.7])})
    f = VTEAM.state_derivative(v, x, p)
    one = [VTEAM.state_derivative(v[k:k + 1], x[:, k:k + 1], VTEAM.resolve({"x0": x0}))[0, 0]
           for k, x0 in enumerate([0.2, 0.4, 0.7])]
    assert f.shape == (1, 3) and f[0] == pytest.approx(one, rel=1e-12)


def sine_through_resistor(freq, periods=2, amp=1.0, rs=100.0, x0=0.5):
    """Integrate the twin in the vteam_sine testbench circuit (linear I–V: v_dev explicit)."""
    p = VTEAM.resolve({"x0": x0})

    def vdev(t, x):
        r = VTEAM.resistance(x, p)
        return amp * np.sin(2 * np.pi * freq * t) * r / (r + rs)

    def rhs(t, x):
        return VTEAM.state_derivative(np.atleast_1d(vdev(t, x[0])), x.reshape(1, 1), p)[:, 0]

    t = np.linspace(0, periods / freq, 4001)
    sol = solve_ivp(rhs, (t[0], t[-1]), [x0], t_eval=t, method="LSODA", rtol=1e-8, atol=1e-10,
                    max_step=1 / freq / 500)
    x = sol.y[0]
    v = vdev(t, x)
    return t, v, VTEAM.current(v, x[None, :], p), x


def loop_area(v, i):
    """|closed integral of i dv| over the last period (the shoelace formula)."""
    return 0.5 * abs(np.sum(v[:-1] * i[1:] - v[1:] * i[:-1]))


def test_sine_drive_gives_a_pinched_loop_that_shrinks_with_frequency():
    areas = []
    for freq in (1e4, 1e5, 1e6):
        t, v, i, x = sine_through_resistor(freq)
        last = t >= t[-1] / 2
        assert np.all((x >= -1e-9) & (x <= 1 + 1e-9))
        near_zero = np.abs(v) < 1e-3
        assert np.all(np.abs(i[near_zero]) <= np.abs(v[near_zero]) / VTEAM.resolve().ron + 1e-15)
        if freq == 1e4:
            assert x[last].max() > 0.99 and x[last].min() < 0.01     # full, visible switching at 10 kHz
        areas.append(loop_area(v[last], i[last]))
    assert areas[0] > areas[1] > areas[2] > 0
    assert areas[2] < 0.1 * areas[0]


@pytest.mark.spice
def test_state_holds_at_operating_point_with_drive_at_t0(tmp_path):
    """A drive already non-zero at t = 0: the transient starts from x0 in both engines."""
    from circuitkit.engines import simulate
    from circuitkit.workflow import load
    desc = tmp_path / "dc.xbar"
    desc.write_text('title "vteam dc drive"\nsource v1 (in, 0) dc(0.5)\nresistor rs (in, a) 100\n'
                    'device m1 (a, 0) vteam(x0 = 0.5)\nanalysis tran(step = 1u, stop = 50u)\nrecord x(m1), i(m1)\n')
    _, circuit = load(desc)
    spice, beh = simulate(circuit, "spice"), simulate(circuit, "behavioural")
    assert abs(spice["x(m1)"][0] - 0.5) < 1e-9 and abs(beh["x(m1)"][0] - 0.5) < 1e-9
    assert spice["x(m1)"][-1] > 0.51                       # and then it switches towards OFF
    t = spice.time
    np.testing.assert_allclose(np.interp(t, beh.time, beh["x(m1)"]), spice["x(m1)"], atol=5e-3)


def test_read_conductance_is_the_inverse_resistance_of_the_linear_iv():
    m = get_model("vteam")
    p = m.resolve({"ron": 10e3, "roff": 100e3})
    x = np.linspace(0, 1, 12).reshape(3, 4)
    g = m.read_conductance(0.1, x, p)
    assert g.shape == (3, 4)
    np.testing.assert_allclose(g, 1.0 / (10e3 + 90e3 * x), rtol=1e-12)
