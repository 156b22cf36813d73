"""Reading files a description names, as untrusted input.

Only regular files are read (not devices, FIFOs or directories: ``/dev/zero``
and ``/dev/urandom`` are refused before a byte is read), each up to a size
limit; paths with NUL or other control characters are refused. Errors never
quote the contents of a file that is not a description (``/proc/self/environ``,
``/etc/shadow`` are not echoed back): they name the file, a line and a column.
"""
from __future__ import annotations

import io
import os
import re
import stat
import warnings
import zlib
from pathlib import Path

import numpy as np

from .. import limits
from ..errors import DescriptionError, LocatedError, Location, printable

DATA_SUFFIXES = (".npy", ".csv", ".txt")


def check_path_text(text: str, loc: Location | None, what: str,
                    error: type[LocatedError] = DescriptionError) -> None:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise error(f"{what}: a path may not contain control characters (NUL, newline, ...)", loc)
    if len(text) > 4096:
        raise error(f"{what}: path longer than 4096 characters", loc)


def contained(base: Path, text: str, loc: Location | None, what: str,
              error: type[LocatedError] = DescriptionError) -> Path:
    """``text`` as a file inside ``base`` (the directory of the file that names it): no absolute path, no
    ``~``, no ``..``, and no symbolic link that leads out of ``base``. For files a workload's own input
    names (weights, the network of a sweep, its data), which must not reach files elsewhere (their keys
    or values would show in the errors)."""
    check_path_text(text, loc, what, error)
    rel = Path(text)
    if rel.is_absolute() or text.startswith("~") or ".." in rel.parts:
        raise error(f"{what}: '{printable(text, 200)}' must be a path inside the directory of the file that "
                    f"names it (no absolute path, '~' or '..')", loc)
    root = Path(base).resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise error(f"{what}: '{printable(text, 200)}' leads out of {root} (a symbolic link)", loc)
    return root / rel


def read_bytes(path: Path, loc: Location | None, what: str, max_bytes: int, action: str | None = None,
               error: type[LocatedError] = DescriptionError) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (a device, FIFO or directory is refused
    unopened for reading, an oversized file unread), or a located ``error`` naming the file, never
    quoting it. The one reader of every file a description or a workload names."""
    check_path_text(str(path), loc, what, error)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as exc:
        raise error(f"cannot {action or 'read ' + what} '{path.name}': "
                    f"{getattr(exc, 'strerror', None) or exc}", loc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what}: '{path.name}' is not a regular file", loc)
        if st.st_size > max_bytes:
            raise error(f"{what}: '{path.name}' has {st.st_size:,} bytes, larger than the limit of "
                        f"{max_bytes:,} bytes", loc)
        chunks, total = [], 0
        while True:                       # /proc files report size 0: read, but never past the limit
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise error(f"{what}: '{path.name}' is larger than the limit of {max_bytes:,} bytes", loc)
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{what}: cannot read '{path.name}': {exc.strerror}", loc) from None
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
    return np.asarray(arr, dtype=float)


def read_array(path: Path, loc: Location | None, what: str = "data file", *, max_bytes: int | None = None,
               max_array_bytes: int | None = None, keys: tuple[str, ...] = (), only_ok: bool = True,
               required: bool = True, keep_dtype: bool = False) -> np.ndarray | None:
    """A numeric array (any number of dimensions) from ``.npy``, ``.npz`` or comma-separated text.

    Every file is read through :func:`read_bytes` (regular files only, at most ``max_bytes``, default
    :data:`limits.MAX_DATA_BYTES`). In an ``.npz`` the member is the first of ``keys`` it holds (else its
    only array when ``only_ok``); its header (dtype, shape) and its uncompressed size are checked against
    ``max_array_bytes`` before a byte of it is decompressed, so a zip bomb is refused unread. With
    ``required=False`` an ``.npz`` without any of ``keys`` gives None. Text gives a 2-D array.
    """
    path = Path(path)
    max_bytes = limits.MAX_DATA_BYTES if max_bytes is None else max_bytes
    max_array_bytes = max_bytes if max_array_bytes is None else max_array_bytes
    suffix = path.suffix.lower()
    if suffix not in DATA_SUFFIXES + (".npz",):
        raise DescriptionError(f"{what}: '{path.name}' must be a .npy, .npz, .csv or .txt file", loc)
    if suffix == ".npy":
        data = read_bytes(path, loc, what, min(max_bytes, max_array_bytes + 4096))
        return _npy(data, path, loc, what, keep_dtype=keep_dtype, max_array_bytes=max_array_bytes)
    data = read_bytes(path, loc, what, max_bytes)
    if suffix == ".npz":
        return _npz(data, path, loc, what, keys, only_ok, required, max_array_bytes, keep_dtype)
    return _csv(data, path, loc, what, max_array_bytes)


def _npy_header(fh, path: Path, loc, what):
    """(shape, fortran, dtype, data bytes) of a numeric .npy stream, checked; the stream is left at the data."""
    fmt = np.lib.format
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
    return shape, fortran, dtype, n * dtype.itemsize


def _npz(data: bytes, path: Path, loc, what, keys, only_ok, required, max_array_bytes, keep_dtype):
    import zipfile
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = {i.filename[:-4] if i.filename.endswith(".npy") else i.filename: i for i in zf.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise DescriptionError(f"{what}: '{path.name}' is not an .npz (zip) archive", loc) from None
    if len(infos) > 10_000:
        raise DescriptionError(f"{what}: '{path.name}' holds {len(infos):,} arrays, more than 10,000", loc)
    name = next((k for k in keys if k in infos), None)
    if name is None and only_ok and len(infos) == 1:
        name = next(iter(infos))
    if name is None:
        if not required:
            return None
        if len(keys) == 1:
            raise DescriptionError(f"{what}: '{path.name}' has no array '{keys[0]}'", loc)
        want = " or ".join(f"'{k}'" for k in keys) if keys else "a name"
        raise DescriptionError(f"{what}: '{path.name}' holds {len(infos)} arrays and none is {want}; "
                               "name the array as FILE:KEY", loc)
    info = infos[name]
    if info.file_size > max_array_bytes + 4096:
        raise DescriptionError(f"{what}: array '{name}' of '{path.name}' has {info.file_size:,} bytes "
                               f"uncompressed, more than the limit of {max_array_bytes:,}", loc)
    try:
        with zf.open(info) as fh:
            shape, fortran, dtype, nbytes = _npy_header(fh, path, loc, what)
            _check_size(shape, dtype, max_array_bytes, f"array '{name}' of '{path.name}'", loc, what)
            raw = fh.read(nbytes + 1)
        if len(raw) != nbytes:
            raise ValueError("header does not match the data")
        arr = np.frombuffer(raw, dtype=dtype)
        arr = arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)
    except DescriptionError:
        raise
    except (ValueError, OSError, EOFError, TypeError, SyntaxError, zipfile.BadZipFile, RuntimeError,
            NotImplementedError, zlib.error):
        raise DescriptionError(f"{what}: array '{name}' of '{path.name}' is not a numeric .npy array", loc) from None
    return np.array(arr) if keep_dtype else np.asarray(arr, dtype=float)


def _check_size(shape, dtype, max_array_bytes: int, name: str, loc, what) -> None:
    """Refuse an array whose values take more than ``max_array_bytes`` *as float64*, what the workloads
    convert them to (a 1.8 MB .npz of uint8 zeros held 1.9 GB, 15 GB as float64: an audit)."""
    n = 1
    for k in shape:
        n *= int(k)
    as_float = n * max(8, dtype.itemsize)
    if as_float > max_array_bytes:
        raise DescriptionError(f"{what}: {name} has shape {tuple(int(k) for k in shape)}, {n:,} values "
                               f"({as_float:,} bytes as float64), more than the limit of {max_array_bytes:,} "
                               f"bytes", loc)


def _npy(data: bytes, path: Path, loc, what, keep_dtype: bool = False,
         max_array_bytes: int = limits.MAX_DATA_BYTES) -> np.ndarray:
    fh = io.BytesIO(data)
    try:
        shape, _fortran, dtype, nbytes = _npy_header(fh, path, loc, what)
        _check_size(shape, dtype, max_array_bytes, f"'{path.name}'", loc, what)
        if nbytes != len(data) - fh.tell():
            raise ValueError("header does not match the data")
        arr = np.load(io.BytesIO(data), allow_pickle=False)
        return np.asarray(arr) if keep_dtype else np.asarray(arr, dtype=float)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError):
        raise DescriptionError(f"{what}: '{path.name}' is not a numeric .npy array", loc) from None


_LOADTXT_AT = re.compile(r"at row (\d+), column (\d+)")
_LOADTXT_COLUMNS = re.compile(r"changed from (\d+) to (\d+) at row (\d+)")


def _csv(data: bytes, path: Path, loc, what, max_array_bytes: int = limits.MAX_DATA_BYTES) -> np.ndarray:
    """Comma-separated numbers (``#`` comments, blank lines, a leading byte-order mark allowed), parsed by
    numpy's compiled reader straight from the bytes: memory is the array's own (before: Python lists,
    ~30 bytes a value, several GB for a legal 256 MB file). The array's size is bounded from the count of
    separators before parsing; errors give the line and field, never the contents."""
    values = data.count(b",") + data.count(b"\n") + 1            # an upper bound on the values it holds
    if values * 8 > max_array_bytes:
        raise DescriptionError(f"{what}: '{path.name}' may hold up to {values:,} values, more than the limit "
                               f"of {max_array_bytes // 8:,} ({max_array_bytes:,} bytes)", loc)
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0      # a byte-order mark written by spreadsheets
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                      # "input contained no data": checked by callers
            arr = np.loadtxt(io.BytesIO(memoryview(data)[start:]), delimiter=",", comments="#", dtype=float,
                             ndmin=2, encoding="utf-8")
    except UnicodeDecodeError:
        decode(data, str(path), what)                            # raises, located by line and column
        raise DescriptionError(f"{what}: '{path.name}' is not UTF-8 text", loc) from None
    except ValueError as exc:
        msg = str(exc)
        cols = _LOADTXT_COLUMNS.search(msg)
        at = _LOADTXT_AT.search(msg)
        if cols:
            first, got, row = (int(g) for g in cols.groups())
            raise DescriptionError(f"{what}: '{path.name}' line {row + 1} has {got} values, the first row "
                                   f"{first}", loc) from None
        if at:
            row, col = (int(g) for g in at.groups())
            raise DescriptionError(f"{what}: '{path.name}' line {row + 1}, field {col} is not a number "
                                   "(expected comma-separated numbers)", loc) from None
        raise DescriptionError(f"{what}: '{path.name}' is not comma-separated numbers", loc) from None
    return arr
