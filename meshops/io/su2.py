"""SU2 native meshes (``.su2``): elements, points and named markers (boundary regions).

The reader keeps element and point order as in the file. Marker names (``MARKER_TAG``) become
named boundary regions indexing the mesh points. SU2 mesh files hold no fields; the writer warns
before dropping any. Coordinates are written with the digits they need (15 or 17) to read back exact.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from meshops.io._util import first_non_number, select_times, write_rows
from meshops.io.registry import register_format
from meshops.mesh import CELL_NODES, CellBlock, Mesh, MeshError

log = logging.getLogger(__name__)

SU2_TO_TYPE = {3: "line", 5: "triangle", 9: "quad", 10: "tetra", 12: "hexahedron", 13: "wedge", 14: "pyramid"}
TYPE_TO_SU2 = {v: k for k, v in SU2_TO_TYPE.items()}


class _Lines:
    """The file's content lines (comments after ``%`` and blank lines dropped), found with numpy.

    Keyword lines are decoded one by one; a block of ``n`` data rows is parsed in one go
    (:meth:`table`), with no Python loop per row.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        b = np.frombuffer(path.read_bytes() + b"\n", dtype=np.uint8).copy()
        nl = np.flatnonzero(b == 10)
        starts = np.concatenate([[0], nl[:-1] + 1])
        pct = np.flatnonzero(b == 37)  # '%': the rest of the line is a comment
        if len(pct):
            line_of = np.searchsorted(nl, pct)  # the line of each '%'
            first = pct[np.concatenate([[True], line_of[1:] != line_of[:-1]])]
            ends = nl[np.unique(line_of)]
            mark = np.zeros(len(b) + 1, dtype=np.int8)
            np.add.at(mark, first, 1)
            np.add.at(mark, ends, -1)
            b[np.cumsum(mark[:-1]) > 0] = 32
        b[b < 32] = 32  # tabs, carriage returns: spaces (newlines restored below)
        b[nl] = 10
        count = np.add.reduceat((b > 32).view(np.uint8), starts) if len(starts) else starts
        keep = np.flatnonzero(count > 0)
        self.bytes, self.start, self.end = b, starts[keep], nl[keep]
        self.i = 0

    def next_content(self) -> str | None:
        if self.i >= len(self.start):
            return None
        s, e = self.start[self.i], self.end[self.i]
        self.i += 1
        return self.bytes[s:e].tobytes().decode("utf-8", errors="replace").strip()

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

    def table(self, n: int, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next ``n`` rows as numbers: ``(values, first token of each row, tokens per row)``.

        Raises :class:`MeshError` when the file ends early or a token is not a number.
        """
        have = len(self.start) - self.i
        if have < n:
            raise MeshError(f"{self.path}: file ends after {have} of {n} {what} (truncated?)")
        if n == 0:
            return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
        s, e = self.start[self.i], self.end[self.i + n - 1]
        lo = self.start[self.i : self.i + n] - s
        self.i += n
        b = self.bytes[s : e + 1]
        tok = b > 32
        tok[1:] &= b[:-1] <= 32  # first byte of each token
        per_row = np.add.reduceat(tok.view(np.uint8), lo).astype(np.int64)
        first = np.cumsum(per_row) - per_row  # tokens before each row
        total = int(per_row.sum())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns, and stops, at the first token that is no number
            try:
                num = np.fromstring(b.tobytes(), sep=" ")
            except ValueError:
                num = np.zeros(0)
        if len(num) != total:  # the error path only: find the offending token for the message
            bad = first_non_number(b.tobytes())
            raise MeshError(f"{self.path}: {what}: a value is not a number ('{bad}')")
        return num, first, per_row


def _elements(L: _Lines, n: int, path: Path, what: str) -> list[CellBlock]:
    """``n`` element rows ``type node... [index]`` as cell blocks (runs of one type, file order)."""
    num, first, per_row = L.table(n, what if what == "elements" else f"{what} elements")
    if n == 0:
        return []
    t = num[first]
    lut = np.full(256, -1, dtype=np.int64)
    for code, name in SU2_TO_TYPE.items():
        lut[code] = CELL_NODES[name]
    ti = np.where((t == np.round(t)) & (t >= 0) & (t < 256), t, 255).astype(np.int64)
    k = lut[ti]
    bad = np.flatnonzero(k < 0)
    if len(bad):
        raise MeshError(f"{path}: {what}: unknown SU2 element type '{_fmt(t[bad[0]])}'")
    short = np.flatnonzero(per_row < k + 1)
    if len(short):
        r = int(short[0])
        raise MeshError(f"{path}: {what}: element of type {SU2_TO_TYPE[int(ti[r])]} needs {int(k[r])} nodes, "
                        f"got {int(per_row[r]) - 1}")
    change = np.flatnonzero(ti[1:] != ti[:-1]) + 1
    blocks: list[CellBlock] = []
    for a, b in zip(np.r_[0, change], np.r_[change, n], strict=True):  # one step per run of a type
        kk = int(k[a])
        cols = (first[a:b] + 1)[:, None] + np.arange(kk)
        nodes = num[cols]
        if not np.all(nodes == np.round(nodes)):
            bad_v = nodes[nodes != np.round(nodes)][0]
            raise MeshError(f"{path}: {what}: non-integer node index ({_fmt(bad_v)})")
        blocks.append(CellBlock(SU2_TO_TYPE[int(ti[a])], nodes.astype(np.int64)))
    return blocks


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


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
    cells = _elements(L, nelem, path, "elements")
    npoin = L.count("NPOIN")
    try:
        num, first, per_row = L.table(npoin, "points")
    except MeshError as e:
        raise MeshError(str(e).replace("points: a value is not a number", "points: a coordinate is not a number")) from None
    if npoin and int(per_row.min()) < ndime:
        raise MeshError(f"{path}: points: expected {ndime} coordinates per point")
    pts = num[first[:, None] + np.arange(ndime)] if npoin else np.zeros((0, ndime))
    boundaries: dict[str, list[CellBlock]] = {}
    ln = L.next_content()
    if ln is not None:
        L.i -= 1
        nmark = L.count("NMARK")
        for _ in range(nmark):
            tag = L.keyword("MARKER_TAG")
            ne = L.count("MARKER_ELEMS")
            boundaries[tag] = _elements(L, ne, path, f"marker '{tag}'")
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
    write_rows(f, *cols)


register_format("su2", [".su2"], read_su2, write_su2, stores=("mixed", "volume", "boundaries"),
                cell_types=set(TYPE_TO_SU2))
