"""Look up device models by name; import the shipped twins and user model directories."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from ..errors import Location, ParameterError
from .base import REGISTRY, VERILOG_A_DIR, DeviceModel

#: shipped twins: every ``verilog_a/NAME.va`` with a module ``circuitkit/devices/NAME.py``
SHIPPED: tuple[str, ...] = tuple(sorted(
    va.stem for va in VERILOG_A_DIR.glob("*.va") if (Path(__file__).parent / f"{va.stem}.py").is_file()))

for _mod in SHIPPED:
    importlib.import_module(f"{__package__}.{_mod}")


def load_models_dir(directory: str | Path) -> list[str]:
    """Import every ``*.py`` twin in a user models directory; return the model names added.

    The matching ``NAME.va`` must sit in the same directory.
    """
    directory = Path(directory).resolve()
    before = set(REGISTRY)
    for py in sorted(directory.glob("*.py")):
        modname = f"circuitkit_user_models.{py.stem}"
        if modname in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(modname, py)
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
    added = sorted(set(REGISTRY) - before)
    for name in added:
        REGISTRY[name].va_dir = directory  # type: ignore[attr-defined]
    return added


def get_model(name: str, location: Location | None = None) -> type[DeviceModel]:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ParameterError(f"unknown device model '{name}' (known: {known})", location) from None


def list_models() -> list[type[DeviceModel]]:
    return [REGISTRY[k] for k in sorted(REGISTRY)]
