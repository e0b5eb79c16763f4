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
from meshops.graph.hierarchy import n_components, symmetric_edges
from meshops.mesh import Mesh, MeshError

log = logging.getLogger(__name__)

__all__ = ["RADIUS_FIELDS", "centerline_graph", "read_centerline"]

#: Point arrays taken as the radius, first found wins.
RADIUS_FIELDS = ("MaximumInscribedSphereRadius", "Radius", "radius", "MaximumInscribedSphereRadius_average")

_BREAK_FIELDS = ("CenterlineIds", "TractIds", "GroupIds", "BranchId", "BranchIdTmp")


def _polylines(mesh: Mesh) -> tuple[list[np.ndarray], list[int]]:
    """Chain line cells into polylines; return them with the GroupIds value of each (or -1)."""
    segs, cell_rows = [], []
    offset = 0
    for b in mesh.cells:
        if b.type in ("line", "line3"):
            d = np.asarray(b.data, dtype=np.int64)[:, :2]
            segs.append(d)
            cell_rows.append(offset + np.arange(len(d)))
        offset += len(b)
    if not segs:
        raise MeshError(f"{mesh.source or '<mesh>'}: no line cells: not a centerline "
                        f"(cell types {list(mesh.cell_types)})")
    seg = np.concatenate(segs)
    rows = np.concatenate(cell_rows)
    ids = {k: np.asarray(v)[rows].reshape(len(rows), -1)[:, 0] for k, v in mesh.cell_data.items()
           if k in _BREAK_FIELDS and len(v) == mesh.n_cells}
    groups = ids.get("GroupIds")
    blank = None
    if "Blanking" in mesh.cell_data and len(mesh.cell_data["Blanking"]) == mesh.n_cells:
        blank = np.asarray(mesh.cell_data["Blanking"])[rows].reshape(len(rows), -1)[:, 0]
    brk = np.ones(len(seg), dtype=bool)
    brk[1:] = seg[1:, 0] != seg[:-1, 1]
    for v in ids.values():
        brk[1:] |= v[1:] != v[:-1]
    starts = np.flatnonzero(brk)
    ends = np.append(starts[1:], len(seg))
    lines, gids = [], []
    for s, e in zip(starts, ends, strict=True):
        lines.append(np.concatenate([seg[s:e, 0], seg[e - 1 : e, 1]]))
        # bifurcation tracts (Blanking = 1) differ per centerline: never deduplicated
        blanked = blank is not None and int(blank[s]) == 1
        gids.append(int(groups[s]) if groups is not None and not blanked else -1)
    return lines, gids


def read_centerline(
    source: str | Path | Mesh,
    radius_field: str | None = None,
    join_tol: float | None = None,
) -> Centerline:
    """Read a branched centerline (SimVascular/VMTK ``.vtp``/``.vtk``, or any mesh of line cells).

    Parameters
    ----------
    source : a path (read with :func:`meshops.io.read`) or a :class:`~meshops.mesh.Mesh`.
    radius_field : point array holding the radius; default the first of :data:`RADIUS_FIELDS` present.
    join_tol : distance within which a polyline end is joined to another polyline; default the
        radius at that end (or 1e-9 of the extent without a radius).

    Shapes
    ------
    returns : :class:`Centerline` over all the file's points (point order kept); branches list the
        points used.

    Raises
    ------
    MeshError
        no line cells, non-finite coordinates, or a named radius field that is missing.
    """
    if isinstance(source, Mesh):
        mesh = source
    else:
        from meshops.io import read

        mesh = read(source)
    where = mesh.source or "<mesh>"
    pts = mesh.points
    if not np.all(np.isfinite(pts)):
        bad = int(np.argwhere(~np.isfinite(pts))[0, 0])
        raise MeshError(f"{where}: point {bad} has a non-finite coordinate {pts[bad].tolist()}")
    radius = None
    if radius_field is not None:
        if radius_field not in mesh.point_data:
            raise MeshError(f"{where}: radius field '{radius_field}' not found; point fields: {sorted(mesh.point_data)}")
        radius = np.asarray(mesh.point_data[radius_field], dtype=np.float64).reshape(-1)
    else:
        for nm in RADIUS_FIELDS:
            if nm in mesh.point_data:
                radius = np.asarray(mesh.point_data[nm], dtype=np.float64).reshape(-1)
                break
    lines, gids = _polylines(mesh)
    if any(g >= 0 for g in gids):
        seen: set[int] = set()
        keep = []
        for ln, g in zip(lines, gids, strict=True):
            if g < 0 or g not in seen:
                seen.add(g)
                keep.append(ln)
        if len(keep) < len(lines):
            log.info("%s: %d polylines in %d groups; keeping the first of each group", where, len(lines), len(keep))
        lines = keep
    n = len(pts)
    pairs = [np.stack([ln[:-1], ln[1:]], axis=1) for ln in lines if len(ln) > 1]
    edges = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    used = np.unique(np.concatenate(lines))
    ext = float(np.linalg.norm(pts[used].max(0) - pts[used].min(0))) if len(used) else 1.0
    eps = 1e-9 * max(ext, 1e-300)
    # joins: coincident points across polylines, then ends near other polylines
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
