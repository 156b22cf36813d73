"""Shipped Verilog-A models are portable (ngspice and VACASK agree) and keep their
states inside their ranges by their own equations at any requested step.

Before the models used one unconditional ``ddt()`` per state, VACASK lost the
VTEAM state at the first time step (x fell from 0.5 to ~0; 29 % RMS against
ngspice). Both simulators run with reltol = 1e-6, so what remains between them
is each one's truncation error, far below the 1e-4 the contract asks for; a
lost or mis-initialised state is an O(1) difference.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from circuitkit.devices import REGISTRY
from circuitkit.devices.probe import device_transient
from circuitkit.errors import SpiceError

pytestmark = pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")

SINE_DRIVES = {
    "vteam": dict(amplitude=1.0, freq=1e4, rseries=100),
    "linear_drift": dict(amplitude=1.0, freq=10, rseries=100, instance={"x0": 0.5}),
    "yakopcic": dict(amplitude=0.5, freq=100, rseries=1.0),
    "volatile": dict(amplitude=1.0, freq=1e5, rseries=100, params={"klt": 1e5}),
    "selector": dict(amplitude=1.0, freq=1e3, rseries=100),
    "stanford_pku": dict(amplitude=2.5, freq=1e6, rseries=100, instance={"x0": 1.0}),
    "multisynapse": dict(amplitude=1.5, freq=1e6, rseries=100),
    "vcm": dict(amplitude=1.0, freq=1e6, rseries=100),
}
#: stanford_pku switches within a few ns (sinh of the field): ngspice's own
#: truncation error at reltol 1e-6 is 3e-4 there (it drops with the step, not with
#: the model), so its check is the O(1) one only.
TOLERANCE = {"stanford_pku": 1e-3}


def _rel_rms(a_t, a, b_t, b):
    bi = np.interp(a_t, b_t, b)
    return float(np.sqrt(np.mean((bi - a) ** 2)) / np.sqrt(np.mean(a ** 2)))


@pytest.mark.spice
@pytest.mark.parametrize("name", sorted(SINE_DRIVES))
def test_ngspice_and_vacask_agree_on_a_sine(name, tmp_path):
    model = REGISTRY[name]
    kw = SINE_DRIVES[name]
    a = device_transient(model, "ngspice", drive="sine", reltol=1e-6, workdir=tmp_path, **kw)
    b = device_transient(model, "vacask", drive="sine", reltol=1e-6, workdir=tmp_path, **kw)
    for s in model.states:      # the operating point holds the initial state in both
        init = (kw.get("instance") or {}).get(s.init, model.parameter(s.init).default)
        assert a[s.name][0] == pytest.approx(init, abs=1e-9) and b[s.name][0] == pytest.approx(init, abs=1e-9)
    for q in ["i"] + [s.name for s in model.states]:
        err = _rel_rms(a["time"], a[q], b["time"], b[q])
        assert err < TOLERANCE.get(name, 1e-4), f"{name} {q}: {err:.2e} relative RMS between ngspice and VACASK"


@pytest.mark.spice
@pytest.mark.parametrize("engine", ["ngspice", "vacask"])
@pytest.mark.parametrize("step", [2e-3, 2e-2, 1e-1])
def test_linear_drift_does_not_pass_its_bound_at_a_coarse_step(engine, step, tmp_path):
    """x0 = 0.95 driven at 1 V: dx/dt ~ 11/s, so x reaches the bound within ~5 ms; at the
    old code ngspice carried it to 1 + 2e-4 .. 7e-4 (R below ron)."""
    out = device_transient(REGISTRY["linear_drift"], engine, drive="dc", amplitude=1.0, stop=0.2, step=step,
                           rseries=1e-3, instance={"x0": 0.95}, workdir=tmp_path)
    assert out["x"].max() <= 1.0
    assert out["x"][-1] > 0.99           # it did drive into the bound


@pytest.mark.spice
@pytest.mark.parametrize("name", ["vteam", "linear_drift", "yakopcic", "volatile"])
@pytest.mark.parametrize("drive", ["sine", "pulse", "dc"])
@pytest.mark.parametrize("points", [200, 4])
def test_no_timestep_too_small_and_states_in_range(name, drive, points, tmp_path):
    """Ordinary drives at a fine and at an absurdly coarse requested step (4 points per
    two periods): ngspice finishes and every state stays in its range."""
    model = REGISTRY[name]
    kw = dict(SINE_DRIVES[name])
    kw.pop("instance", None)
    stop = 2.0 / kw["freq"]
    try:
        out = device_transient(model, "ngspice", drive=drive, stop=stop, step=stop / points, workdir=tmp_path, **kw)
    except SpiceError as exc:
        pytest.fail(f"{name} {drive} step {stop / points:g}: {exc}")
    # ngspice accepts a Newton iterate within its tolerances of the discrete solution;
    # 1e-9 is far inside vntol (1e-6) and far below any visible resistance change.
    for s in model.states:
        lo, hi = out[s.name].min(), out[s.name].max()
        assert s.lower - 1e-9 <= lo and hi <= s.upper + 1e-9, (s.name, lo, hi)


@pytest.mark.parametrize("name", [n for n in sorted(REGISTRY) if REGISTRY[n].states])
def test_twin_step_bound_keeps_an_explicit_step_inside_the_range(name):
    """bound_step (the $bound_step of the .va) lets one step cover at most half the way
    to the bound the state moves towards."""
    model = REGISTRY[name]
    rng = np.random.default_rng(1)
    n = 2000
    v = rng.uniform(-3, 3, n)
    x = np.vstack([rng.uniform(s.lower, s.upper, n) for s in model.states])
    p = model.resolve({"klt": 1e5} if name == "volatile" else {})
    h = model.bound_step(v, x, p)
    f = np.asarray(model.dxdt(v, x, p)).reshape(model.n_states(), n)
    moved = np.where(np.isfinite(h), h, 0.0) * f
    for k, s in enumerate(model.states):
        assert np.all(x[k] + moved[k] <= s.upper + 1e-12) and np.all(x[k] + moved[k] >= s.lower - 1e-12)
    assert np.any(np.isfinite(h))


@pytest.mark.spice
@pytest.mark.parametrize("step, amplitude", [(4e-6, 1.0), (5e-6, 1.0), (2e-5, 2.0), (1e-4, 0.5)])
def test_vteam_sine_at_coarse_steps_finishes_in_ngspice(step, amplitude, tmp_path):
    """The issue's case (vteam_sine at step = 4u stopped with 'Timestep too small') and the
    other steps where it did: the Kvatinsky window's derivative was inf*0 = NaN at Newton
    iterates far outside [0, 1]; its exponent is now capped (same values, finite slopes)."""
    out = device_transient(REGISTRY["vteam"], "ngspice", drive="sine", amplitude=amplitude, freq=1e4, stop=2e-4,
                           step=step, rseries=100, workdir=tmp_path)
    assert out["time"][-1] == pytest.approx(2e-4)
    assert 0.0 <= out["x"].min() and out["x"].max() <= 1.0


@pytest.mark.spice
@pytest.mark.parametrize("name", ["vteam", "linear_drift", "yakopcic", "volatile"])
def test_ngspice_and_vacask_agree_on_pulses_at_the_plateau_ends(name, tmp_path):
    """Under pulses the waveforms switch within an edge, where each simulator has its own
    time points (a relative RMS over the edges measures interpolation, not the model); the
    states at the end of every plateau are what a pulse train programs."""
    model = REGISTRY[name]
    kw = SINE_DRIVES[name]
    a = device_transient(model, "ngspice", drive="pulse", reltol=1e-6, workdir=tmp_path, **kw)
    b = device_transient(model, "vacask", drive="pulse", reltol=1e-6, workdir=tmp_path, **kw)
    period = 1 / kw["freq"]
    ends = np.array([0.49, 0.99, 1.49, 1.99]) * period
    for s in model.states:
        xa, xb = np.interp(ends, a["time"], a[s.name]), np.interp(ends, b["time"], b[s.name])
        assert np.all(np.abs(xa - xb) <= 1e-4 * (s.upper - s.lower)), (s.name, xa, xb)


@pytest.mark.spice
@pytest.mark.parametrize("drive", ["sine", "pulse"])
@pytest.mark.parametrize("amplitude", [3.0, 4.0])
def test_stanford_pku_finishes_at_high_drive(drive, amplitude, tmp_path):
    """3-4 V through 100 Ohm at a 1 ns step: ngspice stopped with 'Timestep too small'
    before the step bound limited the current change per step."""
    out = device_transient(REGISTRY["stanford_pku"], "ngspice", drive=drive, amplitude=amplitude, freq=1e6,
                           rseries=100, workdir=tmp_path)
    assert out["time"][-1] == pytest.approx(2e-6)
    assert out["x"].min() > -0.01 and out["x"].max() < 1.01       # within xedge of the range (wall)
