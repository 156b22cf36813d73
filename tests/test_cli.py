"""The command line: files written, exit codes, errors that name file and line."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from circuitkit.cli import main

TB = Path(__file__).resolve().parent.parent / "testbenches"


def test_simulate_behavioural_writes_the_three_files(tmp_path, capsys):
    out = tmp_path / "r8"
    assert main(["simulate", str(TB / "read_8x8.xbar"), "--engine", "behavioural", "--out", str(out)]) == 0
    wf = pd.read_parquet(out / "waveforms.parquet")
    assert "time" in wf.columns and "icol_0" in wf.columns and len(wf) > 10
    outs = pd.read_parquet(out / "outputs.parquet")
    assert list(outs.columns) == ["phase", "column", "current", "tia_v", "adc_code", "adc_clipped"]
    assert len(outs) == 2 * 8 and (outs["adc_code"] >= 0).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == 8 and summary["engine"] == "behavioural" and len(summary["description_hash"]) == 64


def test_set_override_changes_the_result(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    main(["simulate", str(TB / "read_8x8.xbar"), "--out", str(a)])
    main(["simulate", str(TB / "read_8x8.xbar"), "--set", "rw=50", "--out", str(b)])
    ia = pd.read_parquet(a / "outputs.parquet")["current"].abs().sum()
    ib = pd.read_parquet(b / "outputs.parquet")["current"].abs().sum()
    assert ib < ia        # more IR drop, less current
    sa = json.loads((a / "summary.json").read_text())["description_hash"]
    sb = json.loads((b / "summary.json").read_text())["description_hash"]
    assert sa != sb


def test_bad_description_exits_2_with_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.xbar"
    bad.write_text('title "x"\ncrossbar xb {\n  rows = 0\n  cols = 4\n}\n')
    assert main(["simulate", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.xbar:3" in err and "rows" in err
    assert not (tmp_path / "o").exists()


def test_unknown_set_parameter_is_an_error(tmp_path, capsys):
    assert main(["simulate", str(TB / "read_8x8.xbar"), "--set", "nosuch=1", "--out", str(tmp_path / "o")]) == 2
    assert "nosuch" in capsys.readouterr().err


def test_models_list_and_show(capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "vteam" in listing
    assert main(["models", "show", "vteam"]) == 0
    shown = capsys.readouterr().out
    assert "ron" in shown and "x0" in shown and "instance" in shown


@pytest.mark.spice
def test_generate_writes_a_netlist(tmp_path, capsys):
    out = tmp_path / "n.cir"
    assert main(["generate", str(TB / "read_8x8.xbar"), "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("* circuitkit netlist") and ".options klu" in text.lower() and "pre_osdi" in text


@pytest.mark.spice
def test_simulate_spice_writes_the_same_files(tmp_path):
    out = tmp_path / "s8"
    assert main(["simulate", str(TB / "read_8x8.xbar"), "--engine", "spice", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "spice" and summary["engine_meta"]["ngspice_version"]
    outs = pd.read_parquet(out / "outputs.parquet")
    assert len(outs) == 16


@pytest.mark.spice
def test_compare_report_and_plot(tmp_path):
    report, plot = tmp_path / "r.json", tmp_path / "p.png"
    rc = main(["compare", str(TB / "read_8x8.xbar"), "--report", str(report), "--plot", str(plot)])
    data = json.loads(report.read_text())
    assert set(data) >= {"passed", "signals", "timings"}
    assert rc == (0 if data["passed"] else 1)
    assert data["passed"]
    assert all({"name", "rel_rms_error", "max_abs_error"} <= set(s) for s in data["signals"])
    per_column = data["outputs"]["column_rel_error"]
    assert sorted(map(int, per_column)) == list(range(8)) and max(per_column.values()) < 1e-6
    assert plot.stat().st_size > 1000


# -- output paths (a documentation audit found tracebacks) --------------------------------------------

@pytest.mark.parametrize("args", [
    ["simulate", str(TB / "read_8x8.xbar")],
    ["stdp", str(TB / "stdp_vteam.xbar")],
    ["characterise", str(TB / "multisynapse_train.xbar"), "--protocol", "ppf"],
    ["snn", str(TB / "snn_coincidence.toml")],
], ids=lambda a: a[0])
def test_an_out_directory_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, args):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert main([*args, "--out", str(afile)]) == 2
    err = capsys.readouterr().err
    assert "afile' exists and is not a directory" in err and "Traceback" not in err
    assert afile.read_text() == "keep me"
    assert main([*args, "--out", str(afile / "below")]) == 2
    assert "a part of this path is a file" in capsys.readouterr().err


def test_a_file_option_naming_a_directory_is_refused_before_any_work(tmp_path, capsys):
    for args in (["generate", str(TB / "read_8x8.xbar"), "-o", str(tmp_path)],
                 ["compare", str(TB / "vteam_sine.xbar"), "--report", str(tmp_path)],
                 ["compare", str(TB / "vteam_sine.xbar"), "--plot", str(tmp_path)]):
        assert main(args) == 2
        captured = capsys.readouterr()
        assert f"'{tmp_path}' is a directory (a file name was expected)" in captured.err
        assert "PASSED" not in captured.out                      # refused before the comparison ran


def test_usage_errors_exit_2_not_1(tmp_path, capsys):
    """Exit status 1 means a comparison exceeded its tolerance; a command line that cannot run is 2."""
    for args, message in ((["simulate", str(TB / "read_8x8.xbar"), "--set", "amp", "--out", str(tmp_path)],
                           "--set expects name=value"),
                          (["compare", str(TB / "vteam_sine.xbar"), "--engines", "behavioural,behavioural"],
                           "--engines needs two or three distinct engines"),
                          (["models", "show"], "models show needs a model name")):
        assert main(args) == 2
        assert message in capsys.readouterr().err
    for tol in ("-1", "0", "nan", "2"):
        with pytest.raises(SystemExit) as exc:
            main(["compare", str(TB / "vteam_sine.xbar"), "--tol", tol])
        assert exc.value.code == 2
