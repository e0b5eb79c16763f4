"""Formats read and written through meshio: .xdmf, .stl, .obj, .ply (VTK formats: :mod:`meshops.io.vtkconv`).

meshio keeps points and cells in file order (its STL reader identifies bitwise-identical facet
corners, in order of first appearance, because STL has no vertex list). Arrays come back in native
byte order with their dtypes.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from meshops.cells import MESHIO_ORDER
from meshops.io._util import lazy_import, select_times
from meshops.io.api import describe_loaded
from meshops.io.registry import register_format
from meshops.io.vtkconv import read_with_vtk
from meshops.mesh import CellBlock, Mesh, MeshError

log = logging.getLogger(__name__)


def _native(a: Any) -> np.ndarray:
    a = np.asarray(a)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a


_SHAPE_KEY = "meshops:shape:"


def _reorder(cell_type: str, data: np.ndarray) -> np.ndarray:
    """meshio's node order <-> VTK's (the canonical one); the permutations are involutions."""
    perm = MESHIO_ORDER.get(cell_type)
    return data if perm is None or data.shape[1] != len(perm) else data[:, perm]


def mesh_from_meshio(m: Any, path: Path | str | None, *, drop: tuple[str, ...] = ()) -> Mesh:
    """A :class:`Mesh` from a ``meshio.Mesh``: blocks in order, arrays in native byte order.

    Shapes
    ------
    ``m.points`` (n, 2|3) -> ``points`` (n, 3) float64; per-block cell data concatenated to (n_cells, ...).
    """
    blocks = [CellBlock(c.type, _reorder(c.type, _native(c.data))) for c in m.cells]
    cell_data: dict[str, np.ndarray] = {}
    for k, per_block in m.cell_data.items():
        if k in drop:
            continue
        if len(per_block) != len(blocks):
            raise MeshError(f"{path}: cell field '{k}' has {len(per_block)} blocks but the mesh has {len(blocks)}")
        cell_data[k] = np.concatenate([_native(a) for a in per_block]) if blocks else np.zeros(0)
    point_data = {k: _native(v) for k, v in m.point_data.items() if k not in drop}
    field_data = {}
    for k, v in (m.field_data or {}).items():
        # Shapes of tensor fields (n, a, b, ...), which the formats store flattened to (n, a*b...).
        if k.startswith(_SHAPE_KEY):
            loc, _, name = k[len(_SHAPE_KEY):].partition(":")
            target = point_data if loc == "point" else cell_data
            if name in target:
                target[name] = target[name].reshape((len(target[name]), *np.asarray(v).astype(int).ravel()))
        else:
            field_data[k] = v
    pts = _native(m.points)
    mesh = Mesh(points=pts, cells=blocks, point_data=point_data, cell_data=cell_data,
                source=str(path) if path is not None else None, field_data=field_data)
    if pts.ndim == 2 and pts.shape[1] == 2:
        mesh.dim = 2
    elif mesh.n_points and mesh.topological_dim <= 2 and not np.any(mesh.points[:, 2]):
        mesh.dim = 2
    return mesh


def mesh_to_meshio(mesh: Mesh, *, points3: bool = False) -> Any:
    """A ``meshio.Mesh`` holding the same points, blocks and fields (nothing copied needlessly)."""
    meshio = lazy_import("meshio", "writing this format")
    pts = mesh.points if (points3 or mesh.dim == 3) else mesh.points[:, :2]
    cells = [meshio.CellBlock(b.type, _reorder(b.type, b.data)) for b in mesh.cells]
    offsets = np.cumsum([0] + [len(b) for b in mesh.cells])
    field_data: dict[str, Any] = {k: v for k, v in mesh.field_data.items()
                                  if isinstance(v, np.ndarray) and not k.startswith("vtk:")}
    point_data = {}
    for k, v in mesh.point_data.items():
        if v.ndim > 2:
            field_data[f"{_SHAPE_KEY}point:{k}"] = np.array(v.shape[1:], dtype=np.int32)
            v = v.reshape(len(v), -1)
        point_data[k] = v
    cell_data = {}
    for k, v in mesh.cell_data.items():
        if v.ndim > 2:
            field_data[f"{_SHAPE_KEY}cell:{k}"] = np.array(v.shape[1:], dtype=np.int32)
            v = v.reshape(len(v), -1)
        cell_data[k] = [v[offsets[i]: offsets[i + 1]] for i in range(len(mesh.cells))]
    return meshio.Mesh(pts, cells, point_data=point_data, cell_data=cell_data, field_data=field_data)


# ------------------------------------------------------------------ XDMF (single state or time series)
def _xdmf_times(path: Path) -> list[float]:
    text = path.read_text(errors="replace")
    if not re.search(r'CollectionType\s*=\s*"Temporal"', text):
        return []
    return [float(v) for v in re.findall(r'<Time\b[^>]*Value\s*=\s*"([^"]+)"', text)]


def read_xdmf(path: Path, time: Any = None, **kw: Any) -> Mesh | list[Mesh]:
    meshio = lazy_import("meshio", "reading .xdmf")
    times = _xdmf_times(path)
    if not times:
        select_times(path, [], None if time in (None, "all") else time)
        return mesh_from_meshio(meshio.xdmf.read(str(path)), path)
    idx = select_times(path, times, time)
    out = []
    with meshio.xdmf.TimeSeriesReader(str(path)) as reader:
        points, cells = reader.read_points_cells()
        base = meshio.Mesh(points, cells)
        for i in idx:
            t, pd, cd = reader.read_data(i)
            m = mesh_from_meshio(meshio.Mesh(base.points, base.cells, point_data=pd, cell_data=cd), path)
            m.time = float(t)
            out.append(m)
    return out if time == "all" else out[0]


def probe_xdmf(path: Path) -> dict[str, Any]:
    times = _xdmf_times(path)
    m = read_xdmf(path, time=None)
    assert isinstance(m, Mesh)
    return describe_loaded(m, times)


def write_xdmf(mesh: Mesh, path: Path, **kw: Any) -> None:
    meshio = lazy_import("meshio", "writing .xdmf")
    # XML data inline: one self-contained file (the HDF5 variant would write a second file).
    meshio.xdmf.write(str(path), mesh_to_meshio(mesh, points3=True), data_format="XML")


# ------------------------------------------------------------------ STL, OBJ, PLY
def read_stl(path: Path, time: Any = None, **kw: Any) -> Mesh:
    meshio = lazy_import("meshio", "reading .stl")
    select_times(path, [], None if time in (None, "all") else time)
    m = meshio.stl.read(str(path))
    return mesh_from_meshio(m, path, drop=("facet_normals",))


def write_stl(mesh: Mesh, path: Path, *, binary: bool = True, **kw: Any) -> None:
    meshio = lazy_import("meshio", "writing .stl")
    if binary:
        lost = np.abs(mesh.points.astype(np.float32).astype(np.float64) - mesh.points).max(initial=0.0)
        if lost > 0:
            log.warning("%s: binary STL stores float32 coordinates (largest rounding %.3g)", path, lost)
    tri = mesh.cells_of_type("triangle")
    first = np.unique(tri.ravel(), return_index=True)[1]
    if len(first) != mesh.n_points or np.any(np.diff(tri.ravel()[np.sort(first)]) < 0):
        log.warning("%s: STL has no vertex list; points unused by triangles are dropped and the "
                    "order becomes the order of first use", path)
    m = meshio.Mesh(mesh.points, [meshio.CellBlock("triangle", tri)])
    meshio.stl.write(str(path), m, binary=binary)


def read_obj(path: Path, time: Any = None, **kw: Any) -> Mesh:
    meshio = lazy_import("meshio", "reading .obj")
    select_times(path, [], None if time in (None, "all") else time)
    try:
        m = meshio.obj.read(str(path))
        if not len(m.points):
            raise ValueError("no vertices")
        mesh = mesh_from_meshio(m, path)
    except Exception as e:  # separately indexed normals/texture coordinates: VTK's reader, as pyvista
        log.debug("%s: meshio could not read it (%s), reading with vtk", path, e)
        return read_with_vtk(path)
    gid = mesh.cell_data.get("obj:group_ids")
    if gid is not None and np.all(gid == -1):  # -1: the face is in no "g" group
        del mesh.cell_data["obj:group_ids"]
    return mesh


def write_obj(mesh: Mesh, path: Path, **kw: Any) -> None:
    meshio = lazy_import("meshio", "writing .obj")
    m = meshio.Mesh(mesh.points, [meshio.CellBlock(b.type, b.data) for b in mesh.cells])
    meshio.obj.write(str(path), m)


def read_ply(path: Path, time: Any = None, **kw: Any) -> Mesh:
    """PLY vertex properties ``name_0 .. name_{k-1}`` (as the writer splits vectors) are joined again."""
    meshio = lazy_import("meshio", "reading .ply")
    select_times(path, [], None if time in (None, "all") else time)
    try:
        mesh = mesh_from_meshio(meshio.ply.read(str(path)), path)
    except Exception as e:  # extra elements (texture vertices, ...): VTK's reader, as pyvista
        log.debug("%s: meshio could not read it (%s), reading with vtk", path, e)
        return read_with_vtk(path)
    pd = mesh.point_data
    names = list(pd)
    out: dict[str, np.ndarray] = {}
    i = 0
    while i < len(names):
        m = re.fullmatch(r"(.+)_0", names[i])
        if m:
            base, k = m.group(1), 1
            while i + k < len(names) and names[i + k] == f"{base}_{k}" and pd[names[i + k]].dtype == pd[names[i]].dtype:
                k += 1
            if k > 1 and base not in pd:
                out[base] = np.stack([pd[f"{base}_{j}"] for j in range(k)], axis=1)
                i += k
                continue
        out[names[i]] = pd[names[i]]
        i += 1
    mesh.point_data = out
    return mesh


def write_ply(mesh: Mesh, path: Path, *, binary: bool = True, **kw: Any) -> None:
    """Vector point fields (n, k) are written as properties ``name_0 .. name_{k-1}``."""
    meshio = lazy_import("meshio", "writing .ply")
    pd: dict[str, np.ndarray] = {}
    for k, v in mesh.point_data.items():
        if v.ndim > 2:
            raise MeshError(f"{path}: PLY stores scalar or vector point fields; '{k}' has shape {v.shape}")
        if v.dtype in (np.int64, np.uint64):
            if v.size and (v.max() > np.iinfo(np.int32).max or v.min() < np.iinfo(np.int32).min):
                raise MeshError(f"{path}: PLY has no 64-bit integers and field '{k}' holds values past int32")
            log.warning("%s: PLY has no 64-bit integers, field '%s' is written as int32", path, k)
            v = v.astype(np.int32)
        if v.ndim == 2:
            for j in range(v.shape[1]):
                pd[f"{k}_{j}"] = np.ascontiguousarray(v[:, j])
        else:
            pd[k] = v
    m = meshio.Mesh(mesh.points, [meshio.CellBlock(b.type, b.data) for b in mesh.cells], point_data=pd)
    meshio.ply.write(str(path), m, binary=binary)


ALL = ("point_data", "cell_data", "dtypes", "mixed", "volume")
SURFACE_TYPES = {"triangle", "quad", "polygon"}

register_format("xdmf", [".xdmf", ".xmf"], read_xdmf, write_xdmf, probe_xdmf, stores=ALL)
register_format("stl", [".stl"], read_stl, write_stl, stores=(), cell_types={"triangle"})
register_format("obj", [".obj"], read_obj, write_obj, stores=("mixed",), cell_types=SURFACE_TYPES)
register_format("ply", [".ply"], read_ply, write_ply, stores=("point_data", "dtypes", "mixed"),
                cell_types=SURFACE_TYPES)
