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
    assert [p.kind for p in xb.phases] == ["read", "read"]


def test_roles_cover_every_group_and_clamps_are_marked():
    _, c = load("testbenches/read_8x8.xbar", overrides={})
    roles = {g.name: g.role for g in c.groups}
    assert roles[c.crossbar.cells] is Role.CELL
    assert all(roles[s] is Role.STIMULUS for s in c.crossbar.row_sources)
    assert Role.OTHER not in roles.values()
    for g in c.groups_with(Role.STIMULUS):
        assert isinstance(g, VoltageSources)


def test_no_module_outside_the_builder_parses_crossbar_names():
    """Consumers find crossbar parts through circuit.crossbar, never by element, node or signal name patterns."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "circuitkit"
    pattern = re.compile(r'f"\{[^}]*\}_(m|vrow|vcol|am|vsel|wl|bl|stuck)"|icol_\{|vout_\{|x_\{i\}|'
                         r'instance_name\([^)]*\)\[|options\[["\'](crossbar|rows|cols|phases|sense|sensed|derived|'
                         r'intended_states|stuck_cells|stimulus_stop|records)')
    allowed = {"circuit/build.py"}
    offenders = [f"{p.relative_to(root)}:{n}" for p in root.rglob("*.py")
                 if str(p.relative_to(root)) not in allowed
                 for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders


def test_signal_names_come_from_the_layout():
    from circuitkit.engines import simulate
    _, c = load("testbenches/read_8x8.xbar")
    xb = c.crossbar
    wf = simulate(c, "behavioural")
    assert sorted(xb.current_signals) == list(range(8)) and set(xb.tia_signals) == set(range(8))
    for j in range(8):   # ideal TIA: v = -rf * i, derived from the recorded current
        np.testing.assert_allclose(wf[xb.tia_signals[j]], -xb.sense.rf * np.asarray(wf[xb.current_signals[j]]))
    read = xb.read_phases()[0]
    assert read.rows == tuple(range(8)) and read.cols == tuple(range(8))
    assert (read.cell_classes(8, 8) == 2).all()


def test_supply_and_state_signals_are_typed(tmp_path):
    from circuitkit.engines import simulate
    f = tmp_path / "p.xbar"
    f.write_text('crossbar xb { rows = 2; cols = 3; cell = 1R; device = vteam(); state = 0.5 }\n'
                 'wires { r_row = 1; r_col = 1 }\n'
                 'stimulus { duration = 10n; program = pulses(row = 1, col = 2, amplitude = 1.0, width = 5n, '
                 'count = 1, gap = 5n, scheme = v2) }\n'
                 'analysis tran(step = 0.5n)\nrecord states, supply_currents\n')
    _, c = load(f)
    xb = c.crossbar
    assert xb.state_signals["x"].shape == (2, 3) and xb.state_signals["x"][1, 2] == "x_1_2"
    assert set(xb.supply_signals) == {"isup_row_0", "isup_row_1", "isup_col_0", "isup_col_1", "isup_col_2"}
    ph = xb.program_phases()[0]
    assert ph.cell_classes(2, 3).tolist() == [[0, 0, 1], [1, 1, 2]]
    wf = simulate(c, "behavioural")
    assert all(name in wf.signals for name in xb.supply_signals)
