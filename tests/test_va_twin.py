"""Twins generated from the Verilog-A source, the portability rule and the numeric lockstep."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from circuitkit.devices import REGISTRY
from circuitkit.devices.va_twin import VaSubsetError, generate, portability_issues, twin_from_va

MODELS = sorted(REGISTRY)
VARIANTS = {"vteam": [{}, {"iv": 1}], "linear_drift": [{"window": w} for w in range(4)],
            "volatile": [{}, {"klt": 1e5}]}


@pytest.mark.parametrize("name", MODELS)
def test_generated_twin_matches_the_hand_written_one(name):
    hand = REGISTRY[name]
    gen = twin_from_va(hand.va_file())
    assert [p.name for p in gen.parameters] == [p.name for p in hand.parameters]
    assert gen.defaults() == hand.defaults()
    assert [(s.name, s.init, s.lower, s.upper, s.on_bound) for s in gen.states] == \
           [(s.name, s.init, s.lower, s.upper, s.on_bound) for s in hand.states]
    rng = np.random.default_rng(3)
    n = 4000
    v = rng.uniform(-3, 3, n)
    v[:5] = 0.0
    x = np.vstack([rng.uniform(s.lower - 0.05, s.upper + 0.05, n) for s in hand.states]) if hand.states \
        else np.zeros((0, n))
    for prm in VARIANTS.get(name, [{}]):
        p = hand.resolve(prm)
        a, b = hand.current(v, x, p), gen.current(v, x, p)
        assert np.all(np.abs(a - b) <= 1e-12 * np.abs(a) + 1e-300), name
        if hand.states:
            fa, fb = hand.state_derivative(v, x, p), gen.state_derivative(v, x, p)
            scale = 1e-12 * np.max(np.abs(fa))      # floor where a rate is 0 (below threshold)
            assert np.all(np.abs(fa - fb) <= 1e-12 * np.abs(fa) + scale), name
            ha, hb = hand.bound_step(v, x, p), gen.va_bound_step(v, x, p)
            same_inf = np.isinf(ha) == np.isinf(hb)
            assert same_inf.all() and np.allclose(ha[np.isfinite(ha)], hb[np.isfinite(hb)], rtol=1e-12, atol=0)


@pytest.mark.parametrize("text, where, what", [
    ("analog begin @(cross(V(p, n))) x = 1; end", (7, 14), "'@'"),
    ("analog begin I(p, n) <+ transition(V(p, n), 0, 1n); end", (7, 25), "transition"),
    ("analog begin I(p, n) <+ V(p, n)*$random; end", (7, 33), "$random"),
    ("analog begin case (1) endcase end", (7, 14), "case"),
    ("analog begin I(p, n) <+ erfc(V(p, n)); end", (7, 25), "erfc"),
    ("analog begin if (V(p, n) > 0) I(xs) <+ ddt(V(xs)); I(p, n) <+ V(p, n); end", (7, 40), "under a condition"),
    ('analog begin I(p, n) <+ $limit(V(p, n), "bogus", 1)/r; end', (7, 41), '"bogus"'),
])
def test_constructs_outside_the_subset_are_refused_with_line_and_column(text, where, what):
    source = ("module m(p, n, xs);\ninout p, n, xs;\nelectrical p, n, xs;\nparameter real r = 1 from (0:inf);\n"
              '(* type="instance" *) parameter real x0 = 0 from [0:1];\nreal x;\n' + text + "\nendmodule\n")
    with pytest.raises(VaSubsetError) as err:
        generate(source, "m.va")
    assert (err.value.location.line, err.value.location.column) == where, str(err.value)
    assert what in str(err.value) or what.strip("'") in str(err.value)


def test_limit_is_its_value_in_the_twin(tmp_path):
    """$limit steers the simulator's Newton iterations only: the twin evaluates its first argument."""
    body = ("module m(p, n);\ninout p, n;\nelectrical p, n;\nparameter real r = 2 from (0:inf);\nreal v;\n"
            "analog begin v = {v}; I(p, n) <+ v*v/r; end\nendmodule\n")
    twins = []
    for k, v in enumerate(("V(p, n)", '$limit(V(p, n), "pnjlim", 0.05, 0.6)')):
        (tmp_path / str(k)).mkdir()
        (tmp_path / str(k) / "m.va").write_text(body.format(v=v))
        twins.append(twin_from_va(tmp_path / str(k) / "m.va"))
    plain, limited = twins
    v = np.linspace(-3, 3, 61)
    p = plain.resolve({})
    np.testing.assert_array_equal(limited.current(v, np.zeros((0, v.size)), limited.resolve({})),
                                  plain.current(v, np.zeros((0, v.size)), p))
    np.testing.assert_allclose(plain.current(v, np.zeros((0, v.size)), p), v * v / 2)


def test_portability_rule_flags_the_old_pattern_and_hidden_state():
    source = """module m(p, n, xs);
inout p, n, xs; electrical p, n, xs;
(* type="instance" *) parameter real x0 = 0 from [0:1];
real f, last;
analog begin
    f = last + V(p, n);
    last = V(p, n);
    I(p, n) <+ V(p, n)*$rdist_normal(1, 0, 1);
    if ($abstime == 0)
        I(xs) <+ ddt(V(xs)) + V(xs) - x0;
    else
        I(xs) <+ ddt(V(xs)) - f;
end
endmodule
"""
    issues = portability_issues(source, "m.va")
    text = "\n".join(issues)
    assert "m.va:6:9: variable 'last' is read before" in text
    assert "m.va:8:24: '$rdist_normal'" in text
    assert "m.va:10:18: ddt() under a condition" in text and "m.va:12:18: ddt() under a condition" in text
    assert "m.va:12:18: a second ddt() on 'xs'" in text


@pytest.mark.parametrize("name", MODELS)
def test_shipped_models_are_portable(name):
    va = REGISTRY[name].va_file()
    assert portability_issues(va.read_text(), str(va)) == []


@pytest.mark.spice
@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")
@pytest.mark.parametrize("name", MODELS)
def test_numeric_lockstep_of_the_verilog_a_and_the_twin(name):
    """The compiled Verilog-A, evaluated by ngspice on a voltage x state grid, against the twin."""
    from circuitkit.devices.probe import lockstep
    for prm in VARIANTS.get(name, [{}]):
        result = lockstep(REGISTRY[name], prm)
        assert result.passed, "\n".join(str(f) for f in result.failures[:5])
        assert result.points >= 13


@pytest.mark.spice
@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")
def test_numeric_lockstep_names_the_grid_point_where_a_twin_differs():
    from circuitkit.devices.probe import lockstep

    class Wrong(REGISTRY["vteam"]):
        @staticmethod
        def dxdt(v, x, p):   # OFF rate 1e-6 too large
            f = REGISTRY["vteam"].dxdt(v, x, p)
            return np.where(f > 0, f * (1 + 1e-6), f)

    result = lockstep(Wrong)
    assert not result.passed
    assert all(f.quantity == "dx/dt" and f.v > 0.02 for f in result.failures)
    assert "dx/dt at v = " in str(result.failures[0]) and "x = " in str(result.failures[0])


@pytest.mark.parametrize("name", [n for n in MODELS if REGISTRY[n].states])
def test_declared_on_bound_is_where_the_read_conductance_is_highest(name):
    model = REGISTRY[name]
    s = model.states[0]
    p = model.resolve({})
    g_low, g_high = (float(model.read_conductance(0.1, np.array([x]), p)[0]) for x in (s.lower, s.upper))
    assert s.on_bound == ("upper" if g_high > g_low else "lower")
    g_on, g_off = (float(model.read_conductance(0.1, np.array([x]), p)[0])
                   for x in (model.on_value(), model.off_value()))
    assert g_on > g_off


def test_twin_cli_writes_a_generated_twin_and_refuses_with_a_location(tmp_path, capsys):
    from circuitkit.cli import main
    va = tmp_path / "dollar.va"
    va.write_text("""module dollar(p, n, xs);
inout p, n, xs; electrical p, n, xs;
parameter real g$1 = 2 from (0:inf);
(* type="instance" *) parameter real x0 = 0.25 from [0:1];
real a$b;
analog begin
    a$b = g$1*V(p, n);
    I(p, n) <+ a$b*V(xs);
    I(xs) <+ ddt(V(xs));
    if ($abstime == 0) I(xs) <+ V(xs) - x0; else I(xs) <+ -V(p, n) + 1e-12*(V(xs) - x0);
end
endmodule
""")
    out = tmp_path / "twin.py"
    assert main(["models", "twin", str(va), "-o", str(out)]) == 0
    cls = twin_from_va(va)
    p = cls.resolve({})
    assert float(cls.current(np.array([0.5]), np.array([[0.25]]), p)[0]) == pytest.approx(2 * 0.5 * 0.25)
    assert float(cls.dxdt(np.array([0.5]), np.array([[0.25]]), p)[0, 0]) == pytest.approx(0.5)
    va.write_text(va.read_text().replace("    I(xs) <+ ddt(V(xs));\n", "    I(xs) <+ idt(V(xs));\n"))
    assert main(["models", "twin", str(va)]) != 0
    assert "dollar.va:9:14: function 'idt'" in capsys.readouterr().err


@pytest.mark.spice
@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")
def test_the_documented_template_is_portable_and_in_lockstep(tmp_path):
    """The user-model template of docs/models.md compiles, passes the portability rule,
    gets a generated twin, and the twin agrees with the compiled Verilog-A."""
    import re
    from pathlib import Path

    from circuitkit.devices.probe import lockstep
    doc = (Path(__file__).resolve().parent.parent / "docs" / "models.md").read_text()
    source = re.search(r"```verilog\n(.*?)```", doc, re.S).group(1)
    va = tmp_path / "mymodel.va"
    va.write_text(source)
    assert portability_issues(source, str(va)) == []
    twin = twin_from_va(va)
    assert [s.name for s in twin.states] == ["x"]
    result = lockstep(twin, va_file=va)
    assert result.passed, "\n".join(map(str, result.failures[:5]))
