"""What a sweep records per point, computed from a circuit and its waveforms.

Per engine (column suffix ``_spice`` / ``_behavioural``):

* ``read_error``: ``read_error`` = RMS(I - I_ideal) / RMS(I_ideal) over the
  sensed columns and read phases (I_ideal from :mod:`circuitkit.ideal`, the
  product without wires, drivers or converters); ``read_error_max`` = max
  |I - I_ideal| / max |I_ideal|; with an ADC, ``adc_code_error`` = mean
  |code - ideal code| in LSB, the ideal code being the ADC of -rf * I_ideal,
  and ``adc_clipped`` = how many samples the ADC clipped (outside its range).
* ``wall_time``: ``wall_s`` (the engine's own timing) and ``run_s`` (the
  whole call, netlist rendering and model compilation included).
* ``energy``: from :func:`circuitkit.energy.energy` (the code ``circuitkit
  simulate`` uses): ``energy_J`` dissipated in cells, wires, drivers and
  sense resistors (fault clamps and state terminals excluded),
  ``energy_supplied_J`` delivered by the stimulus sources (equal without
  op-amp TIAs), ``energy_cells_J``, ``energy_half_selected_J``,
  ``energy_wires_J``, ``energy_drivers_J``; ``power_W`` = energy over the
  stimulus (an operating point: one read phase at constant power). NaN when
  the node voltages over time would exceed ~160 MB
  (:data:`circuitkit.energy.DEFAULT_BUDGET`), so they were not recorded.
* ``write``: over the programming phases' target cells, ``dx_target`` = final
  minus initial first state (mean over targets), ``disturb_half_max`` /
  ``disturb_half_mean`` = |Δx| over half-selected cells (sharing a row or a
  column with a target), ``disturb_other_max`` over the other cells.

Across engines (``cross_check``): ``xcheck_rel_rms_max`` (worst signal),
``xcheck_worst_signal``, ``xcheck_column_current_error``,
``xcheck_adc_codes_differing``, ``xcheck_passed`` and ``speedup`` = SPICE wall
time / behavioural wall time.

The probes these need (source currents, device states) are added to the
circuit by :func:`add_metric_probes` before it is simulated, so both engines
record them.
"""
from __future__ import annotations

import numpy as np

from ..circuit.model import Circuit
from ..results import Waveforms

STATE_PREFIX = "swp_x_"


def applicable_metrics(circuit: Circuit, engines: tuple[str, ...]) -> tuple[str, ...]:
    """Every metric that means something for this circuit and these engines."""
    xb = circuit.crossbar
    kinds = {p.kind for p in xb.phases} if xb is not None else set()
    out = []
    if "read" in kinds and xb.sensed.size:
        out.append("read_error")
    if len(engines) > 1:
        out.append("cross_check")
    out += ["wall_time", "energy"]
    if "program" in kinds:
        out.append("write")
    return tuple(out)


# -- probes -----------------------------------------------------------------------

def add_metric_probes(circuit: Circuit, metrics: tuple[str, ...]) -> None:
    """Record what the metrics need and the description did not ask for."""
    have = {(p.kind, p.target if p.kind == "v" else tuple(p.target)) for p in circuit.probes}
    if "energy" in metrics:
        from ..energy import DEFAULT_BUDGET, record_energy
        record_energy(circuit, budget=DEFAULT_BUDGET)     # declined (metrics NaN) above ~160 MB of voltages
    xb = circuit.crossbar
    if "write" in metrics and xb is not None and xb.state_names:
        for f, node in enumerate(xb.state_nodes[0].ravel()):
            if ("v", int(node)) not in have:
                circuit.probe(f"{STATE_PREFIX}{f}", "v", int(node))


# -- per engine --------------------------------------------------------------------

def engine_metrics(circuit: Circuit, wf: Waveforms, metrics: tuple[str, ...]) -> dict[str, float]:
    """The per-engine metrics (without the engine suffix)."""
    out: dict[str, float] = {}
    if "read_error" in metrics:
        out.update(read_metrics(circuit, wf))
    if "wall_time" in metrics:
        out["wall_s"] = float(wf.wall_s)
    if "energy" in metrics:
        out.update(energy_metrics(circuit, wf))
    if "write" in metrics:
        out.update(write_metrics(circuit, wf))
    return out


def measured_currents(circuit: Circuit, wf: Waveforms) -> tuple[np.ndarray, list[int]]:
    """Array (read phases, sensed columns) of column currents at the sample times."""
    from ..outputs import outputs_table
    table = outputs_table(circuit, wf)
    if not len(table):
        return np.empty((0, 0)), []
    piv = table.pivot(index="phase", columns="column", values="current").sort_index()
    return piv.to_numpy(dtype=float), [int(c) for c in piv.columns]


def read_metrics(circuit: Circuit, wf: Waveforms) -> dict[str, float]:
    from ..ideal import ideal_column_currents
    from ..outputs import outputs_table
    from ..peripherals import adc_convert
    measured, cols = measured_currents(circuit, wf)
    ideal = ideal_column_currents(circuit)
    if measured.size == 0 or ideal.size == 0:
        return {"read_error": float("nan"), "read_error_max": float("nan")}
    # only the read phases the run sampled (a transient stopped early has no outputs for the later ones)
    position = {ph.index: k for k, ph in enumerate(circuit.crossbar.read_phases())}
    sampled = sorted(set(int(p) for p in outputs_table(circuit, wf)["phase"]))
    ideal = ideal[[position[p] for p in sampled]][:, cols]
    if ideal.shape != measured.shape:
        raise ValueError(f"read outputs have shape {measured.shape}, the ideal product {ideal.shape}")
    diff = measured - ideal
    rms = float(np.sqrt(np.mean(ideal ** 2)))
    peak = float(np.max(np.abs(ideal)))
    out = {"read_error": float(np.sqrt(np.mean(diff ** 2)) / rms) if rms else float("nan"),
           "read_error_max": float(np.max(np.abs(diff)) / peak) if peak else float("nan")}
    sense = circuit.crossbar.sense
    if sense.adc_bits:
        table = outputs_table(circuit, wf)
        codes = table.pivot(index="phase", columns="column", values="adc_code").sort_index().to_numpy()
        ideal_codes = adc_convert(-sense.rf * ideal, sense.adc_bits, sense.adc_vmin, sense.adc_vmax)
        out["adc_code_error"] = float(np.mean(np.abs(codes - ideal_codes)))
        out["adc_clipped"] = int((table["adc_clipped"] != 0).sum())
    return out


def energy_metrics(circuit: Circuit, wf: Waveforms) -> dict[str, float]:
    """Energy (J) per part and mean power (W): :func:`circuitkit.energy.energy`, the code ``simulate`` uses."""
    from ..energy import EnergyError, energy
    keys = ("energy_J", "energy_supplied_J", "energy_cells_J", "energy_half_selected_J", "energy_wires_J",
            "energy_drivers_J", "power_W")
    try:
        en = energy(circuit, wf)
    except EnergyError:
        return dict.fromkeys(keys, float("nan"))
    t = en.totals
    span = float(en.table["end"].max() - en.table["start"].min())
    return {"energy_J": t["total"], "energy_supplied_J": t["supplied"],
            "energy_cells_J": t["cells_selected"] + t["cells_half_selected"] + t["cells_unselected"],
            "energy_half_selected_J": t["cells_half_selected"], "energy_wires_J": t["wires"],
            "energy_drivers_J": t["drivers"], "power_W": t["total"] / span if span > 0 else float("nan")}


def write_metrics(circuit: Circuit, wf: Waveforms) -> dict[str, float]:
    """Target-cell state change and half-select disturb over the programming phases."""
    nan = {"dx_target": float("nan"), "disturb_half_max": float("nan"), "disturb_half_mean": float("nan"),
           "disturb_other_max": float("nan")}
    xb = circuit.crossbar
    programs = xb.program_phases() if xb is not None else []
    if not programs or not xb.state_names:
        return nan
    R, C = xb.rows, xb.cols
    by_node = {int(p.target): p for p in circuit.probes if p.kind == "v"}
    dx = np.empty(R * C)
    for f, node in enumerate(xb.state_nodes[0].ravel()):
        probe = by_node.get(int(node))
        if probe is None or probe.name not in wf.signals:
            return nan
        x = np.asarray(wf.signals[probe.name], dtype=float).reshape(-1) / probe.scale
        dx[f] = x[-1] - x[0]
    dx = dx.reshape(R, C)
    target = np.zeros((R, C), bool)
    for p in programs:
        target[np.ix_(np.atleast_1d(p.rows), np.atleast_1d(p.cols))] = True
    rows, cols = target.any(axis=1), target.any(axis=0)
    half = (rows[:, None] | cols[None, :]) & ~target
    other = ~(rows[:, None] | cols[None, :])
    ad = np.abs(dx)
    return {"dx_target": float(dx[target].mean()),
            "disturb_half_max": float(ad[half].max()) if half.any() else 0.0,
            "disturb_half_mean": float(ad[half].mean()) if half.any() else 0.0,
            "disturb_other_max": float(ad[other].max()) if other.any() else 0.0}


# -- across engines ----------------------------------------------------------------

def cross_metrics(circuit: Circuit, spice: Waveforms, behavioural: Waveforms, tolerance: float) -> dict:
    from ..compare import compare_waveforms
    from ..outputs import outputs_table
    cmp = compare_waveforms(circuit, spice, behavioural, tolerance,
                            (outputs_table(circuit, spice), outputs_table(circuit, behavioural)))
    worst = cmp.worst(1)
    out = {"xcheck_rel_rms_max": worst[0].rel_rms_error if worst else float("nan"),
           "xcheck_worst_signal": worst[0].name if worst else "",
           "xcheck_passed": bool(cmp.passed),
           "speedup": spice.wall_s / behavioural.wall_s if behavioural.wall_s > 0 else float("nan")}
    if "max_rel_column_current_error" in cmp.outputs:
        out["xcheck_column_current_error"] = cmp.outputs["max_rel_column_current_error"]
    if "adc_codes_differing" in cmp.outputs:
        out["xcheck_adc_codes_differing"] = cmp.outputs["adc_codes_differing"]
    return out
