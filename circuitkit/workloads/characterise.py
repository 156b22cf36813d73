"""Device characterisation protocols of synaptic devices, in any engine.

Each protocol drives one device (any model) from a piece-wise linear source
and reads its conductance at a low read voltage ``vread`` between pulses, as
a device paper measures it. Conductance is the chord ``i / v`` at the read
level, sampled ``delay`` after a pulse ends.

* :func:`ppf` -- paired-pulse facilitation against the gap between two pulses:
  ``PPF = G2 / G1`` (conductances read at the same delay after each pulse).
* :func:`decay` -- conductance after a train of pulses as it relaxes, with
  fitted one- and two-exponential time constants.
* :func:`ltp` -- potentiation and depression curves: conductance after each
  pulse of a train of positive, then of negative pulses, read after ``settle``
  (so short-term components have decayed and the long-term part remains).
* :func:`meta` -- meta-plasticity: the long-term change a fixed test train
  produces after a priming train of ``n`` pulses (of either polarity), against
  ``n``. A device whose learning rate depends on its recent history gives a
  curve that is not flat.

Every protocol runs on any engine name :func:`circuitkit.engines.simulate`
knows; :func:`characterise` runs one protocol on several engines and reports
how far they are apart (``agreement``: the largest relative difference of the
protocol's metric between engines).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import design as d
from ..circuit.build import build_circuit
from ..circuit.waveforms import PWL
from ..devices.registry import get_model
from ..errors import Location, ParameterError

PROTOCOLS = ("ppf", "decay", "ltp", "meta")


@dataclass(frozen=True)
class Pulses:
    """Shape of the stimulus: pulse ``amplitude`` (V) and ``width`` (s, flat top), ``edge`` (s) rise/fall time,
    read level ``vread`` (V), conductance sampled ``delay`` (s) after a pulse ends, ``period`` of trains (s)."""

    amplitude: float = 1.5
    width: float = 100e-9
    edge: float = 1e-9
    vread: float = 0.1
    delay: float = 20e-9
    period: float = 400e-9

    def __post_init__(self):
        for name in ("width", "edge", "vread", "delay", "period"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ParameterError(f"characterise: '{name}' must be a finite number > 0, got {value!r}",
                                      Location(parameter=name))
        if not np.isfinite(self.amplitude) or self.amplitude == 0:
            raise ParameterError(f"characterise: 'amplitude' must be finite and non-zero, got {self.amplitude!r}",
                                  Location(parameter="amplitude"))
        if self.period < self.width + 2 * self.edge + self.delay:
            raise ParameterError("characterise: 'period' must hold a pulse, its edges and the read delay",
                                  Location(parameter="period"))


@dataclass
class Device:
    """The device under test: a model name and parameter overrides."""

    model: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_description(cls, path, overrides=None) -> "Device":
        """The first ``device`` of an element description (``.xbar``)."""
        from ..description.loader import load_description
        design = load_description(path, overrides)
        if not design.devices:
            raise ParameterError("characterise needs a description with a 'device' line (the device under test)",
                                  Location(file=str(path)))
        dev = design.devices[0]
        return cls(dev.model, dict(dev.params))


class _Train:
    """Builds a PWL of pulses at given start times on a read level; remembers where to read."""

    def __init__(self, pulses: Pulses):
        self.p = pulses
        self.t = [0.0]
        self.v = [pulses.vread]

    def pulse(self, start: float, amplitude: float | None = None) -> float:
        """Add one pulse starting at ``start``; return the time to read it (``delay`` after its end)."""
        p = self.p
        amp = p.amplitude if amplitude is None else amplitude
        if start <= self.t[-1]:
            raise ValueError("pulses must start after the previous one ended")
        self.t += [start, start + p.edge, start + p.edge + p.width, start + 2 * p.edge + p.width]
        self.v += [p.vread, amp, amp, p.vread]
        return start + 2 * p.edge + p.width + p.delay

    def end(self) -> float:
        return self.t[-1]

    def waveform(self) -> PWL:
        try:
            return PWL(tuple(self.t), tuple(self.v))
        except ValueError:      # a width, edge or delay too short to tell apart from its start in floats
            raise ParameterError("characterise: the pulse times do not increase (width, edge or delay too short "
                                 f"for a train of {self.t[-1]:g} s)", Location(parameter="width")) from None


def _run(device: Device, train: _Train, stop: float, engine: str, max_step: float):
    """Simulate the device under ``train``; return a function t -> read conductance, and the waveforms."""
    from ..engines import simulate
    model = get_model(device.model)
    design = d.Design(
        title=f"characterise {device.model}",
        sources=[d.SourceSpec("vin", "a", "0", train.waveform())],
        devices=[d.DeviceSpec("dut", "a", "0", device.model, dict(device.params))],
        analysis=d.Analysis("tran", step=max_step, stop=stop, max_step=max_step),
        records=[d.Record("v", ("a",)), d.Record("i", ("dut",))] + [d.Record(s.name, ("dut",)) for s in model.states],
    )
    wf = simulate(build_circuit(design), engine)
    t = np.asarray(wf.time, dtype=float)
    v, i = np.asarray(wf["v(a)"], dtype=float), np.asarray(wf["i(dut)"], dtype=float)

    def conductance(times) -> np.ndarray:
        times = np.atleast_1d(np.asarray(times, dtype=float))
        return np.interp(times, t, i) / np.interp(times, t, v)
    return conductance, wf


def _step(pulses: Pulses) -> float:
    """Largest time step: resolves the edges and the flat tops."""
    return min(pulses.width / 100, pulses.edge * 2, pulses.delay / 4)


def ppf(device: Device, gaps: Sequence[float], pulses: Pulses = Pulses(), engine: str = "behavioural") -> pd.DataFrame:
    """Paired-pulse facilitation: ``gap`` (s, end of pulse 1 to start of pulse 2), ``g1``, ``g2`` (S), ``ppf``."""
    rows = []
    for gap in gaps:
        if not (np.isfinite(gap) and gap > pulses.delay):
            raise ParameterError(f"ppf: gap {gap!r} must be finite and longer than the read delay {pulses.delay:g} s",
                                  Location(parameter="gaps"))
        tr = _Train(pulses)
        t1 = tr.pulse(pulses.period / 4)
        t2 = tr.pulse(t1 - pulses.delay + gap)
        g, _ = _run(device, tr, t2 + pulses.delay, engine, _step(pulses))
        g1, g2 = g([t1, t2])
        rows.append((float(gap), float(g1), float(g2), float(g2 / g1)))
    return pd.DataFrame(rows, columns=["gap", "g1", "g2", "ppf"])


def _fit_exponentials(t: np.ndarray, g: np.ndarray) -> dict[str, float]:
    """Least-squares fits g = ginf + a exp(-t/tau) and g = ginf + a1 exp(-t/tau1) + a2 exp(-t/tau2)."""
    t = t - t[0]
    span = float(t[-1]) or 1.0
    out: dict[str, float] = {}
    scale = float(np.max(np.abs(g))) or 1.0
    y = g / scale

    def one(tt, ginf, a, tau):
        return ginf + a * np.exp(-tt / tau)

    def two(tt, ginf, a1, tau1, a2, tau2):
        return ginf + a1 * np.exp(-tt / tau1) + a2 * np.exp(-tt / tau2)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _fit(t, y, scale, span, one, two, out)


def _fit(t, y, scale, span, one, two, out):
    from scipy.optimize import curve_fit
    try:
        p1, _ = curve_fit(one, t, y, p0=(y[-1], y[0] - y[-1], span / 5), maxfev=20000)
        out.update(g_inf=float(p1[0] * scale), tau=float(abs(p1[2])),
                   rms_1exp=float(np.sqrt(np.mean((one(t, *p1) - y) ** 2)) * scale))
        p2, _ = curve_fit(two, t, y, p0=(p1[0], p1[1] / 2, abs(p1[2]) / 3, p1[1] / 2, abs(p1[2]) * 3), maxfev=20000)
        taus = sorted([(abs(p2[2]), p2[1]), (abs(p2[4]), p2[3])])
        rms2 = float(np.sqrt(np.mean((two(t, *p2) - y) ** 2)) * scale)
        # keep the two-timescale fit only where it is one: distinct time constants, both components
        # of the same sign, and a clearly better fit than one exponential
        if rms2 < 0.7 * out["rms_1exp"] and taus[1][0] > 1.5 * taus[0][0] and taus[0][1] * taus[1][1] > 0:
            out.update(tau1=float(taus[0][0]), tau2=float(taus[1][0]), a1=float(taus[0][1] * scale),
                       a2=float(taus[1][1] * scale), rms_2exp=rms2)
    except (RuntimeError, ValueError):
        out.setdefault("tau", float("nan"))
    return out


def decay(device: Device, n_pulses: int = 5, duration: float = 10e-6, pulses: Pulses = Pulses(),
          engine: str = "behavioural", points: int = 200) -> tuple[pd.DataFrame, dict[str, float]]:
    """Conductance after a train of ``n_pulses`` for ``duration`` seconds (table ``t``, ``g``) and the fits."""
    if not 1 <= int(n_pulses) <= 10_000:
        raise ParameterError(f"decay: n_pulses must be 1..10000, got {n_pulses!r}", Location(parameter="n_pulses"))
    tr = _Train(pulses)
    read = 0.0
    for k in range(int(n_pulses)):
        read = tr.pulse(pulses.period / 4 + k * pulses.period)
    stop = read + duration
    # finer steps through the train, then the decay resolved at 1/points of its span
    g, _ = _run(device, tr, stop, engine, min(_step(pulses), duration / points))
    t = np.linspace(read, stop, points)
    table = pd.DataFrame({"t": t - read, "g": g(t)})
    return table, _fit_exponentials(table["t"].to_numpy(), table["g"].to_numpy())


def ltp(device: Device, n_pot: int = 10, n_dep: int = 10, settle: float = 5e-6, pulses: Pulses = Pulses(),
        engine: str = "behavioural", depress_amplitude: float | None = None, burst: int = 3) -> pd.DataFrame:
    """Potentiation then depression: after each step (a burst of ``burst`` pulses ``period`` apart), the
    conductance read ``settle`` later.

    Steps are ``settle`` apart so each read sees what remains after the short-term part decayed.
    Columns: ``pulse`` (step index), ``polarity`` (+1/-1), ``g`` (S).
    """
    if not 1 <= int(burst) <= 1000:
        raise ParameterError(f"ltp: burst must be 1..1000, got {burst!r}", Location(parameter="burst"))
    if settle <= pulses.delay:
        raise ParameterError("ltp: settle must be longer than the read delay", Location(parameter="settle"))
    amp_dep = -abs(pulses.amplitude) if depress_amplitude is None else depress_amplitude
    tr = _Train(pulses)
    reads, pol = [], []
    start = pulses.period / 4
    for k in range(int(n_pot) + int(n_dep)):
        positive = k < n_pot
        for b in range(int(burst)):
            end = tr.pulse(start + b * pulses.period, pulses.amplitude if positive else amp_dep) - pulses.delay
        reads.append(end + settle)
        pol.append(1 if positive else -1)
        start = end + settle + pulses.delay
    g, _ = _run(device, tr, reads[-1] + pulses.delay, engine, min(_step(pulses), settle / 50))
    g0 = g([pulses.period / 8])[0]
    return pd.DataFrame({"pulse": np.arange(len(reads) + 1), "polarity": [0] + pol,
                         "g": np.concatenate([[g0], g(reads)])})


def meta(device: Device, priming: Sequence[int] = (0, 5, 10, 20), n_test: int = 5, rest: float = 2e-6,
         settle: float = 10e-6, pulses: Pulses = Pulses(), prime_amplitude: float | None = None,
         engine: str = "behavioural") -> pd.DataFrame:
    """Long-term change of a test train after ``n`` priming pulses, for each ``n`` in ``priming``.

    Priming pulses (``prime_amplitude``, default the opposite polarity of the test pulses) come first,
    then ``rest``, then ``n_test`` test pulses, then ``settle``; ``dg`` is the conductance after ``settle``
    minus the conductance just before the test train. Columns: ``priming``, ``g_before``, ``g_after``, ``dg``,
    ``rate`` (dg relative to the unprimed dg).
    """
    amp_prime = -pulses.amplitude if prime_amplitude is None else prime_amplitude
    rows = []
    for n in priming:
        if not 0 <= int(n) <= 10_000:
            raise ParameterError(f"meta: priming counts must be 0..10000, got {n!r}", Location(parameter="priming"))
        tr = _Train(pulses)
        start = pulses.period / 4
        for k in range(int(n)):
            start = tr.pulse(start, amp_prime) - pulses.delay + (pulses.period - pulses.width - 2 * pulses.edge)
        before = start + rest - pulses.delay
        start = start + rest
        end = start
        for k in range(int(n_test)):
            end = tr.pulse(start + k * pulses.period) - pulses.delay
        after = end + settle
        g, _ = _run(device, tr, after + pulses.delay, engine, min(_step(pulses), settle / 100))
        gb, ga = g([before, after])
        rows.append((int(n), float(gb), float(ga), float(ga - gb)))
    table = pd.DataFrame(rows, columns=["priming", "g_before", "g_after", "dg"])
    ref = table.loc[table["priming"] == 0, "dg"]
    table["rate"] = table["dg"] / (float(ref.iloc[0]) if len(ref) and ref.iloc[0] != 0 else np.nan)
    return table


#: the metric column of each protocol that engines are compared on
METRIC = {"ppf": "ppf", "decay": "g", "ltp": "g", "meta": "dg"}


@dataclass
class Characterisation:
    """One protocol run on several engines: ``tables`` engine -> table, ``fits`` (decay), ``agreement``."""

    protocol: str
    device: Device
    tables: dict[str, pd.DataFrame]
    fits: dict[str, dict[str, float]]
    agreement: float | None

    def frame(self) -> pd.DataFrame:
        """All engines' tables stacked, with an ``engine`` column."""
        return pd.concat([t.assign(engine=e) for e, t in self.tables.items()], ignore_index=True)


def characterise(device: Device, protocol: str, engines: Sequence[str] = ("behavioural",),
                 pulses: Pulses = Pulses(), **options) -> Characterisation:
    """Run ``protocol`` (``ppf``, ``decay``, ``ltp``, ``meta``) on each engine; compare the metric between engines.

    ``agreement`` is max |m_e - m_ref| / max |m_ref| over the protocol's metric, ``ref`` the first engine.
    """
    if protocol not in PROTOCOLS:
        raise ParameterError(f"unknown protocol '{protocol}' (known: {', '.join(PROTOCOLS)})",
                              Location(parameter="protocol"))
    get_model(device.model)
    tables, fits = {}, {}
    for engine in engines:
        if protocol == "ppf":
            tables[engine] = ppf(device, options.get("gaps", (40e-9, 70e-9, 100e-9, 200e-9, 500e-9, 1e-6, 2e-6)),
                                 pulses, engine)
        elif protocol == "decay":
            tables[engine], fits[engine] = decay(device, pulses=pulses, engine=engine,
                                                 **{k: options[k] for k in ("n_pulses", "duration") if k in options})
        elif protocol == "ltp":
            tables[engine] = ltp(device, pulses=pulses, engine=engine,
                                 **{k: options[k] for k in ("n_pot", "n_dep", "settle", "burst") if k in options})
        else:
            tables[engine] = meta(device, pulses=pulses, engine=engine,
                                  **{k: options[k] for k in ("priming", "n_test", "rest", "settle") if k in options})
    metric = METRIC[protocol]
    ref = tables[engines[0]][metric].to_numpy(dtype=float)
    agreement = None
    if len(engines) > 1:
        scale = float(np.max(np.abs(ref))) or 1.0
        agreement = max(float(np.max(np.abs(tables[e][metric].to_numpy(dtype=float) - ref))) / scale
                        for e in engines[1:])
    return Characterisation(protocol, device, tables, fits, agreement)


def plot(result: Characterisation, path) -> None:
    """PNG of the protocol's curve, one line per engine."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    styles = ["-o", "--s", ":^"]
    for k, (engine, t) in enumerate(result.tables.items()):
        st = styles[k % len(styles)]
        if result.protocol == "ppf":
            ax.semilogx(t["gap"] * 1e9, t["ppf"], st, label=engine, ms=4)
            ax.set(xlabel="gap (ns)", ylabel="PPF = G2/G1")
        elif result.protocol == "decay":
            ax.plot(t["t"] * 1e6, t["g"] * 1e9, st[:2], label=engine, ms=2)
            ax.set(xlabel="time after the train (us)", ylabel="G (nS)")
        elif result.protocol == "ltp":
            ax.plot(t["pulse"], t["g"] * 1e9, st, label=engine, ms=4)
            ax.set(xlabel="pulse", ylabel="G after settling (nS)")
        else:
            ax.plot(t["priming"], t["dg"] * 1e9, st, label=engine, ms=4)
            ax.set(xlabel="priming pulses", ylabel="long-term change of the test train (nS)")
    title = f"{result.device.model}: {result.protocol}"
    if result.agreement is not None:
        title += f" (engines within {result.agreement:.1e})"
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
