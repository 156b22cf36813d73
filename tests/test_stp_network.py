"""Short-term synapses in a crossbar layer: the cue-order task, both synapse kinds, both engines, and the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from circuitkit.cli import main
from circuitkit.workloads.stp_network import NON_VOLATILE, CueTask, evaluate, run_trial

NO_SPREAD = {}


def test_non_volatile_synapses_keep_no_trace_of_the_order():
    # same devices (seed), two opposite orders: a decay-free device gets one pulse per row either way,
    # so the probe sees the same growth and no readout can tell which cue came first
    task = CueTask(params=NON_VOLATILE, variability=NO_SPREAD)
    a = run_trial(task, (0, 1, 2, 3), seed=3).growth
    b = run_trial(task, (3, 2, 1, 0), seed=3).growth
    assert np.abs(a - b).max() < 1e-3 * np.abs(a).max()


def test_short_term_synapses_rank_cues_by_recency():
    # without spread the growth of a row is a decreasing function of its cue's age: order recovered exactly
    order = (2, 0, 3, 1)
    growth = run_trial(CueTask(variability=NO_SPREAD), order, seed=0).growth
    assert list(np.argsort(growth)) == list(order)


def test_short_term_layer_beats_chance_with_device_spread():
    res = evaluate(CueTask(), trials=8, seed=5)
    # at chance (1/4) eight trials reach 7 correct with probability < 1e-3
    assert res["correct"].sum() >= 7
    assert (res["energy"] > 0).all()


@pytest.mark.spice
def test_one_trial_agrees_between_engines():
    task = CueTask()
    b = run_trial(task, (1, 3, 0, 2), seed=11, engine="behavioural")
    s = run_trial(task, (1, 3, 0, 2), seed=11, engine="spice")
    assert b.predicted == s.predicted
    assert b.growth == pytest.approx(s.growth, rel=1e-2)
    assert b.energy == pytest.approx(s.energy, rel=1e-2)


def test_cli_characterise_writes_table_fit_and_plot(tmp_path):
    out = tmp_path / "decay"
    assert main(["characterise", "testbenches/multisynapse_train.xbar", "--protocol", "decay",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "decay.json").read_text())
    assert summary["model"] == "multisynapse" and summary["fits"]["behavioural"]["tau"] > 0
    assert (out / "decay.png").stat().st_size > 0 and (out / "decay.parquet").is_file()


def test_cli_refuses_bad_protocol_options_with_the_parameter(tmp_path, capsys):
    assert main(["characterise", "testbenches/multisynapse_train.xbar", "--protocol", "ppf",
                 "--gaps", "5n", "--out", str(tmp_path)]) == 2
    assert "parameter 'gaps'" in capsys.readouterr().err
    assert main(["characterise", "testbenches/multisynapse_train.xbar", "--protocol", "ppf",
                 "--engines", "nope", "--out", str(tmp_path)]) == 2
