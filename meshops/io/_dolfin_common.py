"""What the dolfin readers share: the cell tables, the mesh and function records and the dof-map rule.

Used by :mod:`meshops.io.dolfin` (``HDF5File`` cases) and :mod:`meshops.io.dolfin_xdmf` (XDMF
checkpoints); it imports neither. The rule (CG1 -> point fields, DG0 -> cell fields, exact and
checked) is described in :mod:`meshops.io.dolfin`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meshops.mesh import CellBlock, Mesh, MeshError

_CELLS = {"interval": ("line", 2), "triangle": ("triangle", 3), "tetrahedron": ("tetra", 4),
          "quadrilateral": ("quad", 4), "hexahedron": ("hexahedron", 8)}
# dolfin orders quadrilateral/hexahedron vertices lexicographically; VTK goes around the faces
_TO_VTK = {"quad": [0, 1, 3, 2], "hexahedron": [0, 1, 3, 2, 4, 5, 7, 6]}


@dataclass
class _MeshData:
    coordinates: np.ndarray          # (n, gdim) float64
    topology: np.ndarray             # (m, k) int64, dolfin vertex order
    celltype: str                    # dolfin name
    cell_indices: np.ndarray         # (m,) global index of each topology row
    where: str


@dataclass
class _Function:
    name: str
    where: str
    signature: str
    cells: Any                       # lazy datasets (h5py) or arrays
    cell_dofs: Any
    x_cell_dofs: Any
    vectors: list[Any]               # one dataset per time
    times: list[float] | None        # None: one state, no timestamp
    n_dofs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _element(fn: _Function, k: int, dpc: np.ndarray) -> tuple[str, int]:
    """``("point" | "cell", value size)`` from the signature (or, without one, the dofs per cell)."""
    sig = fn.signature
    dpc0 = int(dpc[0]) if len(dpc) else 0
    if len(dpc) and not np.all(dpc == dpc0):
        raise MeshError(f"{fn.where}: cells have different numbers of dofs ({sorted(set(dpc.tolist()))[:5]}); "
                        "only CG1 and DG0 functions are read")
    if sig:
        m = re.search(r"FiniteElement\('([^']+)',\s*[A-Za-z]+\d?,\s*(\d+)", sig)
        if not m:
            raise MeshError(f"{fn.where}: element '{sig}' is not supported (CG1 and DG0 only)")
        family, degree = m.group(1), int(m.group(2))
        if family in ("Lagrange", "CG", "Q") and degree == 1:
            loc = "point"
        elif family in ("Discontinuous Lagrange", "DG", "DQ") and degree == 0:
            loc = "cell"
        else:
            raise MeshError(f"{fn.where}: element '{sig}' ({family} degree {degree}) is not supported; "
                            "meshops reads CG1 (vertex) and DG0 (cell) functions")
        per = k if loc == "point" else 1
        if dpc0 % per:
            raise MeshError(f"{fn.where}: {dpc0} dofs per cell do not fit element '{sig}' on {k}-vertex cells")
        return loc, dpc0 // per
    if dpc0 % k == 0:
        return "point", dpc0 // k
    raise MeshError(f"{fn.where}: {dpc0} dofs per cell on {k}-vertex cells and no 'signature' attribute: "
                    "cannot tell the element")


def _rows_for(fn_cells: np.ndarray, mesh: _MeshData, where: str) -> np.ndarray:
    """The topology row of each dof-map row (via the global cell indices)."""
    order = np.argsort(mesh.cell_indices, kind="stable")
    pos = np.searchsorted(mesh.cell_indices, fn_cells, sorter=order)
    pos = np.clip(pos, 0, len(order) - 1)
    rows = order[pos]
    bad = mesh.cell_indices[rows] != fn_cells
    if np.any(bad):
        c = int(fn_cells[np.flatnonzero(bad)[0]])
        raise MeshError(f"{where}: the dof map names cell {c}, which the mesh {mesh.where} does not have")
    return rows


@dataclass
class _DofMap:
    loc: str                 # "point" or "cell"
    vs: int                  # value size
    target: np.ndarray       # (n_points or n_cells, vs) int64: the dof holding each value


def _dof_map(fn: _Function, mesh: _MeshData) -> _DofMap:
    cells = np.asarray(fn.cells[()], dtype=np.int64).ravel()
    x = np.asarray(fn.x_cell_dofs[()], dtype=np.int64).ravel()
    dofs = np.asarray(fn.cell_dofs[()], dtype=np.int64).ravel()
    m, k = mesh.topology.shape
    if len(cells) != m or len(x) != m + 1:
        raise MeshError(f"{fn.where}: dof map for {len(cells)} cells ({len(x)} offsets) but the mesh "
                        f"{mesh.where} has {m} cells")
    dpc = np.diff(x)
    loc, vs = _element(fn, k, dpc)
    if x[-1] - x[0] != len(dofs) or np.any(dpc < 0):
        raise MeshError(f"{fn.where}: x_cell_dofs runs {x[0]}..{x[-1]} but cell_dofs has {len(dofs)} entries")
    rows = _rows_for(cells, mesh, fn.where)
    if len(dofs) and (dofs.min() < 0 or dofs.max() >= fn.n_dofs):
        bad = int(dofs.max() if dofs.max() >= fn.n_dofs else dofs.min())
        raise MeshError(f"{fn.where}: cell_dofs names dof {bad} but the vector has {fn.n_dofs} values")
    per_cell = dofs[(x[:-1, None] - x[0]) + np.arange(int(dpc[0]) if m else 0)[None, :]]   # (m, dpc)
    if loc == "cell":
        target = np.empty((m, vs), dtype=np.int64)
        target[rows] = per_cell.reshape(m, vs)
        return _DofMap(loc, vs, target)
    blocks = per_cell.reshape(m, vs, k)                     # component-major within a cell
    verts = mesh.topology[rows]                             # (m, k)
    n = len(mesh.coordinates)
    target = np.full((n, vs), -1, dtype=np.int64)
    target[verts.ravel()] = blocks.transpose(0, 2, 1).reshape(m * k, vs)
    if np.any(target[verts.ravel()] != blocks.transpose(0, 2, 1).reshape(m * k, vs)):
        raise MeshError(f"{fn.where}: two cells give one vertex different dofs: not a continuous (CG1) function")
    if np.any(target < 0):
        v = int(np.flatnonzero((target < 0).any(axis=1))[0])
        raise MeshError(f"{fn.where}: vertex {v} of {mesh.where} lies in no cell, so it has no value")
    return _DofMap(loc, vs, target)


def _values(vec: Any, dm: _DofMap) -> np.ndarray:
    v = np.asarray(vec[()]).ravel()
    out = v[dm.target]
    return out[:, 0] if dm.vs == 1 else out


def _to_mesh(md: _MeshData, source: str) -> Mesh:
    ctype, _ = _CELLS[md.celltype]
    top = md.topology[:, _TO_VTK[ctype]] if ctype in _TO_VTK else md.topology
    gdim = md.coordinates.shape[1]
    pts = np.zeros((len(md.coordinates), 3))
    pts[:, :gdim] = md.coordinates
    return Mesh(pts, [CellBlock(ctype, top)], dim=3 if gdim == 3 else 2, source=source)
