"""Synthetic branched vessel walls with known centerlines (for the centerline-extraction tests).

A tree is a curved trunk with side branches (and optionally a branch of a branch). Its wall is the
zero level set of the union of the branch tubes (distance to the branch polyline minus the
radius, cut flat at the free ends), triangulated by VTK's flying edges through PyVista, so the
junctions are real unions and the caps are flat. The true centerline is the branch polylines,
each child starting on its parent's axis.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    return v * np.cos(angle) + np.cross(axis, v) * np.sin(angle) + axis * np.dot(axis, v) * (1 - np.cos(angle))


def _perp(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    v -= np.dot(v, t) * t
    return v / np.linalg.norm(v)


def _curve(start: np.ndarray, direction: np.ndarray, length: float, bend: float, rng: np.random.Generator,
           n: int = 200) -> np.ndarray:
    """A smooth curve from ``start``: its tangent turns by ``bend`` radians in total about a random axis."""
    axis = _perp(direction, rng)
    s = np.linspace(0, length, n)
    ang = bend * (s / length) ** 1.0
    t = np.array([_rotate(direction, axis, a) for a in ang])
    ds = length / (n - 1)
    return start + np.concatenate([[np.zeros(3)], np.cumsum(0.5 * (t[1:] + t[:-1]) * ds, axis=0)])


def random_tree(seed: int, n_side: int | None = None, sub_branch: bool | None = None) -> dict:
    """Branch polylines and radii of a random tree (mm): ``{"branches": [(points, radius, parent)]}``.

    ``parent`` is ``(parent branch, index of the junction point on it)`` or ``None`` for the trunk.
    """
    rng = np.random.default_rng(seed)
    n_side = int(rng.integers(1, 4)) if n_side is None else n_side
    sub_branch = bool(rng.random() < 0.3) if sub_branch is None else sub_branch
    r0 = rng.uniform(1.4, 2.0)
    L = rng.uniform(28, 36)
    trunk = _curve(np.zeros(3), np.array([0, 0, 1.0]), L, rng.uniform(0.2, 0.8), rng)
    out = [(trunk, r0 * np.linspace(1.0, rng.uniform(0.7, 0.85), len(trunk)), None)]  # tapered: inlet largest
    s = np.linspace(0, L, len(trunk))
    slots = np.sort(rng.choice(np.linspace(0.3, 0.75, 6), size=n_side, replace=False))
    az0 = rng.uniform(0, 2 * np.pi)
    t_tr = np.gradient(trunk, axis=0)
    t_tr /= np.linalg.norm(t_tr, axis=1, keepdims=True)
    for j, frac in enumerate(slots):
        i = int(np.searchsorted(s, frac * L))
        t = t_tr[i]
        n0 = _perp(t, np.random.default_rng(seed * 7 + 1))
        side = _rotate(n0, t, az0 + j * 2.4)  # spread the branches around the trunk
        d = _rotate(t, np.cross(t, side), rng.uniform(np.radians(40), np.radians(70)))
        rb = out[0][1][i] * rng.uniform(0.55, 0.75)
        pts = _curve(trunk[i], d, rng.uniform(10, 15), rng.uniform(0.0, 0.5), rng, n=120)
        out.append((pts, np.full(len(pts), rb), (0, i)))
    if sub_branch:
        pb, rb = out[1][0], out[1][1][0]
        i = int(0.55 * len(pb))
        t = pb[i + 1] - pb[i]
        t /= np.linalg.norm(t)
        d = _rotate(t, _perp(t, rng), np.radians(45))
        pts = _curve(pb[i], d, 8.0, 0.2, rng, n=80)
        out.append((pts, np.full(len(pts), 0.7 * rb), (1, i)))
    return {"branches": out}


def tree_sdf(tree: dict, x: np.ndarray) -> np.ndarray:
    """Signed distance (approximately: to dense polyline points) of the union of the branch tubes."""
    d = np.full(len(x), np.inf)
    for pts, r, parent in tree["branches"]:
        dense_s = np.linspace(0, 1, 6 * len(pts))
        seg = np.linspace(0, 1, len(pts))
        dense = np.stack([np.interp(dense_s, seg, pts[:, c]) for c in range(3)], 1)
        rr = np.interp(dense_s, seg, r)
        dist, idx = cKDTree(dense).query(x, distance_upper_bound=float(r.max()) * 3)
        ok = np.isfinite(dist)
        db = np.full(len(x), np.inf)
        db[ok] = dist[ok] - rr[idx[ok]]
        t_end = pts[-1] - pts[-2]
        t_end /= np.linalg.norm(t_end)
        db = np.maximum(db, (x - pts[-1]) @ t_end)
        if parent is None:
            t0 = pts[1] - pts[0]
            t0 /= np.linalg.norm(t0)
            db = np.maximum(db, (pts[0] - x) @ t0)
        d = np.minimum(d, db)
    return d


def tree_wall(tree: dict, h: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The closed (capped) wall of a tree: (points (n, 3), triangles (m, 3))."""
    import pyvista as pv

    rmin = min(float(b[1].min()) for b in tree["branches"])
    rmax = max(float(b[1].max()) for b in tree["branches"])
    h = rmin / 4 if h is None else h
    allp = np.concatenate([b[0] for b in tree["branches"]])
    lo = allp.min(0) - rmax - 3.37 * h
    hi = allp.max(0) + rmax + 3 * h
    dims = np.ceil((hi - lo) / h).astype(int) + 1
    grid = pv.ImageData(dimensions=dims, spacing=(h, h, h), origin=lo)
    sdf = tree_sdf(tree, np.asarray(grid.points))
    grid.point_data["sdf"] = np.where(np.isfinite(sdf), sdf, 10 * rmax)
    surf = grid.contour([0.0], scalars="sdf").triangulate().clean()
    faces = np.asarray(surf.faces).reshape(-1, 4)[:, 1:]
    return np.asarray(surf.points, dtype=np.float64), faces.astype(np.int64)


def open_wall(points: np.ndarray, faces: np.ndarray, tree: dict) -> np.ndarray:
    """The faces left after removing the flat caps at the free ends (an open wall)."""
    c = points[faces].mean(1)
    keep = np.ones(len(faces), bool)
    ends = [(b[0][-1], b[0][-1] - b[0][-2], b[1][-1]) for b in tree["branches"]]
    trunk = tree["branches"][0]
    ends.append((trunk[0][0], trunk[0][0] - trunk[0][1], trunk[1][0]))
    for e, t, r in ends:
        t = t / np.linalg.norm(t)
        near = (np.abs((c - e) @ t) < 1e-3 * r) & (np.linalg.norm(c - e, axis=1) < 1.5 * r)
        keep &= ~near
    return faces[keep]


def true_paths(tree: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """Root-to-outlet polylines (points, radius) of the true centerline, one per free end."""
    br = tree["branches"]
    paths = []
    for k, (pts, r, parent) in enumerate(br):
        if any(b[2] is not None and b[2][0] == k and b[2][1] == len(pts) - 1 for b in br):
            continue
        chain_p, chain_r = [pts], [r]
        cur = parent
        while cur is not None:
            pb, i = cur
            chain_p.insert(0, br[pb][0][: i + 1])
            chain_r.insert(0, br[pb][1][: i + 1])
            cur = br[pb][2]
        paths.append((np.concatenate(chain_p), np.concatenate(chain_r)))
    return paths


def path_errors(cl, paths: list[tuple[np.ndarray, np.ndarray]]) -> tuple[int, float, float]:
    """Compare an extracted centerline with true root-to-outlet paths.

    Each true path is matched to the extracted leaf path ending nearest its outlet. Returns the
    number of true paths whose outlet has no extracted path ending within its radius, the worst
    symmetric mean distance over the matched pairs (in units of the path's mean true radius), and
    the worst mean |radius error| (same units; the true radius at the foot point).
    """
    from meshops.geometry.centerline import project_points

    ours = [(cl.points[q], cl.radius[q]) for q in cl.leaf_paths()]
    unmatched, dist, rad = 0, 0.0, 0.0
    for tp, tr in paths:
        k = int(np.argmin([np.linalg.norm(o[0][-1] - tp[-1]) for o in ours]))
        op, orad = ours[k]
        if np.linalg.norm(op[-1] - tp[-1]) > tr[-1]:
            unmatched += 1
            continue
        a, b = project_points(op, tp), project_points(tp, op)
        dist = max(dist, 0.5 * (a.distance.mean() + b.distance.mean()) / tr.mean())
        s_true = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(tp, axis=0), axis=1))])
        rad = max(rad, float(np.mean(np.abs(orad - np.interp(a.s, s_true, tr)))) / tr.mean())
    return unmatched, dist, rad
