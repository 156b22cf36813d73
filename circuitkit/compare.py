"""Cross-check: the same circuit in both engines, aligned and measured.

Transients are compared on ngspice's *own* time points (its accepted
solutions, the reference engine's actual answers), the behavioural signal
linearly interpolated between *its* own points (its accepted time points
plus the print grid; ``behavioural/transient.py``). Both engines step
exactly onto every source breakpoint, so no interpolation crosses an edge
(breakpoint-aware by construction). Neither engine's chord between its
points is compared: a uniform resampling of both did that, and
``read_1t1r_16x16.xbar`` failed at 2 % where ngspice's chord cut across the
kink of an access transistor turning on between two of its points (its
charge-based step control sees no charge there) while the solutions agreed
to 1e-14. The RMS is *time-weighted* (trapezoidal weights of ngspice's
points), so the dense points ngspice places at edges do not dominate it.
Per signal:

* ``rel_rms_error`` = time-RMS(behavioural - spice) / max(time-RMS(spice), floor), the floor
  ngspice's vntol (1e-6 V) or abstol (1e-12 A) by probe kind (``FLOORS``): a signal held at zero is
  not judged against its own rounding noise
* ``max_abs_error`` = max |behavioural - spice| over ngspice's points

For an operating point both are computed on the single values. Crossbar reads
add per-column output errors and the ADC codes that differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .circuit.model import Circuit, Transient
from .results import Waveforms

if TYPE_CHECKING:                    # pandas loads only where a table is built (start-up time)
    import pandas as pd


@dataclass
class SignalError:
    name: str
    rel_rms_error: float
    max_abs_error: float


@dataclass
class Comparison:
    signals: list[SignalError]
    tolerance: float
    timings: dict[str, float]
    outputs: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(s.rel_rms_error <= self.tolerance for s in self.signals) and \
            self.outputs.get("adc_mismatch_beyond_1lsb", 0) == 0

    def worst(self, n: int = 3) -> list[SignalError]:
        return sorted(self.signals, key=lambda s: -s.rel_rms_error)[:n]

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "tolerance": self.tolerance,
            "signals": [{"name": s.name, "rel_rms_error": s.rel_rms_error, "max_abs_error": s.max_abs_error}
                        for s in self.signals],
            "timings": self.timings,
            "outputs": self.outputs,
        }

    def table(self) -> str:
        width = max([len("signal")] + [len(s.name) for s in self.signals])
        lines = [f"{'signal':<{width}}  {'rel RMS err':>12}  {'max abs err':>12}"]
        for s in self.signals:
            flag = "" if s.rel_rms_error <= self.tolerance else "  > tol"
            lines.append(f"{s.name:<{width}}  {s.rel_rms_error:12.3e}  {s.max_abs_error:12.3e}{flag}")
        lines.append("wall time: " + ", ".join(f"{k[:-2]} {v:.3f} s" for k, v in self.timings.items()))
        for key, value in self.outputs.items():
            if key == "column_rel_error":
                if value:
                    j = max(value, key=value.get)
                    lines.append(f"per-column current error: worst column {j} at {value[j]:.3e} "
                                 f"(of {len(value)} columns; all in the JSON report)")
                continue
            lines.append(f"{key}: {value}")
        lines.append(("PASSED" if self.passed else "FAILED") + f" (tolerance {self.tolerance:g} relative RMS)")
        return "\n".join(lines)


def common_time(circuit: Circuit, a: Waveforms, b: Waveforms) -> np.ndarray | None:
    """The reference's (``a``, ngspice) own time points up to the shorter run (see the module docstring)."""
    if a.time is None or b.time is None:
        return None
    stop = min(a.time[-1], b.time[-1])
    t = np.unique(np.asarray(a.time, float))
    t = t[(t >= 0) & (t <= stop * (1 + 1e-12))]
    if t.size < 2:
        return np.array([0.0, stop])
    # merge points closer than 1e-9 of the run (float noise in a shared breakpoint)
    keep = np.concatenate(([True], np.diff(t) > 1e-12 * max(stop, 1e-300)))
    return t[keep]


def time_weights(t: np.ndarray | None) -> np.ndarray | None:
    """Trapezoidal weights of the points ``t`` (each point stands for half of each neighbouring interval)."""
    if t is None or t.size < 2:
        return None
    d = np.diff(t)
    w = np.zeros(t.size)
    w[:-1] += d / 2
    w[1:] += d / 2
    return w


def aligned(wf: Waveforms, name: str, t: np.ndarray | None) -> np.ndarray:
    values = np.asarray(wf[name], dtype=float)
    if t is None:
        return values.reshape(-1)[:1]
    return np.interp(t, wf.time, values)


#: absolute floors of the relative RMS's denominator, by probe kind: ngspice's vntol (V; states are
#: voltages of their nodes) and abstol (A). A signal that stays below its floor (a state held at 0 with
#: 1e-13 of rounding in one engine) is judged against the floor, not against its own noise.
FLOORS = {"v": 1e-6, "i": 1e-12}


def signal_error(name: str, ref: np.ndarray, other: np.ndarray, weights: np.ndarray | None = None,
                 floor: float = 0.0) -> SignalError:
    diff = other - ref
    w = np.full(ref.size, 1.0 / max(ref.size, 1)) if weights is None else weights / weights.sum()
    rms_ref = max(float(np.sqrt(np.sum(w * ref ** 2))), floor)
    rms_diff = float(np.sqrt(np.sum(w * diff ** 2)))
    if rms_ref == 0.0:
        rel = 0.0 if rms_diff == 0.0 else float("inf")
    else:
        rel = rms_diff / rms_ref
    return SignalError(name, rel, float(np.max(np.abs(diff))) if diff.size else 0.0)


def compare_waveforms(circuit: Circuit, spice: Waveforms, behavioural: Waveforms, tolerance: float = 0.01,
                      outputs: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> Comparison:
    t = common_time(circuit, spice, behavioural)
    w = time_weights(t)
    internal = {p.name for p in circuit.probes if p.internal}     # recorded for a computation (energy)
    floor = {p.name: FLOORS.get(p.kind, 0.0) * abs(p.scale) for p in circuit.probes}     # in signal units
    errors = [signal_error(name, aligned(spice, name, t), aligned(behavioural, name, t), w, floor.get(name, 0.0))
              for name in spice.signals if name in behavioural.signals and name not in internal]
    extra = {}
    if outputs is not None and len(outputs[0]):
        extra = compare_outputs(circuit, *outputs)
    return Comparison(errors, tolerance, {f"{spice.engine}_s": spice.wall_s,
                                          f"{behavioural.engine}_s": behavioural.wall_s}, extra)


def compare_outputs(circuit: Circuit, spice: pd.DataFrame, behavioural: pd.DataFrame) -> dict:
    """Per-column current error and ADC codes that differ (and by how much)."""
    merged = spice.merge(behavioural, on=["phase", "column"], suffixes=("_spice", "_beh"))
    ref = merged["current_spice"].to_numpy()
    diff = merged["current_beh"].to_numpy() - ref
    scale = np.max(np.abs(ref)) or 1.0
    out = {"max_rel_column_current_error": float(np.max(np.abs(diff)) / scale) if len(diff) else 0.0}
    per_col = merged.assign(err=np.abs(diff) / scale).groupby("column")["err"].max()
    out["column_rel_error"] = {int(j): float(e) for j, e in per_col.items()}
    if (merged["adc_code_spice"] >= 0).any():
        dcode = np.abs(merged["adc_code_beh"] - merged["adc_code_spice"])
        out["adc_codes_differing"] = int((dcode > 0).sum())
        out["adc_mismatch_beyond_1lsb"] = int((dcode > 1).sum())
    return out


def plot_comparison(circuit: Circuit, spice: Waveforms, behavioural: Waveforms, comparison: Comparison, path) -> None:
    """PNG: the worst signals overlaid over time, plus the I–V loop of a lone device if recorded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    iv = iv_signals(circuit, spice)
    worst = [s.name for s in comparison.worst(3)]
    n_panels = len(worst) + (1 if iv else 0)
    fig, axes = plt.subplots(1, max(n_panels, 1), figsize=(5 * max(n_panels, 1), 4), squeeze=False)
    axes = axes[0]
    k = 0
    if iv:
        v, i = iv
        ax = axes[0]
        for wf, style, label in ((spice, "-", _label(spice)), (behavioural, "--", _label(behavioural))):
            ax.plot(np.asarray(wf[v]), np.asarray(wf[i]) * 1e3, style, label=label)
        ax.set_xlabel(f"{v} [V]")
        ax.set_ylabel(f"{i} [mA]")
        ax.set_title("pinched I–V loop")
        ax.legend()
        k = 1
    for name in worst:
        ax = axes[k]
        k += 1
        if spice.time is None:
            ax.bar([_label(spice), _label(behavioural)], [float(spice[name]), float(behavioural[name])])
        else:
            scale, unit = _time_unit(spice.time[-1])
            ax.plot(spice.time * scale, spice[name], "-", label=_label(spice))
            ax.plot(behavioural.time * scale, behavioural[name], "--", label=_label(behavioural))
            ax.set_xlabel(f"time [{unit}]")
        err = next(s for s in comparison.signals if s.name == name)
        ax.set_title(f"{name}  (rel RMS err {err.rel_rms_error:.2e})")
        ax.legend()
    fig.suptitle(circuit.title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _label(wf: Waveforms) -> str:
    from .engines import ENGINE_LABELS
    return ENGINE_LABELS.get(wf.engine, wf.engine)


def _time_unit(stop: float) -> tuple[float, str]:
    """Scale and unit that put ``stop`` between 1 and 1000 (s, ms, us, ns, ps)."""
    for scale, unit in ((1.0, "s"), (1e3, "ms"), (1e6, "us"), (1e9, "ns"), (1e12, "ps")):
        if stop * scale >= 1.0:
            return scale, unit
    return 1e12, "ps"


def iv_signals(circuit: Circuit, wf: Waveforms) -> tuple[str, str] | None:
    """(voltage, current) signals of a lone grounded device when both are recorded."""
    from .circuit.model import Devices, VoltageSources
    for g in circuit.groups_of(Devices):
        if g.n != 1 or g.n_[0] != 0 or f"i({g.name})" not in wf.signals:
            continue
        node = int(g.p[0])
        for src in circuit.groups_of(VoltageSources):   # look through a 0 V ammeter to the outer node
            if src.name == f"am_{g.name}" and int(src.n_[0]) == node:
                node = int(src.p[0])
        v = f"v({circuit.node_name(node)})"
        if v in wf.signals:
            return v, f"i({g.name})"
    return None
