"""``simulate(circuit)``: run the circuit's analysis and return its probes as :class:`Waveforms`.

Operating points of plain 1R crossbars take the line-structured fast path
(:func:`fast_operating_point`: sources eliminated, conjugate gradients
preconditioned by exact line solves, no MNA pattern and no factorisation:
O(n) set-up besides one sort of the stamps) when every assumption holds --
the line solver applies (``reads.LinearReads``: 1R cells, no transistors or
controlled sources, grounded sources), the cells are linear within 1e-9 over
the voltages the sources can put across them (``batch.CrossbarReader``) and
every probe is a node voltage or a sensed column current. Otherwise, or if
conjugate gradients do not converge, the full Newton path runs; ``meta``
says which (``fast_path``: True, or the reason it was not taken).
"""
from __future__ import annotations

import time

import numpy as np

from ..circuit.model import Circuit, Devices, OperatingPoint, Probe, Transient, VoltageSources
from ..errors import ConvergenceError
from ..results import Waveforms
from .mna import MnaSystem, initial_states
from .newton import NewtonFailure, Solver, Tolerances
from .operating_point import operating_point
from .transient import run_transient


def simulate(circuit: Circuit, tolerances: Tolerances = Tolerances()) -> Waveforms:
    """Simulate ``circuit`` (operating point or transient) with the behavioural engine.

    Signals are keyed by probe name and multiplied by the probe's scale:
    0-d values for an operating point, one value per grid time for a transient.
    Raises :class:`ConvergenceError` (with the time) if Newton fails.
    """
    start = time.perf_counter()
    fast_reason = "not an operating point"
    if isinstance(circuit.analysis, OperatingPoint):
        fast, fast_reason = fast_operating_point(circuit)
        if fast is not None:
            return Waveforms("behavioural", None, fast["signals"], wall_s=time.perf_counter() - start,
                             meta={**fast["meta"], "fast_path": True})
    conditioning = fast_reason if fast_reason.startswith(ILL_CONDITIONED) else None
    system = MnaSystem(circuit)
    solver = Solver(system, tolerances)
    index, scale = probe_indices(system, circuit.probes)

    grounded = bool(np.any(index == system.size))

    def record(y: np.ndarray) -> np.ndarray:
        if grounded:
            return np.append(y, 0.0)[index] * scale   # index `size` is ground
        return y[index] * scale

    setup_s = time.perf_counter() - start
    analysis = circuit.analysis
    if isinstance(analysis, OperatingPoint):
        try:
            y, stats = operating_point(system, solver)
        except NewtonFailure as exc:
            raise ConvergenceError(f"operating point: {exc}") from None
        times, values = None, record(y)
        signals = {p.name: np.float64(v) for p, v in zip(circuit.probes, values)}
    elif isinstance(analysis, Transient):
        budget = circuit.options.get("max_steps")
        times, values, stats = run_transient(system, solver, analysis, record,
                                             max_steps=None if budget is None else int(budget))
        columns = np.ascontiguousarray(values.T)          # one transpose; each signal a row of it
        signals = {p.name: columns[k] for k, p in enumerate(circuit.probes)}
    else:
        raise TypeError(f"behavioural engine: unsupported analysis {type(analysis).__name__}")
    meta = {"unknowns": system.size, "nonzeros": system.pattern.nnz, "newton_iterations": solver.iterations,
            "max_newton_iterations": solver.max_iterations_seen, "factorizations": solver.factorizations,
            "linear_solver": solver.linear_solver, "roundoff_stops": solver.roundoff_stops,
            "setup_s": setup_s, "fast_path": fast_reason, **stats}
    if conditioning:
        meta["conditioning"] = conditioning
    return Waveforms("behavioural", times, signals, wall_s=time.perf_counter() - start, meta=meta)


def fast_operating_point(circuit: Circuit) -> tuple[dict | None, str]:
    """Probes of a plain linear 1R crossbar's operating point by the line solver, or (None, why not)."""
    if getattr(circuit, "crossbar", None) is None:
        return None, "not a crossbar"
    from .batch import LINEAR_RTOL, CrossbarReader
    from .linesolve import NotLineStructured
    from .reads import LinearReads
    try:
        lr = LinearReads(circuit, method="auto", t=0.0)
    except (ValueError, ConvergenceError) as exc:
        return None, f"read system: {exc}"
    if lr.lines is None:
        return None, f"line solver: {lr.line_reason}"
    values = lr.source_values[:, None]
    reader = CrossbarReader(circuit, reads=lr)
    lin = reader.linearity(reader.vmax(values))
    if any(e > LINEAR_RTOL for e in lin.values()):
        return None, "cells nonlinear at the source values"
    plan, unplanned = _probe_plan(circuit, lr)
    lo, hi = _conductance_range(lr.K)
    check = hi > SPREAD_CHECK * lo
    if unplanned and not check:
        return None, unplanned
    try:
        y = lr.lines.solve(lr._rhs(values))
    except NotLineStructured as exc:
        return None, f"line solver: {exc}"
    if check:
        # checked whatever the probes (energy probes send the answer to the full path, which stores the
        # same rounded conductances): an ill-conditioned answer carries a note on either path
        sensitivity = _rounding_sensitivity(lr, y, values, lo, hi)
        if sensitivity is not None:
            return None, sensitivity
    if unplanned:
        return None, unplanned
    full = reader._full(y, values)[:, 0]                       # node voltages by node id
    # state terminals are no unknowns of the read system: an operating point holds each at its
    # initial value (a stuck cell's clamp holds it at the same bound), as the full path's op rows do
    fixed = np.asarray(lr.fixed_nodes, dtype=np.int64).ravel() + 1        # node ids (0: ground)
    for g in circuit.groups_of(Devices):
        nodes = np.asarray(g.states, dtype=np.int64).ravel()
        keep = ~np.isin(nodes, fixed)
        full[nodes[keep]] = initial_states(g)[keep]
    currents = lr._outputs_from(y, values)[0]
    signals = {p.name: np.float64((full[k] if kind == "v" else currents[k]) * scale)
               for p, (kind, k, scale) in zip(circuit.probes, plan)}
    meta = {"unknowns": int(lr.free.size), "method": "line solver", "iterations": lr.lines.last_iterations,
            "newton_iterations": 0, "factorizations": 0, "linearity": lin}
    return {"signals": signals, "meta": meta}, ""


#: conductance spread (largest over smallest entry of the read system) from which the fast operating point
#: measures how far the rounding of its stored conductances moves the sensed currents; below it the
#: rounding cannot reach 1e-7 of them (eps * 1e8 ~ 2e-8), and the check costs nothing
SPREAD_CHECK = 1e8
#: how a fast-path refusal for conditioning starts (``simulate`` keeps such a reason as ``meta["conditioning"]``)
ILL_CONDITIONED = "ill-conditioned"
#: relative uncertainty of the sensed currents, from that rounding alone, above which the fast path is not
#: taken and the answer carries a note (``Waveforms.meta["conditioning"]``, printed by ``simulate``)
ROUNDING_NOTE = 1e-6


def _probe_plan(circuit: Circuit, lr) -> tuple[list, str | None]:
    """Where each probe of ``circuit`` is read in the read system ``lr``: ``("v", node, scale)`` or ``("i",
    output, scale)``; or (partial plan, why a probe cannot be read there)."""
    names = [g.name for g in lr.sources]
    offsets = np.cumsum([0] + [g.n for g in lr.sources])
    out_pos = {int(s): j for j, s in enumerate(lr.out_source)}
    plan = []
    for p in circuit.probes:
        if p.kind == "v":
            plan.append(("v", int(p.target), p.scale))
        elif p.kind == "i" and p.target[0] in names:
            src = int(offsets[names.index(p.target[0])] + int(p.target[1]))
            if src not in out_pos:
                return plan, f"probe '{p.name}' is not a sensed column current"
            plan.append(("i", out_pos[src], p.scale))
        else:
            return plan, f"probe '{p.name}' is not a node voltage or a sensed column current"
    return plan, None


def _conductance_range(K) -> tuple[float, float]:
    """Smallest and largest magnitude of the read system's nonzero entries ((1, 1) without any)."""
    mags = np.abs(K.data)
    mags = mags[mags > 0]
    return (float(mags.min()), float(mags.max())) if mags.size else (1.0, 1.0)


def _rounding_sensitivity(lr, y: np.ndarray, values: np.ndarray, lo: float, hi: float) -> str | None:
    """None, or why the sensed currents of the read system's solution ``y`` are uncertain beyond
    :data:`ROUNDING_NOTE` from the rounding of the stored matrix alone.

    A node tied to the rest by conductances far below those on its diagonal (a floating line of
    1e-6 ohm wires over 100 Mohm cells: 1e-8 S against 2e6 S, whose ulp is 2.3e-10) keeps its tie only
    to a few digits in double precision, and no solver of that matrix can do better (an audit measured
    7.2e-3 here, the full nodal path and ngspice 6.4e-4, against an exact rational solve). Measured
    directly: the sensed currents' first-order change when every diagonal entry moves by one unit of
    roundoff (random signs, fixed seed): ``K z = dD y``, one more solve with the same line system."""
    K = lr.K
    base = lr._outputs_from(y, values)[0]
    scale = float(np.max(np.abs(base), initial=0.0))
    if scale == 0.0:
        return None
    eps = np.finfo(float).eps
    signs = np.random.default_rng(0).choice([-1.0, 1.0], K.shape[0])
    dy = K.diagonal() * eps * signs * y[:, 0]
    try:
        z = lr.lines.solve(dy[:, None])             # first order: (K + dD)(y - z) = b
    except Exception:  # noqa: BLE001 - the check only decides the path; the full path follows
        return f"{ILL_CONDITIONED}: the rounding check's solve failed"
    n = y.shape[0]
    rel = float(np.max(np.abs(lr.E[:, :n] @ z))) / scale       # the sensed currents' change, taken linearly
    if rel <= ROUNDING_NOTE:
        return None
    return (f"{ILL_CONDITIONED}: the rounding of the stored conductances ({lo:.1e} to {hi:.1e} S) "
            f"alone moves the sensed currents by up to about {rel:.0e} relative; no double-precision solve is more "
            f"accurate (a weakly tied node, e.g. a floating line of low-resistance wires over high-resistance "
            f"cells)")


def probe_indices(system: MnaSystem, probes: list[Probe]) -> tuple[np.ndarray, np.ndarray]:
    """Index into ``[y, 0]`` and scale of each probe (ground reads the trailing 0)."""
    index = np.empty(len(probes), dtype=np.int64)
    voltages = [k for k, probe in enumerate(probes) if probe.kind == "v"]     # one vectorised lookup for all
    index[voltages] = system.unknown(np.array([int(probes[k].target) for k in voltages], dtype=np.int64))
    for k, probe in enumerate(probes):
        if probe.kind == "v":
            continue
        elif probe.kind == "i":
            name, element = probe.target
            group = system.circuit.group(name, VoltageSources)
            if not 0 <= int(element) < group.n:
                raise ValueError(f"probe '{probe.name}': source group '{name}' has no element {element}")
            index[k] = system.branch(group, int(element))
        else:
            raise ValueError(f"probe '{probe.name}': unknown kind '{probe.kind}' (expected 'v' or 'i')")
    return index, np.array([p.scale for p in probes], dtype=float)
