"""Compiled edge kernels (numba) for the hierarchy: edge features and the number of connected
components, one pass each over the edges (no temporaries of the edge count's size).

Each has a numpy/scipy reference (``meshops.graph.build._edge_features_numpy``,
``meshops.graph.hierarchy.n_components``) that the tests compare it with, bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def edge_features(pos: np.ndarray, src: np.ndarray, dst: np.ndarray, out: np.ndarray) -> None:
    """``out[e] = [pos[dst] - pos[src], |pos[dst] - pos[src]|]`` computed in float64 (the bits of the
    numpy reference: differences, then squares summed over the axes in order, one ``sqrt``)."""
    d = pos.shape[1]
    for e in range(src.shape[0]):
        a, b = src[e], dst[e]
        t = pos[b, 0] - pos[a, 0]
        out[e, 0] = t
        sq = t * t
        for j in range(1, d):
            t = pos[b, j] - pos[a, j]
            out[e, j] = t
            sq += t * t
        out[e, d] = np.sqrt(sq)


@njit(cache=True)
def _root(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving
        i = parent[i]
    return i


@njit(cache=True)
def count_components(src: np.ndarray, dst: np.ndarray, n: int) -> int:
    """Connected components of the undirected graph ``(src, dst)`` over ``n`` nodes (union-find)."""
    parent = np.arange(n)
    k = n
    for e in range(src.shape[0]):
        a, b = _root(parent, src[e]), _root(parent, dst[e])
        if a != b:
            if a < b:
                parent[b] = a
            else:
                parent[a] = b
            k -= 1
    return k


@njit(cache=True)
def grid_down_map(dd, jj, kd, r, mc):
    """Restriction pairs of a grid level from the fine nodes' nearest coarse nodes ``(dd, jj)``:
    each fine node to those of its ``kd`` nearest within ``r`` (always its nearest), weights
    ``(1 - (d / R)^2)^2`` with ``R = 1.05 max(r, d)``, normalized to sum 1 per coarse node
    (summed in pair order: the bits of ``np.bincount``). Returns ``(fine, coarse, w)``."""
    n = dd.shape[0]
    cnt = 0
    for i in range(n):
        for c in range(kd):
            if c == 0 or dd[i, c] <= r:
                cnt += 1
    f_idx, c_idx, w = np.empty(cnt, dtype=np.int64), np.empty(cnt, dtype=np.int64), np.empty(cnt)
    tot = np.zeros(mc)
    p = 0
    for i in range(n):
        for c in range(kd):
            d = dd[i, c]
            if c == 0 or d <= r:
                t = d / (max(r, d) * 1.05 + 1e-300)
                t *= t
                t = 1.0 - t
                t *= t
                f_idx[p], c_idx[p], w[p] = i, jj[i, c], t
                tot[jj[i, c]] += t
                p += 1
    for q in range(cnt):
        w[q] /= tot[c_idx[q]]
    return f_idx, c_idx, w


@njit(cache=True)
def idw_up_map(dd, jj, k, exact_tol):
    """Prolongation pairs over each fine node's ``k`` nearest coarse nodes ``(dd, jj)``: weights
    ``1 / d^2`` normalized per fine node; a fine node within ``exact_tol`` of its nearest takes it
    alone. Returns ``(coarse, fine, w)`` in row order, zero weights left out (the numpy bits)."""
    n = dd.shape[0]
    wk = np.empty((n, k))
    cnt = 0
    for i in range(n):
        if dd[i, 0] <= exact_tol:
            wk[i, 0] = 1.0
            for c in range(1, k):
                wk[i, c] = 0.0
        else:
            for c in range(k):
                wk[i, c] = 1.0 / max(dd[i, c] * dd[i, c], 1e-300)
        s = wk[i, 0]
        for c in range(1, k):
            s += wk[i, c]
        for c in range(k):
            wk[i, c] = wk[i, c] / s
            if wk[i, c] > 0:
                cnt += 1
    c_idx, f_idx, w = np.empty(cnt, dtype=np.int64), np.empty(cnt, dtype=np.int64), np.empty(cnt)
    p = 0
    for i in range(n):
        for c in range(k):
            if wk[i, c] > 0:
                c_idx[p], f_idx[p], w[p] = jj[i, c], i, wk[i, c]
                p += 1
    return c_idx, f_idx, w
