"""The network description: a small TOML file naming layers, tiles and their periphery.

A network file (``network.toml``) describes an inference network and the
hardware it runs on; every value is checked and a bad one raises a
:class:`NetworkError` naming the file, the line and the key path
(``network.toml:14, parameter 'periphery.adc.bits'``)::

    name = "digits-mlp"
    seed = 1                              # read-noise and verification draws

    [input]
    range = [0.0, 16.0]                   # raw data range mapped onto the DAC range (outside: clipped, counted)

    [tile]
    rows = 64                             # a layer larger than a tile is split over tiles;
    cols = 64                             # partial sums are added digitally
    pad  = false                          # true: every tile is built at full size, unused cells at
                                          # gmin and unused rows at 0 V (their load on the lines counts)

    [mapping]
    kind  = "differential"                # differential (column pairs) | offset (one offset column per tile)
    vread = 0.2                           # read voltage of a full-scale input (V)
    gmin  = 1e-5                          # conductance range (S) at vread; default: what the device reaches
    gmax  = 1e-4

    [device]
    model  = "vteam"
    params = { ron = 10e3, roff = 100e3 }
    variability = { sigma = { ron = 0.05 }, seed = 3 }       # device-to-device lognormal factors
    faults      = { on = 0.0, off = 0.0, seed = 4 }           # stuck-at-ON / OFF fractions
    read_noise  = { sigma = 0.0, batch = 100 }                # conductance noise, redrawn per batch of inputs

    [periphery]
    dac     = { bits = 8 }                                    # 0: ideal (no quantisation)
    wires   = { r_row = 1.0, r_col = 1.0 }                    # ohm per segment
    drivers = { r_out = 0.0 }
    tia     = { rf = 1e3 }
    adc     = { bits = 8, calibration = "batch", samples = 64, margin = 1.1 }   # or "weights"
    timing  = { read = 100e-9, adc = 10e-9 }                  # s per read phase, per conversion
    energy  = { adc_fom = 5e-15, dac_unit_cap = 1e-15 }       # J per conversion step, F per DAC level

    [[layers]]
    name = "hidden"
    weights = "weights.npz:w1"            # (inputs, outputs); .npy or .npz:KEY, relative to this file
    bias = "weights.npz:b1"               # optional
    activation = "relu"                   # relu | none | argmax (the last layer's output is the class)
    input_max = "calibrate"               # layer input full scale: a number, or from the calibration batch

Overrides (``--set periphery.adc.bits=4``, ``layers.0.activation=none``)
change the parsed table before validation, so they are checked like the file.
"""
from __future__ import annotations

import math
import re
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...errors import DescriptionError, LocatedError, Location

MAPPINGS = ("differential", "offset")
ACTIVATIONS = ("relu", "none", "argmax")
CALIBRATIONS = ("weights", "batch")
#: largest weight matrix a network file may load (entries), and largest tile (cells)
MAX_WEIGHTS = 50_000_000
MAX_TILE_CELLS = 1024 * 1024
#: tiles of a whole network: each is a circuit built and read on its own (~40 ms for a small one, measured),
#: so 65,536 tiles are about 45 minutes; more is refused at load, before anything runs
MAX_TILES = 65_536


class NetworkError(LocatedError):
    """A network description that cannot be run; the location names the file, line and key path."""


@contextmanager
def as_network_error(loc: Location | None = None):
    """Re-raise a :mod:`safeio` refusal as a NetworkError (at ``loc`` when given)."""
    try:
        yield
    except DescriptionError as exc:
        raise NetworkError(exc.message, loc or exc.location) from None


def read_toml_text(path: Path, what: str, max_bytes: int = 1_000_000) -> str:
    """The text of a TOML file through :mod:`safeio`: a regular file of at most ``max_bytes``, UTF-8."""
    from ...description import safeio
    with as_network_error():
        data = safeio.read_bytes(Path(path), Location(file=str(path)), what, max_bytes)
        return safeio.decode(data, str(path), what)


@dataclass
class Layer:
    name: str
    weights: np.ndarray                 # (inputs, outputs)
    bias: np.ndarray | None
    activation: str
    input_max: float | None            # None: calibrate


@dataclass
class Periphery:
    dac_bits: int = 8
    r_row: float = 1.0
    r_col: float = 1.0
    r_out: float = 0.0
    rf: float = 1e3
    adc_bits: int = 8
    calibration: str = "batch"
    calibration_samples: int = 64
    margin: float = 1.1
    adc_vmin: float | None = None       # explicit ADC range (overrides calibration)
    adc_vmax: float | None = None
    t_read: float = 100e-9
    t_adc: float = 10e-9
    adc_share: int = 1                  # columns per ADC (conversions of a tile run in adc_share rounds)
    adc_fom: float = 5e-15              # Walden figure of merit, J per conversion step
    dac_unit_cap: float = 1e-15         # F per DAC level (binary-weighted capacitive DAC)


@dataclass
class DeviceSpec:
    model: str = "vteam"
    params: dict[str, Any] = field(default_factory=dict)
    variability: dict[str, float] = field(default_factory=dict)
    variability_seed: int = 0
    stuck_on: float = 0.0
    stuck_off: float = 0.0
    faults_seed: int = 0
    read_noise: float = 0.0
    noise_batch: int = 100


@dataclass
class Network:
    path: Path | None
    name: str
    seed: int
    input_min: float
    input_max: float
    tile_rows: int
    tile_cols: int
    mapping: str
    vread: float
    gmin: float | None
    gmax: float | None
    device: DeviceSpec
    periphery: Periphery
    layers: list[Layer]
    text: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    tile_pad: bool = False             # build every tile at full size (unused cells at gmin, unused rows at 0 V)

    def location(self, key: str) -> Location:
        return _locate(self.path, self.text, key)

    @property
    def n_inputs(self) -> int:
        return self.layers[0].weights.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].weights.shape[1]


# -- reading ---------------------------------------------------------------------------------

def load_network(path: str | Path, overrides: Mapping[str, str] | None = None) -> Network:
    """Read and check a network file; ``overrides`` maps dotted key paths to TOML values (``--set``)."""
    path = Path(path)
    text = read_toml_text(path, "network file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+), column (\d+)", str(exc))
        raise NetworkError(f"TOML syntax: {exc}", Location(file=str(path), line=int(m[1]) if m else None,
                                                           column=int(m[2]) if m else None)) from None
    ov = {}
    for key, value in (overrides or {}).items():
        ov[key] = _apply_override(data, key, value, path)
    from ...tomlkeys import MAX_INT, oversized_int
    huge = oversized_int(data)
    if huge is not None:
        raise NetworkError(f"'{huge}': an integer beyond +-{MAX_INT} (64 bits)", _locate(path, text, huge))
    return _validate(data, path, text, ov)


def parse_overrides(items) -> dict[str, str]:
    """``["a.b=1", ...]`` -> ``{"a.b": "1"}``; a malformed item is a NetworkError."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise NetworkError(f"--set expects KEY=VALUE, got {item!r}", Location(parameter=item))
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _toml_value(text: str):
    if not isinstance(text, str):
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text                         # a bare word: a string


def _apply_override(data: dict, key: str, value, path: Path):
    parts = key.split(".")
    if not all(parts) or len(parts) > 6:
        raise NetworkError(f"--set: malformed key path {key!r}", Location(file=str(path), parameter=key))
    node: Any = data
    for k, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not re.fullmatch(r"[0-9]{1,9}", part) or int(part) >= len(node):
                raise NetworkError(f"--set: no entry {part} in '{'.'.join(parts[:k])}' "
                                   f"({len(node)} entries)", Location(file=str(path), parameter=key))
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise NetworkError(f"--set: '{'.'.join(parts[:k + 1])}' is not a table", Location(file=str(path), parameter=key))
    if not isinstance(node, dict):
        raise NetworkError(f"--set: '{'.'.join(parts[:-1])}' is not a table", Location(file=str(path), parameter=key))
    v = _toml_value(value)
    node[parts[-1]] = v
    return v


def _locate(path, text: str, key: str) -> Location:
    """File and line where ``key`` is set (:func:`~circuitkit.tomlkeys.key_line`: else the line of the
    table that holds it), with the key path."""
    from ...tomlkeys import key_line
    line = key_line(text, key) if text else None
    return Location(file=None if path is None else str(path), line=line, parameter=key)


class _Checker:
    def __init__(self, path, text):
        self.path, self.text = path, text

    def fail(self, key, msg):
        raise NetworkError(msg, _locate(self.path, self.text, key))

    def table(self, data, key, allowed):
        t = data.get(key.split(".")[-1], {}) if isinstance(data, dict) else {}
        if not isinstance(t, dict):
            self.fail(key, f"'{key}' must be a table")
        unknown = sorted(set(t) - set(allowed))
        if unknown:
            self.fail(f"{key}.{unknown[0]}", f"unknown key '{unknown[0]}' in [{key}] (known: {', '.join(allowed)})")
        return t

    def number(self, t, key, default, lo=None, hi=None, lo_open=False, integer=False, none_ok=False):
        name = key.split(".")[-1]
        v = t.get(name, default)
        if v is None and none_ok:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not float(v).is_integer()):
            self.fail(key, f"'{key}' must be {'an integer' if integer else 'a number'}, got {v!r}")
        v = float(v)
        if not math.isfinite(v):
            self.fail(key, f"'{key}' must be finite, got {v}")
        if lo is not None and (v < lo or (lo_open and v == lo)):
            self.fail(key, f"'{key}' = {v:g} must be {'>' if lo_open else '>='} {lo:g}")
        if hi is not None and v > hi:
            self.fail(key, f"'{key}' = {v:g} must be <= {hi:g}")
        return int(v) if integer else v

    def choice(self, t, key, default, choices):
        v = t.get(key.split(".")[-1], default)
        if v not in choices:
            self.fail(key, f"'{key}' must be one of {', '.join(choices)}, got {v!r}")
        return v


TOP = ("name", "seed", "input", "tile", "mapping", "device", "periphery", "layers")


def _validate(data: dict, path: Path, text: str, overrides: dict) -> Network:
    c = _Checker(path, text)
    unknown = sorted(set(data) - set(TOP))
    if unknown:
        c.fail(unknown[0], f"unknown key '{unknown[0]}' (known: {', '.join(TOP)})")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        c.fail("name", f"'name' must be a short plain name, got {name!r}")
    seed = c.number(data, "seed", 0, lo=0, integer=True)

    inp = c.table(data, "input", ("range",))
    rng = inp.get("range", [0.0, 1.0])
    if (not isinstance(rng, list) or len(rng) != 2 or
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in rng)
            or not rng[0] < rng[1]):
        c.fail("input.range", f"'input.range' must be [low, high] with low < high, got {rng!r}")

    tile = c.table(data, "tile", ("rows", "cols", "pad"))
    tr = c.number(tile, "tile.rows", 64, lo=1, hi=4096, integer=True)
    tc = c.number(tile, "tile.cols", 64, lo=2, hi=4096, integer=True)
    pad = tile.get("pad", False)
    if not isinstance(pad, bool):
        c.fail("tile.pad", f"'tile.pad' must be true or false, got {pad!r}")
    if tr * tc > MAX_TILE_CELLS:
        c.fail("tile.rows", f"tile of {tr}x{tc} cells is larger than {MAX_TILE_CELLS}")

    mp = c.table(data, "mapping", ("kind", "vread", "gmin", "gmax"))
    mapping = c.choice(mp, "mapping.kind", "differential", MAPPINGS)
    vread = c.number(mp, "mapping.vread", 0.2, lo=0, hi=10, lo_open=True)
    gmin = c.number(mp, "mapping.gmin", None, lo=0, lo_open=True, none_ok=True)
    gmax = c.number(mp, "mapping.gmax", None, lo=0, lo_open=True, none_ok=True)
    if (gmin is None) != (gmax is None):
        c.fail("mapping.gmin", "give both 'mapping.gmin' and 'mapping.gmax', or neither (the device's range)")
    if gmin is not None and not gmin < gmax:
        c.fail("mapping.gmax", f"'mapping.gmax' = {gmax:g} must be larger than gmin = {gmin:g}")
    if mapping == "offset" and tc < 2:
        c.fail("tile.cols", "offset mapping needs at least 2 tile columns")

    dv = c.table(data, "device", ("model", "params", "variability", "faults", "read_noise"))
    dev = DeviceSpec()
    dev.model = dv.get("model", "vteam")
    from ...devices.registry import get_model
    try:
        model = get_model(dev.model) if isinstance(dev.model, str) else None
    except Exception as exc:       # unknown model: the registry's message lists the known ones
        c.fail("device.model", f"device model: {exc}")
    if model is None:
        c.fail("device.model", f"'device.model' must be a model name, got {dev.model!r}")
    params = dv.get("params", {})
    if not isinstance(params, dict):
        c.fail("device.params", "'device.params' must be a table")
    known = {p.name for p in model.parameters}
    for k, v in params.items():
        if k not in known:
            c.fail(f"device.params.{k}", f"model '{model.name}' has no parameter '{k}'")
        c.number(params, f"device.params.{k}", None)
    try:
        model.resolve(dict(params))
    except Exception as exc:
        c.fail("device.params", f"device parameters: {getattr(exc, 'message', exc)}")
    dev.params = dict(params)
    var = c.table(dv, "device.variability", ("sigma", "seed"))
    sig = var.get("sigma", {})
    if not isinstance(sig, dict):
        c.fail("device.variability.sigma", "'device.variability.sigma' must be a table parameter = sigma")
    for k in sig:
        if k not in known:
            c.fail(f"device.variability.sigma.{k}", f"model '{model.name}' has no parameter '{k}'")
        c.number(sig, f"device.variability.sigma.{k}", None, lo=0, hi=3)
    dev.variability = {k: float(v) for k, v in sig.items() if v > 0}
    dev.variability_seed = c.number(var, "device.variability.seed", 0, lo=0, integer=True)
    ft = c.table(dv, "device.faults", ("on", "off", "seed"))
    dev.stuck_on = c.number(ft, "device.faults.on", 0.0, lo=0, hi=1)
    dev.stuck_off = c.number(ft, "device.faults.off", 0.0, lo=0, hi=1)
    if dev.stuck_on + dev.stuck_off > 1:
        c.fail("device.faults.off", "stuck-at fractions add up to more than 1")
    dev.faults_seed = c.number(ft, "device.faults.seed", 0, lo=0, integer=True)
    rn = c.table(dv, "device.read_noise", ("sigma", "batch"))
    dev.read_noise = c.number(rn, "device.read_noise.sigma", 0.0, lo=0, hi=1)
    dev.noise_batch = c.number(rn, "device.read_noise.batch", 100, lo=1, hi=1_000_000, integer=True)

    pp = c.table(data, "periphery", ("dac", "wires", "drivers", "tia", "adc", "timing", "energy"))
    per = Periphery()
    t = c.table(pp, "periphery.dac", ("bits",))
    per.dac_bits = c.number(t, "periphery.dac.bits", 8, lo=0, hi=24, integer=True)
    t = c.table(pp, "periphery.wires", ("r_row", "r_col"))
    per.r_row = c.number(t, "periphery.wires.r_row", 1.0, lo=0, hi=1e6)
    per.r_col = c.number(t, "periphery.wires.r_col", 1.0, lo=0, hi=1e6)
    t = c.table(pp, "periphery.drivers", ("r_out",))
    per.r_out = c.number(t, "periphery.drivers.r_out", 0.0, lo=0, hi=1e9)
    t = c.table(pp, "periphery.tia", ("rf",))
    per.rf = c.number(t, "periphery.tia.rf", 1e3, lo=0, hi=1e12, lo_open=True)
    t = c.table(pp, "periphery.adc", ("bits", "calibration", "samples", "margin", "vmin", "vmax", "share"))
    per.adc_bits = c.number(t, "periphery.adc.bits", 8, lo=0, hi=24, integer=True)
    per.calibration = c.choice(t, "periphery.adc.calibration", "batch", CALIBRATIONS)
    per.calibration_samples = c.number(t, "periphery.adc.samples", 64, lo=1, hi=100_000, integer=True)
    per.margin = c.number(t, "periphery.adc.margin", 1.1, lo=0, hi=100, lo_open=True)
    per.adc_vmin = c.number(t, "periphery.adc.vmin", None, none_ok=True)
    per.adc_vmax = c.number(t, "periphery.adc.vmax", None, none_ok=True)
    if (per.adc_vmin is None) != (per.adc_vmax is None) or (per.adc_vmin is not None and per.adc_vmin >= per.adc_vmax):
        if per.adc_vmin is not None or per.adc_vmax is not None:
            c.fail("periphery.adc.vmax", "give both 'periphery.adc.vmin' < 'periphery.adc.vmax', or neither")
    per.adc_share = c.number(t, "periphery.adc.share", 1, lo=1, hi=4096, integer=True)
    t = c.table(pp, "periphery.timing", ("read", "adc"))
    per.t_read = c.number(t, "periphery.timing.read", 100e-9, lo=0, hi=1, lo_open=True)
    per.t_adc = c.number(t, "periphery.timing.adc", 10e-9, lo=0, hi=1)
    t = c.table(pp, "periphery.energy", ("adc_fom", "dac_unit_cap"))
    per.adc_fom = c.number(t, "periphery.energy.adc_fom", 5e-15, lo=0, hi=1e-6)
    per.dac_unit_cap = c.number(t, "periphery.energy.dac_unit_cap", 1e-15, lo=0, hi=1e-6)

    layers_raw = data.get("layers")
    if not isinstance(layers_raw, list) or not layers_raw:
        c.fail("layers", "the network needs at least one [[layers]] table")
    if len(layers_raw) > 64:
        c.fail("layers", "more than 64 layers")
    layers = []
    base = path.parent
    for k, lr in enumerate(layers_raw):
        key = f"layers.{k}"
        if not isinstance(lr, dict):
            c.fail(key, f"'{key}' must be a table")
        unknown = sorted(set(lr) - {"name", "weights", "bias", "activation", "input_max"})
        if unknown:
            c.fail(f"{key}.{unknown[0]}", f"unknown key '{unknown[0]}' in layer {k} "
                   "(known: name, weights, bias, activation, input_max)")
        lname = lr.get("name", f"layer{k}")
        if not isinstance(lname, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", lname):
            c.fail(f"{key}.name", f"layer name must be an identifier, got {lname!r}")
        if "weights" not in lr:
            c.fail(f"{key}.weights", f"layer {k} needs 'weights'")
        w = _load_array(lr["weights"], base, c, f"{key}.weights", ndim=2)
        if layers and layers[-1].weights.shape[1] != w.shape[0]:
            c.fail(f"{key}.weights", f"layer {k} takes {w.shape[0]} inputs but layer {k - 1} gives "
                   f"{layers[-1].weights.shape[1]}")
        b = None if lr.get("bias") is None else _load_array(lr["bias"], base, c, f"{key}.bias", ndim=1)
        if b is not None and b.shape[0] != w.shape[1]:
            c.fail(f"{key}.bias", f"bias has {b.shape[0]} entries for {w.shape[1]} outputs")
        act = c.choice(lr, f"{key}.activation", "none", ACTIVATIONS)
        if act == "argmax" and k != len(layers_raw) - 1:
            c.fail(f"{key}.activation", "'argmax' is only allowed on the last layer")
        im = lr.get("input_max", "calibrate")
        if im != "calibrate":
            im = c.number(lr, f"{key}.input_max", None, lo=0, lo_open=True)
        else:
            im = None
        if k == 0:
            if "input_max" in lr:
                c.fail(f"{key}.input_max", "the first layer's input full scale is 'input.range'; "
                       "remove 'input_max' from layer 0")
            im = float(rng[1] - rng[0])   # the first layer's full scale is the input range
        layers.append(Layer(lname, w, b, act, im))
    per_tile = tc // 2 if mapping == "differential" else tc - 1
    if per_tile < 1:
        c.fail("tile.cols", f"a tile of {tc} columns holds no output with {mapping} mapping")
    n_tiles = sum(-(-L.weights.shape[0] // tr) * -(-L.weights.shape[1] // per_tile) for L in layers)
    if n_tiles > MAX_TILES:
        c.fail("tile.rows", f"the network needs {n_tiles:,} tiles of {tr}x{tc}, more than the limit of "
               f"{MAX_TILES:,} (each is built and read on its own): use larger tiles")
    return Network(path, name, seed, float(rng[0]), float(rng[1]), tr, tc, mapping, vread, gmin, gmax, dev, per,
                   layers, text, overrides, pad)


def _load_array(ref, base: Path, c: _Checker, key: str, ndim: int) -> np.ndarray:
    """``file.npy`` or ``file.npz:KEY`` relative to the network file; no pickles, no absolute paths.

    Read through :func:`circuitkit.description.safeio.read_array`: a regular file (a symlink's target is
    checked, devices and FIFOs are refused unread) of at most ``8 * MAX_WEIGHTS`` bytes, an ``.npz`` member's
    header and uncompressed size checked before it is decompressed.
    """
    from ...description import safeio
    if not isinstance(ref, str) or not ref:
        c.fail(key, f"'{key}' must be a file name (.npy, or .npz:KEY)")
    fname, _, member = ref.partition(":")
    try:
        safeio.check_path_text(ref, None, key)
    except DescriptionError as exc:
        c.fail(key, f"'{key}': {exc.message}")
    try:
        p = safeio.contained(base, fname, None, f"'{key}'")
    except DescriptionError as exc:
        c.fail(key, exc.message)
    if p.suffix not in (".npy", ".npz"):
        c.fail(key, f"'{key}': only .npy and .npz files are read, got {fname!r}")
    if p.suffix == ".npz" and not member:
        c.fail(key, f"'{key}': name the array in the .npz file as '{fname}:KEY'")
    if not p.exists() and not p.is_symlink():
        c.fail(key, f"'{key}': file '{fname}' not found (relative to {base})")
    if p.suffix == ".npy" and member:
        c.fail(key, f"'{key}': a .npy file holds one array; remove ':{member}'")
    try:
        arr = safeio.read_array(p, None, f"'{key}'", max_bytes=8 * MAX_WEIGHTS, max_array_bytes=8 * MAX_WEIGHTS,
                                keys=(member,) if member else (), only_ok=False, keep_dtype=True)
    except DescriptionError as exc:
        c.fail(key, f"{exc.message} (file {fname!r} relative to {base})")
    if arr.dtype.kind not in "fiu" or arr.ndim != ndim or arr.size == 0 or arr.size > MAX_WEIGHTS:
        c.fail(key, f"'{key}': {fname} must hold a non-empty {ndim}-D numeric array, got shape {arr.shape} "
                    f"dtype {arr.dtype}")
    arr = arr.astype(float)
    if not np.all(np.isfinite(arr)):
        c.fail(key, f"'{key}': {fname} holds non-finite values")
    return arr
