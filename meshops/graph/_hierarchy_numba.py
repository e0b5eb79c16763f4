"""Compiled kernels (numba) of a hierarchy build: edge features, the number of connected
components, the grid level's down and up maps, and the symmetrization of kNN rows; one pass (or
a transpose and a merge) over the arrays, no temporaries of the edge count's size.

Each has a numpy/scipy reference that the tests compare it with, bit for bit
(``meshops.graph.build._edge_features_numpy``; in ``meshops.graph.hierarchy``: ``n_components``,
``_grid_down_weights``, ``_up_weights``, ``symmetric_edges``' scipy route).
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
    (summed in pair order: the bits of ``np.bincount``). Returns ``([fine, coarse] (2, M), w)``."""
    n = dd.shape[0]
    cnt = 0
    for i in range(n):
        for c in range(kd):
            if c == 0 or dd[i, c] <= r:
                cnt += 1
    pairs, w = np.empty((2, cnt), dtype=np.int64), np.empty(cnt)
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
                pairs[0, p], pairs[1, p], w[p] = i, jj[i, c], t
                tot[jj[i, c]] += t
                p += 1
    for q in range(cnt):
        w[q] /= tot[pairs[1, q]]
    return pairs, w


@njit(cache=True)
def idw_up_map(dd, jj, k, exact_tol):
    """Prolongation pairs over each fine node's ``k`` nearest coarse nodes ``(dd, jj)``: weights
    ``1 / d^2`` normalized per fine node; a fine node within ``exact_tol`` of its nearest takes it
    alone. Returns ``([coarse, fine] (2, M), w)`` in row order, zero weights left out (the numpy bits)."""
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
    pairs, w = np.empty((2, cnt), dtype=np.int64), np.empty(cnt)
    p = 0
    for i in range(n):
        for c in range(k):
            if wk[i, c] > 0:
                pairs[0, p], pairs[1, p], w[p] = jj[i, c], i, wk[i, c]
                p += 1
    return pairs, w


@njit(cache=True)
def _own_rows(indptr, cols, n):
    """Each row of the CSR ``(indptr, cols)`` sorted, without repeats, self-loops and entries
    outside ``[0, n)``: ``(own, length)`` with row ``i`` at ``own[indptr[i]:indptr[i] + length[i]]``."""
    own = np.empty(cols.shape[0], dtype=np.int32)
    ln = np.zeros(n, dtype=np.int64)
    for i in range(indptr.shape[0] - 1):
        s, w = indptr[i], indptr[i]
        for t in range(indptr[i], indptr[i + 1]):
            j = cols[t]
            if 0 <= j < n and j != i:
                u = w
                while u > s and own[u - 1] > j:  # insertion into the sorted prefix
                    own[u] = own[u - 1]
                    u -= 1
                if u > s and own[u - 1] == j:  # a repeat: undo the shift
                    for v in range(u, w):
                        own[v] = own[v + 1]
                    continue
                own[u] = j
                w += 1
        ln[i] = w - s
    return own, ln


@njit(cache=True)
def _merged(own, s1, e1, tcol, s2, e2, out, p, i):
    """Merge the sorted runs ``own[s1:e1]`` and ``tcol[s2:e2]`` without repeats; written at ``p``
    of ``out`` (row ``i``) unless ``out`` is empty; the number of entries."""
    a, b, c = s1, s2, 0
    write = out.shape[1] > 0
    while a < e1 or b < e2:
        if b >= e2 or (a < e1 and own[a] < tcol[b]):
            v = own[a]
            a += 1
        elif a >= e1 or tcol[b] < own[a]:
            v = tcol[b]
            b += 1
        else:
            v = own[a]
            a += 1
            b += 1
        if write:
            out[0, p + c], out[1, p + c] = i, v
        c += 1
    return c


@njit(cache=True)
def symmetric_rows(indptr, cols, n):
    """``(2, E)`` int64: both directions of the unique undirected edges ``{i, cols[t]}`` of the
    rows of the CSR ``(indptr, cols)`` (row ``i``: node ``i``'s neighbours, e.g. kNN rows), sorted
    by (source, target); self-loops and entries outside ``[0, n)`` dropped. The bits of
    ``meshops.graph.hierarchy.symmetric_edges`` (scipy's route), in one transpose and a merge."""
    m = indptr.shape[0] - 1
    own, ln = _own_rows(indptr, cols, n)
    toff = np.zeros(n + 1, dtype=np.int64)
    for i in range(m):
        for t in range(indptr[i], indptr[i] + ln[i]):
            toff[own[t] + 1] += 1
    for j in range(n):
        toff[j + 1] += toff[j]
    tcol = np.empty(toff[n], dtype=np.int32)
    fill = toff[:n].copy()
    for i in range(m):  # rows in increasing i: each transposed row comes out sorted
        for t in range(indptr[i], indptr[i] + ln[i]):
            j = own[t]
            tcol[fill[j]] = i
            fill[j] += 1
    none = np.empty((2, 0), dtype=np.int64)
    start = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        s1, e1 = (indptr[i], indptr[i] + ln[i]) if i < m else (0, 0)
        start[i + 1] = start[i] + _merged(own, s1, e1, tcol, toff[i], toff[i + 1], none, 0, i)
    out = np.empty((2, start[n]), dtype=np.int64)
    for i in range(n):
        s1, e1 = (indptr[i], indptr[i] + ln[i]) if i < m else (0, 0)
        _merged(own, s1, e1, tcol, toff[i], toff[i + 1], out, start[i], i)
    return out
