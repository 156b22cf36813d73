"""Expand a sweep's parameter values into grid points.

A parameter's values are written in the sweep file as one of

* a list: ``rw = [0.5, 1, 2.5]`` (numbers or strings such as ``"v3"``);
* a linear range: ``{ range = [start, stop], step = s }`` (``stop`` included
  when a step lands on it) or ``{ range = [start, stop], num = n }``;
* a log range: ``{ logrange = [start, stop], num = n }`` (geometric spacing)
  or ``{ logrange = [start, stop], factor = f }`` (``start * f**k <= stop``);
* ``{ values = [...] }``, the same as a list.

``integer = true`` rounds a range's values to whole numbers (duplicates
dropped). Ranges of whole numbers with a whole step or factor stay integers.

Parameters then combine as a cartesian product, except that parameters named
together in a zip group vary together (``zip = [["rows", "cols"]]``), or all
of them do (``mode = "zip"``). The first parameter varies slowest.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

Value = int | float | str

VALUE_KEYS = ("values", "range", "logrange", "step", "num", "factor", "integer")
MAX_VALUES = 1_000_000      # values of one parameter
MAX_POINTS = 1_000_000      # points of one grid (each is a file on disk)


class GridError(ValueError):
    """A value specification that cannot be expanded; ``key`` names the parameter."""

    def __init__(self, message: str, key: str | None = None):
        self.key = key
        super().__init__(message)


@dataclass(frozen=True)
class Point:
    """One grid point: its position in grid order and the parameter values."""

    index: int
    params: dict[str, Value]

    def overrides(self) -> dict[str, str]:
        """The values as ``--set name=value`` text."""
        return {k: format_value(v) for k, v in self.params.items()}


def format_value(value: Value) -> str:
    """A value as description-language text (numbers round-trip exactly)."""
    if isinstance(value, bool):
        raise GridError(f"true/false is not a parameter value (got {value})")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise GridError(f"values must be finite, got {value}")
        return repr(value)
    return str(value)


def _number(v: Any, what: str, key: str) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise GridError(f"{what} must be a number, got {v!r}", key)
    if not math.isfinite(v):
        raise GridError(f"{what} must be finite, got {v}", key)
    return v


def _pair(spec: Mapping, name: str, key: str) -> tuple[float, float]:
    v = spec[name]
    if not isinstance(v, list) or len(v) != 2:
        raise GridError(f"{name} must be [start, stop], got {v!r}", key)
    return _number(v[0], f"{name} start", key), _number(v[1], f"{name} stop", key)


def _is_whole(*values) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def expand_values(key: str, spec: Any) -> list[Value]:
    """The list of values one parameter takes (see the module docstring)."""
    if isinstance(spec, list):
        values = list(spec)
    elif isinstance(spec, dict):
        unknown = sorted(set(spec) - set(VALUE_KEYS))
        if unknown:
            raise GridError(f"unknown key '{unknown[0]}' in the values of '{key}' "
                            f"(known: {', '.join(VALUE_KEYS)})", key)
        kinds = [k for k in ("values", "range", "logrange") if k in spec]
        if len(kinds) != 1:
            raise GridError(f"the values of '{key}' need exactly one of values, range, logrange", key)
        kind = kinds[0]
        if kind == "values":
            if set(spec) - {"values"}:
                raise GridError(f"'{key}': values = [...] takes no step, num, factor or integer", key)
            values = spec["values"]
            if not isinstance(values, list):
                raise GridError(f"'{key}': values must be a list", key)
            values = list(values)
        else:
            values = _range(key, kind, spec)
    elif isinstance(spec, (int, float, str)) and not isinstance(spec, bool):
        values = [spec]
    else:
        raise GridError(f"'{key}' must be a list of values or a range table, got {spec!r}", key)
    if not values:
        raise GridError(f"'{key}' has no values (empty grid)", key)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise GridError(f"'{key}': each value must be a number or a string, got {v!r}", key)
        if isinstance(v, float) and not math.isfinite(v):
            raise GridError(f"'{key}': values must be finite, got {v}", key)
        if isinstance(v, str) and not v.strip():
            raise GridError(f"'{key}': empty string value", key)
    return values


def _range(key: str, kind: str, spec: Mapping) -> list[Value]:
    start, stop = _pair(spec, kind, key)
    steps = [k for k in ("step", "num", "factor") if k in spec]
    allowed = ("step", "num") if kind == "range" else ("num", "factor")
    if len(steps) != 1 or steps[0] not in allowed:
        raise GridError(f"'{key}': {kind} needs exactly one of {' or '.join(allowed)}", key)
    how = steps[0]
    integer = spec.get("integer", False)
    if not isinstance(integer, bool):
        raise GridError(f"'{key}': integer must be true or false", key)
    if how == "num":
        num = spec["num"]
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise GridError(f"'{key}': num must be a whole number >= 1, got {num!r}", key)
        if num > MAX_VALUES:
            raise GridError(f"'{key}': num = {num} is more than {MAX_VALUES:,} values", key)
    if kind == "range":
        if how == "step":
            step = _number(spec["step"], "step", key)
            if step == 0 or (stop - start) * step < 0:
                raise GridError(f"'{key}': step {step} does not lead from {start} to {stop}", key)
            n_float = (stop - start) / step * (1 + 1e-12) + 1e-9
            n = int(math.floor(n_float)) + 1 if math.isfinite(n_float) and n_float < 1e15 else 10 ** 15
            if n > MAX_VALUES:
                raise GridError(f"'{key}': range has {n} values (at most 1e6)", key)
            values = [start + k * step for k in range(n)]
            if abs(values[-1] - stop) <= 1e-9 * abs(step):
                values[-1] = stop                  # the stop as written, not start + k * step
            whole = _is_whole(start, step)
        else:
            values = [start + (stop - start) * k / (num - 1) for k in range(num)] if num > 1 else [start]
            values[-1] = stop                      # the endpoints as written (0.2 + 0.8 is 1.0000000000000002)
            whole = False
    else:
        if start <= 0 or stop <= 0:
            raise GridError(f"'{key}': logrange needs start and stop > 0, got [{start}, {stop}]", key)
        if how == "num":
            ratio = stop / start
            if not (math.isfinite(ratio) and ratio > 0):
                raise GridError(f"'{key}': logrange [{start}, {stop}] spans more than a float can hold", key)
            values = [start * ratio ** (k / (num - 1)) for k in range(num)] if num > 1 else [start]
            values[-1] = stop
            whole = False
        else:
            factor = _number(spec["factor"], "factor", key)
            if factor <= 0 or factor == 1 or (stop - start) * (factor - 1) < 0:
                raise GridError(f"'{key}': factor {factor} does not lead from {start} to {stop}", key)
            ratio = stop / start
            if not (math.isfinite(ratio) and ratio > 0):      # 1e300 -> 1e-300: the ratio underflows to 0
                raise GridError(f"'{key}': logrange [{start}, {stop}] spans more than a float can hold", key)
            n_float = math.log(ratio) / math.log(factor) + 1e-9
            n = int(math.floor(n_float)) + 1 if math.isfinite(n_float) and n_float < 1e15 else 10 ** 15
            if n > MAX_VALUES:
                raise GridError(f"'{key}': logrange has {n} values (at most 1e6)", key)
            values = [start * factor ** k for k in range(n)]
            if abs(values[-1] - stop) <= 1e-9 * stop:
                values[-1] = stop
            whole = _is_whole(start, factor)
    if integer or whole:
        out: list[Value] = []
        for v in values:
            r = int(round(v))
            if r not in out:
                out.append(r)
        return out
    return [_clean(float(v)) for v in values]


def _clean(v: float) -> float:
    """``v`` without the rounding noise of its arithmetic: the shortest decimal of at most 14 digits within two
    ulps (0.1 + 2 * 0.1 is 0.3, 1e-3 * 1000 ** (1/3) is 0.01), as ``--set x=0.3`` would give; ``v`` otherwise."""
    for digits in range(1, 15):
        c = float(f"{v:.{digits}g}")
        if abs(c - v) <= 2 * math.ulp(v):
            return c
    return v


def combine(values: Mapping[str, Sequence[Value]], zip_groups: Sequence[Sequence[str]] = (),
            mode: str = "product") -> list[Point]:
    """Grid points of ``values`` (ordered as given): product over zip groups."""
    names = list(values)
    if mode == "zip":
        zip_groups = [names]
    elif mode != "product":
        raise GridError(f"mode must be 'product' or 'zip', got {mode!r}")
    group_of: dict[str, int] = {}
    for g, group in enumerate(zip_groups):
        for name in group:
            if name not in values:
                raise GridError(f"zip names '{name}', which is not a swept parameter", name)
            if name in group_of:
                raise GridError(f"'{name}' is in two zip groups", name)
            group_of[name] = g
        lengths = {name: len(values[name]) for name in group}
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            raise GridError(f"zipped parameters need the same number of values ({detail})", group[-1])
    # axes in order of first appearance: a zip group is one axis
    axes: list[list[str]] = []
    seen: set[int] = set()
    for name in names:
        g = group_of.get(name)
        if g is None:
            axes.append([name])
        elif g not in seen:
            seen.add(g)
            axes.append([n for n in names if group_of.get(n) == g])
    total = math.prod(len(values[axis[0]]) for axis in axes)
    if total > MAX_POINTS:
        raise GridError(f"the grid has {total:,} points, more than {MAX_POINTS:,}; split the sweep")
    per_axis = [[{n: values[n][k] for n in axis} for k in range(len(values[axis[0]]))] for axis in axes]
    points = []
    for k, combo in enumerate(itertools.product(*per_axis)):
        merged: dict[str, Value] = {}
        for part in combo:
            merged.update(part)
        points.append(Point(k, {n: merged[n] for n in names}))
    if not points:
        raise GridError("the grid is empty")
    return points
