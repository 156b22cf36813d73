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


@pytest.mark.parametrize("delay", [20e-9, 50e-9, 150e-9, 400e-9])
def test_probe_follows_the_last_cue_after_the_delay_asked(delay):
    # 'delay' is from the last cue to the probe; any delay below the cue spacing's gap (198 ns at the
    # defaults) used to give the probe 198 ns after the cue, without a word (audit)
    from circuitkit.circuit.build import build_circuit
    task = CueTask(delay=delay, variability=NO_SPREAD)
    order = (1, 3, 0, 2)
    c = build_circuit(task.design(order, seed=0))
    lay = c.crossbar
    wave = c.group(lay.row_sources[0]).waveforms[order[-1]]         # the last cue's word line
    top = max(t for t, v in zip(wave.times, wave.values) if v >= task.amplitude * (1 - 1e-12))
    probes = [p for p in lay.read_phases() if any(p.vector)]
    assert len(probes) == 2 * task.cues
    # the cue's flat top ends, its fall edge, then the delay
    expected = top + task.edge + delay
    assert probes[task.cues].start == pytest.approx(expected, abs=1e-13), probes[task.cues].start - top


def test_a_shorter_delay_leaves_more_of_the_newest_cue():
    # the newest cue's short-term trace decays as exp(-t / (tau_s (1 + nu h))), tau_s = 1 us, nu = 0.5,
    # h in [0, 1]: 100 ns more delay keeps a fraction exp(-0.1 / [1, 1.5]) = 0.905 .. 0.936 of it
    order = (0, 1, 2, 3)
    short = run_trial(CueTask(delay=50e-9, cols=1, variability=NO_SPREAD), order, seed=0).growth[3]
    long_ = run_trial(CueTask(delay=150e-9, cols=1, variability=NO_SPREAD), order, seed=0).growth[3]
    assert 0.85 < long_ / short < 0.95
