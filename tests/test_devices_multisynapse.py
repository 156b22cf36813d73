"""Multi-mechanism synapse: bounds by the equations, paired-pulse closed form, exact decay,
meta-plastic learning rate, and both engines through the characterisation protocols."""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.devices import get_model
from circuitkit.workloads.characterise import Device, Pulses, characterise, decay, meta, ppf

SYN = get_model("multisynapse")


def rates(v, s, l=0.0, h=0.0, **overrides):
    v = np.atleast_1d(np.asarray(v, dtype=float))
    x = np.stack([np.broadcast_to(np.asarray(a, dtype=float), v.shape) for a in (s, l, h)])
    return SYN.dxdt(v, x, SYN.resolve(overrides))


def test_states_cannot_leave_zero_one_by_their_equations():
    v = np.linspace(-3, 3, 121)
    # at the lower bound no rate is negative, at the upper bound none is positive, for any drive
    assert np.all(rates(v, 0.0, 0.0, 0.0) >= 0)
    hi = rates(v, 1.0, 1.0, 1.0)
    assert np.all(hi <= 0)


def test_below_threshold_nothing_grows_and_s_decays_with_its_time_constant():
    p = SYN.resolve()
    v = np.linspace(-p.vthd, p.vth, 51)
    f = rates(v, 0.25, 0.2, 0.0)
    assert f[0] == pytest.approx(np.full(v.shape, -0.25 / p.tau_s), rel=1e-12)
    assert np.all(f[1] == 0.0)                       # s below sth: no consolidation, no depression
    f = rates(0.0, 0.4, 0.2, 0.5)
    assert f[0, 0] == pytest.approx(-0.4 / (p.tau_s * (1 + p.nu * 0.5)), rel=1e-12)   # meta: slower decay


def test_meta_trace_damps_consolidation():
    k0 = rates(0.0, 0.8, 0.1, 0.0)[1, 0]
    k1 = rates(0.0, 0.8, 0.1, 1.0)[1, 0]
    p = SYN.resolve()
    assert k0 == pytest.approx(p.kl * (0.8 - p.sth) * 0.9, rel=1e-12)
    assert k1 == pytest.approx(k0 * (1 - p.mu), rel=1e-12)


def _closed_form_ppf(gaps, pulses: Pulses, **prm):
    """PPF = 1 + D/(G0 + D) exp(-gap/tau - k w) for the linear short-term regime (nu = 0, kl = 0)."""
    p = SYN.resolve(prm)
    a = p.ks * (pulses.amplitude - p.vth)
    k = a + 1 / p.tau_s
    s1 = a / k * (1 - np.exp(-k * pulses.width))
    d = p.gs * s1 * np.exp(-pulses.delay / p.tau_s)
    return 1 + d / (p.gmin + d) * np.exp(-np.asarray(gaps) / p.tau_s - k * pulses.width)


LINEAR = {"nu": 0.0, "kl": 0.0}


@pytest.mark.spice
def test_paired_pulse_ratio_matches_closed_form_in_both_engines():
    pulses = Pulses(amplitude=1.5, width=100e-9, edge=0.1e-9, delay=20e-9)
    gaps = [50e-9, 300e-9, 1.5e-6]
    expected = _closed_form_ppf(gaps, pulses, **LINEAR)
    assert np.all(np.diff(expected) < 0) and expected[0] > 1.2       # a real facilitation that decays
    for engine in ("behavioural", "spice"):
        got = ppf(Device("multisynapse", LINEAR), gaps, pulses, engine)["ppf"].to_numpy()
        assert got - 1 == pytest.approx(expected - 1, rel=5e-3), engine


def test_decay_after_a_train_is_exponential_with_tau_s():
    # nu = 0, kl = 0: after the train only -s/tau_s acts, so G(t) = G0 + A exp(-t/tau_s) exactly
    tau = 1e-6
    table, fit = decay(Device("multisynapse", {**LINEAR, "tau_s": tau}), n_pulses=3, duration=6e-6,
                       pulses=Pulses(edge=0.5e-9))
    assert fit["tau"] == pytest.approx(tau, rel=1e-2)
    assert fit["g_inf"] == pytest.approx(SYN.resolve().gmin * 0.5 * np.sinh(0.1 / 0.5) / 0.1, rel=1e-2)


def test_priming_lowers_the_long_term_learning_rate():
    # nu = 0: the meta trace only damps consolidation by (1 - mu h), so more priming, less long-term change
    t = meta(Device("multisynapse", {"nu": 0.0}), priming=(0, 10, 30), n_test=5)
    dg = t["dg"].to_numpy()
    assert dg[0] > 0 and np.all(np.diff(dg) < 0)
    assert dg[-1] < 0.9 * dg[0]


@pytest.mark.spice
def test_engines_agree_within_one_percent_on_ltp():
    r = characterise(Device("multisynapse"), "ltp", engines=("behavioural", "spice"), n_pot=4, n_dep=3,
                     settle=3e-6)
    g = r.tables["behavioural"]["g"].to_numpy()
    assert np.all(np.diff(g[:5]) > 0) and np.all(np.diff(g[4:]) < 0)    # potentiation, then depression
    assert r.agreement < 1e-2
