"""Mesh topology from cell blocks: unique undirected edges, faces, boundary faces, node regions.

Pure numpy. Cell blocks are anything with ``.type`` and ``.data`` (:class:`meshops.mesh.CellBlock`).
Point indices are never renumbered: every result indexes the mesh's own point order.

Cell edges follow the VTK/meshio node orderings. Quadratic cells are split along their mid-edge
nodes (a ``tetra10`` edge 0-1 with mid node 4 gives edges 0-4 and 4-1), so the graph follows the
actual element edges and no node is left isolated; ``quad9``/``hexahedron27`` centre nodes connect
to the mid nodes of their face (and the body centre to the face centres).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

try:  # the compiled mesh edges (numba); numpy's sort-based route otherwise
    from meshops.geometry import _topology_numba as _compiled
except ImportError:  # pragma: no cover - numba is a dependency
    _compiled = None

log = logging.getLogger(__name__)

__all__ = [
    "CELL_EDGES",
    "CELL_FACES",
    "boundary_faces",
    "cell_adjacency",
    "cell_edges",
    "cell_faces",
    "unique_edges",
]

# Local edges of the linear cell types (VTK ordering).
_LIN_EDGES: dict[str, list[tuple[int, int]]] = {
    "vertex": [],
    "line": [(0, 1)],
    "triangle": [(0, 1), (1, 2), (2, 0)],
    "quad": [(0, 1), (1, 2), (2, 3), (3, 0)],
    "tetra": [(0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3)],
    "hexahedron": [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
                   (0, 4), (1, 5), (2, 6), (3, 7)],
    "wedge": [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3), (0, 3), (1, 4), (2, 5)],
    "pyramid": [(0, 1), (1, 2), (2, 3), (3, 0), (0, 4), (1, 4), (2, 4), (3, 4)],
}

# Quadratic types: (linear parent type, first mid-node index); mid node m + i sits on parent edge i.
_QUAD_OF: dict[str, tuple[str, int]] = {
    "line3": ("line", 2),
    "triangle6": ("triangle", 3),
    "quad8": ("quad", 4),
    "quad9": ("quad", 4),
    "tetra10": ("tetra", 4),
    "hexahedron20": ("hexahedron", 8),
    "hexahedron27": ("hexahedron", 8),
    "wedge15": ("wedge", 6),
    "pyramid13": ("pyramid", 5),
}


def _quadratic_edges(t: str) -> list[tuple[int, int]]:
    parent, m0 = _QUAD_OF[t]
    out: list[tuple[int, int]] = []
    for i, (a, b) in enumerate(_LIN_EDGES[parent]):
        out += [(a, m0 + i), (m0 + i, b)]
    if t == "quad9":
        out += [(8, m) for m in range(4, 8)]
    if t == "hexahedron27":
        # VTK: 20 -x (edges 3,19,7,16 -> mids 11,19,15,16), 21 +x, 22 -y, 23 +y, 24 -z, 25 +z, 26 centre.
        face_mids = {20: (11, 19, 15, 16), 21: (9, 18, 13, 17), 22: (8, 17, 12, 16),
                     23: (10, 18, 14, 19), 24: (8, 9, 10, 11), 25: (12, 13, 14, 15)}
        for c, mids in face_mids.items():
            out += [(c, m) for m in mids]
            out.append((c, 26))
    return out


#: Local edge tables of every fixed-size cell type.
CELL_EDGES: dict[str, np.ndarray] = {
    **{t: np.array(e, dtype=np.int64).reshape(-1, 2) for t, e in _LIN_EDGES.items()},
    **{t: np.array(_quadratic_edges(t), dtype=np.int64) for t in _QUAD_OF},
}

#: Local faces of the linear 3D cells (outward-oriented for positively oriented VTK cells).
CELL_FACES: dict[str, list[tuple[int, ...]]] = {
    "tetra": [(0, 2, 1), (0, 1, 3), (1, 2, 3), (0, 3, 2)],
    "hexahedron": [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)],
    "wedge": [(0, 2, 1), (3, 4, 5), (0, 1, 4, 3), (1, 2, 5, 4), (2, 0, 3, 5)],
    "pyramid": [(0, 3, 2, 1), (0, 1, 4), (1, 2, 4), (2, 3, 4), (3, 0, 4)],
}
# Quadratic 3D cells use their corner faces.
for _t, (_p, _m) in _QUAD_OF.items():
    if _p in CELL_FACES:
        CELL_FACES[_t] = CELL_FACES[_p]


def _unwrap(cell: Any) -> Any:
    # CellBlock stores a 1D object array as (m, 1): unwrap the single object per row
    while isinstance(cell, np.ndarray) and cell.dtype == object and cell.size == 1:
        cell = cell.reshape(-1)[0]
    return cell


def _polyhedron_faces(data: Any) -> list[list[np.ndarray]]:
    """Cells of a polyhedron block as lists of faces (each an array of point ids)."""
    cells = []
    for cell in data:
        cell = _unwrap(cell)
        faces = [np.asarray(f, dtype=np.int64).ravel() for f in cell]
        cells.append(faces)
    return cells


def _block_edges(btype: str, data: Any) -> np.ndarray:
    if btype.startswith("polyhedron"):
        segs = []
        for faces in _polyhedron_faces(data):
            for f in faces:
                segs.append(np.stack([f, np.roll(f, -1)], axis=1))
        return np.concatenate(segs) if segs else np.zeros((0, 2), np.int64)
    arr = np.asarray(data)
    if arr.dtype == object:  # ragged polygons
        rows = [np.asarray(_unwrap(c), np.int64).ravel() for c in arr]
        segs = [np.stack([c, np.roll(c, -1)], axis=1) for c in rows]
        return np.concatenate(segs) if segs else np.zeros((0, 2), np.int64)
    arr = arr.astype(np.int64, copy=False)
    return arr[:, _local_edges(btype, arr)].reshape(-1, 2)


def _local_edges(btype: str, arr: np.ndarray) -> np.ndarray:
    """The ``(L, 2)`` local edge table of a fixed-size block ``arr`` (m, k) of cell type ``btype``."""
    if btype.startswith("polygon"):
        k = arr.shape[1]
        local = np.stack([np.arange(k), (np.arange(k) + 1) % k], axis=1)
    elif btype in CELL_EDGES:
        local = CELL_EDGES[btype]
    else:
        raise ValueError(f"cell_edges: unknown cell type '{btype}' (block of {len(arr)} cells)")
    if local.size and int(local.max()) >= arr.shape[1]:
        raise ValueError(
            f"cell_edges: cell type '{btype}' needs {int(local.max()) + 1} nodes per cell, block has {arr.shape[1]}"
        )
    return local


def _upper_rows(cells: Iterable[Any], n_points: int | None):
    """The compiled route's unique upper rows ``(offsets, columns, lengths)`` of the cells' edges,
    or ``None`` when numba is missing or a block is ragged (polyhedra, object polygons)."""
    if _compiled is None:
        return None
    blocks = []
    for b in cells:
        arr = np.asarray(b.data)
        if b.type.startswith("polyhedron") or arr.dtype == object or arr.ndim != 2:
            return None
        if arr.size:
            blocks.append((np.ascontiguousarray(arr, dtype=np.int64), _local_edges(b.type, arr), b.type))
    n = int(n_points) if n_points is not None else max((int(a.max()) + 1 for a, _, _ in blocks), default=0)
    for arr, _, t in blocks:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= n:
            raise ValueError(f"cell_edges: block '{t}' indexes point {lo if lo < 0 else hi} but there are {n} points")
    deg = np.zeros(n + 1, dtype=np.int64)
    for arr, local, _ in blocks:
        _compiled.count_upper(arr, local, deg)
    off = np.cumsum(deg)
    col = np.empty(int(off[-1]), dtype=np.int32 if n < 2**31 else np.int64)
    fill = off[:-1].copy()
    for arr, local, _ in blocks:
        _compiled.fill_upper(arr, local, fill, col)
    return off, col, _compiled.unique_rows(off, col)


def unique_edges(pairs: np.ndarray, n_points: int | None = None) -> np.ndarray:
    """Unique undirected edges of a list of point pairs; self-pairs dropped.

    Shapes
    ------
    pairs : (m, 2) int
    returns : (e, 2) int64 with ``e[:, 0] < e[:, 1]``, sorted lexicographically.
    """
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    p = np.sort(p, axis=1)
    p = p[p[:, 0] != p[:, 1]]
    if len(p) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    n = int(n_points if n_points is not None else p.max() + 1)
    key = np.sort(p[:, 0] * n + p[:, 1])  # sort-based unique: faster than np.unique's hashing here
    key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return np.stack([key // n, key % n], axis=1)


def cell_edges(cells: Iterable[Any], n_points: int | None = None) -> np.ndarray:
    """Unique undirected edges of all cells, any types mixed (linear, quadratic, polygon, polyhedron).

    Each geometric edge appears exactly once whatever the number of cells sharing it. Degenerate
    cells (a repeated node) contribute their non-degenerate edges only (self-loops are dropped).

    Parameters
    ----------
    cells : iterable of blocks with ``.type`` and ``.data``; polygon blocks are ``(m, k)`` or ragged
        object arrays, polyhedron blocks hold per cell a list of faces (lists of point ids).
    n_points : number of points (for the edge key); inferred when omitted.

    Shapes
    ------
    returns : (e, 2) int64 with ``e[:, 0] < e[:, 1]``.
    """
    cells = list(cells)
    rows = _upper_rows(cells, n_points)
    if rows is not None:
        return _compiled.upper_edges(*rows)
    segs = [_block_edges(b.type, b.data) for b in cells]
    segs = [s for s in segs if len(s)]
    if not segs:
        return np.zeros((0, 2), dtype=np.int64)
    return unique_edges(np.concatenate(segs), n_points)


def cell_adjacency(cells: Iterable[Any], n_points: int) -> np.ndarray:
    """Both directions of every unique cell edge, ``(2, E)`` int64 sorted by (source, target): the
    mesh graph's edge list (:func:`cell_edges` with each edge also reversed).

    Shapes
    ------
    returns : (2, 2 e) int64, e the number of unique edges.
    """
    cells = list(cells)
    rows = _upper_rows(cells, n_points)
    if rows is not None:
        return _compiled.symmetric_from_upper(*rows)
    e = cell_edges(cells, n_points)
    both = np.concatenate([e, e[:, ::-1]])
    return both[np.argsort(both[:, 0] * max(int(n_points), 1) + both[:, 1], kind="stable")].T.copy()


def cell_faces(cells: Iterable[Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """All faces of the 3D cells, with the cell each came from (global cell index over all blocks).

    Shapes
    ------
    returns : (faces, owner) lists grouped by face size k: ``faces[i]`` (m_i, k_i) int64 and
        ``owner[i]`` (m_i,) int64.
    """
    by_k: dict[int, list[np.ndarray]] = {}
    own_k: dict[int, list[np.ndarray]] = {}
    offset = 0
    for b in cells:
        t = b.type
        if t.startswith("polyhedron"):
            for ci, faces in enumerate(_polyhedron_faces(b.data)):
                for f in faces:
                    by_k.setdefault(len(f), []).append(f[None])
                    own_k.setdefault(len(f), []).append(np.array([offset + ci]))
            offset += len(b.data)
            continue
        arr = np.asarray(b.data)
        if t in CELL_FACES:
            arr = arr.astype(np.int64, copy=False)
            for f in CELL_FACES[t]:
                by_k.setdefault(len(f), []).append(arr[:, list(f)])
                own_k.setdefault(len(f), []).append(offset + np.arange(len(arr)))
        offset += len(arr)
    ks = sorted(by_k)
    return [np.concatenate(by_k[k]) for k in ks], [np.concatenate(own_k[k]) for k in ks]


def boundary_faces(cells: Sequence[Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Faces of 3D cells that belong to exactly one cell (the boundary), or edges of 2D cells.

    For volume meshes the faces keep the orientation of their owner cell (outward for positively
    oriented cells; :func:`meshops.geometry.boundary.orient_outward` fixes any that are not).
    For 2D meshes (no 3D cells) the boundary edges of the triangles/quads/polygons are returned,
    oriented counter-clockwise around their owner cell. Faces shared by two cells are interior;
    faces shared by three or more cells (non-manifold input) are reported and treated as interior.

    Shapes
    ------
    returns : (faces, owner): lists grouped by face size, ``faces[i]`` (m_i, k_i) int64,
        ``owner[i]`` (m_i,) int64 global cell index.
    """
    cells = list(cells)
    has3d = any(b.type in CELL_FACES or b.type.startswith("polyhedron") for b in cells)
    if has3d:
        faces, owners = cell_faces(cells)
    else:
        fs, ow = [], []
        offset = 0
        for b in cells:
            arr = np.asarray(b.data)
            if b.type in ("triangle", "quad") or b.type.startswith("polygon") or b.type in _QUAD_OF and \
                    _QUAD_OF[b.type][0] in ("triangle", "quad"):
                base = _QUAD_OF[b.type][0] if b.type in _QUAD_OF else b.type
                if arr.dtype == object:
                    for ci, c in enumerate(arr):
                        c = np.asarray(_unwrap(c), np.int64).ravel()
                        fs.append(np.stack([c, np.roll(c, -1)], axis=1))
                        ow.append(np.full(len(c), offset + ci))
                else:
                    arr = arr.astype(np.int64, copy=False)
                    k = 3 if base == "triangle" else 4 if base == "quad" else arr.shape[1]
                    loc = np.stack([np.arange(k), (np.arange(k) + 1) % k], axis=1)
                    fs.append(arr[:, loc].reshape(-1, 2))
                    ow.append(np.repeat(offset + np.arange(len(arr)), k))
            offset += len(arr)
        if not fs:
            return [], []
        faces, owners = [np.concatenate(fs)], [np.concatenate(ow)]
    out_f, out_o = [], []
    for f, o in zip(faces, owners, strict=True):
        key = np.sort(f, axis=1)
        _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        inv = inv.ravel()
        c = counts[inv]
        if np.any(counts > 2):
            log.warning("boundary_faces: %d faces are shared by more than two cells (non-manifold mesh)",
                        int((counts > 2).sum()))
        sel = c == 1
        out_f.append(f[sel])
        out_o.append(o[sel])
    keep = [i for i, f in enumerate(out_f) if len(f)]
    return [out_f[i] for i in keep], [out_o[i] for i in keep]
