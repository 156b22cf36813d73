"""Faults on the SPICE side survived (issue 16): init files, damaged caches, crashes, odd paths.

Each test first shows the hazard is real where that is cheap (a positive
control), then that circuitkit is not exposed to it.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from circuitkit.engines import simulate, write_netlist
from circuitkit.errors import SpiceError
from circuitkit.spice import osdi as osdi_mod
from circuitkit.spice.runner import check_log, run_netlist
from circuitkit.workflow import load

pytestmark = pytest.mark.spice
ROOT = Path(__file__).resolve().parents[1]
PY = [sys.executable, "-m", "circuitkit"]
SINE = ROOT / "testbenches" / "vteam_sine.xbar"
DIVIDER = "divider\nV1 a 0 DC 1\nR1 a b 1k\nR2 b 0 3k\n.op\n.control\nrun\nwrite circuitkit.raw\nquit\n.endc\n.end\n"


def _short_sine():
    _, c = load(SINE, {"f": "100k"})
    return c


def test_spiceinit_in_the_output_directory_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    work = tmp_path / "out"
    work.mkdir()
    (work / ".spiceinit").write_text(f"shell touch {marker}\n")
    deck = work / "d.cir"
    deck.write_text(DIVIDER)
    # positive control: plain ngspice in that directory does run it
    subprocess.run(["ngspice", "-b", str(deck)], cwd=work, capture_output=True, timeout=60,
                   env=dict(os.environ, HOME=str(tmp_path)))
    assert marker.exists(), "control failed: ngspice did not read .spiceinit"
    marker.unlink()
    (work / "circuitkit.raw").unlink()
    for backend in ("batch", "shared"):
        run = run_netlist(deck, backend=backend, timeout=60, workdir=work)
        assert abs(run.vectors["v(b)"][0] - 0.75) < 1e-12
        assert not marker.exists(), f"{backend}: .spiceinit ran"
    wf = simulate(_short_sine(), "spice", workdir=work)
    assert len(wf.time) > 10 and not marker.exists()
    assert not (work / "circuitkit.raw").exists()          # results live in a private directory


def _seed_cache(cache: Path) -> None:
    """Copy the verified vteam entry of the default cache into ``cache`` (saves a compile)."""
    from circuitkit.devices import get_model
    src = osdi_mod.compile_va(get_model("vteam").va_file())
    (cache / "osdi").mkdir(parents=True, exist_ok=True)
    for p in (src, src.with_name(src.name + ".sha256")):
        shutil.copy2(p, cache / "osdi" / p.name)


def test_truncated_cache_entry_is_recompiled_not_loaded(tmp_path, monkeypatch):
    _seed_cache(tmp_path / "cache")
    monkeypatch.setenv("CIRCUITKIT_CACHE", str(tmp_path / "cache"))
    c = _short_sine()
    (entry,) = [p for p in (tmp_path / "cache" / "osdi").iterdir() if p.suffix == ".osdi"]
    size = entry.stat().st_size
    with open(entry, "r+b") as fh:                          # truncated, as after a full disk or a crash
        fh.truncate(size // 3)
    wf = simulate(c, "spice", backend="shared")             # loading it would raise SIGBUS in libngspice
    assert len(wf.time) > 10
    assert entry.stat().st_size == size                     # compiled again


def test_cache_records_are_checked(tmp_path, monkeypatch):
    from circuitkit.doctor import PROBE_VA
    monkeypatch.setenv("CIRCUITKIT_CACHE", str(tmp_path / "cache"))
    va = tmp_path / "ckdoctor_res.va"
    va.write_text(PROBE_VA)
    entry = osdi_mod.compile_va(va)
    record = entry.with_name(entry.name + ".sha256")
    good = entry.read_bytes()
    assert record.read_text().split()[0] == osdi_mod._file_sha256(entry)
    entry.write_bytes(b"\0" * len(good))                   # same size, wrong content: the hash catches it
    osdi_mod._VERIFIED.clear()
    assert osdi_mod.compile_va(va) == entry and entry.read_bytes() != b"\0" * len(good)
    record.unlink()                                        # no record: not trusted either
    osdi_mod._VERIFIED.clear()
    mtime = entry.stat().st_mtime_ns
    osdi_mod.compile_va(va)
    assert entry.stat().st_mtime_ns != mtime and record.is_file()


def test_a_crash_in_the_shared_backend_is_an_error_not_a_dead_interpreter(tmp_path):
    _, c = load(SINE)
    write_netlist(c, tmp_path / "ok.cir")
    real = [line.split(None, 1)[1] for line in (tmp_path / "ok.cir").read_text().splitlines()
            if line.startswith("pre_osdi ")][0]
    broken = tmp_path / "broken.osdi"
    broken.write_bytes(Path(real).read_bytes()[:20000])    # loading it raises SIGBUS inside ngspice
    deck = tmp_path / "crash.cir"
    deck.write_text((tmp_path / "ok.cir").read_text().replace(real, str(broken)))
    for backend in ("shared", "batch"):
        with pytest.raises(SpiceError) as info:
            run_netlist(deck, backend=backend, timeout=60, workdir=tmp_path)
        assert "bus error" in str(info.value).lower() or "SIGBUS" in str(info.value)
    assert abs(run_netlist(deck.with_name("ok.cir"), backend="shared", timeout=60,
                           workdir=tmp_path).vectors["time"][-1] - 2e-4) < 1e-12   # still alive


def test_error_lines_are_not_drowned_by_repeated_warnings():
    log = "\n".join(["Warning: parameter xyz out of range"] * 200
                    + ["Error on line 7 or its substitute:", "  rbad a b", "unknown parameter (foo)",
                       "Simulation interrupted due to error!"])
    with pytest.raises(SpiceError) as info:
        check_log(log, None, returncode=1, have_results=False)
    lines = info.value.log_lines
    shown = str(info.value).splitlines()[1:21]             # what the user sees
    assert any("unknown parameter (foo)" in line for line in shown)
    assert sum("parameter xyz" in line for line in lines) <= 1


def test_cache_path_with_space_and_dotdot_works(tmp_path, monkeypatch):
    _seed_cache(tmp_path / "my cache" / "c")
    monkeypatch.setenv("CIRCUITKIT_CACHE", str(tmp_path / "my cache" / "sub" / ".." / "c"))
    c = _short_sine()
    for engine, backend in (("spice", "batch"), ("spice", "shared"), ("vacask", "batch")):
        assert len(simulate(c, engine, backend=backend).time) > 10
    assert len(list((tmp_path / "my cache" / "c" / "osdi").glob("vteam-*.osdi"))) == 1
    out = tmp_path / "deck.cir"
    write_netlist(c, out)
    assert f"pre_osdi {tmp_path}/deck_osdi/vteam-" in out.read_text()     # a copy the deck can name


@pytest.mark.parametrize("variable,kind", [("CIRCUITKIT_NGSPICE", "noexec"), ("CIRCUITKIT_NGSPICE", "missing"),
                                           ("CIRCUITKIT_OPENVAF", "missing"), ("CIRCUITKIT_OPENVAF", "noexec"),
                                           ("CIRCUITKIT_VACASK", "noexec")])
def test_bad_tool_overrides_are_clear_errors(tmp_path, monkeypatch, capsys, variable, kind):
    from circuitkit.cli import main
    from circuitkit.doctor import _clear_caches
    target = tmp_path / "tool"
    if kind == "noexec":
        target.write_text("#!/bin/sh\necho hi\n")
        target.chmod(stat.S_IRUSR | stat.S_IWUSR)
    monkeypatch.setenv(variable, str(target))
    if variable == "CIRCUITKIT_OPENVAF":                    # an empty cache, so the compiler is needed
        monkeypatch.setenv("CIRCUITKIT_CACHE", str(tmp_path / "cache"))
    engine = "vacask" if variable == "CIRCUITKIT_VACASK" else "spice"
    _clear_caches()
    try:
        code = main(["simulate", str(SINE), "--engine", engine, "--out", str(tmp_path / "o")])
    finally:
        monkeypatch.undo()
        _clear_caches()
    err = capsys.readouterr().err
    assert code == 2, err
    assert variable in err and ("not executable" in err if kind == "noexec" else "does not exist" in err)


def test_generate_never_leaves_a_partial_file(tmp_path, monkeypatch):
    import circuitkit.netlist.render as render
    _, c = load(SINE)
    out = tmp_path / "deck.cir"
    out.write_text("previous deck\n")

    def broken(circuit, osdi, fh, dialect="ngspice"):
        fh.write("* half a deck\n")
        raise OSError("disk full")

    monkeypatch.setattr(render, "render_netlist", broken)
    with pytest.raises(OSError):
        write_netlist(c, out)
    assert out.read_text() == "previous deck\n"             # untouched, not truncated to 0 bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deck.cir"]   # no temporary left behind


def test_shared_worker_is_reused_and_dies_with_its_parent(tmp_path):
    import signal
    import time
    deck = tmp_path / "d.cir"
    deck.write_text(DIVIDER)
    script = (f"from pathlib import Path\nfrom circuitkit.spice import shared\nfrom circuitkit.spice.runner import run_netlist\n"
              f"for _ in range(3):\n    run_netlist(Path({str(deck)!r}), backend='shared', timeout=60, workdir=Path({str(tmp_path)!r}))\n"
              f"print(shared._WORKER.proc.pid, shared._WORKER.private, flush=True)\nimport time\ntime.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        pid, private = proc.stdout.readline().split()
        assert Path(private).is_dir()
        os.kill(int(pid), 0)                              # one worker served all three runs
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and Path(private).exists():
        time.sleep(0.1)
    assert not Path(private).exists()                    # the worker saw its parent go and cleaned up
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(int(pid), 0)
            time.sleep(0.1)
