"""examples/user_models: a user directory holding only pershin.va works in ngspice and in
the behavioural engine (twin generated from the Verilog-A), against the closed form of
Biolek, Di Ventra and Pershin (Radioengineering 22(4), 2013).

Sine v = Vm sin(2 pi f t) on the device; the first positive half-wave drives R from 5 kOhm
to Roff (the swing, below, exceeds Roff - Rinit), the negative half-wave lowers it by

    dR = beta/(2 pi f) * Vt * [2 sqrt((Vm/Vt)^2 - 1) - pi + 2 asin(Vt/Vm)]

so at t = 1/f, R = Roff - dR = 3181.87 Ohm (Ron 1k, Roff 10k, beta 1e13, Vt 4.6 V, Vm 5 V, 50 MHz).
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "user_models"
RON, ROFF, BETA, VT, VM, F = 1e3, 10e3, 1e13, 4.6, 5.0, 50e6
DR = BETA / (2 * math.pi * F) * VT * (2 * math.sqrt((VM / VT) ** 2 - 1) - math.pi + 2 * math.asin(VT / VM))
R_LOW = ROFF - DR


def test_closed_form_value():
    assert R_LOW == pytest.approx(3181.87, abs=0.01)
    assert DR > ROFF - 5e3          # the first positive half-wave does reach Roff


def test_the_example_directory_holds_no_python():
    assert sorted(p.suffix for p in EXAMPLE.iterdir()) == [".va", ".xbar"]


def _r_low(engine: str) -> tuple[float, np.ndarray]:
    from circuitkit.engines import simulate
    from circuitkit.workflow import load
    _, circuit = load(EXAMPLE / "pershin_sine.xbar", {"periods": "1"})
    wf = simulate(circuit, engine)
    x = np.asarray(wf["x(m1)"], dtype=float)
    return RON + (ROFF - RON) * float(x[-1]), x


@pytest.mark.spice
@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")
def test_pershin_in_ngspice_matches_the_closed_form():
    r, x = _r_low("spice")
    # ngspice controls the state's truncation error to reltol = 1e-3; the model's smoothing
    # (threshold blend 1 mV, taper 1e-3 at Roff) moves R_low by < 0.1 Ohm
    assert r == pytest.approx(R_LOW, rel=1e-3)
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_pershin_in_the_behavioural_engine_matches_the_closed_form():
    from circuitkit.devices import REGISTRY
    r, x = _r_low("behavioural")
    assert getattr(REGISTRY["pershin"], "generated", False)
    # the engine controls its truncation error and honours the model's $bound_step (no step
    # carries the state past Roff), so it meets the closed form as ngspice does
    assert r == pytest.approx(R_LOW, rel=1e-3)
    assert x.min() >= 0.0 and x.max() <= 1.0


@pytest.mark.spice
@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")
def test_pershin_passes_models_check_and_runs_in_vacask(capsys):
    from circuitkit.cli import main
    from circuitkit.devices import REGISTRY
    from circuitkit.devices.probe import device_transient
    assert main(["models", "check", "pershin", "--models-dir", str(EXAMPLE)]) == 0
    assert "pershin        ok" in capsys.readouterr().out
    out = device_transient(REGISTRY["pershin"], "vacask", drive="sine", amplitude=VM, freq=F, stop=1 / F,
                           step=1 / (F * 2000), rseries=1e-6)
    r = RON + (ROFF - RON) * out["x"][-1]
    assert r == pytest.approx(R_LOW, rel=1e-3)
