"""Every code block of README.md and docs/*.md runs as written, from the repository root.

* ```xbar blocks are written next to the README (so relative includes and
  files resolve from the repository root), loaded and turned into a netlist;
* ```sh blocks run line by line in a scratch copy of the repository (symlinks
  to its files, so outputs land in the scratch directory), with ``circuitkit``
  on the PATH; the long ``make`` targets listed in :data:`NOT_RUN` are skipped;
* ```python blocks are executed, in the same scratch directory;
* ```toml blocks parse; a sweep among them equals (as parsed TOML, comments
  aside) the shipped sweep of the same ``name``.

Blocks with another tag (``text`` for output or a layout) are not run;
untagged blocks are refused, so nothing goes unchecked by accident.
"""
from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)

#: Commands the test does not run: they install software, run the whole suite or take many minutes.
NOT_RUN = {
    "make demo", "make test", "make setup", "make test-fast", "make bench", "make sweeps", "make -j3 sweeps",
    "make sweep-ir-drop", "make sweep-write-disturb", "make sweep-engines", "make sweep SWEEP=sweeps/ir_drop.toml",
    "make models", "make doctor", "python -m benchmarks", "python -m benchmarks --quick", "make synapse",
}


def blocks(kind: str):
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for m in BLOCK.finditer(text):
            if m.group(1) == kind:
                line = text[:m.start()].count("\n") + 1
                out.append(pytest.param(m.group(2), id=f"{doc.relative_to(ROOT)}:{line}"))
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A directory that looks like the repository (symlinks) but keeps what commands write."""
    d = tmp_path_factory.mktemp("repo")
    for entry in ROOT.iterdir():
        if entry.name not in ("build", "results", ".git", ".pytest_cache") and not entry.name.startswith(".snippet"):
            (d / entry.name).symlink_to(entry)
    return d


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    env["MPLBACKEND"] = "Agg"
    return env


def test_every_document_has_runnable_blocks():
    kinds = {m.group(1) for doc in DOCS for m in BLOCK.finditer(doc.read_text())}
    assert {"xbar", "sh", "python"} <= kinds
    untagged = [f"{doc.relative_to(ROOT)}:{doc.read_text()[:m.start()].count(chr(10)) + 1}"
                for doc in DOCS for m in BLOCK.finditer(doc.read_text()) if not m.group(1)]
    assert not untagged, f"tag these blocks (xbar, sh, python, toml; text for output): {untagged}"


@pytest.mark.parametrize("text", blocks("xbar"))
def test_xbar_blocks_load_and_generate(text, tmp_path):
    from circuitkit.engines import write_netlist
    from circuitkit.workflow import load
    fd, name = tempfile.mkstemp(dir=ROOT, prefix=".snippet-", suffix=".xbar")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        _, circuit = load(name)
        netlist = write_netlist(circuit, tmp_path / "snippet.cir").read_text()
        assert netlist.rstrip().endswith(".end")
    finally:
        os.unlink(name)


def _lines(text: str) -> list[str]:
    out, cur = [], ""
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        cur += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            if cur.strip():
                out.append(cur.strip())
            cur = ""
    return out


@pytest.mark.parametrize("text", blocks("sh"))
def test_sh_blocks_run(text, scratch):
    for line in _lines(text):
        if line in NOT_RUN:
            continue
        assert not line.startswith("make "), f"'{line}': add it to NOT_RUN or make it short"
        proc = subprocess.run(["bash", "-c", line], cwd=scratch, env=_env(), capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"$ {line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


@pytest.mark.parametrize("text", blocks("python"))
def test_python_blocks_run(text, scratch, monkeypatch):
    monkeypatch.chdir(scratch)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = scratch / ".snippet.py"
    path.write_text(text)
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        path.unlink()


@pytest.mark.parametrize("text", blocks("toml"))
def test_toml_blocks_parse_and_shown_sweeps_are_shipped(text):
    shown = tomllib.loads(text)
    if not {"description", "parameters"} <= set(shown):
        return                                     # not a sweep file: parsing is the check
    shipped = {tomllib.loads(p.read_text())["name"]: tomllib.loads(p.read_text()) for p in (ROOT / "sweeps").glob("*.toml")}
    assert shown.get("name") in shipped, "a sweep shown in the docs is not shipped"
    assert shown == shipped[shown["name"]]
