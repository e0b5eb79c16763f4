"""Point subsampling for multi-scale hierarchies: farthest-point sampling and voxel clustering.

Both pick actual input points (never centroids), so coarse nodes lie on the geometry.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.spatial import cKDTree

log = logging.getLogger(__name__)

__all__ = ["farthest_point_sampling", "voxel_sampling"]


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
    lo_c = p.min(0)
    ext = float((p.max(0) - lo_c).max())
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
