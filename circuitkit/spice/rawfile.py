"""Read ngspice raw files (binary and ascii, real and complex, one or more plots).

ngspice's ``write`` command stores every vector of a plot after a short text
header::

    Title: ...
    Plotname: Transient Analysis
    Flags: real            (or complex)
    No. Variables: 4
    No. Points: 526
    Variables:
            0       time    time
            1       v(in)   voltage
            ...
    Binary:                (or Values:)

Binary data are native little-endian doubles, point by point (two doubles per
value when the plot is complex); ascii data list each point as its index
followed by one value per variable (``re,im`` when complex). Several plots
follow each other in one file. An interrupted run may leave fewer points than
the header announces; the complete points present are returned.

Vector names are normalised (:func:`normalise_name`) so both ngspice backends
and every caller agree: lowercase, ``time``/``frequency`` as is, node voltages
``v(node)``, branch currents ``i(name)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CircuitkitError

#: abscissa / sweep vectors that are neither node voltages nor branch currents
SCALE_NAMES = frozenset({"time", "frequency", "v-sweep", "i-sweep", "temp-sweep", "res-sweep", "sweep"})

_FUNCTION_FORM = re.compile(r"^[a-z]+\(.*\)$")


class RawFileError(CircuitkitError):
    """A raw file that is missing, truncated in its header or not in ngspice's format."""


@dataclass
class RawPlot:
    """One plot of a raw file: its header fields and its vectors by normalised name."""

    title: str
    plotname: str
    flags: str
    n_points: int
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    #: original (ngspice) names in file order, parallel to ``types``
    names: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)

    @property
    def is_complex(self) -> bool:
        return "complex" in self.flags


def normalise_name(name: str, vtype: str | None = None) -> str:
    """ngspice vector name -> circuitkit's name.

    ``V(A)`` -> ``v(a)``; ``a`` -> ``v(a)``; ``V1#branch`` -> ``i(v1)``;
    ``time`` stays ``time``; ``@r1[i]`` and other already normalised or
    special names are only lowercased. ``vtype`` is the raw file's type
    column: variables typed neither voltage nor current (e.g. sweeps) keep
    their name.
    """
    n = name.strip().lower()
    if n.endswith("#branch"):
        return f"i({n[:-len('#branch')]})"
    if n in SCALE_NAMES or n.startswith("@") or _FUNCTION_FORM.match(n):
        return n
    if vtype is not None and vtype.lower() not in ("voltage", "current"):
        return n
    if vtype is not None and vtype.lower() == "current":
        return f"i({n})"
    return f"v({n})"


def read_raw(path: str | Path) -> list[RawPlot]:
    """Every plot of a raw file, in file order."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RawFileError(f"raw file not found: {path}") from None
    plots = []
    pos = 0
    while pos < len(data):
        # skip blank lines between plots
        while pos < len(data) and data[pos:pos + 1] in (b"\n", b"\r", b" ", b"\t"):
            pos += 1
        if pos >= len(data):
            break
        plot, pos = _read_plot(data, pos, path)
        plots.append(plot)
    if not plots:
        raise RawFileError(f"{path}: empty raw file")
    return plots


def read_vectors(path: str | Path, plot: int = -1) -> dict[str, np.ndarray]:
    """Vectors of one plot (the last by default) keyed by normalised name."""
    return read_raw(path)[plot].vectors


def _read_plot(data: bytes, pos: int, path: Path) -> tuple[RawPlot, int]:
    header: dict[str, str] = {}
    var_lines: list[str] = []
    in_vars = False
    mode = None
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise RawFileError(f"{path}: header ends before 'Binary:' or 'Values:'")
        line = data[pos:end].decode("latin-1").rstrip("\r")
        pos = end + 1
        key, sep, value = line.partition(":")
        key_l = key.strip().lower()
        if sep and key_l in ("binary", "values"):
            mode = key_l
            break
        if in_vars and (not sep or key_l.isdigit() or line[:1] in (" ", "\t")):
            if line.strip():
                var_lines.append(line)
            continue
        if not sep:
            if line.strip():
                raise RawFileError(f"{path}: unexpected header line {line!r}")
            continue
        if key_l == "variables":
            in_vars = True
            if value.strip():
                var_lines.append(value)
            continue
        in_vars = False
        header[key_l] = value.strip()

    try:
        n_vars = int(header["no. variables"])
        n_points = int(header["no. points"])
    except (KeyError, ValueError):
        raise RawFileError(f"{path}: header lacks 'No. Variables' or 'No. Points'") from None
    flags = header.get("flags", "real").lower()
    names, types = [], []
    for line in var_lines:
        parts = line.split()
        if len(parts) < 2:
            raise RawFileError(f"{path}: bad variable line {line!r}")
        names.append(parts[1])
        types.append(parts[2] if len(parts) > 2 else "")
    if len(names) != n_vars:
        raise RawFileError(f"{path}: header announces {n_vars} variables, lists {len(names)}")
    is_complex = "complex" in flags
    if mode == "binary":
        columns, pos, n_read = _binary_values(data, pos, n_vars, n_points, is_complex, flags)
    else:
        columns, pos, n_read = _ascii_values(data, pos, n_vars, n_points, is_complex, path)
    vectors: dict[str, np.ndarray] = {}
    for name, vtype, col in zip(names, types, columns):
        key = normalise_name(name, vtype or None)
        if key in SCALE_NAMES and np.iscomplexobj(col) and not np.any(col.imag):
            col = col.real.copy()  # ngspice stores the AC frequency as complex
        vectors.setdefault(key, col)
    plot = RawPlot(title=header.get("title", ""), plotname=header.get("plotname", ""), flags=flags,
                   n_points=n_read, vectors=vectors, names=names, types=types)
    return plot, pos


def _binary_values(data: bytes, pos: int, n_vars: int, n_points: int, is_complex: bool, flags: str):
    width = 2 if is_complex else 1
    row = n_vars * width * 8
    available = (len(data) - pos) // row if row else 0
    n_read = min(n_points, available)  # an interrupted run leaves fewer points
    arr = np.frombuffer(data, dtype="<f8", count=n_read * n_vars * width, offset=pos)
    arr = arr.reshape(n_read, n_vars, width)
    if is_complex:
        cols = [arr[:, k, 0] + 1j * arr[:, k, 1] for k in range(n_vars)]
    else:
        cols = [arr[:, k, 0].copy() for k in range(n_vars)]
    # a truncated file ends inside this plot: nothing after it can be read
    end = pos + n_read * row if n_read == n_points else len(data)
    return cols, end, n_read


_NEXT_PLOT = re.compile(rb"^Title:", re.MULTILINE)


def _ascii_values(data: bytes, pos: int, n_vars: int, n_points: int, is_complex: bool, path: Path):
    m = _NEXT_PLOT.search(data, pos)
    stop = m.start() if m else len(data)
    tokens = data[pos:stop].split()
    per_point = n_vars + 1  # the point index, then one value per variable
    n_read = min(n_points, len(tokens) // per_point)
    dtype = complex if is_complex else float
    out = np.empty((n_read, n_vars), dtype=dtype)
    try:
        for k in range(n_read):
            base = k * per_point + 1
            for j in range(n_vars):
                tok = tokens[base + j].decode()
                if is_complex:
                    re_s, _, im_s = tok.partition(",")
                    out[k, j] = complex(float(re_s), float(im_s or 0.0))
                else:
                    out[k, j] = float(tok)
    except ValueError as exc:
        raise RawFileError(f"{path}: bad value in ascii data at point {k}: {exc}") from None
    return [out[:, j].copy() for j in range(n_vars)], stop, n_read
