"""Smooth-but-exact switching functions shared by the device twins.

Each function is mirrored by an ``analog function`` of the same name in the
Verilog-A files, with the same branches. They are C1 (so Newton sees
continuous slopes) and *exactly* zero where a device must not move: below a
switching threshold and at the bounds of a state, so nothing drifts at the
operating point or during a read.
"""
from __future__ import annotations

import numpy as np


def ramp(u, d):
    """0 for u <= 0, ``2u^2/d - u^3/d^2`` for 0 < u < d, ``u`` for u >= d.

    A threshold excess (e.g. ``v - voff``) whose value and slope are
    continuous; above the blend width ``d`` it equals ``u`` exactly, so the
    published rate laws hold unchanged there.
    """
    u = np.asarray(u, dtype=float)
    blend = 2 * u * u / d - u ** 3 / (d * d)
    return np.where(u <= 0, 0.0, np.where(u < d, blend, u))


def taper(u, d):
    """0 for u <= 0, smoothstep ``s^2 (3 - 2s)`` with s = u/d below d, 1 above.

    Multiplies a rate by the distance ``u`` of the state from the bound it is
    moving towards: the rate is exactly zero at the bound and beyond it.
    """
    u = np.asarray(u, dtype=float)
    s = u / d
    return np.where(u <= 0, 0.0, np.where(u < d, s * s * (3 - 2 * s), 1.0))
