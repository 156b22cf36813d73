"""Read the parameter declarations of a Verilog-A file.

The lockstep test uses this to check that a ``.va`` file and its numpy twin
declare the same parameters with the same defaults, ranges and instance
kinds. Only what the model files use is understood: ``parameter real|integer
NAME = EXPR [from RANGE] [exclude ...];`` with optional ``(* ... *)``
attributes (``type="instance"``, ``desc``, ``units``); EXPR is constant
arithmetic over numbers (``1e-3``, scale factors like ``10k``), ``inf`` and
earlier parameters. ``exclude`` clauses are accepted and ignored.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import lark

from ..errors import Location, ParameterError
from .base import DeviceModel

GRAMMAR = Path(__file__).with_name("va_params.lark")

#: Verilog-A scale factors (IEEE 1364 / Verilog-AMS LRM 2.6).
SCALE = {"T": 1e12, "G": 1e9, "M": 1e6, "K": 1e3, "k": 1e3, "m": 1e-3, "u": 1e-6,
         "n": 1e-9, "p": 1e-12, "f": 1e-15, "a": 1e-18}

_COMMENT_OR_STRING = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:[^"\\\n]|\\.)*"', re.S)
_MODULE = re.compile(r"\bmodule\s+([A-Za-z_][A-Za-z0-9_$]*)\s*\(([^)]*)\)\s*;")
_PARAMETER = re.compile(r"\bparameter\b")
_ATTRIBUTES_BEFORE = re.compile(r"(\(\*(?:(?!\*\)).)*\*\)\s*)+$", re.S)


@dataclass(frozen=True)
class VaParameter:
    """A parameter as a .va file declares it; ``None`` bounds are infinite."""

    name: str
    type: str                       # "real" or "integer"
    default: float
    lower: float | None
    upper: float | None
    lower_inclusive: bool
    upper_inclusive: bool
    instance: bool
    description: str
    units: str
    line: int


@dataclass(frozen=True)
class VaModule:
    """Name, ports and parameters of the (first) module of a .va file."""

    name: str
    ports: tuple[str, ...]
    parameters: tuple[VaParameter, ...]

    def parameter(self, name: str) -> VaParameter | None:
        return next((p for p in self.parameters if p.name == name), None)


@cache
def _parser() -> lark.Lark:
    return lark.Lark(GRAMMAR.read_text(), start="declaration", parser="lalr", propagate_positions=True)


def blank_comments(text: str) -> str:
    """``text`` with comments replaced by spaces (newlines kept), so offsets and lines stay valid."""
    def blank(m: re.Match) -> str:
        s = m.group(0)
        return s if s.startswith('"') else re.sub(r"[^\n]", " ", s)
    return _COMMENT_OR_STRING.sub(blank, text)


def _statement_end(text: str, start: int) -> int:
    """Index just past the ``;`` ending the statement at ``start`` (strings skipped)."""
    in_string = False
    for k in range(start, len(text)):
        c = text[k]
        if c == '"' and text[k - 1] != "\\":
            in_string = not in_string
        elif c == ";" and not in_string:
            return k + 1
    return len(text)


def read_va(path: str | Path) -> VaModule:
    """Parse module name, ports and parameter declarations of the .va file at ``path``."""
    from ..errors import CompileError
    from ..spice.osdi import read_va_text
    path = Path(path)
    try:
        source = read_va_text(path)        # a regular file of bounded size (not a FIFO or /dev/zero)
    except CompileError as exc:
        raise ParameterError(f"cannot read Verilog-A file: {exc.message}", Location(file=str(path))) from None
    return parse_va(source, str(path))


def parse_va(source: str, file: str = "<va>") -> VaModule:
    """Like :func:`read_va` on the text ``source``; ``file`` names it in errors."""
    text = blank_comments(source)
    header = _MODULE.search(text)
    if header is None:
        raise ParameterError("no 'module NAME(ports);' header found", Location(file=file))
    ports = tuple(p.strip() for p in header.group(2).split(",") if p.strip())
    params: list[VaParameter] = []
    known: dict[str, float] = {}
    for m in _PARAMETER.finditer(text, header.end()):
        attrs = _ATTRIBUTES_BEFORE.search(text, 0, m.start())
        start = attrs.start() if attrs else m.start()
        end = _statement_end(text, m.end())
        first_line = text.count("\n", 0, start) + 1
        params.extend(_parse_declaration(text[start:end], file, first_line, known))
    return VaModule(header.group(1), ports, tuple(params))


def _parse_declaration(stmt: str, file: str, first_line: int, known: dict[str, float]) -> list[VaParameter]:
    """Parameters of one declaration statement; adds their defaults to ``known``."""
    try:
        tree = _parser().parse(stmt)
    except lark.UnexpectedInput as exc:
        loc = Location(file=file, line=first_line + exc.line - 1, column=exc.column)
        raise ParameterError(f"cannot parse parameter declaration: {stmt.strip()[:80]!r}", loc) from None
    attributes, *rest = tree.children
    attrs = _attributes(attributes)
    kind = "real"
    if rest and isinstance(rest[0], lark.Token) and rest[0].type == "TYPE":
        kind = str(rest.pop(0))
    out = []
    for assignment in rest:
        prm = _assignment(assignment, kind, attrs, file, first_line, known)
        known[prm.name] = prm.default
        out.append(prm)
    return out


def _attributes(tree: lark.Tree) -> dict[str, str]:
    out: dict[str, str] = {}
    for block in tree.children:
        for attr in block.children:
            if attr is None:
                continue
            name, value = attr.children
            out[str(name)] = "" if value is None else str(value)[1:-1]
    return out


def _assignment(tree: lark.Tree, kind: str, attrs: dict[str, str], file: str, first_line: int,
                known: dict[str, float]) -> VaParameter:
    name_tok, value, *constraints = tree.children
    line = first_line + name_tok.line - 1
    loc = Location(file=file, line=line, column=name_tok.column, parameter=str(name_tok))
    ev = _Evaluator(known, loc)
    default = ev.eval(value)
    ranges = [c for c in constraints if c.data == "from_range"]
    if len(ranges) > 1:
        raise ParameterError("more than one 'from' range", loc)
    lower = upper = None
    lower_inc = upper_inc = True
    if ranges:
        left, lo, hi, right = ranges[0].children[0].children
        lo_val, hi_val = ev.eval(lo), ev.eval(hi)
        if lo_val != -math.inf:
            lower, lower_inc = lo_val, left.children[0] == "["
        if hi_val != math.inf:
            upper, upper_inc = hi_val, right.children[0] == "]"
    return VaParameter(str(name_tok), kind, default, lower, upper, lower_inc, upper_inc,
                       attrs.get("type") == "instance", attrs.get("desc", ""), attrs.get("units", ""), line)


class _Evaluator:
    """Evaluates constant expressions; names are ``inf`` or earlier parameters."""

    def __init__(self, known: dict[str, float], loc: Location):
        self.known, self.loc = known, loc

    def eval(self, tree) -> float:
        kind = tree.data
        ch = tree.children
        if kind == "number":
            return _number(str(ch[0]))
        if kind == "name":
            name = str(ch[0])
            if name == "inf":
                return math.inf
            if name not in self.known:
                raise ParameterError(f"unknown name '{name}' in a parameter expression", self.loc)
            return self.known[name]
        if kind == "neg":
            return -self.eval(ch[0])
        a, b = self.eval(ch[0]), self.eval(ch[1])
        if kind == "add":
            return a + b
        if kind == "sub":
            return a - b
        if kind == "mul":
            return a * b
        if b == 0:
            raise ParameterError("division by zero in a parameter expression", self.loc)
        return a / b


def _number(text: str) -> float:
    if text[-1] in SCALE:
        return float(text[:-1]) * SCALE[text[-1]]
    return float(text)


def lockstep_differences(model: type[DeviceModel], module: VaModule | None = None) -> list[str]:
    """Every way the .va file (or ``module``) disagrees with the twin ``model``; empty if none.

    Compared: module name, ports (``p, n`` and one terminal per state), and for
    every parameter its presence, default, finite bounds with their
    inclusiveness, and instance kind. Each message names the parameter.
    """
    va = module if module is not None else read_va(model.va_file())
    out = []
    if va.name != model.name:
        out.append(f"module is named '{va.name}', the twin '{model.name}'")
    if va.ports != model.terminals():
        out.append(f"ports {va.ports} differ from the twin's terminals {model.terminals()}")
    twin_names = [p.name for p in model.parameters]
    for name in twin_names:
        if va.parameter(name) is None:
            out.append(f"parameter '{name}': declared by the twin, missing in the .va file")
    for vp in va.parameters:
        if vp.name not in twin_names:
            out.append(f"parameter '{vp.name}' (line {vp.line}): declared in the .va file, missing in the twin")
            continue
        tp = model.parameter(vp.name)
        where = f"parameter '{vp.name}' (line {vp.line})"
        if not math.isclose(vp.default, tp.default, rel_tol=1e-12, abs_tol=0.0):
            out.append(f"{where}: default {vp.default!r} in .va, {tp.default!r} in the twin")
        for side, va_bound, tw_bound, va_inc, tw_inc in (
                ("lower", vp.lower, tp.lower, vp.lower_inclusive, tp.lower_inclusive),
                ("upper", vp.upper, tp.upper, vp.upper_inclusive, tp.upper_inclusive)):
            if va_bound != tw_bound:
                out.append(f"{where}: {side} bound {va_bound} in .va, {tw_bound} in the twin")
            elif va_bound is not None and va_inc != tw_inc:
                out.append(f"{where}: {side} bound {va_bound} is {'in' if va_inc else 'ex'}clusive in .va, "
                           f"{'in' if tw_inc else 'ex'}clusive in the twin")
        if vp.instance != tp.instance:
            out.append(f"{where}: instance parameter in {'.va' if vp.instance else 'the twin'} only")
    return out
