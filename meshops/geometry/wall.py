"""The vessel wall as a surface: clean-up, openings (boundary loops), caps of closed walls, distance.

The first steps of :func:`meshops.geometry.centerline_extract.centerlines_from_wall`, usable on
their own (``meshops compare`` finds a wall's caps and inlet with them). Pure numpy/scipy; inputs
are never modified.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from meshops.geometry.surface import face_areas, face_normals

log = logging.getLogger(__name__)

__all__ = ["Opening", "WallError", "boundary_loops", "clean_wall", "find_caps", "find_openings", "orient_faces",
           "wall_distance"]


class WallError(ValueError):
    """The wall cannot give a centerline (not a vessel, unreadable, no openings ...)."""


@dataclass
class Opening:
    """An inlet/outlet of a vessel wall.

    Attributes
    ----------
    center : (3,) float64 area-weighted centroid of the opening (or cap).
    normal : (3,) float64 unit normal pointing out of the vessel.
    radius : float, equivalent radius ``sqrt(area / pi)``.
    kind : ``"open"`` (a boundary loop), ``"cap"`` (a flat patch of a closed wall) or ``"point"``.
    vertices : (k,) int64 wall vertices of the loop or cap.
    """

    center: np.ndarray
    normal: np.ndarray
    radius: float
    kind: str
    vertices: np.ndarray


# --------------------------------------------------------------------------------- clean up
def clean_wall(points: np.ndarray, faces: np.ndarray, largest: bool = False, where: str = "wall"
               ) -> tuple[np.ndarray, np.ndarray]:
    """Merged, consistently wound triangles of one connected wall piece.

    Shapes
    ------
    points : (n, 3) float64, faces : (m, 3) int
    returns : (points (n', 3), faces (m', 3) int64) with unreferenced points removed.

    Raises
    ------
    WallError
        no triangles, non-finite points, or several disconnected pieces without ``largest``.
    """
    p = np.asarray(points, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) < 4:
        raise WallError(f"{where}: not a surface ({len(p)} points of shape {p.shape})")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) < 4:
        raise WallError(f"{where}: the wall has no triangles (faces of shape {f.shape})")
    if not np.isfinite(p).all():
        i = int(np.argwhere(~np.isfinite(p))[0, 0])
        raise WallError(f"{where}: point {i} has a non-finite coordinate {p[i].tolist()}")
    ext = float(np.ptp(p[np.unique(f)], axis=0).max())
    q = np.round(p / (1e-9 * ext)).astype(np.int64)
    _, first, inv = np.unique(q, axis=0, return_index=True, return_inverse=True)
    p = p[first]
    f = _faces_sorted_unique(inv, faces, p, ext)
    if len(f) < 4:
        raise WallError(f"{where}: fewer than 4 non-degenerate triangles")
    lab = _face_components(f, len(p))
    counts = np.bincount(lab)
    if len(counts) > 1:
        area = np.bincount(lab, weights=face_areas(p, f))
        main = int(np.argmax(area))
        if not largest and np.sort(area)[-2] > 1e-3 * area[main]:
            raise WallError(f"{where}: the wall has {len(counts)} disconnected pieces (areas "
                            f"{', '.join(f'{a:.4g}' for a in np.sort(area)[::-1][:4])}); pass --largest "
                            "to use the largest")
        log.info("%s: keeping the largest of %d pieces (%.1f%% of the area)", where, len(counts),
                 100 * area[main] / area.sum())
        f = f[lab == main]
    f = orient_faces(f, len(p), where)
    used = np.unique(f)
    remap = np.full(len(p), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return p[used], remap[f]


def _faces_sorted_unique(inv: np.ndarray, faces: np.ndarray, p: np.ndarray, ext: float) -> np.ndarray:
    """Faces over merged points without degenerate and duplicate triangles (first kept, winding kept)."""
    f = inv.ravel()[np.asarray(faces, dtype=np.int64)]
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    f = f[face_areas(p, f) > 1e-14 * ext * ext]
    _, keep = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    return f[np.sort(keep)]


def _edge_table(f: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed half-edges of the faces: (key of the undirected edge, face, +1/-1 direction)."""
    a = f.ravel()
    b = np.roll(f, -1, axis=1).ravel()
    face = np.repeat(np.arange(len(f)), 3)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return lo * n + hi, face, np.where(a < b, 1, -1)


def _manifold_pairs(f: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face pairs sharing an edge used by exactly two faces, and whether their windings agree."""
    key, face, sgn = _edge_table(f, n)
    order = np.argsort(key, kind="stable")
    key, face, sgn = key[order], face[order], sgn[order]
    uk, start, cnt = np.unique(key, return_index=True, return_counts=True)
    two = start[cnt == 2]
    return face[two], face[two + 1], sgn[two] != sgn[two + 1]


def _face_components(f: np.ndarray, n: int) -> np.ndarray:
    """Connected pieces of the faces (through shared vertices)."""
    m = len(f)
    rows = np.repeat(np.arange(m), 3)
    a = coo_matrix((np.ones(3 * m), (rows, f.ravel())), shape=(m, n)).tocsr()
    lab = connected_components(a @ a.T, directed=False)[1]
    return lab


def orient_faces(faces: np.ndarray, n: int, where: str = "wall") -> np.ndarray:
    """Faces re-wound so that neighbours across manifold edges agree (a double-cover labelling).

    Each face has two states (kept, flipped); a manifold edge ties the states of its two faces. The
    component of the first face of each piece keeps its winding. A non-orientable piece (Moebius-like
    noise) keeps its input winding, with a warning.

    Shapes
    ------
    faces : (m, 3) int64 -> (m, 3) int64
    """
    f = np.asarray(faces, dtype=np.int64).copy()
    m = len(f)
    fa, fb, agree = _manifold_pairs(f, n)
    # node i = face i kept, node i + m = face i flipped
    ra = np.concatenate([fa, fa + m])
    rb = np.concatenate([np.where(agree, fb, fb + m), np.where(agree, fb + m, fb)])
    g = coo_matrix((np.ones(len(ra)), (ra, rb)), shape=(2 * m, 2 * m))
    _, lab = connected_components(g, directed=False)
    if np.any(lab[:m] == lab[m:]):
        log.warning("%s: the wall is not orientable; face windings kept as read", where)
        return f
    # of each pair of mirror components, the one with the lower label is "kept" (consistent per piece)
    flip = lab[:m] > lab[m:]
    f[flip] = f[flip][:, ::-1]
    return f


# --------------------------------------------------------------------------------- openings
def boundary_loops(faces: np.ndarray, n: int) -> list[np.ndarray]:
    """Closed loops of boundary edges (edges of one face), each in the winding of its face.

    Shapes
    ------
    faces : (m, 3) int64 -> list of (k,) int64 vertex loops
    """
    key, _, _ = _edge_table(faces, n)
    uk, cnt = np.unique(key, return_counts=True)
    single = set(uk[cnt == 1].tolist())
    a = faces.ravel()
    b = np.roll(faces, -1, axis=1).ravel()
    sel = np.array([k in single for k in key.tolist()], dtype=bool) if single else np.zeros(len(key), bool)
    out_edges: dict[int, list[int]] = {}
    for u, v in zip(a[sel].tolist(), b[sel].tolist(), strict=True):
        out_edges.setdefault(u, []).append(v)
    loops = []
    while out_edges:
        start = next(iter(out_edges))
        loop = [start]
        cur = start
        while True:
            nxt = out_edges[cur].pop()
            if not out_edges[cur]:
                del out_edges[cur]
            if nxt == start:
                break
            loop.append(nxt)
            cur = nxt
            if cur not in out_edges:  # open chain (a non-manifold boundary): stop here
                break
        loops.append(np.array(loop, dtype=np.int64))
    return loops


def _loop_opening(p: np.ndarray, loop: np.ndarray) -> Opening:
    x = p[loop]
    c0 = x.mean(0)
    nrm = np.cross(x - c0, np.roll(x, -1, axis=0) - c0).sum(0) * 0.5  # follows the faces' winding
    area = float(np.linalg.norm(nrm))
    tri = np.linalg.norm(np.cross(x - c0, np.roll(x, -1, axis=0) - c0), axis=1)
    mid = 0.5 * (x + np.roll(x, -1, axis=0))
    center = (mid * tri[:, None]).sum(0) / max(tri.sum(), 1e-300) * 2 / 3 + c0 / 3
    # a boundary loop wound like its faces runs clockwise seen from outside the opening
    normal = -nrm / max(area, 1e-300)
    return Opening(center, normal, float(np.sqrt(area / np.pi)), "open", loop)


def find_caps(points: np.ndarray, faces: np.ndarray, angle_tol: float = 3.0, min_crease: float = 50.0,
              max_roundness: float = 1.5) -> list[Opening]:
    """Flat caps of a closed wall: planar, round patches with a sharp crease all around.

    A patch is a connected set of faces whose normals are within ``angle_tol`` degrees of each
    other (grown over manifold edges); it is a cap when its rim lies within ``max_roundness``
    times the radius of a disk of the same area from its centroid, and the faces within half its radius of its rim make a
    mean angle above ``min_crease`` degrees with it (the wall turns away sharply all around).

    Shapes
    ------
    points (n, 3), faces (m, 3) -> list of :class:`Opening` (kind "cap"), largest first.
    """
    p, f = points, faces
    n = len(p)
    fn = face_normals(p, f)
    area = face_areas(p, f)
    a, b, c3 = p[f[:, 0]], p[f[:, 1]], p[f[:, 2]]
    outward = 1.0 if np.einsum("ij,ij->i", a, np.cross(b, c3)).sum() >= 0 else -1.0
    fa, fb, _ = _manifold_pairs(f, n)
    cos_tol = np.cos(np.radians(angle_tol))
    flat = np.einsum("ij,ij->i", fn[fa], fn[fb]) > cos_tol
    g = coo_matrix((np.ones(int(flat.sum())), (fa[flat], fb[flat])), shape=(len(f), len(f)))
    _, lab = connected_components(g, directed=False)
    counts = np.bincount(lab)
    ctree = cKDTree(p[f].mean(1))
    caps = []
    order = np.argsort(lab, kind="stable")
    start = np.concatenate([[0], np.cumsum(counts)])
    for c in np.flatnonzero(counts >= 3):
        sel = order[start[c] : start[c + 1]]
        nsum = (fn[sel] * area[sel, None]).sum(0)
        A = float(area[sel].sum())
        nm = nsum / max(np.linalg.norm(nsum), 1e-300)
        if np.min(fn[sel] @ nm) < np.cos(np.radians(2 * angle_tol)):
            continue
        loops = boundary_loops(f[sel], n)
        if len(loops) != 1:
            continue
        x = p[loops[0]]
        r_out = float(np.linalg.norm(x - x.mean(0), axis=1).max())
        if r_out > max_roundness * np.sqrt(A / np.pi):
            continue
        # crease: the faces near the rim (within half the cap radius), outside the patch
        r_eq = float(np.sqrt(A / np.pi))
        near = np.unique(np.concatenate([np.asarray(v, dtype=np.int64) for v in
                                         ctree.query_ball_point(x, 0.5 * r_eq)] + [np.zeros(0, np.int64)]))
        near = near[lab[near] != c]
        if len(near) == 0:
            continue
        crease = np.degrees(np.arccos(np.clip(np.abs(fn[near] @ nm), 0, 1)))
        mean_crease = float(np.average(crease, weights=area[near]))
        log.debug("cap candidate: radius %.3g, rim crease %.1f deg", r_eq, mean_crease)
        if mean_crease < min_crease:
            continue
        cen = (p[f[sel]].mean(1) * area[sel, None]).sum(0) / A
        # the vessel lies behind a cap: no wall near the rim in front of its plane
        ahead = (p[f[near]].mean(1) - cen) @ (nm * outward)
        if ahead.max() > 0.1 * r_eq:
            continue
        caps.append(Opening(cen, nm * outward, float(np.sqrt(A / np.pi)), "cap", np.unique(f[sel])))
        caps[-1].faces = sel  # type: ignore[attr-defined]
    caps.sort(key=lambda o: -o.radius)
    edge = float(np.median(np.linalg.norm(p[f] - p[np.roll(f, -1, axis=1)], axis=2)))
    # flat facets on the rim of a cap, or specks far smaller than the vessel, are not openings
    kept: list[Opening] = []
    for cap in caps:
        if cap.radius < 0.05 * caps[0].radius or cap.radius < edge:
            continue
        if any(np.linalg.norm(cap.center - k.center) < 1.5 * k.radius for k in kept):
            continue
        kept.append(cap)
    return kept


def find_openings(points: np.ndarray, faces: np.ndarray, min_loop_edges: int = 5
                  ) -> tuple[list[Opening], list[np.ndarray]]:
    """Openings of a cleaned wall: boundary loops, or flat caps when the wall is closed.

    Returns the openings (largest first) and the small loops taken as segmentation holes.

    Shapes
    ------
    points (n, 3), faces (m, 3) -> (list of :class:`Opening`, list of (k,) int64 hole loops)
    """
    loops = boundary_loops(faces, len(points))
    holes = [lp for lp in loops if len(lp) < min_loop_edges]
    ops = [_loop_opening(points, lp) for lp in loops if len(lp) >= min_loop_edges]
    if ops:
        ops.sort(key=lambda o: -o.radius)
        return ops, holes
    return find_caps(points, faces), holes


def _cap_loop(p: np.ndarray, loop: np.ndarray, op: Opening, h: float, start: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Points and triangles closing a boundary loop: concentric rings toward its center."""
    k = max(1, int(np.ceil(op.radius / max(h, 1e-300))))
    x = p[loop]
    m = len(loop)
    pts = [op.center[None]]
    ring_ids = []
    idx = start + 1
    for j in range(1, k):
        t = 1.0 - j / k  # t = 1 is the loop itself
        pts.append(op.center + t * (x - op.center))
        ring_ids.append(np.arange(idx, idx + m))
        idx += m
    rings = [loop] + ring_ids
    tris = []
    for outer, inner in zip(rings[:-1], rings[1:], strict=True):
        # the loop is wound like its faces: cap triangles are wound the other way
        o2, i2 = np.roll(outer, -1), np.roll(inner, -1)
        tris.append(np.stack([o2, outer, inner], 1))
        tris.append(np.stack([o2, inner, i2], 1))
    last = rings[-1]
    tris.append(np.stack([np.roll(last, -1), last, np.full(m, start)], 1))
    return np.concatenate(pts), np.concatenate(tris)


# --------------------------------------------------------------------------------- extraction
def wall_distance(query: np.ndarray, points: np.ndarray, faces: np.ndarray, k: int = 6
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Distance from points to a triangle surface, and the side (+1 outside, -1 inside).

    The closest point is searched on the triangles around the ``k`` nearest vertices (exact
    whenever the closest triangle touches one of them, as on any reasonably even mesh); the side
    is that of the closest triangle's normal (outward-oriented faces) where the closest point is inside
    a face, and -1 (inside) where it is on an edge or a corner.

    Shapes
    ------
    query (q, 3), points (n, 3), faces (m, 3) -> (distance (q,), side (q,))
    """
    from meshops.geometry.boundary import _closest_on_triangles

    q = np.asarray(query, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64)
    used = np.unique(f)
    k = min(k, len(used))
    _, vi = cKDTree(points[used]).query(q, k=k)
    vi = used[np.asarray(vi).reshape(len(q), k)]
    # vertex -> faces table padded to the largest valence (-1 = none)
    owner = f.ravel()
    order = np.argsort(owner, kind="stable")
    deg = np.bincount(owner, minlength=len(points))
    start = np.concatenate([[0], np.cumsum(deg)])
    D = int(deg.max())
    rank = np.arange(len(owner)) - start[owner[order]]
    table = np.full((len(points), D), -1, dtype=np.int64)
    table[owner[order], rank] = order // 3
    fn = face_normals(points, f)
    dist = np.empty(len(q))
    side = np.ones(len(q))
    step = max(64, 2_000_000 // (k * D))
    for s0 in range(0, len(q), step):
        qq = q[s0 : s0 + step]
        cand = table[vi[s0 : s0 + step]].reshape(len(qq), k * D)
        ok = cand >= 0
        c = np.where(ok, cand, 0)
        tri = points[f[c]]  # (b, k*D, 3, 3)
        cp, feat = _closest_on_triangles(qq[:, None, :], tri[..., 0, :], tri[..., 1, :], tri[..., 2, :])
        d = np.where(ok, np.linalg.norm(cp - qq[:, None, :], axis=2), np.inf)
        j = np.argmin(d, axis=1)
        r = np.arange(len(qq))
        dist[s0 : s0 + len(qq)] = d[r, j]
        out = np.einsum("ij,ij->i", qq - cp[r, j], fn[c[r, j]]) > 0
        # the side is only told by a face interior (at an edge or a corner a face normal can mislead)
        side[s0 : s0 + len(qq)] = np.where(out & (feat[r, j] == 0), 1.0, -1.0)
    return dist, side
