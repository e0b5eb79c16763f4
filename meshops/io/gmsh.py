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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from meshops.io._util import first_non_number, lazy_import, select_times, write_rows
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
    names: dict[tuple[int, int], str] = {}
    points = np.zeros((0, 3))
    node_ids = elem_ids = phys = geo = np.zeros(0, np.int64)
    types = np.zeros(0, dtype=object)
    conn: tuple[np.ndarray, np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
    data: dict[str, dict[str, np.ndarray]] = {"point": {}, "cell": {}}
    for sec, body in _msh2_sections(path):
        if sec == "PhysicalNames":
            for row in body[1:]:
                d, t, nm = row.split(maxsplit=2)
                names[(int(d), int(t))] = nm.strip().strip('"')
        elif sec == "Nodes":
            node_ids, points = _msh2_nodes(path, body)
        elif sec == "Elements":
            n = int(body[0])
            if len(body) - 1 < n:
                raise MeshError(f"{path}: $Elements announces {n} elements but holds {len(body) - 1}")
            elem_ids, types, conn, phys, geo = _msh2_elements(path, body[1 : n + 1], common._gmsh_to_meshio_type)
        elif sec in ("NodeData", "ElementData"):
            name, arr = _msh2_data(body)
            loc = data["point" if sec == "NodeData" else "cell"]
            loc[name or f"field{len(loc)}"] = arr  # unnamed fields numbered, never overwriting each other
    if not len(points):
        raise MeshError(f"{path}: no $Nodes section")
    blocks: list[CellBlock] = []
    ph_blocks: list[np.ndarray] = []
    ge_blocks: list[np.ndarray] = []
    for name, nodes, sel in _runs(types, conn):  # one step per run of one type, not per element
        c, ok = _id_positions(node_ids, nodes)
        if not ok.all():
            raise MeshError(f"{path}: an element uses node {int(nodes[~ok][0])}, which is not in $Nodes")
        blocks.append(CellBlock(name, _reorder(name, common._gmsh_to_meshio_order(name, c))))
        ph_blocks.append(phys[sel])
        ge_blocks.append(geo[sel])
    pdata = _msh2_by_id(path, "point", data["point"], node_ids, len(points))
    cdata = _msh2_by_id(path, "cell", data["cell"], elem_ids, len(elem_ids))
    return points, blocks, ph_blocks, ge_blocks, names, pdata, cdata


def _msh2_sections(path: Path) -> Iterator[tuple[str, list[str]]]:
    """``(name, body lines)`` of each ``$Name ... $EndName`` section, in file order."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    i, n_lines = 0, len(lines)
    while i < n_lines:
        ln = lines[i].strip()
        i += 1
        if not ln:
            continue
        if not ln.startswith("$"):
            raise MeshError(f"{path}: line {i}: expected a $Section, found '{ln[:40]}'")
        sec = ln[1:]
        end = i
        while end < n_lines and lines[end].strip() != f"$End{sec}":
            end += 1
        if end >= n_lines:
            raise MeshError(f"{path}: section ${sec} is not closed by $End{sec} (truncated?)")
        yield sec, lines[i:end]
        i = end + 1


def _msh2_nodes(path: Path, body: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Node ids (n,) and coordinates (n, 3) of a ``$Nodes`` section."""
    n = int(body[0])
    arr = np.array(" ".join(body[1:n + 1]).split(), dtype=np.float64)
    if arr.size != 4 * n:
        raise MeshError(f"{path}: $Nodes announces {n} nodes but holds {arr.size // 4}")
    arr = arr.reshape(n, 4)
    return arr[:, 0].astype(np.int64), arr[:, 1:]


def _msh2_data(body: list[str]) -> tuple[str, np.ndarray]:
    """The name (first string tag, '' if none) and the rows ``[id, values...]`` of a ``$NodeData`` / ``$ElementData``."""
    ns = int(body[0])
    strs = [body[1 + q].strip().strip('"') for q in range(ns)]
    j = 1 + ns
    j += 1 + int(body[j])  # the real tags
    ni = int(body[j])
    ints = [int(body[j + 1 + q]) for q in range(ni)]
    j += 1 + ni
    ncomp, nitems = ints[1], ints[2]
    arr = np.array(" ".join(body[j:j + nitems]).split(), dtype=np.float64).reshape(nitems, 1 + ncomp)
    return (strs[0] if strs else ""), arr


def _msh2_by_id(path: Path, loc: str, fields: dict[str, np.ndarray], ids: np.ndarray,
                count: int) -> dict[str, np.ndarray]:
    """Data rows ``[id, values...]`` placed at the positions of their ids (NaN where a row is missing)."""
    out: dict[str, np.ndarray] = {}
    for name, arr in fields.items():
        vals = np.full((count, arr.shape[1] - 1), np.nan)
        rows, ok = _id_positions(ids, arr[:, 0].astype(np.int64))
        if not ok.all():
            raise MeshError(f"{path}: {loc} field '{name}' refers to unknown id {int(arr[~ok, 0][0])}")
        vals[rows] = arr[:, 1:]
        out[name] = vals[:, 0] if vals.shape[1] == 1 else vals
    return out


def _rows(lines: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whitespace-separated numbers of ``lines``: ``(values, index of each row's first value, values per row)``."""
    if not lines:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
    raw = ("\n".join(lines) + "\n").encode()
    b = np.frombuffer(raw, dtype=np.uint8)
    starts = np.concatenate([[0], np.flatnonzero(b == 10)[:-1] + 1])
    tok = b > 32
    tok[1:] &= b[:-1] <= 32
    per_row = np.add.reduceat(tok.view(np.uint8), starts).astype(np.int64)
    try:
        num = np.fromstring(raw, sep=" ")
    except ValueError:
        num = np.zeros(0)
    if len(num) != int(per_row.sum()):
        bad = first_non_number(raw)
        raise ValueError(f"'{bad}' is not a number")
    return num, np.cumsum(per_row) - per_row, per_row


def _msh2_elements(path: Path, rows: list[str], from_type: dict) -> tuple[np.ndarray, ...]:
    """Gmsh 2 element rows ``id type ntags tags... nodes...`` parsed at once (no loop per element).

    Returns ids, type names (object array), ``(values, first node index, node count)`` per element,
    physical and geometrical tags.
    """
    try:
        num, first, per_row = _rows(rows)
    except ValueError as e:
        raise MeshError(f"{path}: $Elements: {e}") from None
    if len(rows) and int(per_row.min()) < 3:
        raise MeshError(f"{path}: $Elements: element row {int(np.argmin(per_row)) + 1} is too short")
    ids, code, nt = (num[first + j].astype(np.int64) for j in range(3))
    names = np.empty(len(rows), dtype=object)
    for c in np.unique(code).tolist():  # a handful of element types
        t = from_type.get(int(c))
        if t is None:
            raise MeshError(f"{path}: element {int(ids[np.argmax(code == c)])} has unknown Gmsh type {c}")
        names[code == c] = t
    tag = lambda j: np.where(nt > j, num[np.minimum(first + 3 + j, len(num) - 1)], 0).astype(np.int64)  # noqa: E731
    cnt = per_row - 3 - nt
    return ids, names, (num, first + 3 + nt, cnt), tag(0), tag(1)


def _runs(types: np.ndarray, conn: tuple[np.ndarray, np.ndarray, np.ndarray]):
    """``(type, node ids (m, k), slice)`` per run of elements with one type and node count."""
    num, start, cnt = conn
    n = len(types)
    if n == 0:
        return
    change = np.flatnonzero((types[1:] != types[:-1]) | (cnt[1:] != cnt[:-1])) + 1
    for a, b in zip(np.concatenate([[0], change]), np.concatenate([change, [n]]), strict=True):
        k = int(cnt[a])
        yield types[a], num[start[a:b, None] + np.arange(k)].astype(np.int64), slice(int(a), int(b))


def _id_positions(ids: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position in ``ids`` of each query id (the last one when repeated) and whether it was found."""
    if len(ids) and np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids))):  # the usual 1..n numbering
        pos = query - ids[0]
        ok = (pos >= 0) & (pos < len(ids))
        return np.where(ok, pos, 0), ok
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    pos = np.clip(np.searchsorted(s, query, side="right") - 1, 0, max(len(s) - 1, 0))
    ok = s[pos] == query if len(s) else np.zeros(len(query), dtype=bool)
    return order[pos], ok


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
