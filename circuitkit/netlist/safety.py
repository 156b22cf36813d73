"""What may reach a netlist: names, paths, numbers and comment text, checked.

A netlist is a program: ngspice's control language can run shell commands,
and a newline in a title or name would start a new card. The loader and the
circuit model already validate names, but the renderer checks everything it
writes again (defence in depth), so a :class:`Circuit` built by hand or
modified after building cannot smuggle text into the deck.

* names (nodes, instances, models, parameters): ``[A-Za-z_][A-Za-z0-9_]*``,
  and not ``gnd`` (ngspice silently joins a node called ``gnd`` to ground);
* paths (compiled OSDI models): absolute, from ``[A-Za-z0-9_./+-]`` only, so no
  whitespace, quotes, ``;``, ``$``, backquotes or line breaks;
* numbers: finite floats, written so ngspice reads back the same double;
* comment text: printable ASCII only; anything else becomes ``?``.
"""
from __future__ import annotations

import re
from typing import Iterable

import numpy as np

from ..errors import CircuitkitError

SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
SAFE_PATH = re.compile(r"/[A-Za-z0-9_./+-]*\Z")
#: node names ngspice treats as ground although circuitkit would not
RESERVED_NODES = frozenset({"gnd"})
#: longest comment text written (titles, source paths)
COMMENT_LIMIT = 200

_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


class NetlistError(CircuitkitError, ValueError):
    """A circuit that cannot be written safely or faithfully as an ngspice netlist.

    Also a :class:`ValueError`, so callers that validate inputs catch it either way.
    """


def safe_name(name: object, what: str) -> str:
    """``name`` if it is a plain identifier, else :class:`NetlistError` naming ``what``."""
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise NetlistError(f"{what} {name!r} is not a safe netlist identifier "
                           "(letter or '_', then letters, digits, '_')")
    return name


def safe_node_name(name: str, what: str) -> str:
    safe_name(name, what)
    if name.lower() in RESERVED_NODES:
        raise NetlistError(f"{what} '{name}': ngspice treats a node named '{name}' as ground; rename it")
    return name


def safe_path(path: object, what: str) -> str:
    """An absolute path with only ``[A-Za-z0-9_./+-]``, as text."""
    text = str(path) if path is not None else ""
    if not SAFE_PATH.match(text) or "/../" in text + "/":
        raise NetlistError(f"{what} {text!r} is not a safe absolute path for a netlist "
                           "(absolute, no '..', only letters, digits and _ . / + -)")
    return text


def format_number(value: object, what: str) -> str:
    """A finite float written losslessly: integers as integers, others as ``repr``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise NetlistError(f"{what}: expected a number, got {value!r}")
    x = float(value)
    if x != x or x in (float("inf"), float("-inf")):
        raise NetlistError(f"{what}: {x} cannot be written into a netlist (finite numbers only)")
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def format_numbers(values: np.ndarray, what: str) -> list[str]:
    """:func:`format_number` of every entry, each distinct value formatted once."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiu":
        raise NetlistError(f"{what}: expected numbers, got an array of {arr.dtype}")
    arr = arr.astype(float, copy=False).ravel()
    bad = ~np.isfinite(arr)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise NetlistError(f"{what}[{k}]: {arr[k]} cannot be written into a netlist (finite numbers only)")
    if arr.size == 0:
        return []
    unique, inverse = np.unique(arr, return_inverse=True)
    text = [format_number(u, what) for u in unique.tolist()]
    return [text[i] for i in inverse.ravel().tolist()]


def comment_text(text: object, limit: int = COMMENT_LIMIT) -> str:
    """One line of printable ASCII: line breaks, control and non-ASCII characters become ``?``."""
    text = _UNPRINTABLE.sub("?", "" if text is None else str(text))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_unique(names: Iterable[str], what: str) -> None:
    """ngspice folds case: two names equal but for case would be one node or a duplicate instance."""
    seen: dict[str, str] = {}
    for name in names:
        key = name.lower()
        other = seen.get(key)
        if other is not None:
            raise NetlistError(f"{what} '{name}' occurs twice in the netlist"
                               + (f" (also as '{other}'; ngspice ignores case)" if other != name else ""))
        seen[key] = name
