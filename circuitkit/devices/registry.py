"""Look up device models by name; import the shipped twins and load user model directories.

A user model directory holds ``NAME.va`` files and, optionally, hand-written numpy
twins ``NAME.py``. Python runs only when the *user* asked for it: directories named
on the command line (``--models-dir``) or passed with ``trust_python=True`` in the
Python API. A directory named by a description (``models "dir"``) or a sweep file
contributes its ``.va`` models only, each with a twin generated from the Verilog-A
(:mod:`circuitkit.devices.va_twin`); its ``.py`` files are never imported.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import sys
from pathlib import Path

from ..errors import Location, ParameterError, printable
from .base import REGISTRY, VERILOG_A_DIR, DeviceModel

#: shipped twins: every ``verilog_a/NAME.va`` with a module ``circuitkit/devices/NAME.py``
SHIPPED: tuple[str, ...] = tuple(sorted(
    va.stem for va in VERILOG_A_DIR.glob("*.va") if (Path(__file__).parent / f"{va.stem}.py").is_file()))

log = logging.getLogger("circuitkit.models")

for _mod in SHIPPED:
    importlib.import_module(f"{__package__}.{_mod}")


class LoadedModels(list):
    """Names of the models a directory added (a list), with how each came: ``python``
    (hand-written twins imported), ``generated`` (twins generated from ``.va``) and
    ``ignored`` (``.py`` files not imported because the directory is not trusted)."""

    def __init__(self, directory: Path, python=(), generated=(), ignored=()):
        super().__init__(sorted(set(python) | set(generated)))
        self.directory = directory
        self.python = sorted(python)
        self.generated = sorted(generated)
        self.ignored = sorted(ignored)

    def summary(self) -> str:
        parts = []
        if self.python:
            parts.append(f"Python twins {', '.join(self.python)}")
        if self.generated:
            parts.append(f"generated twins {', '.join(self.generated)}")
        if self.ignored:
            parts.append(f"not imported (untrusted directory): {', '.join(self.ignored)}")
        return f"models from {self.directory}: " + ("; ".join(parts) if parts else "none")


def _module_name(py: Path) -> str:
    """A module name unique to the file's directory, so a second directory's twin file
    with the same name is imported too (not silently skipped)."""
    tag = hashlib.sha256(str(py.parent).encode()).hexdigest()[:12]
    return f"circuitkit_user_models.d{tag}.{py.stem}"


def load_models_dir(directory: str | Path, trust_python: bool = False) -> LoadedModels:
    """Add the models of a user directory; return their names (a :class:`LoadedModels`).

    ``trust_python``: import the directory's ``NAME.py`` twins (only for directories the
    user named: ``--models-dir`` or the Python API). Otherwise, and for every ``NAME.va``
    without a ``NAME.py``, the twin is generated from the Verilog-A. A hand-written twin
    wins where present. A model name already defined by another directory or by circuitkit
    is refused.
    """
    from .va_twin import twin_from_va
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise ParameterError(f"models directory '{directory}' not found", Location(file=str(directory)))
    python, generated, ignored = [], [], []
    pys = sorted(directory.glob("*.py"))
    if trust_python:
        for name in [n for n, c in REGISTRY.items() if getattr(c, "generated", False)
                     and Path(getattr(c, "va_dir", "")).resolve() == directory]:
            del REGISTRY[name]                  # generated earlier (untrusted); the hand-written twin wins
        for py in pys:
            modname = _module_name(py)
            before = set(REGISTRY)
            if modname not in sys.modules:
                spec = importlib.util.spec_from_file_location(modname, py)
                module = importlib.util.module_from_spec(spec)
                sys.modules[modname] = module
                try:
                    spec.loader.exec_module(module)
                except ValueError as exc:       # register(): the name is taken
                    del sys.modules[modname]
                    raise ParameterError(f"{py}: {exc}", Location(file=str(py))) from None
                except BaseException:
                    del sys.modules[modname]
                    raise
            for name in sorted(set(REGISTRY) - before):
                REGISTRY[name].va_dir = directory  # type: ignore[attr-defined]
            python += [name for name, cls in REGISTRY.items()
                       if getattr(cls, "va_dir", None) == directory and not getattr(cls, "generated", False)]
    else:
        ignored = [py.name for py in pys]
    from ..circuit.model import IDENTIFIER          # (circuit.model imports this module)
    for va in sorted(directory.glob("*.va")):
        if not IDENTIFIER.match(va.stem):
            # the stem is the model's name (MODULE.va): refused before anything reads or generates from it
            raise ParameterError(f"model file '{printable(va.name, 80)}': the name before .va must be the "
                                 f"module's name (a letter, then up to 63 letters, digits or underscores)",
                                 Location(file=str(directory)))
        clash = [n for n in REGISTRY if n.lower() == va.stem.lower() and n != va.stem]
        if clash:
            raise ParameterError(f"model '{va.stem}' differs from the model '{clash[0]}' only in case (simulators "
                                 f"fold the case of model names)", Location(file=str(va)))
        existing = REGISTRY.get(va.stem)
        if existing is not None:
            if Path(getattr(existing, "va_dir", VERILOG_A_DIR)).resolve() == directory:
                if getattr(existing, "generated", False):
                    generated.append(va.stem)
                continue                        # this directory's model, loaded before
            where = getattr(existing, "va_dir", None)
            raise ParameterError(f"model '{va.stem}' in {directory} is already defined "
                                 f"({'by circuitkit' if where is None else f'in {where}'})", Location(file=str(va)))
        cls = twin_from_va(va, directory)
        if cls.name != va.stem:
            raise ParameterError(f"module '{cls.name}' in {va.name}: the file must be named {cls.name}.va",
                                 Location(file=str(va)))
        REGISTRY[cls.name] = cls
        generated.append(cls.name)
    loaded = LoadedModels(directory, sorted(set(python)), generated, ignored)
    if ignored:     # a warning reaches stderr even where logging is not configured
        log.warning("%s -- to use the Python twins, name the directory yourself (--models-dir)", loaded.summary())
    return loaded


def get_model(name: str, location: Location | None = None) -> type[DeviceModel]:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ParameterError(f"unknown device model '{name}' (known: {known})", location) from None


def list_models() -> list[type[DeviceModel]]:
    return [REGISTRY[k] for k in sorted(REGISTRY)]
