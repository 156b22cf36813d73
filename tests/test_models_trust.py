"""Python twins run only from directories the user named; description-named directories
contribute Verilog-A models with generated twins."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circuitkit.cli import main
from circuitkit.devices import REGISTRY
from circuitkit.devices.registry import load_models_dir

ROOT = Path(__file__).resolve().parent.parent


def _model_dir(directory: Path, name: str, py_name: str | None = None, roff: float = 2000.0) -> Path:
    """A renamed VTEAM (roff changed) and a Python twin that leaves a marker when imported."""
    directory.mkdir(parents=True, exist_ok=True)
    va = (ROOT / "verilog_a" / "vteam.va").read_text()
    va = va.replace("module vteam(", f"module {name}(").replace("parameter real roff = 1000 from",
                                                                  f"parameter real roff = {roff:g} from")
    (directory / f"{name}.va").write_text(va)
    marker = directory / "imported.marker"
    (directory / f"{py_name or name}.py").write_text(f'''
from pathlib import Path
Path({str(marker)!r}).write_text("imported")
from circuitkit.devices.base import Parameter, register
from circuitkit.devices.vteam import Vteam


@register
class UserModel(Vteam):
    name = "{name}"
    description = "hand-written user twin"
    parameters = tuple(Parameter("roff", {roff!r}, p.unit, p.description, p.lower, p.upper,
                                 lower_inclusive=p.lower_inclusive, upper_inclusive=p.upper_inclusive)
                       if p.name == "roff" else p for p in Vteam.parameters)
''')
    return marker


def test_a_description_never_imports_python_from_its_models_directory(tmp_path, caplog):
    from circuitkit.workflow import load
    marker = _model_dir(tmp_path / "models", "descvteam", roff=3000.0)
    desc = tmp_path / "user.xbar"
    desc.write_text('title "user model"\nmodels "models"\nsource v1 (a, 0) dc(0.01)\n'
                    'device m1 (a, 0) descvteam(x0 = 1)\nanalysis op()\nrecord i(m1)\n')
    load(desc)
    assert not marker.exists()
    assert "not imported (untrusted directory): descvteam.py" in caplog.text and "--models-dir" in caplog.text
    model = REGISTRY["descvteam"]
    assert getattr(model, "generated", False)
    p = model.resolve({})
    assert float(model.current(np.array([0.01]), np.array([[1.0]]), p)[0]) == pytest.approx(0.01 / 3000.0, rel=1e-12)


def test_a_user_named_directory_imports_its_python_twin_which_wins(tmp_path):
    marker = _model_dir(tmp_path / "trusted", "trustvteam")
    loaded = load_models_dir(tmp_path / "trusted", trust_python=True)
    assert marker.exists()
    assert loaded.python == ["trustvteam"] and loaded.generated == []
    assert REGISTRY["trustvteam"].description == "hand-written user twin"


def test_untrusted_then_trusted_the_hand_written_twin_replaces_the_generated_one(tmp_path):
    marker = _model_dir(tmp_path / "both", "bothvteam")
    first = load_models_dir(tmp_path / "both")
    assert first.generated == ["bothvteam"] and first.ignored == ["bothvteam.py"] and not marker.exists()
    second = load_models_dir(tmp_path / "both", trust_python=True)
    assert second.python == ["bothvteam"] and REGISTRY["bothvteam"].description == "hand-written user twin"


def test_a_second_directory_with_the_same_twin_file_name_is_not_skipped(tmp_path):
    _model_dir(tmp_path / "a", "samefile_a", py_name="twin")
    _model_dir(tmp_path / "b", "samefile_b", py_name="twin")
    assert load_models_dir(tmp_path / "a", trust_python=True).python == ["samefile_a"]
    assert load_models_dir(tmp_path / "b", trust_python=True).python == ["samefile_b"]
    assert {"samefile_a", "samefile_b"} <= set(REGISTRY)


def test_a_model_name_taken_by_another_directory_is_refused(tmp_path):
    from circuitkit.errors import ParameterError
    _model_dir(tmp_path / "one", "takenvteam")
    _model_dir(tmp_path / "two", "takenvteam")
    load_models_dir(tmp_path / "one")
    with pytest.raises(ParameterError, match="already defined"):
        load_models_dir(tmp_path / "two")


def test_cli_says_which_twins_it_loaded(tmp_path, capsys):
    _model_dir(tmp_path / "cli", "clivteam")
    assert main(["models", "list", "--models-dir", str(tmp_path / "cli")]) == 0
    out, err = capsys.readouterr()
    assert "clivteam" in out and "Python twins clivteam" in err


@pytest.mark.spice
def test_models_check_catches_a_user_twin_whose_equations_differ(tmp_path, capsys):
    """Declarations agree, equations do not (the twin's current is 1e-6 too large):
    only the numeric lockstep can see it, and it names the grid point."""
    d = tmp_path / "eq"
    _model_dir(d, "eqvteam")
    py = d / "eqvteam.py"
    py.write_text(py.read_text() + '''
    @staticmethod
    def current(v, x, p):
        return Vteam.current(v, x, p) * (1 + 1e-6)
''')
    assert main(["models", "check", "eqvteam", "--models-dir", str(d)]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS" in out and "numeric lockstep: current at v = " in out
    assert main(["models", "check", "eqvteam", "--models-dir", str(d), "--no-simulate"]) == 0


def test_a_model_directory_entry_that_is_not_a_regular_file_is_refused(tmp_path):
    import os

    from circuitkit.errors import CircuitkitError
    d = tmp_path / "fifo"
    d.mkdir()
    os.mkfifo(d / "blocked.va")
    with pytest.raises(CircuitkitError, match="not a regular file"):
        load_models_dir(d)
