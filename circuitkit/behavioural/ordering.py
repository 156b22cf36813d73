"""Fill-reducing orderings of crossbar networks: geometric nested dissection.

A crossbar is a grid: word-line node ``(i, j)`` connects to its neighbours
``(i, j +- 1)`` and, through the cell, to bit-line node ``(i, j)``, which
connects to ``(i +- 1, j)``. Generic orderings (COLAMD, minimum degree) do
not see that geometry; nested dissection does, and on a grid it is the
classic optimum (fill ``O(N log N)``, work ``O(N^1.5)``): cut the box in two
along its longer side, order both halves recursively, then the cut.

Here the cut is found from coordinates, not by graph partitioning: every
unknown gets a position (grid nodes from their node block, the rest --
drivers, sense nodes, branches -- from their neighbours), a box is split at
its middle coordinate, and the unknowns *on* the cut line form the
separator. The separator is then shrunk: a cut unknown with no neighbour on
one side moves to the other side (on a 1R crossbar a vertical cut keeps only
the word-line nodes, a horizontal cut only the bit-line nodes, half of the
line). Everything is vectorised per level of the recursion (no Python loop
over subdomains), so ordering a 256x256 crossbar costs a few tens of ms.

``last`` unknowns (the ports of a transfer matrix, see ``reads.py``) are
kept out of the dissection and placed at the end, so the trailing block of
an LU factorisation in this order is their Schur complement.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

LEAF = 16   # subdomains this small are not cut further (measured best with SuperLU on 256x256: 16..32)


def propagate_coordinates(adj: sp.csr_matrix, xy: np.ndarray, max_rounds: int = 64) -> np.ndarray:
    """Fill NaN rows of ``xy`` with the mean position of already placed neighbours, repeatedly.

    Unknowns that no placed unknown reaches stay NaN (callers treat them as
    one more separator-like group ordered last).
    """
    xy = np.array(xy, dtype=float)
    pattern = adj.copy()
    pattern.data = np.ones_like(pattern.data)
    for _ in range(max_rounds):
        missing = np.isnan(xy[:, 0])
        if not missing.any():
            break
        known = (~missing).astype(float)
        count = pattern @ known
        total = pattern @ np.where(missing[:, None], 0.0, xy)
        fill = missing & (count > 0)
        if not fill.any():
            break
        xy[fill] = total[fill] / count[fill, None]
    return xy


def nested_dissection(adj: sp.csr_matrix, xy: np.ndarray, last: np.ndarray | None = None,
                      leaf: int | None = None) -> np.ndarray:
    """Permutation (new position -> unknown) of the graph ``adj`` with positions ``xy`` (n, 2).

    ``adj`` is any sparse matrix whose pattern is the (symmetrised) graph;
    unknowns listed in ``last`` and those without coordinates come at the end.
    """
    leaf = LEAF if leaf is None else leaf
    n = adj.shape[0]
    coo = sp.coo_matrix(adj)
    off = coo.row != coo.col
    eu = np.concatenate([coo.row[off], coo.col[off]]).astype(np.int64)
    ev = np.concatenate([coo.col[off], coo.row[off]]).astype(np.int64)

    pos = np.full(n, -1, dtype=np.int64)
    tail = np.zeros(n, dtype=bool)
    if last is not None:
        tail[np.asarray(last, dtype=np.int64)] = True
    tail |= np.isnan(xy[:, 0])
    tail_nodes = np.flatnonzero(tail)
    active = np.flatnonzero(~tail)
    pos[tail_nodes] = active.size + np.arange(tail_nodes.size)

    # per active unknown: its domain; per domain: base position and bounding box
    dom = np.zeros(n, dtype=np.int64)
    base = np.zeros(1, dtype=np.int64)
    lo = np.nanmin(xy[active], axis=0)[None, :] if active.size else np.zeros((1, 2))
    hi = np.nanmax(xy[active], axis=0)[None, :] if active.size else np.zeros((1, 2))
    side = np.zeros(n, dtype=np.int8)      # 1 left, 2 right, 3 separator (current level only)

    while active.size:
        used, d = np.unique(dom[active], return_inverse=True)          # compact the domain ids
        dom[active] = d
        base, lo, hi = base[used], lo[used], hi[used]
        count = np.bincount(d, minlength=base.size)
        span = hi - lo
        axis = (span[:, 1] > span[:, 0]).astype(np.int64)          # cut across the longer side
        cut = np.floor(lo[np.arange(base.size), axis] + 0.5 * span[np.arange(base.size), axis])
        is_leaf = (count <= leaf) | (span.max(axis=1) <= 0)
        # leaves: positions in coordinate order within the domain
        leaf_nodes = active[is_leaf[d]]
        if leaf_nodes.size:
            _place(pos, leaf_nodes, dom[leaf_nodes], base, xy)
        active = active[~is_leaf[d]]
        if not active.size:
            break
        d = dom[active]
        c = xy[active, axis[d]]
        side[active] = np.where(c < cut[d], 1, np.where(c > cut[d], 2, 3))
        # shrink the separator: a cut unknown without neighbours on one side joins the other
        in_sep = np.zeros(n, dtype=bool)
        in_sep[active[side[active] == 3]] = True
        for here, other in ((1, 2), (2, 1)):
            e = in_sep[eu] & (side[ev] == other)
            touches = np.zeros(n, dtype=bool)
            touches[eu[e]] = True
            move = in_sep & ~touches
            side[move] = here
            in_sep &= ~move
        # new domains: 2 per split domain (left, right); separators get positions now
        s = side[active]
        n_dom = base.size
        count_l = np.bincount(d[s == 1], minlength=n_dom)
        count_r = np.bincount(d[s == 2], minlength=n_dom)
        sep = active[s == 3]
        _place(pos, sep, dom[sep], base + count_l + count_r, xy)
        new_base = np.concatenate([base, base + count_l])            # left keeps id d, right gets d + n_dom
        dom[active] = np.where(s == 2, d + n_dom, d)
        lo_r, hi_l = lo.copy(), hi.copy()
        idx = np.arange(n_dom)
        lo_r[idx, axis] = cut                                        # boxes shrink around the cut
        hi_l[idx, axis] = cut
        lo, hi = np.concatenate([lo, lo_r]), np.concatenate([hi_l, hi])
        base = new_base
        active = active[s != 3]
        side[sep] = 0
    perm = np.empty(n, dtype=np.int64)
    perm[pos] = np.arange(n)
    return perm


def _place(pos: np.ndarray, nodes: np.ndarray, domain: np.ndarray, start: np.ndarray, xy: np.ndarray) -> None:
    """Give ``nodes`` consecutive positions from ``start[domain]``, ordered by domain then coordinates."""
    order = np.lexsort((xy[nodes, 1], xy[nodes, 0], domain))
    nodes, domain = nodes[order], domain[order]
    first = np.searchsorted(domain, domain, side="left")
    pos[nodes] = start[domain] + (np.arange(nodes.size) - first)


def crossbar_coordinates(circuit, unknown_of_node, size: int) -> np.ndarray | None:
    """(size, 2) positions of unknowns from the crossbar's 2-D node blocks, NaN elsewhere; None if none."""
    xb = getattr(circuit, "crossbar", None)
    rows, cols = (xb.rows, xb.cols) if xb is not None else (None, None)
    xy = np.full((size, 2), np.nan)
    found = False
    for block in circuit.blocks:
        if getattr(block, "index", None) is None and len(block.shape) == 2 and rows and tuple(block.shape) == (rows, cols):
            ii, jj = np.indices(block.shape)
            u = unknown_of_node(block.ids().ravel())
            ok = (u >= 0) & (u < size)
            xy[u[ok], 0] = ii.ravel()[ok]
            xy[u[ok], 1] = jj.ravel()[ok]
            found = True
    return xy if found else None
