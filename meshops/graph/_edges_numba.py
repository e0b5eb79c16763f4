"""Compiled symmetrization of an edge list (numba): the fast path of
:func:`meshops.graph.hierarchy.symmetric_edges`, same output as its scipy route (the reference).

One counting pass places both directions of every pair in per-node rows (CSR), then each row is
sorted and its duplicates dropped: linear in the pairs, with short sorts (a row holds a node's
neighbours, both ways).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _sort_row(v, s, e):
    """Shell sort of ``v[s:e]`` (rows are short: a node's neighbours, both ways)."""
    gap = 1
    while e - s > 64 and gap < (e - s) // 4:
        gap = 3 * gap + 1
    while gap >= 1:
        for i in range(s + gap, e):
            t = v[i]
            j = i - gap
            while j >= s and v[j] > t:
                v[j + gap] = v[j]
                j -= gap
            v[j + gap] = t
        gap //= 3


@njit(cache=True)
def symmetric_pairs(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """``(2, E')`` both directions of the unique pairs ``(a, b)``, ``a != b``, sorted by (source, target)."""
    ptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(a.shape[0]):
        if a[i] != b[i]:
            ptr[a[i] + 1] += 1
            ptr[b[i] + 1] += 1
    for v in range(n):
        ptr[v + 1] += ptr[v]
    fill = ptr[:-1].copy()
    nbr = np.empty(ptr[n], dtype=np.int64)
    for i in range(a.shape[0]):
        u, w = a[i], b[i]
        if u != w:
            nbr[fill[u]] = w
            fill[u] += 1
            nbr[fill[w]] = u
            fill[w] += 1
    cnt = 0
    for v in range(n):
        s, e = ptr[v], ptr[v + 1]
        _sort_row(nbr, s, e)
        for i in range(s, e):
            if i == s or nbr[i] != nbr[i - 1]:
                cnt += 1
    out = np.empty((2, cnt), dtype=np.int64)
    c = 0
    for v in range(n):
        s, e = ptr[v], ptr[v + 1]
        for i in range(s, e):
            if i == s or nbr[i] != nbr[i - 1]:
                out[0, c] = v
                out[1, c] = nbr[i]
                c += 1
    return out
