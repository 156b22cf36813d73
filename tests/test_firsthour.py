"""What a newcomer meets first: help texts with defaults, no silent averaging, no half-written netlists,
no silent re-wiring of crossbar nodes, model references that cite papers."""
import argparse

import pandas as pd
import pytest

from circuitkit import devices
from circuitkit.cli import build_parser, main
from circuitkit.errors import DescriptionError
from circuitkit.workflow import load


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def test_every_option_has_help_with_its_default():
    missing = []
    for name, sub in _subparsers(build_parser()).items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = sub.formatter_class(prog="x")._get_help_string(action) if action.help else ""
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not text:
                missing.append(f"{label}: no help")
            elif action.default not in (None, False, [], argparse.SUPPRESS) and "default" not in text:
                missing.append(f"{label}: default {action.default!r} not shown")
    assert not missing, missing
    text = _subparsers(build_parser())["simulate"].format_help()
    assert "(default: behavioural)" in " ".join(text.split())


def test_table_says_what_it_averaged_over(tmp_path, capsys):
    from tests.test_sweep import small_read_sweep
    path = small_read_sweep(tmp_path, rw=(0.5, 2.0), sizes=(4, 6))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["table", str(out), "--index", "rows", "--values", "read_error"]) == 0
    text = capsys.readouterr().out
    assert "note: each cell is the mean over rw (2 values)" in text
    table = pd.read_parquet(out / "results.parquet")
    mean6 = table[table.rows == 6]["read_error_behavioural"].mean()
    assert f"{mean6:.4g}" in text
    # cols is zipped with rows: it never varies within a cell, so no note for it; with rw shown, no note at all
    assert main(["table", str(out), "--index", "rows", "--columns", "rw", "--values", "read_error"]) == 0
    assert "note:" not in capsys.readouterr().out


def test_failed_generate_leaves_no_file(tmp_path, monkeypatch, capsys):
    import circuitkit.netlist.render as render
    from circuitkit.netlist.safety import NetlistError

    def broken(circuit, osdi, fh):
        fh.write("* partial\n")
        raise NetlistError("refused for the test")
    monkeypatch.setattr(render, "render_netlist", broken)
    out = tmp_path / "sub" / "x.cir"
    assert main(["generate", "testbenches/read_8x8.xbar", "-o", str(out)]) == 2
    assert "refused for the test" in capsys.readouterr().err
    assert not out.exists() and not list(out.parent.iterdir())


def test_source_on_a_crossbar_node_is_refused_with_its_location(tmp_path):
    f = tmp_path / "s.xbar"
    f.write_text("crossbar xb { rows = 2; cols = 2; cell = 1R }\nstimulus { duration = 10n; read = [0.1, 0.1] }\n"
                 "source vp (xb_wl_0, 0) pwl([0, 1n], [0, 1])\nanalysis tran(step = 1n)\n")
    with pytest.raises(DescriptionError) as err:
        load(f)
    assert err.value.location.line == 3 and "xb_wl_0" in str(err.value) and "crossbar 'xb'" in str(err.value)


def test_models_show_cites_papers_not_files(capsys):
    for m in devices.list_models():
        assert main(["models", "show", m.name]) == 0
        text = capsys.readouterr().out
        assert ".md" not in text, m.name
