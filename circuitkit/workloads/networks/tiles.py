"""Tiles: a layer's weights cut into crossbar-sized blocks, built as circuits and read in batches.

A layer ``W`` (inputs x outputs) is cut into row blocks of ``tile.rows``
inputs and column blocks of ``tile.cols // 2`` outputs (differential: a
column pair per output, ``G± = gmin + (gmax - gmin) max(±w, 0) / max|w|``) or
``tile.cols - 1`` outputs (offset: ``G = gmid + (gmax - gmin)/2 w / max|w|``
and one offset column at ``gmid``), the mapping of
:func:`circuitkit.circuit.states.weights_to_conductance`; each block is one
tile with its own weight scale ``max|w|``. A tile's crossbar has the size of
its block (a partly filled tile is built without its unused lines), or with
``tile.pad = true`` the full tile size with the block in its top-left corner
(nearest the row drivers), unused cells at ``gmin`` and unused rows at 0 V. States
come from :func:`~circuitkit.circuit.states.conductance_to_state` (bisection
on the device twin's I-V at ``vread``), so device-to-device variability and
stuck-at faults (applied by :func:`~circuitkit.circuit.build.build_circuit`
as for any crossbar) act on open-loop programmed cells.

**Read noise** is a conductance perturbation ``G (1 + sigma N(0, 1))``
(clipped to the device's range) drawn afresh for every batch of
``read_noise.batch`` inputs from a generator seeded by (network seed, layer,
tile, batch), realised as the cells' *states*: the circuit of that batch --
the one both engines simulate -- holds the noisy devices, so an ngspice check
of a tile sees exactly the devices the behavioural read saw.

**Reads.** :class:`TileReader` reads a tile's column currents for a batch of
row-voltage vectors:

* cells linear over the read (VTEAM ``iv = 0``; checked, not assumed, by
  evaluating the twin's current against its linearisation at sampled
  voltages): the engine's batched reads,
  :meth:`circuitkit.behavioural.reads.LinearReads.read_many` (one
  factorisation, a transfer matrix), exact for this case;
* nonlinear cells (e.g. ``stanford_pku``'s ``sinh`` I-V), and every read
  that needs node voltages (energy): the engine's batched DC reads,
  :class:`circuitkit.behavioural.batch.CrossbarReader` with ``voltages=True``
  -- the one entry point for reads (per-vector Newton on the line solver for
  1R tiles with wires, else the shared-Jacobian chord path), to the engine's
  Newton tolerance; a read that does not converge is a
  :class:`ConvergenceError`, never a silent answer.

The same solver gives the node voltages, so the dissipation of every
resistive element of a read (cells, selectors, wires, driver outputs) is
``sum (v_a - v_b)^2 / r`` and ``sum i_d (v_p - v_n)``; the sum equals the
power the row drivers deliver, which is checked. Supported tiles: 1R and 1S1R
cells with ideal (virtual-ground) TIAs -- the circuits without transistors or
controlled sources; others are refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ... import limits
from ...circuit.build import build_circuit
from ...circuit.layout import Role
from ...circuit.model import VCCS, VCVS, Circuit, Devices, Mosfets, Resistors, VoltageSources
from ...circuit.states import conductance_to_state, weights_to_conductance
from ...design import Analysis, Crossbar, Design, Driver, ReadPhase, Sense, StateInit, Wires
from ...devices.base import ParamSet
from ...devices.registry import get_model
from ...errors import CircuitkitError, ConvergenceError, DescriptionError, Location
from .spec import Network, NetworkError

#: unknowns x vectors solved at once (memory bound of the batched solve)
CHUNK = 4_000_000


@dataclass
class Tile:
    """One crossbar-sized block of a layer."""

    layer: int
    index: int
    rows: slice                   # input rows of the layer
    outs: slice                   # outputs of the layer
    weights: np.ndarray           # the block
    scale: float                  # max |w| of the block
    g_target: np.ndarray          # (R, C) target conductances
    states: np.ndarray            # (R, C) programmed first states (noise-free)
    g_range: tuple[float, float]  # the device's conductance range at vread
    used: tuple[int, int] = (0, 0)  # rows and columns the block occupies (the top-left corner)

    @property
    def shape(self) -> tuple[int, int]:
        """The physical tile (the block's shape, or the full tile size with ``tile.pad``)."""
        return self.g_target.shape

    def pad_vectors(self, v: np.ndarray) -> np.ndarray:
        """Row voltages of the block (k, used rows) -> the tile's rows (unused rows at 0 V)."""
        if v.shape[1] == self.shape[0]:
            return v
        out = np.zeros((v.shape[0], self.shape[0]))
        out[:, :v.shape[1]] = v
        return out


def device_range(net: Network) -> tuple[float, float]:
    """Conductance range (S) the device reaches at ``vread`` over its first state in [0, 1]."""
    model = get_model(net.device.model)
    p = model.resolve(net.device.params)
    g = model.read_conductance(net.vread, np.array([0.0, 1.0]), p)
    return float(g.min()), float(g.max())


def conductance_window(net: Network) -> tuple[float, float]:
    lo, hi = device_range(net)
    if net.gmin is None:
        return lo, hi
    if net.gmin < lo * (1 - 1e-9) or net.gmax > hi * (1 + 1e-9):
        raise NetworkError(f"conductance window [{net.gmin:.3g}, {net.gmax:.3g}] S is outside what model "
                           f"'{net.device.model}' reaches at {net.vread:g} V: [{lo:.3g}, {hi:.3g}] S",
                           net.location("mapping.gmin"))
    return net.gmin, net.gmax


def make_tiles(net: Network, k: int) -> list[Tile]:
    """Cut layer ``k`` into tiles and map each to states."""
    w = net.layers[k].weights
    n_in, n_out = w.shape
    per = net.tile_cols // 2 if net.mapping == "differential" else net.tile_cols - 1
    gmin, gmax = conductance_window(net)
    model = get_model(net.device.model)
    p = model.resolve(net.device.params)
    lo, hi = device_range(net)
    tiles = []
    for r0 in range(0, n_in, net.tile_rows):
        for c0 in range(0, n_out, per):
            rs, cs = slice(r0, min(r0 + net.tile_rows, n_in)), slice(c0, min(c0 + per, n_out))
            block = w[rs, cs]
            R, k_out = block.shape
            C = 2 * k_out if net.mapping == "differential" else k_out + 1
            s = StateInit(kind="weights", mapping="differential" if net.mapping == "differential" else "single",
                          gmin=gmin, gmax=gmax, vread=net.vread)
            g = weights_to_conductance(block, s, R, C, net.location(f"layers.{k}.weights"))
            if net.tile_pad:
                full = np.full((net.tile_rows, net.tile_cols), gmin)
                full[:R, :C] = g
                g = full
            x = conductance_to_state(model, p, np.clip(g, lo, hi), net.vread, net.location("mapping"))
            tiles.append(Tile(k, len(tiles), rs, cs, block, float(np.max(np.abs(block)) or 1.0), g, x, (lo, hi),
                              (R, C)))
            check_read_disturb(net, tiles[-1])
    return tiles


#: largest state change (normalised, of [0, 1]) a read may cause before reads count as disturbing
READ_DISTURB_LIMIT = 1e-3


def check_read_disturb(net: Network, tile: Tile) -> float:
    """Refuse reads that would move the cells: |dx/dt| at +-vread times the read time, over the tile's states.

    The tiles are read as DC operating points with the states fixed; that is only right when a read
    leaves the states where they are (device thresholds above the read voltage)."""
    model = get_model(net.device.model)
    if not model.states:
        return 0.0
    p = model.resolve(net.device.params)
    x = tile.states.ravel()
    n = x.size
    xs = np.vstack([x[None, :]] + [np.broadcast_to(np.asarray(p[s.init], float), (n,))[None, :]
                                   for s in model.states[1:]])
    worst = 0.0
    for v in (net.vread, -net.vread):
        d = np.abs(np.asarray(model.dxdt(np.full(n, v), xs, p))[0]) * net.periphery.t_read
        worst = max(worst, float(np.max(d, initial=0.0)))
    if worst > READ_DISTURB_LIMIT:
        raise NetworkError(f"a read at {net.vread:g} V for {net.periphery.t_read:g} s would move the "
                           f"'{model.name}' cells' state by up to {worst:.3g} (limit {READ_DISTURB_LIMIT:g}): "
                           "reads are simulated with fixed states, so lower mapping.vread or raise the "
                           "device's switching thresholds", net.location("mapping.vread"))
    return worst


def noisy_states(net: Network, tile: Tile, batch: int) -> np.ndarray:
    """The tile's states for noise batch ``batch`` (the programmed states when read noise is off)."""
    sigma = net.device.read_noise
    if sigma <= 0:
        return tile.states
    rng = np.random.default_rng([net.seed, tile.layer, tile.index, batch])
    lo, hi = tile.g_range
    g = np.clip(tile.g_target * (1.0 + sigma * rng.standard_normal(tile.shape)), lo, hi)
    model = get_model(net.device.model)
    return conductance_to_state(model, model.resolve(net.device.params), g, net.vread)


def tile_design(net: Network, tile: Tile, states: np.ndarray, vector=None) -> Design:
    """The crossbar design of a tile with the given states; one read phase (``vector`` or zeros), DC."""
    R, C = tile.shape
    dev = net.device
    seed = int(np.random.default_rng([net.seed, tile.layer, tile.index]).integers(2 ** 31))
    xb = Crossbar(name="xb", rows=R, cols=C, cell="1R", model=dev.model, params=dict(dev.params),
                  state=StateInit(kind="values", values=np.asarray(states)),
                  wires=Wires(r_row=net.periphery.r_row, r_col=net.periphery.r_col),
                  variability=dict(dev.variability), variability_seed=(dev.variability_seed + seed) % 2 ** 31,
                  stuck_on=dev.stuck_on, stuck_off=dev.stuck_off, faults_seed=(dev.faults_seed + seed) % 2 ** 31)
    vec = [0.0] * R if vector is None else [float(v) for v in vector]
    return Design(title=f"{net.name}_L{tile.layer}_T{tile.index}".replace("-", "_").replace(".", "_"),
                  source=None if net.path is None else str(net.path), crossbar=xb,
                  row_driver=Driver(r_out=net.periphery.r_out), sense=Sense(kind="ideal", rf=net.periphery.rf),
                  stimulus=[ReadPhase(vec)], phase_duration=net.periphery.t_read, analysis=Analysis(kind="op"))


def build_tile(net: Network, tile: Tile, states: np.ndarray, vector=None) -> Circuit:
    """The tile's circuit; refused (located at ``tile.rows``) when building and reading it would not fit in
    the memory limit (:func:`circuitkit.limits.check_design`, the behavioural engine's estimate)."""
    design = tile_design(net, tile, states, vector)
    try:
        limits.check_design(design, engine="behavioural")
    except DescriptionError as exc:
        raise NetworkError(f"tile {tile.index} of layer {tile.layer} ({tile.shape[0]}x{tile.shape[1]}): "
                           f"{exc.message}; or use smaller tiles", net.location("tile.rows")) from None
    try:
        return build_circuit(design)
    except DescriptionError as exc:
        raise NetworkError(f"tile {tile.index} of layer {tile.layer}: {exc.message}",
                           net.location("device")) from None


# -- reading -----------------------------------------------------------------------------------

@dataclass
class ReadOut:
    currents: np.ndarray                    # (k, C) column currents, SPICE sign (into the column source)
    power: dict[str, np.ndarray] | None = None   # role -> (k,) dissipated power (W) per read
    iterations: int = 0
    method: str = ""


class TileReader:
    """Batched DC reads of one tile circuit (see the module docstring)."""

    def __init__(self, circuit: Circuit, vread: float):
        self.circuit = circuit
        self.layout = circuit.crossbar
        if self.layout is None:
            raise CircuitkitError("tile reads need a crossbar circuit")
        if circuit.groups_of(Mosfets) or circuit.groups_of(VCVS) or circuit.groups_of(VCCS):
            raise NetworkError("network tiles support 1R/1S1R cells with ideal TIAs only "
                               "(no access transistors or op-amp TIAs)")
        self.vread = vread
        self._linear_reads = None
        self._reader = None
        self.linear = self._cells_linear()
        self._setup()

    # -- what the energy needs: the elements' conductances and incidence ---------------------
    def _setup(self) -> None:
        c, lay = self.circuit, self.layout
        n = c.n_nodes                           # node ids 0..n-1 (0 ground)
        fixed = np.zeros(n, bool)
        fixed[0] = True
        self.row_nodes = []                     # (node ids, row indices) per driven end
        for g in c.groups_of(VoltageSources):
            if np.any(g.n_ != 0):
                raise NetworkError(f"tile reads: source group '{g.name}' is not grounded")
            if g.role == Role.CLAMP:
                continue                        # holds state terminals: states are fixed anyway
            fixed[g.p] = True
            if g.name in lay.row_sources:
                self.row_nodes.append((g.p, lay.driven_rows))
        for g in c.groups_of(Devices):
            fixed[g.states.ravel()] = True      # state terminals: not part of the DC read
        self.n_free = int(np.count_nonzero(~fixed))
        self.resistors = [(g, 1.0 / np.broadcast_to(g.r, g.a.shape)) for g in c.groups_of(Resistors)]
        self.devices = []
        for g in c.groups_of(Devices):
            p = g.resolved()
            x = np.vstack([np.broadcast_to(np.asarray(p[s.init], float), (g.n,)) for s in g.model.states]) \
                if g.model.states else np.empty((0, g.n))
            self.devices.append((g, p, x))
        ra = np.concatenate([g.a for g, _ in self.resistors]) if self.resistors else np.empty(0, np.int64)
        rb = np.concatenate([g.b for g, _ in self.resistors]) if self.resistors else np.empty(0, np.int64)
        rg = np.concatenate([c for _, c in self.resistors]) if self.resistors else np.empty(0)
        self.Lr = sp.csr_matrix((np.concatenate([rg, rg, -rg, -rg]),
                                 (np.concatenate([ra, rb, ra, rb]), np.concatenate([ra, rb, rb, ra]))), shape=(n, n))
        self.incidence = [sp.csr_matrix((np.concatenate([np.ones(g.n), -np.ones(g.n)]),
                                         (np.concatenate([g.p, g.n_]), np.concatenate([np.arange(g.n)] * 2))),
                                        shape=(n, g.n)) for g, *_ in self.devices]
        self.solver = "behavioural.batch"

    def _injection(self, V: np.ndarray) -> np.ndarray:
        """(n, k) current flowing *out of* each node through the resistive elements."""
        out = self.Lr @ V
        for (g, p, x), D in zip(self.devices, self.incidence):
            out += D @ self._device_current(g, V[g.p] - V[g.n_], x, p)
        return out

    @staticmethod
    def _device_current(g, v: np.ndarray, x, p) -> np.ndarray:
        """Currents (nd, k) of a device group for branch voltages v (nd, k)."""
        k = v.shape[1]
        xs = np.repeat(x, k, axis=1) if x.size else np.empty((0, k * g.n))
        return g.model.current(v.ravel(), xs, _repeat_params(p, g.n, k)).reshape(g.n, k)

    def solve(self, u: np.ndarray) -> tuple[np.ndarray, int]:
        """Node voltages (n, k) of the DC reads of row-voltage vectors u (k, R): the engine's batched
        reads (:class:`~circuitkit.behavioural.batch.CrossbarReader`, the one entry point for reads:
        per-vector Newton on the line solver for 1R tiles, else the shared-Jacobian chord path), with
        their node voltages; a read that does not converge raises ``ConvergenceError``."""
        if self._reader is None:
            from ...behavioural.batch import CrossbarReader
            self._reader = CrossbarReader(self.circuit)
        res = self._reader.read(u, voltages=True)
        self.solver = f"behavioural.batch ({res.solver or res.method})"
        return res.voltages, res.iterations

    def read(self, u: np.ndarray, energy: bool = False) -> ReadOut:
        """Column currents (k, C) (and with ``energy`` the dissipation per role) of read vectors u (k, R)."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        lay = self.layout
        if self.linear and not energy:
            return ReadOut(self.linear_reads.read_many(u), None, 0, "linear transfer (behavioural.reads)")
        out = []
        power: dict[str, list] = {}
        its = 0
        step = max(1, CHUNK // max(self.n_free, 1))
        src = self.circuit.group(lay.current_source)
        for s in range(0, u.shape[0], step):
            uc = u[s:s + step]
            V, it = self.solve(uc)
            its = max(its, it)
            inj = self._injection(V)
            cur = np.zeros((uc.shape[0], lay.cols))
            # the column source's current (into its + terminal) is what flows into its node from the array
            cur[:, lay.sensed] = -inj[src.p].T
            out.append(cur)
            if energy:
                pw = self._power(V)
                delivered = np.zeros(uc.shape[0])
                for nodes, rows in self.row_nodes:
                    delivered += np.sum(uc[:, rows].T * inj[nodes], axis=0)
                total = sum(pw.values())
                if np.any(np.abs(total - delivered) > 1e-6 * np.maximum(np.abs(delivered), 1e-30)):
                    raise ConvergenceError("tile read: dissipated power does not match the delivered power")
                for r, v in pw.items():
                    power.setdefault(r, []).append(v)
        currents = np.vstack(out)
        method = "Newton (nonlinear cells)" if not self.linear else "nodal solve"
        if self.linear:
            # two independent paths: the engine's transfer matrix and this solve must agree
            lin = self.linear_reads.read_many(u)
            scale = max(np.abs(lin).max(), 1e-30)
            if np.abs(lin - currents).max() > 1e-6 * scale:
                raise ConvergenceError("tile read: the nodal solve and behavioural.reads disagree")
            currents = lin
        return ReadOut(currents, {r: np.concatenate(v) for r, v in power.items()} if energy else None, its, method)

    def _power(self, V: np.ndarray) -> dict[str, np.ndarray]:
        """Dissipated power (k,) per element role for node voltages V (n, k)."""
        pw: dict[str, np.ndarray] = {}
        for g, cond in self.resistors:
            d = V[g.a] - V[g.b]
            pw[g.role.value] = pw.get(g.role.value, 0.0) + np.sum(d * d * cond[:, None], axis=0)
        for g, p, x in self.devices:
            v = V[g.p] - V[g.n_]
            pw[g.role.value] = pw.get(g.role.value, 0.0) + np.sum(self._device_current(g, v, x, p) * v, axis=0)
        return pw

    @property
    def linear_reads(self):
        if self._linear_reads is None:
            from ...behavioural.reads import LinearReads
            self._linear_reads = LinearReads(self.circuit, method="direct")
        return self._linear_reads

    def _cells_linear(self) -> bool:
        """Whether every device's current equals its linearisation over +-vread (sampled)."""
        for g in self.circuit.groups_of(Devices):
            p = g.resolved()
            x = np.vstack([np.broadcast_to(np.asarray(p[s.init], float), (g.n,)) for s in g.model.states]) \
                if g.model.states else np.empty((0, g.n))
            h = 1e-3 * self.vread
            g0 = (g.model.current(np.full(g.n, h), x, p) - g.model.current(np.full(g.n, -h), x, p)) / (2 * h)
            for s in (-1.0, -0.5, 0.25, 0.5, 1.0):
                v = np.full(g.n, s * self.vread)
                true = g.model.current(v, x, p)
                if np.any(np.abs(true - g0 * v) > 1e-9 * np.abs(true) + 1e-18):
                    return False
        return True


def _repeat_params(p, n: int, k: int):
    """The parameters with per-device arrays repeated for k vectors (device-major, like ``v.ravel()``)."""
    if k == 1:
        return p
    return ParamSet({name: (np.repeat(p[name], k) if np.ndim(p[name]) and np.size(p[name]) == n else p[name])
                     for name in p})


# -- ngspice check -------------------------------------------------------------------------------

def spice_currents(net: Network, tile: Tile, states: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Column currents (k, C) of the tile read by ngspice: one operating point per vector."""
    from ...engines import simulate
    out = []
    for v in vectors:
        circuit = build_tile(net, tile, states, v)
        wf = simulate(circuit, "spice")
        row = np.zeros(circuit.crossbar.cols)
        for j, name in circuit.crossbar.current_signals.items():
            row[j] = float(np.asarray(wf.signals[name]).reshape(-1)[-1])
        out.append(row)
    return np.array(out)
