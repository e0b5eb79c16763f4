"""Reading centerline inputs: the files and meshes :func:`~meshops.graph.centerline.read_centerline` takes.

The mesh behind a source (a :class:`~meshops.mesh.Mesh`, any mesh file of line cells such as
SimVascular / VMTK ``.vtp``, or a plain-text point list), the radius array (named, or detected from
:data:`RADIUS_FIELDS`, and checked), and the chaining of line cells into polylines with the VMTK cell
arrays that break them (``CenterlineIds``, ``TractIds``, ``GroupIds``, ``Blanking``, ...). The joins
and the branch split live in :mod:`meshops.graph.centerline`, which re-exports the public names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from meshops.mesh import Mesh, MeshError

__all__ = ["POINT_LIST_SUFFIXES", "RADIUS_FIELDS", "find_radius_field"]

#: Point arrays taken as the radius, first found wins (then any single array whose name contains
#: "radius" or "radii", case-insensitive).
RADIUS_FIELDS = ("MaximumInscribedSphereRadius", "Radius", "radius", "Radii", "radii", "R", "r",
                 "MaximumInscribedSphereRadius_average", "InscribedSphereRadius", "vessel_radius",
                 "lumen_radius", "radius_mm")

#: Plain-text point lists read as one polyline per file (or one per value of a branch column).
POINT_LIST_SUFFIXES = (".csv", ".dat", ".txt", ".xyz")
_BRANCH_COLUMNS = ("branch", "branchid", "branch_id", "centerlineids", "centerline_id", "path_id")


def find_radius_field(point_data: dict[str, Any], where: str, radius_field: str | None = None,
                      required: bool = True) -> str | None:
    """The name of the point array holding the radius (``radius_field``, or detected).

    Raises ``MeshError`` naming the file and listing the point arrays when the named array is
    missing, or when ``required`` and no array looks like a radius.
    """
    names = sorted(point_data)
    if radius_field is not None:
        if radius_field not in point_data:
            raise MeshError(f"{where}: radius field '{radius_field}' not found; point arrays: {names}")
        return radius_field
    for nm in RADIUS_FIELDS:
        if nm in point_data:
            return nm
    like = [k for k in names if "radius" in k.lower() or "radii" in k.lower()]
    if len(like) == 1:
        return like[0]
    if required:
        hint = f" (several look like one: {like})" if like else ""
        raise MeshError(f"{where}: the centerline has no radius array{hint}; point arrays: {names}; "
                        "name it with --radius-field NAME")
    return None


def _checked_radius(mesh: Mesh, name: str, where: str) -> np.ndarray:
    r = np.asarray(mesh.point_data[name], dtype=np.float64)
    if r.ndim > 1 and r.shape[1:] != (1,) and int(np.prod(r.shape[1:])) != 1:
        raise MeshError(f"{where}: radius array '{name}' has shape {r.shape}; it must hold one value per point")
    r = r.reshape(len(r), -1)[:, 0] if r.ndim > 1 else r
    if len(r) != mesh.n_points:
        raise MeshError(f"{where}: radius array '{name}' has {len(r)} values but the centerline has "
                        f"{mesh.n_points} points")
    bad = ~(np.isfinite(r) & (r > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MeshError(f"{where}: radius array '{name}' is {r[i]} at point {i} ({int(bad.sum())} bad values); "
                        "radii must be finite and > 0")
    return r


def _read_point_list(path: Path) -> Mesh:
    """A plain-text point list (CSV with a header, or whitespace .dat/.txt) as a mesh of line cells.

    Columns: ``x y z`` and any others (a radius, a branch id); a .dat/.txt file without a header
    line has columns ``x y z radius``. Rows are chained in file order; a new polyline starts where
    a branch column changes.
    """
    where = str(path)
    if path.suffix.lower() == ".csv":
        from meshops.io import read

        m = read(path)
        pts, data = m.points, dict(m.point_data)
    else:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [ln for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
        if not lines:
            raise MeshError(f"{where}: the point list is empty")
        head = lines[0].replace(",", " ").split()
        try:
            [float(v) for v in head]
            names, body = None, lines
        except ValueError:
            names, body = head, lines[1:]
        try:
            arr = np.array([[float(v) for v in ln.replace(",", " ").split()] for ln in body], dtype=np.float64)
        except ValueError as e:
            raise MeshError(f"{where}: not a numeric point list ({e})") from e
        if arr.ndim != 2 or arr.shape[1] < 3:
            raise MeshError(f"{where}: a point list needs at least 3 columns (x y z), got shape {arr.shape}")
        if names is None:
            names = ["x", "y", "z", "radius"] + [f"col{i}" for i in range(4, arr.shape[1])]
        if len(names) != arr.shape[1]:
            raise MeshError(f"{where}: the header names {len(names)} columns but rows have {arr.shape[1]}")
        low = [n.lower() for n in names]
        ci = [low.index(c) for c in ("x", "y", "z")] if all(c in low for c in ("x", "y", "z")) else [0, 1, 2]
        pts = arr[:, ci]
        data = {n: arr[:, i] for i, n in enumerate(names) if i not in ci}
    if len(pts) < 2:
        raise MeshError(f"{where}: a centerline needs at least 2 points, the file has {len(pts)}")
    brk = np.zeros(len(pts) - 1, dtype=bool)
    for k, v in data.items():
        if k.lower() in _BRANCH_COLUMNS:
            brk |= np.asarray(v)[1:] != np.asarray(v)[:-1]
    seg = np.stack([np.arange(len(pts) - 1), np.arange(1, len(pts))], 1)[~brk]
    from meshops.mesh import CellBlock

    return Mesh(points=pts, cells=[CellBlock("line", seg)], point_data=data, source=where)

_BREAK_FIELDS = ("CenterlineIds", "TractIds", "GroupIds", "BranchId", "BranchIdTmp")


def _polylines(mesh: Mesh) -> tuple[list[np.ndarray], list[int]]:
    """Chain line cells into polylines; return them with the GroupIds value of each (or -1)."""
    segs, cell_rows = [], []
    offset = 0
    for b in mesh.cells:
        if b.type in ("line", "line3"):
            d = np.asarray(b.data, dtype=np.int64)[:, :2]
            segs.append(d)
            cell_rows.append(offset + np.arange(len(d)))
        offset += len(b)
    if not segs:
        raise MeshError(f"{mesh.source or '<mesh>'}: no line cells: not a centerline "
                        f"(cell types {list(mesh.cell_types)})")
    seg = np.concatenate(segs)
    rows = np.concatenate(cell_rows)
    ids = {k: np.asarray(v)[rows].reshape(len(rows), -1)[:, 0] for k, v in mesh.cell_data.items()
           if k in _BREAK_FIELDS and len(v) == mesh.n_cells}
    groups = ids.get("GroupIds")
    blank = None
    if "Blanking" in mesh.cell_data and len(mesh.cell_data["Blanking"]) == mesh.n_cells:
        blank = np.asarray(mesh.cell_data["Blanking"])[rows].reshape(len(rows), -1)[:, 0]
    brk = np.ones(len(seg), dtype=bool)
    brk[1:] = seg[1:, 0] != seg[:-1, 1]
    for v in ids.values():
        brk[1:] |= v[1:] != v[:-1]
    starts = np.flatnonzero(brk)
    ends = np.append(starts[1:], len(seg))
    lines, gids = [], []
    for s, e in zip(starts, ends, strict=True):
        lines.append(np.concatenate([seg[s:e, 0], seg[e - 1 : e, 1]]))
        # bifurcation tracts (Blanking = 1) differ per centerline: never deduplicated
        blanked = blank is not None and int(blank[s]) == 1
        gids.append(int(groups[s]) if groups is not None and not blanked else -1)
    return lines, gids


def _centerline_mesh(source: str | Path | Mesh) -> Mesh:
    """The mesh behind a centerline source: a Mesh as is, a CSV/.dat point list, or any mesh file."""
    if isinstance(source, Mesh):
        return source
    if Path(source).suffix.lower() in POINT_LIST_SUFFIXES:
        return _read_point_list(Path(source))
    from meshops.io import read

    return read(source)
