"""Per-read-phase outputs of a crossbar: column current, TIA voltage and ADC code.

Each read phase is sampled at its sample time (a fraction of the phase, set by
the ADC); an operating point is one phase. The same code runs on the results
of both engines, so ADC codes differ only where the analog values differ.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .circuit.model import Circuit
from .peripherals import adc_convert
from .results import Waveforms


def sample(wf: Waveforms, name: str, t: float) -> float:
    values = np.asarray(wf[name], dtype=float)
    if wf.time is None:
        return float(values.reshape(-1)[0])
    return float(np.interp(t, wf.time, values))


def outputs_table(circuit: Circuit, wf: Waveforms) -> pd.DataFrame:
    """One row per (read phase, column); empty when the circuit has no crossbar reads."""
    cols = circuit.options.get("sensed")
    phases = [p for p in circuit.options.get("phases", []) if p["kind"] == "read"]
    if not cols or not phases or f"icol_{cols[0]}" not in wf.signals:
        return pd.DataFrame(columns=["phase", "column", "current", "tia_v", "adc_code"])
    sense = circuit.options["sense"]
    rows = []
    for ph in phases:
        for j in cols:
            cur = sample(wf, f"icol_{j}", ph["sample"])
            v = sample(wf, f"vout_{j}", ph["sample"]) if f"vout_{j}" in wf.signals else np.nan
            code = (int(adc_convert(v, sense["adc_bits"], sense["adc_vmin"], sense["adc_vmax"]))
                    if sense.get("adc_bits") and np.isfinite(v) else -1)
            rows.append((ph["phase"], j, cur, v, code))
    return pd.DataFrame(rows, columns=["phase", "column", "current", "tia_v", "adc_code"])
