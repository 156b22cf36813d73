"""ADC clipping is counted per sample (outputs.adc_clipped) and in summary.json, never silent."""
import json

import numpy as np

from circuitkit.cli import main
from circuitkit.engines import simulate
from circuitkit.outputs import clipping_summary, outputs_table
from circuitkit.peripherals import adc_clip, adc_convert
from circuitkit.workflow import load

XBAR = """crossbar xb { rows = 2; cols = 3; cell = 1R; device = vteam(iv = 0, ron = 10k, roff = 100k, von = -5, voff = 5)
                state = file("x.csv") }
sense cols { tia = ideal(rf = 1k); adc = adc(bits = 4, vmin = -0.02, vmax = 0) }
stimulus { duration = 20n; read = [0.2, 0.2]; read = [0.01, 0.0] }
analysis tran(step = 1n)
"""


def _write(tmp_path):
    (tmp_path / "x.csv").write_text("0,0.5,1\n0,0.5,1\n")
    f = tmp_path / "clip.xbar"
    f.write_text(XBAR)
    return f


def test_clip_flags_where_the_code_saturates():
    v = np.array([-0.5, -0.02 - 0.001, -0.02, -0.01, 0.0, 0.0006, 0.01])
    lsb = 0.02 / 15
    assert 0.0006 < lsb / 2 < 0.001
    # beyond half an LSB outside the range the rounded code would leave 0..15: that is clipping
    assert adc_clip(v, 4, -0.02, 0).tolist() == [-1, -1, 0, 0, 0, 0, 1]
    assert adc_convert(v, 4, -0.02, 0).tolist() == [0, 0, 0, 8, 15, 15, 15]


def test_outputs_flag_clipped_samples(tmp_path):
    f = _write(tmp_path)
    _, c = load(f)
    table = outputs_table(c, simulate(c, "behavioural"))
    # expected from the closed form: v = -rf * sum_i V_i G_ij, clipped below -0.02 V - lsb/2
    cells = c.group(c.crossbar.cells)
    g = cells.model.read_conductance(0.1, np.asarray(cells.resolved()["x0"]).reshape(2, 3), cells.resolved())
    v_tia = -1e3 * np.array([[0.2, 0.2], [0.01, 0.0]]) @ g
    expected = adc_clip(v_tia, 4, -0.02, 0).ravel()
    assert table["adc_clipped"].tolist() == expected.tolist() and (expected != 0).any() and (expected == 0).any()
    s = clipping_summary(table)
    assert s == {"samples": 6, "clipped": int((expected != 0).sum()), "below": int((expected < 0).sum()), "above": 0}


def test_simulate_reports_clipping(tmp_path, capsys):
    f = _write(tmp_path)
    assert main(["simulate", str(f), "--out", str(tmp_path / "r")]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["adc_clipping"]["clipped"] > 0
    assert "ADC clipped" in capsys.readouterr().out
