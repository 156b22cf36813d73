"""The accuracy contract between the behavioural engine and ngspice, on every testbench.

* linear reads (devices below threshold, ideal or finite-gain TIA): column
  currents agree to 1e-6 relative (of the largest column current), sampled
  where the ADC samples them;
* nonlinear DC reads (1T1R level-1 MOSFETs, 1S1R selectors): 1e-4 relative;
* nonlinear transients (switching devices): <= 1 % relative RMS on every
  recorded current and state, on a common time base;
* ADC codes identical, or off by one LSB only (at a code boundary).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circuitkit.workflow import cross_check, load

pytestmark = pytest.mark.spice
TB = Path(__file__).resolve().parent.parent / "testbenches"

READS = [("read_8x8.xbar", {}, 1e-6), ("read_32x32.xbar", {}, 1e-6), ("read_1t1r_16x16.xbar", {}, 1e-4),
         ("sneak_1s1r_8x8.xbar", {"cell": "1R"}, 1e-6), ("sneak_1s1r_8x8.xbar", {"cell": "1S1R"}, 1e-4)]


@pytest.mark.parametrize("name,overrides,tol", READS, ids=lambda v: v if isinstance(v, str) else None)
def test_read_column_currents(name, overrides, tol):
    _, circuit = load(TB / name, overrides=overrides)
    check = cross_check(circuit)
    out = check.comparison.outputs
    assert out["max_rel_column_current_error"] <= tol, check.comparison.table()
    assert out.get("adc_mismatch_beyond_1lsb", 0) == 0


@pytest.mark.parametrize("name,overrides", [("vteam_sine.xbar", {}),
                                            ("write_vhalf_8x8.xbar", {"scheme": "v2"})])
def test_nonlinear_transient_signals(name, overrides):
    _, circuit = load(TB / name, overrides=overrides)
    check = cross_check(circuit, tolerance=0.01)
    assert check.comparison.passed, check.comparison.table()
    assert len(check.comparison.signals) >= 3
    # the transient actually did something: a state moved
    moved = [np.ptp(check.spice[s.name]) for s in check.comparison.signals if s.name.startswith("x")]
    assert max(moved) > 0.05


def _cli_case(name):
    from test_stress import SPICE_XFAIL
    if name in SPICE_XFAIL:
        return pytest.param(name, marks=pytest.mark.xfail(reason=SPICE_XFAIL[name], strict=True))
    return name


@pytest.mark.parametrize("name", [_cli_case(p.name) for p in sorted(TB.glob("*.xbar"))])
def test_cli_compare_passes_on_every_testbench(name, capsys, tmp_path):
    """``circuitkit compare testbenches/<name>`` exactly as a user runs it: exit status 0 (PASSED)."""
    from circuitkit.cli import main
    report = tmp_path / "report.json"
    status = main(["compare", str(TB / name), "--report", str(report)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PASSED" in out and report.exists()
