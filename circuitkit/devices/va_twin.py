"""Generate the vectorised numpy twin of a Verilog-A memristor model from its source.

``circuitkit models twin NAME.va`` prints (or writes) the twin; the model-directory
loader uses :func:`twin_from_va` for a ``.va`` without a hand-written twin.

The subset memristor models use (anything else is refused with its line and column):

* ``module NAME(p, n, <state terminals>)``: two electrical terminals, then one
  terminal per state; a state terminal ``xs`` is state ``x`` with initial-value
  instance parameter ``x0`` (its range is the state's range);
* parameter declarations with defaults and ranges (read by :mod:`va_params`);
  ``real``/``integer`` variables (0 before their first assignment, as in Verilog-A);
* ``analog function real NAME`` with ``input``s and local variables;
* statements: ``begin ... end``, ``if (...) ... else ...`` (vectorised with
  ``np.where``: both branches are evaluated on all devices and merged), assignments,
  contributions ``I(p, n) <+``, ``I(n, p) <+``, ``I(xs) <+``, and ``$bound_step(...)``;
* expressions: numbers (scale factors too), + - * / unary - ! , comparisons, && ||,
  ``?:``, ``V(a)``, ``V(a, b)``, ``$abstime``, ``$limit(value, "pnjlim", ...)`` (Newton
  limiting in the simulator; the twin takes ``value``), and the functions ``exp ln log sqrt pow
  sinh cosh tanh abs min max limexp floor ceil sin cos tan asin acos atan atan2 hypot``;
* ``ddt()`` only as ``I(xs) <+ ddt(V(xs));`` -- one unconditional ``ddt()`` per state.

The twin evaluates the transient branch (``$abstime > 0``): ``current`` is the
contribution to ``I(p, n)``; the state rate is minus the non-``ddt`` contribution
to ``I(xs)``, so ``state_derivative`` equals what the simulator integrates and
``dxdt`` adds back the GLEAK term (exactly 0 where the model has the standard leak).

The generated source only names the model's own identifiers with a ``v_`` prefix,
numbers as Python float literals and a fixed set of numpy functions, so nothing in
a ``.va`` file can make it run other code.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import Location, ParameterError, printable
from .base import GLEAK, DeviceModel, Parameter, State
from .va_params import SCALE, parse_va


class VaSubsetError(ParameterError):
    """A Verilog-A construct outside the subset the twin generator understands."""


FUNCTIONS = {
    "exp": "np.exp", "ln": "np.log", "log": "np.log10", "sqrt": "np.sqrt", "pow": "_pow", "sinh": "np.sinh",
    "cosh": "np.cosh", "tanh": "np.tanh", "abs": "np.abs", "min": "np.minimum", "max": "np.maximum",
    "limexp": "_limexp", "floor": "np.floor", "ceil": "np.ceil", "sin": "np.sin", "cos": "np.cos",
    "tan": "np.tan", "asin": "np.arcsin", "acos": "np.arccos", "atan": "np.arctan", "atan2": "np.arctan2",
    "hypot": "np.hypot",
}
ARITY = {"pow": 2, "min": 2, "max": 2, "atan2": 2, "hypot": 2}
#: the built-in Newton limiters of ``$limit`` (the twin evaluates the limited value as its argument)
LIMITERS = {"pnjlim", "typedpnjlim", "fetlim", "limvds"}
KEYWORDS = {"begin", "end", "if", "else", "analog", "function", "endfunction", "module", "endmodule",
            "input", "inout", "output", "electrical", "real", "integer", "parameter", "ground", "branch"}

_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<attr>\(\*.*?\*\))
  | (?P<directive>`[A-Za-z_]+[^\n]*)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+|[TGMKkmunpfa](?![A-Za-z0-9_]))?)
  | (?P<name>\$?[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<op><\+|==|!=|<=|>=|&&|\|\||\*\*|[-+*/()<>,;:?!=\[\]{}@#.%^&|~])
""", re.S | re.X)


@dataclass
class Tok:
    kind: str
    text: str
    line: int
    col: int


def tokenize(source: str, file: str) -> list[Tok]:
    out, pos, line, col = [], 0, 1, 1
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise VaSubsetError(f"unexpected character {source[pos]!r}", Location(file, line, col))
        text = m.group(0)
        if m.lastgroup not in ("ws", "attr", "directive"):
            out.append(Tok(m.lastgroup, text, line, col))
        nl = text.count("\n")
        if nl:
            line += nl
            col = len(text) - text.rfind("\n")
        else:
            col += len(text)
        pos = m.end()
    out.append(Tok("eof", "", line, col))
    return out


# -- syntax tree -------------------------------------------------------------------------

@dataclass
class Node:
    kind: str              # num name call V abstime unary binary cond ddt
    tok: Tok
    args: list = field(default_factory=list)
    value: object = None


@dataclass
class Stmt:
    kind: str              # block if assign contrib bound
    tok: Tok
    body: list = field(default_factory=list)     # block: statements; if: [then, else|None]
    target: object = None                        # assign: name; contrib: (a, b|None)
    expr: Node | None = None


@dataclass
class Function:
    name: str
    inputs: list[str]
    locals: list[str]
    body: Stmt


class Parser:
    def __init__(self, toks: list[Tok], file: str):
        self.t, self.k, self.file = toks, 0, file

    # helpers
    def peek(self, off: int = 0) -> Tok:
        return self.t[min(self.k + off, len(self.t) - 1)]

    def loc(self, tok: Tok) -> Location:
        return Location(self.file, tok.line, tok.col)

    def error(self, msg: str, tok: Tok | None = None):
        raise VaSubsetError(msg, self.loc(tok or self.peek()))

    def take(self, text: str | None = None, kind: str | None = None) -> Tok:
        tok = self.peek()
        if (text is not None and tok.text != text) or (kind is not None and tok.kind != kind):
            self.error(f"expected {text or kind}, found {tok.text or 'end of file'!r}")
        self.k += 1
        return tok

    def accept(self, text: str) -> bool:
        if self.peek().text == text:
            self.k += 1
            return True
        return False

    def skip_statement(self):
        while self.peek().text != ";":
            if self.peek().kind == "eof":
                self.error("missing ';'")
            self.k += 1
        self.k += 1

    def names(self) -> list[str]:
        out = [self.take(kind="name").text]
        while self.accept(","):
            out.append(self.take(kind="name").text)
        self.take(";")
        return out

    # module
    def module(self):
        while self.peek().text != "module":
            if self.peek().kind == "eof":
                self.error("no module in the file")
            self.k += 1
        self.take("module")
        name = self.take(kind="name").text
        self.take("(")
        ports = [self.take(kind="name").text]
        while self.accept(","):
            ports.append(self.take(kind="name").text)
        self.take(")")
        self.take(";")
        nodes, variables, functions, analog = set(), [], {}, None
        while not self.accept("endmodule"):
            tok = self.peek()
            if tok.text in ("inout", "input", "output"):
                self.k += 1
                self.names()
            elif tok.text == "electrical":
                self.k += 1
                nodes.update(self.names())
            elif tok.text == "parameter":
                self.skip_statement()
            elif tok.text in ("real", "integer"):
                self.k += 1
                variables += self.names()
            elif tok.text == "analog" and self.peek(1).text == "function":
                fn = self.function()
                functions[fn.name] = fn
            elif tok.text == "analog":
                if analog is not None:
                    self.error("a second analog block", tok)
                self.k += 1
                analog = self.statement()
            elif tok.kind == "eof":
                self.error("missing endmodule")
            else:
                self.error(f"'{tok.text}' is outside the twin generator's subset", tok)
        if analog is None:
            self.error("module has no analog block")
        return name, ports, nodes, variables, functions, analog

    def function(self) -> Function:
        self.take("analog")
        self.take("function")
        if self.peek().text in ("real", "integer"):
            self.k += 1
        name = self.take(kind="name").text
        self.take(";")
        inputs, local = [], []
        while self.peek().text in ("input", "real", "integer"):
            kind = self.take().text
            (inputs if kind == "input" else local).extend(self.names())
        body = self.statement()
        self.take("endfunction")
        return Function(name, inputs, [v for v in local if v not in inputs], body)

    # statements
    def statement(self) -> Stmt:
        tok = self.peek()
        if tok.text == "begin":
            self.k += 1
            if self.accept(":"):
                self.take(kind="name")
            body = []
            while not self.accept("end"):
                if self.peek().kind == "eof":
                    self.error("missing 'end'", tok)
                body.append(self.statement())
            return Stmt("block", tok, body)
        if tok.text == "if":
            self.k += 1
            self.take("(")
            cond = self.expr()
            self.take(")")
            then = self.statement()
            other = self.statement() if self.accept("else") else None
            return Stmt("if", tok, [then, other], expr=cond)
        if tok.text == "$bound_step":
            self.k += 1
            self.take("(")
            e = self.expr()
            self.take(")")
            self.take(";")
            return Stmt("bound", tok, expr=e)
        if tok.kind == "name" and tok.text == "I" and self.peek(1).text == "(":
            self.k += 2
            a = self.take(kind="name").text
            b = self.take(kind="name").text if self.accept(",") else None
            self.take(")")
            self.take("<+")
            e = self.expr()
            self.take(";")
            return Stmt("contrib", tok, target=(a, b), expr=e)
        if tok.kind == "name" and self.peek(1).text == "=" and tok.text not in KEYWORDS and not tok.text.startswith("$"):
            self.k += 2
            e = self.expr()
            self.take(";")
            return Stmt("assign", tok, target=tok.text, expr=e)
        if tok.text == ";":
            self.k += 1
            return Stmt("block", tok, [])
        self.error(f"'{tok.text}' is outside the twin generator's subset "
                   "(supported: begin/end, if/else, assignments, I() <+, $bound_step)", tok)

    # expressions (precedence climbing)
    def expr(self) -> Node:
        cond = self.binary(0)
        if self.peek().text == "?":
            tok = self.take("?")
            a = self.expr()
            self.take(":")
            b = self.expr()
            return Node("cond", tok, [cond, a, b])
        return cond

    LEVELS = [("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "/")]

    def binary(self, level: int) -> Node:
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek().text in self.LEVELS[level]:
            tok = self.take()
            right = self.binary(level + 1)
            left = Node("binary", tok, [left, right], tok.text)
        return left

    def unary(self) -> Node:
        tok = self.peek()
        if tok.text in ("-", "+", "!"):
            self.k += 1
            return Node("unary", tok, [self.unary()], tok.text)
        base = self.primary()
        if self.peek().text == "**":
            tok = self.take()
            return Node("call", tok, [base, self.unary()], "pow")
        return base

    def primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "number":
            self.k += 1
            m = re.fullmatch(r"(.*?)([TGMKkmunpfa]?)", tok.text)
            value = float(m.group(1)) * SCALE.get(m.group(2), 1.0) if m.group(2) else float(tok.text)
            return Node("num", tok, value=value)
        if tok.text == "(":
            self.k += 1
            e = self.expr()
            self.take(")")
            return e
        if tok.text == "$abstime":
            self.k += 1
            return Node("abstime", tok)
        if tok.kind == "name" and tok.text not in KEYWORDS:
            self.k += 1
            if self.peek().text != "(" and tok.text.startswith("$"):
                self.error(f"'{tok.text}' is outside the twin generator's subset", tok)
            if self.peek().text != "(":
                return Node("name", tok, value=tok.text)
            self.take("(")
            if tok.text == "$limit":
                # $limit(value, "pnjlim" | "fetlim" | ..., args): a simulator's Newton limiting, which steers
                # the iterations and leaves the converged equations alone -- the twin takes the value
                e = self.expr()
                self.take(",")
                how = self.take(kind="string")
                if how.text.strip('"') not in LIMITERS:
                    self.error(f"$limit: limiter {how.text} is outside the twin generator's subset "
                               f"(supported: {', '.join(sorted(LIMITERS))})", how)
                while self.accept(","):
                    self.expr()
                self.take(")")
                return e
            if tok.text == "V":
                a = self.take(kind="name").text
                b = self.take(kind="name").text if self.accept(",") else None
                self.take(")")
                return Node("V", tok, value=(a, b))
            args = [] if self.peek().text == ")" else [self.expr()]
            while self.accept(","):
                args.append(self.expr())
            self.take(")")
            if tok.text == "ddt":
                if len(args) != 1:
                    self.error("ddt() takes one argument", tok)
                return Node("ddt", tok, args)
            return Node("call", tok, args, tok.text)
        self.error(f"'{tok.text or 'end of file'}' is outside the twin generator's subset", tok)


# -- code generation -----------------------------------------------------------------------

@dataclass
class Generated:
    name: str
    source: str                  # Python source of the twin module
    states: tuple[State, ...]
    parameters: tuple[Parameter, ...]


class _Gen:
    def __init__(self, file, ports, nodes, variables, functions, params, states):
        self.file, self.ports, self.nodes = file, ports, nodes
        self.variables, self.functions, self.params = variables, functions, params
        self.states = states                      # terminal -> index
        self.tmp = 0
        self.lines: list[str] = []

    def loc(self, tok):
        return Location(self.file, tok.line, tok.col)

    def fresh(self, stem):
        self.tmp += 1
        return f"_{stem}{self.tmp}"

    def expr(self, e: Node, scope: set[str]) -> str:
        k = e.kind
        if k == "num":
            return repr(float(e.value))
        if k == "abstime":
            return "1.0"                           # the twin is the transient (t > 0) branch
        if k == "name":
            name = e.value
            if name in scope:
                return f"v_{_ident(name)}"
            if name in self.params:
                return f"p[{name!r}]"
            raise VaSubsetError(f"'{name}' is not a parameter or variable", self.loc(e.tok))
        if k == "V":
            a, b = e.value
            return f"({self.node(a, e.tok)} - {self.node(b, e.tok)})" if b else self.node(a, e.tok)
        if k == "unary":
            inner = self.expr(e.args[0], scope)
            return f"np.logical_not({inner})" if e.value == "!" else f"({e.value}{inner})"
        if k == "binary":
            a, b = (self.expr(x, scope) for x in e.args)
            op = {"&&": "np.logical_and", "||": "np.logical_or"}.get(e.value)
            return f"{op}({a}, {b})" if op else f"({a} {e.value} {b})"
        if k == "cond":
            c, a, b = (self.expr(x, scope) for x in e.args)
            return f"np.where({c}, {a}, {b})"
        if k == "ddt":
            raise VaSubsetError("ddt() only as a whole contribution 'I(xs) <+ ddt(V(xs));' on a state terminal",
                                self.loc(e.tok))
        if k == "call":
            name = e.value
            args = [self.expr(x, scope) for x in e.args]
            if name in self.functions:
                fn = self.functions[name]
                if len(args) != len(fn.inputs):
                    raise VaSubsetError(f"{name}() takes {len(fn.inputs)} arguments", self.loc(e.tok))
                return f"f_{_ident(name)}({', '.join(args)})"
            if name not in FUNCTIONS:
                raise VaSubsetError(f"function '{name}' is outside the twin generator's subset "
                                    f"(supported: {', '.join(sorted(FUNCTIONS))})", self.loc(e.tok))
            if len(args) != ARITY.get(name, 1):
                raise VaSubsetError(f"{name}() takes {ARITY.get(name, 1)} argument(s)", self.loc(e.tok))
            return f"{FUNCTIONS[name]}({', '.join(args)})"
        raise VaSubsetError("unsupported expression", self.loc(e.tok))

    def node(self, name, tok):
        if name == self.ports[0]:
            return "_v"
        if name == self.ports[1]:
            return "_zero"
        if name in self.states:
            return f"_x[{self.states[name]}]"
        raise VaSubsetError(f"V({name}): only the two terminals and state terminals can be probed", self.loc(tok))

    def assigned(self, s: Stmt) -> list[str]:
        if s is None:
            return []
        if s.kind == "assign":
            return [s.target]
        if s.kind == "contrib":
            return [self.contrib_var(s)]
        if s.kind == "bound":
            return ["_bound"]
        out = []
        for b in s.body:
            for v in self.assigned(b):
                if v not in out:
                    out.append(v)
        return out

    def contrib_var(self, s: Stmt) -> str:
        a, b = s.target
        if (a, b) == (self.ports[0], self.ports[1]) or (a, b) == (self.ports[1], self.ports[0]):
            return "_ipn"
        if b is None and a in self.states:
            return f"_r{self.states[a]}"
        raise VaSubsetError(f"contribution to I({a}{', ' + b if b else ''}): only I({self.ports[0]}, "
                            f"{self.ports[1]}) and I(<state terminal>) are supported", self.loc(s.tok))

    def stmt(self, s: Stmt, scope: set[str], ind: str, cond: bool):
        out = self.lines
        if s.kind == "block":
            for b in s.body:
                self.stmt(b, scope, ind, cond)
            if not s.body:
                out.append(f"{ind}pass")
        elif s.kind == "assign":
            if s.target not in scope:
                raise VaSubsetError(f"assignment to '{s.target}', which is not a declared variable", self.loc(s.tok))
            out.append(f"{ind}v_{_ident(s.target)} = {self.expr(s.expr, scope)} + _zero")
        elif s.kind == "bound":
            out.append(f"{ind}_bound = np.minimum(_bound, {self.expr(s.expr, scope)})")
        elif s.kind == "contrib":
            var = self.contrib_var(s)
            if s.expr.kind == "ddt":
                a = s.target[0]
                arg = s.expr.args[0]
                if var == "_ipn" or not (arg.kind == "V" and arg.value == (a, None)):
                    raise VaSubsetError(f"ddt() only as I({a}) <+ ddt(V({a})) on a state terminal", self.loc(s.expr.tok))
                if cond:
                    raise VaSubsetError("ddt() under a condition: use one unconditional ddt() per state "
                                        "and put only the resistive part under the condition", self.loc(s.expr.tok))
                self.ddt_seen.add(a)
                return
            sign = "-" if s.target == (self.ports[1], self.ports[0]) else "+"
            out.append(f"{ind}{var} = {var} {sign} ({self.expr(s.expr, scope)})")
        elif s.kind == "if":
            then, other = s.body
            names = [n for n in self.assigned(then) + self.assigned(other)]
            names = list(dict.fromkeys(names))
            py = [n if n.startswith("_") else f"v_{_ident(n)}" for n in names]
            m = self.fresh("m")
            out.append(f"{ind}{m} = np.asarray({self.expr(s.expr, scope)}, dtype=bool)")
            saved = {n: self.fresh("s") for n in py}
            for n in py:
                out.append(f"{ind}{saved[n]} = {n}")
            self.stmt(then, scope, ind, True)
            done = {n: self.fresh("a") for n in py}
            for n in py:
                out.append(f"{ind}{done[n]} = {n}")
                out.append(f"{ind}{n} = {saved[n]}")
            if other is not None:
                self.stmt(other, scope, ind, True)
            for n in py:
                out.append(f"{ind}{n} = np.where({m}, {done[n]}, {n})")
        else:
            raise VaSubsetError("unsupported statement", self.loc(s.tok))

    def function(self, fn: Function):
        scope = set(fn.inputs) | set(fn.locals) | {fn.name}
        self.lines.append(f"def f_{_ident(fn.name)}({', '.join('v_' + _ident(a) for a in fn.inputs)}):")
        ind = "    "
        zero_src = " + ".join(f"0.0 * np.asarray(v_{_ident(a)}, dtype=float)" for a in fn.inputs) or "0.0"
        self.lines.append(f"{ind}_zero = {zero_src}")
        for v in fn.locals + [fn.name]:
            self.lines.append(f"{ind}v_{_ident(v)} = _zero")
        self.stmt(fn.body, scope, ind, False)
        self.lines.append(f"{ind}return v_{_ident(fn.name)}")
        self.lines.append("")


def _ident(name: str) -> str:
    """A Verilog-A identifier as a Python one (``$`` is legal in Verilog-A names only)."""
    return name.replace("$", "_S_")


def _class_name(name: str) -> str:
    return "Twin_" + re.sub(r"\W", "_", name)


#: largest Verilog-A source the generator reads (a memristor model is a few kB)
MAX_SOURCE_CHARS = 1_000_000


def generate(source: str, file: str = "<va>") -> Generated:
    """Parse ``source`` and return the Python source of its twin (refusing what is outside the subset)."""
    if len(source) > MAX_SOURCE_CHARS:
        raise VaSubsetError(f"Verilog-A file of {len(source)} characters is larger than the twin generator "
                            f"reads ({MAX_SOURCE_CHARS})", Location(file))
    try:
        return _generate(source, file)
    except RecursionError:
        raise VaSubsetError("expressions or statements nested too deeply for the twin generator",
                            Location(file)) from None


def _generate(source: str, file: str) -> Generated:
    module = parse_va(source, file)
    parser = Parser(tokenize(source, file), file)
    name, ports, nodes, variables, functions, analog = parser.module()
    if len(ports) < 2:
        raise VaSubsetError(f"module '{name}' needs two terminals (p, n) first", Location(file, 1, 1))
    params = {p.name: p for p in module.parameters}
    states: dict[str, int] = {}
    state_list = []
    for term in ports[2:]:
        if not term.endswith("s") or len(term) < 2:
            raise VaSubsetError(f"state terminal '{term}' must be named <state>s (e.g. xs for state x)",
                                Location(file, parser.t[0].line, 1))
        sname = term[:-1]
        init = params.get(f"{sname}0")
        if init is None or not init.instance:
            raise VaSubsetError(f"state '{sname}' needs an instance parameter '{sname}0' (its initial value)",
                                Location(file, 1, 1))
        lo = 0.0 if init.lower is None else init.lower
        hi = 1.0 if init.upper is None else init.upper
        states[term] = len(state_list)
        state_list.append(State(sname, f"{sname}0", init.description, lo, hi, None))
    gen = _Gen(file, ports, nodes, variables, functions, params, states)
    gen.ddt_seen = set()
    for fn in functions.values():
        gen.function(fn)
    fn_lines = gen.lines
    gen.lines = []
    ind = "    "
    scope = set(variables)
    gen.stmt(analog, scope, ind, False)
    missing = [t for t in states if t not in gen.ddt_seen]
    if missing:
        raise VaSubsetError(f"state terminal '{missing[0]}' has no 'I({missing[0]}) <+ ddt(V({missing[0]}));'",
                            Location(file, analog.tok.line, analog.tok.col))
    body = gen.lines
    pdefs = []
    for prm in module.parameters:
        if not math.isfinite(float(prm.default)):
            raise VaSubsetError(f"parameter '{prm.name}': its default ({float(prm.default)}) is not a finite number",
                                Location(file))
        pdefs.append(f"        Parameter({prm.name!r}, {float(prm.default)!r}, {prm.units!r}, {prm.description!r}, "
                     f"{_num(prm.lower)}, {_num(prm.upper)}, {prm.lower_inclusive!r}, {prm.upper_inclusive!r}, "
                     f"{prm.instance!r}),")
    sdefs = [f"        State({s.name!r}, {s.init!r}, {s.description!r}, {s.lower!r}, {s.upper!r}, None),"
             for s in state_list]
    cls = _class_name(name)
    head = [
        # the file name is the user's: only ever written as a literal (repr), never as code or docstring text
        repr(f"Numpy twin of {printable(Path(file).name, 120)}, generated from its Verilog-A by "
             "circuitkit.devices.va_twin."),
        "import numpy as np",
        "",
        "from circuitkit.devices.base import DeviceModel, Parameter, State",
        "",
        "",
        "def _pow(a, b):",
        "    return np.power(np.asarray(a, dtype=float), b)",
        "",
        "",
        "def _limexp(a):",
        "    a = np.asarray(a, dtype=float)",
        "    return np.where(a < 80.0, np.exp(np.minimum(a, 80.0)), np.exp(80.0) * (1.0 + a - 80.0))",
        "",
        "",
    ]
    ev = [
        "def _evaluate(v, x, p):",
        "    _v = np.asarray(v, dtype=float)",
        f"    _x = np.asarray(x, dtype=float).reshape({max(len(state_list), 1)}, -1)" if state_list else "    pass",
        "    _zero = np.zeros(_v.shape)",
        "    _ipn = _zero",
        "    _bound = np.full(_v.shape, np.inf)",
    ] + [f"    _r{k} = _zero" for k in range(len(state_list))] \
      + [f"    v_{_ident(name_)} = _zero" for name_ in variables] \
      + ["    with np.errstate(all='ignore'):"] + ["    " + line for line in body] + [
        f"    return _ipn, [{', '.join(f'_r{k}' for k in range(len(state_list)))}], _bound",
        "",
        "",
        "_last = [None]",
        "",
        "",
        "def _cached(v, x, p):",
        "    # current() and dxdt() are usually asked for at the same point, one after the other",
        "    v = np.array(v, dtype=float)",
        "    x = np.array(x, dtype=float)",
        "    last = _last[0]",
        "    if last is not None and last[2] is p and last[0].shape == v.shape and last[1].shape == x.shape \\",
        "            and np.array_equal(last[0], v) and np.array_equal(last[1], x):",
        "        return last[3]",
        "    out = _evaluate(v, x, p)",
        "    _last[0] = (v, x, p, out)",
        "    return out",
        "",
        "",
        f"class {cls}(DeviceModel):",
        f"    name = {name!r}",
        f"    description = {('generated twin of ' + printable(Path(file).name, 120))!r}",
        "    generated = True",
        "    parameters = (",
    ] + pdefs + ["    )", "    states = ("] + sdefs + ["    )", "",
        "    @staticmethod",
        "    def current(v, x, p):",
        "        return _cached(v, x, p)[0].copy()",
        "",
        "    @staticmethod",
        "    def dxdt(v, x, p):",
        "        v = np.asarray(v, dtype=float)",
        "        _, r, _ = _cached(v, x, p)",
        f"        x = np.asarray(x, dtype=float).reshape({len(state_list)}, -1)",
        f"        inits = {[s.init for s in state_list]!r}",
        f"        return np.array([-r[k] + {GLEAK!r} * (x[k] - p[inits[k]]) for k in range({len(state_list)})])"
        f".reshape({len(state_list)}, -1)",
        "",
        "    @staticmethod",
        "    def va_bound_step(v, x, p):",
        "        return _evaluate(v, x, p)[2]",
        "",
        f"TWIN = {cls}",
        "",
    ]
    return Generated(name, "\n".join(head + fn_lines + [""] + ev), tuple(state_list), ())


def _num(value):
    """A bound as Python source: None, a finite literal, or float('inf') / float('-inf')."""
    if value is None:
        return "None"
    v = float(value)
    if math.isnan(v):
        raise VaSubsetError("a parameter range bound is not a number")
    return repr(v) if math.isfinite(v) else f"float({repr(v)!r})"



def twin_from_va(path: str | Path, va_dir: Path | None = None) -> type[DeviceModel]:
    """Generate, compile and return the twin class of ``path`` (not registered)."""
    path = Path(path)
    try:
        if not path.is_file():
            raise VaSubsetError("not a regular file", Location(str(path)))
        size = path.stat().st_size
        if size > MAX_SOURCE_CHARS:
            raise VaSubsetError(f"Verilog-A file of {size} bytes is larger than the twin generator reads "
                                f"({MAX_SOURCE_CHARS})", Location(str(path)))
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise VaSubsetError(f"cannot read Verilog-A file: {exc.__class__.__name__}", Location(str(path))) from None
    gen = generate(source, str(path))
    namespace: dict = {"__name__": f"circuitkit_generated_twins.{gen.name}"}
    try:
        code = compile(gen.source, f"<twin of {path.name}>", "exec")
    except (SyntaxError, RecursionError, MemoryError):
        raise VaSubsetError("the generated twin does not compile (nesting too deep?)", Location(str(path))) from None
    exec(code, namespace)  # noqa: S102 -- our own generated code
    cls = namespace["TWIN"]
    cls.va_dir = (va_dir or path.parent).resolve()
    cls.states = tuple(_with_on_bound(cls, s, k) for k, s in enumerate(cls.states))
    return cls


def _with_on_bound(cls, s: State, k: int) -> State:
    """Which end of a state's range conducts more, measured on the twin at a 0.1 V read."""
    p = cls.resolve({})
    x = np.array([[float(p[t.init]) for t in cls.states]] * 2, dtype=float).T
    x[k] = [s.lower, s.upper]
    with np.errstate(all="ignore"):
        i = np.abs(np.asarray(cls.current(np.full(2, 0.1), x, p), dtype=float))
    on = None if not np.all(np.isfinite(i)) or i[0] == i[1] else ("upper" if i[1] > i[0] else "lower")
    return State(s.name, s.init, s.description, s.lower, s.upper, on)


# -- portability rule of `models check` --------------------------------------------------------

#: constructs a portable (OpenVAF/OSDI, any simulator) memristor model must not use
NON_PORTABLE = {
    "$random": "random numbers differ between simulators and runs (vary parameters per instance instead)",
    "transition": "transition() is implemented differently (or not at all) by OSDI simulators",
    "slew": "slew() is implemented differently (or not at all) by OSDI simulators",
    "idt": "idt() keeps state outside the circuit equations: integrate on a state node with ddt()",
    "absdelay": "absdelay() keeps history between steps",
    "last_crossing": "last_crossing() keeps state between steps",
    "$table_model": "table models read files at run time",
    "@": "events (@(cross), @(timer), @(initial_step)) run at different times in different simulators "
         "and variables set there carry hidden state between steps",
}
_PREFIXES = {"$rdist_": "random numbers differ between simulators and runs", "laplace_": "laplace filters "
             "are not portable", "zi_": "z-domain filters are not portable"}


def portability_issues(source: str, file: str = "<va>") -> list[str]:
    """Non-portable patterns in a Verilog-A source, each as ``file:line:col: message``."""
    out: list[str] = []
    try:
        toks = tokenize(source, file)
    except VaSubsetError as exc:
        return [f"{exc.location}: {exc.message}"]
    for t in toks:
        why = NON_PORTABLE.get(t.text) or next((m for p, m in _PREFIXES.items() if t.text.startswith(p)), None)
        if why and (t.kind == "name" or t.text == "@"):
            out.append(f"{file}:{t.line}:{t.col}: '{t.text}': {why}")
    try:
        name, ports, nodes, variables, functions, analog = Parser(toks, file).module()
    except VaSubsetError:
        return out                       # the twin generator reports the construct it cannot read
    ddts: dict[str, list[Tok]] = {}

    def walk(s: Stmt, cond: bool, assigned: set[str]) -> set[str]:
        if s is None:
            return set(assigned)
        if s.kind == "block":
            for b in s.body:
                assigned = walk(b, cond, assigned)
            return assigned
        if s.kind == "if":
            reads(s.expr, assigned)
            a = walk(s.body[0], True, set(assigned))
            b = walk(s.body[1], True, set(assigned))
            return a & b
        if s.expr is not None:
            reads(s.expr, assigned, cond, s)
        if s.kind == "assign":
            return assigned | {s.target}
        return assigned

    def reads(e: Node, assigned: set[str], cond: bool = False, stmt: Stmt | None = None):
        if e.kind == "name" and e.value in variables and e.value not in assigned:
            out.append(f"{file}:{e.tok.line}:{e.tok.col}: variable '{e.value}' is read before it is assigned "
                       "on every path: its value would carry over from the previous evaluation (hidden state "
                       "between steps, evaluated differently by each simulator)")
        if e.kind == "ddt":
            if cond:
                out.append(f"{file}:{e.tok.line}:{e.tok.col}: ddt() under a condition: OpenVAF makes one "
                           "implicit equation per ddt(), and a simulator may start the unused one's charge at 0; "
                           "use one unconditional ddt() per state and put only the resistive part under the if")
            if stmt is not None and stmt.kind == "contrib":
                ddts.setdefault(stmt.target[0], []).append(e.tok)
        for a in e.args:
            if isinstance(a, Node):
                reads(a, assigned, cond, stmt)

    walk(analog, False, set())
    for node, where in ddts.items():
        for t in where[1:]:
            out.append(f"{file}:{t.line}:{t.col}: a second ddt() on '{node}': use exactly one per state equation")
    return sorted(set(out), key=lambda s: [int(x) if x.isdigit() else x for x in re.split(r":(\d+):(\d+):", s)[:3]])
