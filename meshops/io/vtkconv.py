"""VTK-based formats: VTP, PVTU and PVD, and reading anything vtk can read.

The Mesh <-> VTK dataset conversion itself lives in :mod:`meshops.mesh_vtk` (so that
:class:`~meshops.mesh.Mesh` can use it without importing the io layer) and is re-exported here.

Points and cells keep their order (see :mod:`meshops.mesh_vtk` for the poly data rules).
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from meshops.io._util import lazy_import, select_times
from meshops.io.registry import register_format
from meshops.mesh import Mesh, MeshError
from meshops.mesh_vtk import (  # noqa: F401 - re-exported for the readers and writers
    FACE_ID_ARRAYS,
    TYPE_TO_VTK,
    VTK_TO_TYPE,
    add_face_id_boundaries,
    mesh_from_vtk,
    mesh_to_vtk,
)

log = logging.getLogger(__name__)


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
