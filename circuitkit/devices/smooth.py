"""Smooth-but-exact switching functions shared by the device twins.

Each function is mirrored by an ``analog function`` of the same name in the
Verilog-A files, with the same branches. They are C1 (so Newton sees
continuous slopes) and *exactly* zero where a device must not move: below a
switching threshold and at the bounds of a state, so nothing drifts at the
operating point or during a read.

The numpy forms are algebraic rewrites of the Verilog-A expressions (same
branches, same values up to rounding) chosen for speed: the blend is
evaluated on the argument clipped to ``[0, d]`` (so no branch produces
overflow or NaN that ``np.where`` would have to discard) and ``u ** 3`` is
written as products (``**`` with a non-2 exponent calls ``pow`` per element,
which dominated device evaluation on large arrays).
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
    c = np.minimum(np.maximum(u, 0.0), d)
    blend = c * c * (2.0 - c / d) / d          # = 2c^2/d - c^3/d^2, and 0 at c = 0
    return np.where(u < d, blend, u)


def taper(u, d):
    """0 for u <= 0, smoothstep ``s^2 (3 - 2s)`` with s = u/d below d, 1 above.

    Multiplies a rate by the distance ``u`` of the state from the bound it is
    moving towards: the rate is exactly zero at the bound and beyond it.
    """
    u = np.asarray(u, dtype=float)
    s = np.minimum(np.maximum(u / d, 0.0), 1.0)  # the three branches: 0, s^2 (3 - 2s), 1 (= value at s = 1)
    return s * s * (3.0 - 2.0 * s)


def ramp_float(u: float, d: float) -> float:
    """:func:`ramp` on a Python float (the same operations), for the models' float kernels."""
    if u < d:
        c = min(max(u, 0.0), d)
        return c * c * (2.0 - c / d) / d
    return u


def taper_float(u: float, d: float) -> float:
    """:func:`taper` on a Python float (the same operations), for the models' float kernels."""
    s = min(max(u / d, 0.0), 1.0)
    return s * s * (3.0 - 2.0 * s)
