"""Compiled mesh edges (numba): the unique edges of fixed-size cell blocks without a global sort.

The fast route of :func:`meshops.geometry.topology.cell_edges` / :func:`cell_adjacency`; the numpy
route (pairs, then one sort of packed keys) is the reference the tests compare it with.

Each local edge ``(a, b)`` of each cell goes into the row of its smaller point (a counting pass,
then a filling pass, block by block), each row is made unique with a marker array and sorted
(rows are short: a point has a few dozen edge slots), and the symmetric adjacency is formed from
those upper rows. Memory: one int32 slot per local edge, no ``(pairs, 2)`` int64 arrays and no
sort of all pairs.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def count_upper(cells: np.ndarray, local: np.ndarray, deg: np.ndarray) -> None:
    """Add to ``deg[p + 1]`` the local edges of ``cells`` whose smaller point is ``p``."""
    for c in range(cells.shape[0]):
        for t in range(local.shape[0]):
            a, b = cells[c, local[t, 0]], cells[c, local[t, 1]]
            if a != b:
                deg[min(a, b) + 1] += 1


@njit(cache=True)
def fill_upper(cells: np.ndarray, local: np.ndarray, fill: np.ndarray, col: np.ndarray) -> None:
    """Write the larger point of each local edge into the row of its smaller point."""
    for c in range(cells.shape[0]):
        for t in range(local.shape[0]):
            a, b = cells[c, local[t, 0]], cells[c, local[t, 1]]
            if a != b:
                lo = min(a, b)
                col[fill[lo]] = max(a, b)
                fill[lo] += 1


@njit(cache=True)
def _isort(a: np.ndarray, s: int, e: int) -> None:
    for t in range(s + 1, e):
        v = a[t]
        u = t - 1
        while u >= s and a[u] > v:
            a[u + 1] = a[u]
            u -= 1
        a[u + 1] = v


@njit(cache=True)
def unique_rows(off: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Make each row ``col[off[i]:off[i + 1]]`` unique and sorted in place (kept at its start);
    the new row lengths."""
    n = off.shape[0] - 1
    mark = np.full(n, -1, dtype=np.int64)
    ln = np.empty(n, dtype=np.int64)
    for i in range(n):
        w = off[i]
        for t in range(off[i], off[i + 1]):
            j = col[t]
            if mark[j] != i:
                mark[j] = i
                col[w] = j
                w += 1
        _isort(col, off[i], w)
        ln[i] = w - off[i]
    return ln


@njit(cache=True)
def upper_edges(off: np.ndarray, col: np.ndarray, ln: np.ndarray) -> np.ndarray:
    """``(e, 2)`` int64: the unique rows as edges ``(i, j)``, ``i < j``, sorted lexicographically."""
    n = ln.shape[0]
    out = np.empty((ln.sum(), 2), dtype=np.int64)
    p = 0
    for i in range(n):
        for t in range(off[i], off[i] + ln[i]):
            out[p, 0], out[p, 1] = i, col[t]
            p += 1
    return out


@njit(cache=True)
def symmetric_from_upper(off: np.ndarray, col: np.ndarray, ln: np.ndarray) -> np.ndarray:
    """``(2, 2e)`` int64: both directions of the unique rows, sorted by (source, target)."""
    n = ln.shape[0]
    low = np.zeros(n, dtype=np.int64)
    for i in range(n):
        for t in range(off[i], off[i] + ln[i]):
            low[col[t]] += 1
    start = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        start[i + 1] = start[i] + low[i] + ln[i]
    out = np.empty((2, start[n]), dtype=np.int64)
    fill = start[:n].copy()
    for i in range(n):  # lower entries of row j arrive in increasing i: already sorted
        for t in range(off[i], off[i] + ln[i]):
            j = col[t]
            out[0, fill[j]], out[1, fill[j]] = j, i
            fill[j] += 1
    for i in range(n):  # then the upper entries (all larger than i), sorted
        p = start[i] + low[i]
        for t in range(off[i], off[i] + ln[i]):
            out[0, p], out[1, p] = i, col[t]
            p += 1
    return out
