"""VACASK: an independent OSDI circuit simulator with a Spectre-like netlist syntax.

The deck (``netlist_templates/vacask/*.j2``) loads the same compiled ``.osdi``
models as the ngspice deck, VACASK's own ``resistor``/``capacitor`` OSDI
elements and, for 1T1R cells, ``sp_mos1`` (VACASK's port of the ngspice
level-1 MOSFET); sources, VCVS and VCCS are VACASK built-ins.

The runner starts ``vacask -qp -sp -se --tomlfile /dev/null <deck>`` (quiet,
no post-processing, no embedded files, no configuration files) in a private
temporary working directory inside its own process group (killed whole on
timeout or interrupt), keeps its output as ``vacask.log`` next to the deck
and reads ``tran1.raw`` / ``op1.raw`` with the same raw-file reader as ngspice.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ..circuit.model import Circuit, Probe
from ..errors import SpiceError
from ..spice.rawfile import RawFileError, read_vectors
from ..spice.runner import _decode, _kill_group, _save_log
from .base import SimRun, Simulator

LOG_NAME = "vacask.log"
RAW_NAMES = ("tran1.raw", "op1.raw")
#: lines of VACASK's banner (not part of any diagnosis)
_BANNER = re.compile(r"^(This is vacask|\(c\)20|https://|\s+OpenMP|\s+Cadnip|Available CPUs|CPUs used|"
                     r"OpenBLAS CPUs)", re.I)
KIND_PATTERNS = [
    ("model_load", re.compile(r"^File '.*\.osdi' not found|osdi.*(fail|invalid|cannot)|failed to load", re.I)),
    ("unknown_device", re.compile(r"^Master '.*' not found|^Model '.*' not found", re.I)),
    ("syntax", re.compile(r"syntax error|Parameter '.*' not found|needs|must be", re.I)),
    ("timestep", re.compile(r"time ?step too small|timestep.*small", re.I)),
    ("convergence", re.compile(r"converge|singular|homotopy|Newton", re.I)),
]


class VacaskError(SpiceError):
    """A VACASK run failed (same kinds and fields as an ngspice failure)."""

    def __init__(self, kind: str, message: str, log_lines=None, log: str = "", netlist=None):
        super().__init__(kind, message, log_lines, log, netlist)
        text = f"VACASK {kind}: {message}"
        if self.log_lines:
            text += "\n  " + "\n  ".join(self.log_lines[:20])
        self.args = (text,)


class Vacask(Simulator):
    engine = "vacask"
    label = "VACASK"
    dialect = "vacask"
    netlist_name = "circuit.sim"

    def vector(self, circuit: Circuit, probe: Probe) -> str:
        from ..netlist.render import vacask_vector
        return vacask_vector(circuit, probe)

    def run(self, netlist: Path, workdir: Path, timeout: float, **_) -> SimRun:
        from ..spice.toolchain import find_vacask, vacask_version
        exe = find_vacask()
        netlist = Path(netlist).resolve()
        workdir = Path(workdir)
        env = dict(os.environ, LC_ALL="C", LANG="C", OMP_NUM_THREADS="1")
        private = Path(tempfile.mkdtemp(prefix="circuitkit-vacask-"))
        try:
            t0 = time.perf_counter()
            try:
                proc = subprocess.Popen([str(exe), "-qp", "-sp", "-se", "--tomlfile", os.devnull, str(netlist)],
                                        cwd=private, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                raise VacaskError("failed", f"cannot start VACASK ({exe}): {exc}", netlist=netlist) from None
            try:
                out, _ = proc.communicate(timeout=timeout)
            except BaseException as exc:
                _kill_group(proc)
                out, _ = proc.communicate()
                if not isinstance(exc, subprocess.TimeoutExpired):
                    raise
                log = _decode(out)
                _save_log(workdir, log, LOG_NAME)
                raise VacaskError("timeout", f"VACASK did not finish within {timeout:g} s",
                                  _diagnosis(log)[-10:], log=log, netlist=netlist) from None
            wall = time.perf_counter() - t0
            log = _decode(out)
            _save_log(workdir, log, LOG_NAME)
            raw = next((private / n for n in RAW_NAMES if (private / n).is_file()), None)
            vectors = {}
            if raw is not None:
                try:
                    vectors = read_vectors(raw)
                except RawFileError as exc:
                    log += f"\n{exc}"
            if proc.returncode != 0 or not vectors:
                raise _failure(log, netlist, proc.returncode, raw is not None)
        finally:
            shutil.rmtree(private, ignore_errors=True)
        warnings = [line.strip() for line in _diagnosis(log) if re.search(r"warning", line, re.I)]
        return SimRun(vectors, log, warnings, "batch", wall, vacask_version())


def _diagnosis(log: str) -> list[str]:
    """The log without VACASK's banner and blank lines, repeated lines once."""
    out = []
    for line in log.splitlines():
        if not line.strip() or _BANNER.match(line.strip()):
            continue
        if line.rstrip() not in out:
            out.append(line.rstrip())
    return out


def _failure(log: str, netlist: Path, returncode: int | None, have_raw: bool) -> VacaskError:
    lines = _diagnosis(log)
    kind, first = "failed", None
    for k, pattern in KIND_PATTERNS:
        hit = next((line for line in lines if pattern.search(line.strip())), None)
        if hit is not None:
            kind, first = k, hit.strip()
            break
    if first is None:
        if returncode not in (0, None) and returncode < 0:
            first = f"VACASK was killed by signal {-returncode}"
        elif lines:
            first = lines[0].strip()
        else:
            first = (f"VACASK exited with status {returncode}" if returncode else
                     "VACASK produced no results (no raw file)" if not have_raw else "VACASK returned no vectors")
    return VacaskError(kind, first, lines[:40], log=log, netlist=netlist)


