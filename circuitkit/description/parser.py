"""Parse .xbar descriptions into evaluated statements.

The grammar is ``grammar.lark``. Parsing resolves ``include`` (relative to the
including file, cycles rejected), evaluates ``param`` definitions in order
(``--set`` overrides replace a parameter's expression) and every expression in
the statements that follow. Everything keeps its :class:`Location` so later
stages can name the file, line and column of a bad value.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Mapping

import lark

from .. import limits
from ..cachedir import cache_root
from ..errors import DescriptionError, Location, printable
from ..units import parse_si
from . import safeio

GRAMMAR = Path(__file__).with_name("grammar.lark")

#: functions usable inside expressions; other calls are constructors (sine(...), uniform(...))
MATH = {
    "sqrt": math.sqrt, "exp": math.exp, "log": math.log, "log10": math.log10,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "abs": abs,
    "min": min, "max": max, "floor": math.floor, "ceil": math.ceil, "round": round,
}
CONSTANTS = {"pi": math.pi}      # no inf: every value is finite


def _count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n) or n != math.floor(n) \
            or not 1 <= n <= limits.MAX_LIST:
        raise ValueError(f"length must be a whole number from 1 to {limits.MAX_LIST:g}")
    return int(n)


def _fill(n, value):
    return [value] * _count(n)


def _linspace(start, stop, n):
    n = _count(n)
    return [start + (stop - start) * k / (n - 1) for k in range(n)] if n > 1 else [start]


def _rand(n, low, high, seed=0):
    import numpy as np
    for v in (low, high):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError("low and high must be finite numbers")
    if isinstance(seed, bool) or not isinstance(seed, (int, float)) or not math.isfinite(seed) \
            or seed != math.floor(seed) or not 0 <= seed <= limits.MAX_SEED:
        raise ValueError(f"seed must be a whole number from 0 to {limits.MAX_SEED}")
    return np.random.default_rng(int(seed)).uniform(low, high, _count(n)).tolist()


#: functions that build lists (read vectors whose length follows a parameter)
LISTS = {"fill": _fill, "linspace": _linspace, "rand": _rand}
_LIST_USAGE = {"fill": "fill(n, value)", "linspace": "linspace(start, stop, n)",
               "rand": "rand(n, low, high, seed=)"}


class _BracketNewlines:
    """Post-lexer: newlines inside ( ) or [ ] do not end a statement."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth = 0
        for tok in stream:
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(depth - 1, 0)
            elif tok.type == "_NL" and depth:
                continue
            yield tok


def _table_cache(grammar: str) -> str | bool:
    """Where Lark keeps the built LALR tables between processes (building them is 0.1-0.2 s of every
    command's start-up): circuitkit's cache directory (:func:`circuitkit.cachedir.cache_root`, created
    with mode 0700) when it is this user's own, never a shared temporary directory, because Lark loads the file
    with pickle. The file is named by a hash of the grammar, and Lark checks the hash of the grammar and
    options it stored inside before using the tables, so a changed grammar never reads stale ones. ``False`` (build every time) when no such directory is
    available or it is not private to this user."""
    import os
    import stat
    path = cache_root()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
        if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return False
    except OSError:
        return False
    digest = hashlib.sha256(grammar.encode()).hexdigest()[:16]
    return str(path / f"xbar-grammar-{digest}.lark")


@cache
def _parser() -> lark.Lark:
    options = dict(parser="lalr", propagate_positions=True, maybe_placeholders=True, postlex=_BracketNewlines())
    grammar = GRAMMAR.read_text()
    cache_file = _table_cache(grammar)
    if cache_file:
        try:
            return lark.Lark(grammar, cache=cache_file, **options)
        except Exception:                # an unreadable or foreign cache file: build without it
            pass
    return lark.Lark(grammar, **options)


@dataclass
class Call:
    """A constructor call in a description, e.g. ``sine(amplitude=1, freq=10k)``."""

    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    location: Location

    def __repr__(self) -> str:
        parts = [_short(a) for a in self.args[:4]] + [f"{k}={_short(v)}" for k, v in list(self.kwargs.items())[:4]]
        more = ", ..." if len(self.args) + len(self.kwargs) > 8 else ""
        return f"{self.name}({', '.join(parts)}{more})"


def _short(v) -> str:
    if isinstance(v, list):
        return f"[{len(v)} values]"
    if isinstance(v, Call):
        return f"{v.name}(...)"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


class Word(str):
    """A bare word starting with a digit (``1T1R``); behaves as a string."""


@dataclass
class Setting:
    key: str
    value: Any
    location: Location


@dataclass
class Statement:
    """One evaluated statement. ``kind`` is the keyword (``device``, ``crossbar``, ...)."""

    kind: str
    location: Location
    name: str | None = None
    nodes: tuple[str, str] | None = None
    value: Any = None
    settings: list[Setting] = field(default_factory=list)
    signals: list[tuple[str, tuple[str, ...], Location]] = field(default_factory=list)
    #: directory of the file this statement is in: its relative paths (file(), weights(), models) start there
    base: Path | None = None


@dataclass
class ParsedDescription:
    path: Path | None
    statements: list[Statement]
    params: dict[str, Any]
    files: list[Path]
    digest: str                      # sha256 of every file's text and the overrides


def _loc(file: str | None, meta) -> Location:
    line = getattr(meta, "line", None)
    col = getattr(meta, "column", None)
    return Location(file=file, line=line, column=col)


class _Budget:
    """Values created by list functions and literals across one description (all its files)."""

    def __init__(self):
        self.values = 0
        self.files = 0
        self.source_bytes = 0            # text parsed so far: the description, its includes, --set texts

    def spend_source(self, n: int, loc: Location) -> None:
        """Count ``n`` more bytes of text to parse; refuse, before parsing them, past
        :data:`~circuitkit.limits.MAX_SOURCE_BYTES` in total."""
        self.source_bytes += n
        if self.source_bytes > limits.MAX_SOURCE_BYTES:
            raise DescriptionError(
                f"the description and its includes hold {self.source_bytes:,} bytes of text so far, more than "
                f"the limit of {limits.MAX_SOURCE_BYTES:,} in total (put large data in a .npy or .csv file)", loc)

    def spend(self, n: int, ev: "_Evaluator", tree) -> None:
        self.values += n
        if self.values > limits.MAX_VALUES:
            raise ev.error(f"the description builds more than {limits.MAX_VALUES:,} list values", tree)


_CHAINS = {"add": ("add", "sub"), "sub": ("add", "sub"), "mul": ("mul", "div"), "div": ("mul", "div")}


class _Evaluator:
    """Evaluates expression trees. Long left-associative chains (``a + b + ... + z``) are folded
    iteratively; other nesting (parentheses, lists, calls, signs, powers) is limited to
    :data:`~circuitkit.limits.MAX_DEPTH` levels, so no input reaches Python's recursion limit.
    Every arithmetic result must be a finite real number."""

    def __init__(self, file: str | None, params: dict[str, Any], budget: _Budget | None = None):
        self.file = file
        self.params = params
        self.budget = budget or _Budget()

    def loc(self, tree) -> Location:
        meta = tree.meta if isinstance(tree, lark.Tree) else tree
        return _loc(self.file, meta)

    def error(self, message: str, tree) -> DescriptionError:
        return DescriptionError(message, self.loc(tree))

    def eval(self, tree, depth: int = 0) -> Any:
        if depth > limits.MAX_DEPTH:
            raise self.error(f"expression nested more than {limits.MAX_DEPTH} levels deep", tree)
        if isinstance(tree, lark.Token):
            return self._token(tree)
        kind = tree.data
        ch = tree.children
        if kind == "number":
            return self._token(ch[0])
        if kind == "word":
            return Word(str(ch[0]))
        if kind == "string":
            return str(ch[0])[1:-1]
        if kind == "name":
            name = str(ch[0])
            if name in self.params:
                return self.params[name]
            if name in CONSTANTS:
                return CONSTANTS[name]
            if name == "inf":
                raise self.error("inf: every value must be a finite number", tree)
            # a bare identifier is a symbol (e.g. differential, left, ideal)
            return Symbol(name)
        if kind == "list":
            items = [c for c in ch if c is not None]
            if len(items) > limits.MAX_LIST:
                raise self.error(f"a list may hold at most {limits.MAX_LIST:,} values", tree)
            self.budget.spend(len(items), self, tree)
            return [self.eval(c, depth + 1) for c in items]
        if kind == "neg":
            return self._finite(-self._num(self.eval(ch[0], depth + 1), ch[0], "negate"), tree, "-")
        if kind == "unary":  # pragma: no cover - "+x" collapses
            return self.eval(ch[0], depth + 1)
        if kind in _CHAINS:
            group = _CHAINS[kind]
            ops = []
            node = tree
            while isinstance(node, lark.Tree) and node.data in group:
                ops.append(node)
                node = node.children[0]
            acc = self._num(self.eval(node, depth + 1), node, ops[-1].data)
            for op in reversed(ops):
                rhs = op.children[1]
                acc = self._arith(op.data, acc, self._num(self.eval(rhs, depth + 1), rhs, op.data), op)
            return acc
        if kind == "pow":
            a = self._num(self.eval(ch[0], depth + 1), ch[0], kind)
            b = self._num(self.eval(ch[1], depth + 1), ch[1], kind)
            return self._arith("pow", a, b, tree)
        if kind == "call":
            return self._call(tree, depth)
        raise self.error(f"unexpected expression '{kind}'", tree)  # pragma: no cover

    _SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}

    def _arith(self, kind: str, a: float, b: float, tree) -> float:
        a, b = float(a), float(b)
        try:
            if kind == "add":
                r = a + b
            elif kind == "sub":
                r = a - b
            elif kind == "mul":
                r = a * b
            elif kind == "div":
                if b == 0:
                    raise self.error("division by zero", tree)
                r = a / b
            else:
                if a == 0 and b < 0:
                    raise self.error("zero to a negative power", tree)
                r = a ** b
        except OverflowError:
            raise self.error(f"arithmetic overflow in '{self._SYMBOL[kind]}'", tree) from None
        if isinstance(r, complex):
            raise self.error("a negative number to a fractional power is not a real number", tree)
        return self._finite(r, tree, self._SYMBOL[kind])

    def _finite(self, r: float, tree, op: str) -> float:
        if not math.isfinite(r):
            raise self.error(f"the result of '{op}' is not a finite number", tree)
        return r

    def _token(self, tok: lark.Token):
        if tok.type == "NUMBER":
            try:
                v = parse_si(str(tok))
            except (ValueError, OverflowError):
                v = math.inf
            if not math.isfinite(v):
                raise DescriptionError(f"number {str(tok)[:30]} is too large", self.loc(tok))
            if v == 0 and re.search(r"[1-9]", re.split(r"[eE]", str(tok))[0]):
                raise DescriptionError(f"number {str(tok)[:30]} is too small: it rounds to 0 "
                                       "(the smallest is about 1e-308)", self.loc(tok))
            return v
        return str(tok)

    def _num(self, value, tree, op: str) -> float:
        if isinstance(value, Symbol):
            raise self.error(f"unknown parameter '{value[:64]}'", tree)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(f"cannot {op} a {type(value).__name__}; expected a number", tree)
        return value

    def _call(self, tree, depth: int) -> Any:
        name = str(tree.children[0])
        args, kwargs = [], {}
        for arg in tree.children[1:]:
            if arg is None:
                continue
            if isinstance(arg, lark.Tree) and arg.data == "kwarg":
                key = str(arg.children[0])
                if key in kwargs:
                    raise self.error(f"argument '{key}' given twice in {name}(...)", arg)
                kwargs[key] = self.eval(arg.children[1], depth + 1)
            else:
                if kwargs:
                    raise self.error(f"positional argument after keyword arguments in {name}(...)", arg)
                args.append(self.eval(arg, depth + 1))
        if len(args) + len(kwargs) > 64:
            raise self.error(f"{name}(): more than 64 arguments", tree)
        if name in LISTS:
            try:
                out = LISTS[name](*args, **kwargs)
            except TypeError as exc:           # wrong arguments: say which, in the description's terms
                text = _plain(exc).replace(f"_{name}()", "").strip()
                raise self.error(f"{name}(): {text}; usage: {_LIST_USAGE[name]}", tree) from None
            except (ValueError, OverflowError, ZeroDivisionError) as exc:
                raise self.error(f"{name}(): {_plain(exc)}", tree) from None
            self.budget.spend(len(out), self, tree)
            return out
        if name in MATH and name not in self.params:
            if kwargs:
                raise self.error(f"{name}() takes no keyword arguments", tree)
            try:
                r = MATH[name](*[self._num(a, tree, name) for a in args])
            except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
                raise self.error(f"{name}(): {_plain(exc)}", tree) from None
            if isinstance(r, int):
                r = float(r)
            return self._finite(r, tree, f"{name}()")
        return Call(name, args, kwargs, self.loc(tree))


def _plain(exc: Exception) -> str:
    """An exception's message for the user, short and without repr'd values."""
    text = str(exc).split("\n")[0]
    return text[:120] if text else type(exc).__name__


class Symbol(str):
    """A bare identifier used as a value (an option such as ``differential``)."""


def check_overrides(overrides) -> dict[str, str]:
    """``overrides`` (``--set`` values) as a dict of name -> expression text, or a DescriptionError naming
    the argument: a mapping (not a ``"name=value"`` string or a list of pairs) from parameter names
    (``str``) to expressions (``str``) or finite numbers."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise DescriptionError(f"overrides must be a mapping of parameter name to value, e.g. {{'nr': '8'}}; "
                               f"got {type(overrides).__name__}", Location(parameter="overrides"))
    out = {}
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise DescriptionError(f"overrides: a parameter name must be a str, got {type(key).__name__}",
                                   Location(parameter="overrides"))
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise DescriptionError(f"overrides: the value of '{printable(key, 64)}' must be a str or a number, "
                                   f"got {type(value).__name__}", Location(parameter=key))
        if isinstance(value, float) and not math.isfinite(value):
            raise DescriptionError(f"overrides: the value of '{printable(key, 64)}' must be finite, got {value}",
                                   Location(parameter=key))
        out[key] = value if isinstance(value, str) else repr(value)
    return out


def check_path_argument(path, what: str = "description") -> Path:
    """A description's file name given to the Python API: ``str`` or ``os.PathLike`` of ``str``."""
    if isinstance(path, (bytes, bytearray)) or (isinstance(path, os.PathLike)
                                                and not isinstance(os.fspath(path), str)):
        raise DescriptionError(f"{what}: give the file name as a str or pathlib.Path, not bytes",
                               Location(parameter=what))
    if not isinstance(path, (str, os.PathLike)):
        raise DescriptionError(f"{what}: expected a file name (str or pathlib.Path), got {type(path).__name__}",
                               Location(parameter=what))
    return Path(path)


def parse_text(text: str, file: str | Path | None = None, overrides: Mapping[str, str] | None = None) -> ParsedDescription:
    """Parse description text; ``file`` names it in errors and anchors includes."""
    if not isinstance(text, str):
        raise DescriptionError(f"text: expected the description as a str, got {type(text).__name__}",
                               Location(parameter="text"))
    overrides = check_overrides(overrides)
    if file is not None:
        check_path_argument(file, "file")
        safeio.check_path_text(str(file), Location(parameter="file"), "file")
    path = Path(file).resolve() if file is not None else None
    params: dict[str, Any] = {}
    statements: list[Statement] = []
    files: list[Path] = []
    digest = hashlib.sha256()
    pending = dict(overrides or {})
    used: set[str] = set()
    quote = path is None or path.suffix.lower() == ".xbar"
    _parse_into(text, path, params, statements, files, digest, pending, used, stack=(), budget=_Budget(),
                quote=quote)
    unknown = sorted(set(pending) - used)
    if unknown:
        known = ", ".join(params) or "none"
        raise DescriptionError(f"--set names unknown parameter(s) {', '.join(unknown)} (defined: {known})",
                               Location(file=str(path) if path else None, parameter=unknown[0]))
    for key in sorted(pending):
        digest.update(f"\0set {key}={pending[key]}".encode())
    return ParsedDescription(path, statements, params, files, digest.hexdigest())


def parse_file(path: str | Path, overrides: Mapping[str, str] | None = None) -> ParsedDescription:
    path = check_path_argument(path)
    overrides = check_overrides(overrides)
    text = safeio.read_text(path, Location(file=str(path)))
    return parse_text(text, path, overrides)


def _syntax_error(exc: lark.exceptions.UnexpectedInput, text: str, file: str | None,
                  quote: bool = True) -> DescriptionError:
    """A located syntax error; ``quote`` False (a file that is not a .xbar) never echoes its contents."""
    line, col = getattr(exc, "line", None), getattr(exc, "column", None)
    if not isinstance(line, int) or line < 1:
        line, col = None, None
    if not quote:
        return DescriptionError("not a description (syntax error)", Location(file=file, line=line, column=col))
    # Lark counts lines by "\n" only: so must the snippet (splitlines() also breaks at form feeds, U+2028, ...)
    lines = text.split("\n")
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        ch = lines[line - 1][col - 1:col] if line and line <= len(lines) else ""
        msg = f"unexpected character {ch!r}" if ch else "unexpected character"
        if ch and ch.isdigit() and not ch.isascii():
            msg += " (numbers are written with the ASCII digits 0-9)"
    elif isinstance(exc, lark.exceptions.UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            msg = "unexpected end of file"
        elif tok.type == "_NL":
            msg = "unexpected end of line"
        else:
            msg = f"unexpected {tok.type.lower()} {printable(str(tok), 40)!r}"
        expected = sorted(e for e in exc.expected if not e.startswith("_") and e not in ("$END",))
        pretty = [_TOKEN_NAMES.get(e, e.lower()) for e in expected][:8]
        if pretty:
            msg += f"; expected {', '.join(pretty)}"
    else:
        msg = "syntax error"
    snippet = printable(lines[line - 1].strip(), 120) if line and line <= len(lines) else ""
    if snippet:
        msg += f"\n    {snippet}"
    return DescriptionError(msg, Location(file=file, line=line, column=col))


_TOKEN_NAMES = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "EQUAL": "'='", "LPAR": "'('",
    "RPAR": "')'", "COMMA": "','", "LBRACE": "'{'", "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'",
    "ELEMENT": "an element kind", "SECTION": "a section", "WORD": "a word", "SEMICOLON": "';'",
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'",
}


def _parse_into(text, path, params, statements, files, digest, pending, used, stack, budget, quote=True,
                where: Location | None = None):
    file = str(path) if path else None
    if path is not None:
        if path in stack:
            chain = " -> ".join(p.name for p in stack + (path,))
            raise DescriptionError(f"include cycle: {chain}", where or Location(file=file))
        files.append(path)
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) > limits.MAX_DESCRIPTION_BYTES:
        raise DescriptionError(f"description larger than {limits.MAX_DESCRIPTION_BYTES:,} bytes", Location(file=file))
    budget.spend_source(len(raw), where or Location(file=file))
    digest.update(f"\0file {path.name if path else '<text>'}\0".encode() + raw)
    # CR LF and a bare CR (old Mac files) end a line as LF does; columns are unchanged
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    _check_nesting(text, file)
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        raise _syntax_error(exc, text, file, quote) from None
    except lark.exceptions.LarkError:
        raise DescriptionError("syntax error", Location(file=file, line=1, column=1)) from None
    ev = _Evaluator(file, params, budget)
    base = path.parent if path else None

    def add(st: Statement) -> None:
        """Append a statement of this file, which knows the file's directory (its relative paths start there)."""
        st.base = base
        statements.append(st)

    for node in tree.children:
        if not isinstance(node, lark.Tree):
            continue
        kind = node.data
        loc = ev.loc(node)
        ch = node.children
        if kind == "param":
            name = str(ch[0])
            if name in pending:
                used.add(name)
                text_o = str(pending[name])
                bad = any(ch in text_o for ch in "\r\n;\\{}#") or len(text_o) > 10_000
                if not bad:
                    budget.spend_source(len(text_o.encode("utf-8", "surrogatepass")), Location(parameter=name))
                    _check_nesting(text_o, "--set")
                try:
                    tree_o = None if bad else _parser().parse(f"param {name} = {text_o}\n")
                except lark.exceptions.UnexpectedInput:
                    tree_o = None
                if tree_o is None or len(tree_o.children) != 1:
                    raise DescriptionError(f"--set {name}={printable(text_o, 60)!r}: not a single valid expression",
                                           Location(parameter=name))
                try:
                    value = _Evaluator("--set", params, budget).eval(tree_o.children[0].children[1])
                except DescriptionError as exc:
                    raise DescriptionError(f"--set {name}={printable(text_o, 60)!r}: {exc.message}",
                                           Location(file=file, line=loc.line, column=loc.column,
                                                    parameter=name)) from None
            else:
                value = ev.eval(ch[1])
            params[name] = value
        elif kind == "include":
            rel = str(ch[0])[1:-1]
            safeio.check_path_text(rel, loc, "include")
            if not rel.lower().endswith(".xbar"):
                raise DescriptionError("include names a description: a file ending in .xbar", loc)
            if len(stack) >= limits.MAX_INCLUDE_DEPTH:
                raise DescriptionError(f"includes nested more than {limits.MAX_INCLUDE_DEPTH} deep", loc)
            if len(files) >= limits.MAX_FILES:
                raise DescriptionError(f"more than {limits.MAX_FILES} included files", loc)
            base = path.parent if path else Path.cwd()
            try:
                inc = (base / rel).resolve()
            except (OSError, ValueError, RuntimeError):
                raise DescriptionError("include: cannot resolve the path", loc) from None
            inc_text = safeio.read_text(inc, loc, "include", action="include")
            _parse_into(inc_text, inc, params, statements, files, digest, pending, used,
                        stack + ((path,) if path else ()), budget, quote=inc.suffix.lower() == ".xbar", where=loc)
        elif kind in ("title", "models"):
            add(Statement(kind, loc, value=str(ch[0])[1:-1]))
        elif kind == "element":
            nodes = tuple(_node_name(n, ev) for n in ch[2:4])
            add(Statement(str(ch[0]), loc, name=str(ch[1]), nodes=nodes, value=ev.eval(ch[4])))
        elif kind in ("crossbar", "section"):
            if kind == "crossbar":
                skind, name, block = "crossbar", str(ch[0]), ch[1]
            else:
                skind, name, block = str(ch[0]), (str(ch[1]) if ch[1] is not None else None), ch[2]
            settings = []
            for s in block.children:
                if isinstance(s, lark.Tree) and s.data == "setting":
                    settings.append(Setting(str(s.children[0]), ev.eval(s.children[1]), ev.loc(s)))
            add(Statement(skind, loc, name=name, settings=settings))
        elif kind == "analysis":
            add(Statement("analysis", loc, value=ev.eval(ch[0])))
        elif kind == "record":
            sigs = []
            for s in ch:
                names = tuple(str(t) for t in s.children)
                if s.data == "signal_call":
                    sigs.append((names[0], names[1:], ev.loc(s)))
                else:
                    sigs.append((names[0], (), ev.loc(s)))
            add(Statement("record", loc, signals=sigs))


_BRACKETS = re.compile(r'"[^"\n]*"|#[^\n]*|[A-Za-z0-9_][ \t]*\(|[(\[]|[)\]]')


def _check_nesting(text: str, file: str | None) -> None:
    """Check bracket nesting on the text (strings and comments skipped) before Lark spends time and
    memory on it (the evaluator's depth limit comes only after the whole file has been parsed): calls and
    lists (``f(``, ``[``), which are expression levels, at most :data:`~circuitkit.limits.MAX_DEPTH`
    deep, as the evaluator counts them; all brackets, grouping parentheses included (which cost the
    evaluator nothing), at most :data:`~circuitkit.limits.MAX_NESTING`."""
    if text.count("(") + text.count("[") <= limits.MAX_DEPTH:
        return
    stack: list[bool] = []          # True: a call or a list (an expression level)
    levels = 0
    for m in _BRACKETS.finditer(text):
        tok = m.group()
        if tok[0] in '"#':                  # a string or a comment
            continue
        last = tok[-1]
        if last in "([":
            level = last == "[" or len(tok) > 1
            stack.append(level)
            levels += level
            if levels > limits.MAX_DEPTH or len(stack) > limits.MAX_NESTING:
                pos = m.end() - 1
                line = text.count("\n", 0, pos) + 1
                col = pos - (text.rfind("\n", 0, pos) + 1) + 1
                msg = (f"expression nested more than {limits.MAX_DEPTH} levels deep" if levels > limits.MAX_DEPTH
                       else f"brackets nested more than {limits.MAX_NESTING:,} deep")
                raise DescriptionError(msg, Location(file=file, line=line, column=col))
        elif tok in (")", "]") and stack:
            levels -= stack.pop()


def _node_name(tree, ev: _Evaluator) -> str:
    tok = tree.children[0]
    if tok.type == "NUMBER":
        if str(tok) != "0":
            raise ev.error(f"node '{tok}' is not a name; use a name, or 0 for ground", tree)
        return "0"
    name = str(tok)
    return "0" if name.lower() == "gnd" else name
