"""SU2 native meshes (``.su2``): elements, points and named markers (boundary regions).

The reader keeps element and point order as in the file. Marker names (``MARKER_TAG``) become
named boundary regions indexing the mesh points. SU2 mesh files hold no fields; the writer warns
before dropping any. Coordinates are written with the digits they need (15 or 17) to read back exact.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from meshops.io._util import select_times, write_rows
from meshops.io.registry import register_format
from meshops.mesh import CELL_NODES, CellBlock, Mesh, MeshError

log = logging.getLogger(__name__)

SU2_TO_TYPE = {3: "line", 5: "triangle", 9: "quad", 10: "tetra", 12: "hexahedron", 13: "wedge", 14: "pyramid"}
TYPE_TO_SU2 = {v: k for k, v in SU2_TO_TYPE.items()}


class _Lines:
    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, encoding="utf-8", errors="replace") as f:
            raw = f.read().splitlines()
        self.lines = [ln.split("%", 1)[0].strip() for ln in raw]
        self.i = 0

    def next_content(self) -> str | None:
        while self.i < len(self.lines):
            ln = self.lines[self.i]
            self.i += 1
            if ln:
                return ln
        return None

    def keyword(self, key: str) -> str:
        ln = self.next_content()
        if ln is None:
            raise MeshError(f"{self.path}: file ends where '{key}=' was expected (truncated?)")
        k, sep, v = ln.partition("=")
        if not sep or k.strip().upper() != key:
            raise MeshError(f"{self.path}: line {self.i}: expected '{key}=', found '{ln[:60]}'")
        return v.strip()

    def count(self, key: str) -> int:
        v = self.keyword(key)
        try:
            return int(v.split()[0])
        except (ValueError, IndexError):
            raise MeshError(f"{self.path}: line {self.i}: '{key}=' has no count ('{v}')") from None

    def rows(self, n: int, what: str) -> list[list[str]]:
        out = []
        while len(out) < n:
            ln = self.next_content()
            if ln is None:
                raise MeshError(f"{self.path}: file ends after {len(out)} of {n} {what} (truncated?)")
            out.append(ln.split())
        return out


def _elements(rows: list[list[str]], path: Path, what: str) -> list[CellBlock]:
    types, data = [], []
    for r in rows:
        try:
            t = int(r[0])
            name = SU2_TO_TYPE[t]
        except (ValueError, KeyError):
            raise MeshError(f"{path}: {what}: unknown SU2 element type '{r[0]}'") from None
        k = CELL_NODES[name]
        if len(r) < k + 1:
            raise MeshError(f"{path}: {what}: element of type {name} needs {k} nodes, got {len(r) - 1}")
        types.append(name)
        data.append(r[1: k + 1])
    blocks: list[CellBlock] = []
    start = 0
    for i in range(1, len(types) + 1):
        if i == len(types) or types[i] != types[start]:
            try:
                arr = np.array(data[start:i], dtype=np.int64)
            except ValueError as e:
                raise MeshError(f"{path}: {what}: non-integer node index ({e})") from None
            blocks.append(CellBlock(types[start], arr))
            start = i
    return blocks


def read_su2(path: Path, time: Any = None, **kw: Any) -> Mesh:
    """Read an SU2 mesh (single zone). Markers become ``mesh.boundaries``.

    Shapes
    ------
    ``points`` (n, 3) float64 (z = 0 for NDIME=2), cell blocks (m, k) int64 in file order.
    """
    select_times(path, [], None if time in (None, "all") else time)
    L = _Lines(path)
    first = L.next_content()
    if first is None:
        raise MeshError(f"{path}: the file is empty")
    if first.upper().startswith("NZONE"):
        raise MeshError(f"{path}: multi-zone SU2 meshes are not supported")
    L.i -= 1
    ndime = L.count("NDIME")
    if ndime not in (2, 3):
        raise MeshError(f"{path}: NDIME={ndime}, expected 2 or 3")
    nelem = L.count("NELEM")
    cells = _elements(L.rows(nelem, "elements"), path, "elements")
    npoin = L.count("NPOIN")
    prow = L.rows(npoin, "points")
    try:
        pts = np.array([r[:ndime] for r in prow], dtype=np.float64)
    except ValueError as e:
        raise MeshError(f"{path}: points: a coordinate is not a number ({e})") from None
    if pts.shape != (npoin, ndime):
        raise MeshError(f"{path}: points: expected {ndime} coordinates per point")
    boundaries: dict[str, list[CellBlock]] = {}
    ln = L.next_content()
    if ln is not None:
        L.i -= 1
        nmark = L.count("NMARK")
        for _ in range(nmark):
            tag = L.keyword("MARKER_TAG")
            ne = L.count("MARKER_ELEMS")
            boundaries[tag] = _elements(L.rows(ne, f"marker '{tag}' elements"), path, f"marker '{tag}'")
    mesh = Mesh(points=pts, cells=cells, boundaries=boundaries, source=str(path))
    mesh.dim = ndime
    return mesh


def write_su2(mesh: Mesh, path: Path, **kw: Any) -> None:
    """Write an SU2 mesh; boundaries become markers. Fields are not stored by the format."""
    for b in mesh.cells + [c for v in mesh.boundaries.values() for c in v]:
        if b.type not in TYPE_TO_SU2:
            raise MeshError(f"{path}: SU2 has no element type for '{b.type}' cells")
    dim = mesh.dim
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"NDIME= {dim}\n")
        f.write(f"NELEM= {mesh.n_cells}\n")
        i0 = 0
        for b in mesh.cells:
            _write_elems(f, b, i0)
            i0 += len(b)
        f.write(f"NPOIN= {mesh.n_points}\n")
        pts = mesh.points[:, :dim]
        idx = np.arange(mesh.n_points)[:, None]
        write_rows(f, pts, idx)
        f.write(f"NMARK= {len(mesh.boundaries)}\n")
        for name, blocks in mesh.boundaries.items():
            if any(c.isspace() for c in name) or "=" in name:
                raise MeshError(f"{path}: SU2 marker names cannot hold spaces or '=': '{name}'")
            f.write(f"MARKER_TAG= {name}\nMARKER_ELEMS= {sum(len(b) for b in blocks)}\n")
            for b in blocks:
                _write_elems(f, b, None)


def _write_elems(f: Any, b: CellBlock, start: int | None) -> None:
    if not len(b):
        return
    cols = [np.full((len(b), 1), TYPE_TO_SU2[b.type]), b.data]
    if start is not None:
        cols.append(np.arange(start, start + len(b))[:, None])
    np.savetxt(f, np.hstack(cols).astype(np.int64), fmt="%d", delimiter="\t")


register_format("su2", [".su2"], read_su2, write_su2, stores=("mixed", "volume", "boundaries"),
                cell_types=set(TYPE_TO_SU2))
