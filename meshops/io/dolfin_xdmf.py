"""dolfin XDMF checkpoints (``XDMFFile.write_checkpoint``): ``FiniteElementFunction`` attributes.

meshio cannot read these; the format ``dolfin-xdmf`` (registered in :mod:`meshops.io.dolfin`) claims
them from the xdmf reader and reads them through the dof-map rule of :mod:`meshops.io._dolfin_common`,
time series included (simplex cells only).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from meshops.io._dolfin_common import _CELLS, _dof_map, _Function, _MeshData, _to_mesh, _values
from meshops.io._util import lazy_import, select_times
from meshops.mesh import Mesh, MeshError

__all__ = ["is_dolfin_xdmf", "probe_dolfin_xdmf", "read_dolfin_xdmf"]


_XDMF_CELLS = {"polyline": "interval", "triangle": "triangle", "tetrahedron": "tetrahedron"}
_FE_PARTS = ("cell_dofs", "vector", "x_cell_dofs", "cells")   # dolfin's DataItem order


def is_dolfin_xdmf(path: Path) -> bool:
    """Whether ``path`` is an XDMF file with ``FiniteElementFunction`` attributes (dolfin checkpoints)."""
    if not path.is_file() or path.suffix.lower() not in (".xdmf", ".xmf"):
        return False
    with open(path, "rb") as fh:
        return b"FiniteElementFunction" in fh.read(1 << 22)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(node: Any, name: str) -> list[Any]:
    return [c for c in node if _local(c.tag) == name]


class _XdmfData:
    """Resolves XDMF DataItems (``Format="HDF"`` ``file.h5:/path`` or inline XML) to arrays or datasets."""

    def __init__(self, path: Path) -> None:
        self.path, self.h5py, self.files = path, lazy_import("h5py", "reading dolfin XDMF checkpoints"), {}

    def item(self, node: Any) -> Any:
        items = _children(node, "DataItem") if _local(node.tag) != "DataItem" else [node]
        if not items:
            raise MeshError(f"{self.path}: <{_local(node.tag)}> has no DataItem")
        d = items[0]
        text = (d.text or "").strip()
        if d.get("Format", "XML").upper() == "HDF":
            fname, _, h5path = text.partition(":")
            f = self.files.get(fname)
            if f is None:
                target = self.path.parent / fname
                if not target.is_file():
                    raise MeshError(f"{self.path}: DataItem points at {fname}, which does not exist")
                f = self.files[fname] = self.h5py.File(target, "r")
            if h5path not in f:
                raise MeshError(f"{self.path}: {fname} has no dataset {h5path}")
            return f[h5path]
        dims = [int(x) for x in d.get("Dimensions", "").split()] or [-1]
        return np.array(text.split(), dtype=np.float64).reshape(dims)

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _xdmf_steps(path: Path) -> list[tuple[float | None, Any]]:
    root = ET.parse(path).getroot()
    grids = [g for g in root.iter() if _local(g.tag) == "Grid" and g.get("GridType", "Uniform") == "Uniform"]
    steps = []
    for g in grids:
        t = _children(g, "Time")
        steps.append((float(t[0].get("Value")) if t else None, g))
    return steps


def _xdmf_mesh(data: _XdmfData, grid: Any, prev: _MeshData | None) -> _MeshData:
    tops, geos = _children(grid, "Topology"), _children(grid, "Geometry")
    if not tops or not geos:
        if prev is None:
            raise MeshError(f"{data.path}: grid '{grid.get('Name')}' has no Topology/Geometry")
        return prev
    kind = tops[0].get("TopologyType", "").lower()
    if kind not in _XDMF_CELLS:
        raise MeshError(f"{data.path}: dolfin checkpoint on {kind or 'unknown'} cells is not supported "
                        f"(supported: {sorted(_XDMF_CELLS)})")
    top = np.asarray(data.item(tops[0])[()], dtype=np.int64)
    geo = np.asarray(data.item(geos[0])[()], dtype=np.float64)
    k = _CELLS[_XDMF_CELLS[kind]][1]
    return _MeshData(geo.reshape(len(geo), -1), top.reshape(-1, k), _XDMF_CELLS[kind],
                     np.arange(top.size // k, dtype=np.int64), f"{data.path}:{grid.get('Name')}")


def _xdmf_function(data: _XdmfData, attr: Any, celltype: str) -> _Function:
    items = _children(attr, "DataItem")
    parts: dict[str, Any] = {}
    for i, d in enumerate(items):
        tail = (d.text or "").strip().rsplit("/", 1)[-1]
        key = tail if tail in _FE_PARTS else (_FE_PARTS[i] if i < len(_FE_PARTS) else tail)
        parts[key] = data.item(d)
    missing = [p for p in _FE_PARTS if p not in parts]
    name = attr.get("Name", "f")
    if missing:
        raise MeshError(f"{data.path}: function '{name}' lacks DataItems {missing}")
    fam = {"CG": "Lagrange", "Q": "Q", "DG": "Discontinuous Lagrange", "DQ": "DQ"}.get(attr.get("ElementFamily", ""),
                                                                                   attr.get("ElementFamily", "?"))
    sig = f"FiniteElement('{fam}', {celltype}, {attr.get('ElementDegree', '?')})"
    vec = parts["vector"]
    return _Function(name, f"{data.path}:{name}", sig, parts["cells"], parts["cell_dofs"], parts["x_cell_dofs"],
                     [vec], None, n_dofs=int(np.prod(vec.shape)))


def _xdmf_collect(path: Path, data: _XdmfData) -> tuple[list[float | None], _MeshData, list[dict[str, _Function]]]:
    by_time: dict[float | None, dict[str, _Function]] = {}
    mesh: _MeshData | None = None
    for t, grid in _xdmf_steps(path):
        mesh = _xdmf_mesh(data, grid, mesh)
        for attr in _children(grid, "Attribute"):
            if attr.get("ItemType") == "FiniteElementFunction":
                fn = _xdmf_function(data, attr, mesh.celltype)
                by_time.setdefault(t, {})[fn.name] = fn
    if mesh is None:
        raise MeshError(f"{path}: no Grid in the XDMF file")
    times = sorted(by_time, key=lambda v: -np.inf if v is None else v)
    return times, mesh, [by_time[t] for t in times]


def read_dolfin_xdmf(path: Path, time: Any = None, **kw: Any) -> Mesh | list[Mesh]:
    """Read an XDMF checkpoint (``FiniteElementFunction`` attributes) with the HDF5 data it points to.

    Shapes
    ------
    ``points`` (n, 3); CG1 scalars (n,), vectors (n, d); DG0 fields per cell.
    """
    if kw:
        raise TypeError(f"read_dolfin_xdmf: unknown options {sorted(kw)}")
    data = _XdmfData(Path(path))
    try:
        times, md, fns = _xdmf_collect(Path(path), data)
        real = [t for t in times if t is not None]
        idx = select_times(path, real, time) if real else [None]
        out = []
        for i in idx or [None]:
            step = fns[times.index(real[i])] if i is not None else fns[-1]
            pd: dict[str, np.ndarray] = {}
            cd: dict[str, np.ndarray] = {}
            for fn in step.values():
                dm = _dof_map(fn, md)
                (pd if dm.loc == "point" else cd)[fn.name] = _values(fn.vectors[0], dm)
            m = _to_mesh(md, str(path)).with_fields(pd, cd)
            m.time = real[i] if i is not None else None
            out.append(m)
    finally:
        data.close()
    return out if time == "all" else out[0]


def probe_dolfin_xdmf(path: Path) -> dict[str, Any]:
    """Times and fields of an XDMF checkpoint (reads the dof maps, not the values)."""
    data = _XdmfData(Path(path))
    try:
        times, md, fns = _xdmf_collect(Path(path), data)
        pf: dict[str, Any] = {}
        cf: dict[str, Any] = {}
        for fn in (fns[-1] if fns else {}).values():
            dm = _dof_map(fn, md)
            (pf if dm.loc == "point" else cf)[fn.name] = {"shape": [] if dm.vs == 1 else [dm.vs],
                                                          "dtype": str(fn.vectors[0].dtype)}
        return {"times": [t for t in times if t is not None], "n_points": len(md.coordinates),
                "n_cells": len(md.topology), "cell_types": [_CELLS[md.celltype][0]], "point_fields": pf,
                "cell_fields": cf, "boundaries": []}
    finally:
        data.close()
