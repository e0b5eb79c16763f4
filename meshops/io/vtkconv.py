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
from urllib.parse import unquote

import numpy as np

from meshops.io._util import atomic_path, lazy_import, select_times
from meshops.io.api import probe, read, write
from meshops.io.registry import register_format
from meshops.mesh import FACE_ID_ARRAYS, CellBlock, Mesh, MeshError, add_face_id_boundaries  # noqa: F401 - re-exported
from meshops.mesh_vtk import TYPE_TO_VTK, VTK_TO_TYPE, is_poly, mesh_to_vtk  # noqa: F401 - re-exported

log = logging.getLogger(__name__)


def mesh_from_vtk(ds: Any, source: str | Path | None = None, *, face_ids: bool = True) -> Mesh:
    """A :class:`Mesh` from a pyvista/vtk dataset (see :meth:`Mesh.from_pyvista`)."""
    return Mesh.from_pyvista(ds, None if source is None else str(source), face_ids=face_ids)


class _Collect(logging.Handler):
    """Error records that pyvista's VTK observer sends to the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.pathname.endswith("observers.py"):
            self.records.append(record.getMessage())


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
        self._log = _Collect()
        logging.getLogger().addHandler(self._log)
        return self

    def __exit__(self, *exc: Any) -> None:
        import vtk

        logging.getLogger().removeHandler(self._log)
        text = self._obs.GetOutput() + "".join(f"\nERROR: {m}" for m in self._log.records)
        vtk.vtkOutputWindow.SetInstance(self._out)
        vtk.vtkLogger.SetStderrVerbosity(self._verb)
        # Keep each whole error block: VTK's first line names its own source file and line, the
        # following ones the reader, the file and what is wrong.
        blocks = re.split(r"\n(?=\S*(?:ERROR|Warning|WARNING|Error))", text.strip())
        msgs = [re.sub(r" \(0x[0-9a-f]+\)", "", " ".join(b.split())) for b in blocks if "ERROR" in b or "Error" in b]
        own = [m for m in msgs if "vtkExecutive" not in m and "vtkCompositeDataPipeline" not in m]
        self.messages = own or msgs


def read_vtk_step(reader: Any, times: list[float], i: int | None, where: Any, what: str) -> Any:
    """``reader.read()`` at time index ``i`` (``None``: the reader's current time).

    vtk's printed errors become a :class:`MeshError` naming ``where`` and the ``what`` reader.
    """
    with _VtkErrors() as errs:
        if i is not None:
            reader.set_active_time_value(times[i])
        mb = reader.read()
    if errs.messages:
        raise MeshError(f"{where}: vtk's {what} reader failed: {' | '.join(errs.messages)[:1000]}")
    return mb


def _meshio_size_error(path: Path) -> None:
    """When VTK refuses a .vtu/.vtk, meshio's parser may say which field has the wrong length."""
    if Path(path).suffix.lower() not in (".vtu", ".vtk"):
        return
    try:
        meshio = lazy_import("meshio", "checking a VTK file")
        (meshio.vtu if Path(path).suffix.lower() == ".vtu" else meshio.vtk).read(str(path))
    except (Exception, SystemExit) as e:
        m = re.search(r'len\((points|cells)\) = (\d+), but len\((point|cell)_data\["(.+?)"\]\) = (\d+)', str(e))
        if m:
            loc = m.group(3)
            raise MeshError(f"{path}: {loc} field '{m.group(4)}' has {m.group(5)} values but the mesh has "
                            f"{m.group(2)} {loc}s") from None


def _kind(path: Path) -> str:
    ext = Path(path).suffix.lower().lstrip(".")
    return "legacy VTK" if ext == "vtk" else ext or "a VTK file"


def read_dataset(path: Path) -> Any:
    """``pyvista.read(path)`` with vtk's printed errors raised as one :class:`MeshError` (all lines kept)."""
    pv = lazy_import("pyvista", f"reading {Path(path).suffix}")
    import warnings

    with _VtkErrors() as errs, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyvista repeats vtk's error as a warning; we raise it below
        try:
            ds = pv.read(str(path))
        except Exception as e:
            raise MeshError(f"{path}: cannot read as {_kind(path)} ({type(e).__name__}: {e})") from e
    if errs.messages:
        _meshio_size_error(path)
        raise MeshError(f"{path}: cannot read as {_kind(path)} (vtk: {' | '.join(errs.messages)[:1000]})")
    if isinstance(ds, pv.MultiBlock):
        ds = ds.combine(merge_points=False) if ds.n_blocks else None
    if ds is None:
        raise MeshError(f"{path}: vtk read no data set from it")
    return ds


def read_with_vtk(path: Path, **kw: Any) -> Mesh:
    """Read any file VTK reads into a :class:`Mesh` (VTK's own readers, linear-time conversion)."""
    ds = read_dataset(path)
    if ds.n_points == 0:
        raise MeshError(f"{path}: the mesh is empty (0 points)")
    return mesh_from_vtk(ds, path, **kw)


def read_vtk_file(path: Path, time: Any = None, **kw: Any) -> Mesh:
    """Reader for single-state VTK files (.vtu, legacy .vtk, .vtp, .vti, .vtr, .vts, parallel pieces)."""
    select_times(path, [], None if time in (None, "all") else time)
    return read_with_vtk(path)


def write_vtk_file(mesh: Mesh, path: Path, *, compression: str | None = "zlib", binary: bool = True,
                   **kw: Any) -> None:
    """Write .vtu (unstructured grid, appended, zlib by default) or legacy .vtk with VTK's writers."""
    legacy = path.suffix.lower() == ".vtk"
    obj = mesh_to_vtk(mesh, poly=legacy and is_poly(mesh))
    if legacy:
        obj.save(str(path), binary=binary)
    else:
        obj.save(str(path), binary=binary, compression=compression)


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
def pvd_entries(path: Path) -> list[tuple[float, Path, str]]:
    """(time, file, part) of each ``<DataSet>`` in a ParaView collection, in file order."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise MeshError(f"{path}: not a valid .pvd collection ({e})") from e
    out = []
    for ds in root.iter("DataSet"):
        f = ds.get("file")
        if f is None:
            continue
        out.append((float(ds.get("timestep", 0.0)), path.parent / unquote(f), ds.get("part", "")))
    return out


def _pvd_times(entries: list[tuple[float, Path, str]]) -> list[float]:
    return sorted(set(t for t, _, _ in entries))


def merge_parts(parts: list[Mesh], where: Any) -> Mesh:
    """Several meshes as one: points, cells and fields concatenated in part order.

    ``field_data['parts:points']`` and ``['parts:cells']`` hold the (k + 1,) offsets of each
    part's points and cells. A field missing from some part is refused (nothing is dropped).
    """
    if len(parts) == 1:
        return parts[0]
    for loc in ("point_data", "cell_data"):
        names = [set(getattr(m, loc)) for m in parts]
        missing = set.union(*names) - set.intersection(*names)
        if missing:
            k = next(i for i, n in enumerate(names) if not missing <= n)
            raise MeshError(f"{where}: {loc.split('_')[0]} field '{sorted(missing)[0]}' is missing from part {k}; "
                            "read one part with part=<index>")
    pofs = np.cumsum([0] + [m.n_points for m in parts])
    cells = [CellBlock(b.type, b.data + pofs[i]) for i, m in enumerate(parts) for b in m.cells]
    bounds: dict[str, list[CellBlock]] = {}
    for i, m in enumerate(parts):
        for name, bl in m.boundaries.items():
            bounds.setdefault(name, []).extend(CellBlock(b.type, b.data + pofs[i]) for b in bl)
    out = Mesh(points=np.concatenate([m.points for m in parts]), cells=cells,
               point_data={k: np.concatenate([m.point_data[k] for m in parts]) for k in parts[0].point_data},
               cell_data={k: np.concatenate([m.cell_data[k] for m in parts]) for k in parts[0].cell_data},
               boundaries=bounds, dim=max(m.dim for m in parts), source=str(where))
    out.field_data["parts:points"] = pofs
    out.field_data["parts:cells"] = np.cumsum([0] + [m.n_cells for m in parts])
    return out


def read_pvd(path: Path, time: Any = None, part: int | None = None, **kw: Any) -> Mesh | list[Mesh]:
    """Each selected time step of a collection; its parts merged (:func:`merge_parts`) or ``part=k`` only."""
    entries = pvd_entries(path)
    times = _pvd_times(entries)
    out = []
    for i in select_times(path, times, time):
        files = [f for t, f, _ in entries if t == times[i]]
        if part is not None:
            if not 0 <= int(part) < len(files):
                raise MeshError(f"{path}: time {times[i]:g} has {len(files)} parts, no part {part}")
            files = [files[int(part)]]
        meshes = []
        for f in files:
            m = read(f, **kw)
            if isinstance(m, list):
                raise MeshError(f"{f}: holds several time steps; a .pvd entry needs one step")
            meshes.append(m)
        m = merge_parts(meshes, path)
        m.time = times[i]
        out.append(m)
    if not out:
        raise MeshError(f"{path}: the collection lists no data sets")
    return out if time == "all" else out[0]


def probe_pvd(path: Path) -> dict[str, Any]:
    entries = pvd_entries(path)
    if not entries:
        raise MeshError(f"{path}: the collection lists no data sets")
    times = _pvd_times(entries)
    last = [f for t, f, _ in entries if t == times[-1]]
    info = probe(last[0])
    info["times"] = times
    info["files"] = [str(f) for _, f, _ in entries]
    info["parts"] = len(last)
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
register_format("vtp", [".vtp"], read_vtk_file, write_vtp, probe_vtk_xml, stores=("point_data", "cell_data", "dtypes", "mixed"),
                cell_types=_SURF)
register_format("pvtu", [".pvtu"], read_pvtu, None, probe_pvtu)
_ALL = ("point_data", "cell_data", "dtypes", "mixed", "volume")
register_format("vtu", [".vtu"], read_vtk_file, write_vtk_file, probe_vtk_xml, stores=_ALL)
register_format("vtk", [".vtk"], read_vtk_file, write_vtk_file, stores=_ALL)
register_format("vtk-structured", [".vti", ".vtr", ".vts", ".pvti", ".pvtr", ".pvts"], read_vtk_file, None,
                probe_vtk_xml)
register_format("pvd", [".pvd"], read_pvd, None, probe_pvd)
