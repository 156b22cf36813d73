"""Floating nodes: ngspice's ``rshunt`` is honoured by the behavioural engine, so both engines agree.

ngspice's ``gmin`` does not give a floating node a DC path (it goes on
junctions and into gmin stepping only); ``.options rshunt`` does, from every
node. Expected values: node b sits behind 1 kohm from a 1 V source with a
1e12 ohm shunt -> 1 V * 1e12 / (1e12 + 1e3); c and d see no source -> 0 V.
"""
from __future__ import annotations

import pytest

from circuitkit.behavioural import simulate
from circuitkit.errors import ConvergenceError
from circuitkit.workflow import load

TEXT = """title "floating"
source   v1 (a, 0) dc(1)
resistor r1 (a, b) 1k
capacitor c1 (b, c) 1p
resistor r2 (c, d) 1k
analysis op()
record v(b), v(c), v(d), i(v1)
"""


def _circuit(tmp_path, rshunt=None):
    path = tmp_path / "floating.xbar"
    path.write_text(TEXT)
    c = load(path)[1]
    if rshunt is not None:
        c.options["spice_options"] = {"rshunt": rshunt}
    return c


def test_floating_node_without_rshunt_is_a_clear_error(tmp_path):
    with pytest.raises(ConvergenceError, match="singular"):
        simulate(_circuit(tmp_path))


def test_rshunt_gives_the_closed_form(tmp_path):
    wf = simulate(_circuit(tmp_path, 1e12))
    assert float(wf["v(b)"]) == pytest.approx(1e12 / (1e12 + 1e3), rel=1e-12)
    assert abs(float(wf["v(c)"])) < 1e-15 and abs(float(wf["v(d)"])) < 1e-15
    # the source feeds two shunts (a and b): 2 pA, minus the tiny drop across r1
    assert abs(float(wf["i(v1)"])) == pytest.approx(1 / 1e12 + float(wf["v(b)"]) / 1e12, rel=1e-9)


@pytest.mark.spice
def test_rshunt_floating_node_agrees_with_ngspice(tmp_path):
    from circuitkit.engines import simulate as run
    c = _circuit(tmp_path, 1e12)
    beh, spice = simulate(c), run(c, "spice")
    for name in ("v(b)", "v(c)", "v(d)", "i(v1)"):
        assert float(beh[name]) == pytest.approx(float(spice[name]), rel=1e-9, abs=1e-18), name
