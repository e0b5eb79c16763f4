"""OpenFOAM case directories (read only), through vtk's ``vtkOpenFOAMReader``.

``read(case_dir, time=...)`` returns the internal mesh at one time (or every time with
``time="all"``): points in ``constant/polyMesh/points`` order, cells in OpenFOAM cell order,
the ``vol*Field`` values as cell fields, and each boundary patch as a named boundary region whose
faces index the internal mesh's points. Nothing is interpolated unless asked
(``cell_to_point=True`` adds point fields averaged by vtk).

A case is a directory with ``system/controlDict`` or ``constant/polyMesh``; the path of its
``.foam`` file or its ``controlDict`` works too. Zipped cases must be unpacked first. Polyhedral
cells (other than the standard hex/prism/pyramid/tet shapes vtk recognizes) are not supported:
they raise :class:`MeshError`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from meshops.io._util import lazy_import, select_times
from meshops.io.registry import register_format
from meshops.mesh import CellBlock, Mesh, MeshError

log = logging.getLogger(__name__)

_FIELD_SHAPES = {"Scalar": [], "Vector": [3], "SymmTensor": [6], "Tensor": [9], "SphericalTensor": []}


def case_dir(path: Path) -> Path:
    """The case directory for a case path, its ``.foam`` file, or its ``system/controlDict``."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.name == "controlDict":
        return path.parent.parent
    return path.parent


def is_case(path: Path) -> bool:
    """True for an OpenFOAM case directory (or a ``.foam``/``controlDict`` file inside one)."""
    path = Path(path)
    if path.is_dir():
        return (path / "system" / "controlDict").is_file() or (path / "constant" / "polyMesh").is_dir()
    return path.suffix.lower() == ".foam" or path.name == "controlDict"


def _header(path: Path) -> dict[str, str]:
    with open(path, "rb") as f:
        text = f.read(4096).decode("latin-1")
    m = re.search(r"FoamFile\s*\{(.*?)\}", text, flags=re.S)
    if not m:
        return {}
    return {k: v.strip().strip('"') for k, v in re.findall(r"(\w+)\s+([^;]*);", m.group(1))}


def time_dirs(case: Path) -> list[tuple[float, Path]]:
    """Numeric time directories that hold at least one field file, sorted by time."""
    out = []
    for d in case.iterdir():
        if not d.is_dir():
            continue
        try:
            t = float(d.name)
        except ValueError:
            continue
        if any(f.is_file() and _header(f).get("class", "").startswith(("vol", "point")) for f in d.iterdir()):
            out.append((t, d))
    return sorted(out)


def probe_openfoam(path: Path) -> dict[str, Any]:
    """Times and fields from the time directories' file headers; sizes from the ``owner`` note."""
    case = case_dir(path)
    times = time_dirs(case)
    point_fields: dict[str, Any] = {}
    cell_fields: dict[str, Any] = {}
    for _, d in times:
        for f in sorted(d.iterdir()):
            if not f.is_file():
                continue
            cls = _header(f).get("class", "")
            m = re.match(r"(vol|point)(\w+?)Field$", cls)
            if m and m.group(2) in _FIELD_SHAPES:
                target = cell_fields if m.group(1) == "vol" else point_fields
                target.setdefault(f.name, {"shape": _FIELD_SHAPES[m.group(2)], "dtype": "float64"})
    info: dict[str, Any] = {"times": [t for t, _ in times], "point_fields": point_fields,
                            "cell_fields": cell_fields}
    owner = case / "constant" / "polyMesh" / "owner"
    if owner.is_file():
        note = _header(owner).get("note", "")
        for key, name in (("nPoints", "n_points"), ("nCells", "n_cells")):
            m = re.search(rf"{key}:\s*(\d+)", note)
            if m:
                info[name] = int(m.group(1))
    bfile = case / "constant" / "polyMesh" / "boundary"
    if bfile.is_file():
        text = re.sub(r"//.*", "", bfile.read_text(errors="replace"))
        body = text[text.find("FoamFile"):]
        body = body[body.find("}") + 1:]
        info["boundaries"] = re.findall(r"(\w[\w.:-]*)\s*\{", body)
    return info


def _read_text(path: Path) -> str | None:
    """The text of an ASCII OpenFOAM file (``.gz`` too), or None when it is binary or absent."""
    import gzip

    for cand in (path, path.with_name(path.name + ".gz")):
        if cand.is_file():
            raw = gzip.open(cand).read() if cand.suffix == ".gz" else cand.read_bytes()
            text = raw.decode("latin-1")
            fmt = re.search(r"format\s+(\w+)\s*;", text[:4096])
            if fmt and fmt.group(1) != "ascii":
                return None
            return text
    return None


def _parse_list(body: str, ncomp: int, where: str) -> np.ndarray:
    """An OpenFOAM ASCII list ``N ( ... )`` or ``N{value}`` starting at ``body``, as float64 (N, ncomp)."""
    m = re.match(r"\s*(\d+)\s*\{([^}]*)\}", body)
    if m:
        v = np.array(m.group(2).replace("(", " ").replace(")", " ").split(), dtype=np.float64)
        return np.tile(v.reshape(1, -1), (int(m.group(1)), 1))
    m = re.match(r"\s*(\d+)\s*\(", body)
    if not m:
        raise MeshError(f"{where}: expected a list 'N (...)'")
    n = int(m.group(1))
    start = m.end()
    # The list ends at the ')' that closes it: the first ')' followed by ';' or a line with only ')'.
    end = re.search(r"\n\s*\)\s*(;|\n|$)", body[start:])
    chunk = body[start: start + end.start()] if end else body[start:]
    vals = np.array(chunk.replace("(", " ").replace(")", " ").split(), dtype=np.float64)
    if vals.size != n * ncomp:
        raise MeshError(f"{where}: list announces {n} values of {ncomp} components, holds {vals.size} numbers")
    return vals.reshape(n, ncomp)


def _ascii_points(case: Path) -> np.ndarray | None:
    text = _read_text(case / "constant" / "polyMesh" / "points")
    if text is None:
        return None
    body = text[text.find("}", text.find("FoamFile")) + 1:]
    body = re.sub(r"//[^\n]*", "", body)
    return _parse_list(body, 3, f"{case}/constant/polyMesh/points")


def _ascii_field(path: Path, n: int, ncomp: int) -> np.ndarray | None:
    """The internalField of an ASCII field file in float64, or None (binary file, unknown layout)."""
    text = _read_text(path)
    if text is None:
        return None
    m = re.search(r"internalField\s+(uniform|nonuniform)\s+", text)
    if not m:
        return None
    rest = text[m.end():]
    if m.group(1) == "uniform":
        val = rest[: rest.find(";")]
        v = np.array(val.replace("(", " ").replace(")", " ").split(), dtype=np.float64)
        out = np.tile(v.reshape(1, -1), (n, 1))
    else:
        lm = re.match(r"List<\w+>\s*", rest)
        if not lm:
            return None
        out = _parse_list(rest[lm.end():], ncomp, str(path))
    if out.shape != (n, ncomp):
        raise MeshError(f"{path}: internalField has {out.shape[0]} values of {out.shape[1]} components, "
                        f"the mesh has {n} cells")
    return out[:, 0] if ncomp == 1 and out.shape[1] == 1 else out


def _point_lookup(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    view = np.ascontiguousarray(points).view([("", points.dtype)] * 3).ravel()
    order = np.argsort(view, kind="stable")
    return view[order], order


def _map_points(sub: np.ndarray, keys: np.ndarray, order: np.ndarray, where: str) -> np.ndarray:
    v = np.ascontiguousarray(sub).view([("", sub.dtype)] * 3).ravel()
    pos = np.searchsorted(keys, v)
    pos = np.clip(pos, 0, len(keys) - 1)
    ok = keys[pos] == v
    if not ok.all():
        raise MeshError(f"{where}: {int((~ok).sum())} boundary points are not points of the internal mesh")
    return order[pos]


def read_openfoam(path: Path, time: Any = None, *, cell_to_point: bool = False,
                  patches: bool = True, precise: bool = True, **kw: Any) -> Mesh | list[Mesh]:
    """Read an OpenFOAM case at one time (None: the latest), or every time (``time="all"``).

    Parameters
    ----------
    path : Path
        Case directory, its ``.foam`` file, or ``system/controlDict``.
    time : None, float, "all", "first" or "latest"
    cell_to_point : bool
        Also return vtk's cell-to-point averages as point fields (off: only what the files hold).
    patches : bool
        Read the boundary patches into ``mesh.boundaries``.
    precise : bool
        vtk's reader hands back float32; with ``precise`` (default) the points and the ASCII
        field files are re-read here in float64 (binary files keep vtk's float32, with a log line).

    Shapes
    ------
    ``points`` (n_points, 3) in ``polyMesh/points`` order; ``cell_data[f]`` (n_cells, ...) per field.
    """
    pv = lazy_import("pyvista", "reading OpenFOAM cases")
    case = case_dir(path)
    if not (case / "constant" / "polyMesh").is_dir():
        raise MeshError(f"{case}: not an OpenFOAM case (no constant/polyMesh)")
    for req in ("points", "faces", "owner"):
        if not any((case / "constant" / "polyMesh" / (req + ext)).is_file() for ext in ("", ".gz")):
            raise MeshError(f"{case}: constant/polyMesh/{req} is missing")
    ctrl = case / "system" / "controlDict"
    foam = ctrl if ctrl.is_file() else next(iter(sorted(case.glob("*.foam"))), None)
    if foam is None:
        raise MeshError(f"{case}: no system/controlDict nor .foam file to open the case with")
    from meshops.io.vtkconv import _VtkErrors, mesh_from_vtk, read_vtk_step

    with _VtkErrors():  # set-up messages are swallowed; read errors are raised per time step below
        reader = pv.OpenFOAMReader(str(foam))
        reader.cell_to_point_creation = bool(cell_to_point)
        reader.skip_zero_time = False
        if patches:
            reader.enable_all_patch_arrays()
        times = [float(t) for t in reader.time_values]
    idx = select_times(case, times, time) if times else []
    out = []
    for i in idx or [None]:
        mb = read_vtk_step(reader, times, i, case, "OpenFOAM")
        internal = mb["internalMesh"] if "internalMesh" in mb.keys() else None
        if internal is None or internal.n_points == 0:
            raise MeshError(f"{case}: the internal mesh is empty or unreadable")
        mesh = mesh_from_vtk(internal, case, face_ids=False)
        if patches and "boundary" in mb.keys() and mb["boundary"] is not None:
            keys, order = _point_lookup(mesh.points)
            bnd = mb["boundary"]
            for name in bnd.keys():
                part = bnd[name]
                if part is None or part.n_cells == 0:
                    mesh.boundaries[name] = []
                    continue
                sub = mesh_from_vtk(part, case, face_ids=False)
                remap = _map_points(sub.points, keys, order, f"{case}: patch '{name}'")
                mesh.boundaries[name] = [CellBlock(b.type, remap[b.data]) for b in sub.cells]
        if precise:
            _upgrade_precision(mesh, case, times[i] if i is not None else None)
        mesh.time = times[i] if i is not None else None
        mesh.dim = 3
        out.append(mesh)
    return out if time == "all" else out[0]


def _upgrade_precision(mesh: Mesh, case: Path, t: float | None) -> None:
    pts = _ascii_points(case)
    if pts is not None and pts.shape == mesh.points.shape:
        if not np.array_equal(pts.astype(np.float32), mesh.points.astype(np.float32)):
            raise MeshError(f"{case}: vtk's point order differs from constant/polyMesh/points")
        mesh.points = pts
    elif pts is None:
        log.info("%s: binary points, kept at vtk's float32 precision", case)
    if t is None:
        return
    tdir = next((d for tt, d in time_dirs(case) if np.isclose(tt, t)), None)
    if tdir is None:
        return
    for name, a in list(mesh.cell_data.items()):
        ncomp = 1 if a.ndim == 1 else a.shape[1]
        try:
            v = _ascii_field(tdir / name, mesh.n_cells, ncomp)
        except MeshError:
            raise
        except (ValueError, OSError) as e:
            log.info("%s/%s: kept vtk's float32 values (%s)", tdir, name, e)
            continue
        if v is None:
            log.info("%s/%s: binary or unrecognised layout, kept vtk's float32 values", tdir, name)
            continue
        if not np.allclose(v.astype(np.float32), a, rtol=1e-6, atol=0, equal_nan=True):
            log.warning("%s/%s: the ASCII values do not match vtk's; kept vtk's", tdir, name)
            continue
        mesh.cell_data[name] = v


register_format("openfoam", [".foam"], read_openfoam, None, probe_openfoam, detect=is_case)
