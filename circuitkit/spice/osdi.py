"""Compile Verilog-A models to OSDI shared objects with OpenVAF, cached by content.

The cache lives in ``$CIRCUITKIT_CACHE/osdi``, else ``$XDG_CACHE_HOME/circuitkit/osdi``,
else ``~/.cache/circuitkit/osdi``. An artifact is named ``<stem>-<key>.osdi``
where the key is the sha256 of the source text, of every ``include``d file
found next to it (the compiler's built-in ``disciplines.vams``/``constants.vams``
are part of the compiler identity instead) and of the compiler's identity
(path, size, modification time). So an edited model or a new compiler gives a
new artifact, and an unchanged one is found again without running OpenVAF.

Several processes may compile the same model at once (parallel sweeps): each
compiles into its own temporary directory inside the cache directory and
moves the result into place with ``os.replace``, which is atomic, so a reader
never sees a half-written file.

Every entry is verified before use: next to ``<stem>-<key>.osdi`` lies
``<stem>-<key>.osdi.sha256`` holding the sha256 of the compiled file and the
cache key (which covers the source). An entry whose file does not match its
record (truncated, overwritten, or a record missing) is compiled again, so a
damaged shared object is never loaded (loading a truncated one kills the
simulator with SIGBUS). A verified entry is remembered per process by its
size and modification time.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from ..cachedir import cache_root
from ..errors import CompileError, Location, ToolchainError, printable
from .toolchain import find_openvaf

#: includes OpenVAF provides itself (hashed through the compiler identity)
STANDARD_INCLUDES = frozenset({"disciplines.vams", "constants.vams", "discipline.h", "constants.h"})
COMPILE_TIMEOUT_S = 600.0

#: a Verilog-A source or a file it includes is at most this large (the shipped models are under 30 kB)
MAX_VA_BYTES = 1 << 20
#: `include nesting and the number of included files of one model
MAX_VA_INCLUDES = 64

_INCLUDE = re.compile(r'`include\b\s*("([^"\n]*)")?')
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ERROR = re.compile(r"^error(?:\[[^\]]*\])?:\s*(.*)$")
_WHERE = re.compile(r"^\s*-->\s*(.+?):(\d+):(\d+)\s*$")


def cache_dir() -> Path:
    """Directory of the OSDI cache (created on first use; absolute, symlinks and ``..`` resolved)."""
    path = cache_root() / "osdi"
    try:
        path.mkdir(parents=True, exist_ok=True)
        path = path.resolve()
    except (OSError, RuntimeError) as exc:
        raise ToolchainError(f"cannot create the OSDI cache {path}: {exc}; "
                             "set CIRCUITKIT_CACHE to a writable directory") from exc
    if not path.is_dir():
        raise ToolchainError(f"the OSDI cache {path} is not a directory; set CIRCUITKIT_CACHE to a writable directory")
    return path


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _record_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


_VERIFIED: dict[str, tuple[int, int]] = {}


def verify_entry(target: Path, key: str) -> bool:
    """Whether the cached ``target`` is the complete file compiled for ``key`` (see the module doc)."""
    try:
        st = target.stat()
        if _VERIFIED.get(str(target)) == (st.st_size, st.st_mtime_ns):
            return True
        record = _record_path(target).read_text().split()
        ok = len(record) == 2 and record[1] == key and record[0] == _file_sha256(target)
    except (OSError, UnicodeDecodeError):
        return False
    if ok:
        _VERIFIED[str(target)] = (st.st_size, st.st_mtime_ns)
    return ok


@functools.cache
def _compiler_identity(path: str, size: int, mtime_ns: int) -> str:
    return f"{path}\0{size}\0{mtime_ns}"


def compiler_identity(compiler: Path | None = None) -> str:
    """Path, size and modification time of the OpenVAF binary."""
    compiler = Path(compiler or find_openvaf()).resolve()
    st = compiler.stat()
    return _compiler_identity(str(compiler), st.st_size, st.st_mtime_ns)


def read_va_text(path: Path, location: Location | None = None) -> str:
    """The text of a Verilog-A file through the one safe reader (:func:`~circuitkit.description.safeio.
    read_bytes`): a regular file (a device, FIFO or directory is refused unread) of at most
    :data:`MAX_VA_BYTES`; errors are :class:`CompileError` naming the file, never quoting it."""
    from ..description.safeio import read_bytes
    data = read_bytes(Path(path), location or Location(file=str(path)), "Verilog-A file", MAX_VA_BYTES,
                      error=CompileError)
    return data.decode("utf-8", errors="replace")


def _blank_comments(text: str) -> str:
    from ..devices.va_params import blank_comments
    return blank_comments(text)


def _included_files(va_path: Path, seen: set[Path] | None = None, root: Path | None = None,
                    depth: int = 0, location: Location | None = None) -> list[Path]:
    """Every non-standard file included (recursively) by ``va_path``, resolved next to its includer,
    each checked before OpenVAF reads it: a regular file of at most :data:`MAX_VA_BYTES` inside the
    model's own directory (``root``). The standard ``disciplines.vams`` / ``constants.vams`` (not present
    next to the includer) come with the compiler (hashed through its identity). Anything else, an
    unquoted `include or a path outside the directory (``/dev/zero``, ``/etc/passwd``, ``../x``, a FIFO),
    is a :class:`CompileError` at the .va file and line, so OpenVAF never opens it."""
    seen = set() if seen is None else seen
    root = root or va_path.parent.resolve()
    text = read_va_text(va_path, location)      # regular, bounded: an include is refused at its includer's line
    found = []
    for m in _INCLUDE.finditer(_blank_comments(text)):
        line = text.count("\n", 0, m.start()) + 1
        col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        where = Location(file=str(va_path), line=line, column=col)
        name = m.group(2)
        if name is None:
            raise CompileError("`include must name a file in double quotes", where)
        shown = printable(name, 200)
        candidate = va_path.parent / name
        if name in STANDARD_INCLUDES and not os.path.lexists(candidate):
            continue
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError, ValueError):
            raise CompileError(f'`include "{shown}": no such file next to {va_path.name} '
                               f"(only {', '.join(sorted(STANDARD_INCLUDES))} come with the compiler)",
                               where) from None
        if not real.is_relative_to(root):
            raise CompileError(f'`include "{shown}": a model may include only files inside its own directory '
                               f"({printable(str(root), 200)})", where)
        try:
            regular = stat.S_ISREG(os.stat(real).st_mode)
        except OSError:
            regular = False
        if not regular:
            raise CompileError(f'`include "{shown}": not a regular file', where)
        if real in seen:
            continue
        if depth >= MAX_VA_INCLUDES or len(seen) >= MAX_VA_INCLUDES:
            raise CompileError(f"more than {MAX_VA_INCLUDES} included files (or nested that deep)", where)
        seen.add(real)
        found.append(real)
        found.extend(_included_files(real, seen, root, depth + 1, where))
    return found


def cache_key(va_path: Path, compiler: Path | None = None) -> str:
    """sha256 over the source, its local includes and the compiler identity."""
    included = _included_files(va_path)          # checks every `include before anything else reads it
    h = hashlib.sha256()
    h.update(compiler_identity(compiler).encode())
    h.update(b"\0source\0")
    h.update(va_path.read_bytes())
    for inc in included:
        h.update(b"\0include\0" + inc.name.encode() + b"\0")
        h.update(inc.read_bytes())
    return h.hexdigest()


def artifact_path(va_path: Path) -> Path:
    """Where the compiled ``va_path`` is (or will be) cached."""
    va_path = Path(va_path).resolve()
    return cache_dir() / f"{va_path.stem}-{cache_key(va_path)[:24]}.osdi"


def compile_va(va_path: Path) -> Path:
    """Compile ``va_path`` to OSDI (or find it in the cache); return the ``.osdi`` path.

    Raises :class:`CompileError` (located at the failing ``.va`` line, with the
    full compiler output) when OpenVAF rejects the source, and
    :class:`ToolchainError` when the compiler cannot be run.
    """
    va_path = Path(va_path).expanduser()
    if not va_path.is_file():
        raise CompileError("Verilog-A file not found", Location(file=str(va_path)))
    read_va_text(va_path)                        # a regular file of bounded size
    va_path = va_path.resolve()
    key = cache_key(va_path)
    target = cache_dir() / f"{va_path.stem}-{key[:24]}.osdi"
    if target.is_file() and verify_entry(target, key):
        return target
    _VERIFIED.pop(str(target), None)
    compiler = find_openvaf()
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{va_path.stem}-", dir=target.parent))
    except OSError as exc:
        raise ToolchainError(f"cannot write to the OSDI cache {target.parent}: {exc}; "
                             "set CIRCUITKIT_CACHE to a writable directory") from exc
    try:
        out_file = tmp / target.name
        env = dict(os.environ, NO_COLOR="1", CLICOLOR="0", TERM="dumb")
        try:
            proc = subprocess.run([str(compiler), str(va_path), "-o", str(out_file)], cwd=tmp, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  errors="replace", timeout=COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ToolchainError(f"OpenVAF did not finish compiling {va_path} within {COMPILE_TIMEOUT_S:.0f} s") from None
        except OSError as exc:
            raise ToolchainError(f"cannot run OpenVAF ({compiler}): {exc}; run `make setup`") from exc
        output = _ANSI.sub("", proc.stdout or "")
        if proc.returncode != 0 or not out_file.is_file():
            raise compile_error(va_path, output, proc.returncode)
        record = tmp / "record"
        record.write_text(f"{_file_sha256(out_file)} {key}\n")
        os.replace(out_file, target)
        os.replace(record, _record_path(target))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def compile_error(va_path: Path, output: str, returncode: int | None = None) -> CompileError:
    """Turn OpenVAF's diagnostics into a CompileError located at the first error."""
    errors: list[tuple[str, Location | None]] = []
    lines = output.splitlines()
    for k, line in enumerate(lines):
        m = _ERROR.match(line.strip())
        if not m or m.group(1).startswith("could not compile"):
            continue
        text, where = m.group(1).strip(), None
        for nxt in lines[k + 1:k + 6]:  # a long message wraps onto the next lines
            w = _WHERE.match(nxt)
            if w:
                where = Location(file=w.group(1), line=int(w.group(2)), column=int(w.group(3)))
                break
            if not nxt.strip() or nxt.lstrip().startswith(("|", "=")):
                break
            text += " " + nxt.strip()
        errors.append((text, where))
    if errors:
        message, location = errors[0]
        if location is None:
            location = Location(file=str(va_path))
        elif Path(location.file).name != va_path.name:
            message += f" (while compiling {va_path})"
        if len(errors) > 1:
            message += f" (+{len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
        message = f"OpenVAF: {message}"
    else:
        tail = " | ".join(line.strip() for line in lines[-5:] if line.strip()) or "no output"
        message = f"OpenVAF failed (exit status {returncode}): {tail}"
        location = Location(file=str(va_path))
    return CompileError(message, location, compiler_output=output)


def compile_all(names: list[str] | None = None) -> dict[str, Path]:
    """Compile the registered device models (all, or those named); model name -> ``.osdi`` path."""
    from ..devices import get_model, list_models
    models = [get_model(n) for n in names] if names is not None else list_models()
    return {m.name: compile_va(m.va_file()) for m in models}
