"""Valid descriptions build the circuit the documentation describes (not a different one, silently)."""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit.circuit.build import build_circuit
from circuitkit.description.loader import load_description, load_text
from circuitkit.errors import DescriptionError


def _x0(design) -> np.ndarray:
    c = build_circuit(design)
    return np.asarray(c.crossbar.cell_devices(c).params["x0"], dtype=float).ravel()


def test_paths_in_an_included_file_are_relative_to_that_file(tmp_path):
    """README: paths (in include, models, file(...), weights(...)) are relative to the file that names them.
    They were taken relative to the top-level description, so a file of the same name beside it was used."""
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "s.csv").write_text("0.1,0.2\n0.3,0.4\n")
    (inc / "r.csv").write_text("0.2,0.15\n")
    (tmp_path / "s.csv").write_text("0.9,0.9\n0.9,0.9\n")          # decoys beside the top-level file
    (tmp_path / "r.csv").write_text("0.05,0.05\n0.05,0.05\n")
    (inc / "xb.xbar").write_text('crossbar xb { rows = 2; cols = 2; state = file("s.csv") }\n'
                                 'stimulus { reads = file("r.csv") }\n')
    (tmp_path / "main.xbar").write_text('include "inc/xb.xbar"\nanalysis tran(step = 1n)\n')
    design = load_description(tmp_path / "main.xbar")
    assert [ph.vector for ph in design.stimulus] == [[0.2, 0.15]]
    assert _x0(design).tolist() == [0.1, 0.2, 0.3, 0.4]
    # the top-level file's own paths are still relative to it
    (tmp_path / "own.xbar").write_text('crossbar xb { rows = 2; cols = 2; state = file("s.csv") }\n'
                                       'stimulus { reads = file("r.csv") }\n')
    own = load_description(tmp_path / "own.xbar")
    assert _x0(own).tolist() == [0.9] * 4 and len(own.stimulus) == 2


def test_crossbar_device_initial_state_parameter_is_the_cells_initial_state():
    """README: device = vteam(...) # model and parameter overrides; x0 is vteam's initial state. Without a
    state setting the cells started at 0.5 (the state setting's default) whatever x0 said."""
    text = "crossbar xb {{ rows = 1; cols = 2; device = vteam(x0 = 0.9){state} }}\nstimulus {{ read = [0.1] }}\n"
    assert _x0(load_text(text.format(state=""))).tolist() == [0.9, 0.9]
    assert _x0(load_text(text.format(state="; state = 0.2"))).tolist() == [0.2, 0.2]      # state still rules
    assert _x0(load_text(text.format(state="").replace("(x0 = 0.9)", ""))).tolist() == [0.5, 0.5]


def test_duration_set_again_in_a_second_stimulus_block_is_refused():
    """duration is 'the length of each read phase' (one value for the description): a second stimulus block's
    duration silently re-timed the first block's reads."""
    text = ("crossbar xb { rows = 2; cols = 2 }\n"
            "stimulus { duration = 20n; read = [0.2, 0.1] }\n"
            "stimulus { duration = 50n; read = [0.1, 0.1] }\n")
    with pytest.raises(DescriptionError, match=r"'duration' set twice \(first at line 2\)") as exc:
        load_text(text)
    assert exc.value.location.line == 3
    ok = load_text(text.replace("duration = 50n; ", ""))
    assert ok.phase_duration == 20e-9 and len(ok.stimulus) == 2


@pytest.mark.parametrize("text, value", [("1Meg", 1e6), ("1MEG", 1e6), ("2.5meg", 2.5e6), ("1M", 1e-3),
                                         ("1MIL", 25.4e-6), ("1k", 1e3)])
def test_suffixes_are_case_insensitive_as_in_spice(text, value):
    """units.py: suffixes are case-insensitive like SPICE; 1Meg and 1MEG were refused as 'not a number'."""
    design = load_text(f"source v (a, 0) 1\nresistor r1 (a, 0) {text}\nanalysis op()\n")
    assert design.resistors[0].r == pytest.approx(value, rel=1e-15)


def test_read_phases_after_tran_stop_have_no_outputs():
    """A tran(stop=) shorter than the stimulus ended the run before reads 1 and 2 were sampled; outputs.parquet
    reported them anyway, with the last simulated current (np.interp clamps), as if they had been read."""
    from circuitkit.engines import simulate
    from circuitkit.outputs import outputs_table
    text = ("crossbar xb { rows = 2; cols = 2 }\n"
            "stimulus { duration = 20n; read = [0.2, 0.1]; read = [0.1, 0.2]; read = [0.2, 0.2] }\n"
            "analysis tran(step = 1n STOP)\nrecord column_currents, tia_out\n")
    full, short = (build_circuit(load_text(text.replace(" STOP", s))) for s in ("", ", stop = 30n"))
    t_full, t_short = (outputs_table(c, simulate(c, "behavioural")) for c in (full, short))
    assert sorted(set(t_full.phase)) == [0, 1, 2] and sorted(set(t_short.phase)) == [0]
    assert np.allclose(t_short.current, t_full[t_full.phase == 0].current, rtol=1e-9)


@pytest.mark.parametrize("cell, refused", [("1R", True), ("1S1R", True), ("1T1R", False)])
def test_read_select_needs_word_selects(cell, refused):
    """README: read(..., select = [0, 1]) word-selects rows 0 and 1 (1T1R). A 1R or 1S1R array has no
    word-select: every row was still driven, only the phase's 'selected rows' (energy classes) changed."""
    sel = "; selector = selector()" if cell == "1S1R" else ""
    text = (f"crossbar xb {{ rows = 2; cols = 2; cell = {cell}{sel} }}\n"
            "stimulus { read = read([0.2, 0.1], select = [0]) }\n")
    if refused:
        with pytest.raises(DescriptionError, match="select"):
            load_text(text)
    else:
        assert build_circuit(load_text(text)).crossbar.phases[0].rows == (0,)
