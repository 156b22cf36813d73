"""Raw files written by real ngspice runs: binary vs ascii, against the analytical RC answer."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from circuitkit.spice.rawfile import RawFileError, normalise_name, read_raw, read_vectors
from circuitkit.spice.toolchain import find_ngspice

R, C = 1e3, 1e-6
TAU = R * C

RC_DECK = f"""RC step
V1 in 0 DC 0 AC 1 PULSE(0 1 0 1n 1n 1 2)
R1 in out {R:g}
C1 out 0 {C:g}
.options klu
.control
tran 10u 5m 0 5u
set filetype=binary
write rc_bin.raw
set filetype=ascii
write rc_asc.raw
op
ac dec 10 1 1meg
set filetype=binary
write two_bin.raw op1.all ac1.all
set filetype=ascii
write two_asc.raw op1.all ac1.all
.endc
.end
"""


@pytest.fixture(scope="module")
def raws(tmp_path_factory):
    d = tmp_path_factory.mktemp("raw")
    (d / "rc.cir").write_text(RC_DECK)
    proc = subprocess.run([str(find_ngspice()), "-b", "rc.cir"], cwd=d, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return d


@pytest.mark.spice
def test_binary_and_ascii_agree(raws):
    b = read_vectors(raws / "rc_bin.raw")
    a = read_vectors(raws / "rc_asc.raw")
    assert set(b) == set(a) == {"time", "v(in)", "v(out)", "i(v1)"}
    for k in b:
        assert b[k].dtype == np.float64 and b[k].shape == a[k].shape
        np.testing.assert_allclose(a[k], b[k], rtol=1e-13, atol=1e-20)


@pytest.mark.spice
def test_rc_step_matches_the_analytical_response(raws):
    v = read_vectors(raws / "rc_bin.raw")
    t = v["time"]
    assert t[0] == 0 and abs(t[-1] - 5e-3) < 1e-12 and np.all(np.diff(t) > 0)
    after = t > 20e-9  # past the 1 ns source edge
    expected = 1 - np.exp(-(t[after] - 1e-9) / TAU)
    assert np.max(np.abs(v["v(out)"][after] - expected)) < 2e-3
    # the source supplies the capacitor current: i(v1) = -(v(in) - v(out))/R
    np.testing.assert_allclose(v["i(v1)"], -(v["v(in)"] - v["v(out)"]) / R, rtol=1e-6, atol=1e-12)


@pytest.mark.spice
def test_several_plots_real_and_complex(raws):
    for name in ("two_bin.raw", "two_asc.raw"):
        plots = read_raw(raws / name)
        assert [p.plotname for p in plots] == ["Operating Point", "AC Analysis"]
        op, ac = plots
        assert not op.is_complex and op.n_points == 1 and op.vectors["v(out)"][0] == 0.0
        assert ac.is_complex and ac.n_points == 61
        f = ac.vectors["frequency"]
        assert f.dtype == np.float64 and f[0] == pytest.approx(1.0) and f[-1] == pytest.approx(1e6)
        h = ac.vectors["v(out)"] / ac.vectors["v(in)"]
        np.testing.assert_allclose(h, 1 / (1 + 2j * np.pi * f * TAU), rtol=1e-6)
    bin_ac, asc_ac = read_raw(raws / "two_bin.raw")[1], read_raw(raws / "two_asc.raw")[1]
    np.testing.assert_allclose(bin_ac.vectors["v(out)"], asc_ac.vectors["v(out)"], rtol=1e-13)


@pytest.mark.spice
def test_truncated_binary_returns_the_complete_points(raws, tmp_path):
    data = (raws / "rc_bin.raw").read_bytes()
    full = read_vectors(raws / "rc_bin.raw")
    cut = tmp_path / "cut.raw"
    cut.write_bytes(data[:-(8 * 4 * 3 + 5)])  # lose three points and a bit
    part = read_vectors(cut)
    n = len(full["time"])
    assert len(part["time"]) == n - 4
    np.testing.assert_array_equal(part["v(out)"], full["v(out)"][:n - 4])


def test_bad_files_raise(tmp_path):
    with pytest.raises(RawFileError, match="not found"):
        read_raw(tmp_path / "missing.raw")
    junk = tmp_path / "junk.raw"
    junk.write_text("this is not\na raw file\n")
    with pytest.raises(RawFileError):
        read_raw(junk)


@pytest.mark.parametrize("name, vtype, expected", [
    ("time", "time", "time"),
    ("V(OUT)", "voltage", "v(out)"),
    ("out", "voltage", "v(out)"),
    ("out", None, "v(out)"),
    ("V1#branch", "current", "i(v1)"),
    ("i(v1)", "current", "i(v1)"),
    ("frequency", "frequency", "frequency"),
    ("v-sweep", "voltage", "v-sweep"),
    ("@r1[i]", "current", "@r1[i]"),
    ("x1.n2", "voltage", "v(x1.n2)"),
])
def test_normalise_name(name, vtype, expected):
    assert normalise_name(name, vtype) == expected
