"""The behavioural engine against ngspice on the same circuits.

A small private netlist writer (R, C, V, E, G, M, N elements) and an ascii
raw-file reader keep these tests independent of the project's renderer.
Errors are relative: ``|beh - spice| / |spice|`` for operating points,
``RMS(beh - spice) / RMS(spice)`` over ngspice's own time points (the
behavioural result interpolated) for transients.
"""
from __future__ import annotations

import subprocess
import textwrap

import numpy as np
import pytest

from circuitkit.behavioural import simulate
from circuitkit.circuit.model import (VCCS, VCVS, Capacitors, Circuit, Devices, MosfetModel, Mosfets,
                                      OperatingPoint, Resistors, Transient, VoltageSources)
from circuitkit.circuit.waveforms import DC, PWL, Pulse, Sine
from circuitkit.devices.base import DeviceModel, Parameter, State
from circuitkit.spice.toolchain import find_ngspice, find_openvaf
from circuitkit.units import format_si

pytestmark = pytest.mark.spice


# ---------------------------------------------------------------------------
# a tiny netlist writer and raw-file reader
# ---------------------------------------------------------------------------

def _wave(w) -> str:
    f = format_si
    if isinstance(w, DC):
        return f"DC {f(w.value)}"
    if isinstance(w, Pulse):
        return "PULSE(" + " ".join(f(v) for v in (w.v1, w.v2, w.delay, w.rise, w.fall, w.width, w.period)) + ")"
    if isinstance(w, Sine):
        return "SIN(" + " ".join(f(v) for v in (w.offset, w.amplitude, w.freq, w.delay, w.damping, w.phase)) + ")"
    if isinstance(w, PWL):
        return "PWL(" + " ".join(f"{f(t)} {f(v)}" for t, v in zip(w.times, w.values)) + ")"
    raise TypeError(type(w))


def _netlist(c: Circuit, osdi=(), options: str = "") -> tuple[str, list[str]]:
    """Netlist text and the ngspice vector name of each probe."""
    nn, f = c.node_name, format_si
    lines, cards = [c.title], []
    for g in c.groups:
        for k in range(g.n):
            name = g.instance_name(k)
            if isinstance(g, (Resistors, Capacitors)):
                lines.append(f"{name} {nn(g.a[k])} {nn(g.b[k])} {f((g.r if isinstance(g, Resistors) else g.c)[k])}")
            elif isinstance(g, VoltageSources):
                lines.append(f"{name} {nn(g.p[k])} {nn(g.n_[k])} {_wave(g.waveforms[k])}")
            elif isinstance(g, (VCVS, VCCS)):
                gain = g.gain if isinstance(g, VCVS) else g.gm
                lines.append(f"{name} {nn(g.p[k])} {nn(g.n_[k])} {nn(g.cp[k])} {nn(g.cn[k])} {f(gain[k])}")
            elif isinstance(g, Mosfets):
                lines.append(f"{name} {nn(g.d[k])} {nn(g.g[k])} {nn(g.s[k])} {nn(g.b[k])} {g.model_card} "
                             f"W={f(g.model.w)} L={f(g.model.l)}")
            elif isinstance(g, Devices):
                per = " ".join(f"{key}={f(v[k])}" for key, v in g.params.items() if np.ndim(v))
                states = " ".join(nn(s) for s in g.states[:, k])
                lines.append(f"{name} {nn(g.p[k])} {nn(g.n_[k])} {states} {g.model_card} {per}")
        if isinstance(g, Mosfets):
            m = g.model
            cards.append(f".model {g.model_card} {m.polarity} level=1 vto={f(m.vto)} kp={f(m.kp)} "
                         f"lambda={f(m.lambda_)}")
        elif isinstance(g, Devices):
            scal = " ".join(f"{key}={f(v)}" for key, v in g.params.items() if not np.ndim(v))
            cards.append(f".model {g.model_card} {g.model.name} {scal}")
    an = c.analysis
    lines += cards
    lines.append(".op" if isinstance(an, OperatingPoint) else
                 f".tran {f(an.tstep)} {f(an.tstop)} 0 {f(an.max_step)}")
    vectors = [f"v({nn(p.target)})" if p.kind == "v" else
               f"i({c.group(p.target[0], VoltageSources).instance_name(p.target[1])})" for p in c.probes]
    lines.append(f".options klu {options}")
    control = [f"pre_osdi {o}" for o in osdi] + ["run", "set filetype=ascii", "write out.raw " + " ".join(vectors)]
    lines += [".control", *control, ".endc", ".end"]
    return "\n".join(lines) + "\n", [v.lower() for v in vectors]


def _read_raw(path) -> dict[str, np.ndarray]:
    text = path.read_text().splitlines()
    nvars = int(next(l for l in text if l.startswith("No. Variables:")).split(":")[1])
    start = text.index("Variables:") + 1
    names = [text[start + k].split()[1].lower() for k in range(nvars)]
    values = [float(l.split()[-1]) for l in text[text.index("Values:") + 1:] if l.strip()]
    data = np.array(values).reshape(-1, nvars)
    return {name: data[:, k] for k, name in enumerate(names)}


def run_ngspice(c: Circuit, tmp_path, osdi=(), options: str = "") -> tuple[dict[str, np.ndarray], float]:
    """Probe name -> ngspice values (1-d), plus "time" for a transient; and the wall time."""
    import time
    text, vectors = _netlist(c, osdi, options)
    (tmp_path / "circuit.cir").write_text(text)
    start = time.perf_counter()
    proc = subprocess.run([str(find_ngspice()), "-b", "circuit.cir"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    wall = time.perf_counter() - start
    raw = tmp_path / "out.raw"
    assert raw.exists(), f"ngspice failed:\n{text}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    data = _read_raw(raw)
    out = {p.name: data[v] for p, v in zip(c.probes, vectors)}
    if "time" in data:
        out["time"] = data["time"]
    return out, wall


def rel_error(beh: float, ref: float) -> float:
    return abs(float(beh) - float(ref)) / abs(float(ref))


def rel_rms(t_ref, ref, t_beh, beh) -> float:
    diff = np.interp(t_ref, t_beh, beh) - ref
    return float(np.sqrt(np.mean(diff ** 2)) / np.sqrt(np.mean(ref ** 2)))


# ---------------------------------------------------------------------------
# operating points
# ---------------------------------------------------------------------------

def test_resistor_divider_op(tmp_path):
    c = Circuit("divider")
    a, b = c.add_nodes("a"), c.add_nodes("b")
    c.add(VoltageSources("vin", (), p=a, n_=0, waveforms=[DC(1.7)]))
    c.add(Resistors("r1", (), a=a, b=b, r=3.3e3))
    c.add(Resistors("r2", (), a=b, b=0, r=4.7e3))
    c.probe("vb", "v", b)
    c.probe("iin", "i", ("vin", 0))
    beh = simulate(c)
    ref, _ = run_ngspice(c, tmp_path)
    assert beh.time is None
    for name in ("vb", "iin"):
        assert rel_error(beh[name], ref[name][0]) < 1e-9, name
    assert float(beh["iin"]) < 0    # SPICE sign: a source delivering power has negative current


def test_resistive_grid_with_controlled_sources_op(tmp_path):
    rng = np.random.default_rng(3)
    c = Circuit("grid")
    n = 4
    grid = c.add_nodes("g", (n, n))
    out, ctl = c.add_nodes("out"), c.add_nodes("ctl")
    c.add(Resistors("rh", (n, n - 1), a=grid[:, :-1], b=grid[:, 1:], r=rng.uniform(100, 1e4, (n, n - 1))))
    c.add(Resistors("rv", (n - 1, n), a=grid[:-1, :], b=grid[1:, :], r=rng.uniform(100, 1e4, (n - 1, n))))
    c.add(Resistors("rg", (n,), a=grid[:, -1], b=np.zeros(n, np.int64), r=rng.uniform(1e3, 1e4, n)))
    c.add(VoltageSources("vrow", (n,), p=grid[:, 0], n_=np.zeros(n, np.int64),
                         waveforms=[DC(v) for v in rng.uniform(-1, 1, n)]))
    c.add(VCVS("amp", (), p=out, n_=0, cp=grid[1, 2], cn=grid[2, 1], gain=-7.5))
    c.add(Resistors("rout", (), a=out, b=ctl, r=2.2e3))
    c.add(Resistors("rctl", (), a=ctl, b=0, r=1e3))
    c.add(VCCS("gfb", (2,), p=grid[[1, 3], [3, 2]], n_=np.zeros(2, np.int64), cp=[ctl, out], cn=[0, grid[0, 1]],
               gm=[2e-4, -5e-5]))
    for i in range(n):
        c.probe(f"v{i}", "v", grid[i, 2])
        c.probe(f"i{i}", "i", ("vrow", i))
    c.probe("vout", "v", out)
    beh = simulate(c)
    ref, _ = run_ngspice(c, tmp_path)
    errors = {name: rel_error(beh[name], ref[name][0]) for name in beh.signals}
    assert max(errors.values()) < 1e-9, errors


@pytest.mark.parametrize("polarity", ["nmos", "pmos"])
def test_mosfet_level1_op_triode_and_saturation(tmp_path, polarity):
    """A grid of gate/drain biases covering cutoff, triode, saturation and reversed drain/source."""
    sign = 1.0 if polarity == "nmos" else -1.0
    model = MosfetModel(polarity=polarity, vto=sign * 0.6, kp=1.5e-4, lambda_=0.08, w=3e-6, l=0.5e-6)
    vg = np.array([0.3, 1.0, 1.8, 1.8, 1.2, 1.5])
    vd = np.array([1.0, 0.2, 0.3, 1.6, 2.5, -0.4])
    n = vg.size
    c = Circuit(f"{polarity} bias points")
    g, d, dd = c.add_nodes("g", (n,)), c.add_nodes("d", (n,)), c.add_nodes("dd", (n,))
    zeros = np.zeros(n, np.int64)
    c.add(VoltageSources("vg", (n,), p=g, n_=zeros, waveforms=[DC(sign * v) for v in vg]))
    c.add(VoltageSources("vd", (n,), p=dd, n_=zeros, waveforms=[DC(sign * v) for v in vd]))
    c.add(Resistors("rd", (n,), a=dd, b=d, r=1e3))
    c.add(Mosfets("m", (n,), d=d, g=g, s=zeros, b=zeros, model=model))
    for k in range(n):
        c.probe(f"id{k}", "i", ("vd", k))
        c.probe(f"vd{k}", "v", d[k])
    beh = simulate(c)
    ref, _ = run_ngspice(c, tmp_path)
    for k in range(n):
        assert rel_error(beh[f"vd{k}"], ref[f"vd{k}"][0]) < 1e-6
        if k > 0:  # cutoff (k = 0) leaves only the ~1e-13 A junction leakage
            assert rel_error(beh[f"id{k}"], ref[f"id{k}"][0]) < 1e-6, (k, float(beh[f"id{k}"]), ref[f"id{k}"][0])
    assert abs(float(beh["id0"]) - ref["id0"][0]) < 1e-15


# ---------------------------------------------------------------------------
# transients
# ---------------------------------------------------------------------------

def test_rc_step_transient_vs_analytic_and_ngspice(tmp_path):
    r, cap, vstep, rise, delay = 1e3, 1e-9, 1.2, 1e-8, 1e-7
    tau = r * cap
    c = Circuit("rc step")
    a, b = c.add_nodes("a"), c.add_nodes("b")
    c.add(VoltageSources("vin", (), p=a, n_=0, waveforms=[Pulse(0.0, vstep, delay, rise, rise, 1.0, 2.0)]))
    c.add(Resistors("r", (), a=a, b=b, r=r))
    c.add(Capacitors("c", (), a=b, b=0, c=cap))
    c.probe("vc", "v", b)
    c.probe("iin", "i", ("vin", 0))
    c.analysis = Transient(tstop=6e-6, tstep=1e-8)
    beh = simulate(c)
    ref, _ = run_ngspice(c, tmp_path)

    t = beh.time
    u = np.clip(t - delay, 0, None)   # response to a ramp of duration `rise`, then a constant
    ramp = vstep / rise * (u - tau * (1 - np.exp(-u / tau)))
    v_rise = vstep / rise * (rise - tau * (1 - np.exp(-rise / tau)))
    exact = np.where(u <= rise, ramp, vstep + (v_rise - vstep) * np.exp(-(u - rise) / tau))
    analytic_err = np.sqrt(np.mean((beh["vc"] - exact) ** 2)) / np.sqrt(np.mean(exact ** 2))
    assert analytic_err < 1e-3
    assert rel_rms(ref["time"], ref["vc"], t, beh["vc"]) < 5e-3
    assert rel_rms(ref["time"], ref["iin"], t, beh["iin"]) < 5e-3
    assert delay in t and delay + rise in t   # breakpoints are on the grid


def test_sine_rc_with_pulse_breakpoints(tmp_path):
    c = Circuit("sine rc")
    a, b, p, m = (c.add_nodes(x) for x in ("a", "b", "p", "m"))
    c.add(VoltageSources("vs", (), p=a, n_=0, waveforms=[Sine(0.2, 0.8, 2e6, 1e-7, 2e5, 30.0)]))
    c.add(VoltageSources("vp", (), p=p, n_=0, waveforms=[Pulse(-0.5, 0.7, 2e-7, 3e-8, 5e-8, 2e-7, 6e-7)]))
    c.add(Resistors("r", (3,), a=[a, b, p], b=[b, m, m], r=[1e3, 4.7e3, 2.2e3]))
    c.add(Capacitors("c", (2,), a=[b, m], b=[0, 0], c=[2e-10, 1e-10]))
    c.probe("vb", "v", b)
    c.probe("vm", "v", m)
    c.probe("ip", "i", ("vp", 0))
    c.analysis = Transient(tstop=3e-6, tstep=1e-8, tmax=5e-9)
    beh = simulate(c)
    ref, _ = run_ngspice(c, tmp_path)
    for name in ("vb", "vm", "ip"):
        assert rel_rms(ref["time"], ref[name], beh.time, beh[name]) < 5e-3, name
    assert beh.meta["breakpoints"] >= 15


# ---------------------------------------------------------------------------
# a Verilog-A device and its twin
# ---------------------------------------------------------------------------

class DriftMemristor(DeviceModel):
    """Linear-drift memristor: g = goff + (gon - goff) x, dx/dt = k * i."""

    name = "tdrift"
    parameters = (Parameter("gon", 1e-3, lower=0), Parameter("goff", 1e-5, lower=0), Parameter("k", 2e8),
                  Parameter("x0", 0.3, instance=True))
    states = (State("x", "x0"),)

    @staticmethod
    def current(v, x, p):
        return (p.goff + (p.gon - p.goff) * x[0]) * v

    @staticmethod
    def dxdt(v, x, p):
        return (p.k * DriftMemristor.current(v, x, p))[None]


DRIFT_VA = textwrap.dedent("""\
    // ngspice evaluates analysis("static") as false in a transient's initial
    // operating point ($abstime = 0 there), and the state charge must exist in
    // both cases, hence one contribution with ddt() and a `hold` switch.
    `include "disciplines.vams"
    module tdrift(p, n, xs);
        inout p, n, xs;
        electrical p, n, xs;
        parameter real gon = 1e-3;
        parameter real goff = 1e-5;
        parameter real k = 2e8;
        (* type="instance" *) parameter real x0 = 0.3;
        real i, hold;
        analog begin
            i = (goff + (gon - goff) * V(xs)) * V(p, n);
            I(p, n) <+ i;
            hold = (analysis("static") || $abstime == 0) ? 1 : 0;
            I(xs) <+ ddt(V(xs)) + hold * (V(xs) - x0) + (1 - hold) * (-k * i + 1e-12 * (V(xs) - x0));
        end
    endmodule
    """)


def test_device_transient_state_and_current(tmp_path):
    va = tmp_path / "tdrift.va"
    va.write_text(DRIFT_VA)
    osdi = tmp_path / "tdrift.osdi"
    subprocess.run([str(find_openvaf()), str(va), "-o", str(osdi)], check=True, capture_output=True, timeout=60)

    c = Circuit("drift memristor")
    a, mid = c.add_nodes("a", (2,)), c.add_nodes("mid", (2,))
    xs = c.add_nodes("xs", (2,))
    zeros = np.zeros(2, np.int64)
    c.add(VoltageSources("vin", (2,), p=a, n_=zeros, waveforms=[Sine(0.0, 1.0, 1e6), Sine(0.1, -0.7, 1.5e6)]))
    c.add(Resistors("rs", (2,), a=a, b=mid, r=500.0))
    c.add(Devices("m", (2,), model=DriftMemristor, p=mid, n_=zeros, states=xs[None, :],
                  params={"k": 3e9, "x0": np.array([0.3, 0.6])}))
    for k in range(2):
        c.probe(f"x{k}", "v", xs[k])
        c.probe(f"i{k}", "i", ("vin", k))
    c.analysis = Transient(tstop=2e-6, tstep=2e-9)
    beh = simulate(c)
    ref, _ = run_ngspice(c, tmp_path, osdi=[osdi.name])
    for name in beh.signals:
        assert rel_rms(ref["time"], ref[name], beh.time, beh[name]) < 1e-2, name
    assert np.ptp(beh["x0"]) > 0.1    # the state really moved
