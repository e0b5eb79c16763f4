"""CPU route of :mod:`meshops.graph.neighbors`: scipy's ``cKDTree`` with exact ties and caps.

``workers=-1`` uses every core (override with ``$MESHOPS_WORKERS``); queries are processed in
chunks of :data:`CHUNK` so memory stays bounded by ``CHUNK * max_num_neighbors``. Every function
returns ``(query, neighbor, distance)`` arrays sorted by (query, distance, neighbor index).
"""

from __future__ import annotations

import os

import numpy as np

#: Queries per chunk on the cKDTree route.
CHUNK = 1 << 16


def _workers() -> int:
    env = os.environ.get("MESHOPS_WORKERS")
    return int(env) if env else -1


def _row_sort(d: np.ndarray, nb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by (distance, index)."""
    o = np.argsort(nb, axis=1, kind="stable")
    d, nb = np.take_along_axis(d, o, 1), np.take_along_axis(nb, o, 1)
    o = np.argsort(d, axis=1, kind="stable")
    return np.take_along_axis(d, o, 1), np.take_along_axis(nb, o, 1)


def _ball_rows(tree, x, y, rows_q, radii, exclude_self, r_max=None):
    """All points within ``radii`` of the queries ``rows_q`` (global ids), sorted by (query, distance, index)."""
    sub = tree.query_ball_point(y[rows_q], radii, workers=_workers(), return_sorted=False)
    lens = np.fromiter((len(lst) for lst in sub), dtype=np.int64, count=len(sub))
    nb = np.fromiter((j for lst in sub for j in lst), dtype=np.int64, count=int(lens.sum()))
    q = np.repeat(rows_q, lens)
    if exclude_self:
        keep = nb != q
        q, nb = q[keep], nb[keep]
    d = np.linalg.norm(x[nb] - y[q], axis=1)
    if r_max is not None:
        keep = d <= r_max
        q, nb, d = q[keep], nb[keep], d[keep]
    o = np.lexsort((nb, d, q))
    return q[o], nb[o], d[o]


def _dense_knn_rows(tree, x, y, ids, kk, exclude_self, r=None):
    """Query ``kk`` nearest (within r) for the queries ``ids``: row-sorted (m, kk) distances and indices.

    Self matches (when excluded) and misses get distance inf and index -1, at the end of each row.
    cKDTree returns rows sorted by distance; only rows holding exactly equal distances are re-sorted
    so that equal distances are ordered by index.
    """
    yy = y[ids]
    if r is None:
        d, nb = tree.query(yy, k=kk, workers=_workers())
    else:
        d, nb = tree.query(yy, k=kk, distance_upper_bound=r * (1 + 1e-12), workers=_workers())
    d, nb = d.reshape(len(ids), kk), nb.reshape(len(ids), kk)
    valid = nb < len(x)
    if r is not None:
        valid &= d <= r
    if exclude_self:
        valid &= nb != ids[:, None]
        o = np.argsort(~valid, axis=1, kind="stable")  # invalid entries to the end, order kept
        d, nb, valid = (np.take_along_axis(a, o, 1) for a in (d, nb, valid))
    d = np.where(valid, d, np.inf)
    nb = np.where(valid, nb, np.iinfo(np.int64).max)
    tie_rows = np.flatnonzero(((d[:, 1:] == d[:, :-1]) & np.isfinite(d[:, 1:])).any(axis=1))
    if len(tie_rows):
        d[tie_rows], nb[tie_rows] = _row_sort(d[tie_rows], nb[tie_rows])
    return d, np.where(valid.any(axis=1)[:, None] & np.isfinite(d), nb, -1)


def _kdtree_select(
    x: np.ndarray, y: np.ndarray, k: int, exclude_self: bool, r: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` nearest (within ``r`` if given) per query, exact ties, sorted by (query, distance, index)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(x)
    n_x = len(x)
    kk = min(k + (1 if exclude_self else 0) + 1, n_x)  # one extra to see ties at the k-th distance
    qs, ns, ds = [], [], []
    for start in range(0, len(y), CHUNK):
        ids = np.arange(start, min(start + CHUNK, len(y)))
        d, nb = _dense_knn_rows(tree, x, y, ids, kk, exclude_self, r)
        kc = min(k, kk)
        if kk > k:
            tie = np.isfinite(d[:, k]) & (d[:, k] <= d[:, k - 1] * (1 + 1e-12))
        else:
            tie = np.zeros(len(ids), dtype=bool)
        dk, nk = d[:, :kc], nb[:, :kc]
        ok = np.isfinite(dk) & ~tie[:, None]
        q = np.broadcast_to(ids[:, None], dk.shape)
        q_l, n_l, d_l = [q[ok]], [nk[ok]], [dk[ok]]
        if tie.any():
            rows = ids[tie]
            q2, n2, d2 = _ball_rows(tree, x, y, rows, d[tie, k - 1] * (1 + 1e-12), exclude_self, r)
            # keep the first k per row
            start_of = np.searchsorted(q2, rows)
            rank = np.arange(len(q2)) - np.repeat(start_of, np.diff(np.append(start_of, len(q2))))
            keep = rank < k
            q_l.append(q2[keep])
            n_l.append(n2[keep])
            d_l.append(d2[keep])
        qq, nn, dd = np.concatenate(q_l), np.concatenate(n_l), np.concatenate(d_l)
        if tie.any():  # merge the tie rows back into query order (stable: rows stay internally sorted)
            o = np.argsort(qq, kind="stable")
            qq, nn, dd = qq[o], nn[o], dd[o]
        qs.append(qq)
        ns.append(nn)
        ds.append(dd)
    return np.concatenate(qs), np.concatenate(ns), np.concatenate(ds)


def _kdtree_radius(
    x: np.ndarray, y: np.ndarray, r: float, cap: int | None, exclude_self: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if cap is not None:
        return _kdtree_select(x, y, cap, exclude_self, r)
    from scipy.spatial import cKDTree

    tree = cKDTree(x)
    qs, ns, ds = [], [], []
    for start in range(0, len(y), CHUNK):
        ids = np.arange(start, min(start + CHUNK, len(y)))
        q, nb, d = _ball_rows(tree, x, y, ids, r, exclude_self, r)
        qs.append(q)
        ns.append(nb)
        ds.append(d)
    return np.concatenate(qs), np.concatenate(ns), np.concatenate(ds)


def _kdtree_knn(
    x: np.ndarray, y: np.ndarray, k: int, exclude_self: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _kdtree_select(x, y, k, exclude_self, None)
