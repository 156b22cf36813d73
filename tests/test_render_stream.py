"""Rendering streams: memory stays bounded as the crossbar grows; names are checked without listing them.

The 2048x2048 measurement (peak RSS of the whole ``generate`` process) is
``make render-2048``; here the renderer's own allocations are measured with
tracemalloc on two sizes, which is cheap and catches any per-element list.
"""
from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest

from circuitkit.circuit.model import Circuit, Resistors, VoltageSources
from circuitkit.circuit.waveforms import DC
from circuitkit.netlist import NetlistError, render_netlist, render_text
from circuitkit.netlist.render import _Names, check_unique_blocks
from circuitkit.workflow import load

BIG = """title "read {n}"
crossbar xb {{
    rows = {n}; cols = {n}; cell = 1R
    device = vteam(iv = 0, ron = 10k, roff = 100k, voff = 0.5, von = -0.5)
    state = uniform(0.0, 1.0, seed = 11)
}}
wires {{ r_row = 2.5; r_col = 2.5 }}
driver rows {{ r_out = 10 }}
sense cols {{ tia = ideal(rf = 500) }}
stimulus {{ duration = 20n
    read = fill({n}, 0.1) }}
analysis op()
record column_currents
"""


class _Null(io.TextIOBase):
    def __init__(self):
        self.bytes = 0

    def write(self, s):
        self.bytes += len(s)
        return len(s)


def _render_peak(tmp_path, n: int) -> tuple[int, int, int]:
    path = tmp_path / f"r{n}.xbar"
    path.write_text(BIG.format(n=n))
    _, c = load(path)
    sink = _Null()
    tracemalloc.start()
    try:
        render_netlist(c, {"vteam": "/opt/ck/vteam.osdi"}, sink)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, sink.bytes, sum(g.n for g in c.groups)


def test_render_memory_does_not_grow_with_the_crossbar(tmp_path):
    small, small_bytes, small_n = _render_peak(tmp_path, 48)
    large, large_bytes, large_n = _render_peak(tmp_path, 144)       # 9x the elements
    assert large_bytes > 8 * small_bytes
    # what grows is numeric work arrays (x0, card numbers, finiteness masks: measured 45 B per element);
    # names held for the whole deck cost >= 60 B each per name (the old renderer: ~380 B per element)
    per_element = (large - small) / (large_n - small_n)
    assert per_element < 100, per_element


def test_names_are_unique_by_structure():
    x = _Names("x", (3, 4))
    check_unique_blocks([x, _Names("x_5", (4,)), _Names("y", (2,)), _Names("x_1_01", ())], "node")
    with pytest.raises(NetlistError, match=r"'X_2_0' occurs twice.*also as 'x_2_0'"):
        check_unique_blocks([x, _Names("X_2", (4,))], "node")
    with pytest.raises(NetlistError, match="occurs twice"):
        check_unique_blocks([x, _Names("x_1_2", ())], "node")
    # a partial block (index) only collides where the positions overlap
    check_unique_blocks([_Names("a", (4,), np.array([0, 1])), _Names("a_3", ())], "node")
    with pytest.raises(NetlistError, match="'a_1' occurs twice"):
        check_unique_blocks([_Names("a", (4,), np.array([0, 1])), _Names("a_1", ())], "node")


def test_instance_names_that_collide_across_groups_are_refused():
    c = Circuit("collide")
    a = c.add_nodes("a", (2,))
    c.add(VoltageSources("v", (2,), p=a, n_=[0, 0], waveforms=[DC(1.0), DC(2.0)]))
    c.add(Resistors("r", (2,), a=a, b=[0, 0], r=[1.0, 2.0]))
    c.add(Resistors("r_1", (), a=[a[0]], b=[0], r=[3.0]))
    with pytest.raises(NetlistError, match="element 'Rr_1' occurs twice"):
        render_text(c, {})


def test_what_would_not_fit_is_refused_with_the_estimate(tmp_path, monkeypatch):
    import collections

    import circuitkit.simulators.base as base
    from circuitkit.engines import simulate, write_netlist
    from circuitkit.errors import DescriptionError
    path = tmp_path / "r.xbar"
    path.write_text(BIG.format(n=64))
    _, c = load(path)
    n_el = sum(g.n for g in c.groups)
    netlist = base.estimate_netlist_bytes(c)
    sink = _Null()
    render_netlist(c, {"vteam": "/opt/ck/vteam.osdi"}, sink)
    assert sink.bytes < netlist < 2 * sink.bytes               # an upper estimate, not a wild one
    memory = base.SIM_FIXED_BYTES + 3000 * n_el
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(base.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 10**5, 10**5))
    with pytest.raises(DescriptionError, match=rf"too large: the netlist needs an estimated {netlist / 1e6:.3g} MB "
                                               rf"\({n_el:,} elements\), .* has 0\.1 MB free"):
        write_netlist(c, tmp_path / "deck.cir")
    assert not (tmp_path / "deck.cir").exists()
    monkeypatch.undo()
    monkeypatch.setattr(base, "_mem_available", lambda: 50 << 20)
    for engine in ("spice", "vacask"):
        with pytest.raises(DescriptionError, match=rf"r\.xbar, parameter 'design': too large: {engine} would "
                                                   rf"need an estimated {memory / 1e9:.3g} GB of memory for "
                                                   rf"{n_el:,} elements, 52\.4 MB is available"):
            simulate(c, engine)
