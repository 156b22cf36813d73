"""ngspice runner: both backends on a compiled VTEAM deck, and every failure kind."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circuitkit.errors import SpiceError
from circuitkit.spice.osdi import compile_va
from circuitkit.spice.runner import LOG_NAME, RAW_NAME, SpiceRun, check_log, run_netlist

pytestmark = pytest.mark.spice

VTEAM = Path(__file__).resolve().parents[1] / "verilog_a" / "vteam.va"
BACKENDS = ("batch", "shared")

VTEAM_DECK = """VTEAM device under a sine
V1 a 0 SIN(0 1 10k)
N1 a 0 xs1 vteam_m x0=0.5
.model vteam_m vteam
.tran 1u 200u
.options klu
.control
pre_osdi {osdi}
run
write circuitkit.raw
.endc
.end
"""


def _deck(body: str, control: str = "run\nwrite circuitkit.raw") -> str:
    return f"test deck\n{body.strip()}\n.control\n{control}\n.endc\n.end\n"


DECKS = {
    "undefined_model": _deck("V1 a 0 1\nN1 a 0 xs1 nosuch_m x0=0.5\nR1 a 0 1k\n.tran 1u 10u"),
    # a source that contradicts itself: no operating point exists
    "no_operating_point": _deck("B1 c 0 V = V(c) > 0.5 ? 0 : 1\nR1 c 0 1k\n.op"),
    # the same contradiction switched on at 1 us: the transient step collapses there
    "timestep": _deck("V1 t 0 PULSE(0 1 1u 1n 1n 1 2)\nB1 c 0 V = V(t) > 0.5 ? (V(c) > 0.5 ? 0 : 1) : 0\n"
                      "R1 c 0 1k\n.tran 1n 3u"),
    # 1e8 steps of 1 us (tmax) but only 1e5 output slots: runs far longer than the timeout
    "slow": _deck("V1 a 0 SIN(0 1 1k)\nR1 a b 1k\nC1 b 0 1u\n.tran 1m 100 0 1u"),
    # a zero resistor: ngspice warns and replaces it, the run succeeds
    "warning_only": _deck("V1 a 0 1\nR1 a b 0\nR2 b 0 1k\n.tran 1u 10u"),
    "missing_osdi": _deck("V1 a 0 1\nN1 a 0 xs1 vteam_m\n.model vteam_m vteam\n.op",
                          "pre_osdi /nonexistent/circuitkit/vteam.osdi\nrun\nwrite circuitkit.raw"),
    "no_write": _deck("V1 a 0 1\nR1 a 0 1k\n.op", "run"),
}


@pytest.fixture(scope="module")
def vteam_osdi(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("CIRCUITKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        yield compile_va(VTEAM)
    finally:
        mp.undo()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.cir"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def vteam_runs(vteam_osdi, tmp_path_factory):
    runs = {}
    for backend in BACKENDS:
        d = tmp_path_factory.mktemp(f"vteam_{backend}")
        netlist = _write(d, "vteam", VTEAM_DECK.format(osdi=vteam_osdi))
        runs[backend] = (run_netlist(netlist, backend=backend, timeout=120, workdir=d), d)
    return runs


@pytest.mark.parametrize("backend", BACKENDS)
def test_vteam_run_is_a_real_device_simulation(vteam_runs, backend):
    run, workdir = vteam_runs[backend]
    assert isinstance(run, SpiceRun) and run.backend == backend
    assert int(run.ngspice_version) >= 45 and run.wall_s > 0
    # (OpenVAF may add internal nodes such as v(n1#implicit_equation_0))
    assert {"time", "v(a)", "v(xs1)", "i(v1)"} <= set(run.vectors)
    t, v, x, i = (run.vectors[k] for k in ("time", "v(a)", "v(xs1)", "i(v1)"))
    assert abs(t[-1] - 200e-6) < 1e-12 and x[0] == pytest.approx(0.5)
    assert x.max() > 0.9 and x.min() < 0.1  # the device switched both ways
    # the branch current is the device's, I = V/(ron + (roff - ron) x), to Newton's
    # tolerance (ngspice records the last iterate; reltol is 1e-3)
    np.testing.assert_allclose(-i, v / (50 + 950 * x), rtol=5e-3, atol=1e-9)
    # (bytes: a loaded machine makes ngspice print progress with carriage returns, which read_text()'s
    # universal newlines would turn into line breaks)
    assert (workdir / LOG_NAME).read_bytes().decode() == run.log and "Circuit:" in run.log


def test_backends_give_the_same_vectors(vteam_runs):
    batch, shared = vteam_runs["batch"][0], vteam_runs["shared"][0]
    assert set(batch.vectors) == set(shared.vectors)
    for k in batch.vectors:
        assert batch.vectors[k].shape == shared.vectors[k].shape, k
        np.testing.assert_allclose(shared.vectors[k], batch.vectors[k], rtol=1e-9, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("backend", BACKENDS)
def test_undefined_model_is_unknown_device(tmp_path, backend):
    netlist = _write(tmp_path, "undef", DECKS["undefined_model"])
    with pytest.raises(SpiceError) as info:
        run_netlist(netlist, backend=backend, timeout=60)
    err = info.value
    assert err.kind == "unknown_device" and err.netlist == netlist
    assert any("nosuch_m" in line for line in err.log_lines) and "nosuch_m" in err.log


@pytest.mark.parametrize("backend", BACKENDS)
def test_impossible_operating_point_is_convergence(tmp_path, backend):
    netlist = _write(tmp_path, "op", DECKS["no_operating_point"])
    with pytest.raises(SpiceError) as info:
        run_netlist(netlist, backend=backend, timeout=60)
    assert info.value.kind == "convergence"
    assert any("operating point" in line.lower() or "op failed" in line.lower() for line in info.value.log_lines)


@pytest.mark.parametrize("backend", BACKENDS)
def test_collapsing_step_is_timestep_with_its_time(tmp_path, backend):
    netlist = _write(tmp_path, "ts", DECKS["timestep"])
    (tmp_path / RAW_NAME).write_bytes(b"stale")  # a previous run's file must not be read
    with pytest.raises(SpiceError) as info:
        run_netlist(netlist, backend=backend, timeout=60)
    err = info.value
    assert err.kind == "timestep" and 1e-6 <= err.time < 1.01e-6
    assert any("timestep too small" in line.lower() for line in err.log_lines)


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_osdi_library_is_model_load(tmp_path, backend):
    netlist = _write(tmp_path, "osdi", DECKS["missing_osdi"])
    with pytest.raises(SpiceError) as info:
        run_netlist(netlist, backend=backend, timeout=60)
    assert info.value.kind == "model_load"
    assert any("/nonexistent/circuitkit/vteam.osdi" in line for line in info.value.log_lines)


@pytest.mark.parametrize("backend", BACKENDS)
def test_timeout_stops_the_run(tmp_path, backend):
    import time
    netlist = _write(tmp_path, "slow", DECKS["slow"])
    t0 = time.perf_counter()
    with pytest.raises(SpiceError) as info:
        run_netlist(netlist, backend=backend, timeout=1.0)
    assert info.value.kind == "timeout"
    assert time.perf_counter() - t0 < 15


@pytest.mark.parametrize("backend", BACKENDS)
def test_warning_only_run_succeeds(tmp_path, backend):
    netlist = _write(tmp_path, "warn", DECKS["warning_only"])
    run = run_netlist(netlist, backend=backend, timeout=60)
    assert any("too small" in w for w in run.warnings)
    np.testing.assert_allclose(run.vectors["v(b)"], 1.0, rtol=1e-6)


def test_batch_without_raw_file_fails(tmp_path):
    netlist = _write(tmp_path, "nowrite", DECKS["no_write"])
    (tmp_path / RAW_NAME).write_bytes(b"stale")
    with pytest.raises(SpiceError) as info:
        run_netlist(netlist, backend="batch", timeout=60)
    assert info.value.kind == "failed" and RAW_NAME in str(info.value)


def test_bad_arguments(tmp_path):
    with pytest.raises(SpiceError) as info:
        run_netlist(tmp_path / "missing.cir")
    assert info.value.kind == "failed"
    netlist = _write(tmp_path, "warn", DECKS["warning_only"])
    with pytest.raises(ValueError, match="backend"):
        run_netlist(netlist, backend="xyce")


@pytest.mark.parametrize("line, kind", [
    ("Warning: singular matrix:  check node n3", "convergence"),
    ("Error: iteration limit reached", "convergence"),
    ("Error: no convergence in transient analysis", "convergence"),
    ("Error on line 3 : r1 a", "syntax"),
    ("Error: unknown subckt: x1 a b foo", "syntax"),
    ("Error: mystery failure", "failed"),
])
def test_log_classification(line, kind):
    log = f"Circuit: x\n\n{line}\nrun simulation(s) aborted\n"
    with pytest.raises(SpiceError) as info:
        check_log(log, None, returncode=1)
    assert info.value.kind == kind and line in info.value.log_lines


def test_warnings_alone_do_not_fail():
    check_log("Warning: singular matrix: check node a\nNo. of Data Rows : 10\n", None, returncode=0)
