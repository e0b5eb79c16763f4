"""Point subsampling for multi-scale hierarchies: farthest-point sampling, grid and voxel clustering.

Both pick actual input points (never centroids), so coarse nodes lie on the geometry.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy.spatial import cKDTree

try:  # the compiled k-d tree (numba); scipy's cKDTree otherwise
    from meshops.geometry import _kdtree_numba as _kd
except ImportError:  # pragma: no cover - numba is a dependency
    _kd = None

log = logging.getLogger(__name__)

__all__ = ["farthest_point_sampling", "grid_sampling", "voxel_sampling"]


def col_min(p: np.ndarray) -> np.ndarray:
    """``p.min(0)`` of an ``(n, d)`` array, column by column (the same values; numpy's axis-0
    reduction over a few columns is ~10x slower than d contiguous-stride passes)."""
    return np.array([p[:, j].min() for j in range(p.shape[1])], dtype=p.dtype)


def col_max(p: np.ndarray) -> np.ndarray:
    """``p.max(0)`` of an ``(n, d)`` array, column by column (see :func:`col_min`)."""
    return np.array([p[:, j].max() for j in range(p.shape[1])], dtype=p.dtype)


def _check_points(points: np.ndarray, name: str = "points") -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got {p.shape}")
    if not np.all(np.isfinite(p)):
        i = int(np.argwhere(~np.isfinite(p))[0, 0])
        raise ValueError(f"{name}: point {i} has a non-finite coordinate {p[i].tolist()}")
    return p


def farthest_point_sampling(points: np.ndarray, m: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact farthest-point sampling: each new sample is the point farthest from those chosen so far.

    Runs far below the textbook O(n m): a point's distance to the sample set can only drop when a
    new sample lands within its current distance, which is at most the current covering radius
    ``D``; so each step updates only the points in a k-d tree ball of radius ``D`` around the new
    sample. The running maximum is kept per block of points in k-d tree (spatial) order, so a
    ball touches few blocks and the next farthest point is found in O(n / B + B). Ties go to the
    first point in that spatial order (deterministic for given input).

    Parameters
    ----------
    points : input points.
    m : number of samples (clipped to ``n``).
    start : index of the first sample.

    Shapes
    ------
    points : (n, d) float64
    returns : (idx (m,) int64 in selection order, radius (m,) float64) where ``radius[i]`` is the
        distance of sample ``i`` to samples ``0..i-1`` (``inf`` for the first), non-increasing;
        every input point lies within ``radius[-1]`` of one of the first ``m - 1`` samples.
    """
    p = _check_points(points)
    n = len(p)
    if n == 0:
        raise ValueError("farthest_point_sampling: no points")
    m = int(min(max(m, 1), n))
    if not 0 <= start < n:
        raise ValueError(f"farthest_point_sampling: start={start} is out of range for {n} points")
    tree = cKDTree(p)
    perm = np.asarray(tree.indices, dtype=np.int64)  # spatial (leaf) order
    inv = np.empty(n, dtype=np.int64)
    inv[perm] = np.arange(n)
    B = 256 if n > 4096 else 32
    nb = (n + B - 1) // B
    mind = np.full(nb * B, -np.inf)  # in spatial order, padded
    M = mind.reshape(nb, B)
    chosen = np.zeros(m, dtype=np.int64)
    rad = np.zeros(m)
    cur, cur_d = start, np.inf
    for i in range(m):
        chosen[i] = cur
        rad[i] = cur_d
        if i == m - 1:
            break
        if i == 0:
            mind[:n] = np.linalg.norm(p[perm] - p[cur], axis=1)
            bmax = M.max(axis=1)
        else:
            idx = np.asarray(tree.query_ball_point(p[cur], cur_d), dtype=np.int64)
            if len(idx):
                d = np.linalg.norm(p[idx] - p[cur], axis=1)
                j = inv[idx]
                upd = d < mind[j]
                if upd.any():
                    j = j[upd]
                    mind[j] = d[upd]
                    tb = np.unique(j // B)
                    bmax[tb] = M[tb].max(axis=1)
        mind[inv[cur]] = 0.0
        bmax[inv[cur] // B] = M[inv[cur] // B].max()
        blk = int(np.argmax(bmax))
        jj = blk * B + int(np.argmax(M[blk]))
        cur, cur_d = int(perm[jj]), float(mind[jj])
        if cur_d <= 0.0:
            log.warning("farthest_point_sampling: only %d distinct points, %d asked", i + 1, m)
            return chosen[: i + 1], rad[: i + 1]
    return chosen, rad


def voxel_sampling(points: np.ndarray, m: int, iters: int = 40) -> np.ndarray:
    """About ``m`` points, one per occupied voxel: the point nearest its voxel's centroid.

    The voxel size is found by bisection so the count is as close to ``m`` as a grid allows (it is
    not exact: counts jump with the voxel size). O(n) per bisection step.

    Shapes
    ------
    points : (n, d) float64
    returns : (m',) int64 indices, sorted.
    """
    p = _check_points(points)
    n = len(p)
    m = int(min(max(m, 1), n))
    lo_c = col_min(p)
    ext = float((col_max(p) - lo_c).max())
    if ext == 0:
        return np.array([0], dtype=np.int64)

    def cells(h: float) -> tuple[np.ndarray, np.ndarray]:
        g = np.floor((p - lo_c) / h).astype(np.int64)
        _, inv, cnt = np.unique(g, axis=0, return_inverse=True, return_counts=True)
        return inv.ravel(), cnt

    lo, hi = ext * 1e-9, ext * 2.0
    best = None
    for _ in range(iters):
        h = np.sqrt(lo * hi)
        inv, cnt = cells(h)
        if best is None or abs(len(cnt) - m) < abs(len(best[1]) - m):
            best = (inv, cnt)
        if len(cnt) == m:
            break
        if len(cnt) > m:
            lo = h
        else:
            hi = h
    assert best is not None
    inv, cnt = best
    k = len(cnt)
    cen = np.zeros((k, p.shape[1]))
    np.add.at(cen, inv, p)
    cen /= cnt[:, None]
    d = np.linalg.norm(p - cen[inv], axis=1)
    order = np.lexsort((np.arange(n), d, inv))
    first = np.ones(n, dtype=bool)
    first[1:] = inv[order][1:] != inv[order][:-1]
    return np.sort(order[first])


def _cell_keys(p: np.ndarray, lo: np.ndarray, h: float) -> tuple[np.ndarray, int, np.ndarray]:
    """Row-major integer key of each point's cell of side ``h``, the key range and the cell coordinates."""
    g = ((p - lo) / h).astype(np.int64)
    dims = col_max(g) + 1
    if float(np.prod(dims.astype(np.float64))) >= 2.0**62:
        raise ValueError(f"grid sampling: cell size {h:.3g} is too small for the extent of the points")
    key = g[:, 0].copy()
    for j in range(1, p.shape[1]):
        key *= dims[j]
        key += g[:, j]
    return key, int(np.prod(dims)), g


def _occupied(p: np.ndarray, lo: np.ndarray, h: float) -> int:
    key, span, _ = _cell_keys(p, lo, h)
    if span <= 8 * len(p):  # a counting pass instead of a sort
        return int(np.count_nonzero(np.bincount(key, minlength=span)))
    key.sort()
    return int(np.count_nonzero(key[1:] != key[:-1])) + 1


def _grid_size(p: np.ndarray, m: int, iters: int = 12) -> tuple[float, int]:
    """A cell size whose occupied-cell count is at least ``m`` and close to it (secant on log-log).

    Returns ``(h, count)``; ``count < m`` only when no size tried reached ``m`` (duplicates).
    """
    lo = col_min(p)
    ext = col_max(p) - lo
    big = float(ext.max())
    live = ext[ext > 1e-9 * big]
    dim = max(len(live), 1)
    h = float(np.prod(live) / m) ** (1.0 / dim) if len(live) else big
    best_ok, best_lo = None, None  # smallest count >= m (with its h), largest count < m
    for _ in range(iters):
        try:
            c = _occupied(p, lo, h)
        except ValueError:  # finer than the key range allows
            break
        log.debug("grid sampling: cell %.4g -> %d occupied (%d asked)", h, c, m)
        if c >= m and (best_ok is None or c < best_ok[1]):
            best_ok = (h, c)
        if c < m and (best_lo is None or c > best_lo[1]):
            best_lo = (h, c)
        if best_ok is not None and best_ok[1] <= 1.04 * m:
            break
        if best_ok is not None and best_lo is not None:  # interpolate in log-log between the brackets
            (h1, c1), (h2, c2) = best_ok, best_lo
            s = math.log(c1 / c2) / math.log(h2 / h1) if c1 != c2 else dim
            h = h1 * (c1 / (1.02 * m)) ** (1.0 / max(s, 1e-3))
            if not min(h1, h2) < h < max(h1, h2):
                h = math.sqrt(h1 * h2)
        else:
            h *= (c / (1.02 * m)) ** (1.0 / dim) * (0.98 if c < m else 1.0)
    if best_ok is None:
        assert best_lo is not None
        return best_lo
    return best_ok


def grid_sampling(points: np.ndarray, m: int) -> tuple[np.ndarray, float]:
    """Exactly ``m`` well-spread points in linear time: one per cell of a uniform grid, then thinned.

    The cell size ``h`` is chosen so that a few per cent more than ``m`` cells are occupied; each
    occupied cell keeps its point nearest the cell centre (to 2^-20 of the cell; ties: the lower
    index) and the samples with the closest other sample are dropped down to ``m``. Every input
    point lies within ``h * sqrt(d)`` of its cell's sample unless that cell was thinned. A
    linear-time stand-in for farthest-point sampling: spatially uniform like FPS (not
    density-following), actual input points, no Python loop per point. When duplicates leave
    fewer than ``m`` cells at any size, the points farthest from the samples fill up.

    Shapes
    ------
    points : (n, d) float64
    returns : (idx (m,) int64 sorted, h) -- the indices of the samples and the cell size.
    """
    from scipy.spatial import cKDTree

    p = _check_points(points)
    n = len(p)
    if n == 0:
        raise ValueError("grid_sampling: no points")
    m = int(min(max(m, 1), n))
    if m == n:
        return np.arange(n), 0.0
    lo = col_min(p)
    h, _ = _grid_size(p, m)
    idx, count = _cell_representatives(p, lo, h)
    if len(idx) > m:
        idx = _thin(p, idx, count, len(idx) - m)
    elif len(idx) < m:
        d, _ = cKDTree(p[idx]).query(p)
        d[idx] = -1.0
        extra = np.lexsort((np.arange(n), -d))[: m - len(idx)]
        if d[extra].min() <= 0:
            log.warning("grid_sampling: fewer than %d distinct points; duplicates were sampled", m)
        idx = np.concatenate([idx, extra])
    return np.sort(idx), float(h)


def _second_nearest(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Distance from each query (a point of ``x``) to its second nearest point of ``x``: the
    compiled k-d tree in 3D (queries in Morton order), else scipy's cKDTree; the same distances."""
    if _kd is None or x.shape[1] != 3 or len(x) < 2:
        return cKDTree(x, balanced_tree=False, compact_nodes=False).query(q, k=2)[0][:, 1]
    _, xp = _kd.kd_order(np.ascontiguousarray(x), _kd.LEAF)
    bx, first = _kd.build_boxes(xp, _kd.LEAF)
    lo = col_min(q)
    o = _kd.morton_order(np.ascontiguousarray(q), lo, 1023.0 / np.maximum(col_max(q) - lo, 1e-300))
    d = np.empty(len(q))
    d[o] = _kd.query(xp, bx, first, np.ascontiguousarray(q[o]), 2, np.inf, -1)[0][:, 1]
    return d


def _thin(p: np.ndarray, idx: np.ndarray, count: np.ndarray, extra: int) -> np.ndarray:
    """Drop ``extra`` samples: among those of the sparsest cells (dropping them uncovers the
    fewest points), the ones closest to another sample (of a close pair, the higher index)."""
    cand = np.lexsort((idx, count))[: min(len(idx), 4 * extra + 16)]
    d = _second_nearest(p[idx], p[idx[cand]])
    drop = cand[np.lexsort((-idx[cand], d))[:extra]]
    return np.delete(idx, drop)


def _cell_representatives(p: np.ndarray, lo: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Per occupied cell, the index of its point nearest the cell centre (ties: the lower index),
    and the number of points in the cell."""
    n = len(p)
    key, span, g = _cell_keys(p, lo, h)
    ib, kb, db = max(1, int(n - 1).bit_length()), max(1, int(span - 1).bit_length()), 20
    dist = ((p - lo) / h - g - 0.5) ** 2  # squared offset from the centre, in cell units
    dist = dist.sum(1) if dist.ndim == 2 else dist
    if kb + ib + db <= 63:  # one value sort of packed (cell, distance, index) keys
        dq = np.minimum(dist * ((1 << db) / (0.25 * p.shape[1])), (1 << db) - 1).astype(np.int64)
        packed = np.sort((key << (db + ib)) | (dq << ib) | np.arange(n))
        cell = packed >> (db + ib)
        first = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
        return packed[first] & ((1 << ib) - 1), np.diff(np.r_[first, n])
    order = np.lexsort((np.arange(n), dist, key))
    k = key[order]
    first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    return order[first], np.diff(np.r_[first, n])
