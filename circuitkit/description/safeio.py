"""Reading files a description names, as untrusted input.

Only regular files are read (not devices, FIFOs or directories: ``/dev/zero``
and ``/dev/urandom`` are refused before a byte is read), each up to a size
limit; paths with NUL or other control characters are refused. Errors never
quote the contents of a file that is not a description (``/proc/self/environ``,
``/etc/shadow`` are not echoed back): they name the file, a line and a column.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from .. import limits
from ..errors import DescriptionError, Location

DATA_SUFFIXES = (".npy", ".csv", ".txt")


def check_path_text(text: str, loc: Location | None, what: str) -> None:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise DescriptionError(f"{what}: a path may not contain control characters (NUL, newline, ...)", loc)
    if len(text) > 4096:
        raise DescriptionError(f"{what}: path longer than 4096 characters", loc)


def read_bytes(path: Path, loc: Location | None, what: str, max_bytes: int, action: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, or a located error."""
    check_path_text(str(path), loc, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DescriptionError(f"cannot {action or 'read ' + what} '{path.name}': {exc.strerror}", loc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DescriptionError(f"{what}: '{path.name}' is not a regular file", loc)
        if st.st_size > max_bytes:
            raise DescriptionError(f"{what}: '{path.name}' has {st.st_size:,} bytes, more than the limit "
                                   f"of {max_bytes:,}", loc)
        chunks, total = [], 0
        while True:                       # /proc files report size 0: read, but never past the limit
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise DescriptionError(f"{what}: '{path.name}' is larger than the limit of {max_bytes:,} bytes", loc)
        return b"".join(chunks)
    except OSError as exc:
        raise DescriptionError(f"{what}: cannot read '{path.name}': {exc.strerror}", loc) from None
    finally:
        os.close(fd)


def decode(data: bytes, file: str | None, what: str = "description") -> str:
    """UTF-8 text; a bad byte is reported by line and column, not quoted."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[:exc.start]
        line = head.count(b"\n") + 1
        col = exc.start - (head.rfind(b"\n") + 1) + 1
        raise DescriptionError(f"{what} is not UTF-8 text (byte {exc.start} cannot be decoded)",
                               Location(file=file, line=line, column=col)) from None


def read_text(path: Path, loc: Location | None, what: str = "description", action: str | None = None) -> str:
    data = read_bytes(path, loc, what, limits.MAX_DESCRIPTION_BYTES, action)
    return decode(data, str(path), what)


def read_matrix(path: Path, loc: Location | None, what: str = "data file") -> np.ndarray:
    """A finite 2-D float array from ``.npy`` (no pickles; header checked against the file size)
    or a comma-separated text file; a 1-D array is one row."""
    path = Path(path)
    if path.suffix.lower() not in DATA_SUFFIXES:
        raise DescriptionError(f"{what}: '{path.name}' must be a .npy, .csv or .txt file", loc)
    data = read_bytes(path, loc, what, limits.MAX_DATA_BYTES)
    if path.suffix.lower() == ".npy":
        arr = _npy(data, path, loc, what)
    else:
        arr = _csv(data, path, loc, what)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise DescriptionError(f"{what}: '{path.name}' holds a {arr.ndim}-D array; expected rows x columns", loc)
    if arr.size == 0:
        raise DescriptionError(f"{what}: '{path.name}' is empty", loc)
    if not np.all(np.isfinite(arr)):
        raise DescriptionError(f"{what}: '{path.name}' holds non-finite values (nan or inf)", loc)
    return arr


def _npy(data: bytes, path: Path, loc, what) -> np.ndarray:
    import io
    fmt = np.lib.format
    fh = io.BytesIO(data)
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        if dtype.hasobject or dtype.kind not in "biuf":
            raise ValueError("not a numeric array")
        if len(shape) > 8:
            raise ValueError("too many dimensions")
        n = 1
        for s in shape:
            n *= int(s)
        if n * dtype.itemsize != len(data) - fh.tell():
            raise ValueError("header does not match the data")
        arr = np.load(io.BytesIO(data), allow_pickle=False)
        return np.asarray(arr, dtype=float)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError):
        raise DescriptionError(f"{what}: '{path.name}' is not a numeric .npy array", loc) from None


def _csv(data: bytes, path: Path, loc, what) -> np.ndarray:
    text = decode(data, str(path), what)
    rows: list[list[float]] = []
    for k, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        row = []
        for c, cell in enumerate(line.split(","), 1):
            try:
                row.append(float(cell))
            except ValueError:
                raise DescriptionError(f"{what}: '{path.name}' line {k}, field {c} is not a number "
                                       "(expected comma-separated numbers)", loc) from None
        if rows and len(row) != len(rows[0]):
            raise DescriptionError(f"{what}: '{path.name}' line {k} has {len(row)} values, the first row "
                                   f"{len(rows[0])}", loc)
        rows.append(row)
    return np.array(rows, dtype=float)
