"""A user model: NAME.va + NAME.py in a directory, found by --models-dir or a `models` statement."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circuitkit.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _make_user_model(directory: Path, name: str, roff: float = 2000.0) -> None:
    """A renamed copy of VTEAM with another roff default, in both halves."""
    directory.mkdir(parents=True, exist_ok=True)
    va = (ROOT / "verilog_a" / "vteam.va").read_text()
    va = va.replace("module vteam(", f"module {name}(").replace("parameter real roff = 1000 from",
                                                                  f"parameter real roff = {roff:g} from")
    (directory / f"{name}.va").write_text(va)
    (directory / f"{name}.py").write_text(f'''
from circuitkit.devices.base import Parameter, register
from circuitkit.devices.vteam import Vteam


@register
class UserModel(Vteam):
    name = "{name}"
    description = "user copy of VTEAM"
    parameters = tuple(Parameter("roff", {roff!r}, p.unit, p.description, p.lower, p.upper,
                                 lower_inclusive=p.lower_inclusive, upper_inclusive=p.upper_inclusive)
                       if p.name == "roff" else p for p in Vteam.parameters)
''')


def test_models_dir_lists_and_lockstep_checks(tmp_path, capsys):
    _make_user_model(tmp_path / "m", "uvteam")
    assert main(["models", "list", "--models-dir", str(tmp_path / "m")]) == 0
    assert "uvteam" in capsys.readouterr().out
    assert main(["models", "check", "uvteam", "--models-dir", str(tmp_path / "m")]) == 0


def test_lockstep_check_catches_a_user_model_mismatch(tmp_path, capsys):
    d = tmp_path / "bad"
    _make_user_model(d, "badvteam")
    va = d / "badvteam.va"
    va.write_text(va.read_text().replace("parameter real ron = 50 from", "parameter real ron = 51 from"))
    assert main(["models", "check", "badvteam", "--models-dir", str(d)]) == 1
    out = capsys.readouterr().out
    assert "ron" in out and "DIFFERS" in out


@pytest.mark.spice
def test_description_models_statement_runs_in_both_engines(tmp_path):
    from circuitkit.engines import simulate
    from circuitkit.workflow import load
    _make_user_model(tmp_path / "models", "myvteam", roff=3000.0)
    desc = tmp_path / "user.xbar"
    desc.write_text('title "user model"\nmodels "models"\nsource v1 (a, 0) dc(0.01)\n'
                    'device m1 (a, 0) myvteam(x0 = 1)\nanalysis op()\nrecord i(m1)\n')
    _, circuit = load(desc)
    for engine in ("spice", "behavioural"):
        i = float(simulate(circuit, engine)["i(m1)"])
        assert np.isclose(i, 0.01 / 3000.0, rtol=1e-6), (engine, i)
