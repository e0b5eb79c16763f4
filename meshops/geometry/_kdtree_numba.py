"""Compiled k-nearest-neighbour search in 3D (numba): a balanced k-d tree laid out on an implicit tree.

The fast path of :mod:`meshops.graph._neighbors_kdtree`; its result is that of
``cKDTree(x).query(y, k, distance_upper_bound=bound)`` (the reference the tests compare with):
the same distances, bit for bit (squared distances summed over x, y, z in that order, one
``sqrt``), only neighbours closer than ``bound``; among points at exactly the same distance
another one may be picked (the callers' tie rules re-query such rows).

Layout
------
Leaves are ``LEAF`` consecutive points and the tree over them is an implicit complete binary tree
(node ``i`` has children ``2i + 1`` and ``2i + 2``; missing leaves have an empty box), so a node's
points are a fixed index range. :func:`kd_order` orders the points so that each node's range is
split into its children's shares along the widest axis of the node (a balanced k-d tree: sibling
boxes do not overlap); :func:`build_boxes` takes the nodes' boxes in one pass of unions.

Search
------
Per query, bottom-up: scan a start leaf (the query's own leaf for the tree's own points, else the
leaf of the previous query's nearest point: queries come in a spatially coherent order), then
walk up to the root, searching each sibling subtree depth first (nearer child first) only where
its box is closer than the current k-th distance. Every point lies in the start leaf or in
exactly one of those siblings, so the result is exact whatever the start leaf.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

LEAF = 16  # points per leaf
MAX_K = 64  # larger k: the cKDTree route (the sorted top-k insertion is O(k) per point)
_BLOCK = 2048  # queries per parallel task


@njit(cache=True)
def _leaves(n: int, leaf: int) -> int:
    nl = max(1, (n + leaf - 1) // leaf)
    p = 1
    while p < nl:
        p *= 2
    return p


@njit(cache=True)
def _select(w, idx, ax, s, e, m):
    """Reorder the rows ``w[s:e]`` (and ``idx`` alike) so that ``[s, m)`` hold the ``m - s`` rows
    smallest along axis ``ax`` (quickselect on a working copy: sequential memory, no gathers)."""
    lo, hi = s, e - 1
    while lo < hi:
        piv = w[(lo + hi) // 2, ax]
        i, j = lo, hi
        while i <= j:
            while w[i, ax] < piv:
                i += 1
            while w[j, ax] > piv:
                j -= 1
            if i <= j:
                for d in range(w.shape[1]):
                    w[i, d], w[j, d] = w[j, d], w[i, d]
                idx[i], idx[j] = idx[j], idx[i]
                i += 1
                j -= 1
        if m - 1 <= j:
            hi = j
        elif m - 1 >= i:
            lo = i
        else:
            break


@njit(cache=True)
def _widest_axis(w, s, e):
    """Axis of the largest spread of the rows ``w[s:e]`` (from at most ~512 evenly spaced rows)."""
    step = max(1, (e - s) // 512)
    best, ax = -1.0, 0
    for d in range(w.shape[1]):
        vmin, vmax = np.inf, -np.inf
        for i in range(s, e, step):
            vmin = min(vmin, w[i, d])
            vmax = max(vmax, w[i, d])
        if vmax - vmin > best:
            best, ax = vmax - vmin, d
    return ax


@njit(cache=True)
def kd_order(x: np.ndarray, leaf: int) -> tuple[np.ndarray, np.ndarray]:
    """A permutation of the points laying out a balanced k-d tree on the implicit leaf tree, and
    the points in that order."""
    n = x.shape[0]
    idx = np.arange(n)
    w = x.copy()
    stack_a, stack_b = np.empty(128, dtype=np.int64), np.empty(128, dtype=np.int64)
    stack_a[0], stack_b[0], top = 0, _leaves(n, leaf), 0  # a node: its leaves [a, b)
    while top >= 0:
        a, b = stack_a[top], stack_b[top]
        top -= 1
        s, e = a * leaf, min(b * leaf, n)
        if b - a < 2 or e - s <= leaf:
            continue
        mid = (a + b) // 2
        m = min(mid * leaf, n)
        if m < e:
            _select(w, idx, _widest_axis(w, s, e), s, e, m)
        stack_a[top + 1], stack_b[top + 1] = a, mid
        stack_a[top + 2], stack_b[top + 2] = mid, b
        top += 2
    return idx, w


@njit(cache=True)
def build_boxes(xp: np.ndarray, leaf: int) -> tuple[np.ndarray, int]:
    """Boxes ``(lo_x, lo_y, lo_z, hi_x, hi_y, hi_z)`` of the nodes, and the index of the first leaf."""
    n = xp.shape[0]
    p = _leaves(n, leaf)
    bx = np.empty((2 * p - 1, 6))
    bx[:, :3], bx[:, 3:] = np.inf, -np.inf
    first = p - 1
    for i in range(n):
        node = first + i // leaf
        for a in range(3):
            bx[node, a] = min(bx[node, a], xp[i, a])
            bx[node, 3 + a] = max(bx[node, 3 + a], xp[i, a])
    for node in range(first - 1, -1, -1):
        c = 2 * node + 1
        for a in range(3):
            bx[node, a] = min(bx[c, a], bx[c + 1, a])
            bx[node, 3 + a] = max(bx[c, 3 + a], bx[c + 1, 3 + a])
    return bx, first


@njit(cache=True, inline="always")
def _box_d2(q0, q1, q2, bx, node):
    g0 = max(bx[node, 0] - q0, q0 - bx[node, 3], 0.0)
    g1 = max(bx[node, 1] - q1, q1 - bx[node, 4], 0.0)
    g2 = max(bx[node, 2] - q2, q2 - bx[node, 5], 0.0)
    return g0 * g0 + g1 * g1 + g2 * g2


@njit(cache=True, inline="always")
def _scan(xp, s, e, q0, q1, q2, topd, topj, worst):
    """Offer ``xp[s:e]`` to the sorted top-k ``(topd, topj)`` of squared distances; the new k-th."""
    k = topd.shape[0]
    for j in range(s, e):
        t0, t1, t2 = xp[j, 0] - q0, xp[j, 1] - q1, xp[j, 2] - q2
        d2 = t0 * t0 + t1 * t1 + t2 * t2
        if d2 < worst:
            c = k - 1
            while c > 0 and topd[c - 1] > d2:
                topd[c] = topd[c - 1]
                topj[c] = topj[c - 1]
                c -= 1
            topd[c] = d2
            topj[c] = j
            worst = topd[k - 1]
    return worst


@njit(cache=True)
def _subtree(xp, bx, first, root, q0, q1, q2, topd, topj, worst, stack, sd):
    """Depth-first search of the subtree at ``root``, nearer child first; the new k-th distance."""
    n = xp.shape[0]
    top = 0
    stack[0], sd[0] = root, 0.0
    while top >= 0:
        node, md = stack[top], sd[top]
        top -= 1
        if md >= worst:
            continue
        if node >= first:
            s = (node - first) * LEAF
            worst = _scan(xp, s, min(s + LEAF, n), q0, q1, q2, topd, topj, worst)
            continue
        a, b = 2 * node + 1, 2 * node + 2
        da, db = _box_d2(q0, q1, q2, bx, a), _box_d2(q0, q1, q2, bx, b)
        if da > db:
            a, b, da, db = b, a, db, da
        if db < worst:
            top += 1
            stack[top], sd[top] = b, db
        if da < worst:
            top += 1
            stack[top], sd[top] = a, da
    return worst


@njit(cache=True)
def _descend(bx, first, q0, q1, q2):
    """The leaf reached by always stepping into the nearer child (a start leaf near the query)."""
    node = 0
    while node < first:
        a = 2 * node + 1
        node = a if _box_d2(q0, q1, q2, bx, a) <= _box_d2(q0, q1, q2, bx, a + 1) else a + 1
    return node


@njit(cache=True, inline="always")
def _seed_bound(xp, prev, q0, q1, q2):
    """A bound on the query's squared k-th distance from the previous query's ``k`` neighbours
    ``prev`` (real points: the k-th distance is at most their largest), nudged up so that points at
    exactly that distance still count; ``inf`` when ``prev`` is not full."""
    b = 0.0
    for c in range(prev.shape[0]):
        j = prev[c]
        if j < 0:
            return np.inf
        t0, t1, t2 = xp[j, 0] - q0, xp[j, 1] - q1, xp[j, 2] - q2
        b = max(b, t0 * t0 + t1 * t1 + t2 * t2)
    return b * (1.0 + 1e-12) + 1e-300


@njit(cache=True)
def _query_block(xp, bx, first, yq, s, e, b2, offset, d_out, j_out):
    n, k = xp.shape[0], d_out.shape[1]
    stack, sd = np.empty(256, dtype=np.int64), np.empty(256)
    topd, topj = np.empty(k), np.empty(k, dtype=np.int64)
    hint = -1
    topj[:] = -1
    for i in range(s, e):
        q0, q1, q2 = yq[i, 0], yq[i, 1], yq[i, 2]
        topd[:] = min(b2, _seed_bound(xp, topj, q0, q1, q2))
        topj[:] = -1
        if offset >= 0:
            hint = offset + i
        leaf = first + hint // LEAF if hint >= 0 else _descend(bx, first, q0, q1, q2)
        p = (leaf - first) * LEAF
        worst = _scan(xp, p, min(p + LEAF, n), q0, q1, q2, topd, topj, topd[k - 1])
        node = leaf
        while node > 0:
            sib = node + 1 if node % 2 == 1 else node - 1
            if _box_d2(q0, q1, q2, bx, sib) < worst:
                worst = _subtree(xp, bx, first, sib, q0, q1, q2, topd, topj, worst, stack, sd)
            node = (node - 1) // 2
        hint = topj[0] if topj[0] >= 0 else -1
        for c in range(k):
            if topj[c] < 0:
                d_out[i, c], j_out[i, c] = np.inf, n
            else:
                d_out[i, c], j_out[i, c] = np.sqrt(topd[c]), topj[c]


@njit(cache=True, parallel=True)
def query(xp, bx, first, yq, k, bound, offset):
    """``(m, k)`` distances and tree indices of the ``k`` nearest points of ``xp`` per row of ``yq``
    closer than ``bound``, nearest first; missing ones: ``inf`` and ``len(xp)``. ``offset >= 0``:
    ``yq`` are the tree's own points ``xp[offset:offset + m]`` (each starts at its own leaf)."""
    m = yq.shape[0]
    d_out = np.empty((m, k))
    j_out = np.empty((m, k), dtype=np.int64)
    nb = (m + _BLOCK - 1) // _BLOCK
    for b in prange(nb):
        _query_block(xp, bx, first, yq, b * _BLOCK, min(b * _BLOCK + _BLOCK, m), bound * bound, offset, d_out, j_out)
    return d_out, j_out


@njit(cache=True, inline="always")
def _spread(v):
    v = (v | (v << 16)) & 0x030000FF
    v = (v | (v << 8)) & 0x0300F00F
    v = (v | (v << 4)) & 0x030C30C3
    return (v | (v << 2)) & 0x09249249


@njit(cache=True)
def morton_order(p, lo, scale):
    """The permutation sorting the points by their 30-bit Morton code on a 1024-cell grid per axis
    (``int((p - lo) * scale)`` per axis, the numpy reference's bits), ties by index: a stable LSD
    radix sort, three passes of 10 bits (what a value sort of packed ``(code, index)`` keys gives)."""
    n = p.shape[0]
    code = np.empty(n, dtype=np.int64)
    for i in range(n):
        g0 = np.int64((p[i, 0] - lo[0]) * scale[0])
        g1 = np.int64((p[i, 1] - lo[1]) * scale[1])
        g2 = np.int64((p[i, 2] - lo[2]) * scale[2])
        code[i] = _spread(g0) | (_spread(g1) << 1) | (_spread(g2) << 2)
    order, tmp = np.arange(n), np.empty(n, dtype=np.int64)
    tcode = np.empty(n, dtype=np.int64)
    cnt = np.empty(1025, dtype=np.int64)
    for shift in (0, 10, 20):  # codes move with their indices: every pass reads in sequence
        cnt[:] = 0
        for i in range(n):
            cnt[((code[i] >> shift) & 1023) + 1] += 1
        for b in range(1024):
            cnt[b + 1] += cnt[b]
        for i in range(n):
            b = (code[i] >> shift) & 1023
            tmp[cnt[b]], tcode[cnt[b]] = order[i], code[i]
            cnt[b] += 1
        order, tmp, code, tcode = tmp, order, tcode, code
    return order
