"""FEniCS / dolfin results: ``HDF5File`` meshes and functions, and XDMF checkpoints of function data.

The layout dolfin's ``HDF5File`` writes (read here with h5py, no dolfin needed):

* a mesh group (``/mesh``, any name): ``coordinates`` (n, gdim), ``topology`` (m, k) global vertex
  indices with a ``celltype`` attribute, ``cell_indices`` (m,) the global index of each row;
* a function group (``/u``): ``cell_dofs`` (flat) and ``x_cell_dofs`` (m + 1 offsets) the dof map,
  ``cells`` (m,) the global cell of each dof-map row, a ``signature`` attribute (the UFL element),
  and the values: ``vector_0`` (or ``vector`` from older dolfin). A time series written with
  ``write(u, name, t)`` has ``vector_0``, ``vector_1``, ... each with a ``timestamp`` attribute and a
  ``count`` attribute on the group.

Within a cell the local dofs of a vector element come component by component (all vertices of
component 0, then of component 1, ...), whatever the global numbering (dolfin interleaves and
permutes it). CG1 functions become point fields (value at vertex ``topology[c, j]`` component ``i``
is ``vector[cell_dofs[x_cell_dofs[r] + i * k + j]]``), DG0 functions cell fields; other elements are
an error naming the signature. The mapping is exact (no interpolation, no averaging) and checked:
a vertex that two cells give different dofs is an error.

Files: a ``.h5`` holding the mesh (and possibly functions) reads with the functions of its sibling
``.h5`` files on the same mesh (Oasis writes ``mesh.h5``, ``u.h5``, ``p.h5``); a ``.h5`` holding only
functions finds its mesh in the folder (or ``mesh=PATH``). XDMF files whose attributes are
``FiniteElementFunction`` (``XDMFFile.write_checkpoint``, which meshio cannot read) are claimed from
the xdmf reader (format ``dolfin-xdmf``) and read through the same dof-map rule, time series
included (simplex cells: the vertex order of quadrilateral/hexahedron checkpoints is not defined here).

This module reads the ``HDF5File`` cases and registers both formats; the XDMF checkpoint reader
lives in :mod:`meshops.io.dolfin_xdmf` (re-exported here) and the dof-map rule both use in
:mod:`meshops.io._dolfin_common`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from meshops.io._dolfin_common import _CELLS, _dof_map, _Function, _MeshData, _to_mesh, _values
from meshops.io._util import lazy_import, select_times
from meshops.io.dolfin_xdmf import is_dolfin_xdmf, probe_dolfin_xdmf, read_dolfin_xdmf
from meshops.io.registry import register_format
from meshops.mesh import Mesh, MeshError

log = logging.getLogger(__name__)

__all__ = ["is_dolfin_xdmf", "probe_dolfin", "probe_dolfin_xdmf", "read_dolfin", "read_dolfin_xdmf"]


def _str_attr(obj: Any, name: str) -> str:
    v = obj.attrs.get(name)
    if v is None:
        return ""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        v = v.ravel()[0]
        return v.decode() if isinstance(v, bytes) else str(v)
    return str(v)


def _is_mesh_group(g: Any) -> bool:
    return "coordinates" in g and "topology" in g and hasattr(g["topology"], "shape")


def _is_function_group(g: Any) -> bool:
    return all(k in g for k in ("cell_dofs", "x_cell_dofs", "cells")) and (
        "vector" in g or any(re.fullmatch(r"vector_\d+", k) for k in g))


def _groups(f: Any) -> tuple[list[str], list[str]]:
    """Names of the mesh groups and the function groups of an open h5py file."""
    import h5py

    meshes: list[str] = []
    funcs: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group):
            if _is_mesh_group(obj):
                meshes.append(name)
            elif _is_function_group(obj):
                funcs.append(name)

    if _is_mesh_group(f):
        meshes.append("")
    f.visititems(visit)
    return meshes, funcs


def _read_mesh_group(f: Any, name: str, where: str) -> _MeshData:
    g = f[name] if name else f
    top = g["topology"]
    celltype = _str_attr(top, "celltype") or _guess_celltype(top.shape[1], g["coordinates"].shape[1], where)
    if celltype not in _CELLS:
        raise MeshError(f"{where}: mesh '/{name}' has cell type '{celltype}' (supported: {sorted(_CELLS)})")
    topology = np.asarray(top[()], dtype=np.int64)
    coords = np.asarray(g["coordinates"][()], dtype=np.float64)
    ci = np.asarray(g["cell_indices"][()], dtype=np.int64).ravel() if "cell_indices" in g \
        else np.arange(len(topology), dtype=np.int64)
    return _MeshData(coords, topology, celltype, ci, f"{where}:/{name}")


def _guess_celltype(k: int, gdim: int, where: str) -> str:
    guess = {2: "interval", 3: "triangle", 8: "hexahedron"}.get(k)
    if guess is None and k == 4:
        guess = "tetrahedron" if gdim == 3 else "quadrilateral"
    if guess is None:
        raise MeshError(f"{where}: topology has {k} vertices per cell and no 'celltype' attribute")
    return guess


def _function_from_group(f: Any, name: str, where: str) -> _Function:
    g = f[name]
    series = sorted((int(k.split("_")[1]), k) for k in g if re.fullmatch(r"vector_\d+", k))
    if series:
        vectors = [g[k] for _, k in series]
        stamps = [v.attrs.get("timestamp") for v in vectors]
        times = None if all(s is None for s in stamps) and len(vectors) == 1 else \
            [float(np.asarray(s).ravel()[0]) if s is not None else float(i) for i, s in enumerate(stamps)]
    else:
        vectors, times = [g["vector"]], None
    return _Function(name.strip("/").replace("/", "_"), f"{where}:/{name}", _str_attr(g, "signature"),
                     g["cells"], g["cell_dofs"], g["x_cell_dofs"], vectors, times,
                     n_dofs=int(np.prod(vectors[0].shape)))


def _sibling_h5(path: Path) -> list[Path]:
    return sorted(p for p in path.parent.glob("*.h5") if p.resolve() != path.resolve())


class _Source:
    """The open h5 files of one case: a mesh and the functions defined on it."""

    def __init__(self, path: Path, mesh: str | Path | None = None) -> None:
        self.h5py = lazy_import("h5py", "reading dolfin HDF5 files")
        self.path = path
        self.files: list[Any] = []
        self.mesh: _MeshData | None = None
        self.functions: list[_Function] = []
        self._open_case(path, Path(mesh) if mesh is not None else None)

    def _open(self, p: Path) -> Any:
        f = self.h5py.File(p, "r")
        self.files.append(f)
        return f

    def _open_case(self, path: Path, mesh_path: Path | None) -> None:
        f = self._open(path)
        meshes, funcs = _groups(f)
        self.functions += [_function_from_group(f, g, str(path)) for g in funcs]
        if mesh_path is not None:
            mf = self._open(mesh_path)
            mm, _ = _groups(mf)
            if not mm:
                raise MeshError(f"{mesh_path}: no dolfin mesh group (coordinates + topology) in the file")
            self.mesh = _read_mesh_group(mf, mm[0], str(mesh_path))
        elif meshes:
            self.mesh = _read_mesh_group(f, meshes[0], str(path))
        if len(meshes) > 1:
            log.warning("%s: several mesh groups %s; using /%s", path, meshes, meshes[0])
        self._scan_siblings(path, need_mesh=self.mesh is None, add_functions=bool(meshes) and mesh_path is None)
        if self.mesh is None:
            raise MeshError(f"{path}: dolfin function file without a mesh: no mesh group (coordinates + topology) "
                            f"in it or in the .h5 files next to it; pass mesh=PATH")
        if not self.functions and not meshes:
            raise MeshError(f"{path}: no dolfin mesh or function groups in the file")

    def _scan_siblings(self, path: Path, need_mesh: bool, add_functions: bool) -> None:
        if not (need_mesh or add_functions):
            return
        for p in _sibling_h5(path):
            try:
                f = self.h5py.File(p, "r")
            except OSError:
                continue
            meshes, funcs = _groups(f)
            used = False
            if need_mesh and meshes and self.mesh is None:
                self.mesh = _read_mesh_group(f, meshes[0], str(p))
                used = True
            if add_functions and funcs:
                self.functions += [_function_from_group(f, g, str(p)) for g in funcs]
                used = True
            self.files.append(f) if used else f.close()

    def close(self) -> None:
        for f in self.files:
            f.close()

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _matching(functions: list[_Function], mesh: _MeshData) -> list[_Function]:
    """The functions whose dof map fits the mesh (sibling files on another mesh are skipped)."""
    m = len(mesh.topology)
    keep = []
    for fn in functions:
        if int(np.prod(fn.cells.shape)) == m:
            keep.append(fn)
        else:
            log.info("%s: %d cells, the mesh %s has %d: not read", fn.where, int(np.prod(fn.cells.shape)),
                     mesh.where, m)
    names = [fn.name for fn in keep]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise MeshError(f"{keep[0].where}: several functions named {dup} on one mesh")
    return keep


def _series_times(functions: list[_Function], where: str) -> list[float]:
    series = [fn for fn in functions if fn.times is not None]
    if not series:
        return []
    times = list(series[0].times or [])
    for fn in series[1:]:
        other = list(fn.times or [])
        if len(other) != len(times) or not np.allclose(other, times, rtol=1e-12, atol=0):
            raise MeshError(f"{fn.where}: time steps {other[:5]} differ from those of {series[0].where} {times[:5]}")
    return times


def _assemble(src: _Source, time: Any) -> Mesh | list[Mesh]:
    assert src.mesh is not None
    fns = _matching(src.functions, src.mesh)
    times = _series_times(fns, str(src.path))
    idx = select_times(src.path, times, time)
    base = _to_mesh(src.mesh, str(src.path))
    maps = {fn.name: _dof_map(fn, src.mesh) for fn in fns}
    out = []
    for i in idx or [None]:
        pd: dict[str, np.ndarray] = {}
        cd: dict[str, np.ndarray] = {}
        for fn in fns:
            vec = fn.vectors[-1] if fn.times is None or i is None else fn.vectors[i]
            (pd if maps[fn.name].loc == "point" else cd)[fn.name] = _values(vec, maps[fn.name])
        m = base.with_fields(pd, cd)
        m.time = times[i] if i is not None else None
        out.append(m)
    return out if time == "all" else out[0]


def read_dolfin(path: Path, time: Any = None, mesh: str | Path | None = None, **kw: Any) -> Mesh | list[Mesh]:
    """Read a dolfin ``HDF5File`` case (``.h5``): the mesh and its CG1 / DG0 functions.

    Parameters
    ----------
    path : path
        A ``.h5`` file with a mesh and/or functions.
    time : None, float, "all", "first", "latest"
        For time series (``vector_0``, ``vector_1``, ... with ``timestamp``).
    mesh : path, optional
        The ``.h5`` holding the mesh when ``path`` has only functions (default: found next to it).

    Shapes
    ------
    ``points`` (n, 3); CG1 scalars (n,), vectors (n, d); DG0 fields per cell.
    """
    path = Path(path)
    if kw:
        raise TypeError(f"read_dolfin: unknown options {sorted(kw)}")
    with _Source(path, mesh) as src:
        return _assemble(src, time)


def probe_dolfin(path: Path) -> dict[str, Any]:
    """Times, fields and sizes of a dolfin case without reading the function values."""
    path = Path(path)
    with _Source(path) as src:
        assert src.mesh is not None
        fns = _matching(src.functions, src.mesh)
        times = _series_times(fns, str(src.path))
        pf: dict[str, Any] = {}
        cf: dict[str, Any] = {}
        for fn in fns:
            dm = _dof_map(fn, src.mesh)
            entry = {"shape": [] if dm.vs == 1 else [dm.vs], "dtype": str(fn.vectors[0].dtype)}
            (pf if dm.loc == "point" else cf)[fn.name] = entry
        ctype, _ = _CELLS[src.mesh.celltype]
        return {"times": times, "n_points": len(src.mesh.coordinates), "n_cells": len(src.mesh.topology),
                "cell_types": [ctype], "point_fields": pf, "cell_fields": cf, "boundaries": []}


register_format("dolfin", [".h5"], read_dolfin, None, probe_dolfin)
register_format("dolfin-xdmf", [], read_dolfin_xdmf, None, probe_dolfin_xdmf, detect=is_dolfin_xdmf)
