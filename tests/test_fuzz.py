"""Fuzz in the suite: a few thousand generated and mutated descriptions through load and the renderer.

Every case must end in a rendered netlist whose every line is one the templates
write, or in a CircuitkitError with a location (file and line, or a parameter);
no traceback, no case over 5 s, no error quoting a planted secret. The long run
(100,000 cases, in chunks, with a report) is ``make fuzz``; see tests/fuzzkit.py.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import fuzzkit  # noqa: E402

from circuitkit.description.parser import parse_text  # noqa: E402
from circuitkit.errors import DescriptionError  # noqa: E402

CASES = 1200


def test_fuzz_corpus_has_no_traceback_hang_injection_or_unlocated_error():
    t0 = time.perf_counter()
    results = fuzzkit.run_range(0, CASES)
    bad = [r for r in results if r["verdict"] in fuzzkit.BAD]
    verdicts = {v: sum(r["verdict"] == v for r in results) for v in ("ok", "refused")}
    assert not bad, "\n".join(f"seed {r['seed']} {r['kind']}: {r['verdict']}: {r['detail']}" for r in bad[:10])
    # the corpus reaches the renderer, not only the parser: a fair share of cases load and render
    assert verdicts["ok"] > CASES // 20 and verdicts["refused"] > CASES // 2
    assert max(r["seconds"] for r in results) < fuzzkit.SLOW_S
    print(f"{CASES} cases in {time.perf_counter() - t0:.1f} s: {verdicts}")


def test_the_injection_check_sees_an_injected_line():
    clean = "* t\nR1 a 0 1k\n.options klu\n.control\npre_osdi /x/v.osdi\nrun\nwrite circuitkit.raw\nquit\n.endc\n.end\n"
    assert fuzzkit.netlist_problems(clean, {"/x/v.osdi"}) == []
    assert fuzzkit.netlist_problems(clean.replace("run\n", "shell touch /tmp/x\nrun\n"), {"/x/v.osdi"})
    assert fuzzkit.netlist_problems(clean + ".control\nrun\n.endc\n", {"/x/v.osdi"})
    assert fuzzkit.netlist_problems(clean.replace("R1 a 0 1k", "R1 a 0 {1k}"), {"/x/v.osdi"})
    assert fuzzkit.netlist_problems(clean.replace("R1 a 0 1k", ".include /etc/passwd"), {"/x/v.osdi"})


_atoms = st.sampled_from(["0", "1", "-1", "2.5", "1k", "10n", "1e300", "1e-300", "1e999", "inf", "pi", "x",
                          "exp(1000)", "floor(inf)", "sqrt(-1)", "log(0)", "[1, 2]", "fill(3, 1)"])
_exprs = st.recursive(_atoms, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from([" + ", " - ", " * ", " / ", " ** "]), inner).map("".join),
    inner.map(lambda e: f"({e})"), inner.map(lambda e: f"-{e}"),
    st.tuples(st.sampled_from(["sqrt", "exp", "log", "abs", "floor", "min", "max"]), inner)
    .map(lambda t: f"{t[0]}({t[1]})"),
    st.lists(inner, min_size=1, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]")), max_leaves=16)


@settings(max_examples=300, deadline=5000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(_exprs)
def test_any_expression_is_a_finite_value_or_a_located_error(expr):
    try:
        parsed = parse_text(f"param x = 1\nparam a = {expr}\n", "h.xbar")
    except DescriptionError as exc:
        assert exc.location.line == 2 and exc.location.column is not None
        return
    value = parsed.params["a"]

    def finite(v):
        if isinstance(v, list):
            return all(finite(x) for x in v)
        return not isinstance(v, float) or math.isfinite(v)
    assert finite(value), (expr, value)


@pytest.mark.parametrize("depth", [10, 64, 65, 500, 5000])
def test_nesting_is_depth_limited_not_recursion_limited(depth):
    parens = parse_text("param a = " + "(" * depth + "1" + ")" * depth + "\n", "n.xbar")
    assert parens.params["a"] == 1.0                  # parentheses make no tree level: any depth is fine
    for text in ("[" * depth + "1" + "]" * depth, "- " * depth + "1", "abs(" * depth + "1" + ")" * depth):
        if depth <= 64:
            parse_text(f"param a = {text}\n", "n.xbar")
        else:
            with pytest.raises(DescriptionError, match="nested more than 64") as exc:
                parse_text(f"param a = {text}\n", "n.xbar")
            assert exc.value.location.line == 1
