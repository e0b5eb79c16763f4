"""Lossless conversion between VTK datasets (through pyvista) and :class:`~meshops.mesh.Mesh`.

The in-memory half of the mesh converters. It sits *below* :mod:`meshops.mesh` (it never imports
it): :func:`vtk_to_parts` turns a dataset into plain arrays that :meth:`Mesh.from_pyvista` assembles,
and :func:`mesh_to_vtk` reads any object with a mesh's attributes. :meth:`Mesh.to_pyvista` and the
VTK-based readers and writers of :mod:`meshops.io` go through the same code. It reads and writes
no files; pyvista (and vtk) are imported only when a function is called. Every step is vectorized
numpy: time and memory grow linearly with the dataset.

Points keep their order; cells keep theirs, split into blocks at each change of type or size,
in VTK's node order (:mod:`meshops.cells`). Any dataset (poly data, image data, rectilinear and
structured grids) is taken as an unstructured grid; poly data cells in VTK's global order (verts,
lines, polys, strips). Poly-vertices, poly-lines and strips are split with a recorded map (see
:mod:`meshops.cells`), which :func:`mesh_to_vtk` uses to put the original cells back.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from meshops.cells import SPLIT_CELLS, TYPE_TO_VTK, VTK_TO_TYPE
from meshops.errors import MeshError

__all__ = ["TYPE_TO_VTK", "VTK_TO_TYPE", "is_poly", "mesh_to_vtk", "vtk_cells", "vtk_to_parts"]

_SHAPE_KEY = "meshops:shape:"
_SPLIT, _SPLIT_TYPES = "vtk:split_cells", "vtk:split_types"
_FACES, _FACE_OFF = "vtk:polyhedron_faces", "vtk:polyhedron_face_offsets"
log = logging.getLogger(__name__)
_LUT = np.array([VTK_TO_TYPE.get(i, f"vtk_type_{i}") for i in range(256)], dtype=object)


def _pyvista(feature: str) -> Any:
    """Import pyvista, with an error that says what needs it."""
    try:
        return importlib.import_module("pyvista")
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"{feature} needs the package 'pyvista' ({e})") from e


def _np(a: Any) -> np.ndarray:
    from vtk.util.numpy_support import vtk_to_numpy

    return np.asarray(vtk_to_numpy(a))


def _blocks_from_runs(types: np.ndarray, offsets: np.ndarray, conn: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Cell blocks from per-cell VTK type ids and offsets, split where the type or size changes.

    Blocks are views into ``conn`` (no copy); types compare as small integers, not names.
    """
    n = len(types)
    if n == 0:
        return []
    sizes = np.diff(offsets)
    change = np.flatnonzero((types[1:] != types[:-1]) | (sizes[1:] != sizes[:-1])) + 1
    starts, ends = np.concatenate([[0], change]), np.concatenate([change, [n]])
    return [(str(_LUT[types[s]]), conn[offsets[s]: offsets[e]].reshape(e - s, int(sizes[s])))
            for s, e in zip(starts, ends, strict=True)]


def _decode_name(raw: bytes) -> str:
    """A field name that is not valid UTF-8, read as Latin-1 (every byte string is), with a warning."""
    name = raw.decode("latin-1")
    log.warning("field name %r is not UTF-8; read as Latin-1: %r", raw, name)
    return name


def _arrays(attrs: Any) -> dict[str, np.ndarray]:
    """Every array of a pyvista attribute set, numeric or string, by name."""
    out = {}
    for i, k in enumerate(attrs.keys()):
        if isinstance(k, bytes):  # VTK hands back a name that is not UTF-8 as bytes
            k = _decode_name(k)
            attrs.VTKObject.GetAbstractArray(i).SetName(k)
        a = np.asarray(attrs[k])
        if a.dtype.kind == "O":
            a = a.astype(str)
        out[str(k)] = a
    return out


# VTK type id of a poly-data cell by its kind and node count: {kind: ({count: type}, otherwise)}
_POLY_TYPES = {"verts": ({1: 1}, 2), "lines": ({2: 3}, 4), "polys": ({3: 5, 4: 9}, 7), "strips": ({}, 6)}


def _poly_types(kind: str, sizes: np.ndarray) -> np.ndarray:
    """VTK type ids (uint8) of one poly-data cell array from its cells' node counts (a table lookup)."""
    exact, other = _POLY_TYPES[kind]
    lut = np.full(int(sizes.max()) + 1 if len(sizes) else 1, other, dtype=np.uint8)
    for k, t in exact.items():
        if k < len(lut):
            lut[k] = t
    return lut[sizes]


def _poly_cells(ds: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(VTK type ids, offsets, connectivity) of poly data, in VTK's verts, lines, polys, strips order."""
    types, offs, conns, base = [], [], [], 0
    for kind, get in (("verts", ds.GetVerts), ("lines", ds.GetLines), ("polys", ds.GetPolys),
                      ("strips", ds.GetStrips)):
        ca = get()
        if ca is None or ca.GetNumberOfCells() == 0:
            continue
        off = _np(ca.GetOffsetsArray()).astype(np.int64, copy=False)
        types.append(_poly_types(kind, np.diff(off)))
        offs.append(off[:-1] + base if base else off[:-1])
        conns.append(_np(ca.GetConnectivityArray()).astype(np.int64, copy=False))
        base += int(off[-1])
    if not types:
        return np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros(0, np.int64)
    if len(types) == 1:  # the common case: no copies beyond VTK's arrays
        return types[0], np.append(offs[0], base), conns[0]
    return np.concatenate(types), np.append(np.concatenate(offs), base), np.concatenate(conns)


def _split(types: np.ndarray, off: np.ndarray, conn: np.ndarray) -> tuple[np.ndarray, ...]:
    """Split poly-vertices, poly-lines and strips: (new types, new offsets, new conn, original cell)."""
    sizes = np.diff(off)
    k = sizes.copy()
    new_t = types.copy()
    for vid, (piece, nk) in SPLIT_CELLS.items():
        sel = types == vid
        k[sel], new_t[sel] = nk, piece
    w = sizes - k + 1  # pieces per cell
    short = np.flatnonzero(w < 1)
    if len(short):
        c = int(short[0])
        raise MeshError(f"VTK cell {c} ({VTK_TO_TYPE.get(int(types[c]))}) has {int(sizes[c])} points, "
                        "too few to split into pieces")
    orig = np.repeat(np.arange(len(types)), w)
    first = np.concatenate([[0], np.cumsum(w)[:-1]])
    sub = np.arange(len(orig)) - first[orig]
    start = off[:-1][orig] + sub
    size = k[orig]
    noff = np.concatenate([[0], np.cumsum(size)])
    idx = np.repeat(start - noff[:-1], size) + np.arange(int(noff[-1]))
    nconn = conn[idx]
    flip = np.flatnonzero((types[orig] == 6) & (sub % 2 == 1))  # every other strip triangle is flipped
    a, b = noff[flip], noff[flip] + 1
    nconn[a], nconn[b] = nconn[b], nconn[a].copy()
    return new_t[orig], noff, nconn, orig


def _polyhedron_faces(ds: Any, types: np.ndarray) -> dict[str, np.ndarray]:
    """VTK's legacy face stream of every polyhedron, concatenated, with per-polyhedron offsets."""
    cells = np.flatnonzero(types == 42)
    if not len(cells):
        return {}
    import vtk

    streams = []
    for c in cells.tolist():  # one call per polyhedron (rare cells); the stream is VTK's own
        ids = vtk.vtkIdList()
        ds.GetFaceStream(c, ids)
        streams.append(np.array([ids.GetId(i) for i in range(ids.GetNumberOfIds())], np.int64))
    off = np.concatenate([[0], np.cumsum([len(s) for s in streams])])
    return {_FACES: np.concatenate(streams), _FACE_OFF: off}


def vtk_to_parts(ds: Any, source: str | Path | None = None) -> dict[str, Any]:
    """The arrays of a pyvista/vtk dataset of any kind, ready for ``Mesh(**parts)``.

    Returns
    -------
    dict
        ``points``, ``cells`` (list of (type, (m, k) int64)), ``point_data``, ``cell_data`` and
        ``field_data`` (the dataset's field arrays, plus the split and polyhedron records of
        :mod:`meshops.cells`).

    Shapes
    ------
    ``points`` (n, 3) float64 in dataset order; cells as blocks of (m, k) int64; fields as stored.
    """
    pv = _pyvista("reading VTK datasets")
    if not isinstance(ds, pv.DataSet):
        ds = pv.wrap(ds)
    where = str(source) if source else "<vtk dataset>"
    point_data, cell_data = _arrays(ds.point_data), _arrays(ds.cell_data)
    field_data: dict[str, Any] = _arrays(ds.field_data)
    if isinstance(ds, pv.PolyData):
        types, off, conn = _poly_cells(ds)
    else:
        if not isinstance(ds, pv.UnstructuredGrid):
            ds = ds.cast_to_unstructured_grid()
        types = np.asarray(ds.celltypes, dtype=np.uint8)
        if len(types):
            off = _np(ds.GetCells().GetOffsetsArray()).astype(np.int64, copy=False)
            conn = _np(ds.GetCells().GetConnectivityArray()).astype(np.int64, copy=False)
        else:
            off, conn = np.zeros(1, np.int64), np.zeros(0, np.int64)
        field_data.update(_polyhedron_faces(ds, types))
    if np.isin(types, list(SPLIT_CELLS)).any():
        try:
            new_t, off, conn, orig = _split(types, off, conn)
        except MeshError as e:
            raise MeshError(f"{where}: {e}") from None
        field_data[_SPLIT], field_data[_SPLIT_TYPES] = orig, types
        cell_data = {k: v[orig] for k, v in cell_data.items()}
        types = new_t
    _restore_shapes(field_data, point_data, cell_data)
    return {"points": np.asarray(ds.points, dtype=np.float64), "cells": _blocks_from_runs(types, off, conn),
            "point_data": point_data, "cell_data": cell_data, "field_data": field_data}


def _restore_shapes(field_data: dict, point_data: dict, cell_data: dict) -> None:
    """Tensor fields (n, a, b) that writers stored flattened, with their shape in field data."""
    for key in [k for k in field_data if k.startswith(_SHAPE_KEY)]:
        loc, _, name = key[len(_SHAPE_KEY):].partition(":")
        target = point_data if loc == "point" else cell_data
        if name in target:
            shape = tuple(int(x) for x in np.asarray(field_data.pop(key)).ravel())
            target[name] = target[name].reshape((len(target[name]), *shape))


def vtk_cells(mesh: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The mesh's cells in VTK's representation, split cells put back: (types, offsets, conn, kept).

    ``kept`` is None, or the index of the mesh cell each VTK cell takes its cell data from (when
    split cells were merged back). Merging happens only when the split record still fits the cells
    and the cell data agree across the pieces of each original cell.

    Shapes
    ------
    ``types`` (c,) uint8, ``offsets`` (c + 1,) int64, ``conn`` (offsets[-1],) int64.
    """
    where = getattr(mesh, "source", None) or "<mesh>"
    unknown = [b.type for b in mesh.cells if b.type not in TYPE_TO_VTK and not b.type.startswith("vtk_type_")]
    if unknown:
        raise MeshError(f"{where}: cell type '{unknown[0]}' has no VTK equivalent")
    blocks = [b for b in mesh.cells if len(b)]
    if not blocks:
        return np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros(0, np.int64), None
    types = np.concatenate([np.full(len(b), TYPE_TO_VTK.get(b.type) or int(b.type[9:]), np.uint8) for b in blocks])
    sizes = np.concatenate([np.full(len(b), b.data.shape[1], np.int64) for b in blocks])
    off = np.concatenate([[0], np.cumsum(sizes)])
    conn = np.concatenate([b.data.ravel() for b in blocks]).astype(np.int64)
    merged = _merge_split(mesh, types, off, conn)
    return merged if merged is not None else (types, off, conn, None)


def _merge_split(mesh: Any, types: np.ndarray, off: np.ndarray, conn: np.ndarray) -> tuple | None:
    fd = getattr(mesh, "field_data", {}) or {}
    orig, otypes = fd.get(_SPLIT), fd.get(_SPLIT_TYPES)
    if orig is None or otypes is None:
        return None
    orig, otypes = np.asarray(orig, np.int64), np.asarray(otypes, np.uint8)
    n = len(types)
    if len(orig) != n or (n and (orig[0] != 0 or np.any(np.diff(orig) < 0) or np.any(np.diff(orig) > 1)
                                 or orig[-1] != len(otypes) - 1)):
        return None
    expect = otypes.copy()
    for vid, (piece, _) in SPLIT_CELLS.items():
        expect[otypes == vid] = piece
    if np.any(expect[orig] != types):
        return None
    first = np.flatnonzero(np.concatenate([[True], orig[1:] != orig[:-1]]))
    for v in mesh.cell_data.values():
        if len(v) == n and not np.array_equal(v, v[first][orig]):
            return None
    sizes = np.diff(off)
    is_first = np.zeros(n, bool)
    is_first[first] = True
    pos = np.arange(len(conn)) - np.repeat(off[:-1], sizes)
    keep = np.repeat(is_first, sizes) | (pos == np.repeat(sizes - 1, sizes))
    counts = np.bincount(orig, weights=np.where(is_first, sizes, 1), minlength=len(otypes)).astype(np.int64)
    return otypes, np.concatenate([[0], np.cumsum(counts)]), conn[keep], first


def _set_arrays(attrs: Any, data: dict[str, np.ndarray], rows: np.ndarray | None, shapes: dict, loc: str) -> None:
    for k, v in data.items():
        v = np.asarray(v)
        if rows is not None:
            v = v[rows]
        if v.ndim > 2 or v.ndim == 2 and v.shape[1] == 1:
            shapes[f"{_SHAPE_KEY}{loc}:{k}"] = np.array(v.shape[1:], dtype=np.int64)
            v = v.reshape(len(v), -1)
        attrs[k] = v


def mesh_to_vtk(mesh: Any, *, poly: bool = False) -> Any:
    """A pyvista ``UnstructuredGrid`` (or ``PolyData`` with ``poly=True``) with the mesh's fields.

    ``mesh`` is a :class:`~meshops.mesh.Mesh` (or anything with its ``points``, ``cells``,
    ``point_data``, ``cell_data``, ``field_data`` and ``source`` attributes). Split cells are put
    back (:func:`vtk_cells`), polyhedra get their faces, tensor fields are flattened with their
    shape recorded in field data, and ``field_data`` arrays are written as VTK field data.

    For poly data the cells must already be in VTK's order (vertices, lines, polygons, strips),
    else the cell order would change: that raises :class:`MeshError`.

    Shapes
    ------
    ``points`` (n, 3); cell data (n_cells, ...) -> (n_vtk_cells, prod(...)).
    """
    pv = _pyvista("writing VTK datasets")
    where = getattr(mesh, "source", None) or "<mesh>"
    types, off, conn, rows = vtk_cells(mesh)
    obj = _poly_obj(pv, mesh, types, off, conn, where) if poly else _grid_obj(pv, mesh, types, off, conn)
    shapes: dict[str, np.ndarray] = {}
    _set_arrays(obj.point_data, mesh.point_data, None, shapes, "point")
    _set_arrays(obj.cell_data, mesh.cell_data, rows, shapes, "cell")
    fd = {k: v for k, v in (getattr(mesh, "field_data", {}) or {}).items()
          if k not in (_SPLIT, _SPLIT_TYPES, _FACES, _FACE_OFF)}
    for k, v in {**fd, **shapes}.items():
        try:
            a = np.asarray(v)
        except ValueError:  # ragged lists, nested objects: not an array VTK can hold
            a = np.asarray([], dtype=object)
        if a.dtype.kind in "biufUS" and a.ndim <= 2:
            obj.field_data[k] = a.reshape(-1) if a.ndim == 0 else a
        elif (text := _json(v)) is not None:  # dicts, ragged lists: kept as one JSON string
            obj.field_data[k] = np.array([text])
        else:
            log.warning("%s: field_data['%s'] (%s) is not an array VTK can store; not written", where, k,
                        type(v).__name__)
    return obj


def _json(v: Any) -> str | None:
    import json

    try:
        return json.dumps(v, default=lambda x: np.asarray(x).tolist())
    except (TypeError, ValueError):
        return None


def _grid_obj(pv: Any, mesh: Any, types: np.ndarray, off: np.ndarray, conn: np.ndarray) -> Any:
    sizes = np.diff(off)
    legacy = np.insert(conn, off[:-1], sizes) if len(types) else np.zeros(0, np.int64)
    fd = getattr(mesh, "field_data", {}) or {}
    if np.any(types == 42):
        faces, foff = np.asarray(fd.get(_FACES, [])), np.asarray(fd.get(_FACE_OFF, []))
        npoly = int(np.sum(types == 42))
        if len(foff) != npoly + 1:
            raise MeshError(f"{getattr(mesh, 'source', None) or '<mesh>'}: {npoly} polyhedra but no face "
                            f"list for them (field_data['{_FACES}'])")
        return _polyhedral_grid(pv, mesh.points, types, legacy, off, faces, foff)
    if not len(types):
        obj = pv.UnstructuredGrid()
        obj.points = np.array(mesh.points, dtype=np.float64)
        return obj
    return pv.UnstructuredGrid(legacy, types, np.array(mesh.points, dtype=np.float64))


def _polyhedral_grid(pv: Any, points: np.ndarray, types: np.ndarray, legacy: np.ndarray, off: np.ndarray,
                     faces: np.ndarray, foff: np.ndarray) -> Any:
    import vtk

    ug = pv.UnstructuredGrid()
    ug.points = np.array(points, dtype=np.float64)
    ug.Allocate(len(types))
    sizes = np.diff(off)
    p = 0
    for c, t in enumerate(types.tolist()):  # cell by cell: vtk's polyhedron insertion has no bulk form
        ids = vtk.vtkIdList()
        if t == 42:
            vals = faces[foff[p]: foff[p + 1]].tolist()
            p += 1
        else:
            start = int(off[c]) + c + 1
            vals = legacy[start: start + int(sizes[c])].tolist()
        for x in vals:
            ids.InsertNextId(int(x))
        ug.InsertNextCell(t, ids)
    return ug


_POLY_RANK = {"vertex": 0, "polyvertex": 0, "line": 1, "polyline": 1, "triangle": 2, "quad": 2, "polygon": 2,
              "triangle_strip": 3}


def is_poly(mesh: Any) -> bool:
    """True when every cell is a vertex, line, polygon or strip, in VTK's poly data order."""
    r = [_POLY_RANK.get(b.type, -1) for b in mesh.cells if len(b)]
    return bool(r) and min(r) >= 0 and all(a <= b for a, b in zip(r, r[1:], strict=False))


def _poly_obj(pv: Any, mesh: Any, types: np.ndarray, off: np.ndarray, conn: np.ndarray, where: str) -> Any:
    rank = np.full(256, -1)
    rank[[1, 2]], rank[[3, 4]], rank[[5, 7, 9]], rank[6] = 0, 1, 2, 3
    r = rank[types]
    if np.any(r < 0):
        bad = VTK_TO_TYPE.get(int(types[np.flatnonzero(r < 0)[0]]))
        raise MeshError(f"{where}: .vtp holds vertices, lines, polygons and strips, not '{bad}' cells; write .vtu")
    if np.any(np.diff(r) < 0):
        raise MeshError(f"{where}: .vtp stores vertices, lines, polygons, then strips; this mesh's blocks "
                        f"{[b.type for b in mesh.cells]} would be reordered; write .vtu to keep the order")
    sizes = np.diff(off)
    legacy = np.insert(conn, off[:-1], sizes)
    lpos = off[:-1] + np.arange(len(types))  # where each cell starts in the legacy array
    kw = {}
    for key, rk in (("verts", 0), ("lines", 1), ("faces", 2), ("strips", 3)):
        sel = np.flatnonzero(r == rk)
        if len(sel):
            kw[key] = legacy[lpos[sel[0]]: lpos[sel[-1]] + sizes[sel[-1]] + 1]
    return pv.PolyData(np.array(mesh.points, dtype=np.float64), **kw)
