"""A description can never add netlist lines or ngspice control commands.

ngspice's control language runs shell commands (`shell`, `!`), so every way a
value from a description reaches the netlist is attacked here end to end:
names, strings, numbers, --set overrides, included files and model paths.
The rendered deck must keep exactly one `.control` block, the one circuitkit
writes, and no line a description did not earn.
"""
from __future__ import annotations

import pytest

from circuitkit.engines import write_netlist
from circuitkit.errors import CircuitkitError
from circuitkit.workflow import load

BASE = 'title "t"\nsource v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) 1k\nanalysis op()\nrecord v(a)\n'


def _deck(tmp_path, text: str, overrides=None) -> str:
    f = tmp_path / "attack.xbar"
    f.write_text(text)
    _, circuit = load(f, overrides=overrides)
    out = write_netlist(circuit, tmp_path / "deck.cir")
    return out.read_text()


def _control_blocks(deck: str) -> list[list[str]]:
    blocks, cur = [], None
    for line in deck.splitlines():
        low = line.strip().lower()
        if low.startswith(".control"):
            cur = []
        elif low.startswith(".endc"):
            blocks.append(cur)
            cur = None
        elif cur is not None:
            cur.append(low)
    return blocks


def test_clean_deck_has_one_control_block_without_shell(tmp_path):
    blocks = _control_blocks(_deck(tmp_path, BASE))
    assert len(blocks) == 1
    assert all(cmd.split()[0] in ("pre_osdi", "run", "write", "quit") for cmd in blocks[0] if cmd and not cmd.startswith("*"))


@pytest.mark.parametrize("text", [
    'title "x"\nsource v1 (a, 0) dc(0.1)\n.control\nshell touch /tmp/ck_pwned\n.endc\nanalysis op()\n',
    'title "x\\n.control"\nsource v1 (a, 0) dc(0.1)\nanalysis op()\n',
    'source v1 (a;shell, 0) dc(0.1)\nanalysis op()\n',
    'source v1 (a, 0) dc(0.1)\nresistor r1 (a b, 0) 1k\nanalysis op()\n',
    'source v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) 1k $ shell\nanalysis op()\n',
    'source v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) "1k\nshell ls"\nanalysis op()\n',
    'source v-1 (a, 0) dc(0.1)\nanalysis op()\n',
    'source v1 (a, 0) dc(0.1)\nrecord v(a), i(v1 shell)\nanalysis op()\n',
])
def test_injection_attempts_in_descriptions_are_refused(tmp_path, text):
    with pytest.raises(CircuitkitError):
        _deck(tmp_path, text)
    assert not (tmp_path / "deck.cir").exists()


def test_title_with_control_words_stays_one_comment_line(tmp_path):
    deck = _deck(tmp_path, BASE.replace('title "t"', 'title ".endc .control shell rm -rf ~ ; quit"'))
    assert len(_control_blocks(deck)) == 1
    titled = [line for line in deck.splitlines() if "shell rm" in line]
    assert titled and all(line.startswith("*") for line in titled)


@pytest.mark.parametrize("value", ["1k\n.control", "1k; shell ls", "1k .endc", "1k\nresistor r9 (a, 0) 1"])
def test_set_overrides_cannot_inject(tmp_path, value):
    text = BASE.replace("resistor r1 (a, 0) 1k", "param rr = 1k\nresistor r1 (a, 0) rr")
    with pytest.raises(CircuitkitError):
        _deck(tmp_path, text, overrides={"rr": value})


def test_included_file_goes_through_the_same_checks(tmp_path):
    (tmp_path / "evil.xbar").write_text("resistor r2 (a, 0) 1k\n.control\n")
    with pytest.raises(CircuitkitError) as exc:
        _deck(tmp_path, 'include "evil.xbar"\n' + BASE)
    assert "evil.xbar:2" in str(exc.value)


def test_unsafe_osdi_path_is_refused_by_the_renderer(tmp_path):
    # compiled models live in the cache (a safe path); the renderer still re-checks every path it writes
    from circuitkit.netlist import render_text
    _, circuit = load(_write(tmp_path, BASE.replace("resistor r1 (a, 0) 1k", "device m1 (a, 0) vteam()")))
    with pytest.raises(CircuitkitError):
        render_text(circuit, {"vteam": tmp_path / "x y;shell ls.osdi"})


def _write(tmp_path, text):
    f = tmp_path / "ok.xbar"
    f.write_text(text)
    return f


# -- hostile and broken input: every bad input a located CircuitkitError (issue 16) ------------------------------

import os  # noqa: E402
from pathlib import Path  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from circuitkit import limits  # noqa: E402
from circuitkit.description.loader import load_description  # noqa: E402
from circuitkit.errors import DescriptionError, LocatedError  # noqa: E402

XB = ('crossbar xb { rows = ROWS; cols = 4 }\nstimulus { read = fill(ROWS, 0.1) }\nanalysis op()\n')


def _refused(tmp_path, text: str | bytes, overrides=None, name="d.xbar") -> LocatedError:
    f = tmp_path / name
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    t0 = time.perf_counter()
    with pytest.raises(CircuitkitError) as exc:
        load(f, overrides=overrides)
    assert time.perf_counter() - t0 < 5
    err = exc.value
    assert isinstance(err, LocatedError) and (err.location.line is not None or err.location.parameter), str(err)
    return err


def test_non_utf8_description_and_include_are_located(tmp_path):
    err = _refused(tmp_path, b'title "caf\xe9"\n' + BASE.encode())
    assert "not UTF-8" in err.message and (err.location.line, err.location.column) == (1, 11)
    (tmp_path / "inc.xbar").write_bytes(b"param a = 1\nparam b = \xff\n")
    err = _refused(tmp_path, 'include "inc.xbar"\n' + BASE)
    assert err.location.file.endswith("inc.xbar") and err.location.line == 2


@pytest.mark.parametrize("expr, message", [
    ("exp(1000)", "math range"), ("floor(inf)", "inf: every value must be a finite"),
    ("rand(4, 0, 1, seed = 1e300)", "seed"), ("floor(1e300 * 1e300)", "not a finite"),
    ("1e999", "too large"), ("10 ** 10 ** 10", "overflow"), ("0 ** -1", "negative power"),
    ("(-8) ** 0.5", "not a real number"), ("inf - inf", "finite number"), ("1e308 * 10", "not a finite"),
    ("fill(1e300, 1)", "length"), ("[" * 500 + "]" * 500, "nested"),
])
def test_numeric_overflow_and_nesting_are_located(tmp_path, expr, message):
    err = _refused(tmp_path, f"param a = {expr}\n" + BASE)
    assert message in err.message and err.location.line == 1


def test_long_sums_evaluate_iteratively_to_the_right_value(tmp_path):
    text = "param a = " + " + ".join(["1"] * 1000) + " - " + " - ".join(["0.5"] * 10) + "\n"
    text += "param b = " + " * ".join(["1.001"] * 1500) + "\n" + BASE
    f = tmp_path / "sum.xbar"
    f.write_text(text)
    d = load_description(f)
    assert d.params["a"] == 995.0
    assert d.params["b"] == pytest.approx(1.001 ** 1500, rel=1e-12)


def test_set_overrides_with_non_finite_values(tmp_path):
    text = "param rows = 4\n" + XB.replace("ROWS", "rows")
    for value in ("inf", "1e999", "-inf", "1e300"):
        err = _refused(tmp_path, text, overrides={"rows": value})
        assert err.location.line is not None or err.location.parameter == "rows"


def test_files_that_are_not_regular_or_too_large_are_refused_unread(tmp_path):
    for dev in ("/dev/zero", "/dev/urandom"):
        if not os.path.exists(dev):
            pytest.skip("no /dev")
        link = tmp_path / f"{Path(dev).name}.xbar"
        link.symlink_to(dev)
        err = _refused(tmp_path, f'include "{link.name}"\n' + BASE)
        assert "not a regular file" in err.message and err.location.line == 1
        csv = tmp_path / f"{Path(dev).name}.csv"
        csv.symlink_to(dev)
        err = _refused(tmp_path, XB.replace("ROWS", "2").replace("read = fill(2, 0.1)", f'reads = file("{csv.name}")'))
        assert "not a regular file" in err.message
    big = tmp_path / "big.xbar"
    with open(big, "wb") as fh:
        fh.truncate(limits.MAX_DESCRIPTION_BYTES + 1)
    assert "limit" in _refused(tmp_path, 'include "big.xbar"\n' + BASE).message
    assert "control characters" in _refused(tmp_path, 'include "a\x00b.xbar"\n' + BASE).message
    assert ".xbar" in _refused(tmp_path, 'include "/dev/zero"\n' + BASE).message


def test_data_files_shapes_and_lying_npy_headers(tmp_path):
    np.save(tmp_path / "x3.npy", np.zeros((2, 2, 2)))
    text = XB.replace("ROWS", "2").replace("read = fill(2, 0.1)", 'reads = file("x3.npy")')
    assert "3-D" in _refused(tmp_path, text).message
    with open(tmp_path / "huge.npy", "wb") as fh:             # promises 1e12 doubles, holds none
        fh.write(b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
                 + b" " * 44 + b"\n")
    text = XB.replace("ROWS", "2").replace("read = fill(2, 0.1)", 'reads = file("huge.npy")')
    assert "not a numeric .npy" in _refused(tmp_path, text).message


def test_error_messages_never_quote_files_that_are_not_descriptions(tmp_path, monkeypatch):
    secret = "hunter2-ck-secret"
    monkeypatch.setenv("CK_SECRET_TEST", secret)
    (tmp_path / "secret.csv").write_text(f"{secret},1\n")
    text = "crossbar xb { rows = 1; cols = 2; state = file(\"secret.csv\") }\nstimulus { read = [0.1] }\n"
    err = _refused(tmp_path, text + "analysis op()\n")
    assert secret not in str(err) and "line 1, field 1" in err.message
    env = tmp_path / "env.xbar"
    env.symlink_to("/proc/self/environ")
    err = _refused(tmp_path, 'include "env.xbar"\n' + BASE)
    assert secret not in str(err)
    (tmp_path / "notes.txt").write_text(f"param {secret} = ;;\n")
    err = _refused(tmp_path, (tmp_path / "notes.txt").read_text().encode(), name="notes.txt")
    assert secret not in str(err) and err.location.line == 1


@pytest.mark.parametrize("text, message", [
    (XB.replace("ROWS", "4") + "driver rows { dac = dac(bits = 2000, vmax = 1) }\n", "<= 32"),
    (XB.replace("ROWS", "4") + "sense cols { adc = adc(bits = 0, vmin = -1, vmax = 0) }\n", ">= 1"),
    (XB.replace("ROWS", "1e6"), "rows must be <= 65536"),
    (XB.replace("rows = ROWS", "rows = 1e300").replace("ROWS", "4"), "rows must be <= 65536"),
    (XB.replace("ROWS", "4").replace("read = fill(4, 0.1)",
                                     "program = pulses(row = 0, col = 0, amplitude = 1, width = 1n, count = 1e7)"),
     "pulses(count) must be <= 1000000"),
])
def test_converter_bits_and_sizes_are_bounded(tmp_path, text, message):
    assert message in _refused(tmp_path, text).message


def test_resource_estimate_refuses_with_the_numbers(tmp_path):
    text = XB.replace("cols = 4", "cols = 4096").replace("ROWS", "4096")
    old = limits.configure(memory=1 << 30)
    try:
        err = _refused(tmp_path, text)
    finally:
        limits.configure()
    assert "too large" in err.message and "1.07 GB" in err.message and "elements" in err.message
    assert err.location.line == 1                              # the crossbar statement
    assert old.memory == 1 << 30


def test_estimate_is_an_upper_bound_of_the_built_circuit():
    from circuitkit.workflow import load as wload
    for n in (4, 16):
        design, circuit = wload(Path(__file__).parents[1] / "sweeps" / "read_array_tran.xbar",
                                overrides={"rows": str(n), "cols": str(n)})
        est, real = limits.estimate(design), limits.estimate_circuit(circuit)
        assert real.elements <= est.elements <= 3 * real.elements
        assert real.nodes <= est.nodes <= 3 * real.nodes


def test_limits_default_to_the_machine_and_read_the_environment(monkeypatch):
    total = limits._meminfo_total()
    assert limits.Limits.from_machine().memory == total // 2 > 0
    monkeypatch.setenv("CIRCUITKIT_MAX_MEMORY", "2g")
    assert limits.Limits.from_machine().memory == 2_000_000_000
    monkeypatch.setenv("CIRCUITKIT_MAX_MEMORY", "lots")
    with pytest.raises(DescriptionError, match="CIRCUITKIT_MAX_MEMORY"):
        limits.Limits.from_machine()


@pytest.mark.parametrize("text, message, line", [
    ('source v1 (IN, 0) dc(0.1)\nresistor r1 (in, 0) 1k\nanalysis op()\n', "only in case", 2),
    ('source v1 (a, 0) dc(0.1)\nresistor V1 (a, 0) 1k\nanalysis op()\n', "case-insensitive", 2),
    ('source v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) 1k\nanalysis tran(step = 1n)\n', "give stop=", 3),
    ('source v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) 1k\nanalysis tran(step = 1n, stop = 0.5n)\n', "step", 3),
    (XB.replace("ROWS", "4").replace("read = fill(4, 0.1)", "read = [0.1, 0.1]"), "2 values for 4 rows", 2),
    (XB.replace("ROWS", "2").replace("read = fill(2, 0.1)", "read = [0.1, float]\n read = [0.1, 0.1]")
     .replace("op()", "tran(step = 1n)"), "floats in phase", 3),
    ('crossbar xb { rows = 2; cols = 2 }\nanalysis op()\n', "needs a stimulus", 1),
    (XB.replace("ROWS", "2") + "sense cols { tia = opamp(rf = 1k) }\n".replace("op()", "tran(step=1n)"),
     None, None),
    ('crossbar xb { rows = 2; cols = 2 }\nstimulus { read = [0.1, 0.1] }\nsource v9 (xb_wl_0, 0) dc(1)\n'
     'analysis op()\n', "reserves", 3),
])
def test_builder_checks_are_located_at_the_statement(tmp_path, text, message, line):
    if message is None:
        load(_write(tmp_path, text))          # a valid variant loads
        return
    err = _refused(tmp_path, text)
    assert message in err.message and err.location.line == line, str(err)


@pytest.mark.parametrize("text, message", [
    ('source v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) 1e-300\nanalysis op()\n', ">= 1e-06"),
    ('source v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) 0\nanalysis op()\n', "> 0"),
    ('source v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) 1e300\nanalysis op()\n', "<= 1e+15"),
    (XB.replace("ROWS", "2") + "wires { r_row = 1e-300 }\n", "r_row (ohm) must be >= 1e-06 (or 0)"),
    (XB.replace("ROWS", "2") + "driver rows { r_out = 1e-30 }\n", "r_out (ohm)"),
    (XB.replace("ROWS", "2") + "sense cols { tia = ideal(rf = 1e-300) }\n", "tia(rf) (ohm)"),
    ('source v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) 1k\ncapacitor c1 (a, 0) 1e10\nanalysis op()\n', "(F)"),
])
def test_zero_and_absurd_resistances_are_refused_with_their_location(tmp_path, text, message):
    err = _refused(tmp_path, text)
    assert message in err.message and err.location.column is not None


def test_zero_wire_resistance_still_means_an_ideal_line(tmp_path):
    load(_write(tmp_path, XB.replace("ROWS", "2") + "wires { r_row = 0; r_col = 0 }\n"))


# -- the Python API refuses what the loader refuses (issue 10, item 2) -----------------------------------------

def test_python_api_refuses_what_the_loader_refuses_with_the_same_message(tmp_path):
    from circuitkit import design as d
    with pytest.raises(DescriptionError) as api:
        d.Crossbar(cell="2T2R")
    assert api.value.location.parameter == "Crossbar.cell"
    err = _refused(tmp_path, XB.replace("ROWS", "2").replace("cols = 4", "cols = 4; cell = 2T2R"))
    assert err.message == api.value.message and err.location.parameter == "cell" and err.location.line == 1
    with pytest.raises(DescriptionError, match="scheme must be one of v2, v3, float, got 'v4'") as api:
        d.ProgramPhase(row=0, col=0, amplitude=1.0, width=1e-8, scheme="v4")
    assert api.value.location.parameter == "ProgramPhase.scheme"
    for make in (lambda: d.Wires(r_row=1e-300), lambda: d.Crossbar(rows=float("inf")), lambda: d.Crossbar(rows=0),
                 lambda: d.Driver(dac_bits=2000), lambda: d.Sense(kind="magic"), lambda: d.ResistorSpec("r", "a", "0", 0),
                 lambda: d.Analysis(step=2e-9, stop=1e-9), lambda: d.Crossbar(stuck_on=0.6, stuck_off=0.6)):
        with pytest.raises(DescriptionError) as exc:
            make()
        assert exc.value.location.parameter
    xb = d.Crossbar(cell="1t1r")
    assert xb.cell is d.CellType.T1R1 and xb.cell == "1T1R"
    with pytest.raises(DescriptionError, match="Crossbar.rows"):
        xb.rows = 10 ** 6                                     # assignment is checked too


def test_build_circuit_checks_a_python_design_with_locations():
    from circuitkit.circuit.build import build_circuit
    from circuitkit import design as d
    design = d.Design(crossbar=d.Crossbar(rows=2, cols=2), stimulus=[d.ReadPhase([0.1, 0.1, 0.1])])
    with pytest.raises(DescriptionError, match="3 values for 2 rows") as exc:
        build_circuit(design)
    assert exc.value.location.parameter == "stimulus"


def test_a_selector_that_is_not_a_selector_is_located_at_its_setting(tmp_path):
    text = XB.replace("ROWS", "2").replace("cols = 4 }", "cols = 4\n cell = 1S1R\n selector = vteam() }")
    err = _refused(tmp_path, text)
    assert "not a selector" in err.message and err.location.line == 3


def test_grammar_table_cache_is_private_or_unused(tmp_path, monkeypatch):
    """Lark loads its table cache with pickle: only a directory private to this user is used, and a
    cache that cannot be read falls back to building the tables (the parser still works)."""
    import os

    from circuitkit.description import parser as P
    monkeypatch.delenv("CIRCUITKIT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    grammar = P.GRAMMAR.read_text()
    path = P._table_cache(grammar)
    assert path and Path(path).parent == tmp_path / "circuitkit"
    os.chmod(tmp_path / "circuitkit", 0o777)                 # writable by others: not trusted
    assert P._table_cache(grammar) is False
    os.chmod(tmp_path / "circuitkit", 0o700)
    Path(path).write_bytes(b"not a pickle")                  # a broken cache file
    P._parser.cache_clear()
    try:
        tree = P._parser().parse('title "t"\n')
        assert tree is not None
    finally:
        P._parser.cache_clear()
