"""Read and check a sweep file (TOML).

A sweep file names a description, the parameters to vary, the engines and
the metrics::

    name        = "ir_drop"                 # default: the file's stem
    description = "read_array.xbar"         # relative to this file
    engines     = ["behavioural"]           # "spice", "behavioural" or both
    metrics     = ["read_error", "energy"]  # default: every metric that applies
    zip         = [["rows", "cols"]]        # parameters that vary together
    mode        = "product"                 # or "zip": every parameter together
    tolerance   = 0.01                      # cross-check pass/fail threshold
    timeout     = 3600                      # seconds per ngspice run
    backend     = "batch"                   # ngspice backend: batch or shared
    keep_netlists = false                   # keep netlists + logs in OUT/netlists/<key>/

    [parameters]
    rows = [8, 16, 32, 64, 128]
    cols = [8, 16, 32, 64, 128]
    rw   = { logrange = [0.5, 8], factor = 2 }

Every problem found here is a :class:`SweepError` naming the sweep file and
the line of the offending key: tomllib's own syntax errors carry a line, and
semantic errors find their key's line by scanning the text.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CircuitkitError, LocatedError, Location, printable
from ..engines import ENGINES
from .grid import GridError, Point, Value, combine, expand_values, format_value

METRICS = {
    "read_error": "read outputs against the ideal product: relative RMS and max current error, ADC code error",
    "cross_check": "behavioural against SPICE: worst relative RMS signal error, column current error, "
                   "ADC codes that differ, speed-up (needs both engines)",
    "wall_time": "wall time of each engine",
    "energy": "energy drawn from the independent voltage sources (and the mean power)",
    "write": "state change of the programmed cell(s) and the disturb of half-selected and other cells",
}
TOP_KEYS = ("name", "description", "engines", "metrics", "zip", "mode", "tolerance", "timeout", "backend",
            "keep_netlists", "models_dir", "parameters")
#: table columns a parameter may not be called
RESERVED = ("point", "status", "error", "key", "description_hash", "circuitkit_version", "ngspice_version",
            "engines", "run_s")
#: a sweep's name (it names its output directory results/sweeps/NAME): network sweeps use it too
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class SweepError(LocatedError):
    """A sweep file (or its output directory) that cannot be run; the location names the file and line."""


@dataclass
class SweepSpec:
    path: Path
    text: str
    name: str
    description: Path
    engines: tuple[str, ...]
    metrics: tuple[str, ...] | None          # None: every metric that applies to the circuit
    parameters: dict[str, list[Value]]
    zip_groups: list[list[str]] = field(default_factory=list)
    mode: str = "product"
    tolerance: float = 0.01
    timeout: float = 3600.0
    backend: str = "batch"
    keep_netlists: bool = False
    models_dir: Path | None = None
    points: list[Point] = field(default_factory=list)

    def location(self, key: str | None = None, table: str | None = None) -> Location:
        """The sweep file and the line where ``key`` (in ``table``) is set."""
        return Location(file=str(self.path), line=key_line(self.text, key, table) if key else None)

    def param_location(self, name: str) -> Location:
        return Location(file=str(self.path), line=key_line(self.text, name, "parameters"), parameter=name)

    def error(self, message: str, key: str | None = None, table: str | None = None) -> SweepError:
        return SweepError(message, self.location(key, table))


# -- finding lines ------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")


def key_line(text: str, key: str | None, table: str | None = None) -> int | None:
    """1-based line where ``key`` is assigned inside ``[table]`` (top level if None).

    Falls back to the table's header line, or ``None`` if neither is found.
    Understands ``key = ...``, ``"key" = ...`` and dotted ``table.key = ...``.
    """
    current: str | None = None
    header_line = None
    quoted = re.escape(key or "")
    direct = re.compile(rf"""^\s*(?:{quoted}|"{quoted}"|'{quoted}')\s*=""")
    dotted = re.compile(rf"""^\s*{re.escape(table or '')}\s*\.\s*(?:{quoted}|"{quoted}")\s*=""") if table else None
    for n, line in enumerate(text.splitlines(), start=1):
        m = _HEADER.match(line)
        if m and not line.lstrip().startswith("[["):
            current = m.group(1).strip().strip('"')
            if table is not None and current == table and header_line is None:
                header_line = n
            continue
        if key is None:
            continue
        if current == table and direct.match(line):
            return n
        if current is None and dotted is not None and dotted.match(line):
            return n
    return header_line


def _toml_error(exc: tomllib.TOMLDecodeError, path: Path, text: str) -> SweepError:
    msg = str(exc)
    m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
    line = col = None
    if m:
        line, col = int(m.group(1)), int(m.group(2))
        msg = msg[:m.start()].strip()
    elif "end of document" in msg:                 # e.g. an unclosed array: point at the last line
        msg = msg.replace("(at end of document)", "").strip() + " (at the end of the file)"
        line = max(1, len(text.rstrip().splitlines()))
    return SweepError(f"malformed TOML: {msg}", Location(file=str(path), line=line, column=col))


# -- loading ------------------------------------------------------------------------

def load_spec(path: str | Path) -> SweepSpec:
    """Parse, check and expand a sweep file (the description is parsed too, to check names)."""
    from ..description import safeio
    from ..errors import DescriptionError
    path = Path(path)
    try:            # a regular file of at most 4 MB, UTF-8 (located by line and column when not)
        text = safeio.read_text(path, Location(file=str(path)), "sweep file")
    except DescriptionError as exc:
        raise SweepError(exc.message, exc.location) from None
    return parse_spec(text, path)


def parse_spec(text: str, path: Path) -> SweepSpec:
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, path, text) from None
    loc = lambda key, table=None: Location(file=str(path), line=key_line(text, key, table))  # noqa: E731
    from ..tomlkeys import MAX_INT, oversized_int
    huge = oversized_int(data)
    if huge is not None:
        raise SweepError(f"'{printable(huge, 200)}': an integer beyond +-{MAX_INT} (64 bits)",
                         Location(file=str(path)))

    for key in data:
        if key not in TOP_KEYS:
            raise SweepError(f"unknown key '{key}' (known: {', '.join(TOP_KEYS)})", loc(key))

    def get(key, types, default=None, required=False, what=None):
        if key not in data:
            if required:
                raise SweepError(f"missing '{key}'" + (f" ({what})" if what else ""), Location(file=str(path)))
            return default
        v = data[key]
        allowed = types if isinstance(types, tuple) else (types,)
        if not isinstance(v, allowed) or (isinstance(v, bool) and bool not in allowed):
            raise SweepError(f"'{key}' must be {what or _type_names(types)}, got {v!r}", loc(key))
        return v

    name = get("name", str, path.stem, what="a name (letters, digits, '_', '-', '.')")
    if not NAME.match(name):
        raise SweepError(f"name {name!r} is not usable as a directory name "
                         "(letters, digits, '_', '-', '.'; must start with a letter or digit)", loc("name"))

    desc_text = get("description", str, required=True, what="the description file, relative to the sweep file")
    description = Path(desc_text)
    if not description.is_absolute():
        description = path.parent / description
    if not description.is_file():
        raise SweepError(f"description '{desc_text}' not found (looked for {description})", loc("description"))

    engines = get("engines", (list, str), ["behavioural"], what="a list of engines")
    engines = [engines] if isinstance(engines, str) else engines
    if not engines:
        raise SweepError(f"engines is empty (use some of {', '.join(ENGINES)})", loc("engines"))
    for e in engines:
        if not isinstance(e, str) or e not in ENGINES:
            raise SweepError(f"unknown engine {e!r} (known: {', '.join(ENGINES)})", loc("engines"))
    if len(set(engines)) != len(engines):
        raise SweepError("an engine is listed twice", loc("engines"))
    engines = tuple(sorted(engines, key=ENGINES.index))     # spice first: it is the reference

    metrics = get("metrics", (list, str), None, what="a list of metric names")
    if metrics is not None:
        metrics = [metrics] if isinstance(metrics, str) else metrics
        if not metrics:
            raise SweepError("metrics is empty (leave it out to record every metric that applies)", loc("metrics"))
        for m in metrics:
            if not isinstance(m, str) or m not in METRICS:
                raise SweepError(f"unknown metric {m!r} (known: {', '.join(METRICS)})", loc("metrics"))
        if "cross_check" in metrics and len(engines) < 2:
            raise SweepError("metric 'cross_check' needs engines = [\"spice\", \"behavioural\"]", loc("metrics"))
        metrics = tuple(dict.fromkeys(metrics))

    mode = get("mode", str, "product", what="\"product\" or \"zip\"")
    if mode not in ("product", "zip"):
        raise SweepError(f"mode must be \"product\" or \"zip\", got {mode!r}", loc("mode"))
    zip_groups = get("zip", list, [], what="a list of lists of parameter names, e.g. [[\"rows\", \"cols\"]]")
    if zip_groups and all(isinstance(g, str) for g in zip_groups):
        zip_groups = [zip_groups]
    if not all(isinstance(g, list) and all(isinstance(n, str) for n in g) for g in zip_groups):
        raise SweepError("zip must be a list of lists of parameter names, e.g. [[\"rows\", \"cols\"]]", loc("zip"))

    tolerance = float(get("tolerance", (int, float), 0.01, what="a number"))
    if not tolerance > 0:
        raise SweepError(f"tolerance must be > 0, got {tolerance}", loc("tolerance"))
    timeout = float(get("timeout", (int, float), 3600.0, what="a number of seconds"))
    if not timeout > 0:
        raise SweepError(f"timeout must be > 0 seconds, got {timeout}", loc("timeout"))
    backend = get("backend", str, "batch", what="\"batch\" or \"shared\"")
    if backend not in ("batch", "shared"):
        raise SweepError(f"backend must be \"batch\" or \"shared\", got {backend!r}", loc("backend"))
    keep = get("keep_netlists", bool, False, what="true or false")
    models_dir = get("models_dir", str, None, what="a directory, relative to the sweep file")
    if models_dir is not None:
        md = Path(models_dir)
        md = md if md.is_absolute() else path.parent / md
        if not md.is_dir():
            raise SweepError(f"models_dir '{models_dir}' is not a directory", loc("models_dir"))
        models_dir = md

    params = data.get("parameters")
    if params is None:
        raise SweepError("no [parameters] table: name at least one description 'param' to vary",
                         Location(file=str(path)))
    if not isinstance(params, dict):
        raise SweepError("'parameters' must be a table", loc("parameters"))
    if not params:
        raise SweepError("empty grid: [parameters] names no parameter", loc(None, "parameters"))
    values: dict[str, list[Value]] = {}
    for key, spec in params.items():
        if key in RESERVED:
            raise SweepError(f"parameter name '{key}' clashes with a results column", loc(key, "parameters"))
        try:
            values[key] = expand_values(key, spec)
            for v in values[key]:
                format_value(v)
        except GridError as exc:
            raise SweepError(str(exc), loc(key, "parameters")) from None

    spec = SweepSpec(path=path, text=text, name=name, description=description, engines=engines,
                     metrics=metrics, parameters=values, zip_groups=[list(g) for g in zip_groups], mode=mode,
                     tolerance=tolerance, timeout=timeout, backend=backend, keep_netlists=keep,
                     models_dir=models_dir)
    _check_names(spec)
    try:
        spec.points = combine(values, spec.zip_groups, mode)
    except GridError as exc:
        where = loc("mode") if mode == "zip" else loc("zip")
        if exc.key in values and mode == "zip":
            where = loc(exc.key, "parameters")
        raise SweepError(str(exc), where) from None
    return spec


def _check_names(spec: SweepSpec) -> None:
    """Every swept name must be a ``param`` of the description."""
    from ..description.parser import parse_file
    if spec.models_dir is not None:
        from ..devices.registry import load_models_dir
        load_models_dir(spec.models_dir)
    try:
        parsed = parse_file(spec.description)
    except CircuitkitError as exc:
        raise SweepError(f"the description does not load: {exc}", spec.location("description")) from None
    known = list(parsed.params)
    for key in spec.parameters:
        if key not in parsed.params:
            raise SweepError(f"'{key}' is not a param of {spec.description.name} "
                             f"(its params: {', '.join(known) or 'none'})", spec.param_location(key))


def _type_names(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true or false",
             dict: "a table"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))
