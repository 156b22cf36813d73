"""The typed circuit model: what both engines simulate.

A :class:`Circuit` is built from a description (``circuitkit.circuit.build``)
and is the single source of truth for the netlist renderer and the
behavioural engine. It is vectorised: nodes come in named blocks, elements in
groups whose node ids and values are numpy arrays, so a 1024x1024 crossbar is
a few dozen arrays, not millions of objects.

Conventions
-----------
* Node id 0 is ground (netlist name ``0``). Other ids come from node blocks.
* A group holds ``n`` elements; its ``shape`` (product ``n``) names them:
  element ``k`` of group ``wl`` with shape (8, 8) is ``wl_2_3`` in the netlist.
  A group of shape ``()`` holds one element named after the group itself.
* Currents follow SPICE: a voltage source's current is the current flowing
  into its positive terminal and through it to the negative one; a device's
  current flows from ``p`` through the device to ``n``.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..devices.base import DeviceModel
from .layout import CrossbarLayout, Role
from .waveforms import Waveform

IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def check_identifier(name: str, what: str = "name") -> str:
    """Names reach netlists verbatim, so only plain identifiers are allowed."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise ValueError(f"{what} {name!r} is not a safe identifier (letter, then letters, digits, '_'; at most 64)")
    return name


def index_suffix(k: int, shape: tuple[int, ...]) -> str:
    """``_i_j`` suffix of flat index ``k`` in ``shape`` ('' for shape ())."""
    if shape == ():
        return ""
    return "".join(f"_{i}" for i in np.unravel_index(k, shape))


@dataclass
class NodeBlock:
    """Consecutive node ids starting at ``start``, named ``name_i_j`` by position in ``shape``.

    With ``index`` (flat positions in ``shape``) only those positions exist,
    e.g. the driver nodes of the driven rows of a partly floating array.
    """

    name: str
    shape: tuple[int, ...]
    start: int
    index: np.ndarray | None = None

    @property
    def size(self) -> int:
        if self.index is not None:
            return int(len(self.index))
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    def ids(self) -> np.ndarray:
        ids = self.start + np.arange(self.size, dtype=np.int64)
        return ids if self.index is not None else ids.reshape(self.shape)

    def node_name(self, node: int) -> str:
        k = node - self.start
        if self.index is not None:
            k = int(self.index[k])
        return self.name + index_suffix(k, self.shape)


# ---------------------------------------------------------------------------
# element groups
# ---------------------------------------------------------------------------

def _ids(a) -> np.ndarray:
    return np.atleast_1d(np.asarray(a, dtype=np.int64)).ravel()


def _vals(v, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy() if np.ndim(v) == 0 else np.asarray(v, dtype=float).ravel()


@dataclass
class Group:
    """Base of element groups: a name and a naming shape.

    ``index`` (optional) holds the flat positions in ``shape`` of a group that
    covers only part of it (e.g. the drivers of the rows that are not
    floating), so element ``k`` is named after position ``index[k]``.
    """

    name: str
    shape: tuple[int, ...]

    prefix: str = field(default="", init=False, repr=False)  # SPICE element letter
    index: np.ndarray | None = field(default=None, kw_only=True)
    role: Role = field(default=Role.OTHER, kw_only=True)     # what the group is for (energy, outputs)

    @property
    def n(self) -> int:
        if self.index is not None:
            return int(len(self.index))
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    def instance_name(self, k: int) -> str:
        pos = int(self.index[k]) if self.index is not None else k
        return f"{self.prefix}{self.name}{index_suffix(pos, self.shape)}"

    def _check(self, **arrays):
        check_identifier(self.name, "element name")
        for key, arr in arrays.items():
            if arr.shape != (self.n,):
                raise ValueError(f"{type(self).__name__} {self.name}: '{key}' has {arr.size} entries, expected {self.n}")


@dataclass
class Resistors(Group):
    a: np.ndarray = None
    b: np.ndarray = None
    r: np.ndarray = None

    def __post_init__(self):
        self.prefix = "R"
        self.a, self.b, self.r = _ids(self.a), _ids(self.b), _vals(self.r, self.n)
        self._check(a=self.a, b=self.b, r=self.r)
        if np.any(self.r <= 0) or not np.all(np.isfinite(self.r)):
            raise ValueError(f"resistors {self.name}: resistance must be finite and > 0")


@dataclass
class Capacitors(Group):
    a: np.ndarray = None
    b: np.ndarray = None
    c: np.ndarray = None

    def __post_init__(self):
        self.prefix = "C"
        self.a, self.b, self.c = _ids(self.a), _ids(self.b), _vals(self.c, self.n)
        self._check(a=self.a, b=self.b, c=self.c)
        if np.any(self.c < 0) or not np.all(np.isfinite(self.c)):
            raise ValueError(f"capacitors {self.name}: capacitance must be finite and >= 0")


@dataclass
class VoltageSources(Group):
    """Independent voltage sources, one waveform each. Also used as ammeters (DC 0)."""

    p: np.ndarray = None
    n_: np.ndarray = None
    waveforms: Sequence[Waveform] = ()

    def __post_init__(self):
        self.prefix = "V"
        self.p, self.n_ = _ids(self.p), _ids(self.n_)
        self.waveforms = list(self.waveforms)
        self._check(p=self.p, n=self.n_)
        if len(self.waveforms) != self.n:
            raise ValueError(f"sources {self.name}: {len(self.waveforms)} waveforms for {self.n} sources")


@dataclass
class VCVS(Group):
    """Voltage-controlled voltage sources: v(p) - v(n) = gain * (v(cp) - v(cn))."""

    p: np.ndarray = None
    n_: np.ndarray = None
    cp: np.ndarray = None
    cn: np.ndarray = None
    gain: np.ndarray = None

    def __post_init__(self):
        self.prefix = "E"
        self.p, self.n_, self.cp, self.cn = map(_ids, (self.p, self.n_, self.cp, self.cn))
        self.gain = _vals(self.gain, self.n)
        self._check(p=self.p, n=self.n_, cp=self.cp, cn=self.cn, gain=self.gain)


@dataclass
class VCCS(Group):
    """Voltage-controlled current sources: gm * (v(cp) - v(cn)) flows from p through the element to n."""

    p: np.ndarray = None
    n_: np.ndarray = None
    cp: np.ndarray = None
    cn: np.ndarray = None
    gm: np.ndarray = None

    def __post_init__(self):
        self.prefix = "G"
        self.p, self.n_, self.cp, self.cn = map(_ids, (self.p, self.n_, self.cp, self.cn))
        self.gm = _vals(self.gm, self.n)
        self._check(p=self.p, n=self.n_, cp=self.cp, cn=self.cn, gm=self.gm)


@dataclass
class Devices(Group):
    """Verilog-A devices of one model (memristors, selectors).

    ``states`` holds the node ids of the state terminals, shape (n_states, n).
    ``params`` are overrides of the model defaults: scalars go on the
    ``.model`` card; arrays (instance parameters only, e.g. ``x0``) per instance.
    """

    model: type[DeviceModel] = None
    p: np.ndarray = None
    n_: np.ndarray = None
    states: np.ndarray = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.prefix = "N"
        self.p, self.n_ = _ids(self.p), _ids(self.n_)
        ns = self.model.n_states()
        self.states = np.asarray(self.states if self.states is not None else np.empty((0, self.n)),
                                 dtype=np.int64).reshape(ns, self.n)
        self._check(p=self.p, n=self.n_)
        for key, value in self.params.items():
            self.model.parameter(key)                  # a known name
            if np.ndim(value) > 0:
                # per-device values: instance parameters (states) go on instance lines, model
                # parameters (variability) get one model card per distinct set in the netlist
                self.params[key] = _vals(value, self.n)
        # resolve once: checks every value against the declared ranges
        self.model.resolve(self.params)

    @property
    def model_card(self) -> str:
        """Name of the .model card of this group."""
        return f"{self.name}_{self.model.name}"

    def resolved(self):
        return self.model.resolve(self.params)


@dataclass(frozen=True)
class MosfetModel:
    """ngspice level-1 (Shichman-Hodges) MOSFET parameters used by both engines."""

    polarity: str = "nmos"      # "nmos" or "pmos"
    vto: float = 0.7            # V, threshold voltage (magnitude sign as SPICE)
    kp: float = 2e-4            # A/V^2, transconductance parameter
    lambda_: float = 0.0        # 1/V, channel-length modulation
    w: float = 1e-6             # m
    l: float = 1e-6             # m

    def __post_init__(self):
        if self.polarity not in ("nmos", "pmos"):
            raise ValueError("polarity must be 'nmos' or 'pmos'")
        if self.kp <= 0 or self.w <= 0 or self.l <= 0 or self.lambda_ < 0:
            raise ValueError("MOSFET kp, w, l must be > 0 and lambda >= 0")


@dataclass
class Mosfets(Group):
    d: np.ndarray = None
    g: np.ndarray = None
    s: np.ndarray = None
    b: np.ndarray = None
    model: MosfetModel = field(default_factory=MosfetModel)

    def __post_init__(self):
        self.prefix = "M"
        self.d, self.g, self.s, self.b = map(_ids, (self.d, self.g, self.s, self.b))
        self._check(d=self.d, g=self.g, s=self.s, b=self.b)

    @property
    def model_card(self) -> str:
        return f"{self.name}_mos"


ElementGroup = Resistors | Capacitors | VoltageSources | VCVS | VCCS | Devices | Mosfets


# ---------------------------------------------------------------------------
# analyses and probes
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Transient:
    """Transient from 0 to ``tstop``; results every ``tstep``; steps never exceed ``tmax``."""

    tstop: float
    tstep: float
    tmax: float | None = None

    def __post_init__(self):
        if not (self.tstop > 0 and self.tstep > 0 and self.tstep <= self.tstop):
            raise ValueError("transient needs 0 < tstep <= tstop")

    @property
    def max_step(self) -> float:
        return self.tmax if self.tmax is not None else self.tstep


@dataclass(frozen=True)
class OperatingPoint:
    pass


Analysis = Transient | OperatingPoint


@dataclass(frozen=True)
class Probe:
    """A recorded signal.

    ``kind`` is ``"v"`` (node voltage, ``target`` a node id; device states are
    node voltages too) or ``"i"`` (current through a voltage source:
    ``target`` = (group name, flat index)). ``scale`` multiplies the raw value
    (e.g. -1 to report a current in the direction a user expects).
    """

    name: str
    kind: str
    target: Any
    scale: float = 1.0
    internal: bool = False     # recorded for a computation (e.g. energy), not written to waveforms.parquet


# ---------------------------------------------------------------------------
# the circuit
# ---------------------------------------------------------------------------

class Circuit:
    """Nodes, element groups, an analysis and the probes to record."""

    def __init__(self, title: str, source: str | None = None):
        self.title = title
        self.source = source
        self.blocks: list[NodeBlock] = []
        self._starts: list[int] = []
        self.n_nodes = 1  # ground
        self.groups: list[ElementGroup] = []
        self.analysis: Analysis = OperatingPoint()
        self.probes: list[Probe] = []
        self.options: dict[str, Any] = {}   # non-crossbar metadata only (digest, spice_options); crossbars: .crossbar
        self.crossbar: CrossbarLayout | None = None   # typed layout of the crossbar, set by the builder

    # nodes
    def add_nodes(self, name: str, shape: tuple[int, ...] = (), index=None) -> np.ndarray:
        """Add a block of nodes; with ``index`` only those flat positions of ``shape`` (ids in that order)."""
        check_identifier(name, "node name")
        if any(b.name == name for b in self.blocks):
            raise ValueError(f"node block '{name}' defined twice")
        shape = tuple(int(s) for s in shape)
        if index is not None:
            index = np.asarray(index, dtype=np.int64).ravel()
            full = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if index.size and (index.min() < 0 or index.max() >= full or np.unique(index).size != index.size):
                raise ValueError(f"node block '{name}': index must be distinct positions in shape {shape}")
        block = NodeBlock(name, shape, self.n_nodes, index)
        self.blocks.append(block)
        self._starts.append(block.start)
        self.n_nodes += block.size
        ids = block.ids()
        return ids if (shape or index is not None) else ids.reshape(()).item()

    def node_name(self, node: int) -> str:
        if node == 0:
            return "0"
        k = bisect.bisect_right(self._starts, int(node)) - 1
        if k < 0 or node >= self.n_nodes:
            raise IndexError(f"node id {node} out of range")
        return self.blocks[k].node_name(int(node))

    def node_names(self, nodes: np.ndarray) -> list[str]:
        return [self.node_name(int(n)) for n in np.asarray(nodes).ravel()]

    # elements
    def add(self, group: ElementGroup) -> ElementGroup:
        if any(g.name == group.name and g.prefix == group.prefix for g in self.groups):
            raise ValueError(f"element group '{group.name}' defined twice")
        self.groups.append(group)
        return group

    def group(self, name: str, kind: type | None = None) -> ElementGroup:
        for g in self.groups:
            if g.name == name and (kind is None or isinstance(g, kind)):
                return g
        raise KeyError(name)

    def groups_of(self, kind: type) -> list:
        return [g for g in self.groups if isinstance(g, kind)]

    def groups_with(self, *roles: Role) -> list:
        """Element groups whose :attr:`Group.role` is one of ``roles``."""
        return [g for g in self.groups if g.role in roles]

    def device_models(self) -> list[type[DeviceModel]]:
        seen: dict[str, type[DeviceModel]] = {}
        for g in self.groups_of(Devices):
            seen.setdefault(g.model.name, g.model)
        return [seen[k] for k in sorted(seen)]

    def probe(self, name: str, kind: str, target, scale: float = 1.0, internal: bool = False) -> Probe:
        names = self.__dict__.setdefault("_probe_names", set())
        if len(names) != len(self.probes):          # the list was edited directly
            names.clear()
            names.update(p.name for p in self.probes)
        if name in names:
            raise ValueError(f"signal '{name}' recorded twice")
        pr = Probe(name, kind, target, scale, internal)
        names.add(name)
        self.probes.append(pr)
        return pr
