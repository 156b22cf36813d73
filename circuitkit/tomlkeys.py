"""Where a key is set in a TOML text: the line of ``a.b.c`` for error messages.

``tomllib`` gives values without positions, so a check that refuses
``periphery.adc.bits`` must find the line itself. :func:`key_line` scans the
text as TOML is written -- ``[table]`` and ``[[array]]`` headers (the n-th
``[[layers]]`` is ``layers.n``), dotted keys (``adc.bits = 4``), inline tables
(``adc = { bits = 4 }``, nested), quoted keys, comments, strings and arrays
that span lines -- and returns the line where the full key is assigned, else
the line of its longest assigned prefix (the table that holds it), else None.
It is a locator, not a parser: the text has already been parsed by
``tomllib``, so it can assume well-formed TOML.
"""
from __future__ import annotations

import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(text: str, i: int) -> tuple[str | None, int]:
    """One key at ``text[i:]`` (bare or quoted) and the position after it, or (None, i)."""
    if i < len(text) and text[i] in "\"'":
        q = text[i]
        j = i + 1
        out = []
        while j < len(text) and text[j] != q:
            if q == '"' and text[j] == "\\" and j + 1 < len(text):
                out.append(text[j + 1])
                j += 2
                continue
            out.append(text[j])
            j += 1
        return "".join(out), j + 1
    m = _BARE.match(text, i)
    return (m.group(0), m.end()) if m else (None, i)


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _dotted(text: str, i: int) -> tuple[list[str], int]:
    """A dotted key ``a."b".c`` at ``text[i:]``: its parts and the position after it."""
    parts = []
    while True:
        i = _skip_space(text, i)
        k, j = _key(text, i)
        if k is None:
            return parts, i
        parts.append(k)
        i = _skip_space(text, j)
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        return parts, i


def _skip_string(text: str, i: int) -> int:
    """Position after the string starting at ``text[i]`` (basic, literal, or their multi-line forms)."""
    q = text[i]
    if text.startswith(q * 3, i):
        end = text.find(q * 3, i + 3)
        while q == '"' and end > 0 and text[end - 1] == "\\":
            end = text.find(q * 3, end + 1)
        return len(text) if end < 0 else end + 3
    j = i + 1
    while j < len(text) and text[j] != q and text[j] != "\n":
        j += 2 if (q == '"' and text[j] == "\\") else 1
    return j + 1


def key_line(text: str, key: str) -> int | None:
    """1-based line where ``key`` (dotted; array-of-tables entries by index, ``layers.0.name``) is set."""
    target = key.split(".")
    best = (0, None)                                    # (prefix length matched, line)

    def seen(path: list[str], line: int) -> bool:
        nonlocal best
        n = len(path)
        if n <= len(target) and path == target[:n] and n > best[0]:
            best = (n, line)
        return n == len(target) and path == target

    counts: dict[tuple, int] = {}
    table: list[str] = []
    stack: list[tuple[str, list[str]]] = []             # open inline tables / arrays: kind, path
    i, line, n = 0, 1, len(text)
    expect_key = True
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            if not stack:
                expect_key = True
            continue
        if c in " \t\r":
            i += 1
            continue
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in "\"'" and not expect_key:
            nl = text.count("\n", i, _skip_string(text, i))
            i, line = _skip_string(text, i), line + nl
            continue
        if not stack and expect_key and c == "[":
            double = text.startswith("[[", i)
            parts, j = _dotted(text, i + (2 if double else 1))
            if double:
                k = counts[tuple(parts)] = counts.get(tuple(parts), -1) + 1
                table = parts + [str(k)]
            else:
                table = parts
            if seen(table, line):
                return line
            end = text.find("\n", j)
            i = n if end < 0 else end
            continue
        if expect_key and (c in "\"'" or _BARE.match(text, i)):
            parts, j = _dotted(text, i)
            if j < n and text[j] == "=":
                prefix = stack[-1][1] if stack else table
                path = prefix + parts
                for m in range(len(prefix) + 1, len(path) + 1):     # a.b.c = 1 also sets a.b
                    if seen(path[:m], line):
                        return line
                i = _skip_space(text, j + 1)
                expect_key = False
                if i < n and text[i] == "{":
                    stack.append(("{", path))
                    i += 1
                    expect_key = True
                elif i < n and text[i] == "[":
                    stack.append(("[", path))
                    i += 1
                continue
            i = j + 1
            continue
        if c == "{":
            stack.append(("{", stack[-1][1] if stack else table))
            expect_key = True
        elif c == "[":
            stack.append(("[", stack[-1][1] if stack else table))
        elif c in "}]":
            if stack:
                stack.pop()
            expect_key = False
        elif c == ",":
            expect_key = bool(stack) and stack[-1][0] == "{"
        i += 1
    return best[1]


#: TOML integers are unbounded in Python's reader; beyond 64 bits every consumer (float(), numpy, seeds)
#: would fail or overflow, so they are refused where the file is read
MAX_INT = 2 ** 63 - 1


def oversized_int(data, prefix: str = "") -> str | None:
    """The dotted key (list entries by index) of the first integer in parsed TOML ``data`` outside
    [-2^63 + 1, 2^63 - 1], or None."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for k, v in items:
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
            return key
        if isinstance(v, (dict, list)):
            found = oversized_int(v, key)
            if found is not None:
                return found
    return None
