"""``circuitkit program report``: merging runs of one study, never two runs of one policy.

A report of two runs that both held policy ``verify`` (e.g. two engines, or two initial-state seeds)
wrote a results.parquet with both runs' rows under the same (policy, round, row, col) keys while
summary.json kept only the last run's summary of that policy: the merged table and the merged
summary disagreed (23 pulses in the table, 11 in the summary, audit), without a word.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

PROG = "examples/programming/program_vcm.xbar"


def _targets(tmp: Path, name: str, values) -> Path:
    t = tmp / name
    t.write_text("\n".join(",".join(f"{v:g}" for v in row) for row in values) + "\n")
    return t


def _run(tmp: Path, out: str, policy: str, targets: Path, *extra) -> Path:
    from circuitkit.cli import main
    d = tmp / out
    assert main(["program", PROG, "--set", "n=2", "--targets", str(targets), "--policy", policy,
                 "--max-rounds", "2", "--out", str(d), *extra]) == 0
    return d


def test_report_refuses_a_policy_in_two_runs(tmp_path, capsys):
    from circuitkit.cli import main
    t = _targets(tmp_path, "t.csv", [[1e-5, 2e-5], [3e-5, 4e-5]])
    a = _run(tmp_path, "a", "verify", t)
    b = _run(tmp_path, "b", "verify", t, "--set", "found=3")          # the same policy, other initial states
    capsys.readouterr()
    assert main(["program", "report", str(a), str(b), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert "policy 'verify' is in both" in err and "Traceback" not in err
    assert not (tmp_path / "rep" / "summary.json").exists()


def test_report_refuses_runs_of_other_targets_or_settings(tmp_path, capsys):
    from circuitkit.cli import main
    t = _targets(tmp_path, "t.csv", [[1e-5, 2e-5], [3e-5, 4e-5]])
    u = _targets(tmp_path, "u.csv", [[1e-5, 2e-5], [3e-5, 5e-5]])
    a = _run(tmp_path, "a", "verify", t)
    b = _run(tmp_path, "b", "ispp", u)
    c = _run(tmp_path, "c", "ispp", t, "--tol", "0.2")
    capsys.readouterr()
    assert main(["program", "report", str(a), str(b), "--out", str(tmp_path / "rep")]) == 2
    assert "targets differ" in capsys.readouterr().err
    assert main(["program", "report", str(a), str(c), "--out", str(tmp_path / "rep")]) == 2
    assert "'tol' is 0.2" in capsys.readouterr().err


def test_report_of_two_policies_agrees_with_its_summary(tmp_path):
    from circuitkit.cli import main
    t = _targets(tmp_path, "t.csv", [[1e-5, 2e-5], [3e-5, 4e-5]])
    a = _run(tmp_path, "a", "verify", t)
    b = _run(tmp_path, "b", "ispp", t)
    assert main(["program", "report", str(a), str(b), "--out", str(tmp_path / "rep")]) == 0
    frame = pd.read_parquet(tmp_path / "rep" / "results.parquet")
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert set(summary["policies"]) == {"verify", "ispp"}
    assert not frame.duplicated(["policy", "round", "row", "col"]).any()
    for n in ("verify", "ispp"):
        rows = frame[frame.policy == n]
        per_cell = rows.groupby(["row", "col"])["pulsed"].sum().unstack().to_numpy()
        assert np.array_equal(per_cell, np.asarray(summary["pulses_per_cell"][n]))
        assert int(rows["pulsed"].sum()) == summary["policies"][n]["total_pulses"]


def test_program_with_its_own_tolerance_reports_it(tmp_path):
    """``--tol 0.2`` ran every round, wrote summary.json, then died on a KeyError ('to_20pct') while
    plotting: the summary held only the +-50 % and +-10 % figures (audit)."""
    # two cells start within +-20 % of their targets (the found states read 33 and 52 uS), two far off
    t = _targets(tmp_path, "t.csv", [[3.9e-5, 2e-5], [5e-5, 3e-5]])
    d = _run(tmp_path, "a", "verify", t, "--tol", "0.2")
    summary = json.loads((d / "summary.json").read_text())
    frame = pd.read_parquet(d / "results.parquet")
    to20 = summary["policies"]["verify"]["to_20pct"]
    # the pulses each cell had received when its true conductance was first within +-20 % (never: NaN),
    # from the per-round table: before round k it had the pulses of rounds 0..k-1
    reach = []
    for (_, _), cell in frame.sort_values("round").groupby(["row", "col"]):
        g = [cell["g_before"].iloc[0], *cell["g_after"]]
        pulses = np.concatenate([[0], np.cumsum(cell["pulsed"].to_numpy())])
        hit = [k for k, gk in enumerate(g) if abs(gk / cell["target"].iloc[0] - 1) <= 0.2]
        reach.append(pulses[hit[0]] if hit else np.nan)
    reach = np.array(reach, dtype=float)
    assert to20["cells_reached"] == np.mean(~np.isnan(reach)) >= 0.5
    assert to20["pulses_mean"] == np.nanmean(reach)
    assert (tmp_path / "a" / "pulses_per_cell.png").exists()


def test_predictor_of_another_model_or_read_voltage_is_refused(tmp_path, capsys):
    """The shipped predictor (trained on VCM cells, verify at 0.2 V) ran on a VTEAM crossbar, whose ON
    state is x = 0: its +1.0 V 'SET' lowers a VTEAM cell's conductance, every predicted pulse went the
    wrong way, without a word (audit). Refused now, as is another verify read voltage."""
    from circuitkit.cli import main
    model = "examples/programming/vcm_predictor.npz"
    vteam = tmp_path / "vteam.xbar"
    vteam.write_text('''title "vteam crossbar"
crossbar xb {
    rows = 2; cols = 2
    device = vteam(ron = 10k, roff = 100k, voff = 0.5, von = -0.5)
    state = 0.5
}
stimulus { read = fill(2, 0.2) }
analysis tran(step = 1n)
''')
    t = _targets(tmp_path, "t.csv", [[3.9e-5, 2e-5], [5e-5, 3e-5]])
    base = ["--targets", str(t), "--policy", "predictor", "--model", model, "--max-rounds", "1"]
    assert main(["program", str(vteam), *base, "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "trained on model 'vcm'" in err and "'vteam'" in err
    assert main(["program", PROG, "--set", "n=2", *base, "--vread", "0.1", "--out", str(tmp_path / "r")]) == 2
    assert "verify reads at 0.2 V" in capsys.readouterr().err
    assert main(["program", PROG, "--set", "n=2", *base, "--out", str(tmp_path / "ok")]) == 0
