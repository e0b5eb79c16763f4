"""Boundary geometry: outward orientation, normals and signed distance to a closed boundary.

Pure numpy/scipy. A 3D boundary is a triangle surface ``(points, faces (m, 3))``; a 2D boundary
is a set of segments ``(points, edges (m, 2))`` in the z = 0 plane. Boundary faces of a volume
mesh come from :func:`meshops.geometry.topology.boundary_faces`.

Signed distance convention: negative inside, positive outside, zero on the boundary. The sign uses
angle-weighted pseudo-normals (Baerentzen and Aanaes, IEEE TVCG 11(3), 2005): the normal of the
closest feature (face, edge or vertex) of the boundary, which gives the correct sign for any point
on a closed, consistently oriented, manifold boundary, also where the closest point is an edge or a
corner.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.spatial import cKDTree

from meshops.geometry.surface import face_normals

log = logging.getLogger(__name__)

__all__ = ["closest_points", "orient_outward", "segment_normals", "signed_distance"]


def orient_outward(points: np.ndarray, faces: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Flip faces (triangles/polygons) or 2D segments so their normal points away from ``inside``.

    ``inside`` is a point on the interior side of each face, typically the centroid of the owner cell.
    For segments ``(a, b)`` in the plane, the normal is ``(dy, -dx)`` (the right of the direction).

    Shapes
    ------
    points : (n, 3) float64
    faces : (m, k) int, k >= 2
    inside : (m, 3) float64
    returns : (m, k) int64 with reversed rows where needed.
    """
    p = np.asarray(points, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64).copy()
    if len(f) == 0:
        return f
    c = p[f].mean(axis=1)
    if f.shape[1] == 2:
        n = segment_normals(p, f, unit=False)
    else:
        # Newell normal, valid for any planar-ish polygon
        v = p[f]
        n = np.cross(v, np.roll(v, -1, axis=1)).sum(axis=1)
    flip = np.einsum("ij,ij->i", n, c - np.asarray(inside, dtype=np.float64)) < 0
    f[flip] = f[flip, ::-1]
    return f


def segment_normals(points: np.ndarray, edges: np.ndarray, unit: bool = True) -> np.ndarray:
    """In-plane normals ``(dy, -dx, 0)`` of 2D segments (to the right of ``a -> b``).

    Shapes
    ------
    points : (n, 3) float64
    edges : (m, 2) int
    returns : (m, 3) float64
    """
    p = np.asarray(points, dtype=np.float64)
    e = np.asarray(edges, dtype=np.int64)
    d = p[e[:, 1]] - p[e[:, 0]]
    n = np.stack([d[:, 1], -d[:, 0], np.zeros(len(d))], axis=1)
    if unit:
        ln = np.linalg.norm(n, axis=1, keepdims=True)
        n = np.divide(n, ln, out=np.zeros_like(n), where=ln > 0)
    return n


def _closest_on_triangles(q: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """Closest points on triangles (Ericson's region test), with the feature hit.

    feature codes: 0 face interior, 1/2/3 vertex a/b/c, 4 edge ab, 5 edge ac, 6 edge bc.
    """
    ab, ac, ap = b - a, c - a, q - a
    dot = lambda u, v: np.einsum("...j,...j->...", u, v)  # noqa: E731
    d1, d2 = dot(ab, ap), dot(ac, ap)
    bp = q - b
    d3, d4 = dot(ab, bp), dot(ac, bp)
    cp = q - c
    d5, d6 = dot(ab, cp), dot(ac, cp)
    vc = d1 * d4 - d3 * d2
    vb = d5 * d2 - d1 * d6
    va = d3 * d6 - d5 * d4
    with np.errstate(divide="ignore", invalid="ignore"):
        v_ab = d1 / (d1 - d3)
        w_ac = d2 / (d2 - d6)
        w_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        den = 1.0 / (va + vb + vc)
        v_in, w_in = vb * den, vc * den
    conds = [
        (d1 <= 0) & (d2 <= 0),
        (d3 >= 0) & (d4 <= d3),
        (vc <= 0) & (d1 >= 0) & (d3 <= 0),
        (d6 >= 0) & (d5 <= d6),
        (vb <= 0) & (d2 >= 0) & (d6 <= 0),
        (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0),
    ]
    codes = [1, 2, 4, 3, 5, 6]
    feat = np.select(conds, codes, default=0)
    pts = np.select(
        [(feat == k)[..., None] for k in (1, 2, 4, 3, 5, 6)],
        [a, b, a + v_ab[..., None] * ab, c, a + w_ac[..., None] * ac, b + w_bc[..., None] * (c - b)],
        default=a + v_in[..., None] * ab + w_in[..., None] * ac,
    )
    return pts, feat


def _closest_on_segments(q: np.ndarray, a: np.ndarray, b: np.ndarray):
    """feature codes: 0 segment interior, 1 vertex a, 2 vertex b."""
    ab = b - a
    L2 = np.einsum("...j,...j->...", ab, ab)
    t = np.einsum("...j,...j->...", q - a, ab) / np.where(L2 > 0, L2, 1.0)
    feat = np.where(t <= 0, 1, np.where(t >= 1, 2, 0))
    t = np.clip(t, 0, 1)
    return a + t[..., None] * ab, feat


def _nearest_primitive(q: np.ndarray, prims: np.ndarray, chunk: int = 32768):
    """Index of the closest primitive (triangle or segment rows of ``prims (m, k, 3)``) for each query.

    Primitives are binned by size (factors of 2 of their circumradius about the centroid), each bin
    searched with its own k-d tree over centroids: the lower bound ``|q - c| - half`` of unchecked
    primitives stays tight even when a few faces are huge (inlet caps, far fields). Ties go to the
    lowest index among the primitives checked (any equidistant one may be returned).
    """
    center = prims.mean(axis=1)
    half = np.linalg.norm(prims - center[:, None], axis=2).max(axis=1)
    med = max(float(np.median(half)), 1e-300)
    cls = np.clip(np.floor(np.log(np.maximum(half, 1e-300) / med) / np.log(2.0)), 0, None).astype(np.int64)
    best_i = np.zeros(len(q), dtype=np.int64)
    best_d = np.full(len(q), np.inf)
    for c in np.unique(cls):
        ids = np.flatnonzero(cls == c)
        bi, bd = _nearest_in(q, prims[ids], center[ids], float(half[ids].max()), chunk)
        gi = ids[bi]
        better = (bd < best_d) | ((bd == best_d) & (gi < best_i))
        best_i[better] = gi[better]
        best_d[better] = bd[better]
    return best_i, best_d


def _nearest_in(q: np.ndarray, prims: np.ndarray, center: np.ndarray, hmax: float, chunk: int):
    m = len(prims)
    tree = cKDTree(center)
    closest = (lambda qq, pr: _closest_on_triangles(qq, pr[..., 0, :], pr[..., 1, :], pr[..., 2, :])) \
        if prims.shape[1] == 3 else (lambda qq, pr: _closest_on_segments(qq, pr[..., 0, :], pr[..., 1, :]))
    best_i = np.zeros(len(q), dtype=np.int64)
    best_d = np.full(len(q), np.inf)
    for s0 in range(0, len(q), chunk):
        qq = q[s0 : s0 + chunk]
        todo = np.arange(len(qq))
        k, k0 = min(8, m), 0
        bd = np.full(len(qq), np.inf)
        bi = np.zeros(len(qq), dtype=np.int64)
        while len(todo):
            dm, im = tree.query(qq[todo], k=k)
            dm, im = dm.reshape(len(todo), -1), im.reshape(len(todo), -1)
            im_all = im
            im = im[:, k0:]  # only the candidates not checked in earlier rounds
            cp, _ = closest(qq[todo][:, None, :], prims[im])
            d = np.linalg.norm(cp - qq[todo][:, None, :], axis=2)
            dmin = d.min(axis=1, keepdims=True)
            j = np.argmin(np.where(d <= dmin, im, np.iinfo(np.int64).max), axis=1)
            r = np.arange(len(todo))
            better = (d[r, j] < bd[todo]) | ((d[r, j] == bd[todo]) & (im[r, j] < bi[todo]))
            bd[todo[better]] = d[r, j][better]
            bi[todo[better]] = im[r, j][better]
            if k >= m:
                break
            del im_all
            todo = todo[(bd[todo] > 0) & (dm[:, -1] - hmax < bd[todo])]
            k0, k = k, min(2 * k, m)
        best_i[s0 : s0 + len(qq)] = bi
        best_d[s0 : s0 + len(qq)] = bd
    return best_i, best_d


def closest_points(query: np.ndarray, points: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact closest points on a triangle surface (``faces (m, 3)``) or a segment set (``faces (m, 2)``).

    Shapes
    ------
    query : (q, 3) float64
    returns : (closest (q, 3), distance (q,), face index (q,) int64)
    """
    q = _query(query)
    p = np.asarray(points, dtype=np.float64)
    f = _clean(p, faces)
    i, d = _nearest_primitive(q, p[f])
    pr = p[f[i]]
    if f.shape[1] == 3:
        cp, _ = _closest_on_triangles(q, pr[:, 0], pr[:, 1], pr[:, 2])
    else:
        cp, _ = _closest_on_segments(q, pr[:, 0], pr[:, 1])
    return cp, d, i


def _query(query: np.ndarray) -> np.ndarray:
    q = np.asarray(query, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] not in (2, 3):
        raise ValueError(f"query points must have shape (q, 3), got {q.shape}")
    if q.shape[1] == 2:
        q = np.hstack([q, np.zeros((len(q), 1))])
    if not np.all(np.isfinite(q)):
        i = int(np.argwhere(~np.isfinite(q))[0, 0])
        raise ValueError(f"query point {i} has a non-finite coordinate {q[i].tolist()}")
    return q


def _clean(p: np.ndarray, faces: np.ndarray) -> np.ndarray:
    f = np.asarray(faces, dtype=np.int64)
    if f.ndim != 2 or f.shape[1] not in (2, 3):
        raise ValueError(f"boundary faces must be triangles (m, 3) or segments (m, 2), got {f.shape}")
    if len(f) == 0:
        raise ValueError("the boundary has no faces")
    if f.shape[1] == 3:
        area = np.linalg.norm(np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]]), axis=1)
    else:
        area = np.linalg.norm(p[f[:, 1]] - p[f[:, 0]], axis=1)
    bad = area <= 1e-14 * max(float(area.max()), 1e-300)
    if bad.any():
        log.warning("boundary: dropping %d degenerate faces (zero area/length), first is face %d",
                    int(bad.sum()), int(np.flatnonzero(bad)[0]))
        f = f[~bad]
        if len(f) == 0:
            raise ValueError("the boundary has only degenerate faces")
    return f


def signed_distance(query: np.ndarray, points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Signed distance from query points to a closed boundary (negative inside).

    Parameters
    ----------
    query : points to evaluate.
    points : boundary vertex coordinates.
    faces : outward-oriented triangles (3D) or segments (2D, z = 0; a segment ``a -> b`` has its
        outside on its right, i.e. the domain is traversed counter-clockwise).

    Shapes
    ------
    query : (q, 3) float64
    points : (n, 3) float64
    faces : (m, 3) or (m, 2) int
    returns : (q,) float64

    Notes
    -----
    The sign is only meaningful for closed, consistently oriented boundaries. Degenerate faces are
    dropped (with a warning).
    """
    q = _query(query)
    p = np.asarray(points, dtype=np.float64)
    f = _clean(p, faces)
    i, d = _nearest_primitive(q, p[f])
    pr = p[f[i]]
    n = len(p)
    if f.shape[1] == 3:
        fn = face_normals(p, f)
        cp, feat = _closest_on_triangles(q, pr[:, 0], pr[:, 1], pr[:, 2])
        # vertex pseudo-normals: angle weighted
        from meshops.geometry.surface import _corner_angles

        ang = _corner_angles(p, f)
        vn = np.zeros_like(p)
        for c in range(3):
            np.add.at(vn, f[:, c], fn * ang[:, c : c + 1])
        # edge pseudo-normals: sum of the adjacent face normals
        e = np.concatenate([f[:, [0, 1]], f[:, [0, 2]], f[:, [1, 2]]])
        es = np.sort(e, axis=1)
        key = es[:, 0] * n + es[:, 1]
        ukey, inv = np.unique(key, return_inverse=True)
        en = np.zeros((len(ukey), 3))
        np.add.at(en, inv.ravel(), np.concatenate([fn, fn, fn]))
        m = len(f)
        pn = fn[i].copy()
        for code, col in ((1, 0), (2, 1), (3, 2)):
            s = feat == code
            pn[s] = vn[f[i[s], col]]
        for code, off in ((4, 0), (5, m), (6, 2 * m)):
            s = feat == code
            pn[s] = en[inv.ravel()[off + i[s]]]
    else:
        sn = segment_normals(p, f)
        cp, feat = _closest_on_segments(q, pr[:, 0], pr[:, 1])
        vn = np.zeros_like(p)
        for c in range(2):
            np.add.at(vn, f[:, c], sn)
        pn = sn[i].copy()
        for code, col in ((1, 0), (2, 1)):
            s = feat == code
            pn[s] = vn[f[i[s], col]]
    sign = np.where(np.einsum("ij,ij->i", q - cp, pn) < 0, -1.0, 1.0)
    return sign * d
