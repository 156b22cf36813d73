"""The STDP window of a device model: conductance change against the pre/post spike delay.

A pre-synaptic spike puts ``pre_shape`` on the word line at ``t_pre``, a
post-synaptic spike puts ``post_shape`` on the bit line at ``t_pre + dt``; the
device sees ``v(t) = pre(t - t_pre) - post(t - t_pre - dt)`` and its state
moves only where ``v`` leaves the model's threshold window. With shapes that
are each below threshold alone but exceed it where a short peak meets the
other spike's long tail of opposite polarity, the change depends on the sign
and size of ``dt``: the pulse-overlap mechanism of Serrano-Gotarredona et al.,
Front. Neurosci. 7:2 (2013), and Zamarreño-Ramos et al., Front. Neurosci. 5:26 (2011).

All delays are measured in ONE transient: a 1 x N array with ideal wires and
drivers (so the bit lines do not interact), one column per delay, all cells
starting from the same state. ``dG/G`` is the relative change of the read
conductance ``I(vread, x)/vread``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ... import design as d
from ...circuit.build import build_circuit
from ...engines import simulate


@dataclass
class Window:
    dt: np.ndarray          # (N,) post minus pre time, s
    g0: np.ndarray          # (N,) conductance before
    g1: np.ndarray          # (N,) after
    engine: str
    wall_s: float

    @property
    def dg_over_g(self) -> np.ndarray:
        return self.g1 / self.g0 - 1

    def frame(self):
        import pandas as pd
        return pd.DataFrame({"dt": self.dt, "g0": self.g0, "g1": self.g1, "dG/G": self.dg_over_g,
                             "engine": self.engine})


def shapes_from(design: d.Design) -> tuple[d.SpikeShape, d.SpikeShape]:
    """The pre (first row spike train) and post (first column spike train) shapes of a design's wave phases."""
    pre = post = None
    for ph in design.stimulus:
        if isinstance(ph, d.WavePhase):
            for lw in ph.waves:
                if lw.shape is not None and lw.line == "row" and pre is None:
                    pre = lw.shape
                if lw.shape is not None and lw.line == "col" and post is None:
                    post = lw.shape
    if pre is None or post is None:
        from ...errors import DescriptionError, Location
        raise DescriptionError("an STDP description needs a wave phase with spikes(...) on a row (pre-synaptic "
                               "shape) and on a column (post-synaptic shape)", Location(file=design.source))
    return pre, post


def device_voltage(pre: d.SpikeShape, post: d.SpikeShape, dt: float, n: int = 4001) -> tuple[np.ndarray, np.ndarray]:
    """Exact PWL corners of the voltage across a device for a pre spike at 0 and a post spike at ``dt``."""
    t = np.unique(np.concatenate([np.asarray(pre.times), np.asarray(post.times) + dt]))
    return t, pre(t) - post(t - dt)


def window_design(design: d.Design, delays, *, step: float | None = None) -> tuple[d.Design, float]:
    """The 1 x N design measuring ``delays`` (and the pre-spike time)."""
    pre, post = shapes_from(design)
    delays = np.asarray(delays, dtype=float)
    xb = copy.deepcopy(design.crossbar)
    if xb is None:
        raise ValueError("an STDP description needs a crossbar (its device model, parameters and state)")
    xb.rows, xb.cols = 1, int(delays.size)
    xb.wires = d.Wires()
    xb.variability, xb.stuck_on, xb.stuck_off = {}, 0.0, 0.0
    if xb.state.kind == "uniform":            # every delay starts from the same state: the range's middle
        xb.state = d.StateInit(kind="constant", value=0.5 * (xb.state.low + xb.state.high))
    elif xb.state.kind != "constant":
        from ...errors import DescriptionError, Location
        raise DescriptionError("an STDP window starts every cell from one state: give state = <value>",
                               Location(file=design.source, parameter="state"))
    margin = 2 * (step or design.analysis.step or 1e-9)
    t_pre = max(0.0, -float(delays.min())) + margin
    stop = t_pre + max(0.0, float(delays.max())) + max(pre.duration, post.duration) + margin
    waves = [d.spikes(pre, [t_pre], row=0)] + [d.spikes(post, [t_pre + float(dt)], col=j) for j, dt in enumerate(delays)]
    out = d.Design(title="stdp window", source=design.source, crossbar=xb,
                   row_driver=d.Driver(r_out=0.0), col_driver=d.Driver(r_out=0.0),
                   stimulus=[d.WavePhase(waves, duration=stop)],
                   analysis=d.Analysis(kind="tran", step=step or design.analysis.step,
                                       max_step=step or design.analysis.step),
                   records=[d.Record("states")])
    return out, t_pre


def stdp_window(design: d.Design, delays, *, engine: str = "behavioural", step: float | None = None,
                vread: float = 0.1) -> Window:
    """Measure dG/G at each delay in ``delays`` on ``engine`` (one transient)."""
    wd, _ = window_design(design, delays, step=step)
    c = build_circuit(wd)
    lay = c.crossbar
    cells = lay.cell_devices(c)
    model = lay.model
    n = lay.cols
    x0 = np.stack([np.broadcast_to(np.asarray(cells.params[st.init], dtype=float), (n,)) for st in model.states])
    wf = simulate(c, engine)
    x1 = np.array([[float(np.asarray(wf[name])[-1]) for name in np.asarray(lay.state_signals[st.name]).ravel()]
                   for st in model.states])
    p = cells.resolved()
    g0 = model.current(np.full(n, vread), x0, p) / vread
    g1 = model.current(np.full(n, vread), x1, p) / vread
    return Window(np.asarray(delays, dtype=float), g0, g1, engine, wf.wall_s)
