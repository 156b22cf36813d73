"""Simplified VCM model: published behaviour of VCM cells (ultra-nonlinear kinetics, abrupt SET /
gradual RESET from Joule heating), bounds, time rescaling by the rate constants, and both engines.

Expected values are closed forms of the model equations (with the heating switched off where the
closed form needs it) or exact integrations of the twin (``solve_ivp``, tight tolerances).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from circuitkit.devices import get_model
from circuitkit.errors import ParameterError
from devicekit import check_scalar_kernel, cosimulate, rate as _rate, rel_rms

VCM = get_model("vcm")


def rate(v, x, **overrides):
    return _rate(VCM, v, x, **overrides)


def drive(v, t_end, x0, **overrides):
    """Exact integration of the twin under a constant voltage ``v``; returns the dense solution."""
    p = VCM.resolve({"x0": x0, **overrides})
    sol = solve_ivp(lambda t, x: VCM.state_derivative(np.array([v]), x.reshape(1, 1), p)[:, 0],
                    (0, t_end), [x0], method="LSODA", rtol=1e-10, atol=1e-12, dense_output=True)
    assert sol.success, sol.message
    return sol


def test_conductance_bounds_and_iv_closed_form():
    p = VCM.resolve()
    v = np.array([0.1, 0.1, -0.1])
    i = VCM.current(v, np.array([[0.0, 1.0, 1.0]]), p)
    nl = p.vnl / 0.1 * np.sinh(0.1 / p.vnl)          # G vnl sinh(v/vnl)/v
    assert i / v == pytest.approx([p.goff * nl, p.gon * nl, p.gon * nl], rel=1e-12)
    g = VCM.read_conductance(1e-6, np.array([0.0, 0.5, 1.0]), p)
    assert g == pytest.approx([p.goff, np.sqrt(p.goff * p.gon), p.gon], rel=1e-9)   # log-linear in x


def test_no_motion_without_drive_and_negligible_read_disturb():
    p = VCM.resolve()
    x = np.linspace(0, 1, 11)
    assert np.all(rate(np.zeros(x.shape), x) == 0.0)
    # a 1 us read at 0.2 V: |dx| <= kset heat sinh(0.2/vset) 1us, heat bounded by its value at gon
    bound = p.kset * VCM.heat(np.array([0.2]), np.array([[1.0]]), p)[0] * np.sinh(0.2 / p.vset) * 1e-6
    assert bound < 1e-3
    sol = drive(0.2, 1e-6, 0.5)
    assert 0 < sol.y[0, -1] - 0.5 <= bound


def test_ultra_nonlinear_switching_kinetics():
    """Without heating the SET time between two states is (b - a)/(kset sinh(v/vset)) exactly
    (inside the bounds' tapers); it falls by ~exp(0.2 V/vset) per 200 mV (Menzel et al. 2011)."""
    p = VCM.resolve()
    times = {}
    for v in (0.9, 1.1):
        sol = drive(v, 1e-3, 0.1, rth=0.0)
        t = np.logspace(-10, -3, 20001)
        x = sol.sol(t)[0]
        times[v] = t[np.argmax(x >= 0.6)]
        assert times[v] == pytest.approx(0.5 / (p.kset * np.sinh(v / p.vset)), rel=2e-3)
    assert times[0.9] / times[1.1] == pytest.approx(np.sinh(1.1 / p.vset) / np.sinh(0.9 / p.vset), rel=5e-3)
    assert times[0.9] / times[1.1] > 30     # ~e^4: well over a decade per 0.2 V
    # and the half-select bias of the V/3 scheme (0.4 V for a -1.2 V pulse) is ~1e7 times slower
    assert rate(0.4, 0.5)[0] < 1e-6 * rate(1.2, 0.5)[0]


def test_set_self_accelerates_and_reset_self_limits():
    p = VCM.resolve()
    x = np.linspace(0.05, 0.95, 19)
    s = rate(np.full(x.shape, 1.0), x)
    r = rate(np.full(x.shape, -1.2), x)
    assert np.all(np.diff(s) > 0)                 # SET: faster the closer to LRS (hotter)
    assert np.all(r < 0) and np.all(np.diff(-r) > 0)   # RESET: slower as the disc empties
    # the acceleration is the Arrhenius factor of the Joule heating, closed form
    i = VCM.current(np.array([1.0]), np.array([[0.9]]), p)[0]
    temp = p.t0 + p.rth * 1.0 * i
    heat = np.exp(p.ea / (1.380649e-23 * p.t0 / 1.602176634e-19) - p.ea / (1.380649e-23 * temp / 1.602176634e-19))
    assert rate(1.0, 0.9)[0] == pytest.approx(p.kset * heat * np.sinh(1.0 / p.vset), rel=1e-12)
    assert heat > 3
    # without heating the rate is state-independent inside the tapers
    flat = rate(np.full(x.shape, 1.0), x, rth=0.0)
    assert np.ptp(flat) == pytest.approx(0.0, abs=1e-9 * flat[0])


def test_set_is_abrupt_and_reset_gradual():
    """Time from 10 % to 90 % of the full swing over the time to 10 %: SET (self-accelerating)
    completes quickly once started, RESET (self-limiting) takes many times longer."""
    def spread(v, x0, t_end):
        sol = drive(v, t_end, x0)
        t = np.logspace(np.log10(t_end) - 5, np.log10(t_end), 20001)
        moved = np.abs(sol.sol(t)[0] - x0)
        return t[np.argmax(moved >= 0.9)] / t[np.argmax(moved >= 0.1)]
    assert spread(1.0, 0.0, 1e-5) < 8 < 20 < spread(-1.2, 1.0, 1e-4)


def test_states_are_bounded_by_the_equations():
    assert rate(1.5, 1.0)[0] == 0.0 and rate(-1.5, 0.0)[0] == 0.0      # SET stops at LRS, RESET at HRS
    assert rate(1.5, 0.0)[0] > 0 and rate(-1.5, 1.0)[0] < 0            # each bound is left freely
    assert rate(1.5, 1.02)[0] < 0 and rate(-1.5, -0.02)[0] > 0         # a state past a bound is driven back
    sol = drive(1.5, 1e-5, 0.0)
    assert np.all(sol.y[0] <= 1.0 + 1e-9) and sol.y[0, -1] > 0.99


def test_rate_constant_factor_rescales_time():
    """The basis of the c2c mechanism: a factor F on kset and kreset maps x(t) to x(F t)."""
    f = 1.37
    p = VCM.resolve()
    for v, x0 in ((1.0, 0.2), (-1.2, 0.8)):
        ref = drive(v, 1e-6, x0)
        fast = drive(v, 1e-6 / f, x0, kset=p.kset * f, kreset=p.kreset * f)
        t = np.linspace(0, 1e-6 / f, 50)
        np.testing.assert_allclose(fast.sol(t)[0], ref.sol(f * t)[0], atol=1e-7)


def test_gradual_response_to_identical_pulses():
    """Identical RESET pulses lower the state step by step, by less each time (self-limiting)."""
    x, steps = 1.0, []
    for _ in range(8):
        new = drive(-1.2, 50e-9, x).y[0, -1]
        steps.append(x - new)
        x = new
    assert np.all(np.array(steps) > 0) and np.all(np.diff(steps) < 0)
    assert 0.01 < steps[-1] < steps[0] < 0.3


def test_bad_parameters_are_named():
    with pytest.raises(ParameterError, match="'gon'"):
        VCM.resolve({"gon": -1e-4})
    with pytest.raises(ParameterError, match="'x0'"):
        VCM.resolve({"x0": 1.5})


# ---------------------------------------------------------------------------
# both engines
# ---------------------------------------------------------------------------

def _pulse_train(v_set=1.0, v_reset=-1.2, width=150e-9, edge=5e-9, gap=50e-9, cycles=2):
    t, v, now = [0.0], [0.0], 0.0
    for _ in range(cycles):
        for amp in (v_set, v_reset):
            now += gap
            t += [now, now + edge, now + edge + width, now + 2 * edge + width]
            v += [0.0, amp, amp, 0.0]
            now += 2 * edge + width
    t.append(now + gap)
    v.append(0.0)
    times = ", ".join(f"{x * 1e9:.6g}n" for x in t)
    values = ", ".join(f"{x:g}" for x in v)
    return f"""title "vcm SET/RESET pulse train"
source   vin (in, 0) pwl(times = [{times}], values = [{values}])
resistor rs  (in, a) 1k
device   m1  (a, 0)  vcm(x0 = 0)
analysis tran(stop = {t[-1] * 1e9:.6g}n, step = 1n)
record v(a), i(m1), x(m1)
"""


SINE = """title "vcm sine"
source   vin (in, 0) sine(amplitude = 1.4, freq = 1meg)
resistor rs  (in, a) 1k
device   m1  (a, 0)  vcm(x0 = 0)
analysis tran(stop = 2u, step = 2n)
record v(a), i(m1), x(m1)
"""


@pytest.mark.spice
@pytest.mark.parametrize("kind", ["pulses", "sine"])
def test_behavioural_matches_spice(tmp_path, kind):
    runs = cosimulate(_pulse_train() if kind == "pulses" else SINE, tmp_path)
    t_ref, ref = runs["spice"]
    t_beh, beh = runs["behavioural"]
    for name in ("i(m1)", "x(m1)"):
        err = rel_rms(t_ref, ref[name], t_beh, beh[name])
        assert err <= 0.01, (name, err)
    x = ref["x(m1)"]
    assert x.max() > 0.3 and x.max() - x[-1] > 0.05          # it SET and RESET
    for engine, (_, sig) in runs.items():
        assert np.all((sig["x(m1)"] > -0.011) & (sig["x(m1)"] < 1.011)), engine


FAST_SET = """title "vcm SET across a fast edge"
source   vin (in, 0) pwl(times = [0, {rise}, 30n], values = [0, {amp}, {amp}])
resistor rs  (in, a) 22
device   m1  (a, 0)  vcm(x0 = 0.5)
analysis tran(stop = 30n, step = 1n)
record v(a), i(m1), x(m1)
"""


@pytest.mark.spice
@pytest.mark.parametrize("amp, rise", [(1.45, "100p"), (1.35, "1n"), (1.5, "10p")])
def test_spice_completes_a_set_across_a_fast_edge(tmp_path, amp, rise):
    """These pulses stopped ngspice with "Timestep too small" at 0.64 of the edge (an unlimited Newton
    update overflowed the SET rate's sinh); the model's pnjlim limiting lets it finish, on the answer of
    the behavioural engine. 1.5 V in 10 ps still stopped it until the rate got its ceiling ``rmax``."""
    runs = cosimulate(FAST_SET.format(amp=amp, rise=rise), tmp_path)
    t_ref, ref = runs["spice"]
    t_beh, beh = runs["behavioural"]
    assert ref["x(m1)"][-1] > 0.99 and beh["x(m1)"][-1] > 0.99           # a full SET
    for name in ("i(m1)", "x(m1)"):
        assert rel_rms(t_ref, ref[name], t_beh, beh[name]) <= 0.01, name


@pytest.mark.spice
def test_spice_completes_a_fast_reset_at_minus_two_volts(tmp_path):
    """-2 V RESET pulses with 1 ns edges stopped ngspice ("Timestep too small") before the rate cap and
    the linear wall; now both engines finish, within the 1 % contract of each other."""
    runs = cosimulate(_pulse_train(v_set=1.2, v_reset=-2.0, edge=1e-9), tmp_path)
    t_ref, ref = runs["spice"]
    t_beh, beh = runs["behavioural"]
    for name in ("i(m1)", "x(m1)"):
        assert rel_rms(t_ref, ref[name], t_beh, beh[name]) <= 0.01, name
    assert ref["x(m1)"].max() > 0.99 and ref["x(m1)"][-1] < 0.01          # full SET, full RESET


def test_rate_has_a_ceiling_and_is_unchanged_well_below_it():
    """``ratecap``: r below rmax, rmax above (also for an overflowed sinh), so the step bound stays above
    ngspice's minimum step; at 1 V the cap changes the SET rate by less than 1e-12 relative."""
    p = VCM.resolve()
    v = np.array([1.0, 2.0, 5.0, 50.0])
    with np.errstate(over="ignore"):
        capped = rate(v, 0.5)
        uncapped = rate(v, 0.5, rmax=1e300)
    assert capped[0] == pytest.approx(uncapped[0], rel=1e-12)
    assert np.all(np.isfinite(capped)) and np.all(capped <= p.rmax * 1.0000001)
    assert capped[-1] == pytest.approx(p.rmax * 1.0, rel=1e-12)           # sinh(1000) overflows: rmax


@pytest.mark.spice
@pytest.mark.parametrize("drive, amplitude, step", [("sine", 2.0, 5e-5), ("sine", 1.0, 2e-4), ("dc", 2.0, 5e-7)])
def test_spice_runs_the_stress_drives_that_stopped_it(drive, amplitude, step):
    """``make models-stress`` drives (1 kHz, 100 Ohm, two periods): these stopped ngspice with "Timestep
    too small" (the SET rate at 2 V reached 1e16 /s and $bound_step asked for 1e-18 s steps; Newton on
    the state cycled between +-50 past the bounds). Now they finish with x in [0, 1]; the sines agree with
    ngspice at a 100x finer maximum step (the converged answer) to 1 % RMS on x."""
    from circuitkit.devices.probe import device_transient
    kw = dict(drive=drive, amplitude=amplitude, freq=1e3, rseries=100, stop=2e-3)
    out = device_transient(VCM, "ngspice", step=step, **kw)
    assert out["x"].min() >= -1e-9 and out["x"].max() <= 1 + 1e-9
    assert out["time"][-1] == pytest.approx(2e-3)
    if drive == "sine":
        ref = device_transient(VCM, "ngspice", step=step / 100, **kw)
        assert rel_rms(ref["time"], ref["x"], out["time"], out["x"]) <= 0.01


def test_float_kernel_equals_the_numpy_twin():
    """One-device groups evaluate vcm on Python floats (``Vcm.scalar_kernel``): the same expressions as
    the twin, so current, rate, step bound and linearisation agree to rounding -- over both drive
    polarities, the ceiling ``rmax``, the tapers and states past the bounds. Where floats overflow
    (``math.sinh``) the kernel raises ArithmeticError and the engine takes the numpy twin."""
    rng = np.random.default_rng(3)
    v = np.concatenate([rng.uniform(-2.5, 2.5, 300), [0.0, 1e-3, -1e-3, 1.4, -1.2, 2.0, 40.0]])
    x = np.concatenate([rng.uniform(-0.05, 1.05, 300), [0.0, 1.0, 0.5, 0.005, 0.995, 1.0, 0.5]])
    for overrides in ({}, {"rmax": 1e6, "ea": 0.0}, {"vset": 0.1, "rth": 0.0}):
        p = VCM.resolve({**overrides, "x0": 0.3})
        with np.errstate(over="ignore"):
            overflows = lambda a: not np.isfinite(np.sinh(a / min(p.vset, p.vreset)))    # noqa: E731
            assert check_scalar_kernel(VCM, p, v, x, overflows) >= 300
    assert VCM.scalar_kernel(VCM.resolve({"kset": np.array([1e-3, 2e-3])})) is None
