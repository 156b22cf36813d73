"""Programming memristor crossbars: cycle-to-cycle noise, pluggable policies, a learned pulse predictor.

* :mod:`.noise` -- :class:`CycleNoise`, per-round per-cell lognormal factors identical in both engines;
* :mod:`.array` -- :class:`ProgrammingArray`, one transient of the whole array per round;
* :mod:`.policies` -- write-and-verify (:class:`FixedPulse`), :class:`ISPP`, :class:`WidthHalving`,
  :class:`GlobalHalving`;
* :mod:`.predictor` -- training data from simulated pulses, the MLP, :class:`PredictorPolicy`;
* :mod:`.run` -- :func:`program` and :class:`ProgramResult` (RPD, pulses, time, energy).

See docs/programming.md.
"""
from .array import ProgrammingArray, ProgrammingError, Pulses, RoundStats
from .noise import CycleNoise
from .policies import ISPP, FixedPulse, GlobalHalving, WidthHalving, quantise_width
from .run import ProgramResult, program, rpd, rpd_sym

__all__ = ["CycleNoise", "FixedPulse", "GlobalHalving", "ISPP", "ProgramResult", "ProgrammingArray",
           "ProgrammingError", "Pulses", "RoundStats", "WidthHalving", "program", "quantise_width", "rpd", "rpd_sym"]
