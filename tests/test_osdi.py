"""OpenVAF compile cache: hits, invalidation, concurrency and located compile errors."""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from circuitkit.errors import CompileError
from circuitkit.spice import osdi
from circuitkit.spice.osdi import compile_all, compile_va

pytestmark = pytest.mark.spice

VTEAM = Path(__file__).resolve().parents[1] / "verilog_a" / "vteam.va"

BAD_VA = """`include "disciplines.vams"
module bad(p, n);
    inout p, n;
    electrical p, n;
    analog begin
        I(p, n) <+ V(p, n) / undefined_thing;
    end
endmodule
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("CIRCUITKIT_CACHE", str(root))
    return root / "osdi"


def _copy_vteam(tmp_path: Path, name: str = "vteam.va") -> Path:
    va = tmp_path / name
    va.write_text(VTEAM.read_text())
    return va


def test_second_call_hits_the_cache(tmp_path, cache, monkeypatch):
    va = _copy_vteam(tmp_path)
    first = compile_va(va)
    assert first.is_file() and first.parent == cache and first.suffix == ".osdi"
    assert first.read_bytes()[:4] == b"\x7fELF"
    mtime = first.stat().st_mtime_ns

    def no_compiler(*args, **kwargs):
        raise AssertionError("OpenVAF ran although the artifact is cached")

    monkeypatch.setattr(osdi.subprocess, "run", no_compiler)
    t0 = time.perf_counter()
    second = compile_va(va)
    assert time.perf_counter() - t0 < 0.05
    assert second == first and second.stat().st_mtime_ns == mtime


def test_changed_source_gives_a_new_artifact(tmp_path, cache):
    va = _copy_vteam(tmp_path)
    first = compile_va(va)
    text = va.read_text()
    assert "parameter real ron = 50 " in text
    va.write_text(text.replace("parameter real ron = 50 ", "parameter real ron = 60 "))
    second = compile_va(va)
    assert second != first and first.is_file() and second.is_file()


def test_local_include_is_part_of_the_key(tmp_path, cache):
    (tmp_path / "helper.vams").write_text("`define RSCALE 1.0\n")
    va = tmp_path / "inc.va"
    va.write_text('`include "disciplines.vams"\n`include "helper.vams"\n'
                  "module inc(p, n);\n    inout p, n;\n    electrical p, n;\n"
                  "    analog I(p, n) <+ V(p, n)*`RSCALE/1k;\nendmodule\n")
    first = compile_va(va)
    (tmp_path / "helper.vams").write_text("`define RSCALE 2.0\n")
    second = compile_va(va)
    assert first != second and second.is_file()


def _compile_in_child(path: str) -> str:
    return str(compile_va(Path(path)))


def test_concurrent_compiles_from_four_processes(tmp_path, cache):
    va = _copy_vteam(tmp_path, "vteam_concurrent.va")
    with ProcessPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_compile_in_child, [str(va)] * 4))
    assert len(set(results)) == 1
    out = Path(results[0])
    assert out.is_file() and out.stat().st_size > 1000
    # no temporary compile directories left behind
    assert sorted(p.name for p in cache.iterdir()) == [out.name, out.name + ".sha256"]   # + its verification record


def test_syntax_error_names_file_and_line(tmp_path, cache):
    va = tmp_path / "bad.va"
    va.write_text(BAD_VA)
    with pytest.raises(CompileError) as info:
        compile_va(va)
    err = info.value
    assert err.location.line == 6 and Path(err.location.file).name == "bad.va"
    assert "bad.va:6" in str(err) and "undefined_thing" in str(err)
    assert "not found" in err.compiler_output
    assert not list(cache.glob("bad-*.osdi"))


def test_missing_file_is_a_compile_error(tmp_path, cache):
    with pytest.raises(CompileError, match="not found"):
        compile_va(tmp_path / "nope.va")


def test_cache_location_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("CIRCUITKIT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert osdi.cache_dir() == tmp_path / "xdg" / "circuitkit" / "osdi"


def test_compile_all_compiles_every_registered_model(cache):
    from circuitkit.devices import list_models
    out = compile_all()
    assert set(out) == {m.name for m in list_models()}
    assert all(p.is_file() and p.parent == cache for p in out.values())
    assert compile_all(["vteam"]) == {"vteam": out["vteam"]}
    assert os.path.getsize(out["vteam"]) > 1000
