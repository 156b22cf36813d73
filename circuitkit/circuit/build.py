"""Build the element-level :class:`Circuit` from a :class:`~circuitkit.design.Design`.

Element testbenches map one to one. A crossbar expands to node blocks and
element groups:

* word line *i*: row driver source (``<xb>_vrow``) -> output resistance
  (``<xb>_rdrv``) -> one wire segment per cell (``<xb>_rwl``, the first from the
  driver to column 0) with capacitance ``c_row`` per segment to ground (a line of
  zero wire resistance is one node carrying all of them);
* bit line *j*: wire segments (``<xb>_rbl``) from row 0 down to the sense end,
  then a column source (``<xb>_vcol``): 0 V during reads, which is the virtual
  ground of an ideal TIA, or the bias of a programming scheme. With an op-amp
  TIA, the bit line ends in an ammeter (``<xb>_am``) at the amplifier input,
  with ``rf`` feedback and the op-amp macro-model (VCVS, and a VCCS-R-C pole
  when a gain-bandwidth is given);
* cell (*i*, *j*): ``1R`` memristor from word line to bit line; ``1S1R``
  selector then memristor; ``1T1R`` memristor then an NMOS access transistor
  whose gate is on the word-select line of row *i* (``<xb>_vsel``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import design as d
from ..devices.registry import get_model
from ..errors import DescriptionError, Location, ParameterError
from ..peripherals import dac_quantize
from .layout import CrossbarLayout, Derived, PhaseInfo, Role, SenseInfo
from .model import (VCCS, VCVS, Capacitors, Circuit, Devices, Mosfets, OperatingPoint, Resistors, Transient,
                    VoltageSources)
from .states import initial_states
from .waveforms import DC, PWL


def build_circuit(design: d.Design) -> Circuit:
    """The circuit both engines simulate. Raises :class:`DescriptionError` on inconsistent designs."""
    design.check(resources=True)          # located errors and the resource estimate (circuitkit.limits) first
    circuit = Circuit(design.title, design.source)
    circuit.options["digest"] = design.digest
    try:
        nodes = _Nodes(circuit)
        _elements(design, circuit, nodes)
        if design.crossbar is not None:
            _crossbar(design, circuit)
        _analysis(design, circuit)
        _element_probes(design, circuit, nodes)
        if any(r.what == "energy" and not r.args for r in design.records):
            from ..energy import record_energy      # node voltages and source currents the energy needs
            record_energy(circuit)
    except (ValueError, ParameterError) as exc:
        if isinstance(exc, DescriptionError):
            raise
        msg = exc.message if isinstance(exc, ParameterError) else str(exc)
        raise DescriptionError(msg, Location(file=design.source)) from None
    if not circuit.groups:
        raise DescriptionError("the description builds an empty circuit (no elements, no crossbar)",
                               Location(file=design.source))
    return circuit


def _where(obj, design) -> Location:
    return getattr(obj, "location", None) or Location(file=design.source)


# -- element testbenches ----------------------------------------------------------

class _Nodes:
    """User node names -> ids (created on first use); ``0`` is ground."""

    def __init__(self, circuit: Circuit):
        self.circuit = circuit
        self.ids: dict[str, int] = {"0": 0}

    def __call__(self, name: str) -> int:
        if name not in self.ids:
            self.ids[name] = self.circuit.add_nodes(name)
        return self.ids[name]


def _needs_ammeter(design: d.Design) -> set[str]:
    source_names = {s.name for s in design.sources}
    return {r.args[0] for r in design.records if r.what == "i" and r.args and r.args[0] not in source_names}


def _crossbar_names(design: d.Design) -> None:
    """Element testbenches cannot reach into a crossbar: names starting with '<crossbar>_' are the crossbar's.

    A user node named like a crossbar node (``xb_wl_0``) would otherwise be a
    separate node in the behavioural engine and a clash in the netlist.
    """
    if design.crossbar is None:
        return
    prefix = f"{design.crossbar.name}_"
    for kind, elements in (("source", design.sources), ("resistor", design.resistors),
                           ("capacitor", design.capacitors), ("device", design.devices)):
        for e in elements:
            terminals = (e.p, e.n) if kind in ("source", "device") else (e.a, e.b)
            for what, name in [("name", e.name)] + [("node", t) for t in terminals]:
                if name.startswith(prefix):
                    raise DescriptionError(
                        f"{kind} {e.name}: {what} '{name}' is in the namespace of crossbar '{design.crossbar.name}' "
                        f"(names starting with '{prefix}' are its nodes and elements); element testbenches "
                        "cannot connect to a crossbar's lines: drive them with the crossbar's stimulus", _where(e, design))


def _elements(design: d.Design, c: Circuit, node: _Nodes) -> None:
    _crossbar_names(design)
    ammeter = _needs_ammeter(design)

    def first_terminal(name: str, a: str) -> int:
        """Node the element's first terminal connects to: via a 0 V ammeter when its current is recorded."""
        if name not in ammeter:
            return node(a)
        inner = c.add_nodes(f"{name}_am")
        c.add(VoltageSources(f"am_{name}", (), p=node(a), n_=inner, waveforms=[DC(0.0)], role=Role.PROBE))
        return inner

    for s in design.sources:
        c.add(VoltageSources(s.name, (), p=node(s.p), n_=node(s.n), waveforms=[s.waveform], role=Role.STIMULUS))
    for r in design.resistors:
        c.add(Resistors(r.name, (), a=first_terminal(r.name, r.a), b=node(r.b), r=r.r))
    for cap in design.capacitors:
        c.add(Capacitors(cap.name, (), a=first_terminal(cap.name, cap.a), b=node(cap.b), c=cap.c))
    for dev in design.devices:
        model = get_model(dev.model)
        p = first_terminal(dev.name, dev.p)
        states = [c.add_nodes(f"{dev.name}_{st.name}") for st in model.states]
        c.add(Devices(dev.name, (), model=model, p=p, n_=node(dev.n), states=np.array(states, dtype=np.int64),
                      params=dict(dev.params), role=Role.CELL))
    unknown = [r for r in design.records if r.what == "i" and r.args and r.args[0] not in
               {e.name for e in design.sources + design.resistors + design.capacitors + design.devices}]
    for r in unknown:
        raise DescriptionError(f"i({r.args[0]}): no source, resistor, capacitor or device named '{r.args[0]}'",
                               _where(r, design))


def _element_probes(design: d.Design, c: Circuit, node: _Nodes) -> None:
    devices = {dv.name: dv for dv in design.devices}
    sources = {s.name for s in design.sources}
    seen: dict[str, Location] = {}
    for rec in design.records:
        if not rec.args:
            continue
        loc = _where(rec, design)
        if len(rec.args) != 1:
            raise DescriptionError(f"{rec.what}(...) takes one name", loc)
        arg = rec.args[0]
        label = f"{rec.what}({arg})"
        if label in seen:
            first = seen[label]
            at = f" (first at line {first.line})" if first.line else ""
            raise DescriptionError(f"{label} is recorded twice{at}: record each signal once", loc)
        seen[label] = loc
        if rec.what == "v":
            if arg not in node.ids or arg == "0":
                raise DescriptionError(f"v({arg}): no node named '{arg}'", loc)
            c.probe(label, "v", node.ids[arg])
        elif rec.what == "i":
            c.probe(label, "i", (arg if arg in sources else f"am_{arg}", 0))
        else:
            dev = devices.get(arg)
            if dev is None:
                raise DescriptionError(f"{label}: no device named '{arg}'", loc)
            model = get_model(dev.model)
            names = [st.name for st in model.states]
            if rec.what not in names:
                raise DescriptionError(f"{label}: model '{model.name}' has states {names or 'none'}, not '{rec.what}'", loc)
            grp = c.group(arg, Devices)
            c.probe(label, "v", int(grp.states[names.index(rec.what), 0]))


# -- crossbars -----------------------------------------------------------------------

@dataclass
class _Timeline:
    """Per-line PWL points, which lines float, and the phases' times."""

    rows: list[list[tuple[float, float]]]
    cols: list[list[tuple[float, float]]]
    gates: list[list[tuple[float, float]]]
    row_float: np.ndarray     # bool per row: never driven
    col_float: np.ndarray
    phases: list[dict]
    stop: float


def _move(points, t0, level, edge):
    """Ramp a PWL from its current level to ``level``, starting at ``t0``, over ``edge``."""
    last_t, last_v = points[-1]
    if level == last_v:
        return
    if t0 > last_t:
        points.append((t0, last_v))
    points.append((max(t0, last_t) + edge, level))


def _timeline(design: d.Design, xb: d.Crossbar) -> _Timeline:
    R, C = xb.rows, xb.cols
    rd, cd = design.row_driver, design.col_driver
    rows = [[(0.0, 0.0)] for _ in range(R)]
    cols = [[(0.0, 0.0)] for _ in range(C)]
    gates = [[(0.0, 0.0)] for _ in range(R)]
    n_ph = len(design.stimulus)
    row_float = np.zeros((n_ph, R), bool)
    col_float = np.zeros((n_ph, C), bool)
    phases: list[dict] = []
    loc = Location(file=design.source)
    t = 0.0
    for k, ph in enumerate(design.stimulus):
        if isinstance(ph, d.ReadPhase):
            if len(ph.vector) != R:
                raise DescriptionError(f"read phase {k}: vector has {len(ph.vector)} values for {R} rows", loc)
            row_float[k] = [v is None for v in ph.vector]
            vec = np.array([0.0 if v is None else v for v in ph.vector], dtype=float)
            if rd.dac_bits:
                # a floating row has no driver, hence no DAC: it stays 0 here (no voltage of its own)
                vec = np.where(row_float[k], 0.0, dac_quantize(vec, rd.dac_bits, rd.vmin, rd.vmax))
            dur = ph.duration or design.phase_duration
            if dur <= max(rd.rise, cd.rise, rd.fall):
                raise DescriptionError(f"read phase {k}: duration {dur:g} s is not longer than the driver edges", loc)
            for what, idx, n in (("select", ph.select, R), ("sense", ph.sense, C)):
                if idx is not None and any(not 0 <= v < n for v in idx):
                    raise DescriptionError(f"read phase {k}: {what} names a line outside 0..{n - 1}", loc)
            select = set(range(R)) if ph.select is None else set(ph.select)
            if ph.sense is not None:
                col_float[k] = [j not in set(ph.sense) for j in range(C)]
            for i in range(R):
                _move(rows[i], t, float(vec[i]), rd.rise if vec[i] >= rows[i][-1][1] else rd.fall)
                level = rd.vgate if i in select else 0.0
                _move(gates[i], t, level, rd.rise if level >= gates[i][-1][1] else rd.fall)
            for j in range(C):
                _move(cols[j], t, 0.0, cd.fall)
            phases.append({"phase": len(phases), "kind": "read", "start": t, "end": t + dur,
                           "sample": t + design.sense.sample * dur, "vector": vec.tolist(),
                           "row": [i for i in sorted(select) if not row_float[k, i]],
                           "col": [j for j in range(C) if not col_float[k, j]]})
            t += dur
        elif isinstance(ph, d.WavePhase):
            t = _wave_phase(design, ph, k, t, rows, cols, gates, phases, loc)
        else:
            sel_r = np.atleast_1d(np.asarray(ph.row, dtype=np.int64))
            sel_c = np.atleast_1d(np.asarray(ph.col, dtype=np.int64))
            if sel_r.min() < 0 or sel_r.max() >= R or sel_c.min() < 0 or sel_c.max() >= C:
                raise DescriptionError(f"program phase {k}: rows {sel_r.tolist()} / columns {sel_c.tolist()} "
                                       f"outside the {R}x{C} array", loc)
            is_r, is_c = np.isin(np.arange(R), sel_r), np.isin(np.arange(C), sel_c)
            v = ph.amplitude
            urow, ucol = {"v2": (v / 2, v / 2), "v3": (v / 3, 2 * v / 3), "float": (0.0, 0.0)}[ph.scheme]
            if ph.scheme == "float":
                row_float[k] = ~is_r
                col_float[k] = ~is_c
            edge = max(rd.rise, rd.fall)
            period = edge + ph.width + edge + max(ph.gap, edge)
            for n in range(ph.count):
                t0 = t + n * period
                for i in range(R):
                    _move(rows[i], t0, v if is_r[i] else urow, edge)
                    _move(gates[i], t0, rd.vgate if is_r[i] else 0.0, edge)
                for j in range(C):
                    _move(cols[j], t0, 0.0 if is_c[j] else ucol, edge)
                t1 = t0 + edge + ph.width
                for pts in rows + cols + gates:
                    _move(pts, t1, 0.0, edge)
            phases.append({"phase": len(phases), "kind": "program", "start": t, "end": t + ph.count * period,
                           "row": sel_r.tolist(), "col": sel_c.tolist(), "amplitude": v, "scheme": ph.scheme})
            t += ph.count * period
    for what, fl in (("row", row_float), ("column", col_float)):
        partial = fl.any(axis=0) & ~fl.all(axis=0)
        if partial.any():
            raise DescriptionError(f"{what} {int(np.flatnonzero(partial)[0])} floats in some phases but not all; "
                                   "a line must float in every phase or in none", loc)
    return _Timeline(rows, cols, gates, row_float.all(axis=0), col_float.all(axis=0), phases, t)


def _wave_phase(design: d.Design, ph: d.WavePhase, k: int, t: float, rows, cols, gates, phases, loc) -> float:
    """Append a wave phase's line waveforms (phase time shifted to ``t``); returns the phase's end.

    Every line not named holds 0 V; word-selects are on. A named line must already be at its
    waveform's first value when the phase starts (0 V after programming or another wave phase),
    or the phase must be the first one: nothing is ramped behind the user's back.
    """
    dur = ph.duration or design.phase_duration
    if not dur > 0:
        raise DescriptionError(f"wave phase {k}: duration must be > 0", loc)
    lines = {"row": rows, "col": cols}
    seen: set[tuple[str, int]] = set()
    for lw in ph.waves:
        where = getattr(lw, "location", None) or loc
        if lw.line not in lines or not 0 <= lw.index < len(lines[lw.line]):
            n = len(lines.get(lw.line, rows))
            raise DescriptionError(f"wave phase {k}: {lw.line} {lw.index} outside 0..{n - 1}", where)
        if (lw.line, lw.index) in seen:
            raise DescriptionError(f"wave phase {k}: {lw.line} {lw.index} is given two waveforms", where)
        seen.add((lw.line, lw.index))
        if (lw.waveform is None) == (lw.shape is None):
            raise DescriptionError(f"wave phase {k}: {lw.line} {lw.index} needs a waveform or a spike shape", where)
        if lw.shape is not None and not np.all(np.isfinite(np.asarray(lw.spikes, dtype=float))):
            raise DescriptionError(f"wave phase {k}: spike times of {lw.line} {lw.index} must be finite", where)
    edge = max(design.row_driver.rise, design.row_driver.fall)
    for name, pts_all in lines.items():
        for i, pts in enumerate(pts_all):
            if (name, i) not in seen:
                _move(pts, t, 0.0, edge)
    for i in range(len(gates)):
        _move(gates[i], t, design.row_driver.vgate, edge)
    for lw in ph.waves:
        pts = lines[lw.line][lw.index]
        tw, vw = lw.points(dur)
        last_t, last_v = pts[-1]
        if last_t > t or (last_v != vw[0] and not (t == 0.0 and len(pts) == 1)):
            raise DescriptionError(
                f"wave phase {k}: {lw.line} {lw.index} is at {last_v:g} V when the phase starts and its waveform "
                f"at {vw[0]:g} V; start the waveform at the line's level (0 V after a program or wave phase)", loc)
        if t == 0.0 and len(pts) == 1:
            pts[0] = (0.0, float(vw[0]))
        elif last_t < t:
            pts.append((t, float(vw[0])))
        pts.extend((t + float(a), float(b)) for a, b in zip(tw[1:], vw[1:]))
    phases.append({"phase": len(phases), "kind": "wave", "start": t, "end": t + dur,
                   "row": sorted(i for n, i in seen if n == "row"), "col": sorted(i for n, i in seen if n == "col"),
                   "amplitude": None, "scheme": None})
    return t + dur


def _on_state(model, params, n: int) -> float:
    """The bound (0 or 1) of the first state at which the device conducts more (its ON state)."""
    p = model.resolve(params)
    g_at_0, g_at_1 = (model.read_conductance(0.1, np.full(n, x), p)[0] for x in (0.0, 1.0))
    return 0.0 if g_at_0 > g_at_1 else 1.0


def _stuck_cells(xb: d.Crossbar, model, params, x0: np.ndarray, source: str | None):
    """Flat indices of stuck cells and the state they are stuck at; sets their x0 to it.

    One generator seeded by ``faults_seed`` draws u ~ U(0, 1) per cell in
    row-major order: u < on -> stuck ON, on <= u < on + off -> stuck OFF.
    """
    if not (xb.stuck_on or xb.stuck_off):
        return np.empty(0, np.int64), np.empty(0)
    if not model.states:
        raise DescriptionError(f"faults: model '{model.name}' has no state to be stuck",
                               Location(file=source, parameter="faults"))
    u = np.random.default_rng(xb.faults_seed).uniform(size=xb.rows * xb.cols)
    on = _on_state(model, params, xb.rows * xb.cols)
    off = 1.0 - on
    stuck = np.flatnonzero(u < xb.stuck_on + xb.stuck_off)
    level = np.where(u[stuck] < xb.stuck_on, on, off)
    np.put(x0[0], stuck, level)          # x0[0] is (rows, cols); flat indices are row-major
    return stuck, level


def _varied_parameters(xb: d.Crossbar, model, source: str | None) -> dict[str, np.ndarray]:
    """Per-device values of the varied model parameters: value * exp(sigma * N(0, 1)).

    One generator seeded by ``variability_seed`` draws the parameters in
    sorted name order, each in row-major cell order, so a description gives
    the same devices every time and in both engines (the netlist carries one
    model card per distinct parameter set).
    """
    if not xb.variability:
        return {}
    base = model.resolve(xb.params)
    rng = np.random.default_rng(xb.variability_seed)
    out = {name: float(base[name]) * np.exp(sigma * rng.standard_normal(xb.rows * xb.cols))
           for name, sigma in sorted(xb.variability.items())}
    try:
        model.resolve({**xb.params, **out})
    except ParameterError as exc:
        raise DescriptionError(f"variability: {exc.message}", Location(file=source, parameter="variability")) from None
    return out


def _waves(points_per_line, dc: bool):
    out = []
    for pts in points_per_line:
        if dc or len(pts) == 1:
            out.append(DC(pts[-1][1]))
        else:
            out.append(PWL(tuple(p[0] for p in pts), tuple(p[1] for p in pts)))
    return out


def _crossbar(design: d.Design, c: Circuit) -> None:
    xb = design.crossbar
    R, C, w = xb.rows, xb.cols, xb.wires
    name = xb.name
    if not design.stimulus:
        raise DescriptionError("a crossbar needs a stimulus (read vectors or programming pulses)",
                               Location(file=design.source))
    is_op = design.analysis.kind == "op"
    if is_op and (len(design.stimulus) != 1 or not isinstance(design.stimulus[0], d.ReadPhase)):
        raise DescriptionError("analysis op() takes exactly one read vector; use tran() for sequences",
                               Location(file=design.source))
    opamp = design.sense.kind == "opamp"
    if opamp and any(isinstance(p, d.ProgramPhase) or
                     (isinstance(p, d.WavePhase) and any(w.line == "col" for w in p.waves)) for p in design.stimulus):
        raise DescriptionError("programming pulses need column drivers; an op-amp TIA cannot drive its column",
                               Location(file=design.source))
    if w.sense == "both":
        raise DescriptionError("sensing from both ends of a column is not supported; use bottom or top",
                               Location(file=design.source))
    tl = _timeline(design, xb)

    # word lines and bit lines
    wl = c.add_nodes(f"{name}_wl", (R, C)) if w.r_row > 0 else np.repeat(c.add_nodes(f"{name}_wl", (R,))[:, None], C, 1)
    bl = c.add_nodes(f"{name}_bl", (R, C)) if w.r_col > 0 else np.repeat(c.add_nodes(f"{name}_bl", (C,))[None, :], R, 0)

    # row drivers, one per driven end
    ends = {"left": [0], "right": [C - 1], "both": [0, C - 1]}[w.drive]
    driven = np.flatnonzero(~tl.row_float)
    nd = driven.size
    row_waves = [wv for i, wv in enumerate(_waves(tl.rows, is_op)) if not tl.row_float[i]]
    part = None if nd == R else driven
    row_sources: list[str] = []
    for side, col in zip(("l", "r") if len(ends) == 2 else ("",), ends):
        if nd == 0:
            break
        tag = f"row{side}"
        if w.r_row > 0:
            drv = c.add_nodes(f"{name}_d{tag}", (R,), index=driven)
            c.add(Resistors(f"{name}_s{tag}", (R,), a=drv, b=wl[driven, col], r=w.r_row, index=part, role=Role.WIRE))
        else:
            drv = wl[driven, col]
        src = drv
        if design.row_driver.r_out > 0:
            src = c.add_nodes(f"{name}_v{tag}n", (R,), index=driven)
            c.add(Resistors(f"{name}_o{tag}", (R,), a=src, b=drv, r=design.row_driver.r_out, index=part,
                            role=Role.DRIVER))
        c.add(VoltageSources(f"{name}_v{tag}", (R,), p=src, n_=np.zeros(nd, np.int64), waveforms=row_waves,
                             index=part, role=Role.STIMULUS))
        row_sources.append(f"{name}_v{tag}")
    if w.r_row > 0 and C > 1:
        c.add(Resistors(f"{name}_rwl", (R, C - 1), a=wl[:, :-1], b=wl[:, 1:], r=w.r_row, role=Role.WIRE))
    if w.r_col > 0 and R > 1:
        c.add(Resistors(f"{name}_rbl", (R - 1, C), a=bl[:-1, :], b=bl[1:, :], r=w.r_col, role=Role.WIRE))
    # c_row / c_col per segment: a line merged into one node (zero wire resistance) carries all of its
    # segments' capacitance on that node
    for tag, lines, cap in (("cwl", wl, w.c_row), ("cbl", bl, w.c_col)):
        if cap > 0:
            nodes, per_node = np.unique(lines, return_counts=True)
            c.add(Capacitors(f"{name}_{tag}", (nodes.size,), a=nodes, b=np.zeros(nodes.size, np.int64),
                             c=cap * per_node, role=Role.WIRE))

    # cells
    model = get_model(xb.model)
    x0 = initial_states(xb, model, design.source)
    if xb.cell == "1R":
        mem_p, mem_n = wl, bl
    else:
        mid = c.add_nodes(f"{name}_mid", (R, C))
        if xb.cell == "1S1R":
            sel = get_model(xb.selector)
            if sel.kind != "selector":
                raise DescriptionError(f"selector model '{sel.name}' is a {sel.kind}, not a selector",
                                       Location(file=design.source))
            sstates = np.array([c.add_nodes(f"{name}_s{st.name}", (R, C)).ravel() for st in sel.states],
                               dtype=np.int64).reshape(len(sel.states), R * C)
            c.add(Devices(f"{name}_sel", (R, C), model=sel, p=wl.ravel(), n_=mid.ravel(), states=sstates,
                          params=dict(xb.selector_params), role=Role.SELECTOR))
            mem_p, mem_n = mid, bl
        else:
            gate = c.add_nodes(f"{name}_g", (R,))
            c.add(VoltageSources(f"{name}_vsel", (R,), p=gate, n_=np.zeros(R, np.int64), waveforms=_waves(tl.gates, is_op),
                                 role=Role.STIMULUS))
            c.add(Mosfets(f"{name}_acc", (R, C), d=mid.ravel(), g=np.repeat(gate, C), s=bl.ravel(),
                          b=np.zeros(R * C, np.int64), model=xb.transistor, role=Role.ACCESS))
            mem_p, mem_n = wl, mid
    states = np.array([c.add_nodes(f"{name}_{st.name}", (R, C)).ravel() for st in model.states],
                      dtype=np.int64).reshape(len(model.states), R * C)
    params = dict(xb.params)
    params.update(_varied_parameters(xb, model, design.source))
    intended = x0.reshape(len(model.states), R * C).copy()
    stuck, level = _stuck_cells(xb, model, params, x0, design.source)
    for k, st in enumerate(model.states):
        params[st.init] = x0[k].ravel()
    c.add(Devices(f"{name}_m", (R, C), model=model, p=np.asarray(mem_p).ravel(), n_=np.asarray(mem_n).ravel(),
                  states=states, params=params, role=Role.CELL))
    if stuck.size:
        # a stuck cell's state terminal is held by a source at its bound: no drive can move it,
        # in either engine, whatever the model (its x0 is the bound, so the operating point agrees)
        c.add(VoltageSources(f"{name}_stuck", (R, C), p=states[0, stuck], n_=np.zeros(stuck.size, np.int64),
                             waveforms=[DC(float(v)) for v in level], index=stuck, role=Role.CLAMP))

    # column ends: sources (virtual ground / programming bias) or op-amp TIAs
    end_row = R - 1 if w.sense == "bottom" else 0
    if w.r_col > 0:
        cend = c.add_nodes(f"{name}_cend", (C,))
        c.add(Resistors(f"{name}_scol", (C,), a=bl[end_row, :], b=cend, r=w.r_col, role=Role.WIRE))
    else:
        cend = bl[end_row, :]
    zeros = np.zeros(C, np.int64)
    sense = design.sense
    sensed = np.flatnonzero(~tl.col_float)
    if opamp and sensed.size != C:
        raise DescriptionError("floating columns need ideal column drivers, not op-amp TIAs", Location(file=design.source))
    if not opamp and not sensed.size:
        current_src = None      # every column floats: no column-end source, no TIA
    elif not opamp:
        ns, part = sensed.size, (None if sensed.size == C else sensed)
        src = cend[sensed]
        if design.col_driver.r_out > 0:
            src = c.add_nodes(f"{name}_vcoln", (C,), index=sensed)
            c.add(Resistors(f"{name}_ocol", (C,), a=cend[sensed], b=src, r=design.col_driver.r_out, index=part,
                            role=Role.DRIVER))
        c.add(VoltageSources(f"{name}_vcol", (C,), p=src, n_=np.zeros(ns, np.int64),
                             waveforms=[wv for j, wv in enumerate(_waves(tl.cols, is_op)) if not tl.col_float[j]],
                             index=part, role=Role.STIMULUS))
        current_src = f"{name}_vcol"
    else:
        inn = c.add_nodes(f"{name}_tin", (C,))
        out = c.add_nodes(f"{name}_tout", (C,))
        c.add(VoltageSources(f"{name}_am", (C,), p=cend, n_=inn, waveforms=[DC(0.0)] * C, role=Role.PROBE))
        current_src = f"{name}_am"
        c.add(Resistors(f"{name}_rf", (C,), a=inn, b=out, r=sense.rf, role=Role.SENSE))
        if sense.gbw is None:
            c.add(VCVS(f"{name}_oa", (C,), p=out, n_=zeros, cp=zeros, cn=inn, gain=sense.gain, role=Role.MACRO))
        else:
            # single-pole op-amp: gm*(v+ - v-) into Rp || Cp, buffered; DC gain gm*Rp, pole at gbw/gain
            rp = 1e3
            pole = c.add_nodes(f"{name}_tpole", (C,))
            c.add(VCCS(f"{name}_oag", (C,), p=zeros, n_=pole, cp=zeros, cn=inn, gm=sense.gain / rp, role=Role.MACRO))
            c.add(Resistors(f"{name}_oar", (C,), a=pole, b=zeros, r=rp, role=Role.MACRO))
            c.add(Capacitors(f"{name}_oac", (C,), a=pole, b=zeros, c=sense.gain / (2 * np.pi * sense.gbw * rp),
                             role=Role.MACRO))
            c.add(VCVS(f"{name}_oab", (C,), p=out, n_=zeros, cp=pole, cn=zeros, gain=1.0, role=Role.MACRO))
    layout = CrossbarLayout(
        name=name, rows=R, cols=C, cell=xb.cell, cells=f"{name}_m", model=model,
        state_names=tuple(st.name for st in model.states),
        state_nodes=states.reshape(len(model.states), R, C),
        wl=np.asarray(wl).reshape(R, C), bl=np.asarray(bl).reshape(R, C),
        row_sources=tuple(row_sources), driven_rows=driven.astype(np.int64),
        col_source=None if opamp or not sensed.size else f"{name}_vcol",
        current_source=current_src, sensed=np.asarray(sensed, dtype=np.int64),
        sense=SenseInfo(sense.kind, float(sense.rf), int(sense.adc_bits or 0),
                        float(sense.adc_vmin or 0.0), float(sense.adc_vmax or 0.0)),
        phases=[_phase_info(ph) for ph in tl.phases], stop=tl.stop,
        selectors=f"{name}_sel" if xb.cell == "1S1R" else None,
        access=f"{name}_acc" if xb.cell == "1T1R" else None,
        select_source=f"{name}_vsel" if xb.cell == "1T1R" else None,
        tia_out=np.asarray(out, dtype=np.int64) if opamp else None,
        stuck=np.asarray(stuck, dtype=np.int64), stuck_levels=np.asarray(level, dtype=float),
        clamp=f"{name}_stuck" if stuck.size else None,
        intended_states=intended)
    c.crossbar = layout

    # probes: what was asked for, closed over what it needs (ADC codes need TIA outputs need currents)
    records = {r.what for r in design.records if not r.args} - {"energy"}
    if not records:
        records = {"column_currents", "tia_out"} | ({"adc_codes"} if sense.adc_bits else set())
    if "adc_codes" in records:
        records.add("tia_out")
    if "tia_out" in records:
        records.add("column_currents")
    layout.records = tuple(sorted(records))
    if "column_currents" in records:
        for k, j in enumerate(sensed):
            layout.current_signals[int(j)] = c.probe(f"icol_{j}", "i", (current_src, k)).name
    if "tia_out" in records:
        if opamp:
            for j in range(C):
                layout.tia_signals[j] = c.probe(f"vout_{j}", "v", int(out[j])).name
        else:
            # ideal TIA: v = -rf * i, computed from the column current by both engines alike
            layout.derived = tuple(Derived(f"vout_{j}", layout.current_signals[int(j)], -sense.rf) for j in sensed)
            layout.tia_signals = {int(j): f"vout_{j}" for j in sensed}
    if "states" in records:
        for k, st in enumerate(model.states):
            names = np.empty((R, C), dtype=object)
            for f in range(R * C):
                i, j = divmod(f, C)
                names[i, j] = c.probe(f"{st.name}_{i}_{j}", "v", int(states[k, f])).name
            layout.state_signals[st.name] = names
    if "line_voltages" in records:
        for i in range(R):
            for j in range(C):
                if w.r_row > 0 or j == 0:
                    c.probe(f"vwl_{i}_{j}" if w.r_row > 0 else f"vwl_{i}", "v", int(wl[i, j]))
        for i in range(R):
            for j in range(C):
                if w.r_col > 0 or i == 0:
                    c.probe(f"vbl_{i}_{j}" if w.r_col > 0 else f"vbl_{j}", "v", int(bl[i, j]))
    if "supply_currents" in records:
        # current each supply delivers (into the circuit): isup_<line kind>_<line>
        supplies = [(src, tag) for src, tag in zip(row_sources, ("rowl", "rowr") if len(row_sources) == 2 else ("row",))]
        if layout.col_source:
            supplies.append((layout.col_source, "col"))
        if layout.select_source:
            supplies.append((layout.select_source, "sel"))
        names = []
        for src, tag in supplies:
            g = c.group(src, VoltageSources)
            lines = g.index if g.index is not None else np.arange(g.n)
            for k, line in enumerate(lines):
                names.append(c.probe(f"isup_{tag}_{int(line)}", "i", (src, k), scale=-1.0).name)
        layout.supply_signals = tuple(names)


def _phase_info(ph: dict) -> PhaseInfo:
    if ph["kind"] == "read":
        return PhaseInfo(ph["phase"], "read", ph["start"], ph["end"], sample=ph["sample"],
                         vector=tuple(float(v) for v in ph["vector"]), rows=tuple(ph["row"]), cols=tuple(ph["col"]))
    if ph["kind"] == "wave":
        return PhaseInfo(ph["phase"], "wave", ph["start"], ph["end"], rows=tuple(ph["row"]), cols=tuple(ph["col"]))
    return PhaseInfo(ph["phase"], "program", ph["start"], ph["end"], rows=tuple(ph["row"]), cols=tuple(ph["col"]),
                     amplitude=float(ph["amplitude"]), scheme=ph["scheme"])


def _analysis(design: d.Design, c: Circuit) -> None:
    an = design.analysis
    if an.kind == "op":
        c.analysis = OperatingPoint()
        return
    stop = an.stop
    if stop is None:
        stop = c.crossbar.stop if c.crossbar is not None else None
        if not stop:
            raise DescriptionError("tran(): give stop= (there is no crossbar stimulus to take it from)",
                                   Location(file=design.source))
    step = an.step
    if step is None:
        edges = [design.row_driver.rise, design.row_driver.fall] if design.crossbar is not None else []
        step = min([stop / 1000] + [e / 2 for e in edges])
    if step > stop:
        raise DescriptionError(f"tran(): step {step:g} s exceeds stop {stop:g} s", Location(file=design.source))
    c.analysis = Transient(tstop=stop, tstep=step, tmax=an.max_step)
