"""Centerline geometry: arc length, resampling, rotation-minimizing frames, curvature, projection.

Pure numpy/scipy functions on polylines (the single-polyline ones live in
:mod:`meshops.geometry.polyline` and are re-exported here). A polyline is an ordered ``(n, 3)`` array of points; a
branched centerline is a :class:`Centerline` holding several branches that share the point array.

Conventions
-----------
* Arc length ``s`` starts at 0 at the first point of each polyline.
* Frames are ``(T, N, B)``: unit tangent, normal and binormal, right-handed (``B = T x N``).
  :func:`rotation_minimizing_frames` computes them with the double reflection method of
  Wang, Juttler, Zheng and Liu (ACM TOG 27(1), 2008), which is fourth-order accurate in the segment
  length and has no torsion-driven twist (unlike the Frenet frame, it is defined on straight pieces).
* The angle of a point around a centerline is ``atan2(d . B, d . N)`` in ``(-pi, pi]`` where ``d`` is
  the vector from its foot point on the centerline to the point.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from meshops.geometry.polyline import (
    _as_polyline,
    arc_length,
    curvature_torsion,
    resample,
    rotation_minimizing_frames,
    tangents,
)

log = logging.getLogger(__name__)

__all__ = [
    "Centerline",
    "CenterlineProjection",
    "arc_length",
    "curvature_torsion",
    "project_points",
    "resample",
    "rotation_minimizing_frames",
    "tangents",
]


# --------------------------------------------------------------------------- branched centerlines
@dataclass
class Centerline:
    """A branched centerline: points, per-point radius, and branches as ordered point-index paths.

    Attributes
    ----------
    points : (n, 3) float64
    branches : list of (m_b,) int64
        Each branch is an ordered path of point indices. Branches meet at bifurcation points: a
        child branch starts at (or is joined to) a point of its parent, recorded in ``parent``.
    radius : (n,) float64 or None
        Lumen radius per point (e.g. ``MaximumInscribedSphereRadius``).
    parent : list of (int, int)
        ``(parent_branch, parent_point)`` per branch; ``(-1, -1)`` for a root branch.
    point_data : dict of str -> (n, ...) arrays
        Any other per-point arrays read with the centerline.
    """

    points: np.ndarray
    branches: list[np.ndarray]
    radius: np.ndarray | None = None
    parent: list[tuple[int, int]] = field(default_factory=list)
    point_data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.points = _as_polyline(self.points, "Centerline.points", min_points=1)
        self.branches = [np.asarray(b, dtype=np.int64).ravel() for b in self.branches]
        n = len(self.points)
        for i, b in enumerate(self.branches):
            if len(b) and (b.min() < 0 or b.max() >= n):
                raise ValueError(f"Centerline: branch {i} indexes point {int(b.max())} but there are {n} points")
        if self.radius is not None:
            self.radius = np.asarray(self.radius, dtype=np.float64).ravel()
            if len(self.radius) != n:
                raise ValueError(f"Centerline: radius has {len(self.radius)} values but there are {n} points")
        if not self.parent:
            self.parent = [(-1, -1)] * len(self.branches)

    @property
    def n_points(self) -> int:
        return int(len(self.points))

    @property
    def n_branches(self) -> int:
        return len(self.branches)

    def branch_id(self) -> np.ndarray:
        """(n,) int64: the branch each point belongs to (the first branch listing it; -1 if none)."""
        out = np.full(self.n_points, -1, dtype=np.int64)
        for i in range(len(self.branches) - 1, -1, -1):
            out[self.branches[i]] = i
        return out

    def edges(self) -> np.ndarray:
        """(e, 2) int64 unique undirected segments (consecutive points of each branch + joins to parents)."""
        segs = [np.stack([b[:-1], b[1:]], axis=1) for b in self.branches if len(b) > 1]
        for (pb, pp), b in zip(self.parent, self.branches, strict=False):
            if pb >= 0 and pp >= 0 and len(b) and b[0] != pp:
                segs.append(np.array([[pp, b[0]]]))
        if not segs:
            return np.zeros((0, 2), dtype=np.int64)
        e = np.sort(np.concatenate(segs), axis=1)
        e = e[e[:, 0] != e[:, 1]]
        return np.unique(e, axis=0)

    def bifurcations(self) -> np.ndarray:
        """(k,) int64 indices of points where three or more segments meet."""
        e = self.edges()
        deg = np.bincount(e.ravel(), minlength=self.n_points)
        return np.flatnonzero(deg >= 3)

    def resampled(self, spacing: float) -> Centerline:
        """A new centerline with every branch resampled at uniform arc length (``<= spacing``).

        Branch end points (junctions, inlets, outlets) are kept exactly and stay shared between
        the branches meeting there; the radius is interpolated linearly in arc length; other
        ``point_data`` is not carried over (it has no meaning between the old points). Branches of
        zero length are kept as their end points.

        Shapes
        ------
        returns : Centerline with new points; ``branches`` and ``parent`` in the same order.
        """
        if not spacing > 0:
            raise ValueError(f"Centerline.resampled: spacing must be > 0, got {spacing}")
        pts: list[np.ndarray] = []
        rad: list[np.ndarray] = []
        end_new: dict[int, int] = {}
        branches: list[np.ndarray] = []
        count = 0

        def end_index(old: int, xyz: np.ndarray, r: float) -> int:
            nonlocal count
            if old not in end_new:
                end_new[old] = count
                pts.append(xyz[None])
                rad.append(np.array([r]))
                count += 1
            return end_new[old]

        radius = self.radius if self.radius is not None else np.zeros(self.n_points)
        for b in self.branches:
            p = self.points[b]
            s = arc_length(p) if len(b) > 1 else np.zeros(1)
            if len(b) < 2 or s[-1] <= 0:
                ids = [end_index(int(b[0]), p[0], float(radius[b[0]]))]
                if len(b) > 1:
                    ids.append(end_index(int(b[-1]), p[-1], float(radius[b[-1]])))
                branches.append(np.array(ids, dtype=np.int64))
                continue
            new, _, r = resample(p, spacing=spacing, values=radius[b])
            assert r is not None
            first = end_index(int(b[0]), p[0], float(radius[b[0]]))
            inner = np.arange(count, count + len(new) - 2)
            pts.append(new[1:-1])
            rad.append(r[1:-1])
            count += len(new) - 2
            last = end_index(int(b[-1]), p[-1], float(radius[b[-1]]))
            branches.append(np.concatenate([[first], inner, [last]]).astype(np.int64))
        parent = []
        for pb, pp in self.parent:
            parent.append((pb, end_new.get(pp, -1)) if pb >= 0 else (-1, -1))
        return Centerline(points=np.concatenate(pts), branches=branches,
                          radius=np.concatenate(rad) if self.radius is not None else None, parent=parent)

    def leaf_paths(self) -> list[np.ndarray]:
        """Point-index paths from a root to each leaf branch's end (one per outlet), junctions shared.

        A leaf branch is one no other branch starts from (at its last point); its path chains the
        parents back to a root branch, without repeating the junction points.

        Shapes
        ------
        returns : list of (m_k,) int64, in the order of the leaf branches.
        """
        has_child = {pb for pb, _ in self.parent if pb >= 0}
        out = []
        for i, b in enumerate(self.branches):
            if i in has_child and any(pb == i and pp == b[-1] for pb, pp in self.parent):
                continue
            chain = [np.asarray(b)]
            pb, pp = self.parent[i]
            seen = {i}
            while pb >= 0 and pb not in seen:
                seen.add(pb)
                par = self.branches[pb]
                cut = np.flatnonzero(par == pp)
                stop = int(cut[0]) if len(cut) else len(par) - 1
                head = par[: stop + 1]
                if len(chain[0]) and len(head) and head[-1] == chain[0][0]:
                    head = head[:-1]
                chain.insert(0, head)
                pb, pp = self.parent[pb]
            out.append(np.concatenate(chain).astype(np.int64))
        return out

    def components(self) -> np.ndarray:
        """(n,) int64 connected-component label of each point (disconnected pieces get distinct labels)."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        e = self.edges()
        n = self.n_points
        a = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
        return connected_components(a, directed=False)[1].astype(np.int64)


@dataclass
class CenterlineProjection:
    """Where query points sit relative to a centerline.

    Attributes
    ----------
    s : (q,) float64 arc length of the foot point, measured along its branch from the branch start.
    angle : (q,) float64 angle in ``(-pi, pi]`` around the tangent, from the frame normal toward the binormal.
    distance : (q,) float64 distance from the foot point.
    foot : (q, 3) float64 the closest point on the centerline.
    segment : (q,) int64 index of the segment (into the polyline, or into the concatenated branches).
    branch : (q,) int64 branch index (0 for a single polyline).
    t : (q,) float64 position in the segment, 0..1.
    """

    s: np.ndarray
    angle: np.ndarray
    distance: np.ndarray
    foot: np.ndarray
    segment: np.ndarray
    branch: np.ndarray
    t: np.ndarray


def _segments_of(centerline: np.ndarray | Centerline) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Segment endpoints a, b; branch id, arc length at a, and frames at a and b for each segment."""
    if isinstance(centerline, Centerline):
        lines = [centerline.points[b] for b in centerline.branches if len(b) >= 2]
        ids = [i for i, b in enumerate(centerline.branches) if len(b) >= 2]
    else:
        lines, ids = [_as_polyline(centerline, "centerline")], [0]
    if not lines:
        raise ValueError("project_points: the centerline has no branch with two or more points")
    A, Bp, br, s0, N0, N1, B0, B1 = [], [], [], [], [], [], [], []
    for bid, p in zip(ids, lines, strict=True):
        s = arc_length(p)
        keep = np.concatenate([[True], np.diff(s) > 0])
        p, s = p[keep], s[keep]
        if len(p) < 2:
            continue
        _, N, B = rotation_minimizing_frames(p)
        A.append(p[:-1])
        Bp.append(p[1:])
        br.append(np.full(len(p) - 1, bid))
        s0.append(s[:-1])
        N0.append(N[:-1])
        N1.append(N[1:])
        B0.append(B[:-1])
        B1.append(B[1:])
    if not A:
        raise ValueError("project_points: every branch of the centerline has zero length")
    cat = np.concatenate
    return cat(A), cat(Bp), cat(br), cat(s0), np.stack([cat(N0), cat(N1), cat(B0), cat(B1)])


def _point_segment(q: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ab = b - a
    L2 = np.einsum("...j,...j->...", ab, ab)
    t = np.clip(np.einsum("...j,...j->...", q - a, ab) / np.where(L2 > 0, L2, 1.0), 0.0, 1.0)
    foot = a + t[..., None] * ab
    d = np.linalg.norm(q - foot, axis=-1)
    return d, t


def project_points(
    points: np.ndarray,
    centerline: np.ndarray | Centerline,
    chunk: int = 65536,
) -> CenterlineProjection:
    """Project points onto a centerline: arc length, angle in the rotation-minimizing frame, distance.

    The exact closest point over all segments is found (not just the nearest vertex): candidate
    segments come from a k-d tree over segment midpoints, and ``k`` grows for a query until the
    bound ``|q - mid| - half_length`` of the next candidate exceeds the best distance found.
    Ties (equidistant segments, e.g. at the inside of a bend) go to the lowest segment index.
    The frame at the foot point interpolates the frames at the segment ends and is re-orthogonalized
    against the segment direction.

    Shapes
    ------
    points : (q, 3) float64
    centerline : (n, 3) polyline or a :class:`Centerline`
    returns : :class:`CenterlineProjection` with (q,) arrays (``foot`` is (q, 3)).
    """
    q = _as_polyline(points, "points", min_points=0)
    A, Bp, br, s0, frames = _segments_of(centerline)
    mid = 0.5 * (A + Bp)
    half = 0.5 * np.linalg.norm(Bp - A, axis=1)
    hmax = float(half.max())
    tree = cKDTree(mid)
    m = len(A)
    nq = len(q)
    seg = np.zeros(nq, dtype=np.int64)
    tt = np.zeros(nq)
    dist = np.full(nq, np.inf)
    for start in range(0, nq, chunk):
        qq = q[start : start + chunk]
        todo = np.arange(len(qq))
        k = min(8, m)
        best_d = np.full(len(qq), np.inf)
        best_s = np.zeros(len(qq), dtype=np.int64)
        best_t = np.zeros(len(qq))
        while len(todo):
            dm, im = tree.query(qq[todo], k=k)
            dm = dm.reshape(len(todo), -1)
            im = im.reshape(len(todo), -1)
            d, t = _point_segment(qq[todo][:, None, :], A[im], Bp[im])
            # lowest segment index among equal distances
            dmin = d.min(axis=1, keepdims=True)
            cand = np.where(d <= dmin, im, np.iinfo(np.int64).max)
            j = np.argmin(cand, axis=1)
            r = np.arange(len(todo))
            better = d[r, j] < best_d[todo]
            best_d[todo[better]] = d[r, j][better]
            best_s[todo[better]] = im[r, j][better]
            best_t[todo[better]] = t[r, j][better]
            if k >= m:
                break
            # Lower bound on any segment not yet checked: kth midpoint distance minus the longest half length.
            unresolved = dm[:, -1] - hmax <= best_d[todo]
            todo = todo[unresolved]
            k = min(2 * k, m)
        seg[start : start + len(qq)] = best_s
        tt[start : start + len(qq)] = best_t
        dist[start : start + len(qq)] = best_d
    a, b = A[seg], Bp[seg]
    foot = a + tt[:, None] * (b - a)
    tdir = (b - a) / np.linalg.norm(b - a, axis=1, keepdims=True)
    N = (1 - tt[:, None]) * frames[0][seg] + tt[:, None] * frames[1][seg]
    N = N - np.einsum("ij,ij->i", N, tdir)[:, None] * tdir
    N /= np.linalg.norm(N, axis=1, keepdims=True)
    B = np.cross(tdir, N)
    dvec = q - foot
    angle = np.arctan2(np.einsum("ij,ij->i", dvec, B), np.einsum("ij,ij->i", dvec, N))
    s = s0[seg] + tt * np.linalg.norm(b - a, axis=1)
    return CenterlineProjection(s=s, angle=angle, distance=dist, foot=foot, segment=seg, branch=br[seg], t=tt)
