"""Helpers shared by the device-model tests: small descriptions run in both engines.

Circuits are written as element testbenches to ``tmp_path`` and loaded like any
description, then run through ``circuitkit.engines.simulate`` in each engine.
"""
from __future__ import annotations

import numpy as np

from circuitkit.engines import simulate
from circuitkit.workflow import load


def rate(model, v, x, **overrides) -> np.ndarray:
    """dx/dt of the first state of ``model`` at voltages ``v`` and states ``x`` (broadcast)."""
    v = np.atleast_1d(np.asarray(v, dtype=float))
    x = np.broadcast_to(np.asarray(x, dtype=float), v.shape)[None, :]
    return model.dxdt(v, x, model.resolve(overrides))[0]


def circuit(tmp_path, body: str, name: str = "t"):
    """The circuit of a description ``body`` (a title is added)."""
    path = tmp_path / f"{name}.xbar"
    path.write_text(f'title "{name}"\n' + body)
    return load(path, {})[1]


def both(c):
    """(spice, behavioural) waveforms of circuit ``c``."""
    return simulate(c, "spice"), simulate(c, "behavioural")


def cosimulate(text: str, tmp_path, engines=("behavioural", "spice")) -> dict:
    """Engine name -> (time or None, {signal: values}) for the description ``text``."""
    path = tmp_path / "tb.xbar"
    path.write_text(text)
    _, c = load(path)
    out = {}
    for engine in engines:
        wf = simulate(c, engine)
        out[engine] = (wf.time, {name: np.asarray(wf[name]) for name in wf.signals})
    return out


def rel_rms(t_ref, ref, t, values) -> float:
    """RMS(values - ref) / RMS(ref) on the reference's time points (``values`` interpolated)."""
    diff = np.interp(t_ref, t, values) - ref
    return float(np.sqrt(np.mean(diff ** 2)) / np.sqrt(np.mean(ref ** 2)))


def loop_area(v, i) -> float:
    """Total area of a pinched loop: the two lobes (v >= 0, v < 0) have opposite
    orientations, so each lobe's |closed integral of i dv| (shoelace) is added."""
    v, i = np.asarray(v), np.asarray(i)

    def lobe(m):
        a, b = v[m], i[m]
        if a.size < 3:
            return 0.0
        return 0.5 * abs(np.sum(a[:-1] * b[1:] - a[1:] * b[:-1]) + a[-1] * b[0] - a[0] * b[-1])
    return lobe(v >= 0) + lobe(v < 0)


def check_scalar_kernel(model, p, v, x, overflows) -> int:
    """Compare ``model.scalar_kernel(p)`` with the numpy twin at the points ``(v, x)``: current, rate and
    step bound to 1e-13 relative, the float linearisation with the batched one to 1e-8, ``points`` (parts
    shared between the five difference points) exactly the values one by one. Where the kernel
    raises ArithmeticError (floats overflow; the engine then takes the twin) ``overflows(v)`` must hold.
    Returns the number of points compared."""
    kernel = model.scalar_kernel(p)
    x0 = float(np.ravel(p["x0"])[0])
    with np.errstate(over="ignore", invalid="ignore"):
        cur = model.current(v, x[None], p)
        rate_ = model.dxdt(v, x[None], p)[0]
        bound = model.bound_step(v, x[None], p)
    checked = 0
    for k, (a, b) in enumerate(zip(v, x)):
        one = [(a, b), (a + 1e-7, b), (a - 1e-7, b), (a, b + 1e-7), (a, b - 1e-7)]
        try:
            got = (kernel.current(a, b), kernel.dxdt(a, b), model.bound_step_one(kernel, a, b))
            pts = kernel.points(a, b, a + 1e-7, a - 1e-7, b + 1e-7, b - 1e-7)    # parts shared between points
            each = tuple(kernel.current(*q) for q in one) + tuple(kernel.dxdt(*q) for q in one)
        except ArithmeticError:
            assert overflows(a), a
            continue
        for g, w in zip(got, (cur[k], rate_[k], bound[k])):
            assert g == w or abs(g - w) <= 1e-13 * abs(w), (a, b, g, w)
        assert pts == each, (a, b)                           # the same numbers as one by one
        lin = model.linearize_one(kernel, float(a), float(b), x0)
        want = model.linearize(np.array([a]), np.array([[b]]), p)
        for g, w in zip(lin, want):
            w = float(np.ravel(w)[0])
            assert abs(g - w) <= 1e-8 * max(abs(w), 1e-300), (a, b, g, w)
        checked += 1
    return checked
