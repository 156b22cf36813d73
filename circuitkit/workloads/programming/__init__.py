"""Programming memristor crossbars: cycle-to-cycle noise, pluggable policies, a learned pulse predictor.

* :mod:`.noise` -- :class:`CycleNoise`, per-round per-cell lognormal factors identical in both engines;
* :mod:`.array` -- :class:`ProgrammingArray`, one transient of the whole array per round;
* :mod:`.policies` -- write-and-verify (:class:`FixedPulse`), :class:`ISPP`, :class:`WidthHalving`,
  :class:`GlobalHalving`;
* :mod:`.predictor` -- training data from simulated pulses, the MLP, :class:`PredictorPolicy`;
* :mod:`.run` -- :func:`program` and :class:`ProgramResult` (RPD, pulses, time, energy).

See docs/programming.md.
"""
_EXPORTS = {"ProgrammingArray": "array", "ProgrammingError": "array", "Pulses": "array", "RoundStats": "array",
            "CycleNoise": "noise", "ISPP": "policies", "FixedPulse": "policies", "GlobalHalving": "policies",
            "WidthHalving": "policies", "quantise_width": "policies", "ProgramResult": "run", "program": "run",
            "rpd": "run", "rpd_sym": "run"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):      # lazy: the CLI registers `program` without importing the engine and scipy
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(name)
