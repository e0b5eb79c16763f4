"""Centerlines from a vessel wall: minimal paths through the internal Voronoi diagram (as VMTK).

:func:`centerlines_from_wall` takes a lumen surface (triangles; open, capped, noisy or with
non-manifold pieces) and returns a branched :class:`~meshops.geometry.centerline.Centerline`
whose radius is the maximum inscribed sphere radius:

1. **Clean up**: coincident vertices are merged (an explicit step: the caller's point order is not
   touched), degenerate faces dropped, face winding made consistent over manifold edges, and the
   connected pieces counted (several pieces are an error unless ``largest=True``).
2. **Openings**: boundary loops of the wall (a loop of fewer than ``min_loop_edges`` edges is a
   segmentation hole and is filled, not an opening). A closed wall has its caps found as flat,
   round patches bounded by a sharp crease (:func:`find_caps`). Open walls are capped with a fan of
   rings so that the surface is closed.
3. **Voronoi diagram**: the Delaunay tetrahedra of the closed surface's points (an even subset of
   40,000 on denser walls); the circumcenters
   (Voronoi vertices) inside the surface are kept (signed distance < 0), each with radius = its
   distance to the wall (caps excluded).
4. **Minimal paths**: Dijkstra on the dual graph of the internal tetrahedra (Voronoi edges), each
   edge costing its length times the mean inverse radius of its ends, from the inlet (the largest
   opening unless given) to every outlet. The shortest-path tree makes the union of the paths a
   tree: branches are split where paths part.
5. **Smoothing**: each branch is resampled, smoothed with its ends (inlet/outlet centers,
   bifurcation points) fixed, and its radius recomputed as the exact distance to the wall.

All functions are pure numpy/scipy and never modify their inputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import Delaunay, cKDTree

from meshops.geometry.centerline import Centerline
from meshops.geometry.polyline import arc_length, resample
from meshops.geometry.surface import vertex_normals
from meshops.geometry.wall import (
    Opening,
    WallError,
    _cap_loop,
    boundary_loops,
    clean_wall,
    find_caps,
    find_openings,
    wall_distance,
)

log = logging.getLogger(__name__)

__all__ = ["Opening", "WallCenterlines", "WallError", "boundary_loops", "centerlines_from_wall", "clean_wall",
           "extract_centerlines", "find_caps", "wall_distance",
           "find_openings"]


@dataclass
class WallCenterlines:
    """What :func:`extract_centerlines` found: the tree and the openings it joins.

    Attributes
    ----------
    centerline : :class:`Centerline` (branch 0 starts at the inlet; radius = inscribed sphere radius)
    inlet : :class:`Opening`
    outlets : list of :class:`Opening`, in the order of the centerlines (leaf branches)
    holes : int, small boundary loops filled as segmentation holes
    n_voronoi : int, internal Voronoi vertices used for the paths
    """

    centerline: Centerline
    inlet: Opening
    outlets: list[Opening]
    holes: int
    n_voronoi: int


def _close_surface(p: np.ndarray, f: np.ndarray, openings: list[Opening], holes: list[np.ndarray], h: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed, outward-oriented surface: (points, faces, True for faces of the wall proper)."""
    pts, tris, wall = [p], [f], [np.ones(len(f), bool)]
    for op in openings:
        if op.kind == "cap":
            wall[0][op.faces] = False  # type: ignore[attr-defined]
    n = len(p)
    for op in openings:
        if op.kind != "open":
            continue
        cp, ct = _cap_loop(p, op.vertices, op, h, n)
        pts.append(cp)
        tris.append(ct)
        wall.append(np.zeros(len(ct), bool))
        n += len(cp)
    for lp in holes:
        c = p[lp].mean(0)
        pts.append(c[None])
        tris.append(np.stack([np.roll(lp, -1), lp, np.full(len(lp), n)], 1))
        wall.append(np.ones(len(lp), bool))
        n += 1
    P, F, W = np.concatenate(pts), np.concatenate(tris), np.concatenate(wall)
    a, b, c = P[F[:, 0]], P[F[:, 1]], P[F[:, 2]]
    vol = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0
    if vol < 0:
        F = F[:, ::-1].copy()
        for op in openings:
            if op.kind == "open":  # cap normals are outward already (find_caps)
                op.normal = -op.normal
    return P, F, W


def _circumcenters(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Circumcenters and radii of tetrahedra ``x (t, 4, 3)``."""
    a = x[:, 1:] - x[:, :1]  # (t, 3, 3)
    rhs = 0.5 * np.einsum("tij,tij->ti", a, a)
    det = np.linalg.det(a)
    ok = np.abs(det) > 1e-300
    c = np.full((len(x), 3), np.nan)
    c[ok] = np.linalg.solve(a[ok], rhs[ok][..., None])[..., 0]
    return c + x[:, 0], np.linalg.norm(c, axis=1)


def _voronoi_graph(P: np.ndarray, F: np.ndarray, W: np.ndarray, where: str, max_points: int = 40000
                   ) -> tuple[np.ndarray, np.ndarray, csr_matrix]:
    """Internal Voronoi vertices, their inscribed-sphere radius, and the 1/R-weighted Voronoi edge graph.

    A Delaunay tetrahedron is internal when its circumcenter lies behind the outward vertex normal
    of each of its four points (VMTK's internal-tetrahedra test). The radius is the distance to the
    nearest vertex of the wall proper (caps excluded: near a cap the circumradius would leave the
    path free to wander off the axis), never more than the circumradius.
    """
    # a tiny deterministic jitter breaks the co-spherical degeneracies of regular (swept) meshes
    lo, hi = P.min(0), P.max(0)
    diag = float(np.linalg.norm(hi - lo))
    vn_all = vertex_normals(P, F)
    sub = np.arange(len(P))
    if len(P) > max_points:  # the Delaunay of a dense wall costs minutes: an even subset of its points
        from meshops.geometry.sampling import voxel_sampling

        sub = voxel_sampling(P, max_points)
        log.info("%s: Voronoi diagram of %d of the %d wall points", where, len(sub), len(P))
    Pj = P[sub] + np.random.default_rng(0).uniform(-1e-6, 1e-6, size=(len(sub), 3)) * diag
    tri = Delaunay(Pj)
    simp = tri.simplices
    cc, cr = _circumcenters(Pj[simp])
    vn = vn_all[sub]
    side = np.einsum("tkj,tkj->tk", np.nan_to_num(cc)[:, None, :] - Pj[simp], vn[simp])
    inside = np.isfinite(cc).all(1) & (cr < diag) & (side < 0).all(1)
    idx = np.flatnonzero(inside)
    if len(idx) < 2:
        raise WallError(f"{where}: no Voronoi vertex inside the wall (is it a closed vessel surface?)")
    if W.all():
        R = cr[idx]
    else:  # distance to the nearest wall vertex (caps excluded): within edge^2 / 8R of the facets
        R = np.minimum(cKDTree(P[np.unique(F[W])]).query(cc[idx])[0], cr[idx])
    R = np.maximum(R, 1e-9 * diag)
    local = np.full(len(cc), -1, dtype=np.int64)
    local[idx] = np.arange(len(idx))
    nb = tri.neighbors[idx]  # (k, 4)
    rows = np.repeat(np.arange(len(idx)), 4)
    cols = local[np.where(nb >= 0, nb, 0)].ravel()
    ok = (nb.ravel() >= 0) & (cols >= 0)
    rows, cols = rows[ok], cols[ok]
    keep = rows < cols
    rows, cols = rows[keep], cols[keep]
    x = cc[idx]
    w = np.linalg.norm(x[rows] - x[cols], axis=1) * 0.5 * (1 / R[rows] + 1 / R[cols]) + 1e-12
    g = coo_matrix((w, (rows, cols)), shape=(len(idx), len(idx))).tocsr()
    return x, R, g


def _min_paths(g: csr_matrix, x: np.ndarray, P: np.ndarray, F: np.ndarray, src: int, targets: list[int],
               where: str, outlets: list[Opening]) -> list[np.ndarray]:
    """Dijkstra paths from ``src`` to each target; nodes found outside the wall are cut and the search rerun."""
    g = g.tocsr(copy=True)
    for _ in range(8):
        dist, pred = dijkstra(g, directed=False, indices=src, return_predecessors=True)
        paths = []
        for k, t in enumerate(targets):
            if not np.isfinite(dist[t]):
                raise WallError(f"{where}: outlet {k} at {np.round(outlets[k].center, 4).tolist()} cannot be "
                                "reached from the inlet inside the wall (the lumen is pinched or broken there)")
            node, pth = t, [t]
            while node != src:
                node = int(pred[node])
                pth.append(node)
            paths.append(np.array(pth[::-1], dtype=np.int64))
        nodes = np.unique(np.concatenate(paths))
        inner = nodes[(nodes != src) & ~np.isin(nodes, targets)]
        bad = inner[wall_distance(x[inner], P, F)[1] > 0] if len(inner) else inner
        if len(bad) == 0:
            return paths
        log.debug("%s: %d path nodes outside the wall; cut and rerun", where, len(bad))
        g = _drop_nodes(g, bad)
    return paths


def _drop_nodes(g: csr_matrix, nodes: np.ndarray) -> csr_matrix:
    c = g.tocoo()
    keep = ~(np.isin(c.row, nodes) | np.isin(c.col, nodes))
    return coo_matrix((c.data[keep], (c.row[keep], c.col[keep])), shape=g.shape).tocsr()


def _terminal(x: np.ndarray, R: np.ndarray, op: Opening) -> int:
    """The internal Voronoi vertex where a path to an opening ends.

    Among the vertices within 1.5 opening radii of its center, the one maximizing ``R - d / 2``
    (``d``: distance to the center): well inside the lumen, on its axis, rather than a vertex
    squeezed against the cap (whose inscribed sphere is small and whose position is arbitrary).
    """
    d = np.linalg.norm(x - op.center, axis=1)
    near = np.flatnonzero(d <= 1.5 * max(op.radius, 1e-300))
    if len(near) == 0:
        return int(np.argmin(d))
    return int(near[np.argmax(R[near] - 0.5 * d[near])])


def _tree_branches(paths: list[np.ndarray]) -> tuple[list[list[int]], list[int]]:
    """Split root-first node paths (sharing prefixes) into branches; return them and their parents."""
    children: dict[int, list[int]] = {}
    for pth in paths:
        for a, b in zip(pth[:-1].tolist(), pth[1:].tolist(), strict=True):
            lst = children.setdefault(a, [])
            if b not in lst:
                lst.append(b)
    root = int(paths[0][0])
    branches: list[list[int]] = []
    parents: list[int] = []
    stack = [(root, -1)]
    while stack:
        start, pb = stack.pop(0)
        for nxt in children.get(start, []):
            br = [start, nxt]
            while len(children.get(br[-1], [])) == 1:
                br.append(children[br[-1]][0])
            bid = len(branches)
            branches.append(br)
            parents.append(pb)
            if len(children.get(br[-1], [])) > 1:
                stack.append((br[-1], bid))
    return branches, parents


def _smooth(pts: np.ndarray, sigma: float, spacing: float) -> np.ndarray:
    """Resample at ``spacing`` and Laplacian-smooth (kernel std ``sigma``), the two ends fixed."""
    if len(pts) < 2 or arc_length(pts)[-1] <= 0:
        return pts[[0, -1]]
    q = resample(pts, spacing=spacing)[0]
    k = int(np.ceil(2.0 * (sigma / spacing) ** 2))
    for _ in range(min(k, 5000)):
        q[1:-1] += 0.5 * (0.5 * (q[:-2] + q[2:]) - q[1:-1])
    return q


def extract_centerlines(
    points: np.ndarray,
    faces: np.ndarray,
    inlet: np.ndarray | None = None,
    outlets: np.ndarray | None = None,
    largest: bool = False,
    spacing: float | None = None,
    smooth: float = 0.5,
    where: str = "wall",
) -> WallCenterlines:
    """Centerline tree of a vessel wall (see the module docstring for the method).

    Parameters
    ----------
    points, faces : the wall (triangles; any winding; open or capped).
    inlet : a point near the inlet (picks the nearest opening; with no openings it is the path end).
    outlets : points near the outlets to use (default: every opening but the inlet).
    largest : keep the largest connected piece instead of failing on several.
    spacing : centerline point spacing (default: min(median wall edge, 0.2 x smallest opening radius)).
    smooth : smoothing length in units of the branch's median inscribed radius.
    where : the file name used in error messages.

    Shapes
    ------
    points (n, 3) float64, faces (m, 3) int, inlet (3,), outlets (k, 3)
    returns : :class:`WallCenterlines`; its centerline has B branches (branch 0 from the inlet).

    Raises
    ------
    WallError
        not a surface, several pieces, no openings (and no inlet/outlet points), an outlet the
        inlet cannot reach inside the wall.
    """
    p, f = clean_wall(points, faces, largest, where)
    openings, holes = find_openings(p, f)
    edge = np.linalg.norm(p[f] - p[np.roll(f, -1, axis=1)], axis=2)
    h = float(np.median(edge))
    P, F, W = _close_surface(p, f, openings, holes, h)
    inlet_op, outlet_ops = _pick_terminals(P, F, W, openings, inlet, outlets, where)
    x, R, g = _voronoi_graph(P, F, W, where)
    src = _terminal(x, R, inlet_op)
    paths = _min_paths(g, x, P, F, src, [_terminal(x, R, op) for op in outlet_ops], where, outlet_ops)
    # graph nodes: Voronoi vertices, plus -1 (inlet center) and -2 - k (outlet k center)
    full = [np.concatenate([[-1], pth, [-2 - k]]) for k, pth in enumerate(paths)]
    branches, parents = _tree_branches(full)
    if spacing is None:
        spacing = min(h, 0.2 * min(op.radius for op in [inlet_op, *outlet_ops]))
    cl = _assemble(branches, parents, x, R, inlet_op, outlet_ops, P, F, W, spacing, smooth)
    log.info("%s: %d openings (%d holes filled), %d internal Voronoi vertices, %d branches",
             where, len(openings), len(holes), len(x), cl.n_branches)
    return WallCenterlines(cl, inlet_op, outlet_ops, len(holes), len(x))


def _pick_terminals(P: np.ndarray, F: np.ndarray, W: np.ndarray, openings: list[Opening],
                    inlet: np.ndarray | None, outlets: np.ndarray | None, where: str
                    ) -> tuple[Opening, list[Opening]]:
    """The inlet opening and the outlet openings (or point terminals when there are no openings)."""
    def as_point(x: np.ndarray) -> Opening:
        r = float(wall_distance(np.asarray(x, float).reshape(1, 3), P, F[W])[0][0])
        return Opening(np.asarray(x, float).reshape(3), np.zeros(3), r, "point", np.zeros(0, np.int64))

    if not openings:
        if inlet is None or outlets is None or len(outlets) == 0:
            raise WallError(f"{where}: no openings found (no boundary loop and no flat cap); "
                            "give --inlet X,Y,Z and --outlets X,Y,Z ...")
        return as_point(inlet), [as_point(o) for o in np.asarray(outlets, float).reshape(-1, 3)]
    centers = np.array([o.center for o in openings])
    i_in = 0 if inlet is None else int(np.argmin(np.linalg.norm(centers - np.asarray(inlet, float), axis=1)))
    if outlets is None:
        out_ids = [i for i in range(len(openings)) if i != i_in]
    else:
        out_ids = [int(np.argmin(np.linalg.norm(centers - o, axis=1)))
                   for o in np.asarray(outlets, float).reshape(-1, 3)]
        if i_in in out_ids or len(set(out_ids)) < len(out_ids):
            raise WallError(f"{where}: the --inlet/--outlets points pick the same opening twice")
    if not out_ids:
        raise WallError(f"{where}: only one opening found (at {np.round(centers[0], 4).tolist()}); "
                        "a vessel needs an inlet and at least one outlet")
    return openings[i_in], [openings[i] for i in out_ids]


def _assemble(branches: list[list[int]], parents: list[int], x: np.ndarray, R: np.ndarray, inlet: Opening,
              outlets: list[Opening], P: np.ndarray, F: np.ndarray, W: np.ndarray, spacing: float,
              smooth: float) -> Centerline:
    """Smooth each branch (ends fixed), share junction points, and measure the radius to the wall."""
    def pos(node: int) -> np.ndarray:
        if node == -1:
            return inlet.center
        if node <= -2:
            return outlets[-2 - node].center
        return x[node]

    pts: list[np.ndarray] = []
    out_br: list[np.ndarray] = []
    end_index: dict[int, int] = {}
    count = 0
    for br in branches:
        raw = np.array([pos(v) for v in br])
        r_med = float(np.median([R[v] if v >= 0 else R.max() for v in br[1:-1]] or [inlet.radius]))
        q = _smooth(raw, smooth * r_med, spacing)
        ids = np.empty(len(q), dtype=np.int64)
        for k, node in ((0, br[0]), (len(q) - 1, br[-1])):
            if node not in end_index:
                end_index[node] = count
                pts.append(q[k : k + 1])
                count += 1
            ids[k] = end_index[node]
        ids[1:-1] = np.arange(count, count + len(q) - 2)
        pts.append(q[1:-1])
        count += len(q) - 2
        out_br.append(ids)
    allp = np.concatenate(pts)
    radius = wall_distance(allp, P, F[W])[0]
    parent = [(pb, int(out_br[pb][-1])) if pb >= 0 else (-1, -1) for pb in parents]
    return Centerline(points=allp, branches=out_br, radius=radius, parent=parent)


def centerlines_from_wall(points: np.ndarray, faces: np.ndarray, **kw: object) -> Centerline:
    """The centerline tree of a vessel wall: :func:`extract_centerlines` (same arguments) ``.centerline``.

    Shapes
    ------
    points (n, 3) float64, faces (m, 3) int -> :class:`Centerline` with ``radius`` (inscribed sphere).
    """
    return extract_centerlines(points, faces, **kw).centerline  # type: ignore[arg-type]
