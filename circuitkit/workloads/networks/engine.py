"""Inference of a whole network on tiled crossbars, with the periphery in the loop.

For every layer ``y = act(W^T x + b)``:

1. **Input encoding.** The layer's input ``x = offset + full_scale * u`` is
   encoded as ``u`` in [0, 1] (values outside are clipped and counted as DAC
   clipping); signed inputs (after an ``activation = "none"`` layer) are read
   as two non-negative vectors ``u+`` and ``u-`` and subtracted digitally. The
   first layer's offset and full scale come from ``input.range``; a hidden
   layer's full scale is ``input_max`` or, with ``"calibrate"``, the largest
   activation of the *float* network on the calibration batch (the first
   ``periphery.adc.samples`` inputs) times ``periphery.adc.margin``. The row
   voltages are ``u * vread`` quantised by the DAC (``dac.bits``; 0 = ideal).
2. **Tiles.** Each tile (:mod:`.tiles`) is read in the behavioural engine
   with IR drop and the cells' own I-V, the TIA converts the column currents
   ``v = -rf * I`` and the ADC quantises ``v`` over its range
   (:func:`circuitkit.peripherals.adc_convert`; clipped conversions counted).
   The ADC range per tile comes from ``periphery.adc.vmin/vmax`` if given,
   else from ``calibration = "weights"`` (the largest column current the
   programmed conductances can draw at full input, ``vread * max_j sum_i G_ij``
   over the block's own rows, times ``margin``) or ``"batch"`` (the largest
   TIA swing of the tile over the calibration batch -- every read of it, both
   halves of a signed input, across noise batches -- times ``margin``).
3. **Digital.** The codes are turned back into currents and decoded
   (differential ``I+ - I-``, offset ``I_k - I_offset``) into partial sums
   ``W_tile^T u * scale``; partial sums of a layer's tiles are added, the
   offset part ``offset * sum_i W_ij`` and the bias added, and the activation
   (``relu``, ``none``, ``argmax``) applied in numpy.

Energy per inference: the array part is the dissipation of every read
(cells, wires, drivers; :class:`~.tiles.TileReader`, from the solved node
voltages) times the read time ``timing.read``, averaged over
``energy_samples`` inputs per tile. Converters use per-conversion models with
their constants as parameters:

* ADC: ``E = FoM_W * 2**bits`` (Walden figure of merit, J per conversion
  step; R. H. Walden, IEEE JSAC 17(4):539-550, 1999). The default 5 fJ/step
  is a typical value for medium-resolution, moderate-speed SAR ADCs in
  B. Murmann, "ADC Performance Survey 1997-2024" (Stanford, online data set).
* DAC: ``E = 2**bits * C_unit * vread**2``, the switching energy order of a
  binary-weighted capacitive DAC (M. Saberi et al., IEEE TCAS-I
  58(8):1736-1748, 2011); ``C_unit`` default 1 fF.

Latency: layers run one after the other, the tiles of a layer in parallel;
a layer takes ``reads * (timing.read + adc.share * timing.adc)`` with
``reads`` 2 for signed inputs, else 1.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ...errors import Location
from ...peripherals import adc_clip, adc_convert, dac_quantize
from .spec import Network, NetworkError
from . import tiles as T


@dataclass
class LayerReport:
    name: str
    tiles: int
    tile_shapes: list
    signed_inputs: bool
    input_full_scale: float
    rel_error: float              # hardware layer output vs float layer on the hardware's own input
    rel_error_vs_float: float     # hardware layer output vs the float network's (errors accumulated)
    dac_clipped: int
    dac_conversions: int
    adc_clipped: int
    adc_conversions: int
    adc_ranges: list              # per tile [vmin, vmax]
    read_method: str
    energy_array_j: float         # per inference: cells + wires + drivers
    energy_breakdown_j: dict
    energy_dac_j: float
    energy_adc_j: float
    latency_s: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class VerifyReport:
    layer: int
    tile: int
    vectors: int
    max_abs_error: float          # A
    rel_error: float              # max |I_spice - I_behavioural| / max |I_spice|
    current_scale: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class NetworkResult:
    network: str
    n: int
    outputs: np.ndarray           # (n, k) hardware outputs of the last layer (before argmax)
    float_outputs: np.ndarray
    predictions: np.ndarray
    float_predictions: np.ndarray
    labels: np.ndarray | None
    accuracy: float | None
    float_accuracy: float | None
    agreement: float              # hardware top-1 == float top-1
    layers: list[LayerReport]
    verify: list[VerifyReport] = field(default_factory=list)
    verify_tolerance: float = 1e-6
    wall_s: float = 0.0

    @property
    def energy_per_inference(self) -> float:
        return float(sum(L.energy_array_j + L.energy_dac_j + L.energy_adc_j for L in self.layers))

    @property
    def latency(self) -> float:
        return float(sum(L.latency_s for L in self.layers))

    @property
    def verify_ok(self) -> bool | None:
        if not self.verify:
            return None
        return all(v.rel_error <= self.verify_tolerance for v in self.verify)

    def summary(self) -> str:
        acc = "" if self.accuracy is None else \
            f"accuracy {self.accuracy:.4f} (float network {self.float_accuracy:.4f}), "
        s = (f"{self.network}: {self.n} inputs, {acc}agreement with float {self.agreement:.4f}; "
             f"energy {self.energy_per_inference:.3e} J/inference, latency {self.latency:.3e} s; "
             f"ADC clipped {sum(L.adc_clipped for L in self.layers)} of "
             f"{sum(L.adc_conversions for L in self.layers)} conversions")
        if self.verify:
            worst = max(v.rel_error for v in self.verify)
            s += (f"; ngspice check of {len(self.verify)} tiles: worst relative current error {worst:.2e} "
                  f"({'within' if self.verify_ok else 'OUTSIDE'} {self.verify_tolerance:g})")
        return s

    def as_dict(self) -> dict:
        return {"network": self.network, "inputs": self.n, "accuracy": self.accuracy,
                "float_accuracy": self.float_accuracy, "agreement_with_float": self.agreement,
                "energy_per_inference_j": self.energy_per_inference, "latency_s": self.latency,
                "adc_clipped": int(sum(L.adc_clipped for L in self.layers)),
                "dac_clipped": int(sum(L.dac_clipped for L in self.layers)),
                "layers": [L.as_dict() for L in self.layers],
                "verify": [v.as_dict() for v in self.verify], "verify_tolerance": self.verify_tolerance,
                "verify_ok": self.verify_ok, "wall_s": self.wall_s}


def float_forward(net: Network, x: np.ndarray) -> list[np.ndarray]:
    """Activations of the float network: [input, layer 0 output, ...] (the last before argmax)."""
    acts = [x]
    for layer in net.layers:
        y = acts[-1] @ layer.weights + (0.0 if layer.bias is None else layer.bias)
        acts.append(_activate(y, layer.activation))
    return acts


def _activate(y: np.ndarray, act: str) -> np.ndarray:
    return np.maximum(y, 0.0) if act == "relu" else y


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / (np.linalg.norm(b) or 1.0))


def check_data(net: Network, data, labels=None, where: str = "data", files: tuple = (None, None)
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs (n, inputs) and integer labels, checked; errors name ``where`` (and the data / labels file
    of ``files`` when they came from one)."""
    x = np.asarray(data, dtype=float)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != net.n_inputs or x.shape[0] == 0:
        raise NetworkError(f"expected (n, {net.n_inputs}) inputs, got shape {x.shape}",
                           Location(file=files[0], parameter=where))
    if not np.all(np.isfinite(x)):
        raise NetworkError("inputs hold non-finite values (nan or inf)", Location(file=files[0], parameter=where))
    y = None
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise NetworkError(f"{y.shape[0]} labels for {x.shape[0]} inputs (they must pair up one to one)",
                               Location(file=files[1], parameter="labels"))
        if y.dtype.kind not in "iu" and not np.all(np.mod(y, 1) == 0):
            raise NetworkError(f"expected {x.shape[0]} integer labels, got shape {y.shape} "
                               f"dtype {y.dtype}", Location(file=files[1], parameter="labels"))
        y = y.astype(np.int64)
        if y.min() < 0 or y.max() >= net.n_outputs:
            raise NetworkError(f"values must be class indices 0..{net.n_outputs - 1}",
                               Location(file=files[1], parameter="labels"))
    return x, y


def run_network(net: Network, data, labels=None, *, verify_tiles: int = 0, verify_vectors: int = 2,
                energy_samples: int = 16, log=None) -> NetworkResult:
    """Run ``data`` (n, inputs) through the network on simulated tiles (module docstring)."""
    t_start = time.perf_counter()
    x, y = check_data(net, data, labels)
    per = net.periphery
    n = x.shape[0]
    acts_f = float_forward(net, x)
    cal = slice(0, min(per.calibration_samples, n))
    h = x
    reports: list[LayerReport] = []
    verify: list[VerifyReport] = []
    vrng = np.random.default_rng([net.seed, 7919])
    for k, layer in enumerate(net.layers):
        w = layer.weights
        if k == 0:
            offset, full = net.input_min, net.input_max - net.input_min
            signed = False
        else:
            offset = 0.0
            signed = net.layers[k - 1].activation == "none"
            full = layer.input_max
            if full is None:
                full = float(np.max(np.abs(acts_f[k][cal]))) * per.margin or 1.0
        u = (h - offset) / full
        dac_clipped = int(np.sum(u > 1) + np.sum(u < (-1 if signed else 0)))
        parts = [(1.0, np.clip(u, 0, 1))] + ([(-1.0, np.clip(-u, 0, 1))] if signed else [])
        tiles = T.make_tiles(net, k)
        acc = np.zeros((n, w.shape[1]))
        adc_clipped = adc_conv = dac_conv = 0
        ranges, methods = [], set()
        e_array, e_break = 0.0, {}
        gmin, gmax = T.conductance_window(net)
        chosen = set(vrng.choice(len(tiles), size=min(verify_tiles, len(tiles)), replace=False).tolist()) \
            if verify_tiles > 0 else set()
        for tile in tiles:
            C_used = tile.used[1]
            batch = net.device.noise_batch if net.device.read_noise > 0 else n
            raw = []                                   # (inputs, sign, TIA voltages) of every read
            for b, s0 in enumerate(range(0, n, batch)):
                sl = slice(s0, min(s0 + batch, n))
                states = T.noisy_states(net, tile, b)
                circuit = T.build_tile(net, tile, states)
                reader = T.TileReader(circuit, net.vread)
                for sign, up in parts:
                    v_rows = up[sl, tile.rows] * net.vread
                    if per.dac_bits:
                        v_rows = dac_quantize(v_rows, per.dac_bits, 0.0, net.vread)
                    dac_conv += v_rows.size
                    v_rows = tile.pad_vectors(v_rows)
                    out = reader.read(v_rows)
                    methods.add(out.method)
                    cur = out.currents[:, :C_used]
                    if b == 0 and energy_samples > 0:
                        e = reader.read(v_rows[:energy_samples], energy=True).power
                        for role, pw in e.items():
                            val = float(np.mean(pw)) * per.t_read
                            e_break[role] = e_break.get(role, 0.0) + val
                            e_array += val
                    raw.append((sl, sign, -per.rf * cur))
                    if tile.index in chosen and b == 0 and sign > 0:
                        pick = np.sort(vrng.choice(sl.stop - sl.start, size=min(verify_vectors, sl.stop - sl.start),
                                                   replace=False))
                        ref = T.spice_currents(net, tile, states, v_rows[pick])[:, :C_used]
                        err = float(np.abs(ref - cur[pick]).max())
                        scale = float(np.abs(ref).max()) or 1e-300
                        verify.append(VerifyReport(k, tile.index, len(pick), err, err / scale, scale))
                        if log:
                            log(f"  verified layer {k} tile {tile.index} on {len(pick)} vectors in ngspice: "
                                f"relative error {err / scale:.2e}")
            # the ADC range from the calibration inputs (the first ``adc.samples``, whichever noise batches
            # they fall in) over every read of them -- u+ and u- of a signed input alike
            v_cal = [v[: max(0, min(sl.stop, cal.stop) - sl.start)] for sl, _, v in raw]
            adc_range = _adc_range(net, tile, np.concatenate(v_cal) if v_cal else np.zeros((0, C_used)))
            ranges.append(list(adc_range))
            for sl, sign, v_tia in raw:
                if per.adc_bits:
                    lo, hi = adc_range
                    # clipped where the clip changes the code (more than half an LSB outside the range), as
                    # peripherals.adc_clip and a crossbar's outputs.adc_clipped count it
                    adc_clipped += int(np.count_nonzero(adc_clip(v_tia, per.adc_bits, lo, hi)))
                    adc_conv += v_tia.size
                    codes = adc_convert(v_tia, per.adc_bits, lo, hi)
                    v_tia = lo + codes * (hi - lo) / (2 ** per.adc_bits - 1)
                i_dig = -v_tia / per.rf
                if net.mapping == "differential":
                    p = (i_dig[:, 0::2] - i_dig[:, 1::2]) / ((gmax - gmin) * net.vread)
                else:
                    p = (i_dig[:, :-1] - i_dig[:, -1:]) / (0.5 * (gmax - gmin) * net.vread)
                acc[sl, tile.outs] += sign * full * tile.scale * p
        ylin = acc + offset * w.sum(axis=0) + (0.0 if layer.bias is None else layer.bias)
        ref_isolated = h @ w + (0.0 if layer.bias is None else layer.bias)
        ref_float = acts_f[k] @ w + (0.0 if layer.bias is None else layer.bias)
        reads = len(parts)
        e_dac = dac_conv / n * (2 ** per.dac_bits * per.dac_unit_cap * net.vread ** 2 if per.dac_bits else 0.0)
        e_adc = adc_conv / n * (per.adc_fom * 2 ** per.adc_bits if per.adc_bits else 0.0)
        latency = reads * (per.t_read + per.adc_share * per.t_adc)
        reports.append(LayerReport(
            layer.name, len(tiles), [list(t.shape) for t in tiles], signed, float(full),
            _rel(ylin, ref_isolated), _rel(ylin, ref_float), dac_clipped, dac_conv, adc_clipped, adc_conv,
            ranges, ", ".join(sorted(methods)), e_array, e_break, e_dac, e_adc, latency))
        if log:
            log(f"layer {k} '{layer.name}': {len(tiles)} tiles, output error {reports[-1].rel_error:.3e} "
                f"(vs float network {reports[-1].rel_error_vs_float:.3e}), ADC clipped {adc_clipped}/{adc_conv}")
        h = _activate(ylin, layer.activation)
    pred = np.argmax(h, axis=1)
    fpred = np.argmax(acts_f[-1], axis=1)
    result = NetworkResult(
        net.name, n, h, acts_f[-1], pred, fpred, y,
        None if y is None else float(np.mean(pred == y)), None if y is None else float(np.mean(fpred == y)),
        float(np.mean(pred == fpred)), reports, verify)
    result.wall_s = time.perf_counter() - t_start
    return result


def _adc_range(net: Network, tile, v_cal: np.ndarray) -> tuple[float, float]:
    per = net.periphery
    if per.adc_vmin is not None:
        return per.adc_vmin, per.adc_vmax
    # the cells a read can drive: the block's own rows (with tile.pad the unused rows sit at 0 V)
    full_scale = per.rf * net.vread * float(tile.g_target[:tile.used[0], :tile.used[1]].sum(axis=0).max())
    if per.calibration == "weights":
        swing = full_scale
    else:
        swing = float(np.max(-v_cal, initial=0.0))
    swing = swing * per.margin
    if swing <= 0:
        swing = full_scale
    return -swing, 0.0
