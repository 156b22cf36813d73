"""Linear ion drift memristor (Strukov/HP) with four windows; twin of ``linear_drift.va``.

State ``x = w/D`` in [0, 1], the doped fraction of the film: 1 is fully ON
(``ron``), 0 fully OFF (``roff``); positive current (p -> n) grows x::

    i      = v / R(x),          R(x) = ron x + roff (1 - x)
    dx/dt  = k i F(x, i) B(x, i),   k = muv ron / d^2   (1/(A s))

Windows ``F``, selected by the numeric parameter ``window`` (rounded to the
nearest integer, because strings are awkward in Verilog-A):

=======  ============  ==========================================  ===================
window   name          F                                           at the bounds
=======  ============  ==========================================  ===================
0        none          1                                           closed form holds
1        Joglekar      1 - |2 xc - 1|^(2 pwin)                     sticks (F = 0)
2        Biolek        1 - |xc - s(i)|^(2 pwin)                    leaves on reversal
3        Prodromakis   jwin (1 - ((xc - 1/2)^2 + 3/4)^pwin)        sticks (F = 0)
=======  ============  ==========================================  ===================

``xc`` is x clipped to [0, 1], so a window never turns negative (and never
pushes a state that overshot a bound further out). Biolek's window uses the
step ``stp(-i)``; here it is the smooth sign ``s(i) = (1 - tanh(i/ismooth))/2``
so Newton sees continuous slopes. ``i s'(i)`` is bounded by ~0.45 whatever
``ismooth``, so the rate's slope stays O(k F); it differs from the step only
for ``|i| ~ ismooth`` (1 nA), where the rate ``k i F`` is itself negligible.

``B = taper(1 - x)`` for ``i > 0``, ``taper(x)`` otherwise (width ``xedge``):
the state cannot cross the bound it moves towards, so R stays in
[ron, roff] even without a window (the published model lets R go negative).
It changes nothing while x is more than ``xedge`` from the bound it
approaches; away from the bounds, window 0 is exactly Strukov's model with
``M(t)^2 = M0^2 - 2 K phi(t)``, ``K = (roff - ron) k`` and ``phi`` the flux.

Time scale: with the Strukov set, k = 1e4 1/(A s) and a 1 V, 1 Hz sine on
a device at x0 = 0.1 moves R from 14.4 kOhm to ~10 kOhm (the flux is
``2 V0/omega`` at its peak): a visible pinched loop at 1 Hz.
"""
from __future__ import annotations

import numpy as np

from .base import DeviceModel, Parameter, ParamSet, State, register
from .smooth import taper

#: ``window`` values and their names
WINDOWS = {0: "none", 1: "joglekar", 2: "biolek", 3: "prodromakis"}


@register
class LinearDrift(DeviceModel):
    name = "linear_drift"
    description = "linear ion drift (Strukov/HP) with none/Joglekar/Biolek/Prodromakis window, x: 0 OFF .. 1 ON"
    kind = "memristor"
    references = (
        "Equations: D. B. Strukov, G. S. Snider, D. R. Stewart, R. S. Williams, 'The missing memristor "
        "found', Nature 453:80-83, 2008; windows: Y. N. Joglekar, S. J. Wolf, Eur. J. Phys. 30:661, 2009; "
        "Z. Biolek, D. Biolek, V. Biolkova, Radioengineering 18(2):210-214, 2009; T. Prodromakis et al., "
        "IEEE TED 58(9):3099, 2011. Parameter set: Strukov et al. 2008, Fig. 2 "
        "(ron 100 Ohm, roff 16 kOhm, D 10 nm, muv 1e-14 m^2/(V s))."
    )
    parameters = (
        Parameter("ron", 100.0, "Ohm", "ON resistance (x = 1)", 0.0, None, lower_inclusive=False),
        Parameter("roff", 16e3, "Ohm", "OFF resistance (x = 0)", 0.0, None, lower_inclusive=False),
        Parameter("d", 10e-9, "m", "film thickness D", 0.0, None, lower_inclusive=False),
        Parameter("muv", 1e-14, "m^2/(V s)", "dopant mobility", 0.0, None, lower_inclusive=False),
        Parameter("window", 0.0, "", "window: 0 none, 1 Joglekar, 2 Biolek, 3 Prodromakis", 0.0, 3.0),
        Parameter("pwin", 1.0, "", "window exponent p", 1.0, None),
        Parameter("jwin", 1.0, "", "Prodromakis window scale j", 0.0, None, lower_inclusive=False),
        Parameter("ismooth", 1e-9, "A", "current scale of Biolek's smooth step", 0.0, None,
                  lower_inclusive=False),
        Parameter("xedge", 0.01, "", "state taper width at the bounds", 0.0, 0.5, lower_inclusive=False),
        Parameter("x0", 0.1, "", "initial state", 0.0, 1.0, instance=True),
    )
    states = (State("x", "x0", "doped fraction w/D: 0 OFF, 1 ON"),)

    @staticmethod
    def resistance(x: np.ndarray, p: ParamSet) -> np.ndarray:
        """Device resistance at state ``x`` (one state row)."""
        return p.ron * x + p.roff * (1 - x)

    @staticmethod
    def drift_constant(p: ParamSet):
        """``K = (roff - ron) muv ron / d^2`` of the closed form ``M^2 = M0^2 - 2 K flux`` (Ohm^2/(V s))."""
        return (p.roff - p.ron) * p.muv * p.ron / p.d ** 2

    @staticmethod
    def window_function(x: np.ndarray, i: np.ndarray, p: ParamSet) -> np.ndarray:
        """``F(x, i)`` of the selected window (before the bound taper)."""
        xc = np.clip(x, 0.0, 1.0)
        sel = np.floor(np.asarray(p.window, dtype=float) + 0.5)
        s = 0.5 * (1 - np.tanh(i / p.ismooth))
        joglekar = 1 - np.abs(2 * xc - 1) ** (2 * p.pwin)
        biolek = 1 - np.abs(xc - s) ** (2 * p.pwin)
        prodromakis = p.jwin * (1 - ((xc - 0.5) ** 2 + 0.75) ** p.pwin)
        return np.where(sel == 1, joglekar, np.where(sel == 2, biolek, np.where(sel == 3, prodromakis, 1.0)))

    @staticmethod
    def current(v, x, p):
        return v / LinearDrift.resistance(x[0], p)

    @classmethod
    def step_move(cls, x, p):
        """The ``$bound_step``'s second term in the .va: at most the move that changes R by 3 % (R = ron x +
        roff (1 - x) at the state clamped to [0, 1]): the switching runaway (R falls, the current and the
        rate rise) amplifies a state error into a time shift of the current spike."""
        xc = np.minimum(np.maximum(x[0], 0.0), 1.0)
        return (0.03 * (p.ron * xc + p.roff * (1 - xc)) / np.maximum(np.abs(p.roff - p.ron), 1e-30))[None]

    @staticmethod
    def dxdt(v, x, p):
        x = x[0]
        i = v / LinearDrift.resistance(x, p)
        k = p.muv * p.ron / p.d ** 2
        bound = np.where(i > 0, taper(1 - x, p.xedge), taper(x, p.xedge))
        return (k * i * LinearDrift.window_function(x, i, p) * bound)[None, :]
