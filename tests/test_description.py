"""The description language: values, includes, overrides, and errors that say where."""
from __future__ import annotations

import pytest

from circuitkit.circuit.waveforms import DC, Pulse, Sine
from circuitkit.description.loader import load_description, load_text
from circuitkit.description.parser import parse_text
from circuitkit.errors import DescriptionError


def test_si_suffixes_arithmetic_and_params():
    d = parse_text("param a = 1k\nparam b = 2.5m * a\nparam c = 10n + 1f\nparam e = 3meg / (2 + 1)\n"
                   "param g = -2 ** 2\nparam h = sqrt(16) + pi - pi\n")
    assert d.params == pytest.approx({"a": 1e3, "b": 2.5, "c": 10e-9 + 1e-15, "e": 1e6, "g": -4.0, "h": 4.0})


def test_elements_and_waveforms():
    design = load_text("""
        param f = 2k
        source v1 (in, 0) sine(amplitude = 1, freq = f, offset = 0.1)
        source v2 (b, gnd) pulse(v2 = 1, width = 10n, rise = 1n, period = 50n)
        source v3 (c, 0) 0.5
        resistor r1 (in, b) 1k
        capacitor c1 (b, 0) 1p
        analysis tran(stop = 1m, step = 1u)
    """)
    assert design.sources[0].waveform == Sine(offset=0.1, amplitude=1.0, freq=2e3)
    assert isinstance(design.sources[1].waveform, Pulse) and design.sources[1].n == "0"
    assert design.sources[2].waveform == DC(0.5)
    assert design.resistors[0].r == 1e3 and design.capacitors[0].c == 1e-12
    assert (design.analysis.kind, design.analysis.stop, design.analysis.step) == ("tran", 1e-3, 1e-6)


def test_set_overrides_a_param_and_changes_the_digest():
    text = "param r = 1k\nresistor r1 (a, 0) r\nsource v (a, 0) 1\nanalysis op()\n"
    base = parse_text(text)
    over = parse_text(text, overrides={"r": "2*3k"})
    assert over.params["r"] == 6e3 and base.digest != over.digest
    assert load_text(text, overrides={"r": "5"}).resistors[0].r == 5.0


def test_set_of_unknown_param_is_an_error():
    with pytest.raises(DescriptionError, match="unknown parameter.*nope"):
        parse_text("param r = 1\n", "x.xbar", overrides={"nope": "1"})


def test_include_is_relative_and_cycles_are_caught(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "common.xbar").write_text("param vread = 0.3\n")
    main = tmp_path / "main.xbar"
    main.write_text('include "sub/common.xbar"\nsource v (a, 0) vread\nresistor r (a, 0) 1k\nanalysis op()\n')
    assert load_description(main).sources[0].waveform == DC(0.3)
    (tmp_path / "a.xbar").write_text('include "b.xbar"\n')
    (tmp_path / "b.xbar").write_text('include "a.xbar"\n')
    with pytest.raises(DescriptionError, match="include cycle"):
        load_description(tmp_path / "a.xbar")


def test_lines_continue_inside_brackets():
    d = parse_text("param s = max(1,\n   2,\n   3)\n")
    assert d.params["s"] == 3


# Each bad description, the message it must give and the line:column it must name.
BAD = [
    ("param x = = 3\n", "unexpected", (1, 11)),
    ("param x = 1\nparam y = x +\n", "unexpected end of line", (2, 14)),
    ("resistor r1 (a, 0) -5\nsource v (a, 0) 1\n", "must be > 0", (1, 1)),
    ("resistor r1 (a, 0) 0\n", "must be > 0", (1, 1)),
    ("\n\nsource v (a, 0) sine(amplitude = 1)\n", "needs argument 'freq'", (3, 17)),
    ("source v (a, 0) sine(amplitude = 1, freq = 1k, fre = 3)\n", "no argument 'fre'", (1, 17)),
    ("source v (a, 0) wobble(1)\n", "unknown waveform", (1, 17)),
    ("param z = q * 2\n", "unknown parameter 'q'", (1, 11)),
    ("resistor r1 (a, 5) 1k\n", "not a name", (1, 17)),
    ("resistor r1 (a, 0) 1k\nresistor r1 (b, 0) 1k\n", "already defined at line 1", (2, 1)),
    ("analysis tran(stop = 1u, step = 1m)\n", "step must not exceed stop", (1, 10)),
    ("analysis ac(start = 1)\n", "unknown analysis", (1, 10)),
    ("record v(a), nonsense\n", "unknown signal group 'nonsense'", (1, 14)),
    ("wires { r_row = 1 }\n", "needs a crossbar", (1, 1)),
    ("param d = 1 / 0\n", "division by zero", (1, 11)),
    ('include "does_not_exist.xbar"\n', "cannot include", (1, 1)),
    ("source v (a, 0) 1\n@\n", "unexpected character '@'", (2, 1)),
]


@pytest.mark.parametrize("text,message,where", BAD, ids=[b[1] for b in BAD])
def test_bad_descriptions_name_file_line_and_column(text, message, where):
    with pytest.raises(DescriptionError) as info:
        load_text(text, "bad.xbar")
    err = info.value
    assert message in err.message
    assert err.location.file.endswith("bad.xbar")
    assert (err.location.line, err.location.column) == where
    assert f"bad.xbar:{where[0]}:{where[1]}" in str(err)


def test_missing_description_file_is_a_clear_error(tmp_path):
    with pytest.raises(DescriptionError, match="cannot read description"):
        load_description(tmp_path / "nope.xbar")


@pytest.mark.parametrize("value", ["1\nresistor x (a, 0) 1", "1; param y = 2", "1 # comment", "{"])
def test_set_value_cannot_add_statements(value):
    with pytest.raises(DescriptionError, match="not a single valid expression"):
        parse_text("param r = 1\n", overrides={"r": value})


def test_list_builders_follow_parameters():
    d = parse_text("param n = 4\nparam a = fill(n, 0.2)\nparam b = linspace(0, 0.3, n)\n"
                   "param c = rand(n, 0, 1, seed = 3)\nparam e = rand(n, 0, 1, seed = 3)\n")
    assert d.params["a"] == [0.2] * 4
    assert d.params["b"] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert len(d.params["c"]) == 4 and d.params["c"] == d.params["e"] and all(0 <= v <= 1 for v in d.params["c"])
    with pytest.raises(DescriptionError, match="fill"):
        parse_text("param a = fill(0.5, 1)\n")


def test_keywords_are_allowed_as_setting_and_argument_names(tmp_path):
    # 'device' and 'sense' are statement keywords but also setting/argument names
    from circuitkit.description.parser import parse_text
    stmts = parse_text('crossbar xb {\n  rows = 2; cols = 2\n  device = vteam(iv = 0)\n}\n'
                       'stimulus { read = [read([0.1, 0.1], sense = [0, 1])] }\n', file="kw.xbar").statements
    xb = next(s for s in stmts if s.kind == "crossbar")
    assert [s.key for s in xb.settings] == ["rows", "cols", "device"]
    stim = next(s for s in stmts if s.kind == "stimulus")
    assert "sense" in stim.settings[0].value[0].kwargs


def test_model_cross_parameter_check_names_the_line(tmp_path):
    from circuitkit.description.loader import load_description
    from circuitkit.errors import DescriptionError
    f = tmp_path / "gap.xbar"
    f.write_text('title "g"\nsource v1 (a, 0) dc(0.1)\ndevice m1 (a, 0) stanford_pku(gmin = 2n, gmax = 1n)\n'
                 'analysis op()\n')
    with pytest.raises(DescriptionError) as exc:
        load_description(f)
    assert "gap.xbar:3" in str(exc.value) and "gmax" in str(exc.value)


@pytest.mark.parametrize("row,message", [("[1, 1]", "distinct indices"), ("[]", "non-empty list"),
                                         ("[0, -1]", "row"), ("1.5", "row")])
def test_program_row_lists_are_checked_where_they_stand(row, message):
    text = ('crossbar xb {\n rows = 4; cols = 4\n}\n'
            f'stimulus {{\n program = pulses(row = {row}, col = 0, amplitude = 1, width = 10n)\n}}\n')
    with pytest.raises(DescriptionError, match=message) as info:
        load_text(text, "bad.xbar")
    assert "bad.xbar:5" in str(info.value)


def test_program_rows_outside_the_array_are_refused():
    text = ('crossbar xb {\n rows = 4; cols = 4\n}\n'
            'stimulus { program = pulses(row = [1, 4], col = [0], amplitude = 1, width = 10n) }\n')
    from circuitkit.circuit.build import build_circuit
    with pytest.raises(DescriptionError, match=r"rows \[1, 4\] / columns \[0\] outside the 4x4 array"):
        build_circuit(load_text(text, "bad.xbar"))
