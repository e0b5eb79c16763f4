"""VTK-based formats: VTP, PVTU and PVD, and reading anything vtk can read.

The Mesh <-> VTK dataset conversion itself lives in :mod:`meshops.mesh_vtk` (below
:mod:`meshops.mesh`, which assembles the Mesh) and is re-exported here, with the VTK-XML header
probe that the ``.vtu`` format (in :mod:`meshops.io.meshio_formats`) uses too.

Points and cells keep their order (see :mod:`meshops.mesh_vtk` for the poly data rules).
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from meshops.io._util import atomic_path, lazy_import, select_times
from meshops.io.api import probe, read, write
from meshops.io.registry import register_format
from meshops.mesh import FACE_ID_ARRAYS, Mesh, MeshError, add_face_id_boundaries  # noqa: F401 - re-exported
from meshops.mesh_vtk import TYPE_TO_VTK, VTK_TO_TYPE, mesh_to_vtk  # noqa: F401 - re-exported

log = logging.getLogger(__name__)


def mesh_from_vtk(ds: Any, source: str | Path | None = None, *, face_ids: bool = True) -> Mesh:
    """A :class:`Mesh` from a pyvista/vtk dataset (see :meth:`Mesh.from_pyvista`)."""
    return Mesh.from_pyvista(ds, None if source is None else str(source), face_ids=face_ids)


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


def read_vtk_step(reader: Any, times: list[float], i: int | None, where: Any, what: str) -> Any:
    """``reader.read()`` at time index ``i`` (``None``: the reader's current time).

    vtk's printed errors become a :class:`MeshError` naming ``where`` and the ``what`` reader.
    """
    with _VtkErrors() as errs:
        if i is not None:
            reader.set_active_time_value(times[i])
        mb = reader.read()
    if errs.messages:
        raise MeshError(f"{where}: vtk's {what} reader failed: {errs.messages[0][:300]}")
    return mb


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


# ------------------------------------------------------------------ VTK XML header probe
def probe_vtk_xml(path: Path) -> dict[str, Any]:
    """Sizes and fields of a VTK XML file from its header, without decoding the arrays."""
    with open(path, "rb") as f:
        head = f.read(4 << 20)
    cut = head.find(b"<AppendedData")
    text = head[: cut if cut >= 0 else len(head)].decode("latin-1")
    if "<VTKFile" not in text:
        raise MeshError(f"{path}: not a VTK XML file (no <VTKFile> element)")
    out: dict[str, Any] = {"times": []}
    piece = re.findall(r"<Piece\b([^>]*)>", text)
    n_pts = n_cells = 0
    for attrs in piece:
        a = dict(re.findall(r'(\w+)="([^"]*)"', attrs))
        n_pts += int(a.get("NumberOfPoints", 0))
        n_cells += sum(int(a.get(k, 0)) for k in
                       ("NumberOfCells", "NumberOfVerts", "NumberOfLines", "NumberOfPolys", "NumberOfStrips"))
    out["n_points"], out["n_cells"] = n_pts, n_cells
    vtk_types = {"Float32": "float32", "Float64": "float64", "Int8": "int8", "UInt8": "uint8",
                 "Int16": "int16", "UInt16": "uint16", "Int32": "int32", "UInt32": "uint32",
                 "Int64": "int64", "UInt64": "uint64", "String": "str"}
    for loc, tag in (("point_fields", "PointData"), ("cell_fields", "CellData")):
        fields: dict[str, Any] = {}
        for sec in re.findall(rf"<{tag}\b[^>]*>(.*?)</{tag}>", text, flags=re.S) + re.findall(
                rf"<P{tag}\b[^>]*>(.*?)</P{tag}>", text, flags=re.S):
            for attrs in re.findall(r"<P?DataArray\b([^>]*)>", sec):
                a = dict(re.findall(r'(\w+)="([^"]*)"', attrs))
                nc = int(a.get("NumberOfComponents", 1))
                fields[a.get("Name", "?")] = {"shape": [] if nc == 1 else [nc],
                                              "dtype": vtk_types.get(a.get("type", ""), a.get("type", "?"))}
        out[loc] = fields
    return out


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


_SURF = {"vertex", "line", "triangle", "quad", "polygon"}
register_format("vtp", [".vtp"], read_vtp, write_vtp, probe_vtk_xml, stores=("point_data", "cell_data", "dtypes", "mixed"),
                cell_types=_SURF)
register_format("pvtu", [".pvtu"], read_pvtu, None, probe_pvtu)
register_format("pvd", [".pvd"], read_pvd, None, probe_pvd)
