"""Render a :class:`Circuit` as an ngspice deck, streamed group by group.

The layout lives in ``netlist_templates/*.j2`` (one template per kind of
element, plus header, model cards, analysis and control block); this module
only turns the circuit's arrays into rows of checked, formatted strings and
hands them to the templates. Rows are produced lazily in chunks of
:data:`CHUNK` elements and each template streams straight into the file
handle, so a 256x256 crossbar never exists as one string.

Deck layout (the contract with ``circuitkit.spice.runner``)::

    * circuitkit netlist: <title>
    * source: <description file>
    * <summary lines>
    <one commented section per element group, in circuit order>
    .model cards (one per Devices and per Mosfets group)
    .options klu
    .save <exactly the vectors the probes need>
    .tran <tstep> <tstop> 0 <max step>   |   .op
    .control / pre_osdi <abs path> ... / run / write circuitkit.raw / .endc / .end

Numbers are written losslessly (integers as integers, other floats as
``repr``) so ngspice and the behavioural engine see the same values; every
model-level device parameter is written out, not left to the .va default.
Same circuit, same bytes: nothing depends on time, host or dict order.
"""
from __future__ import annotations

import functools
import io
import itertools
import math
import re
from pathlib import Path
from typing import IO, Iterator, Mapping

import jinja2
import numpy as np

from ..circuit.model import (VCCS, VCVS, Capacitors, Circuit, Devices, Mosfets, OperatingPoint, Probe,
                             Resistors, Transient, VoltageSources)
from ..circuit.waveforms import DC, PWL, Pulse, Sine
from ..errors import printable
from .safety import (NetlistError, check_unique, comment_text, format_number, format_numbers, safe_name,
                     safe_node_name, safe_path)

#: Directory of the Jinja2 templates (next to ``verilog_a/`` in the project root).
TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "netlist_templates"
#: Raw file the control block writes (relative to ngspice's working directory).
RAW_FILE = "circuitkit.raw"
#: Elements formatted per step of a row generator.
CHUNK = 8192
#: ngspice options of every deck; ``circuit.options["spice_options"]`` (name -> number) adds more.
OPTIONS = ("klu",)
#: Node (and 1 ohm resistor to ground) that stands in for ground in probes: ngspice has no v(0).
GROUND_REF = "_ck_gnd"

_TEMPLATES = {Resistors: "resistors.j2", Capacitors: "capacitors.j2", VoltageSources: "vsources.j2",
              VCVS: "vcvs.j2", VCCS: "vccs.j2", Devices: "devices.j2", Mosfets: "mosfets.j2"}
_KIND = {Resistors: "resistors", Capacitors: "capacitors", VoltageSources: "voltage sources",
         VCVS: "VCVS", VCCS: "VCCS", Devices: "devices", Mosfets: "MOSFETs"}
#: netlist dialects and the template directory of each (relative to :data:`TEMPLATE_DIR`)
DIALECTS = {"ngspice": "", "vacask": "vacask/"}
#: OSDI files shipped with VACASK (its module path) for the elements it has no built-in for
VACASK_BUILTIN_OSDI = {Resistors: ("resistor.osdi", "resistor"), Capacitors: ("capacitor.osdi", "capacitor"),
                       Mosfets: ("spice/mos1.osdi", "sp_mos1")}
#: VACASK's built-in devices used by the dialect
VACASK_BUILTINS = {VoltageSources: "vsource", VCVS: "vcvs", VCCS: "vccs"}
#: simulator options VACASK shares with ngspice under the same name and meaning
VACASK_OPTIONS = frozenset({"reltol", "abstol", "vntol", "gmin", "temp", "tnom"})
#: VACASK options of every deck. ``tran_redofactor``: ngspice rejects a time step when its truncation
#: error asks for a step below 0.9 of the one just taken (dctran.c: ``newdelta > .9 * CKTdelta`` accepts);
#: VACASK's default (2.5) accepts steps up to 2.5x the step its error estimate asks for. With ngspice's
#: rule VACASK's coarse-step answers move to within the contract of the converged one (measured on
#: ``stress_multisynapse_sine``: 1.9 % -> 0.17 % relative RMS on ``l``, 4 % more time points)
VACASK_DECK_OPTIONS = ("tran_redofactor=1.1111111111111112",)
_PREFIX = {Resistors: "R", Capacitors: "C", VoltageSources: "V", VCVS: "E", VCCS: "G", Devices: "N", Mosfets: "M"}


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------

def render_netlist(circuit: Circuit, osdi: Mapping[str, Path | str], fh: IO[str],
                   dialect: str = "ngspice") -> None:
    """Write the deck of ``circuit`` in ``dialect`` (:data:`DIALECTS`) to ``fh``.

    ``osdi`` maps each Verilog-A model name the circuit uses to its compiled
    ``.osdi`` file (absolute path). Everything is checked before the first
    byte is written; raises :class:`NetlistError` (a ``ValueError``) on unsafe
    names or paths, non-finite numbers or sources the simulator would read differently.
    The element rows are the same for every dialect; only the templates differ
    (``netlist_templates/*.j2`` for ngspice, ``netlist_templates/vacask/*.j2`` for VACASK).
    """
    if dialect not in DIALECTS:
        raise NetlistError(f"unknown netlist dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    try:
        _render(circuit, osdi, fh, dialect)
    except NetlistError as exc:         # name the description the refused element comes from
        source = getattr(circuit, "source", None)
        if source and not str(exc).startswith(str(source)):
            raise NetlistError(f"{printable(str(source), 300)}: {exc}") from None
        raise


def _render(circuit: Circuit, osdi: Mapping[str, Path | str], fh: IO[str], dialect: str) -> None:
    deck = _Deck(circuit, osdi, dialect)
    env = environment()
    prefix = DIALECTS[dialect]

    def emit(template: str, **context) -> None:
        stream = env.get_template(prefix + template).stream(**context)
        stream.enable_buffering(256)
        stream.dump(fh)

    emit("header.j2", title=deck.title, source=deck.source, summary=deck.summary())
    if dialect == "vacask":
        emit("models.j2", cards=deck.cards, osdi=deck.osdi_paths, builtin=deck.vacask_builtins())
    for group, names in zip(circuit.groups, deck.instance_names):
        emit(_TEMPLATES[type(group)], section=_section(group), rows=deck.rows(group, names),
             **deck.group_context(group))
    if deck.ground_probe:
        emit("resistors.j2", section="reference node for probes of ground (0 V)",
             rows=iter([(f"R{GROUND_REF}", GROUND_REF, "0", "1")]))
    if dialect == "ngspice":
        emit("models.j2", cards=deck.cards)
        emit("analysis.j2", options=deck.options, saves=deck.saves, analysis=deck.analysis())
        emit("control.j2", osdi=deck.osdi_paths, raw_file=RAW_FILE)
    else:
        emit("control.j2", options=deck.options, saves=deck.saves, analysis=deck.analysis())


def render_text(circuit: Circuit, osdi: Mapping[str, Path | str], dialect: str = "ngspice") -> str:
    """The deck as a string (for tests and small circuits)."""
    buf = io.StringIO()
    render_netlist(circuit, osdi, buf, dialect)
    return buf.getvalue()


def spice_vector(circuit: Circuit, probe: Probe) -> str:
    """Normalised name of the raw-file vector holding ``probe`` (before its scale).

    ``v(<node>)`` for node voltages (``v(_ck_gnd)`` for ground, see
    :data:`GROUND_REF`), ``i(<source instance>)`` for source currents; lowercase
    as ngspice writes them.
    """
    if probe.kind == "v":
        node = _probe_node(circuit, probe)
        if node == 0:
            return f"v({GROUND_REF})"
        return f"v({safe_node_name(circuit.node_name(node), f'node of signal {probe.name!r}').lower()})"
    if probe.kind == "i":
        group, k = _probe_source(circuit, probe)
        return f"i({safe_name(group.instance_name(k), f'source of signal {probe.name!r}').lower()})"
    raise NetlistError(f"signal {probe.name!r}: unknown probe kind {probe.kind!r} (expected 'v' or 'i')")


def saved_vectors(circuit: Circuit) -> list[str]:
    """The distinct vectors of all probes, in probe order (what ``.save`` lists)."""
    return list(dict.fromkeys(spice_vector(circuit, p) for p in circuit.probes))


def vacask_save(circuit: Circuit, probe: Probe) -> str:
    """What VACASK's ``save`` names for ``probe`` (VACASK is case-sensitive: names as written)."""
    if probe.kind == "v":
        node = _probe_node(circuit, probe)
        if node == 0:
            return f"v({GROUND_REF})"
        return f"v({safe_node_name(circuit.node_name(node), f'node of signal {probe.name!r}')})"
    if probe.kind == "i":
        group, k = _probe_source(circuit, probe)
        return f"i({safe_name(group.instance_name(k), f'source of signal {probe.name!r}')})"
    raise NetlistError(f"signal {probe.name!r}: unknown probe kind {probe.kind!r} (expected 'v' or 'i')")


def vacask_vector(circuit: Circuit, probe: Probe) -> str:
    """Name of the VACASK raw-file vector holding ``probe``, lowercased as the raw reader returns it.

    VACASK names a node voltage after the node (``a``) and the current through
    a voltage source after its branch unknown (``vin:flow(br)``, same sign as
    ngspice's ``i(vin)``: into the positive terminal).
    """
    name = vacask_save(circuit, probe).lower()
    if name.startswith("v("):
        return name[2:-1]
    return name[2:-1] + ":flow(br)"


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment over :data:`TEMPLATE_DIR` (plain text, strict about missing data)."""
    if not TEMPLATE_DIR.is_dir():
        raise NetlistError(f"netlist templates not found in {TEMPLATE_DIR}")
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=False,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, newline_sequence="\n")


# ---------------------------------------------------------------------------
# probes
# ---------------------------------------------------------------------------

def _probe_node(circuit: Circuit, probe: Probe) -> int:
    try:
        node = int(probe.target)
    except (TypeError, ValueError):
        raise NetlistError(f"signal {probe.name!r}: a voltage probe needs a node id, got {probe.target!r}") from None
    if not 0 <= node < circuit.n_nodes:
        raise NetlistError(f"signal {probe.name!r}: node id {node} out of range (0..{circuit.n_nodes - 1})")
    return node


def _probe_source(circuit: Circuit, probe: Probe) -> tuple[VoltageSources, int]:
    try:
        name, k = probe.target
        k = int(k)
    except (TypeError, ValueError):
        raise NetlistError(f"signal {probe.name!r}: a current probe needs (source group, index), "
                           f"got {probe.target!r}") from None
    try:
        group = circuit.group(name, VoltageSources)
    except KeyError:
        raise NetlistError(f"signal {probe.name!r}: no voltage-source group named {name!r} "
                           "(currents are measured through voltage sources)") from None
    if not 0 <= k < group.n:
        raise NetlistError(f"signal {probe.name!r}: source group {name!r} has {group.n} sources, no index {k}")
    return group, k


# ---------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------

_CANONICAL_SUFFIX = re.compile(r"(?:_(?:0|[1-9][0-9]*))+")


class _Names:
    """Names ``head + _i_j...`` of the flat positions of ``shape`` (optionally only ``index``), made on demand.

    Nothing is materialised for the whole block: a 2048x2048 crossbar's
    millions of names exist only :data:`CHUNK` at a time.
    """

    def __init__(self, head: str, shape: tuple[int, ...], index: np.ndarray | None = None):
        self.head = head
        self.shape = tuple(int(x) for x in shape)
        self.index = None if index is None else np.asarray(index, dtype=np.int64).ravel()
        full = int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1
        self.n = full if self.index is None else int(self.index.size)

    def positions(self, sl: slice) -> np.ndarray:
        k = np.arange(sl.start, sl.stop, dtype=np.int64)
        return k if self.index is None else self.index[k]

    def names(self, k: np.ndarray) -> list[str]:
        """Names of local element numbers ``k`` (0..n-1)."""
        pos = np.asarray(k, dtype=np.int64) if self.index is None else self.index[np.asarray(k, dtype=np.int64)]
        if not self.shape:
            return [self.head] * int(pos.size)
        digits = [d.tolist() for d in np.unravel_index(pos, self.shape)]
        head = self.head
        if len(digits) == 1:
            return [f"{head}_{i}" for i in digits[0]]
        if len(digits) == 2:
            return [f"{head}_{i}_{j}" for i, j in zip(*digits)]
        return [head + "".join(f"_{x}" for x in t) for t in zip(*digits)]

    def chunk(self, sl: slice) -> list[str]:
        return self.names(np.arange(sl.start, sl.stop, dtype=np.int64))

    def __getitem__(self, k: int) -> str:
        return self.names(np.array([k]))[0]

    def contains(self, tuples: np.ndarray) -> np.ndarray:
        """Which index tuples (rows of ``tuples``) name an element of this block."""
        if tuples.shape[1] != len(self.shape):
            return np.zeros(len(tuples), dtype=bool)
        inside = np.all((tuples >= 0) & (tuples < np.asarray(self.shape, dtype=np.int64)), axis=1)
        if self.index is None or not inside.any():
            return inside
        flat = np.zeros(len(tuples), dtype=np.int64)
        flat[inside] = np.ravel_multi_index(tuple(tuples[inside].T), self.shape)
        return inside & np.isin(flat, self.index)

    def tuples(self) -> np.ndarray:
        """Every index tuple of the block, one per row (used only for blocks another name extends)."""
        pos = np.arange(self.n, dtype=np.int64) if self.index is None else self.index
        if not self.shape:
            return np.zeros((int(pos.size), 0), dtype=np.int64)
        return np.stack(np.unravel_index(pos, self.shape), axis=1).astype(np.int64)


def check_unique_blocks(blocks: list[_Names], what: str) -> None:
    """No two blocks generate the same name, ignoring case (ngspice folds it), checked from the
    block structure alone: ``x`` of shape (R, C) and ``x_3`` of shape (C,) overlap exactly where
    ``(3, j)`` lies in both; names that cannot be generated twice are never listed."""
    lowered = [b.head.lower() for b in blocks]
    order = sorted(range(len(blocks)), key=lambda i: lowered[i])
    for a_pos, i in enumerate(order):
        a = lowered[i]
        for j in order[a_pos + 1:]:
            b = lowered[j]
            if not b.startswith(a):
                break                       # sorted: no later name starts with a either
            rest = b[len(a):]
            if rest and not _CANONICAL_SUFFIX.fullmatch(rest):
                continue
            prefix = [int(x) for x in rest.split("_")[1:]] if rest else []
            x, y = blocks[i], blocks[j]
            if len(prefix) + len(y.shape) != len(x.shape):
                continue
            ty = y.tuples()
            full = np.concatenate([np.broadcast_to(np.asarray(prefix, dtype=np.int64), (len(ty), len(prefix))), ty],
                                  axis=1) if len(ty) else ty
            hit = x.contains(full) if len(full) else np.zeros(0, dtype=bool)
            if hit.any():
                k = int(np.flatnonzero(hit)[0])
                name_y = y.names(np.array([k]))[0]
                other = x.head + "".join(f"_{v}" for v in full[k])
                raise NetlistError(f"{what} '{name_y}' occurs twice in the netlist"
                                   + (f" (also as '{other}'; ngspice ignores case)" if other != name_y else ""))


class _NodeNames:
    """Netlist name of node ids (0 is ``0``), computed per chunk from the node blocks."""

    def __init__(self, circuit: Circuit):
        blocks = sorted(circuit.blocks, key=lambda b: b.start)
        self.starts = np.array([b.start for b in blocks], dtype=np.int64)
        self.blocks = []
        expected = 1
        for block in blocks:
            safe_node_name(block.name, "node name")
            names = _Names(block.name, tuple(int(s) for s in block.shape), getattr(block, "index", None))
            if block.start != expected or block.start < 1:
                raise NetlistError(f"node block '{block.name}' overlaps another block or lies outside the circuit"
                                   if block.start < expected else
                                   f"node id {expected} belongs to no node block")
            expected = block.start + names.n
            self.blocks.append(names)
        if expected > circuit.n_nodes:
            raise NetlistError(f"node block '{blocks[-1].name}' overlaps another block or lies outside the circuit")
        if expected < circuit.n_nodes:
            raise NetlistError(f"node id {expected} belongs to no node block")
        check_unique_blocks(self.blocks + [_Names("0", ())], "node")

    def __call__(self, ids: np.ndarray) -> list[str]:
        ids = np.asarray(ids, dtype=np.int64)
        out: list[str] = [""] * int(ids.size)
        which = np.searchsorted(self.starts, ids, side="right") - 1
        for b in np.unique(which).tolist():
            sel = np.flatnonzero(which == b)
            if b < 0:
                for k in sel.tolist():
                    out[k] = "0"
                continue
            names = self.blocks[b].names(ids[sel] - self.starts[b])
            for k, name in zip(sel.tolist(), names):
                out[k] = name
        return out

    __getitem__ = __call__


def _instance_names(group) -> _Names:
    kind = type(group)
    if kind not in _PREFIX:
        raise NetlistError(f"cannot write element group {getattr(group, 'name', group)!r} "
                           f"of type {kind.__name__} to a netlist")
    if group.prefix != _PREFIX[kind]:
        raise NetlistError(f"{_KIND[kind]} '{group.name}': element letter {group.prefix!r}, "
                           f"expected {_PREFIX[kind]!r}")
    safe_name(group.name, f"{_KIND[kind]} group name")
    shape = tuple(int(s) for s in group.shape)
    full = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if group.index is not None:
        idx = np.asarray(group.index, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= full):
            raise NetlistError(f"{_KIND[kind]} '{group.name}': index outside shape {tuple(group.shape)}")
        return _Names(group.prefix + group.name, shape, idx)
    if full != group.n:
        raise NetlistError(f"{_KIND[kind]} '{group.name}': shape {tuple(group.shape)} does not name {group.n} elements")
    return _Names(group.prefix + group.name, shape)


def _section(group) -> str:
    kind = _KIND[type(group)]
    shape = "x".join(str(int(s)) for s in group.shape)
    size = f"{group.n}" if group.index is None and len(group.shape) < 2 else f"{group.n} of {shape}"
    extra = f" ({group.model.name})" if isinstance(group, Devices) else ""
    return f"{kind} {group.name}{extra}: {size}"


# ---------------------------------------------------------------------------
# the deck
# ---------------------------------------------------------------------------

class _Deck:
    """Everything checked up front; rows formatted lazily when a template asks for them."""

    def __init__(self, circuit: Circuit, osdi: Mapping[str, Path | str], dialect: str = "ngspice"):
        self.circuit = circuit
        self.dialect = dialect
        self.title = comment_text(circuit.title)
        self.source = comment_text(circuit.source if circuit.source is not None else "(built in Python)")
        self.nodes = _NodeNames(circuit)
        self._cards: dict[int, tuple[list[str], np.ndarray]] = {}
        self.instance_names = [_instance_names(g) for g in circuit.groups]
        self.ground_probe = any(p.kind == "v" and _probe_node(circuit, p) == 0 for p in circuit.probes)
        reserved = [_Names(f"R{GROUND_REF}", ())] if self.ground_probe else []
        check_unique_blocks(self.instance_names + reserved, "element")
        self._waves: dict = {}
        self._resolved: dict[int, object] = {}
        for group, names in zip(circuit.groups, self.instance_names):
            self._check_nodes(group)
            self._check_values(group, names)
            if isinstance(group, Devices):
                self._check_devices(group)
            elif isinstance(group, Mosfets):
                safe_name(group.model_card, f"MOSFETs '{group.name}': model card")
        cards = [g.model_card for g in circuit.groups if isinstance(g, (Devices, Mosfets))]
        check_unique(cards, "model card")
        if self.ground_probe:
            try:
                check_unique_blocks(self.nodes.blocks + [_Names(GROUND_REF, ())], "node")
            except NetlistError:
                raise NetlistError(f"node name {GROUND_REF} is reserved (reference for probes of ground)") from None
        self.saves = (saved_vectors(circuit) if dialect == "ngspice" else
                      list(dict.fromkeys(vacask_save(circuit, p) for p in circuit.probes)))
        self.osdi_paths = self._osdi(osdi)
        self.options = self._options(circuit.options.get("spice_options") or {}, dialect)
        self.cards = self.model_cards()  # built (and checked) now, before anything is written
        self.analysis()

    # -- checks -----------------------------------------------------------
    def _check_nodes(self, group) -> None:
        for term in self._terminals(group):
            ids = np.asarray(getattr(group, term))
            if ids.shape[-1:] != (group.n,) or ids.dtype.kind not in "iu":
                raise NetlistError(f"{_KIND[type(group)]} '{group.name}': terminal '{term}' needs {group.n} "
                                   f"integer node ids, has shape {ids.shape} of {ids.dtype}")
            if ids.size and (ids.min() < 0 or ids.max() >= self.circuit.n_nodes):
                raise NetlistError(f"{_KIND[type(group)]} '{group.name}': terminal '{term}' "
                                   f"refers to a node id outside 0..{self.circuit.n_nodes - 1}")

    def _check_values(self, group, names: _Names) -> None:
        """Every number of the group is finite (formatting later cannot fail half-way through a file)."""
        what = f"{_KIND[type(group)]} '{group.name}'"
        if isinstance(group, VoltageSources):
            if len(group.waveforms) != group.n:
                raise NetlistError(f"{what}: {len(group.waveforms)} waveforms for {group.n} sources")
            for k, wave in enumerate(group.waveforms):
                self._wave(wave, f"{what}: source {names[k]}")
            return
        arrays = {Resistors: ("r",), Capacitors: ("c",), VCVS: ("gain",), VCCS: ("gm",)}.get(type(group), ())
        for key in arrays:
            values = np.asarray(getattr(group, key), dtype=float)
            if values.shape != (group.n,):
                raise NetlistError(f"{what}: '{key}' has {values.size} values for {group.n} elements")
            bad = ~np.isfinite(values)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise NetlistError(f"{what}: value [{k}] is {values[k]}; only finite numbers can be written")

    def resolved(self, group: Devices):
        """The group's parameters resolved once (defaults + overrides, range-checked)."""
        if id(group) not in self._resolved:
            self._resolved[id(group)] = group.resolved()
        return self._resolved[id(group)]

    @staticmethod
    def _terminals(group) -> tuple[str, ...]:
        if isinstance(group, (Resistors, Capacitors)):
            return ("a", "b")
        if isinstance(group, VoltageSources):
            return ("p", "n_")
        if isinstance(group, (VCVS, VCCS)):
            return ("p", "n_", "cp", "cn")
        if isinstance(group, Devices):
            return ("p", "n_", "states")
        return ("d", "g", "s", "b")

    def _check_devices(self, group: Devices) -> None:
        model = group.model
        safe_name(model.name, f"devices '{group.name}': Verilog-A module")
        safe_name(group.model_card, f"devices '{group.name}': model card")
        for prm in model.parameters:
            safe_name(prm.name, f"model '{model.name}': parameter")
        expected = model.terminals()
        if len(expected) != 2 + group.states.shape[0]:
            raise NetlistError(f"devices '{group.name}': model '{model.name}' has terminals {expected}, "
                               f"the group has {group.states.shape[0]} state nodes")
        for key, value in group.params.items():
            if np.ndim(value) > 0 and np.shape(value) != (group.n,):
                raise NetlistError(f"devices '{group.name}': parameter '{key}' has {np.size(value)} values "
                                   f"for {group.n} devices")
        resolved = self.resolved(group)
        for prm in model.parameters:
            value = np.asarray(resolved[prm.name], dtype=float)
            if not np.all(np.isfinite(value)):
                raise NetlistError(f"devices '{group.name}': parameter '{prm.name}' is not finite")

    @staticmethod
    def _options(extra: Mapping[str, object], dialect: str = "ngspice") -> list[str]:
        """:data:`OPTIONS` plus ``circuit.options["spice_options"]`` (name -> number, e.g. reltol), sorted.

        VACASK gets only the options it shares with ngspice (:data:`VACASK_OPTIONS`);
        any other is refused rather than silently dropped.
        """
        if not isinstance(extra, Mapping):
            raise NetlistError(f"spice_options must map option names to numbers, got {extra!r}")
        out = list(OPTIONS) if dialect == "ngspice" else list(VACASK_DECK_OPTIONS)
        for name in sorted(extra):
            safe_name(name, "ngspice option")
            if dialect == "vacask" and name.lower() not in VACASK_OPTIONS:
                raise NetlistError(f"simulator option '{name}' has no VACASK equivalent "
                                   f"(VACASK takes {', '.join(sorted(VACASK_OPTIONS))})")
            out.append(f"{name.lower()}={format_number(extra[name], f'ngspice option {name}' if dialect == 'ngspice' else f'VACASK option {name}')}")
        return out

    def vacask_builtins(self) -> list[dict]:
        """VACASK's ``load`` lines and ``model`` cards for the plain elements the circuit uses."""
        kinds = {type(g) for g in self.circuit.groups}
        if self.ground_probe:
            kinds.add(Resistors)
        loads, models = [], []
        root = _vacask_module_dir()
        for kind, (osdi, module) in VACASK_BUILTIN_OSDI.items():
            if kind in kinds:
                loads.append(safe_path(f"{root}/{osdi}", "VACASK module") if root else osdi)
                if kind is not Mosfets:
                    models.append((module, module))
        for kind, device in VACASK_BUILTINS.items():
            if kind in kinds:
                models.append((device, device))
        return [{"loads": loads, "models": models}]

    def _osdi(self, osdi: Mapping[str, Path | str]) -> list[str]:
        paths = []
        for model in self.circuit.device_models():
            if model.name not in osdi:
                raise NetlistError(f"no compiled OSDI file given for Verilog-A model '{model.name}'")
            paths.append(safe_path(osdi[model.name], f"OSDI file of model '{model.name}'"))
        return paths

    # -- header -----------------------------------------------------------
    def summary(self) -> list[str]:
        c = self.circuit
        counts: dict[str, int] = {}
        for g in c.groups:
            counts[_KIND[type(g)]] = counts.get(_KIND[type(g)], 0) + g.n
        parts = [f"{k} {counts[k]}" for k in _KIND.values() if k in counts]
        an = c.analysis
        what = (f"tran tstop={format_number(an.tstop, 'tstop')}" if isinstance(an, Transient) else "op")
        return [f"nodes: {c.n_nodes - 1} (plus ground); elements: {sum(counts.values())} ({', '.join(parts)})",
                f"analysis: {what}; signals: {len(c.probes)}; saved vectors: {len(self.saves)}"]

    # -- rows ---------------------------------------------------------------
    def group_context(self, group) -> dict:
        if isinstance(group, Mosfets):
            m = group.model
            return {"w": format_number(m.w, f"MOSFETs '{group.name}': w"),
                    "l": format_number(m.l, f"MOSFETs '{group.name}': l")}
        return {}

    def rows(self, group, names: _Names) -> Iterator[tuple]:
        """Rows of the group's template, formatted :data:`CHUNK` elements at a time."""
        nodes = self.nodes
        what = f"{_KIND[type(group)]} '{group.name}'"
        for lo in range(0, group.n, CHUNK):
            sl = slice(lo, min(lo + CHUNK, group.n))
            name = names.chunk(sl)
            if isinstance(group, (Resistors, Capacitors)):
                value = group.r if isinstance(group, Resistors) else group.c
                yield from zip(name, nodes[group.a[sl]], nodes[group.b[sl]],
                               format_numbers(value[sl], f"{what}: value"))
            elif isinstance(group, VoltageSources):
                waves = [self._wave(w, f"{what}: source {name[k]}") for k, w in enumerate(group.waveforms[sl])]
                yield from zip(name, nodes[group.p[sl]], nodes[group.n_[sl]], waves)
            elif isinstance(group, (VCVS, VCCS)):
                value = group.gain if isinstance(group, VCVS) else group.gm
                yield from zip(name, nodes[group.p[sl]], nodes[group.n_[sl]], nodes[group.cp[sl]],
                               nodes[group.cn[sl]], format_numbers(value[sl], f"{what}: gain"))
            elif isinstance(group, Devices):
                yield from self._device_rows(group, name, sl)
            else:
                card = group.model_card
                yield from zip(name, nodes[group.d[sl]], nodes[group.g[sl]], nodes[group.s[sl]],
                               nodes[group.b[sl]], itertools.repeat(card))

    def _device_rows(self, group: Devices, names: list[str], sl: slice) -> Iterator[tuple]:
        """Rows of one chunk of devices (``names`` already the chunk's)."""
        nodes = self.nodes
        terminals = [nodes[group.p[sl]], nodes[group.n_[sl]]] + [nodes[s[sl]] for s in group.states]
        resolved = self.resolved(group)
        columns = []
        for prm in group.model.parameters:
            if not prm.instance:
                continue
            value = resolved[prm.name]
            what = f"devices '{group.name}': parameter '{prm.name}'"
            if np.ndim(value) == 0:
                columns.append((prm.name, itertools.repeat(format_number(value, what))))
            else:
                columns.append((prm.name, format_numbers(np.asarray(value)[sl], what)))
        keys = [k for k, _ in columns]
        values = zip(*(v for _, v in columns)) if columns else itertools.repeat(())
        card_names, card_of = self.device_cards(group)
        cards = (card_names[k] for k in card_of[sl])
        for name, term, vals, card in zip(names, zip(*terminals), values, cards):
            yield name, term, card, list(zip(keys, vals))

    def device_cards(self, group: Devices) -> tuple[list[str], np.ndarray]:
        """Model card names of a device group and the card index of every device.

        One card when every model parameter is one value; with per-device values
        (device-to-device variability) one card per distinct parameter set,
        named ``<card>_v<k>`` in order of first use, so the deck stays
        deterministic and both engines see identical devices.
        """
        if id(group) in self._cards:
            return self._cards[id(group)]
        resolved = self.resolved(group)
        varying = [prm.name for prm in group.model.parameters
                   if not prm.instance and np.ndim(resolved[prm.name]) > 0]
        if not varying:
            out = ([group.model_card], np.zeros(group.n, dtype=np.int64))
        else:
            table = np.column_stack([np.broadcast_to(np.asarray(resolved[k], dtype=float), (group.n,))
                                     for k in varying])
            _, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")          # card numbers in order of first use
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            out = ([f"{group.model_card}_v{k}" for k in range(order.size)], rank[inverse.ravel()])
        self._cards[id(group)] = out
        return out

    def _wave(self, wave, what: str) -> dict:
        try:
            return self._waves[wave]
        except (KeyError, TypeError):
            pass
        data = _wave_data(wave, what)
        if self.dialect == "vacask":
            data = _vacask_wave(wave, data, what)
        try:
            self._waves[wave] = data
        except TypeError:  # unhashable waveform (e.g. lists inside): format every time
            pass
        return data

    # -- cards and analysis ---------------------------------------------------
    def model_cards(self) -> list[dict]:
        cards = []
        for g in self.circuit.groups:
            if isinstance(g, Devices):
                resolved = self.resolved(g)
                names, card_of = self.device_cards(g)
                first = np.unique(card_of, return_index=True)[1]     # a device of each card
                for k, card in enumerate(names):
                    params = []
                    for prm in g.model.parameters:
                        if prm.instance:
                            continue
                        value = resolved[prm.name]
                        if np.ndim(value) > 0:
                            value = np.broadcast_to(np.asarray(value, dtype=float), (g.n,))[first[k]]
                        params.append((prm.name, format_number(value, f"devices '{g.name}': parameter '{prm.name}'")))
                    cards.append({"name": card, "type": g.model.name, "params": params})
            elif isinstance(g, Mosfets):
                m = g.model
                if m.polarity not in ("nmos", "pmos"):
                    raise NetlistError(f"MOSFETs '{g.name}': polarity {m.polarity!r} (nmos or pmos)")
                what = f"MOSFETs '{g.name}'"
                params = [("vto", format_number(m.vto, f"{what}: vto")),
                          ("kp", format_number(m.kp, f"{what}: kp")),
                          ("lambda", format_number(m.lambda_, f"{what}: lambda"))]
                if self.dialect == "vacask":
                    # VACASK's port of the ngspice level-1 MOSFET (sp_mos1), polarity as a parameter
                    cards.append({"name": g.model_card, "type": VACASK_BUILTIN_OSDI[Mosfets][1],
                                  "params": [("type", "1" if m.polarity == "nmos" else "-1")] + params})
                else:
                    cards.append({"name": g.model_card, "type": m.polarity, "params": [("level", "1")] + params})
        return cards

    def analysis(self) -> dict:
        an = self.circuit.analysis
        if isinstance(an, Transient):
            return {"kind": "tran", "tstep": format_number(an.tstep, "transient step"),
                    "tstop": format_number(an.tstop, "transient stop"),
                    "tmax": format_number(an.max_step, "transient max step")}
        if isinstance(an, OperatingPoint):
            return {"kind": "op"}
        raise NetlistError(f"cannot write analysis {an!r} to a netlist (transient or operating point)")


def _wave_data(wave, what: str) -> dict:
    """Template data of one waveform: kind, DC value (its value at t = 0) and arguments."""
    if isinstance(wave, DC):
        return {"kind": "dc", "dc": format_number(wave.value, f"{what}: DC value")}
    if isinstance(wave, PWL) and len(wave.times) == 1:
        return {"kind": "dc", "dc": format_number(wave.values[0], f"{what}: PWL value")}
    dc = format_number(float(np.asarray(wave(np.array([0.0])))[0]), f"{what}: value at t = 0")
    if isinstance(wave, Sine):
        if wave.freq == 0:
            raise NetlistError(f"{what}: sine frequency 0 (ngspice would use 1/tstop instead)")
        args = [wave.offset, wave.amplitude, wave.freq, wave.delay, wave.damping, wave.phase]
        return {"kind": "sin", "dc": dc, "args": [format_number(a, f"{what}: sine") for a in args]}
    if isinstance(wave, Pulse):
        # ngspice replaces a zero rise/fall by TSTEP and a zero width/period by TSTOP
        for key in ("rise", "fall", "width", "period"):
            if getattr(wave, key) == 0:
                raise NetlistError(f"{what}: pulse {key} 0 (ngspice would substitute a simulation time)")
        args = [wave.v1, wave.v2, wave.delay, wave.rise, wave.fall, wave.width, wave.period]
        return {"kind": "pulse", "dc": dc, "args": [format_number(a, f"{what}: pulse") for a in args]}
    if isinstance(wave, PWL):
        times = format_numbers(np.asarray(wave.times, dtype=float), f"{what}: PWL times")
        values = format_numbers(np.asarray(wave.values, dtype=float), f"{what}: PWL values")
        return {"kind": "pwl", "dc": dc, "pairs": list(zip(times, values))}
    raise NetlistError(f"{what}: unsupported waveform {type(wave).__name__} (DC, Sine, Pulse, PWL)")


def _vacask_module_dir() -> str | None:
    """VACASK's own OSDI directory as an absolute path (so a file of the same name in the working
    directory is never loaded instead), or None when VACASK is not installed (names then resolve
    through VACASK's module path)."""
    try:
        from ..spice.toolchain import vacask_module_dir
        return str(vacask_module_dir())
    except Exception:  # noqa: BLE001 - generating a deck does not need VACASK installed
        return None


def _vacask_wave(wave, data: dict, what: str) -> dict:
    """VACASK ``vsource`` parameters of a waveform with ngspice's semantics, or a refusal.

    Measured with vacask 0.3.4: a sine's ``phase`` is ignored, so a phase is
    written as an equivalent negative delay (exact when the sine has no delay:
    ``sin(2 pi f t + phi) = sin(2 pi f (t + phi / (2 pi f)))``, the damping
    factor folded into the amplitude); a pulse needs period > rise + width + fall.
    """
    kind = data["kind"]
    out = dict(data)
    if kind == "sin":
        offset, amplitude, freq, delay, damping, phase = (float(x) for x in
                                                          (wave.offset, wave.amplitude, wave.freq, wave.delay,
                                                           wave.damping, wave.phase))
        if phase != 0.0:
            if delay != 0.0:
                raise NetlistError(f"{what}: a sine with both a delay and a phase cannot be written for VACASK "
                                   "(it ignores the phase); drop one of them or use the ngspice engine")
            shift = -phase / 360.0 / freq
            delay = shift
            amplitude = amplitude * math.exp(-damping * shift)
        out["args"] = {"sinedc": format_number(offset, f"{what}: sine"),
                       "ampl": format_number(amplitude, f"{what}: sine"),
                       "freq": format_number(freq, f"{what}: sine"),
                       "delay": format_number(delay, f"{what}: sine"),
                       "theta": format_number(damping, f"{what}: sine")}
    elif kind == "pulse":
        if wave.period <= wave.rise + wave.width + wave.fall:
            raise NetlistError(f"{what}: pulse period {wave.period:g} must exceed rise + width + fall "
                               f"= {wave.rise + wave.width + wave.fall:g} for VACASK")
        keys = ("val0", "val1", "delay", "rise", "fall", "width", "period")
        out["args"] = dict(zip(keys, data["args"]))
    return out
