"""Every shipped Verilog-A model declares exactly its numpy twin's parameters.

Names, defaults, ranges (bounds and inclusiveness), instance kinds, module
name and ports must agree; a mismatch fails naming the parameter.
"""
from __future__ import annotations

import pytest

from circuitkit.devices import REGISTRY
from circuitkit.devices.va_params import lockstep_differences, parse_va, read_va
from circuitkit.errors import ParameterError

MODELS = sorted(REGISTRY)


@pytest.mark.parametrize("name", MODELS)
def test_va_file_matches_twin(name):
    differences = lockstep_differences(REGISTRY[name])
    assert not differences, f"{name}.va and its twin differ:\n  " + "\n  ".join(differences)


@pytest.mark.parametrize("name", MODELS)
def test_va_file_has_the_static_hold_for_every_state(name):
    """The state equation of the contract: one unconditional ddt() per state, the hold and
    the rate in the branches of ``$abstime == 0``, and a step bound."""
    model = REGISTRY[name]
    text = model.va_file().read_text()
    for state in model.states:
        t = state.terminal
        assert "if ($abstime == 0)" in text
        assert text.count(f"ddt(V({t}))") == 1
        assert f"        I({t}) <+ ddt(V({t}));" in text
        assert f"I({t}) <+ V({t}) - {state.init};" in text
        assert f"I({t}) <+ -" in text and f"+ 1e-12*(V({t}) - {state.init});" in text
    if model.states:
        assert "$bound_step(" in text


def _vteam_text_with(old: str, new: str) -> str:
    text = REGISTRY["vteam"].va_file().read_text()
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize("old, new, message", [
    ("parameter real roff = 1000 from", "parameter real roff = 1001 from", "parameter 'roff'"),
    ("parameter real von = -0.2 from (-inf:0);", "parameter real von = -0.2 from (-inf:0];", "parameter 'von'"),
    ("parameter real wc = 0.1 from (0:inf);", "parameter real wc = 0.1 from (0.01:inf);", "parameter 'wc'"),
    ('units="", type="instance" *)', 'units="" *)', "parameter 'x0'"),
    ("parameter real iv = 0 from [0:1];", "parameter real ivv = 0 from [0:1];", "parameter 'iv'"),
])
def test_a_changed_declaration_is_reported_by_name(old, new, message):
    module = parse_va(_vteam_text_with(old, new), "vteam.va")
    differences = lockstep_differences(REGISTRY["vteam"], module)
    assert differences and all(message in d or "'ivv'" in d for d in differences)
    assert any(message in d for d in differences)


def test_parser_evaluates_expressions_scale_factors_and_attributes():
    module = parse_va("""
        // parameter real commented = 1;
        module m(p, n, xs);
        (* desc="a; b", units="Ohm" *) parameter integer k = -2*(1 + 3)/4 + 10k exclude 0 from [-inf:1e5);
        (* type="instance" *) parameter real x0 = k/2 - 0.5m from (0:inf], y = -x0;
        endmodule""")
    assert module.name == "m" and module.ports == ("p", "n", "xs")
    k, x0, y = module.parameters
    assert (k.name, k.type, k.default, k.lower, k.upper, k.upper_inclusive) == ("k", "integer", 9998.0, None, 1e5, False)
    assert (k.description, k.units, k.instance, k.line) == ("a; b", "Ohm", False, 4)
    assert x0.default == pytest.approx(4999 - 0.5e-3) and x0.lower == 0 and not x0.lower_inclusive
    assert x0.upper is None and x0.instance
    assert y.default == -x0.default and y.instance  # attributes apply to the whole statement


def test_parse_error_names_file_and_line():
    with pytest.raises(ParameterError) as exc:
        parse_va("module m(p, n);\n\n  parameter real a = 1 from [0:;\nendmodule", "bad.va")
    assert exc.value.location.file == "bad.va" and exc.value.location.line == 3


def test_unknown_name_in_expression_is_located():
    with pytest.raises(ParameterError, match="unknown name 'b'") as exc:
        parse_va("module m(p, n);\nparameter real a = 2*b;\nendmodule", "x.va")
    assert exc.value.location.parameter == "a" and exc.value.location.line == 2


def test_shipped_files_parse():
    for name in MODELS:
        assert read_va(REGISTRY[name].va_file()).name == name
