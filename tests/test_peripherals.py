"""DAC and ADC: the converters both engines share."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from circuitkit.peripherals import adc_convert, adc_lsb, dac_quantize
from circuitkit.workflow import load

TB = Path(__file__).resolve().parent.parent / "testbenches"


def test_dac_levels_are_exact_and_clipped():
    levels = dac_quantize(np.linspace(-0.1, 0.3, 1001), bits=3, vmin=0.0, vmax=0.2)
    assert set(np.round(levels / (0.2 / 7)).astype(int)) == set(range(8))
    assert levels.min() == 0.0 and levels.max() == 0.2
    v = np.random.default_rng(1).uniform(0, 0.2, 500)
    assert np.max(np.abs(dac_quantize(v, 8, 0, 0.2) - v)) <= 0.5 * 0.2 / 255 + 1e-15


def test_adc_codes_round_to_nearest_and_clip():
    lsb = adc_lsb(4, -1.0, 1.0)
    centres = -1.0 + lsb * np.arange(16)
    assert np.array_equal(adc_convert(centres, 4, -1.0, 1.0), np.arange(16))
    assert np.array_equal(adc_convert(centres + 0.49 * lsb, 4, -1.0, 1.0)[:-1], np.arange(15))
    assert adc_convert(-5.0, 4, -1.0, 1.0) == 0 and adc_convert(5.0, 4, -1.0, 1.0) == 15


def test_read_vectors_reach_the_circuit_dac_quantized():
    _, circuit = load(TB / "read_8x8.xbar")
    vread = 0.2
    for phase, given in zip(circuit.crossbar.phases, ([0.2, 0.1, 0.0, 0.15, 0.05, 0.2, 0.1, 0.02],
                                                       [0.05, 0.2, 0.2, 0.0, 0.1, 0.15, 0.0, 0.2])):
        applied = np.array(phase.vector)
        np.testing.assert_allclose(applied, dac_quantize(given, 8, 0, vread), rtol=0, atol=1e-15)
        assert np.all(np.abs(applied - given) <= 0.5 * vread / 255 + 1e-15)
        assert not np.array_equal(applied, given)   # 0.1, 0.15 ... are not on the 8-bit grid
