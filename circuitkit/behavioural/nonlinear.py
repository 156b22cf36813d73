"""The nonlinear elements: Verilog-A device twins and level-1 MOSFETs.

A stamp covers one element group. It names, once, the unknowns its currents
flow into (residual rows, shape (R, n)) and the unknowns they depend on
(Jacobian columns, (K, n)); per Newton iteration it only returns numbers:
the residual contributions (R, n) and the Jacobian entries (R, K, n).
:class:`NonlinearSet` turns those into a residual vector and a data array on
the shared sparsity pattern with one ``bincount`` each.

Residual rows of a device are its terminals ``p``, ``n`` (current ``i``
leaves ``p`` and enters ``n``) and, in a transient, its state nodes, whose
rows get ``-f(v, x)`` (the ``ddt`` part is the unit capacitance in
``mna.py``). At the operating point the state rows are linear (``x = x0``)
and only the terminal rows are nonlinear, hence ``op_rows``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..circuit.model import Devices, Mosfets
from ..devices.base import GLEAK, DeviceModel
from ..devices.mosfet import level1, level1_currents


class DeviceStamp:
    """A group of Verilog-A devices through its numpy twin's ``linearize``."""

    op_rows = 2

    def __init__(self, group: Devices, unknown: Callable[[np.ndarray], np.ndarray]):
        self.model = group.model
        self.params = group.resolved()
        self.nodes = np.vstack([group.p, group.n_, group.states])        # (2 + n_states, n) node ids
        self.terms = unknown(self.nodes)
        self.n_states = self.model.n_states()
        # the base class's state_derivative (dxdt - GLEAK (x - x0)) is inlined with x0 gathered once
        self._inline = getattr(self.model.state_derivative, "__func__", None) is DeviceModel.state_derivative.__func__
        self._x0 = (np.array([np.broadcast_to(np.asarray(self.params[st.init], dtype=float), (group.n,))
                              for st in self.model.states], dtype=float).reshape(self.n_states, group.n)
                    if self.n_states else None)
        self._out = np.empty((len(self.nodes), group.n))
        # one one-state device with a float kernel (``DeviceModel.scalar_kernel``): evaluated on Python
        # floats, where numpy's per-call cost would be most of a small circuit's run time
        self._kernel = (self.model.scalar_kernel(self.params)
                        if group.n == 1 and self.n_states == 1 and self._inline else None)
        if self._kernel is not None:
            self._node_list = [int(k) for k in self.nodes[:, 0]]          # p, n, x node ids
            self._term_list = [int(k) for k in self.terms[:, 0]]          # their unknowns (size: ground)
            self._x0_one = float(self._x0[0, 0])

    # -- the kernel on a list of unknowns (ground appended as 0.0): the dense Newton loop -------------
    def evaluate_floats(self, yl: list, k: int) -> tuple[list, list]:
        """The first ``k`` rows of :meth:`evaluate` (residual contributions, Jacobian entries flattened
        row by row) as lists, from the unknowns ``yl`` (``yl[size]`` = 0.0: ground). Kernel stamps
        only; raises ``ArithmeticError`` where floats refuse what numpy returns as inf or NaN."""
        p, n, xs = self._term_list
        v, x = yl[p] - yl[n], yl[xs]
        i, gv, gx, f, fv, fx = self.model.linearize_one(self._kernel, v, x, self._x0_one)
        return [i, -i, -f][:k], [gv, -gv, gx, -gv, gv, -gx, -fv, fv, -fx][:3 * k]

    def residual_floats(self, yl: list, k: int) -> list:
        """The first ``k`` rows of :meth:`residual` as a list (see :meth:`evaluate_floats`)."""
        p, n, xs = self._term_list
        v, x = yl[p] - yl[n], yl[xs]
        i = self._kernel.current(v, x)
        if k <= 2:
            return [i, -i][:k]
        return [i, -i, (x - self._x0_one) * GLEAK - self._kernel.dxdt(v, x)]     # -(dxdt - GLEAK (x - x0))

    def residual_rows(self) -> np.ndarray:
        return self.terms

    def jacobian_structure(self) -> tuple[np.ndarray, np.ndarray]:
        t = self.terms
        return np.broadcast_to(t[:, None, :], (len(t),) + t.shape), np.broadcast_to(t[None, :, :], (len(t),) + t.shape)

    def _floats(self, vext: np.ndarray) -> tuple[float, float]:
        """``(v, x)`` of the one device as floats (kernel path)."""
        p, n, xs = self._node_list
        return float(vext[p]) - float(vext[n]), float(vext[xs])

    def evaluate(self, vext: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._kernel is not None:
            v, x = self._floats(vext)
            try:
                i, gv, gx, f, fv, fx = self.model.linearize_one(self._kernel, v, x, self._x0_one)
            except ArithmeticError:             # overflow or division by zero on floats: numpy's inf/NaN
                pass
            else:                               # flat lists are cheaper to convert than nested ones
                res = np.array([i, -i, -f]).reshape(3, 1)
                jac = np.array([gv, -gv, gx, -gv, gv, -gx, -fv, fv, -fx]).reshape(3, 3, 1)
                return res, jac
        v = vext[self.nodes[0]] - vext[self.nodes[1]]
        x = vext[self.nodes[2:]]
        i, di_dv, di_dx, f, df_dv, df_dx = self.model.linearize(v, x, self.params)
        jac = np.empty((len(self.nodes),) + self.nodes.shape)
        jac[0, 0], jac[0, 1], jac[0, 2:] = di_dv, -di_dv, di_dx
        jac[1] = -jac[0]
        jac[2:, 0], jac[2:, 1], jac[2:, 2:] = -df_dv, df_dv, -df_dx
        return np.concatenate([i[None], -i[None], -f]), jac

    def bound_step(self, vext: np.ndarray) -> float:
        """The smallest ``$bound_step`` of the group's devices at node voltages ``vext`` (inf: none binds)."""
        if not self.n_states:
            return np.inf
        if self._kernel is not None:
            try:
                return self.model.bound_step_one(self._kernel, *self._floats(vext))
            except ArithmeticError:
                pass
        v = vext[self.nodes[0]] - vext[self.nodes[1]]
        h = np.asarray(self.model.bound_step(v, vext[self.nodes[2:]], self.params))
        return float(h.min()) if h.size else np.inf

    def residual(self, vext: np.ndarray, rows: int | None = None) -> np.ndarray:
        """Residual contributions only (no derivatives): what a chord iteration needs.

        ``rows`` (2 at the operating point) skips the state rows' ``f`` when they are not used.
        """
        out = self._out
        if self._kernel is not None:
            v, x = self._floats(vext)
            try:
                i = self._kernel.current(v, x)
                f = 0.0 if rows is not None and rows <= 2 else \
                    (x - self._x0_one) * GLEAK - self._kernel.dxdt(v, x)   # -(dxdt - GLEAK (x - x0))
            except ArithmeticError:
                pass
            else:
                out[0, 0], out[1, 0], out[2, 0] = i, -i, f
                return out
        v = vext[self.nodes[0]] - vext[self.nodes[1]]
        x = vext[self.nodes[2:]]
        out[0] = self.model.current(v, x, self.params)
        np.negative(out[0], out=out[1])
        if self.n_states and (rows is None or rows > 2):
            if self._inline:
                f = np.asarray(self.model.dxdt(v, x, self.params), dtype=float).reshape(x.shape)
                # -(dxdt - GLEAK (x - x0)), the base class's state_derivative
                np.subtract(x, self._x0, out=out[2:])
                out[2:] *= GLEAK
                out[2:] -= f
            else:
                np.negative(self.model.state_derivative(v, x, self.params), out=out[2:])
        return out


class MosfetStamp:
    """A group of level-1 MOSFETs (``devices/mosfet.py``): rows d, s, b; columns d, g, s, b."""

    op_rows = 3

    def __init__(self, group: Mosfets, unknown: Callable[[np.ndarray], np.ndarray]):
        self.model = group.model
        self.nodes = np.vstack([group.d, group.g, group.s, group.b])
        self.terms = unknown(self.nodes)

    def residual_rows(self) -> np.ndarray:
        return self.terms[[0, 2, 3]]

    def jacobian_structure(self) -> tuple[np.ndarray, np.ndarray]:
        rows = self.residual_rows()
        return np.broadcast_to(rows[:, None, :], (3,) + self.terms.shape), np.broadcast_to(self.terms, (3,) + self.terms.shape)

    def evaluate(self, vext: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return level1(self.model, *vext[self.nodes])

    def residual(self, vext: np.ndarray, rows: int | None = None) -> np.ndarray:
        return level1_currents(self.model, *vext[self.nodes])


class NonlinearSet:
    """All nonlinear stamps of a circuit with their rows and data positions, per analysis mode."""

    MODES = ("op", "tran")

    def __init__(self, stamps: Sequence[DeviceStamp | MosfetStamp], pattern):
        self.stamps = list(stamps)
        self.pattern = pattern
        self._rows, self._positions, self._plan = {}, {}, {}
        self._devices = [s for s in self.stamps if isinstance(s, DeviceStamp)]
        for mode in self.MODES:
            used = [self._used(s, mode) for s in self.stamps]
            self._plan[mode] = list(zip(self.stamps, used))
            self._rows[mode] = np.concatenate([s.residual_rows()[:k].ravel() for s, k in zip(self.stamps, used)]
                                              + [np.empty(0, np.int64)])
            self._positions[mode] = np.concatenate(
                [pattern.positions(*(a[:k] for a in s.jacobian_structure())).ravel()
                 for s, k in zip(self.stamps, used)] + [np.empty(0, np.int64)])

    def __bool__(self) -> bool:
        return bool(self.stamps)

    @staticmethod
    def _used(stamp, mode: str) -> int:
        return stamp.op_rows if mode == "op" else len(stamp.residual_rows())

    def evaluate(self, vext: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """Residual contributions (size,) and Jacobian data (nnz,) at node voltages ``vext`` (indexed by node id)."""
        residual, j = self.evaluate_raw(vext, mode)
        return residual, self.pattern.accumulate(self._positions[mode], j)

    def evaluate_raw(self, vext: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """Residual contributions (size,) and the Jacobian entries unsummed, one per entry of
        :meth:`positions` (the dense path sums them at its own positions)."""
        res, jac = [], []
        for s, k in self._plan[mode]:
            r, j = s.evaluate(vext)
            res.append(r[:k].ravel())
            jac.append(j[:k].ravel())
        size = self.pattern.size
        r = res[0] if len(res) == 1 else np.concatenate(res)
        j = jac[0] if len(jac) == 1 else np.concatenate(jac)
        return np.bincount(self._rows[mode], weights=r, minlength=size + 1)[:size], j

    @property
    def floats(self) -> bool:
        """Every stamp evaluates on floats (one-device kernel groups): :meth:`evaluate_floats` and
        :meth:`residual_floats` apply."""
        return bool(self.stamps) and all(getattr(s, "_kernel", None) is not None for s in self.stamps)

    def evaluate_floats(self, y: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`evaluate_raw` from the unknowns ``y`` through the float kernels (the same numbers);
        raises ``ArithmeticError`` where the floats refuse a value (the caller takes :meth:`evaluate_raw`)."""
        yl = y.tolist()
        yl.append(0.0)
        res, jac = [], []
        for s, k in self._plan[mode]:
            r, j = s.evaluate_floats(yl, k)
            res += r
            jac += j
        size = self.pattern.size
        return np.bincount(self._rows[mode], weights=np.array(res), minlength=size + 1)[:size], np.array(jac)

    def residual_floats(self, y: np.ndarray, mode: str) -> np.ndarray:
        """:meth:`residual` from the unknowns ``y`` through the float kernels (see :meth:`evaluate_floats`)."""
        yl = y.tolist()
        yl.append(0.0)
        res = []
        for s, k in self._plan[mode]:
            res += s.residual_floats(yl, k)
        size = self.pattern.size
        return np.bincount(self._rows[mode], weights=np.array(res), minlength=size + 1)[:size]

    def positions(self) -> dict[str, np.ndarray]:
        """Per mode, the pattern data position of every entry :meth:`evaluate_raw` returns (``nnz``: ground)."""
        return dict(self._positions)

    def bound_step(self, vext: np.ndarray) -> float:
        """The step ceiling the device models ask for (their ``$bound_step``), as ngspice honours it."""
        return min((s.bound_step(vext) for s in self._devices), default=np.inf)

    def residual(self, vext: np.ndarray, mode: str) -> np.ndarray:
        """Residual contributions (size,) only, without the Jacobian (for chord iterations)."""
        res = [s.residual(vext, k)[:k].ravel() for s, k in self._plan[mode]]
        size = self.pattern.size
        return np.bincount(self._rows[mode], weights=res[0] if len(res) == 1 else np.concatenate(res),
                           minlength=size + 1)[:size]
