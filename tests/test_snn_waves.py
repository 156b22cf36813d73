"""Line waveforms in arrays: arbitrary PWL and spike trains on word and bit lines, both engines, located checks."""
from __future__ import annotations

import numpy as np
import pytest

from circuitkit import design as d
from circuitkit.circuit.build import build_circuit
from circuitkit.circuit.waveforms import PWL
from circuitkit.description.loader import load_text
from circuitkit.engines import simulate
from circuitkit.errors import DescriptionError

SHAPE = d.SpikeShape((0, 10e-9, 100e-9, 110e-9, 1e-6), (0, 0.45, 0.45, -0.25, 0))


def test_spike_train_points_are_the_exact_sum_of_shapes():
    lw = d.spikes(SHAPE, [-0.5e-6, 0.0, 0.05e-6, 1.3e-6], row=0)
    t, v = lw.points(2e-6)
    probe = np.random.default_rng(1).uniform(0, 2e-6, 500)
    direct = sum(SHAPE(probe - s) for s in (-0.5e-6, 0.0, 0.05e-6, 1.3e-6))
    np.testing.assert_allclose(np.interp(probe, t, v), direct, atol=1e-12)
    assert t[0] == 0 and t[-1] == 2e-6 and np.all(np.diff(t) > 0)
    assert v[0] == pytest.approx(SHAPE(0.5e-6))        # the tail of the spike before the phase


def _design(waves, **kw):
    return d.Design(crossbar=d.Crossbar(rows=2, cols=3, model="vteam",
                                        params=dict(voff=0.5, von=-0.5, koff=1e6, kon=-1e6)),
                    stimulus=[d.WavePhase(waves, duration=2e-6)], analysis=d.Analysis(step=5e-9),
                    records=[d.Record("states"), d.Record("line_voltages"), d.Record("column_currents")], **kw)


def test_lines_carry_their_waveforms_and_others_hold_zero():
    pwl = PWL((0.0, 1e-6, 2e-6), (0.0, 0.1, 0.0))
    c = build_circuit(_design([d.spikes(SHAPE, [0.0], row=0), d.wave(pwl, row=1), d.spikes(SHAPE, [0.3e-6], col=2)]))
    wf = simulate(c, "behavioural")
    t = np.asarray(wf.time)
    np.testing.assert_allclose(wf["vwl_0"], SHAPE(t), atol=1e-9)
    np.testing.assert_allclose(wf["vwl_1"], pwl(t), atol=1e-9)
    np.testing.assert_allclose(wf["vbl_2"], SHAPE(t - 0.3e-6), atol=1e-9)
    np.testing.assert_allclose(wf["vbl_0"], 0.0, atol=1e-12)
    # no device saw more than 0.55 V except (0, 2), where pre and post overlap
    x = {k: float(np.asarray(wf[f"x_{k[0]}_{k[1]}"])[-1]) for k in [(0, 0), (0, 1), (0, 2), (1, 2)]}
    assert x[(0, 0)] == x[(0, 1)] == x[(1, 2)] == 0.5
    assert x[(0, 2)] < 0.5
    assert c.crossbar.phases[0].kind == "wave" and c.crossbar.phases[0].rows == (0, 1)


@pytest.mark.parametrize("waves, match", [
    ([d.spikes(SHAPE, [0.0], row=2)], "row 2 outside 0..1"),
    ([d.spikes(SHAPE, [0.0], col=0), d.spikes(SHAPE, [1e-7], col=0)], "two waveforms"),
    ([d.LineWave("row", 0)], "needs a waveform or a spike shape"),
    ([d.spikes(SHAPE, [float("nan")], row=0)], "finite"),
])
def test_bad_waves_are_refused(waves, match):
    with pytest.raises(DescriptionError, match=match):
        build_circuit(_design(waves))


def test_a_line_must_start_at_its_level():
    des = _design([d.wave(PWL((0.0, 1e-6), (0.3, 0.0)), row=0)])
    des.stimulus.insert(0, d.ReadPhase([0.2, 0.0], duration=1e-7))
    with pytest.raises(DescriptionError, match="row 0 is at 0.2 V"):
        build_circuit(des)


def test_spike_shape_is_checked():
    with pytest.raises(ValueError, match="end at 0 V"):
        d.SpikeShape((0, 1e-9), (0, 1))
    with pytest.raises(ValueError, match="start at 0"):
        d.SpikeShape((1e-9, 2e-9), (0, 0))


TEXT = """
crossbar xb { rows = 2; cols = 2; device = vteam(voff = 0.5, von = -0.5, koff = 1meg, kon = -1meg) }
stimulus {
    wave = waves(spikes(shape = pwl([0, 10n, 100n, 110n, 1u], [0, 0.45, 0.45, -0.25, 0]), times = [0], row = 0),
                 line(pwl([0, 1u, 2u], [0, 0.1, 0]), col = 1), duration = 2u)
}
analysis tran(step = 5n)
"""


def test_description_language_builds_the_same_waves():
    design = load_text(TEXT)
    ph = design.stimulus[0]
    assert isinstance(ph, d.WavePhase) and ph.duration == pytest.approx(2e-6)
    np.testing.assert_allclose(ph.waves[0].shape.times, SHAPE.times, rtol=1e-12)
    assert ph.waves[0].shape.values == SHAPE.values and ph.waves[1].line == "col"
    bad = TEXT.replace("col = 1), duration", "col = 1, row = 0), duration")
    with pytest.raises(DescriptionError, match=r":5:\d+: line\(\) needs exactly one of row= and col="):
        load_text(bad, file="w.xbar")
    bad = TEXT.replace("[0, 0.45, 0.45, -0.25, 0]", "[0, 0.45, 0.45, -0.25, 0.1]")
    with pytest.raises(DescriptionError, match=r":4:\d+: spikes\(\): a spike shape must end at 0 V"):
        load_text(bad, file="w.xbar")


@pytest.mark.spice
def test_both_engines_agree_on_overlapping_spikes():
    """Transient contract: states within 1 % of the change; here the change itself, a stricter test."""
    des = _design([d.spikes(SHAPE, [0.0], row=0), d.spikes(SHAPE, [0.2e-6], col=0)])
    des.analysis = d.Analysis(step=1e-9)
    c = build_circuit(des)
    b, s = simulate(c, "behavioural"), simulate(c, "spice")
    db = float(np.asarray(b["x_0_0"])[-1]) - 0.5
    ds = float(np.asarray(s["x_0_0"])[-1]) - 0.5
    assert db < -1e-3
    assert abs(db - ds) <= 0.01 * abs(ds)
