"""Lossless conversion between VTK datasets (through pyvista) and :class:`Mesh`; VTP, PVTU and PVD.

Points keep their order. Unstructured-grid cells keep their order, split into blocks at each change
of type. Poly data cells are taken in VTK's own global order (verts, lines, polys, strips), so
cell fields line up; poly-lines and triangle strips are split into 2-point lines and triangles with
their cell values repeated (``field_data['vtk:split_cells']`` records the original cell of each).
Surface face-id arrays (``ModelFaceID``, ``CapID``, ``FaceID``, ...) become named boundary regions.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from meshops.io._util import lazy_import, select_times
from meshops.io.registry import register_format
from meshops.mesh import CellBlock, Mesh, MeshError

log = logging.getLogger(__name__)

#: VTK cell type id -> meshio cell type name.
VTK_TO_TYPE: dict[int, str] = {
    1: "vertex", 3: "line", 5: "triangle", 7: "polygon", 9: "quad", 10: "tetra", 12: "hexahedron",
    13: "wedge", 14: "pyramid", 21: "line3", 22: "triangle6", 23: "quad8", 24: "tetra10",
    25: "hexahedron20", 26: "wedge15", 27: "pyramid13", 28: "quad9", 29: "hexahedron27",
}
TYPE_TO_VTK = {v: k for k, v in VTK_TO_TYPE.items()}

#: Cell arrays on surfaces that name boundary regions (one region per distinct value).
FACE_ID_ARRAYS = ("ModelFaceID", "CapID", "FaceID", "FaceIDs", "face_id", "BoundaryID", "BC_FaceID")


def _blocks_from_runs(types: np.ndarray, offsets: np.ndarray, conn: np.ndarray) -> list[CellBlock]:
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
        blocks.append(CellBlock(str(types[s]), data))
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


def mesh_from_vtk(ds: Any, source: str | Path | None = None, *, face_ids: bool = True) -> Mesh:
    """A :class:`Mesh` from a pyvista/vtk dataset (unstructured grid, poly data, or anything castable).

    Shapes
    ------
    ``points`` (n, 3) float64 in dataset order; cells as blocks of (m, k) int64; fields as stored.
    """
    pv = lazy_import("pyvista", "reading VTK datasets")
    if not isinstance(ds, pv.DataSet):
        ds = pv.wrap(ds)
    where = str(source) if source else "<vtk dataset>"
    point_data = _arrays(ds.point_data)
    cell_data = _arrays(ds.cell_data)
    split_from: np.ndarray | None = None
    if isinstance(ds, pv.PolyData):
        blocks: list[CellBlock] = []
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
                blocks.append(CellBlock({"verts": "vertex", "lines": "line", "strips": "triangle"}[kind], data))
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
    mesh = Mesh(points=np.asarray(ds.points, dtype=np.float64), cells=blocks, point_data=point_data,
                cell_data=cell_data, source=str(source) if source else None)
    if split_from is not None:
        mesh.field_data["vtk:split_cells"] = split_from
    if mesh.n_points and mesh.topological_dim <= 2 and not np.any(mesh.points[:, 2]):
        mesh.dim = 2
    if face_ids:
        add_face_id_boundaries(mesh)
    return mesh


def add_face_id_boundaries(mesh: Mesh) -> Mesh:
    """On a surface mesh, turn each value of a face-id cell array into a named boundary region.

    Region names are ``"<array>_<value>"`` (e.g. ``ModelFaceID_3``); the array itself stays a
    cell field. Meshes with volume cells are left alone (their ids label regions, not boundaries).
    """
    if mesh.topological_dim != 2 or mesh.boundaries:
        return mesh
    for name in FACE_ID_ARRAYS:
        ids = mesh.cell_data.get(name)
        if ids is None or ids.ndim != 1 or ids.dtype.kind not in "iu":
            continue
        offsets = np.cumsum([0] + [len(b) for b in mesh.cells])
        for v in np.unique(ids):
            region = []
            for i, b in enumerate(mesh.cells):
                sel = ids[offsets[i]: offsets[i + 1]] == v
                if sel.any():
                    region.append(CellBlock(b.type, b.data[sel]))
            mesh.boundaries[f"{name}_{int(v)}"] = region
    return mesh


def mesh_to_vtk(mesh: Mesh, *, poly: bool = False) -> Any:
    """A pyvista ``UnstructuredGrid`` (or ``PolyData`` with ``poly=True``) with the mesh's fields.

    For poly data the blocks must already be in VTK's order (vertices, lines, then faces), else
    the cell order would change: that raises :class:`MeshError`.
    """
    pv = lazy_import("pyvista", "writing VTK datasets")
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


class _VtkErrors:
    """Collects errors and warnings that vtk would otherwise print, so they become exceptions."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __enter__(self) -> _VtkErrors:
        import vtk

        self._out = vtk.vtkOutputWindow.GetInstance()
        self._obs = vtk.vtkStringOutputWindow()
        vtk.vtkOutputWindow.SetInstance(self._obs)
        self._verb = vtk.vtkLogger.GetCurrentVerbosityCutoff()
        vtk.vtkLogger.SetStderrVerbosity(vtk.vtkLogger.VERBOSITY_OFF)
        return self

    def __exit__(self, *exc: Any) -> None:
        import vtk

        text = self._obs.GetOutput()
        vtk.vtkOutputWindow.SetInstance(self._out)
        vtk.vtkLogger.SetStderrVerbosity(self._verb)
        self.messages = [ln.strip() for ln in text.splitlines() if "ERROR" in ln or "Error" in ln]


def read_with_vtk(path: Path, **kw: Any) -> Mesh:
    """Read any file pyvista knows into a :class:`Mesh`, turning vtk's printed errors into MeshError."""
    pv = lazy_import("pyvista", f"reading {Path(path).suffix}")
    import warnings

    with _VtkErrors() as errs, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyvista repeats vtk's error as a warning; we raise it below
        ds = pv.read(str(path))
    if errs.messages:
        raise MeshError(f"{path}: vtk could not read it: {errs.messages[0][:300]}")
    if isinstance(ds, pv.MultiBlock):
        ds = ds.combine(merge_points=False)
    if ds is None or ds.n_points == 0:
        raise MeshError(f"{path}: the mesh is empty (0 points) or the file is unreadable")
    return mesh_from_vtk(ds, path, **kw)


# ------------------------------------------------------------------ VTP
def read_vtp(path: Path, time: Any = None, **kw: Any) -> Mesh:
    select_times(path, [], None if time in (None, "all") else time)
    return read_with_vtk(path)


def write_vtp(mesh: Mesh, path: Path, **kw: Any) -> None:
    obj = mesh_to_vtk(mesh, poly=True)
    lazy_import("pyvista", "writing .vtp")
    obj.save(str(path), binary=True)


# ------------------------------------------------------------------ PVTU (read only, pieces concatenated)
def read_pvtu(path: Path, time: Any = None, **kw: Any) -> Mesh:
    select_times(path, [], None if time in (None, "all") else time)
    text = path.read_text(errors="replace")
    for src in re.findall(r'<Piece\b[^>]*Source\s*=\s*"([^"]+)"', text):
        if not (path.parent / src).exists():
            raise MeshError(f"{path}: piece '{src}' is missing")
    return read_with_vtk(path)


def probe_pvtu(path: Path) -> dict[str, Any]:
    from meshops.io.meshio_formats import probe_vtk_xml

    info = probe_vtk_xml(path)
    n_pts = n_cells = 0
    for src in re.findall(r'<Piece\b[^>]*Source\s*=\s*"([^"]+)"', path.read_text(errors="replace")):
        sub = probe_vtk_xml(path.parent / src)
        n_pts += sub["n_points"]
        n_cells += sub["n_cells"]
    info["n_points"], info["n_cells"] = n_pts, n_cells
    return info


# ------------------------------------------------------------------ PVD (a time series of VTK XML files)
def pvd_entries(path: Path) -> list[tuple[float, Path]]:
    """(time, file) of each ``<DataSet>`` in a ParaView collection, in file order."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise MeshError(f"{path}: not a valid .pvd collection ({e})") from e
    out = []
    for ds in root.iter("DataSet"):
        f = ds.get("file")
        if f is None:
            continue
        out.append((float(ds.get("timestep", len(out))), path.parent / f))
    return out


def read_pvd(path: Path, time: Any = None, **kw: Any) -> Mesh | list[Mesh]:
    from meshops.io import read

    entries = pvd_entries(path)
    idx = select_times(path, [t for t, _ in entries], time)
    out = []
    for i in idx:
        t, f = entries[i]
        m = read(f, **kw)
        assert isinstance(m, Mesh)
        m.time = t
        out.append(m)
    if not out:
        raise MeshError(f"{path}: the collection lists no data sets")
    return out if time == "all" else out[0]


def probe_pvd(path: Path) -> dict[str, Any]:
    from meshops.io import probe

    entries = pvd_entries(path)
    if not entries:
        raise MeshError(f"{path}: the collection lists no data sets")
    info = probe(entries[-1][1])
    info["times"] = [t for t, _ in entries]
    info["files"] = [str(f) for _, f in entries]
    return info


def write_series(meshes: list[Mesh], path: str | Path, *, times: list[float] | None = None,
                 ext: str = ".vtu") -> Path:
    """Write a time series as one file per step plus a ``.pvd`` collection (each file atomic).

    Shapes
    ------
    ``meshes`` : list of T meshes; ``times`` : (T,) (default: each mesh's ``time`` or its index).
    """
    from meshops.io import write
    from meshops.io._util import atomic_path

    path = Path(path)
    if path.suffix.lower() != ".pvd":
        raise MeshError(f"{path}: a time series is written as a .pvd collection")
    if times is None:
        times = [float(m.time) if m.time is not None else float(i) for i, m in enumerate(meshes)]
    if len(times) != len(meshes):
        raise MeshError(f"{path}: {len(meshes)} meshes but {len(times)} times")
    root = ET.Element("VTKFile", type="Collection", version="0.1")
    coll = ET.SubElement(root, "Collection")
    for i, (m, t) in enumerate(zip(meshes, times, strict=True)):
        name = f"{path.stem}_{i:05d}{ext}"
        write(m, path.parent / name)
        ET.SubElement(coll, "DataSet", timestep=repr(float(t)), group="", part="0", file=name)
    with atomic_path(path) as tmp:
        ET.ElementTree(root).write(tmp, xml_declaration=True, encoding="utf-8")
    return path


def write_pvd(mesh: Mesh, path: Path, **kw: Any) -> None:
    """A one-step collection (use :func:`write_series` for several)."""
    raise MeshError(f"{path}: write a time series with meshops.io.write_series(meshes, path)")


def _probe_xml(path: Path) -> dict[str, Any]:
    from meshops.io.meshio_formats import probe_vtk_xml

    return probe_vtk_xml(path)


_SURF = {"vertex", "line", "triangle", "quad", "polygon"}
register_format("vtp", [".vtp"], read_vtp, write_vtp, _probe_xml, stores=("point_data", "cell_data", "dtypes", "mixed"),
                cell_types=_SURF)
register_format("pvtu", [".pvtu"], read_pvtu, None, probe_pvtu)
register_format("pvd", [".pvd"], read_pvd, None, probe_pvd)
