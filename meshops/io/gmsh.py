"""Gmsh ``.msh`` meshes: read v2 and v4 (ASCII or binary, through meshio), write v2.2 ASCII.

Physical groups of a lower dimension than the mesh (surfaces of a volume mesh, curves of a surface
mesh) become named boundary regions; their elements are not domain cells. Elements of the top
dimension, and lower-dimensional elements in no physical group, stay cells in file order.
Physical tags of domain cells, when any is non-zero, are kept as the cell field ``gmsh:physical``.

The writer stores boundaries as physical groups, fields as ``$NodeData``/``$ElementData`` written
with the digits each value needs to read back exactly, and a ``$MeshopsFields`` section (ignored by Gmsh) recording each
field's dtype and shape, so integer and float32 fields read back with their own dtype.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from meshops.io._util import lazy_import, select_times, write_rows
from meshops.io.meshio_formats import _reorder, mesh_from_meshio
from meshops.io.registry import register_format
from meshops.mesh import CELL_DIM, CellBlock, Mesh, MeshError

log = logging.getLogger(__name__)

_DROP_POINT = ("gmsh:dim_tags",)


def _dtype_section(path: Path) -> dict[tuple[str, str], tuple[str, list[int]]]:
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - (1 << 16)))
        tail = f.read().decode("latin-1")
    m = re.search(r"\$MeshopsFields\n(.*?)\$EndMeshopsFields", tail, flags=re.S)
    out = {}
    if m:
        for ln in m.group(1).splitlines():
            parts = ln.split("\t")
            if len(parts) == 4:
                loc, name, dt, shape = parts
                out[(loc, name)] = (dt, [int(s) for s in shape.split("x") if s])
    return out


def _read_msh2_ascii(path: Path) -> tuple[Any, ...]:
    """Own parser for Gmsh 2.x ASCII: keeps elements in file order, any mix of types."""
    common = lazy_import("meshio.gmsh.common", "reading .msh")
    from_type = common._gmsh_to_meshio_type
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    i, n_lines = 0, len(lines)
    names: dict[tuple[int, int], str] = {}
    points = np.zeros((0, 3))
    node_ids = np.zeros(0, np.int64)
    elem_ids: np.ndarray = np.zeros(0, np.int64)
    types: list[str] = []
    conn: list[list[int]] = []
    phys: list[int] = []
    geo: list[int] = []
    data: dict[str, dict[str, np.ndarray]] = {"point": {}, "cell": {}}

    def section_end(name: str, j: int) -> int:
        while j < n_lines and lines[j].strip() != f"$End{name}":
            j += 1
        if j >= n_lines:
            raise MeshError(f"{path}: section ${name} is not closed by $End{name} (truncated?)")
        return j

    while i < n_lines:
        ln = lines[i].strip()
        i += 1
        if not ln:
            continue
        if not ln.startswith("$"):
            raise MeshError(f"{path}: line {i}: expected a $Section, found '{ln[:40]}'")
        sec = ln[1:]
        end = section_end(sec, i)
        body = lines[i:end]
        if sec == "PhysicalNames":
            for row in body[1:]:
                d, t, nm = row.split(maxsplit=2)
                names[(int(d), int(t))] = nm.strip().strip('"')
        elif sec == "Nodes":
            n = int(body[0])
            arr = np.array(" ".join(body[1:n + 1]).split(), dtype=np.float64)
            if arr.size != 4 * n:
                raise MeshError(f"{path}: $Nodes announces {n} nodes but holds {arr.size // 4}")
            arr = arr.reshape(n, 4)
            node_ids, points = arr[:, 0].astype(np.int64), arr[:, 1:]
        elif sec == "Elements":
            n = int(body[0])
            if len(body) - 1 < n:
                raise MeshError(f"{path}: $Elements announces {n} elements but holds {len(body) - 1}")
            ids = np.empty(n, np.int64)
            for k, row in enumerate(body[1:n + 1]):
                v = [int(x) for x in row.split()]
                nt = v[2]
                t = from_type.get(v[1])
                if t is None:
                    raise MeshError(f"{path}: element {v[0]} has unknown Gmsh type {v[1]}")
                ids[k] = v[0]
                types.append(t)
                phys.append(v[3] if nt >= 1 else 0)
                geo.append(v[4] if nt >= 2 else 0)
                conn.append(v[3 + nt:])
            elem_ids = ids
        elif sec in ("NodeData", "ElementData"):
            ns = int(body[0])
            strs = [body[1 + q].strip().strip('"') for q in range(ns)]
            j = 1 + ns
            nr = int(body[j])
            j += 1 + nr
            ni = int(body[j])
            ints = [int(body[j + 1 + q]) for q in range(ni)]
            j += 1 + ni
            ncomp, nitems = ints[1], ints[2]
            arr = np.array(" ".join(body[j:j + nitems]).split(), dtype=np.float64).reshape(nitems, 1 + ncomp)
            data["point" if sec == "NodeData" else "cell"][strs[0] if strs else f"field{len(data)}"] = arr
        i = end + 1
    if not len(points):
        raise MeshError(f"{path}: no $Nodes section")
    lookup = {int(t): k for k, t in enumerate(node_ids)}
    blocks: list[CellBlock] = []
    ph_blocks: list[np.ndarray] = []
    ge_blocks: list[np.ndarray] = []
    start = 0
    for k in range(1, len(types) + 1):
        if k == len(types) or types[k] != types[start] or len(conn[k]) != len(conn[start]):
            try:
                c = np.array([[lookup[x] for x in row] for row in conn[start:k]], dtype=np.int64)
            except KeyError as e:
                raise MeshError(f"{path}: an element uses node {e.args[0]}, which is not in $Nodes") from None
            blocks.append(CellBlock(types[start], _reorder(types[start], common._gmsh_to_meshio_order(types[start], c))))
            ph_blocks.append(np.array(phys[start:k], np.int64))
            ge_blocks.append(np.array(geo[start:k], np.int64))
            start = k
    out_data: dict[str, dict[str, np.ndarray]] = {"point": {}, "cell": {}}
    for loc, ids, count in (("point", node_ids, len(points)), ("cell", elem_ids, len(types))):
        pos = {int(t): k for k, t in enumerate(ids)}
        for name, arr in data[loc].items():
            vals = np.full((count, arr.shape[1] - 1), np.nan)
            try:
                rows = np.array([pos[int(t)] for t in arr[:, 0]], dtype=np.int64)
            except KeyError as e:
                raise MeshError(f"{path}: {loc} field '{name}' refers to unknown id {e.args[0]}") from None
            vals[rows] = arr[:, 1:]
            out_data[loc][name] = vals[:, 0] if vals.shape[1] == 1 else vals
    return points, blocks, ph_blocks, ge_blocks, names, out_data["point"], out_data["cell"]


def _read_with_meshio(path: Path) -> tuple[Any, ...]:
    meshio = lazy_import("meshio", "reading .msh")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        m = meshio.gmsh.read(str(path))
    names: dict[tuple[int, int], str] = {}
    for name, val in (m.field_data or {}).items():
        v = np.asarray(val).ravel()
        if len(v) >= 2:
            names[(int(v[1]), int(v[0]))] = str(name)
    raw = mesh_from_meshio(m, path, drop=("gmsh:physical", "gmsh:geometrical") + _DROP_POINT)
    nb = len(raw.cells)
    phys = m.cell_data.get("gmsh:physical") or [np.zeros(len(b), np.int64) for b in raw.cells]
    geo = m.cell_data.get("gmsh:geometrical") or [np.zeros(len(b), np.int64) for b in raw.cells]
    assert len(phys) == nb
    return (raw.points, raw.cells, [np.asarray(a, np.int64) for a in phys], [np.asarray(a, np.int64) for a in geo],
            names, raw.point_data, raw.cell_data)


def read_gmsh(path: Path, time: Any = None, **kw: Any) -> Mesh:
    """Read a Gmsh mesh; lower-dimensional physical groups become ``mesh.boundaries``.

    Gmsh 2.x ASCII is parsed here (elements stay in file order whatever the mix of types); v4
    and binary files go through meshio.

    Shapes
    ------
    ``points`` (n, 3) float64 in node order; domain cell blocks (m, k) int64 in element order.
    """
    select_times(path, [], None if time in (None, "all") else time)
    with open(path, "rb") as f:
        head = f.read(256).decode("latin-1").split()
    if len(head) < 3 or head[0] != "$MeshFormat":
        raise MeshError(f"{path}: not a Gmsh file (no $MeshFormat header)")
    if head[1].startswith("2") and head[2] == "0":
        points, raw_cells, phys, geo, names, point_data, all_cell_data = _read_msh2_ascii(path)
    else:
        points, raw_cells, phys, geo, names, point_data, all_cell_data = _read_with_meshio(path)
    top = max((CELL_DIM.get(b.type, 3) for b in raw_cells), default=0)
    cells: list[CellBlock] = []
    keep_rows: list[np.ndarray] = []
    boundaries: dict[str, list[CellBlock]] = {}
    offset = 0
    for i, b in enumerate(raw_cells):
        d = CELL_DIM.get(b.type, 3)
        tags = phys[i]
        bnd = (tags != 0) & (d < top)
        if (~bnd).any():
            cells.append(CellBlock(b.type, b.data[~bnd]))
            keep_rows.append(offset + np.flatnonzero(~bnd))
        for t in np.unique(tags[bnd]):
            name = names.get((d, int(t)), f"physical_{int(t)}")
            boundaries.setdefault(name, []).append(CellBlock(b.type, b.data[bnd & (tags == t)]))
        offset += len(b)
    rows = np.concatenate(keep_rows) if keep_rows else np.zeros(0, np.int64)
    cell_data = {k: v[rows] for k, v in all_cell_data.items()}
    for tag_name, per_block in (("gmsh:physical", phys), ("gmsh:geometrical", geo)):
        if per_block and len(rows):
            vals = np.concatenate(per_block)[rows]
            if np.any(vals):
                cell_data[tag_name] = vals
    point_data = dict(point_data)
    for (loc, name), (dt, shape) in _dtype_section(path).items():
        target = point_data if loc == "point" else cell_data
        if name in target:
            a = target[name]
            target[name] = a.reshape((len(a), *shape)).astype(dt)
    mesh = Mesh(points=points, cells=cells, point_data=point_data, cell_data=cell_data,
                boundaries=boundaries, source=str(path))
    if top <= 2 and not np.any(mesh.points[:, 2]):
        mesh.dim = 2
    if names:
        mesh.field_data["gmsh:physical_names"] = {v: list(k)[::-1] for k, v in names.items()}
    return mesh


def write_gmsh(mesh: Mesh, path: Path, **kw: Any) -> None:
    """Write Gmsh 2.2 ASCII: nodes, elements (domain then boundaries), fields, dtypes."""
    common = lazy_import("meshio.gmsh.common", "writing .msh")
    to_type = common._meshio_to_gmsh_type
    where = path
    blocks = [(b, 0) for b in mesh.cells]
    phys_names: list[tuple[int, int, str]] = []
    for j, (name, bl) in enumerate(mesh.boundaries.items(), start=1):
        if '"' in name:
            raise MeshError(f"{where}: boundary name {name!r} cannot hold a double quote in Gmsh")
        for d in sorted({CELL_DIM.get(b.type, 3) for b in bl}):
            phys_names.append((d, j, name))
        blocks += [(b, j) for b in bl]
    for b, _ in blocks:
        if b.type not in to_type:
            raise MeshError(f"{where}: Gmsh has no element type for '{b.type}' cells")
    dom_phys = mesh.cell_data.get("gmsh:physical")
    dom_geo = mesh.cell_data.get("gmsh:geometrical")
    n_dom = mesh.n_cells
    n_all = sum(len(b) for b, _ in blocks)
    with open(path, "w", encoding="utf-8") as f:
        f.write("$MeshFormat\n2.2 0 8\n$EndMeshFormat\n")
        if phys_names:
            f.write(f"$PhysicalNames\n{len(phys_names)}\n")
            for d, t, name in phys_names:
                f.write(f'{d} {t} "{name}"\n')
            f.write("$EndPhysicalNames\n")
        f.write(f"$Nodes\n{mesh.n_points}\n")
        write_rows(f, np.arange(1, mesh.n_points + 1), mesh.points)
        f.write(f"$EndNodes\n$Elements\n{n_all}\n")
        eid = 1
        dom = 0
        for b, tag in blocks:
            if not len(b):
                continue
            k = len(b)
            if tag == 0:
                ph = dom_phys[dom: dom + k] if dom_phys is not None else np.zeros(k, np.int64)
                ge = dom_geo[dom: dom + k] if dom_geo is not None else np.zeros(k, np.int64)
                dom += k
            else:
                ph = np.full(k, tag)
                ge = np.full(k, tag)
            conn = common._meshio_to_gmsh_order(b.type, _reorder(b.type, b.data)) + 1
            rows = np.hstack([np.arange(eid, eid + k)[:, None], np.full((k, 1), to_type[b.type]),
                              np.full((k, 1), 2), np.asarray(ph).reshape(-1, 1), np.asarray(ge).reshape(-1, 1),
                              conn]).astype(np.int64)
            np.savetxt(f, rows, fmt="%d", delimiter=" ")
            eid += k
        f.write("$EndElements\n")
        meta = []
        for name, a in mesh.point_data.items():
            _write_data(f, "NodeData", name, a, mesh.n_points, mesh.n_points)
            meta.append(("point", name, a))
        for name, a in mesh.cell_data.items():
            if name in ("gmsh:physical", "gmsh:geometrical"):
                continue
            _write_data(f, "ElementData", name, a, n_all, n_dom)
            meta.append(("cell", name, a))
        if meta:
            f.write("$MeshopsFields\n")
            for loc, name, a in meta:
                if "\t" in name or "\n" in name:
                    raise MeshError(f"{where}: field name {name!r} cannot hold tabs or newlines")
                f.write(f"{loc}\t{name}\t{a.dtype.str}\t{'x'.join(str(s) for s in a.shape[1:])}\n")
            f.write("$EndMeshopsFields\n")


def _write_data(f: Any, section: str, name: str, a: np.ndarray, n_all: int, n_have: int) -> None:
    if '"' in name:
        raise MeshError(f"field name {name!r} cannot hold a double quote in Gmsh")
    if a.dtype.kind not in "biuf":
        raise MeshError(f"field '{name}' has dtype {a.dtype}; Gmsh stores numbers only")
    vals = a.reshape(len(a), -1).astype(np.float64)
    if n_all > n_have:  # boundary elements carry no field values: pad with NaN
        vals = np.vstack([vals, np.full((n_all - n_have, vals.shape[1]), np.nan)])
    f.write(f'${section}\n1\n"{name}"\n1\n0\n3\n0\n{vals.shape[1]}\n{n_all}\n')
    write_rows(f, np.arange(1, n_all + 1), vals)
    f.write(f"$End{section}\n")


register_format("gmsh", [".msh"], read_gmsh, write_gmsh,
                stores=("point_data", "cell_data", "dtypes", "mixed", "volume", "boundaries"))
