"""Cycle-to-cycle variability: per-round, per-cell lognormal factors on model parameters.

OpenVAF has no random numbers, so the randomness lives outside the Verilog-A:
for programming round ``r`` (one transient of the whole array) a generator
seeded by ``(seed, r)`` draws one factor ``exp(sigma N(0, 1))`` per cell for
each varied parameter (sorted by name, cells in row-major order). The factors
multiply the cells' parameter values -- the device-to-device values of
``variability = lognormal(...)`` when there are any -- and go into the
circuit's cell group as per-device values, so the netlist gets one model card
per distinct device (as for device-to-device variability) and the behavioural
engine reads the same numbers: both engines simulate the same random device
history. Because the generator is reseeded per round, round ``r`` of any
programming sequence sees the same factors whatever happened before, so two
policies programming the same targets meet the same device history.

For a rate constant the factor is a rescaling of time (the state after a
pulse of width ``w`` is the nominal state after ``F w``; see
:mod:`circuitkit.devices.vcm`), so after ``N`` identical pulses the state
moved as far as one pulse of width ``w * sum(F_k)`` -- a sum of ``N``
independent lognormals with mean ``N exp(sigma^2/2)`` and variance
``N (exp(sigma^2) - 1) exp(sigma^2)`` (the test checks both, and each cell's
motion against its own factors).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import Location, ParameterError


@dataclass(frozen=True)
class CycleNoise:
    """``sigma``: model parameter -> sigma of the lognormal per-round factor (median 1); ``seed``."""

    sigma: dict[str, float] = field(default_factory=dict)
    seed: int = 0

    def check(self, model) -> None:
        """Refuse unknown, instance or negative entries, naming them."""
        for name, s in self.sigma.items():
            prm = model.parameter(name)
            if prm.instance:
                raise ParameterError(f"cycle-to-cycle variability of '{name}': an instance parameter (the state) "
                                     "cannot vary", Location(parameter=name))
            if not np.isfinite(s) or s < 0:
                raise ParameterError(f"cycle-to-cycle variability of '{name}': sigma must be >= 0, got {s}",
                                     Location(parameter=name))

    def factors(self, round_index: int, n: int) -> dict[str, np.ndarray]:
        """Factor per parameter and cell (row-major) for round ``round_index``."""
        if not self.sigma:
            return {}
        rng = np.random.default_rng([int(self.seed), int(round_index)])
        return {name: np.exp(float(s) * rng.standard_normal(n)) for name, s in sorted(self.sigma.items())}

    def apply(self, circuit, round_index: int) -> dict[str, np.ndarray]:
        """Multiply the cell group's parameters of ``circuit`` by this round's factors; return them."""
        layout = circuit.crossbar
        group = circuit.group(layout.cells)
        base = group.resolved()
        out = self.factors(round_index, group.n)
        for name, f in out.items():
            group.params[name] = np.broadcast_to(np.asarray(base[name], dtype=float), (group.n,)) * f
        try:
            group.resolved()        # checks the new values against the declared ranges
        except ParameterError as exc:
            raise ParameterError(f"cycle-to-cycle draw of round {round_index} (--c2c "
                                 f"{', '.join(f'{k}={v:g}' for k, v in sorted(self.sigma.items()))}, seed "
                                 f"{self.seed}): {exc.message}; a lognormal factor is unbounded, so a parameter "
                                 "with a bounded range needs a small sigma", exc.location) from None
        return out
