"""EnSight Gold ``.case`` files (read only), through vtk's EnSight reader.

The parts of the highest dimension form the mesh (several are concatenated in part order, their
points not merged). Lower-dimensional parts (Fluent and others export inlets, outlets and walls
as parts) become named boundary regions: their points are matched exactly to the mesh points,
and a part whose points are not all found is appended (its points added after the mesh points).
Variables become point or cell fields with the dtype vtk hands back (EnSight stores float32).
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

_SHAPES = {"scalar": [], "vector": [3], "tensor": [9], "tensor symm": [6], "tensor asym": [9],
           "complex scalar": [2], "complex vector": [6]}


def _case_sections(path: Path) -> dict[str, list[str]]:
    sec: dict[str, list[str]] = {}
    cur = None
    for raw in path.read_text(errors="replace").splitlines():
        ln = raw.split("#", 1)[0].rstrip()
        if not ln.strip():
            continue
        if ln.strip().upper() in ("FORMAT", "GEOMETRY", "VARIABLE", "TIME", "FILE", "MATERIAL", "BLOCK_CONTINUATION"):
            cur = ln.strip().upper()
            sec[cur] = []
        elif cur is not None:
            sec[cur].append(ln.strip())
    return sec


def case_times(path: Path) -> list[float]:
    """The time values of the case's TIME section (empty for a steady case)."""
    sec = _case_sections(path)
    text = " ".join(sec.get("TIME", []))
    m = re.search(r"time values\s*:\s*(.*)", text, flags=re.I)
    if not m:
        return []
    vals = []
    for tok in m.group(1).split():
        try:
            vals.append(float(tok))
        except ValueError:
            break
    return vals


def probe_ensight(path: Path) -> dict[str, Any]:
    """Times and variables from the ``.case`` text, without opening the data files."""
    sec = _case_sections(path)
    if "GEOMETRY" not in sec:
        raise MeshError(f"{path}: not an EnSight case file (no GEOMETRY section)")
    fmt = " ".join(sec.get("FORMAT", []))
    if "gold" not in fmt.lower():
        log.info("%s: format line '%s' (only EnSight Gold is tested)", path, fmt)
    pf: dict[str, Any] = {}
    cf: dict[str, Any] = {}
    for ln in sec.get("VARIABLE", []):
        m = re.match(r"(.+?)\s+per\s+(node|element|measured node)\s*:\s*(.*)", ln, flags=re.I)
        if not m:
            continue
        kind, where, rest = m.group(1).strip().lower(), m.group(2).lower(), m.group(3).split()
        if kind.startswith("constant") or not rest:
            continue
        name = rest[-2] if len(rest) >= 2 else rest[0]
        # "scalar per node: [ts] [fs] description filename": the description is the field name
        toks = [t for t in rest if not t.isdigit()]
        name = toks[0] if len(toks) >= 2 else name
        (pf if where.endswith("node") else cf)[name] = {"shape": _SHAPES.get(kind, []), "dtype": "float32"}
    return {"times": case_times(path), "point_fields": pf, "cell_fields": cf}


def read_ensight(path: Path, time: Any = None, **kw: Any) -> Mesh | list[Mesh]:
    """Read an EnSight Gold case at one time (None: the latest) or all (``time="all"``).

    Shapes
    ------
    ``points`` (n, 3) float64 (domain parts, then points of unmatched boundary parts);
    cell blocks (m, k) int64 in part and element order; fields (n, ...) / (n_cells, ...).
    """
    pv = lazy_import("pyvista", "reading EnSight cases")
    from meshops.io.vtkconv import _VtkErrors, mesh_from_vtk, read_vtk_step

    sec = _case_sections(path)
    if "GEOMETRY" not in sec:
        raise MeshError(f"{path}: not an EnSight case file (no GEOMETRY section)")
    for ln in sec["GEOMETRY"]:
        m = re.match(r"model\s*:\s*(?:\d+\s+)*(\S+)", ln)
        if m and "*" not in m.group(1) and not (path.parent / m.group(1)).is_file():
            raise MeshError(f"{path}: the geometry file '{m.group(1)}' is missing")
    with _VtkErrors() as errs:
        reader = pv.get_reader(str(path))
        times = [float(t) for t in getattr(reader, "time_values", [])] or case_times(path)
    if errs.messages:
        raise MeshError(f"{path}: vtk's EnSight reader failed: {errs.messages[0][:300]}")
    idx = select_times(path, times, time) if times else []
    out = []
    for i in idx or [None]:
        mb = read_vtk_step(reader, times, i, path, "EnSight")
        names = list(mb.keys())
        parts = [(str(n), mesh_from_vtk(mb[j], path, face_ids=False)) for j, n in enumerate(names)
                 if mb[j] is not None and mb[j].n_points]
        if not parts:
            raise MeshError(f"{path}: the case holds no parts with points")
        mesh = _assemble(parts, path)
        mesh.time = times[i] if i is not None else None
        out.append(mesh)
    return out if time == "all" else out[0]


def _assemble(parts: list[tuple[str, Mesh]], path: Path) -> Mesh:
    top = max(p.topological_dim for _, p in parts)
    domain = [(n, p) for n, p in parts if p.topological_dim == top]
    rest = [(n, p) for n, p in parts if p.topological_dim < top]
    pts, cells, pdata, cdata = [], [], [], []
    off = 0
    for _, p in domain:
        pts.append(p.points)
        cells += [CellBlock(b.type, b.data + off) for b in p.cells]
        pdata.append(p.point_data)
        cdata.append((p.n_cells, p.cell_data))
        off += p.n_points
    points = np.concatenate(pts)
    from meshops.io.openfoam import _map_points, _point_lookup

    keys, order = _point_lookup(points)
    boundaries: dict[str, list[CellBlock]] = {}
    extra_pts, extra_pdata = [], []
    for name, p in rest:
        try:
            remap = _map_points(p.points, keys, order, f"{path}: part '{name}'")
        except MeshError:
            remap = np.arange(off, off + p.n_points)
            extra_pts.append(p.points)
            extra_pdata.append(p.point_data)
            off += p.n_points
            log.info("%s: part '%s' does not lie on the mesh points; its %d points are appended",
                     path, name, p.n_points)
        boundaries[name] = [CellBlock(b.type, remap[b.data]) for b in p.cells]
    if extra_pts:
        points = np.concatenate([points, *extra_pts])
        pdata += extra_pdata
    n_pts = [len(a) for a in pts] + [len(a) for a in extra_pts]
    point_data = _concat_fields(pdata, n_pts)
    cell_data = _concat_fields([c for _, c in cdata], [n for n, _ in cdata])
    mesh = Mesh(points=points, cells=cells, point_data=point_data, cell_data=cell_data,
                boundaries=boundaries, source=str(path))
    if top <= 2 and not np.any(mesh.points[:, 2]):
        mesh.dim = 2
    return mesh


def _concat_fields(dicts: list[dict[str, np.ndarray]], sizes: list[int]) -> dict[str, np.ndarray]:
    names: list[str] = []
    for d in dicts:
        names += [k for k in d if k not in names]
    out = {}
    for k in names:
        ref = next(d[k] for d in dicts if k in d)
        parts = []
        for d, n in zip(dicts, sizes, strict=True):
            if k in d:
                parts.append(d[k])
            else:
                fill = np.nan if ref.dtype.kind == "f" else 0
                parts.append(np.full((n, *ref.shape[1:]), fill, dtype=ref.dtype))
        out[k] = np.concatenate(parts)
    return out


register_format("ensight", [".case", ".encas"], read_ensight, None, probe_ensight)
