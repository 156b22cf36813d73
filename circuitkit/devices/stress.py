"""Stress the shipped models in ngspice: ordinary drives at any requested step.

``python -m circuitkit.devices.stress [MODEL ...]`` (``make models-stress``) drives each
model behind a series resistor with a sine, a pulse train and a DC step at 0.5x, 1x and
2x its reference amplitude, each with 4000, 400, 40, 10, 4 and 2 requested points per two
periods, and reports every run that fails (e.g. "Timestep too small") or leaves a state's
range. Exit status 1 when any does.
"""
from __future__ import annotations

import sys

from ..errors import CircuitkitError
from . import REGISTRY
from .probe import device_transient

#: reference drives: amplitude (V), frequency (Hz), series resistance (Ohm), parameters
DRIVES = {
    "vteam": dict(amplitude=1.0, freq=1e4, rseries=100),
    "linear_drift": dict(amplitude=1.0, freq=10, rseries=100),
    "yakopcic": dict(amplitude=0.5, freq=100, rseries=1.0),
    "volatile": dict(amplitude=1.0, freq=1e5, rseries=100, params={"klt": 1e5}),
    "stanford_pku": dict(amplitude=1.25, freq=1e6, rseries=100),
    "selector": dict(amplitude=1.0, freq=1e3, rseries=100),
    "vcm": dict(amplitude=1.0, freq=1e3, rseries=100),
    "multisynapse": dict(amplitude=1.5, freq=1e6, rseries=100),
}
SCALES = (0.5, 1.0, 2.0)
POINTS = (4000, 400, 40, 10, 4, 2)


def stress(name: str) -> list[str]:
    model = REGISTRY[name]
    problems = []
    for drive in ("sine", "pulse", "dc"):
        for scale in SCALES:
            for points in POINTS:
                kw = dict(DRIVES[name])
                kw["amplitude"] *= scale
                stop = 2 / kw["freq"]
                what = f"{name} {drive} {kw['amplitude']:g} V step {stop / points:g} s"
                try:
                    out = device_transient(model, "ngspice", drive=drive, stop=stop, step=stop / points, **kw)
                except CircuitkitError as exc:
                    problems.append(f"{what}: {str(exc).splitlines()[0]}")
                    continue
                for s in model.states:
                    lo, hi = float(out[s.name].min()), float(out[s.name].max())
                    if lo < s.lower - 1e-9 or hi > s.upper + 1e-9:
                        problems.append(f"{what}: {s.name} in [{lo:.6g}, {hi:.6g}], outside [{s.lower:g}, {s.upper:g}]")
    return problems


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(DRIVES)
    bad = 0
    for name in names:
        problems = stress(name)
        runs = 3 * len(SCALES) * len(POINTS)
        print(f"{name:<14} {runs} runs, {len(problems)} problems", flush=True)
        for p in problems:
            print(f"    {p}")
        bad += bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
