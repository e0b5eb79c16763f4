"""Centerlines from files (SimVascular / VMTK ``.vtp``) and their graphs.

:func:`read_centerline` turns the line cells of a centerline file into a branched
:class:`~meshops.geometry.centerline.Centerline`:

1. consecutive line segments are chained into polylines in file order (a polyline breaks where a
   segment does not start at the previous end, or where a per-cell id changes);
2. VMTK branch-split centerlines (a ``GroupIds`` cell array) repeat the shared trunk once per
   centerline; only the first polyline of each group is kept (the others are overlapping copies),
   except in bifurcation groups (``Blanking`` = 1), whose tracts differ per centerline;
3. polylines are joined where they touch: at coincident points, and where a polyline end lies
   within ``join_tol`` (default: the vessel radius there) of another polyline;
4. the resulting point graph is split into branches between its junctions (degree >= 3) and ends,
   oriented away from the root (the lowest-numbered end point: the inlet in SimVascular/VMTK files), so branch ids and bifurcations come
   from the topology (``BranchId``/``BifurcationId`` arrays, when present, stay in ``point_data``).

Pieces that touch nothing stay separate components (logged; see ``Centerline.components``).
Reading the inputs (the source's mesh, point lists, the radius array, step 1) lives in
:mod:`meshops.graph.centerline_read`, whose public names are re-exported here.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree

from meshops.geometry.centerline import Centerline, arc_length, rotation_minimizing_frames, tangents
from meshops.graph.build import GraphSpec, MeshGraph, add_levels, edge_features
from meshops.graph.centerline_read import (
    POINT_LIST_SUFFIXES,  # noqa: F401 - re-exported (public, not in __all__)
    RADIUS_FIELDS,
    _centerline_mesh,
    _checked_radius,
    _polylines,
    find_radius_field,
)
from meshops.graph.hierarchy import n_components, symmetric_edges
from meshops.mesh import Mesh, MeshError

log = logging.getLogger(__name__)

__all__ = ["RADIUS_FIELDS", "centerline_graph", "centerline_mesh", "find_radius_field", "read_centerline",
           "wall_triangles"]


def read_centerline(
    source: str | Path | Mesh,
    radius_field: str | None = None,
    join_tol: float | None = None,
    require_radius: bool = False,
) -> Centerline:
    """Read a branched centerline (SimVascular/VMTK ``.vtp``, legacy ``.vtk``, any mesh of line
    cells, or a plain CSV/.dat point list with a radius column).

    Parameters
    ----------
    source : a path (read with :func:`meshops.io.read`) or a :class:`~meshops.mesh.Mesh`.
    radius_field : point array holding the radius; default the first of :data:`RADIUS_FIELDS` present
        (or the only array whose name contains "radius"/"radii").
    require_radius : raise when no radius array is found (the error lists the point arrays).
    join_tol : distance within which a polyline end is joined to another polyline; default the
        radius at that end (or 1e-9 of the extent without a radius).

    Shapes
    ------
    returns : :class:`Centerline` over all the file's points (point order kept); branches list the
        points used.

    Raises
    ------
    MeshError
        no line cells, non-finite coordinates, a named radius field that is missing, a radius array
        of the wrong length, negative, zero or NaN radii.
    """
    mesh = _centerline_mesh(source)
    where = mesh.source or "<mesh>"
    pts = mesh.points
    if not np.all(np.isfinite(pts)):
        bad = int(np.argwhere(~np.isfinite(pts))[0, 0])
        raise MeshError(f"{where}: point {bad} has a non-finite coordinate {pts[bad].tolist()}")
    name = find_radius_field(mesh.point_data, where, radius_field, required=require_radius)
    radius = _checked_radius(mesh, name, where) if name is not None else None
    lines = _first_polyline_per_group(*_polylines(mesh), where)
    n = len(pts)
    used = np.unique(np.concatenate(lines))
    all_e = _joined_edges(pts, lines, used, radius, join_tol, where)
    deg = np.bincount(all_e[0], minlength=n)
    ends = used[deg[used] == 1]
    root = int(ends.min()) if len(ends) else int(used.min())
    branches, parent = _split_branches(all_e, used, n, root=root)
    ncomp, lab = n_components(all_e, n)
    comps = len(np.unique(lab[used]))
    if comps > 1:
        log.warning("%s: the centerline has %d disconnected pieces (no end within join_tol of another piece)",
                    where, comps)
    return Centerline(points=pts, branches=branches, radius=radius, parent=parent,
                      point_data={k: np.asarray(v) for k, v in mesh.point_data.items()})



def _first_polyline_per_group(lines: list[np.ndarray], gids: list[int], where: str) -> list[np.ndarray]:
    """VMTK repeats shared stretches once per centerline id: keep the first polyline of each group."""
    if not any(g >= 0 for g in gids):
        return lines
    seen: set[int] = set()
    keep = []
    for ln, g in zip(lines, gids, strict=True):
        if g < 0 or g not in seen:
            seen.add(g)
            keep.append(ln)
    if len(keep) < len(lines):
        log.info("%s: %d polylines in %d groups; keeping the first of each group", where, len(lines), len(keep))
    return keep


def _joined_edges(pts: np.ndarray, lines: list[np.ndarray], used: np.ndarray, radius: np.ndarray | None,
                  join_tol: float | None, where: str) -> np.ndarray:
    """Symmetric (2, E) point edges of the polylines, joined where they touch.

    Joins: coincident points across polylines, then each polyline end to the nearest point of
    another piece within ``join_tol`` (default the radius at that end).
    """
    n = len(pts)
    pairs = [np.stack([ln[:-1], ln[1:]], axis=1) for ln in lines if len(ln) > 1]
    edges = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    ext = float(np.linalg.norm(pts[used].max(0) - pts[used].min(0))) if len(used) else 1.0
    eps = 1e-9 * max(ext, 1e-300)
    line_of = np.full(n, -1, dtype=np.int64)
    for i, ln in enumerate(lines):
        line_of[ln[line_of[ln] < 0]] = i
    tree = cKDTree(pts[used])
    joins = []
    for a, b in tree.query_pairs(eps, output_type="ndarray"):
        pa, pb = used[a], used[b]
        if line_of[pa] != line_of[pb]:
            joins.append((pa, pb))
    all_e = symmetric_edges(np.concatenate([edges, np.array(joins, np.int64).reshape(-1, 2)]), n)
    for i, ln in enumerate(lines):
        for end in (ln[0], ln[-1]):
            ncomp, lab = n_components(all_e, n)
            other = used[(lab[used] != lab[end])]
            if len(other) == 0:
                continue
            d = np.linalg.norm(pts[other] - pts[end], axis=1)
            j = int(np.argmin(d))
            tol = join_tol if join_tol is not None else (float(radius[end]) if radius is not None else eps)
            if d[j] <= tol:
                all_e = symmetric_edges(np.concatenate([all_e.T, [[end, other[j]]]]), n)
                log.debug("%s: joined polyline %d end %d to point %d (distance %.3g)", where, i, end, other[j], d[j])
    return all_e


def _split_branches(edges: np.ndarray, used: np.ndarray, n: int, root: int) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Split a point graph into branches between junctions/ends, oriented by BFS from ``root``."""
    src, dst = edges
    order = np.argsort(src, kind="stable")
    src, dst = src[order], dst[order]
    ptr = np.searchsorted(src, np.arange(n + 1))
    deg = np.diff(ptr)

    def nbrs(v: int) -> np.ndarray:
        return dst[ptr[v] : ptr[v + 1]]

    branches: list[np.ndarray] = []
    parent: list[tuple[int, int]] = []
    branch_ending_at: dict[int, int] = {}
    visited_edge: set[tuple[int, int]] = set()
    visited_pt = np.zeros(n, dtype=bool)
    unused = np.ones(n, dtype=bool)
    unused[used] = False
    roots = [root] + [int(v) for v in used if deg[v] == 1] + [int(v) for v in used]
    for r in roots:
        if visited_pt[r] or unused[r]:
            continue
        # BFS over junctions of this component, walking branches outward
        queue: deque[tuple[int, int]] = deque([(r, -1)])
        visited_pt[r] = True
        while queue:
            start, pb = queue.popleft()
            for nb in nbrs(start):
                nb = int(nb)
                if (start, nb) in visited_edge:
                    continue
                path = [start]
                prev, cur = start, nb
                while True:
                    visited_edge.add((prev, cur))
                    visited_edge.add((cur, prev))
                    path.append(cur)
                    if deg[cur] != 2 or visited_pt[cur]:
                        break
                    visited_pt[cur] = True
                    nxt = [int(w) for w in nbrs(cur) if int(w) != prev]
                    prev, cur = cur, nxt[0]
                bid = len(branches)
                branches.append(np.array(path, dtype=np.int64))
                parent.append((pb, start) if pb >= 0 else (-1, -1))
                end = path[-1]
                if not visited_pt[end]:
                    visited_pt[end] = True
                    branch_ending_at[end] = bid
                    queue.append((end, bid))
            if start == r and deg[r] == 0:
                branches.append(np.array([r], dtype=np.int64))
                parent.append((-1, -1))
    return branches, parent


def centerline_graph(cl: Centerline, spec: GraphSpec | dict[str, Any] | None = None) -> MeshGraph:
    """A :class:`~meshops.graph.build.MeshGraph` of a centerline: nodes are the points the branches use.

    Fields: ``pos``, ``edge_index`` (both directions of each segment and join), ``edge_attr``,
    ``x`` = radius (N, 1) when known, ``node_type`` (0 interior, 1 end, 2 bifurcation; names in
    ``node_type_names``), ``branch`` (N,) int64, ``s`` (N,) arc length along the node's branch,
    ``frame`` (N, 3, 3) rows ``[tangent, normal, binormal]`` (rotation-minimizing per branch),
    ``point_index`` (N,) the file's point index; hierarchy levels as in :func:`build` when
    ``spec.levels > 1``.

    Shapes
    ------
    returns : MeshGraph with N = number of distinct points on branches.
    """
    spec = GraphSpec.coerce(spec)
    used = np.unique(np.concatenate(cl.branches)) if cl.branches else np.zeros(0, np.int64)
    if len(used) == 0:
        raise MeshError("centerline_graph: the centerline has no branches")
    remap = np.full(cl.n_points, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    e = cl.edges()
    edges = symmetric_edges(remap[e], len(used))
    pos = cl.points[used]
    deg = np.bincount(edges[0], minlength=len(used))
    ntype = np.where(deg >= 3, 2, np.where(deg <= 1, 1, 0)).astype(np.int64)
    bid_all = cl.branch_id()
    bid = bid_all[used]
    s = np.zeros(len(used))
    frame = np.zeros((len(used), 3, 3))
    for ib, b in enumerate(cl.branches):
        if len(b) < 2:
            continue
        p = cl.points[b]
        sb = arc_length(p)
        keep = np.concatenate([[True], np.diff(sb) > 0])
        if keep.sum() < 2:
            continue
        T, N, B = rotation_minimizing_frames(p[keep], tangents(p[keep]))
        # coincident points take the frame of the previous distinct point
        idx = np.cumsum(keep) - 1
        sel = bid_all[b] == ib  # a junction point belongs to the first branch listing it
        r = remap[b][sel]
        s[r] = sb[sel]
        frame[r] = np.stack([T[idx], N[idx], B[idx]], axis=1)[sel]
    data = MeshGraph()
    data.pos = torch.from_numpy(pos.astype(np.float32))
    if cl.radius is not None:
        data.x = torch.from_numpy(cl.radius[used].astype(np.float32)[:, None])
    data.edge_index = torch.from_numpy(edges)
    data.edge_attr = torch.from_numpy(edge_features(pos, edges).astype(np.float32))
    data.node_type = torch.from_numpy(ntype)
    data.node_type_names = ["interior", "end", "bifurcation"]
    data.branch = torch.from_numpy(bid)
    data.s = torch.from_numpy(s.astype(np.float32))
    data.frame = torch.from_numpy(frame.astype(np.float32))
    data.point_index = torch.from_numpy(used)
    data.num_nodes = len(used)
    add_levels(data, pos, edges, spec, "centerline")
    return data


def centerline_mesh(cl: Centerline, where: str = "centerline") -> Mesh:
    """A centerline tree in the layout VMTK and SimVascular write (``vmtkcenterlines`` + branch split).

    One polyline per (centerline, tract): centerline ``c`` runs from the inlet to outlet ``c``, its
    tracts are the branches it passes through, each with its own copy of the points (as VMTK
    writes them). Cell arrays ``CenterlineIds``, ``TractIds``, ``GroupIds`` (= branch id) and
    ``Blanking`` (0: no bifurcation groups are made); point arrays
    ``MaximumInscribedSphereRadius``, ``BranchId``, ``BifurcationId`` (-1 off bifurcations) and
    ``Path`` (arc length from the inlet along the centerline). :func:`read_centerline` reads it
    back into the same tree.

    Shapes
    ------
    returns : Mesh of line cells over sum_c(points of centerline c, junctions repeated per tract).
    """
    from meshops.mesh import CellBlock

    if cl.radius is None:
        raise MeshError(f"{where}: the centerline has no radius to write")
    bif = {int(v): i for i, v in enumerate(cl.bifurcations())}
    bid = cl.branch_id()
    pts, rad, branch, bifid, path, segs = [], [], [], [], [], []
    cids, tids, gids = [], [], []
    count = 0
    for c, leaf in enumerate(cl.leaf_paths()):
        s_leaf = arc_length(cl.points[leaf]) if len(leaf) > 1 else np.zeros(1)
        s_of = {int(v): float(s) for v, s in zip(leaf, s_leaf, strict=True)}
        # tracts: runs of the leaf path within one branch; as in VMTK's files a tract starts at the
        # point after the junction (the reader joins it back to the nearest polyline)
        lab = bid[leaf]
        cuts = np.flatnonzero(lab[1:] != lab[:-1]) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [len(leaf)]])
        for t, (a, b) in enumerate(zip(starts, ends, strict=True)):
            ids = leaf[a:b]
            if len(ids) < 2:
                continue
            n = len(ids)
            pts.append(cl.points[ids])
            rad.append(cl.radius[ids])
            branch.append(np.full(n, int(lab[a])))
            bifid.append(np.array([bif.get(int(v), -1) for v in ids]))
            path.append(np.array([s_of[int(v)] for v in ids]))
            segs.append(count + np.stack([np.arange(n - 1), np.arange(1, n)], 1))
            cids.append(np.full(n - 1, c))
            tids.append(np.full(n - 1, t))
            gids.append(np.full(n - 1, int(lab[a])))
            count += n
    if not segs:
        raise MeshError(f"{where}: the centerline has no branch with two or more points")
    cat = np.concatenate
    i32 = np.int32
    return Mesh(
        points=cat(pts),
        cells=[CellBlock("line", cat(segs))],
        point_data={"MaximumInscribedSphereRadius": cat(rad), "BranchId": cat(branch).astype(i32),
                    "BifurcationId": cat(bifid).astype(i32), "Path": cat(path)},
        cell_data={"CenterlineIds": cat(cids).astype(i32), "TractIds": cat(tids).astype(i32),
                   "GroupIds": cat(gids).astype(i32), "Blanking": np.zeros(len(cat(cids)), i32)},
        source=where,
    )


def wall_triangles(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """The triangles of a wall surface (polygons fan-split; a volume mesh gives its boundary).

    Shapes
    ------
    returns : (points (n, 3) float64 -- the mesh's own points, order kept, faces (m, 3) int64)

    Raises
    ------
    MeshError
        the mesh has no surface cells (e.g. a point cloud or a centerline).
    """
    from meshops.geometry.surface import triangulate
    from meshops.geometry.topology import boundary_faces

    where = mesh.source or "<mesh>"
    surf = [b for b in mesh.cells if b.type in ("triangle", "quad") or b.type.startswith("polygon")]
    vol = [b for b in mesh.cells if b.type in ("tetra", "hexahedron", "wedge", "pyramid")]
    if surf:
        faces = triangulate([np.asarray(b.data, dtype=np.int64) for b in surf])
    elif vol:
        fs, _ = boundary_faces(vol)
        faces = triangulate(fs)
    else:
        raise MeshError(f"{where}: not a wall surface: no triangles, quads or polygons "
                        f"(cell types {list(mesh.cell_types)})")
    return np.asarray(mesh.points, dtype=np.float64), faces
