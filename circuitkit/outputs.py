"""Per-read-phase outputs of a crossbar: column current, TIA voltage and ADC code.

Each read phase is sampled at its sample time (a fraction of the phase, set by
the ADC); an operating point is one phase. The same code runs on the results
of both engines, so ADC codes differ only where the analog values differ.

With an ADC, ``adc_clipped`` is ``-1`` where the TIA voltage lies below the
ADC range (the code is pinned at 0), ``+1`` above it (pinned at full scale)
and ``0`` where it converts normally (:func:`~circuitkit.peripherals.adc_clip`); :func:`clipping_summary` counts them. Signals are found
through the circuit's typed layout (:class:`~circuitkit.circuit.layout.CrossbarLayout`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .circuit.model import Circuit
from .peripherals import adc_clip, adc_convert
from .results import Waveforms

if TYPE_CHECKING:                    # pandas loads only where a table is built (start-up time)
    import pandas as pd

COLUMNS = ["phase", "column", "current", "tia_v", "adc_code", "adc_clipped"]


def sample(wf: Waveforms, name: str, t: float) -> float:
    values = np.asarray(wf[name], dtype=float)
    if wf.time is None:
        return float(values.reshape(-1)[0])
    return float(np.interp(t, wf.time, values))


def has_outputs(circuit: Circuit, wf: Waveforms) -> bool:
    """The circuit has crossbar read phases and ``wf`` recorded every sensed column current."""
    xb = circuit.crossbar
    return not (xb is None or not xb.current_signals or not xb.read_phases()
                or any(name not in wf.signals for name in xb.current_signals.values()))


def outputs_table(circuit: Circuit, wf: Waveforms) -> "pd.DataFrame":
    """One row per (read phase, sensed column); empty when the circuit has no crossbar reads recorded."""
    import pandas as pd
    xb = circuit.crossbar
    if not has_outputs(circuit, wf):
        return pd.DataFrame(columns=COLUMNS)
    sense = xb.sense
    rows = []
    # a transient stopped before a phase's sample instant never simulated it: np.interp would hold the
    # last simulated value and report it as that phase's output, so such phases get no rows
    end = None if wf.time is None or not len(wf.time) else float(wf.time[-1])
    for ph in xb.read_phases():
        if end is not None and ph.sample > end * (1 + 1e-9):
            continue
        for j, current in xb.current_signals.items():
            cur = sample(wf, current, ph.sample)
            tia = xb.tia_signals.get(j)
            v = sample(wf, tia, ph.sample) if tia is not None and tia in wf.signals else np.nan
            if sense.adc_bits and np.isfinite(v):
                code = int(adc_convert(v, sense.adc_bits, sense.adc_vmin, sense.adc_vmax))
                clipped = int(adc_clip(v, sense.adc_bits, sense.adc_vmin, sense.adc_vmax))
            else:
                code, clipped = -1, 0
            rows.append((ph.index, j, cur, v, code, clipped))
    return pd.DataFrame(rows, columns=COLUMNS)


def clipping_summary(table: "pd.DataFrame | None") -> dict:
    """How many ADC samples fell outside the ADC range (``below``/``above``) out of ``samples``."""
    if table is None or not len(table) or "adc_clipped" not in table or (table["adc_code"] < 0).all():
        return {"samples": 0, "clipped": 0, "below": 0, "above": 0}
    flags = table.loc[table["adc_code"] >= 0, "adc_clipped"]
    return {"samples": int(len(flags)), "clipped": int((flags != 0).sum()),
            "below": int((flags < 0).sum()), "above": int((flags > 0).sum())}
