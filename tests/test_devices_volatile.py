"""Volatile memristor: relaxation with tau, paired-pulse facilitation, consolidation, both engines.

Circuits are small descriptions run through the behavioural engine and,
where marked, ngspice (helpers from ``tests/test_devices_stanford.py``).
Conductance is read as i/v while the drive rests at a 0.1 V read level,
below the threshold, where the device only relaxes.
"""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.devices import get_model
from circuitkit.errors import CircuitkitError
from devicekit import cosimulate, rel_rms

VOL = get_model("volatile")
READ = 0.1


def rates(v, w, m=0.0, **overrides):
    v = np.atleast_1d(np.asarray(v, dtype=float))
    x = np.stack([np.broadcast_to(np.asarray(w, dtype=float), v.shape),
                  np.broadcast_to(np.asarray(m, dtype=float), v.shape)])
    return VOL.dxdt(v, x, VOL.resolve(overrides))


# ---------------------------------------------------------------------------
# the twin alone
# ---------------------------------------------------------------------------

def test_below_threshold_w_only_relaxes_and_m_holds():
    p = VOL.resolve({"wrest": 0.1, "klt": 1e6})
    v = np.linspace(-p.vth, p.vth, 101)
    f = rates(v, 0.6, 0.3, wrest=0.1, klt=1e6)
    assert f[0] == pytest.approx(np.full(v.shape, -(0.6 - 0.1) / p.tau), rel=1e-12)
    assert np.all(rates(v, 0.2, 0.3, klt=1e6)[1] == 0.0)          # w below wth: no consolidation
    assert np.all(rates(v, 0.2, 0.3, klt=0.0)[1] == 0.0)


def test_drive_grows_w_for_either_polarity_and_stops_at_one():
    p = VOL.resolve()
    up, down = rates([1.0, -1.0], 0.3)[0]
    assert up == pytest.approx(p.kw * (1.0 - p.vth) - 0.3 / p.tau, rel=1e-12) and up == down
    assert rates(1.0, 1.0)[0, 0] == pytest.approx(-1.0 / p.tau)    # at w = 1 only the relaxation acts
    assert rates(3.0, 1.0)[0, 0] < 0


def test_consolidation_saturates_at_one():
    assert rates(0.0, 0.8, 0.5, klt=1e6)[1, 0] == pytest.approx(1e6 * (0.8 - 0.3) * 0.5, rel=1e-12)
    assert rates(0.0, 0.8, 1.0, klt=1e6)[1, 0] == 0.0


def test_conductance_adds_both_states():
    p = VOL.resolve()
    g = VOL.current(np.full(3, READ), np.array([[0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]), p) / READ
    assert g == pytest.approx([p.gmin, p.gmax, p.gmin + 0.5 * (p.gmax - p.gmin) + p.glt], rel=1e-12)


def test_bad_parameter_is_reported_by_name(tmp_path):
    path = tmp_path / "bad.xbar"
    path.write_text('title "bad"\nsource vin (a, 0) 0.1\ndevice m1 (a, 0) volatile(tau = -1u)\n'
                    'analysis op()\nrecord i(m1)\n')
    from circuitkit.workflow import load
    with pytest.raises(CircuitkitError, match="tau"):
        load(path)


# ---------------------------------------------------------------------------
# circuits
# ---------------------------------------------------------------------------

def _description(wave: str, stop: float, step: str, **params) -> str:
    args = ", ".join(f"{k} = {v:g}" for k, v in params.items())
    return f"""title "volatile memristor"
source vin (a, 0) {wave}
device m1  (a, 0) volatile({args})
analysis tran(stop = {stop * 1e9:.6g}n, step = {step})
record v(a), i(m1), w(m1), m(m1)
"""


def _pulses(times_on: list[float], width=100e-9, edge=5e-9, amp=1.0, stop=None) -> tuple[str, float]:
    """A PWL at the read level with pulses to ``amp`` starting at ``times_on``."""
    t, v = [0.0], [READ]
    for t0 in times_on:
        t += [t0, t0 + edge, t0 + edge + width, t0 + 2 * edge + width]
        v += [READ, amp, amp, READ]
    stop = stop or t[-1] + 1e-6
    t.append(stop)
    v.append(READ)
    wave = "pwl(times = [" + ", ".join(f"{x * 1e9:.6g}n" for x in t) + "], values = [" \
        + ", ".join(f"{x:g}" for x in v) + "])"
    return wave, stop


def conductance(t, sig):
    return sig["i(m1)"] / sig["v(a)"]


@pytest.mark.spice
def test_conductance_relaxes_with_the_configured_tau(tmp_path):
    tau, wrest = 300e-9, 0.1
    wave, stop = _pulses([100e-9], stop=1.3e-6)
    text = _description(wave, stop, "2n", tau=tau, wrest=wrest, w0=wrest)
    p = VOL.resolve({"tau": tau, "wrest": wrest})
    g_rest = p.gmin + (p.gmax - p.gmin) * wrest
    end = 100e-9 + 2 * 5e-9 + 100e-9
    for engine, (t, sig) in cosimulate(text, tmp_path).items():
        g = conductance(t, sig)
        assert g[0] == pytest.approx(g_rest, rel=1e-9), engine       # started at rest
        assert g.max() > 1.5 * g_rest, engine                          # the pulse really potentiated
        fit = (t > end + 20e-9) & (t < end + 3 * tau)
        slope, _ = np.polyfit(t[fit], np.log(g[fit] - g_rest), 1)
        assert -1 / slope == pytest.approx(tau, rel=0.02), engine
        assert g[-1] - g_rest < 0.05 * (g.max() - g_rest), engine     # and it came back to rest


def _peak_after_second(gap: float) -> tuple[float, float, float]:
    """Conductance just after the first and the second of two pulses ``gap`` apart, and their spacing."""
    from circuitkit.engines import simulate
    from circuitkit.workflow import load
    import tempfile
    from pathlib import Path

    first, width, edge = 100e-9, 50e-9, 5e-9
    second = first + width + 2 * edge + gap
    wave, stop = _pulses([first, second], width=width, stop=second + width + 2 * edge + 50e-9)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ppf.xbar"
        path.write_text(_description(wave, stop, "2n"))
        wf = simulate(load(path)[1], "behavioural")
    t, g = wf.time, np.asarray(wf["i(m1)"]) / np.asarray(wf["v(a)"])
    read_after = lambda t_end: float(np.interp(t_end + 5e-9, t, g))   # noqa: E731
    return read_after(first + width + 2 * edge), read_after(second + width + 2 * edge), second - first


def test_paired_pulses_closer_in_time_facilitate_more():
    p = VOL.resolve()
    responses = [_peak_after_second(gap) for gap in (100e-9, 500e-9, 3e-6)]
    firsts = [r[0] for r in responses]
    seconds = [r[1] for r in responses]
    # identical first pulses (to the error-controlled integration: the step sequences differ with the stop time)
    assert firsts == pytest.approx([firsts[0]] * 3, rel=1e-3)
    assert seconds[0] > seconds[1] > seconds[2]                      # facilitation decays with the gap
    assert seconds[0] - p.gmin > 1.3 * (firsts[0] - p.gmin)          # strong at 100 ns
    # below w = 1 - wedge, w obeys a linear equation: the second response is the first plus
    # what is left of the first, decayed over the pulse spacing
    for first, second, spacing in responses:
        expected = (first - p.gmin) * (1 + np.exp(-spacing / p.tau))
        assert second - p.gmin == pytest.approx(expected, rel=0.01)


@pytest.mark.slow
def test_long_train_leaves_a_persistent_change_only_with_consolidation():
    from circuitkit.engines import simulate
    from circuitkit.workflow import load
    import tempfile
    from pathlib import Path

    starts = [100e-9 + k * 200e-9 for k in range(10)]
    wave, stop = _pulses(starts, stop=starts[-1] + 210e-9 + 5e-6)
    out = {}
    for klt in (0.0, 2e6):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ltp.xbar"
            path.write_text(_description(wave, stop, "5n", klt=klt))
            wf = simulate(load(path)[1], "behavioural")
        out[klt] = (np.asarray(wf["i(m1)"]) / np.asarray(wf["v(a)"]), np.asarray(wf["w(m1)"]),
                    np.asarray(wf["m(m1)"]))
    p = VOL.resolve()
    for klt, (g, w, m) in out.items():
        assert w.max() > 0.5 and w[-1] < 0.01 * w.max()        # the volatile part built up and relaxed
    g0, _, m0 = out[0.0]
    g1, _, m1 = out[2e6]
    assert np.all(m0 == 0.0)
    assert g0[-1] - p.gmin < 0.01 * (g0.max() - p.gmin)      # without consolidation nothing is left
    # m only grows (to the engine's Newton tolerance, reltol 1e-9: a settled state carries ~1e-9 relative noise)
    assert m1[-1] > 0.2 and np.all(np.diff(m1) >= -1e-9 * m1.max())
    assert g1[-1] - g0[-1] == pytest.approx(p.glt * m1[-1], rel=1e-6)   # what is left is m's share
    assert g1[-1] > p.gmin + 0.1 * (p.gmax - p.gmin)


# ---------------------------------------------------------------------------
# both engines
# ---------------------------------------------------------------------------

@pytest.mark.spice
@pytest.mark.parametrize("kind", ["sine", "pulses"])
def test_behavioural_matches_spice(tmp_path, kind):
    if kind == "sine":
        text = _description("sine(amplitude = 1, freq = 1meg)", 3e-6, "5n", klt=2e6, w0=0.2)
    else:
        text = _description("pulse(v1 = 0.1, v2 = 1, delay = 100n, rise = 5n, width = 100n, period = 300n)",
                            1.5e-6, "2n", klt=2e6)
    runs = cosimulate(text, tmp_path)
    t_ref, ref = runs["spice"]
    t_beh, beh = runs["behavioural"]
    for name in ("i(m1)", "w(m1)", "m(m1)"):
        err = rel_rms(t_ref, ref[name], t_beh, beh[name])
        assert err <= 0.01, (name, err)
    assert np.ptp(ref["w(m1)"]) > 0.3 and ref["m(m1)"].max() > 0.05    # both states really moved
    for engine, (_, sig) in runs.items():
        assert np.all((sig["w(m1)"] > -1e-6) & (sig["w(m1)"] < 1 + 1e-6)), engine
        assert np.all((sig["m(m1)"] > -1e-9) & (sig["m(m1)"] < 1 + 1e-9)), engine
