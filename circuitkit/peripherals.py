"""Converters at the edges of the analog array, shared by both engines.

The DAC runs before the circuit (it decides the voltages the sources apply),
the ADC after it (it converts sampled TIA outputs), so one implementation
serves SPICE and the behavioural engine alike.
"""
from __future__ import annotations

import numpy as np


def dac_quantize(values, bits: int, vmin: float, vmax: float) -> np.ndarray:
    """Nearest of the 2**bits levels spanning [vmin, vmax]; values outside are clipped."""
    levels = 2 ** int(bits) - 1
    code = np.clip(np.rint((np.asarray(values, dtype=float) - vmin) / (vmax - vmin) * levels), 0, levels)
    return vmin + code * (vmax - vmin) / levels


def adc_convert(v, bits: int, vmin: float, vmax: float) -> np.ndarray:
    """Integer codes 0 .. 2**bits - 1 of ``v`` over [vmin, vmax] (round to nearest, clipped)."""
    levels = 2 ** int(bits) - 1
    return np.clip(np.rint((np.asarray(v, dtype=float) - vmin) / (vmax - vmin) * levels), 0, levels).astype(np.int64)


def adc_lsb(bits: int, vmin: float, vmax: float) -> float:
    return (vmax - vmin) / (2 ** int(bits) - 1)


def adc_clip(v, bits: int, vmin: float, vmax: float) -> np.ndarray:
    """-1 where the ADC clips ``v`` at code 0, +1 where it clips at full scale, 0 where it converts normally.

    Clipping is where the clip in :func:`adc_convert` changes the rounded code,
    i.e. ``v`` lies more than half an LSB outside [vmin, vmax].
    """
    levels = 2 ** int(bits) - 1
    raw = np.rint((np.asarray(v, dtype=float) - vmin) / (vmax - vmin) * levels)
    return np.where(raw < 0, -1, np.where(raw > levels, 1, 0)).astype(np.int64)
