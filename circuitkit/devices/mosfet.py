"""ngspice's level-1 (Shichman-Hodges) MOSFET on numpy arrays: the twin of ``mos1``.

The netlist writes ``M d g s b card W= L=`` with ``.model card nmos|pmos
level=1 vto= kp= lambda=``; every other model parameter keeps its ngspice
default. With those defaults ngspice's ``mos1load.c`` reduces to what this
module computes, in the same order of operations:

* no body effect (GAMMA = 0), no lateral diffusion (LD = 0), TEMP = TNOM =
  27 C, so the threshold is ``von = type * VTO`` and ``beta = KP * W / L``;
* no gate or junction capacitances (no TOX, CJ, CBD, CBS), no series
  resistances (RD = RS = 0): the transistor is purely resistive;
* polarity: every voltage is multiplied by ``type`` (+1 nmos, -1 pmos) and so
  is every current, so conductances are the same for both polarities;
* source/drain swap: when ``vds < 0`` the device runs in inverse mode
  (``mode = -1``) with ``vgd`` and ``-vds`` in place of ``vgs`` and ``vds``;
* channel current in mode coordinates (``vgst = vg - von``)::

      cutoff      vgst <= 0            cdrain = 0
      saturation  vgst <= vds          cdrain = beta (1 + lambda vds) vgst^2 / 2
      triode      otherwise            cdrain = beta (1 + lambda vds) vds (vgst - vds / 2)

* bulk-drain and bulk-source junction diodes with IS = 1e-14 A and GMIN =
  1e-12 S in parallel (ngspice's defaults)::

      vbx <= -3 vt     i = GMIN vbx - IS
      otherwise        i = IS (exp(vbx / vt) - 1) + GMIN vbx

  In a 1T1R read they carry about IS + GMIN * |v| ~ 1e-13 A, a 1e-8 part
  of a microampere cell current; they are kept because they cost two
  exponentials and they are what give the drain node of a cut-off
  transistor a (tiny) conductance, as in ngspice.
"""
from __future__ import annotations

import numpy as np

from ..circuit.model import MosfetModel

#: ngspice defaults: junction saturation current (A), GMIN (S), temperature (K).
IS = 1e-14
GMIN = 1e-12
TEMP = 300.15
#: thermal voltage kT/q at TEMP (CODATA values as in ngspice's const.h).
VT = 1.38064852e-23 * TEMP / 1.6021766208e-19
#: ngspice caps exponent arguments at MAX_EXP_ARG.
MAX_EXP_ARG = 709.0


def polarity(model: MosfetModel) -> float:
    """+1 for nmos, -1 for pmos (ngspice's ``MOS1type``)."""
    return 1.0 if model.polarity == "nmos" else -1.0


def junction(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bulk junction diode current from bulk into drain/source and its conductance."""
    forward = v > -3 * VT
    e = np.exp(np.minimum(np.where(forward, v, 0.0) / VT, MAX_EXP_ARG))
    i = np.where(forward, IS * (e - 1) + GMIN * v, GMIN * v - IS)
    g = np.where(forward, IS * e / VT + GMIN, GMIN)
    return i, g


def channel(model: MosfetModel, vg: np.ndarray, vds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drain current ``cdrain`` and its derivatives ``gm``, ``gds`` in mode coordinates (vds >= 0)."""
    beta = model.kp * model.w / model.l
    vgst = vg - polarity(model) * model.vto
    betap = beta * (1 + model.lambda_ * vds)
    on = vgst > 0
    sat = on & (vgst <= vds)
    tri = on & ~sat
    cdrain = np.where(sat, betap * vgst * vgst * .5, np.where(tri, betap * vds * (vgst - .5 * vds), 0.0))
    gm = np.where(sat, betap * vgst, np.where(tri, betap * vds, 0.0))
    gds = np.where(sat, model.lambda_ * beta * vgst * vgst * .5,
                   np.where(tri, betap * (vgst - vds) + model.lambda_ * beta * vds * (vgst - .5 * vds), 0.0))
    return cdrain, gm, gds


def _bias(model: MosfetModel, vd, vg, vs, vb):
    """Polarity-corrected bias: (typ, vds, vgs, junction voltages (vbs, vbd) stacked (2, n), normal mode)."""
    typ = polarity(model)
    vd, vg, vs, vb = (np.asarray(a, dtype=float) for a in (vd, vg, vs, vb))
    vds = typ * (vd - vs)
    vgs = typ * (vg - vs)
    vbs = typ * (vb - vs)
    vbx = np.stack([vbs, vbs - vds])                 # vbs, vbd: both junctions in one pass
    return typ, vds, vgs, vbx, vds >= 0


def level1_currents(model: MosfetModel, vd, vg, vs, vb) -> np.ndarray:
    """The currents of :func:`level1` (shape (3, n): into drain, source, bulk) without the derivatives
    (a chord iteration's residual): the same operations on the same values, so the same numbers."""
    typ, vds, vgs, vbx, normal = _bias(model, vd, vg, vs, vb)
    forward = vbx > -3 * VT
    e = np.exp(np.minimum(np.where(forward, vbx, 0.0) / VT, MAX_EXP_ARG))
    cbs, cbd = np.where(forward, IS * (e - 1) + GMIN * vbx, GMIN * vbx - IS)
    vdm = np.where(normal, vds, -vds)                # vds * mode
    vgst = np.where(normal, vgs, vgs - vds) - typ * model.vto
    beta = model.kp * model.w / model.l
    betap = beta * (1 + model.lambda_ * vdm)
    on = vgst > 0
    sat = on & (vgst <= vdm)
    tri = on & ~sat
    cdrain = np.where(sat, betap * vgst * vgst * .5, np.where(tri, betap * vdm * (vgst - .5 * vdm), 0.0))
    ich = np.where(normal, cdrain, -cdrain)          # mode * cdrain
    return typ * np.stack([ich - cbd, -ich - cbs, cbd + cbs])


def level1(model: MosfetModel, vd, vg, vs, vb) -> tuple[np.ndarray, np.ndarray]:
    """Terminal currents and their derivatives for node voltages of ``n`` transistors.

    Returns ``(currents, jacobian)``: ``currents`` has shape (3, n), the
    currents flowing *into* the drain, source and bulk terminals (the gate
    draws none); ``jacobian[r, c]`` (shape (3, 4, n)) is the derivative of
    current ``r`` (d, s, b) with respect to terminal voltage ``c`` (d, g, s, b).
    """
    typ, vds, vgs, vbx, normal = _bias(model, vd, vg, vs, vb)
    (cbs, cbd), (gbs, gbd) = junction(vbx)
    mode = np.where(normal, 1.0, -1.0)
    cdrain, gm, gds = channel(model, np.where(normal, vgs, vgs - vds), vds * mode)
    # channel current into the drain (d -> s) and its derivatives wrt vgs, vds
    ich = mode * cdrain
    dich_dvgs = np.where(normal, gm, -gm)
    dich_dvds = np.where(normal, gds, gm + gds)
    currents = typ * np.stack([ich - cbd, -ich - cbs, cbd + cbs])
    jacobian = np.zeros((3, 4) + vds.shape)
    # rows d, s, b; columns d, g, s, b: the channel (+ into d, - into s) and the two junctions
    jacobian[0, 0] = dich_dvds + gbd
    jacobian[0, 1] = dich_dvgs
    jacobian[0, 2] = -(dich_dvgs + dich_dvds)
    jacobian[0, 3] = -gbd
    jacobian[1, 0] = -dich_dvds
    jacobian[1, 1] = -dich_dvgs
    jacobian[1, 2] = (dich_dvgs + dich_dvds) + gbs
    jacobian[1, 3] = -gbs
    jacobian[2, 0] = -gbd
    jacobian[2, 2] = -gbs
    jacobian[2, 3] = gbd + gbs
    return currents, jacobian
