"""Hostile descriptions and models (independent audit, docs/hostile.md): each is refused, located,
before it costs time or memory, and no message echoes a terminal control sequence or a foreign file."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from circuitkit import limits
from circuitkit.cli import main
from circuitkit.description.loader import load_description, load_text
from circuitkit.description.parser import parse_text
from circuitkit.errors import CircuitkitError, CompileError, DescriptionError, printable
from circuitkit.spice import osdi

ROOT = Path(__file__).resolve().parents[1]
RC = "resistor r1 (a, 0) 1k\nanalysis op()\n"


# -- 1. a user Verilog-A model's `include ------------------------------------------------------

def _model(directory: Path, include: str) -> Path:
    va = (ROOT / "verilog_a" / "vteam.va").read_text()
    va = va.replace('`include "disciplines.vams"', f'`include "disciplines.vams"\n`include "{include}"', 1)
    assert f'`include "{include}"' in va
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vteam.va").write_text(va)
    return directory / "vteam.va"


@pytest.fixture
def no_compiler(monkeypatch, tmp_path):
    """OpenVAF must never be reached: any attempt to find or run it fails the test."""
    monkeypatch.setenv("CIRCUITKIT_CACHE", str(tmp_path / "cache"))

    def boom(*a, **k):
        raise AssertionError("OpenVAF was reached")
    monkeypatch.setattr(osdi, "find_openvaf", boom)
    monkeypatch.setattr(osdi.subprocess, "run", boom)


@pytest.mark.parametrize("target, message", [
    ("/dev/zero", "inside its own directory"),
    ("/etc/passwd", "inside its own directory"),
    ("../outside.vams", "inside its own directory"),
    ("missing.vams", "no such file"),
])
def test_va_include_outside_the_model_directory_is_refused_before_openvaf(tmp_path, no_compiler, target,
                                                                          message):
    (tmp_path / "outside.vams").write_text("`define X 1\n")
    va = _model(tmp_path / "m", target)
    t0 = time.perf_counter()
    with pytest.raises(CompileError, match=message) as info:
        osdi.compile_va(va)
    assert time.perf_counter() - t0 < 5
    err = info.value
    assert Path(err.location.file).name == "vteam.va" and err.location.line is not None
    assert "root:" not in str(err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_va_include_of_a_fifo_or_a_symlink_out_is_refused_unread(tmp_path, no_compiler):
    os.mkfifo(tmp_path / "m" / "ff") if (tmp_path / "m").is_dir() else None
    va = _model(tmp_path / "m", "ff")
    os.mkfifo(tmp_path / "m" / "ff")
    with pytest.raises(CompileError, match="not a regular file"):
        osdi.compile_va(va)
    va = _model(tmp_path / "n", "link.vams")
    (tmp_path / "n" / "link.vams").symlink_to("/etc/passwd")
    with pytest.raises(CompileError, match="inside its own directory"):
        osdi.compile_va(va)


def test_va_include_without_quotes_and_oversized_include(tmp_path, no_compiler):
    va = _model(tmp_path / "m", "big.vams")
    (tmp_path / "m" / "big.vams").write_text("// " + "x" * (osdi.MAX_VA_BYTES + 10) + "\n")
    with pytest.raises(CompileError, match="larger than the limit"):
        osdi.compile_va(va)
    text = va.read_text().replace('`include "big.vams"', "`define F \"x\"\n`include `F")
    va.write_text(text)
    with pytest.raises(CompileError, match="double quotes"):
        osdi.compile_va(va)


def test_va_fifo_model_file_is_not_read(tmp_path):
    from circuitkit.devices.va_params import read_va
    from circuitkit.errors import ParameterError
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs FIFOs")
    os.mkfifo(tmp_path / "x.va")
    with pytest.raises(ParameterError, match="not a regular file"):
        read_va(tmp_path / "x.va")


def test_models_statement_with_hostile_include_is_a_located_cli_error(tmp_path, no_compiler, capsys):
    _model(tmp_path, "/etc/passwd")
    (tmp_path / "t.xbar").write_text('models "."\nsource v1 (a, 0) dc(0.1)\ndevice m1 (a, 0) vteam()\n'
                                     "analysis op()\n")
    # the model directory's vteam shadows the shipped one or is refused: either way no OpenVAF, no passwd
    code = main(["generate", str(tmp_path / "t.xbar"), "-o", str(tmp_path / "t.cir")])
    err = capsys.readouterr().err
    assert "root:" not in err and "Traceback" not in err
    assert code in (0, 2)


def test_shipped_models_still_compile_keys():
    """The shipped models' `include lines (the compiler's own disciplines/constants) pass the check."""
    for va in sorted((ROOT / "verilog_a").glob("*.va")):
        assert osdi._included_files(va) == [] or all(p.is_file() for p in osdi._included_files(va))


# -- 2. parsing budget and nesting -------------------------------------------------------------

def test_total_source_bytes_are_bounded_across_includes(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_SOURCE_BYTES", 30_000)          # the mechanism, quickly
    chunk = "param z = " + "+".join(["1"] * 100) + "\n"
    body = chunk * (limits.MAX_SOURCE_BYTES // len(chunk) // 3)
    (tmp_path / "part.xbar").write_text(body)
    (tmp_path / "main.xbar").write_text("".join(f'include "part.xbar"\n' for _ in range(4)) + RC)
    t0 = time.perf_counter()
    with pytest.raises(DescriptionError, match="in total") as info:
        load_description(tmp_path / "main.xbar")
    assert info.value.location.line == 4 and info.value.location.file.endswith("main.xbar")
    assert f"{limits.MAX_SOURCE_BYTES:,}" in str(info.value)
    assert time.perf_counter() - t0 < 10


def test_the_limit_is_far_above_every_shipped_description():
    sizes = [p.stat().st_size for p in ROOT.rglob("*.xbar") if ".venv" not in p.parts]
    assert sizes and 100 * max(sizes) < limits.MAX_SOURCE_BYTES <= limits.MAX_DESCRIPTION_BYTES
    big = "param z = " + "+".join(["1"] * 100) + "\n"
    t0 = time.perf_counter()
    with pytest.raises(DescriptionError, match="larger than|in total"):
        parse_text(big * (limits.MAX_SOURCE_BYTES // len(big) + 1), "big.xbar")
    assert time.perf_counter() - t0 < 1                    # refused before parsing


def test_deep_brackets_are_refused_before_parsing():
    t0 = time.perf_counter()
    with pytest.raises(DescriptionError, match="brackets nested more than") as info:
        parse_text("param a = 1\nparam b = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n", "n.xbar")
    assert time.perf_counter() - t0 < 2
    assert info.value.location.line == 2 and info.value.location.column == 11 + limits.MAX_NESTING
    t0 = time.perf_counter()
    with pytest.raises(DescriptionError, match="nested more than 64") as info:
        parse_text("param a = 1\n\nparam b = " + "abs(" * 50_000 + "1" + ")" * 50_000 + "\n", "n.xbar")
    assert time.perf_counter() - t0 < 2 and info.value.location.line == 3
    with pytest.raises(DescriptionError, match="nested more than 64"):
        parse_text("param b = " + "[" * 200_000 + "\n", "n.xbar")
    # brackets in comments and strings do not count; legal nesting still parses
    parse_text('title "' + "(" * 300 + '"\n# ' + "[" * 300 + "abs(" * 300 + "\nparam c = " + "(" * 500 + "1" + ")" * 500 + "\n"
               + "param d = " + "abs(" * 60 + "1" + ")" * 60 + "\n")
    with pytest.raises(DescriptionError, match="nested more than"):
        parse_text("param a = 1\n", overrides={"a": "[" * 2000 + "1" + "]" * 2000})


# -- 8. max_step in the time-point estimate -----------------------------------------------------

def test_tiny_max_step_is_refused_with_the_numbers():
    text = ("source v1 (a, 0) sine(amplitude = 1, freq = 10k)\nresistor r1 (a, 0) 100\n"
            "analysis tran(stop = 1m, step = 1u, max_step = 1e-18)\n")
    with pytest.raises(DescriptionError, match="time points") as info:
        load_text(text, "t.xbar")
    assert "1,000,000,000,000,001" in str(info.value) and info.value.location.line == 3
    design = load_text(text.replace("1e-18", "100n"), "t.xbar")
    assert limits.estimate(design).timepoints == 10_001


# -- 3. memory checked for the engine before the circuit is built --------------------------------

def test_engine_memory_is_checked_before_build(monkeypatch, tmp_path):
    import circuitkit.workflow as wf
    text = ("crossbar xb {\n rows = 512; cols = 512\n}\nstimulus {\n duration = 10n\n read = fill(512, 0.1)\n}\n"
            "analysis tran(step = 1n)\n")
    (tmp_path / "big.xbar").write_text(text)
    built = []
    monkeypatch.setattr(wf, "build_circuit", lambda d: built.append(d))
    limits.configure(memory=200 << 20)
    try:
        with pytest.raises(DescriptionError, match="behavioural engine"):
            wf.load(tmp_path / "big.xbar", engines="behavioural")
        with pytest.raises(DescriptionError, match="behavioural engine"):
            wf.load(tmp_path / "big.xbar", engines=("spice", "behavioural"))
        assert not built
    finally:
        limits.configure()


# -- 9. source values ------------------------------------------------------------------------------

@pytest.mark.parametrize("wave, what", [
    ("dc(1e9)", "dc(value)"), ("2e4", "source value"), ("pulse(v2 = 1e9, width = 1n)", "pulse(v2)"),
    ("pulse(v1 = -2e4, v2 = 0, width = 1n)", "pulse(v1)"), ("pwl([0, 1u], [0, 1e9])", "pwl value"),
    ("sine(offset = 1e9, amplitude = 1, freq = 1k)", "sine(offset)"),
    ("sine(amplitude = 1e9, freq = 1k)", "sine(amplitude)"),
    ("sine(offset = 6e3, amplitude = 6e3, freq = 1k)", "offset| + |amplitude"),
    ("sine(amplitude = 1, freq = 1k, damping = -1e9)", "sine(damping) must be >= 0"),
    ("sine(amplitude = 1, freq = 1k, damping = -1)", "sine(damping) must be >= 0"),
])
def test_source_values_are_bounded(wave, what):
    with pytest.raises(DescriptionError, match=r"s\.xbar:1:") as info:
        load_text(f"source v1 (a, 0) {wave}\n" + RC, "s.xbar")
    assert what in str(info.value)
    load_text(f"source v1 (a, 0) sine(amplitude = 1, freq = 1k, damping = 1k)\n" + RC, "s.xbar")


def test_source_bound_applies_after_set():
    text = "param v = 1\nsource v1 (a, 0) dc(v)\n" + RC
    assert load_text(text, "s.xbar", overrides={"v": "1e4"}).sources[0].waveform.value == 1e4
    with pytest.raises(DescriptionError, match="outside"):
        load_text(text, "s.xbar", overrides={"v": "1e9"})


# -- 12. echoed control characters and long names -------------------------------------------------

def test_snippets_and_names_are_escaped_and_capped(tmp_path, capsys):
    bad = tmp_path / "a.xbar"
    bad.write_text("param a = 1\n\x1b[2J\x1b]0;PWNED\x07 oops\n")
    assert main(["generate", str(bad), "-o", str(tmp_path / "a.cir")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "\\x1b[2J" in err
    name = tmp_path / "e\x1b[31mred\nx.xbar"
    name.write_text("param a = (\n")
    assert main(["generate", str(name), "-o", str(tmp_path / "b.cir")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and err.count("\n") <= 3
    with pytest.raises(DescriptionError) as info:
        load_text("source v1 (" + "n" * 5000 + ", 0) dc(1)\n" + RC, "l.xbar")
    assert len(str(info.value)) < 400
    assert printable("a\x1b\u2028b") == "a\\x1b\\u2028b"


# -- 13. empty files, line ends, internal names, digits, underflow ---------------------------------

@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("# a comment\n\n   # another\n", "empty"), ("# only\r# comments\r", "empty"),
    ("param a = 1\n", "only params"),
    ("source v1 (a, 0) dc(1)\nresistor r1 (a, 0) 1k\n", "no analysis"),
])
def test_empty_or_analysis_free_descriptions_say_so(text, message):
    with pytest.raises(DescriptionError, match=message) as info:
        load_text(text, "e.xbar")
    assert "give stop" not in str(info.value)


def test_cr_only_line_endings_are_line_endings():
    design = load_text("title \"x\"\rsource v1 (a, 0) dc(1)\r" + RC.replace("\n", "\r"), "cr.xbar")
    assert design.title == "x" and len(design.resistors) == 1
    with pytest.raises(DescriptionError) as info:
        load_text("param a = 1\rparam b = (\r", "cr.xbar")
    assert info.value.location.line == 2 or info.value.location.line == 3


@pytest.mark.parametrize("sep, shown", [("\u2028", "\\u2028"), ("\x0c", "\\x0c"), ("\x0b", "\\x0b"),
                                        ("\x85", "\\x85")])
def test_line_counting_agrees_with_the_parser(sep, shown):
    with pytest.raises(DescriptionError) as info:
        parse_text(f"param a = 1\nparam b = 2 {sep} + 1\nparam c = 3\n", "u.xbar")
    assert info.value.location.line == 2 and shown in str(info.value)
    assert "''" not in str(info.value)


def test_list_function_errors_do_not_name_internals():
    with pytest.raises(DescriptionError) as info:
        parse_text("param a = rand(bogus = 1)\n", "r.xbar")
    assert "_rand" not in str(info.value) and "rand(n, low, high, seed=)" in str(info.value)
    assert "bogus" in str(info.value)


@pytest.mark.parametrize("digit", ["\u0668", "\u0663", "\uff18", "\u096a"])
def test_only_ascii_digits_are_numbers(digit):
    with pytest.raises(DescriptionError, match="ASCII digits"):
        parse_text(f"param nr = {digit}\n", "d.xbar")
    with pytest.raises(DescriptionError, match="not a single valid expression"):
        parse_text("param nr = 8\n", "d.xbar", overrides={"nr": digit})


def test_underflowing_literals_are_refused_located():
    with pytest.raises(DescriptionError, match="too small") as info:
        parse_text("param a = 1\nparam b = 2 * 1e-400\n", "z.xbar")
    assert (info.value.location.line, info.value.location.column) == (2, 15)
    p = parse_text("param a = 0e-400\nparam b = 0.0\nparam c = 1e-300\nparam d = 1meg\n")
    assert p.params == {"a": 0.0, "b": 0.0, "c": 1e-300, "d": 1e6}


# -- 14. Python API arguments -----------------------------------------------------------------------

@pytest.mark.parametrize("path, overrides, match", [
    ("X", {5: "8"}, "parameter name must be a str"),
    ("X", "nr=8", "must be a mapping"),
    ("X", [("nr", "8")], "must be a mapping"),
    ("X", {"nr": None}, "must be a str or a number"),
    ("X", {"nr": True}, "must be a str or a number"),
    ("X", {"nr": float("nan")}, "must be finite"),
    (None, None, "expected a file name"),
    (5, None, "expected a file name"),
    (b"x.xbar", None, "not bytes"),
])
def test_api_arguments_are_description_errors(tmp_path, path, overrides, match):
    from circuitkit.workflow import load
    f = tmp_path / "x.xbar"
    f.write_text("param nr = 1\nsource v1 (a, 0) dc(nr)\n" + RC)
    with pytest.raises(DescriptionError, match=match):
        load(f if path == "X" else path, overrides=overrides)


def test_api_numbers_as_overrides_work(tmp_path):
    f = tmp_path / "x.xbar"
    f.write_text("param nr = 1\nsource v1 (a, 0) dc(nr)\n" + RC)
    assert load_description(f, {"nr": 8}).sources[0].waveform.value == 8
    assert load_description(f, {"nr": 2.5e-3}).sources[0].waveform.value == 2.5e-3
    with pytest.raises(DescriptionError, match="expected the description as a str"):
        parse_text(b"param a = 1\n")
    assert issubclass(DescriptionError, CircuitkitError)


def test_a_signal_recorded_twice_is_located(tmp_path):
    """Found by the fuzzer (a mutated description repeating its record line): the message named the file
    but not where; now the second record's line and column, and the first's line."""
    path = tmp_path / "dup.xbar"
    path.write_text("source vin (a, 0) dc(1)\nresistor r1 (a, 0) 1k\nanalysis op()\n"
                    "record v(a), i(r1)\nrecord i(r1)\n")
    from circuitkit.workflow import load
    with pytest.raises(DescriptionError) as exc:
        load(path)
    assert "i(r1) is recorded twice (first at line 4)" in exc.value.message
    assert (exc.value.location.line, exc.value.location.column) == (5, 8)


def test_out_of_range_states_name_the_line_and_the_first_cell(tmp_path):
    """A state file with a value past the model's range: the message had the file but no line (audit)."""
    import numpy as np

    from circuitkit.workflow import load
    states = np.full((8, 8), 0.5)
    states[2, 3], states[5, 1] = 1.5, -0.2
    np.save(tmp_path / "oor.npy", states)
    text = (ROOT / "testbenches" / "read_8x8.xbar").read_text()
    lines = text.splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.strip().startswith("state ="))
    lines[k] = lines[k].split("state")[0] + 'state = file("oor.npy")'
    (tmp_path / "oor.xbar").write_text("\n".join(lines) + "\n")
    with pytest.raises(DescriptionError) as exc:
        load(tmp_path / "oor.xbar")
    assert exc.value.location.line == k + 1
    assert "2 cells, the first at row 2, column 3 = 1.5" in exc.value.message


def test_a_count_past_its_limit_is_printed_whole(tmp_path):
    """pulses(count = 1000001) was refused as 'must be <= 1000000, got 1e+06'."""
    text = (ROOT / "testbenches" / "write_vhalf_8x8.xbar").read_text().replace("count = 3,", "count = 1000001,")
    with pytest.raises(DescriptionError, match=r"must be <= 1000000, got 1000001$"):
        load_text(text, str(tmp_path / "w.xbar"))


# -- model files whose names or values would have become code (a hostile-input audit) ----------------

def test_a_model_file_name_never_becomes_code(tmp_path, no_compiler, capsys):
    """The file name of a user Verilog-A model was written into the generated twin's docstring, which is
    compiled and run: a name closing the docstring ran Python (os.system) at load. The name must be the
    module's identifier, checked before anything is read; the generator writes names only as literals."""
    from circuitkit.devices.va_twin import generate
    marker = tmp_path / "ran"
    evil = f'x""";open(chr(47).join({str(marker).split("/")!r}), "w");"""y.va'     # no '/' in a file name
    models = tmp_path / "models"
    models.mkdir()
    (models / evil).write_text((ROOT / "examples" / "user_models" / "pershin.va").read_text())
    (tmp_path / "t.xbar").write_text('models "models"\nsource v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) 1k\n'
                                     "analysis op()\n")
    assert main(["generate", str(tmp_path / "t.xbar"), "-o", str(tmp_path / "t.cir")]) == 2
    assert "the name before .va must be the module's name" in capsys.readouterr().err
    assert not marker.exists()
    gen = generate((ROOT / "examples" / "user_models" / "pershin.va").read_text(), evil)
    namespace: dict = {}
    exec(compile(gen.source, "twin", "exec"), namespace)      # the generated code itself is inert
    assert not marker.exists() and namespace["TWIN"].name == "pershin"


def test_a_model_default_that_overflows_is_refused(tmp_path):
    from circuitkit.devices.va_twin import VaSubsetError, generate
    va = (ROOT / "examples" / "user_models" / "pershin.va").read_text()
    import re as _re
    m = _re.search(r"parameter real (\w+) = ([^ ;]+)", va)
    assert m
    bad = va.replace(m.group(0), f"parameter real {m.group(1)} = 1e308*10", 1)
    with pytest.raises(VaSubsetError, match=f"parameter '{m.group(1)}': its default .* is not a finite number"):
        generate(bad, "pershin.va")


def test_a_user_model_differing_from_a_shipped_one_only_in_case_is_refused(tmp_path):
    from circuitkit.devices.registry import load_models_dir
    from circuitkit.errors import ParameterError
    va = (ROOT / "verilog_a" / "vteam.va").read_text().replace("module vteam", "module VTEAM", 1)
    assert "module VTEAM" in va
    (tmp_path / "VTEAM.va").write_text(va)
    with pytest.raises(ParameterError, match="differs from the model 'vteam' only in case"):
        load_models_dir(tmp_path)
