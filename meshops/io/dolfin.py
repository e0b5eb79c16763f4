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
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from meshops.io._util import lazy_import, select_times
from meshops.io.registry import register_format
from meshops.mesh import CellBlock, Mesh, MeshError

log = logging.getLogger(__name__)

__all__ = ["is_dolfin_xdmf", "probe_dolfin", "probe_dolfin_xdmf", "read_dolfin", "read_dolfin_xdmf"]

_CELLS = {"interval": ("line", 2), "triangle": ("triangle", 3), "tetrahedron": ("tetra", 4),
          "quadrilateral": ("quad", 4), "hexahedron": ("hexahedron", 8)}
# dolfin orders quadrilateral/hexahedron vertices lexicographically; VTK goes around the faces
_TO_VTK = {"quad": [0, 1, 3, 2], "hexahedron": [0, 1, 3, 2, 4, 5, 7, 6]}


@dataclass
class _MeshData:
    coordinates: np.ndarray          # (n, gdim) float64
    topology: np.ndarray             # (m, k) int64, dolfin vertex order
    celltype: str                    # dolfin name
    cell_indices: np.ndarray         # (m,) global index of each topology row
    where: str


@dataclass
class _Function:
    name: str
    where: str
    signature: str
    cells: Any                       # lazy datasets (h5py) or arrays
    cell_dofs: Any
    x_cell_dofs: Any
    vectors: list[Any]               # one dataset per time
    times: list[float] | None        # None: one state, no timestamp
    n_dofs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


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


def _element(fn: _Function, k: int, dpc: np.ndarray) -> tuple[str, int]:
    """``("point" | "cell", value size)`` from the signature (or, without one, the dofs per cell)."""
    sig = fn.signature
    dpc0 = int(dpc[0]) if len(dpc) else 0
    if len(dpc) and not np.all(dpc == dpc0):
        raise MeshError(f"{fn.where}: cells have different numbers of dofs ({sorted(set(dpc.tolist()))[:5]}); "
                        "only CG1 and DG0 functions are read")
    if sig:
        m = re.search(r"FiniteElement\('([^']+)',\s*[A-Za-z]+\d?,\s*(\d+)", sig)
        if not m:
            raise MeshError(f"{fn.where}: element '{sig}' is not supported (CG1 and DG0 only)")
        family, degree = m.group(1), int(m.group(2))
        if family in ("Lagrange", "CG", "Q") and degree == 1:
            loc = "point"
        elif family in ("Discontinuous Lagrange", "DG", "DQ") and degree == 0:
            loc = "cell"
        else:
            raise MeshError(f"{fn.where}: element '{sig}' ({family} degree {degree}) is not supported; "
                            "meshops reads CG1 (vertex) and DG0 (cell) functions")
        per = k if loc == "point" else 1
        if dpc0 % per:
            raise MeshError(f"{fn.where}: {dpc0} dofs per cell do not fit element '{sig}' on {k}-vertex cells")
        return loc, dpc0 // per
    if dpc0 % k == 0:
        return "point", dpc0 // k
    raise MeshError(f"{fn.where}: {dpc0} dofs per cell on {k}-vertex cells and no 'signature' attribute: "
                    "cannot tell the element")


def _rows_for(fn_cells: np.ndarray, mesh: _MeshData, where: str) -> np.ndarray:
    """The topology row of each dof-map row (via the global cell indices)."""
    order = np.argsort(mesh.cell_indices, kind="stable")
    pos = np.searchsorted(mesh.cell_indices, fn_cells, sorter=order)
    pos = np.clip(pos, 0, len(order) - 1)
    rows = order[pos]
    bad = mesh.cell_indices[rows] != fn_cells
    if np.any(bad):
        c = int(fn_cells[np.flatnonzero(bad)[0]])
        raise MeshError(f"{where}: the dof map names cell {c}, which the mesh {mesh.where} does not have")
    return rows


@dataclass
class _DofMap:
    loc: str                 # "point" or "cell"
    vs: int                  # value size
    target: np.ndarray       # (n_points or n_cells, vs) int64: the dof holding each value


def _dof_map(fn: _Function, mesh: _MeshData) -> _DofMap:
    cells = np.asarray(fn.cells[()], dtype=np.int64).ravel()
    x = np.asarray(fn.x_cell_dofs[()], dtype=np.int64).ravel()
    dofs = np.asarray(fn.cell_dofs[()], dtype=np.int64).ravel()
    m, k = mesh.topology.shape
    if len(cells) != m or len(x) != m + 1:
        raise MeshError(f"{fn.where}: dof map for {len(cells)} cells ({len(x)} offsets) but the mesh "
                        f"{mesh.where} has {m} cells")
    dpc = np.diff(x)
    loc, vs = _element(fn, k, dpc)
    if x[-1] - x[0] != len(dofs) or np.any(dpc < 0):
        raise MeshError(f"{fn.where}: x_cell_dofs runs {x[0]}..{x[-1]} but cell_dofs has {len(dofs)} entries")
    rows = _rows_for(cells, mesh, fn.where)
    if len(dofs) and (dofs.min() < 0 or dofs.max() >= fn.n_dofs):
        bad = int(dofs.max() if dofs.max() >= fn.n_dofs else dofs.min())
        raise MeshError(f"{fn.where}: cell_dofs names dof {bad} but the vector has {fn.n_dofs} values")
    per_cell = dofs[(x[:-1, None] - x[0]) + np.arange(int(dpc[0]) if m else 0)[None, :]]   # (m, dpc)
    if loc == "cell":
        target = np.empty((m, vs), dtype=np.int64)
        target[rows] = per_cell.reshape(m, vs)
        return _DofMap(loc, vs, target)
    blocks = per_cell.reshape(m, vs, k)                     # component-major within a cell
    verts = mesh.topology[rows]                             # (m, k)
    n = len(mesh.coordinates)
    target = np.full((n, vs), -1, dtype=np.int64)
    target[verts.ravel()] = blocks.transpose(0, 2, 1).reshape(m * k, vs)
    if np.any(target[verts.ravel()] != blocks.transpose(0, 2, 1).reshape(m * k, vs)):
        raise MeshError(f"{fn.where}: two cells give one vertex different dofs: not a continuous (CG1) function")
    if np.any(target < 0):
        v = int(np.flatnonzero((target < 0).any(axis=1))[0])
        raise MeshError(f"{fn.where}: vertex {v} of {mesh.where} lies in no cell, so it has no value")
    return _DofMap(loc, vs, target)


def _values(vec: Any, dm: _DofMap) -> np.ndarray:
    v = np.asarray(vec[()]).ravel()
    out = v[dm.target]
    return out[:, 0] if dm.vs == 1 else out


def _to_mesh(md: _MeshData, source: str) -> Mesh:
    ctype, _ = _CELLS[md.celltype]
    top = md.topology[:, _TO_VTK[ctype]] if ctype in _TO_VTK else md.topology
    gdim = md.coordinates.shape[1]
    pts = np.zeros((len(md.coordinates), 3))
    pts[:, :gdim] = md.coordinates
    return Mesh(pts, [CellBlock(ctype, top)], dim=3 if gdim == 3 else 2, source=source)


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


register_format("dolfin", [".h5"], read_dolfin, None, probe_dolfin)
register_format("dolfin-xdmf", [], read_dolfin_xdmf, None, probe_dolfin_xdmf, detect=is_dolfin_xdmf)
