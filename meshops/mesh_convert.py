"""Conversion between :class:`~meshops.mesh.Mesh` and meshio, pyvista and trimesh objects.

The converters behind :meth:`Mesh.to_meshio`, :meth:`Mesh.from_meshio`, :meth:`Mesh.to_pyvista`,
:meth:`Mesh.from_pyvista`, :meth:`Mesh.to_trimesh` and :meth:`Mesh.from_trimesh`. Like
:mod:`meshops.mesh_vtk` this module sits *below* :mod:`meshops.mesh` (it never imports it, so the
methods can import it without an import circle): ``to_*`` read any object with a mesh's attributes,
``*_to_parts`` return the keyword arguments the ``Mesh`` constructor assembles (cells as
``(type, data)`` pairs). meshio, pyvista and trimesh are imported only when a function is called.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from meshops.cells import CELL_DIM, MESHIO_ORDER
from meshops.errors import MeshError

__all__ = ["meshio_to_parts", "pyvista_to_parts", "to_meshio", "to_pyvista", "to_trimesh", "trimesh_to_parts"]


def to_meshio(mesh: Any) -> Any:
    """A ``meshio.Mesh`` of ``mesh`` (see :meth:`Mesh.to_meshio`)."""
    import meshio

    pts = mesh.points[:, :2] if mesh.dim == 2 else mesh.points
    cells = [meshio.CellBlock(b.type, _meshio_order(b.type, b.data)) for b in mesh.cells]
    offsets = np.cumsum([0] + [len(b) for b in mesh.cells])
    cell_data = {
        k: [v[offsets[i] : offsets[i + 1]] for i in range(len(mesh.cells))] for k, v in mesh.cell_data.items()
    }
    return meshio.Mesh(pts, cells, point_data=dict(mesh.point_data), cell_data=cell_data,
                       field_data={k: v for k, v in mesh.field_data.items() if isinstance(v, np.ndarray)})


def meshio_to_parts(m: Any, source: str | None = None) -> dict[str, Any]:
    """The ``Mesh`` keyword arguments of a ``meshio.Mesh`` (see :meth:`Mesh.from_meshio`)."""
    blocks = [(c.type, _meshio_order(c.type, np.asarray(c.data))) for c in m.cells]
    cell_data: dict[str, np.ndarray] = {}
    for k, per_block in m.cell_data.items():
        if len(per_block) == len(blocks):
            cell_data[k] = np.concatenate([np.asarray(a) for a in per_block]) if blocks else np.zeros(0)
    pts = np.asarray(m.points)
    boundaries: dict[str, list[tuple[str, np.ndarray]]] = {}
    # Gmsh physical groups: name -> (tag, dim) in field_data, tags per cell in gmsh:physical.
    phys = m.cell_data.get("gmsh:physical")
    if phys is not None and m.field_data:
        top = max((CELL_DIM.get(t, 0) for t, _ in blocks), default=0)
        for name, val in m.field_data.items():
            tag, gdim = int(np.asarray(val).ravel()[0]), int(np.asarray(val).ravel()[-1])
            if gdim >= top:
                continue
            sel = [(t, d[np.asarray(phys[i]) == tag]) for i, (t, d) in enumerate(blocks)
                   if CELL_DIM.get(t, 0) == gdim]
            sel = [(t, d) for t, d in sel if len(d)]
            if sel:
                boundaries[str(name)] = sel
    return {"points": pts, "cells": blocks, "point_data": {k: np.asarray(v) for k, v in m.point_data.items()},
            "cell_data": cell_data, "boundaries": boundaries, "source": source, "field_data": dict(m.field_data)}


def to_pyvista(mesh: Any) -> Any:
    """The natural pyvista dataset of ``mesh`` (see :meth:`Mesh.to_pyvista`)."""
    import pyvista as pv

    from meshops.mesh_vtk import is_poly, mesh_to_vtk

    if not mesh.cells:
        cloud = pv.PolyData(mesh.points.copy())
        for k, v in mesh.point_data.items():
            cloud.point_data[k] = v.reshape(len(v), -1) if v.ndim > 2 else v
        return cloud
    return mesh_to_vtk(mesh, poly=is_poly(mesh))


def pyvista_to_parts(obj: Any, source: str | None = None) -> dict[str, Any]:
    """The ``Mesh`` keyword arguments of any pyvista dataset (see :meth:`Mesh.from_pyvista`)."""
    import pyvista as pv

    from meshops.mesh_vtk import vtk_to_parts

    if isinstance(obj, pv.MultiBlock):
        obj = obj.combine(merge_points=False)
    return {**vtk_to_parts(obj, source), "source": str(source) if source else None}


def to_trimesh(mesh: Any) -> Any:
    """A ``trimesh.Trimesh`` of the triangle and quad faces of ``mesh`` (see :meth:`Mesh.to_trimesh`)."""
    import trimesh

    faces = [mesh.cells_of_type("triangle")]
    q = mesh.cells_of_type("quad")
    if len(q):
        faces.append(np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]]))
    if not sum(len(f) for f in faces):
        raise MeshError(f"{mesh._where()}: no triangle or quad cells to build a trimesh from")
    return trimesh.Trimesh(vertices=mesh.points, faces=np.concatenate(faces), process=False)


def trimesh_to_parts(tm: Any, source: str | None = None) -> dict[str, Any]:
    """The ``Mesh`` keyword arguments of a ``trimesh.Trimesh`` (see :meth:`Mesh.from_trimesh`)."""
    return {"points": np.asarray(tm.vertices, dtype=np.float64),
            "cells": [("triangle", np.asarray(tm.faces, dtype=np.int64))], "source": source}


def _meshio_order(cell_type: str, data: np.ndarray) -> np.ndarray:
    """meshio's node order <-> VTK's (canonical); the permutations are involutions."""
    perm = MESHIO_ORDER.get(cell_type)
    return data if perm is None or data.ndim != 2 or data.shape[1] != len(perm) else data[:, perm]
