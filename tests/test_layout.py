"""The typed crossbar layout the builder puts on the circuit matches the circuit's own elements."""
import numpy as np

from circuitkit.circuit.layout import Role
from circuitkit.circuit.model import Devices, VoltageSources
from circuitkit.workflow import load


def test_layout_nodes_are_the_cell_terminals():
    _, c = load("testbenches/read_8x8.xbar")
    xb = c.crossbar
    cells = c.group(xb.cells, Devices)
    assert xb.shape == (8, 8) and cells.n == 64
    # cell (i, j) sits between wl[i, j] and bl[i, j] of a 1R array, states on the declared terminals
    assert np.array_equal(cells.p, xb.wl.ravel()) and np.array_equal(cells.n_, xb.bl.ravel())
    assert np.array_equal(cells.states.reshape(xb.state_nodes.shape), xb.state_nodes)
    assert xb.state_names == tuple(s.name for s in cells.model.states)
    assert [p.kind for p in xb.phases] == [ph["kind"] for ph in c.options["phases"]]


def test_roles_cover_every_group_and_clamps_are_marked():
    _, c = load("testbenches/read_8x8.xbar", overrides={})
    roles = {g.name: g.role for g in c.groups}
    assert roles[c.crossbar.cells] is Role.CELL
    assert all(roles[s] is Role.STIMULUS for s in c.crossbar.row_sources)
    assert Role.OTHER not in roles.values()
    for g in c.groups_with(Role.STIMULUS):
        assert isinstance(g, VoltageSources)
