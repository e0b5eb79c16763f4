"""Lossless conversion between VTK datasets (through pyvista) and :class:`~meshops.mesh.Mesh`.

The in-memory half of the mesh converters. It sits *below* :mod:`meshops.mesh` (it never imports
it): :func:`vtk_to_parts` turns a dataset into plain arrays that :meth:`Mesh.from_pyvista` assembles,
and :func:`mesh_to_vtk` reads any object with a mesh's attributes. :meth:`Mesh.to_pyvista` and the
VTK-based readers and writers of :mod:`meshops.io` go through the same code. It reads and writes
no files; pyvista (and vtk) are imported only when a function is called.

Points keep their order. Unstructured-grid cells keep their order, split into blocks at each change
of type. Poly data cells are taken in VTK's own global order (verts, lines, polys, strips), so
cell fields line up; poly-lines and triangle strips are split into 2-point lines and triangles with
their cell values repeated (``field_data['vtk:split_cells']`` records the original cell of each).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from meshops.errors import MeshError

__all__ = [
    "TYPE_TO_VTK",
    "VTK_TO_TYPE",
    "mesh_to_vtk",
    "vtk_to_parts",
]


def _pyvista(feature: str) -> Any:
    """Import pyvista, with an error that says what needs it."""
    try:
        return importlib.import_module("pyvista")
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"{feature} needs the package 'pyvista' ({e})") from e


#: VTK cell type id -> meshio cell type name.
VTK_TO_TYPE: dict[int, str] = {
    1: "vertex", 3: "line", 5: "triangle", 7: "polygon", 9: "quad", 10: "tetra", 12: "hexahedron",
    13: "wedge", 14: "pyramid", 21: "line3", 22: "triangle6", 23: "quad8", 24: "tetra10",
    25: "hexahedron20", 26: "wedge15", 27: "pyramid13", 28: "quad9", 29: "hexahedron27",
}
TYPE_TO_VTK = {v: k for k, v in VTK_TO_TYPE.items()}



def _blocks_from_runs(types: np.ndarray, offsets: np.ndarray, conn: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Cell blocks from per-cell type names/sizes, split where the type or size changes."""
    n = len(types)
    if n == 0:
        return []
    sizes = np.diff(offsets)
    key_change = np.flatnonzero((types[1:] != types[:-1]) | (sizes[1:] != sizes[:-1])) + 1
    starts = np.concatenate([[0], key_change])
    ends = np.concatenate([key_change, [n]])
    blocks = []
    for s, e in zip(starts, ends, strict=True):
        k = int(sizes[s])
        data = conn[offsets[s]: offsets[e]].reshape(e - s, k)
        blocks.append((str(types[s]), data))
    return blocks


def _arrays(attrs: Any) -> dict[str, np.ndarray]:
    out = {}
    for k in attrs.keys():
        try:
            a = np.array(attrs[k])
        except Exception:  # pragma: no cover - exotic vtk arrays
            continue
        if a.dtype.kind in "biuf":
            out[str(k)] = a
    return out


def _cell_array(ca: Any) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, connectivity) of a vtkCellArray."""
    from vtk.util.numpy_support import vtk_to_numpy

    off = vtk_to_numpy(ca.GetOffsetsArray()).astype(np.int64)
    conn = vtk_to_numpy(ca.GetConnectivityArray()).astype(np.int64)
    return off, conn


def vtk_to_parts(ds: Any, source: str | Path | None = None) -> dict[str, Any]:
    """The arrays of a pyvista/vtk dataset (unstructured grid, poly data, or anything castable).

    Returns
    -------
    dict
        ``points``, ``cells`` (list of (type, (m, k) int64)), ``point_data``, ``cell_data`` and
        ``field_data`` (``vtk:split_cells`` when poly data cells were split), ready for ``Mesh(**parts)``.

    Shapes
    ------
    ``points`` (n, 3) float64 in dataset order; cells as blocks of (m, k) int64; fields as stored.
    """
    pv = _pyvista("reading VTK datasets")
    if not isinstance(ds, pv.DataSet):
        ds = pv.wrap(ds)
    where = str(source) if source else "<vtk dataset>"
    point_data = _arrays(ds.point_data)
    cell_data = _arrays(ds.cell_data)
    split_from: np.ndarray | None = None
    if isinstance(ds, pv.PolyData):
        blocks: list[tuple[str, np.ndarray]] = []
        rows: list[np.ndarray] = []  # original cell id of every output cell
        base = 0
        for kind in ("verts", "lines", "polys", "strips"):
            ca = {"verts": ds.GetVerts, "lines": ds.GetLines, "polys": ds.GetPolys, "strips": ds.GetStrips}[kind]()
            if ca is None or ca.GetNumberOfCells() == 0:
                continue
            off, conn = _cell_array(ca)
            ncell = len(off) - 1
            sizes = np.diff(off)
            ids = np.arange(base, base + ncell)
            if kind == "polys":
                names = np.where(sizes == 3, "triangle", np.where(sizes == 4, "quad", "polygon"))
                blocks += _blocks_from_runs(names, off, conn)
                rows.append(ids)
            else:
                # verts -> one vertex per point; lines -> 2-point segments; strips -> triangles.
                k = {"verts": 1, "lines": 2, "strips": 3}[kind]
                cell_of = np.repeat(np.arange(ncell), sizes)  # owning cell of each connectivity entry
                if k == 1:
                    data, owner = conn.reshape(-1, 1), cell_of
                else:
                    # start j of a k-window lies inside one cell: cell_of[j] == cell_of[j + k - 1]
                    j = np.flatnonzero(cell_of[: len(conn) - k + 1] == cell_of[k - 1:])
                    data = np.stack([conn[j + q] for q in range(k)], axis=1)
                    owner = cell_of[j]
                    if kind == "strips":  # every other triangle of a strip is flipped
                        odd = ((j - off[owner]) % 2) == 1
                        data[odd] = data[odd][:, [1, 0, 2]]
                blocks.append(({"verts": "vertex", "lines": "line", "strips": "triangle"}[kind], data))
                rows.append(base + owner)
            base += ncell
        order = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        if len(order) != base or np.any(order != np.arange(base)):
            split_from = order
            cell_data = {k: v[order] for k, v in cell_data.items()}
    else:
        if not isinstance(ds, pv.UnstructuredGrid):
            ds = ds.cast_to_unstructured_grid()
        ctypes = np.asarray(ds.celltypes)
        if ds.n_cells:
            unknown = sorted(set(np.unique(ctypes).tolist()) - set(VTK_TO_TYPE))
            if unknown:
                raise MeshError(f"{where}: VTK cell type(s) {unknown} are not supported "
                                "(polyhedral cells cannot be stored losslessly as point lists)")
            lut = np.array([VTK_TO_TYPE.get(i, "") for i in range(256)], dtype=object)
            names = lut[ctypes.astype(np.int64)]
            off = np.asarray(ds.cell_offsets if hasattr(ds, "cell_offsets") else ds.offset, dtype=np.int64)
            conn = np.asarray(ds.cell_connectivity, dtype=np.int64)
            blocks = _blocks_from_runs(names, off, conn)
        else:
            blocks = []
    field_data: dict[str, Any] = {}
    if split_from is not None:
        field_data["vtk:split_cells"] = split_from
    return {"points": np.asarray(ds.points, dtype=np.float64), "cells": blocks, "point_data": point_data,
            "cell_data": cell_data, "field_data": field_data}


def mesh_to_vtk(mesh: Any, *, poly: bool = False) -> Any:
    """A pyvista ``UnstructuredGrid`` (or ``PolyData`` with ``poly=True``) with the mesh's fields.

    ``mesh`` is a :class:`~meshops.mesh.Mesh` (or anything with its ``points``, ``cells``,
    ``point_data``, ``cell_data`` and ``source`` attributes).

    For poly data the blocks must already be in VTK's order (vertices, lines, then faces), else
    the cell order would change: that raises :class:`MeshError`.
    """
    pv = _pyvista("writing VTK datasets")
    where = mesh.source or "<mesh>"
    if poly:
        rank = {"vertex": 0, "line": 1, "triangle": 2, "quad": 2, "polygon": 2}
        bad = [b.type for b in mesh.cells if b.type not in rank]
        if bad:
            raise MeshError(f"{where}: .vtp holds vertices, lines and polygons, not '{bad[0]}' cells; write .vtu")
        seq = [rank[b.type] for b in mesh.cells if len(b)]
        if any(a > b for a, b in zip(seq, seq[1:], strict=False)):
            raise MeshError(f"{where}: .vtp stores vertices, lines, then polygons; this mesh's blocks "
                            f"{[b.type for b in mesh.cells]} would be reordered; write .vtu to keep the order")

        def pack(types: tuple[str, ...]) -> np.ndarray:
            parts = [np.hstack([np.full((len(b), 1), b.data.shape[1]), b.data]).ravel()
                     for b in mesh.cells if b.type in types and len(b)]
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

        kw = {}
        for key, types in (("verts", ("vertex",)), ("lines", ("line",)), ("faces", ("triangle", "quad", "polygon"))):
            arr = pack(types)
            if len(arr):
                kw[key] = arr
        obj = pv.PolyData(mesh.points.copy(), **kw)
    else:
        if not mesh.cells:
            obj = pv.UnstructuredGrid()
            obj.points = mesh.points.copy()
        else:
            unknown = [b.type for b in mesh.cells if b.type not in TYPE_TO_VTK]
            if unknown:
                raise MeshError(f"{where}: cell type '{unknown[0]}' has no VTK equivalent")
            cells = np.concatenate([np.hstack([np.full((len(b), 1), b.data.shape[1]), b.data]).ravel()
                                    for b in mesh.cells]).astype(np.int64)
            ctypes = np.concatenate([np.full(len(b), TYPE_TO_VTK[b.type], np.uint8) for b in mesh.cells])
            obj = pv.UnstructuredGrid(cells, ctypes, mesh.points.copy())
    for k, v in mesh.point_data.items():
        obj.point_data[k] = v.reshape(len(v), -1) if v.ndim > 2 else v
    for k, v in mesh.cell_data.items():
        obj.cell_data[k] = v.reshape(len(v), -1) if v.ndim > 2 else v
    return obj
