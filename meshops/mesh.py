"""The lossless in-memory mesh container.

A :class:`Mesh` holds points, cell blocks of any type, point and cell fields, named boundary
regions and where it came from. It only needs numpy; the converters to meshio, pyvista and trimesh
(:mod:`meshops.mesh_convert`) import those packages when called.

Loading is lossless: a Mesh never merges, drops or reorders points on its own. Anything that does
is an explicit transform returning its permutation.
"""

from __future__ import annotations

import copy as _copy
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meshops.cells import CELL_DIM, CELL_NODES
from meshops.errors import MeshError

__all__ = ["CELL_DIM", "CELL_NODES", "CellBlock", "Mesh", "MeshError", "add_face_id_boundaries", "concat_blocks",
           "count_degenerate"]

log = logging.getLogger(__name__)


@dataclass
class CellBlock:
    """Cells of one type.

    Attributes
    ----------
    type : str
        A meshio cell type name (``"triangle"``, ``"tetra"``, ``"polygon"``, ...).
    data : (m, k) int64
        Point indices of each cell. Polygons with different vertex counts live in separate blocks.
    """

    type: str
    data: np.ndarray

    def __post_init__(self) -> None:
        self.type = str(self.type)
        self.data = np.asarray(self.data)
        if self.data.ndim == 1:
            self.data = self.data.reshape(-1, 1)
        if np.issubdtype(self.data.dtype, np.integer) and self.data.dtype != np.int64:
            # One index dtype everywhere (readers hand back int32 or uint64 depending on the format).
            self.data = self.data.astype(np.int64)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def dim(self) -> int:
        return CELL_DIM.get(self.type, 3)


def _as_blocks(cells: Any) -> list[CellBlock]:
    if cells is None:
        return []
    if isinstance(cells, Mapping):
        return [CellBlock(t, np.asarray(d)) for t, d in cells.items()]
    out = []
    for c in cells:
        if isinstance(c, CellBlock):
            out.append(CellBlock(c.type, np.asarray(c.data)))
        else:
            t, d = c if isinstance(c, tuple) else (c.type, c.data)
            out.append(CellBlock(str(t), np.asarray(d)))
    return out


@dataclass
class Mesh:
    """Points, cells, fields and boundary regions of one mesh (or one time step of it).

    Attributes
    ----------
    points : (n, 3) float64
        Coordinates. 2D meshes are stored with z = 0 and ``dim == 2``.
    cells : list of CellBlock
        Cell blocks in file order; the global cell index runs over the blocks in this order.
    point_data : dict of str -> (n, ...) array
        Fields on points, dtypes kept as read.
    cell_data : dict of str -> (n_cells, ...) array
        Fields on cells, concatenated over the blocks in block order.
    boundaries : dict of str -> list of CellBlock
        Named boundary regions (OpenFOAM patches, Gmsh physical groups, VTP face ids): faces (3D) or
        edges (2D) indexing into ``points``.
    dim : int
        Geometric dimension, 2 or 3.
    source : str or None
        The path the mesh was read from.
    time : float or None
        The time step this mesh holds, for time series.
    field_data : dict
        Any extra metadata carried by the file (kept for round trips).
    """

    points: np.ndarray
    cells: list[CellBlock] = field(default_factory=list)
    point_data: dict[str, np.ndarray] = field(default_factory=dict)
    cell_data: dict[str, np.ndarray] = field(default_factory=dict)
    boundaries: dict[str, list[CellBlock]] = field(default_factory=dict)
    dim: int = 3
    source: str | None = None
    time: float | None = None
    field_data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pts = np.asarray(self.points)
        if pts.ndim != 2 or pts.shape[1] not in (2, 3):
            raise MeshError(f"{self._where()}: points must have shape (n, 2) or (n, 3), got {pts.shape}")
        if pts.shape[1] == 2:
            pts = np.hstack([pts, np.zeros((pts.shape[0], 1), dtype=pts.dtype)])
            self.dim = 2
        self.points = np.ascontiguousarray(pts, dtype=np.float64)
        self.cells = _as_blocks(self.cells)
        self.point_data = {str(k): _native(v) for k, v in dict(self.point_data).items()}
        self.cell_data = {str(k): _native(v) for k, v in dict(self.cell_data).items()}
        self.boundaries = {str(k): _as_blocks(v) for k, v in dict(self.boundaries).items()}

    # ------------------------------------------------------------------ basic facts
    def _where(self) -> str:
        return self.source or "<mesh>"

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    @property
    def n_cells(self) -> int:
        return int(sum(len(b) for b in self.cells))

    @property
    def cell_types(self) -> dict[str, int]:
        """Number of cells per type (blocks of the same type summed)."""
        out: dict[str, int] = {}
        for b in self.cells:
            out[b.type] = out.get(b.type, 0) + len(b)
        return out

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3) float64: lower and upper corner of the bounding box."""
        if self.n_points == 0:
            return np.full((2, 3), np.nan)
        return np.stack([self.points.min(0), self.points.max(0)])

    @property
    def topological_dim(self) -> int:
        """Highest dimension among the cell blocks (0 for a bare point cloud)."""
        return max((b.dim for b in self.cells), default=0)

    def cells_of_type(self, *types: str) -> np.ndarray:
        """All cells of the given types concatenated, ``(m, k)``; types must share ``k``."""
        blocks = [b.data for b in self.cells if b.type in types]
        if not blocks:
            k = CELL_NODES.get(types[0], 0) if types else 0
            return np.zeros((0, k), dtype=np.int64)
        return np.concatenate(blocks).astype(np.int64, copy=False)

    # ------------------------------------------------------------------ checks
    def validate(self, *, check_finite: bool = True) -> Mesh:
        """Check sizes and indices; raise :class:`MeshError` naming the source, the field and the value.

        NaN or Inf in a field is reported with a warning (the data may legitimately hold them).
        Returns ``self`` so it chains.
        """
        where = self._where()
        n = self.n_points
        if n == 0:
            raise MeshError(f"{where}: the mesh is empty (0 points)")
        if not np.all(np.isfinite(self.points)):
            bad = int(np.argwhere(~np.isfinite(self.points))[0, 0])
            raise MeshError(f"{where}: point {bad} has a non-finite coordinate {self.points[bad].tolist()}")
        for b in self.cells:
            known = b.type in CELL_DIM or b.type.startswith("vtk_type_")
            if not known:
                raise MeshError(f"{where}: unknown cell type '{b.type}' (known: {', '.join(sorted(CELL_NODES))}, ...)")
            k = CELL_NODES.get(b.type)
            if k is not None and len(b) and b.data.shape[1] != k:
                raise MeshError(f"{where}: cell block '{b.type}' has {b.data.shape[1]} columns, a {b.type} has {k} nodes")
        for blocks, what in [(self.cells, "cells")] + [
            (v, f"boundary '{k}'") for k, v in self.boundaries.items()
        ]:
            for b in blocks:
                if b.data.size == 0:
                    continue
                if not np.issubdtype(b.data.dtype, np.integer):
                    raise MeshError(f"{where}: {what} block '{b.type}' has non-integer indices ({b.data.dtype})")
                hi, lo = int(b.data.max()), int(b.data.min())
                if hi >= n or lo < 0:
                    bad = hi if hi >= n else lo
                    raise MeshError(
                        f"{where}: {what} block '{b.type}' indexes point {bad} but the mesh has {n} points"
                    )
        nc = self.n_cells
        for loc, data, count in (("point", self.point_data, n), ("cell", self.cell_data, nc)):
            for name, arr in data.items():
                if arr.shape[:1] != (count,):
                    got = arr.shape[0] if arr.ndim else 0
                    raise MeshError(
                        f"{where}: {loc} field '{name}' has {got} values but the mesh has {count} {loc}s"
                    )
                if check_finite and np.issubdtype(arr.dtype, np.floating):
                    bad = ~np.isfinite(arr)
                    if bad.any():
                        first = int(np.argwhere(bad)[0, 0])
                        log.warning(
                            "%s: %s field '%s' has %d non-finite values (first at %s %d: %s)",
                            where, loc, name, int(bad.sum()), loc, first, arr[first],
                        )
        return self

    # ------------------------------------------------------------------ copies and fields
    def copy(self) -> Mesh:
        """A deep copy (arrays copied)."""
        return _copy.deepcopy(self)

    def with_fields(
        self,
        point_data: Mapping[str, Any] | None = None,
        cell_data: Mapping[str, Any] | None = None,
        **more_point_data: Any,
    ) -> Mesh:
        """A new mesh with fields added or replaced; ``self`` is not modified.

        Arrays are converted with ``np.asarray`` (a torch CPU tensor works) and checked against
        the mesh size.
        """
        out = Mesh(
            points=self.points,
            cells=[CellBlock(b.type, b.data) for b in self.cells],
            point_data=dict(self.point_data),
            cell_data=dict(self.cell_data),
            boundaries={k: [CellBlock(b.type, b.data) for b in v] for k, v in self.boundaries.items()},
            dim=self.dim,
            source=self.source,
            time=self.time,
            field_data=dict(self.field_data),
        )
        for name, v in {**dict(point_data or {}), **more_point_data}.items():
            a = _to_numpy(v)
            if a.shape[:1] != (self.n_points,):
                raise MeshError(
                    f"{self._where()}: point field '{name}' has {a.shape[0] if a.ndim else 0} values "
                    f"but the mesh has {self.n_points} points"
                )
            out.point_data[name] = a
        for name, v in dict(cell_data or {}).items():
            a = _to_numpy(v)
            if a.shape[:1] != (self.n_cells,):
                raise MeshError(
                    f"{self._where()}: cell field '{name}' has {a.shape[0] if a.ndim else 0} values "
                    f"but the mesh has {self.n_cells} cells"
                )
            out.cell_data[name] = a
        return out

    def diff(self, other: Mesh, *, check_boundaries: bool = True) -> list[str]:
        """Differences from ``other`` in points, cells, fields (values and dtypes) and boundaries.

        Adjacent cell blocks of the same type are compared as one block (formats merge them), so
        the comparison is on the cell sequence, which is what the global cell index runs over.
        An empty list means the two meshes are identical.

        Shapes
        ------
        Compares ``points`` (n, 3), each cell type run (m, k), and every field (n, ...).
        """
        out: list[str] = []
        if self.points.shape != other.points.shape:
            out.append(f"points shape {self.points.shape} != {other.points.shape}")
        elif not np.array_equal(self.points, other.points):
            bad = int(np.argwhere(np.any(self.points != other.points, axis=1))[0, 0])
            out.append(f"point {bad}: {self.points[bad].tolist()} != {other.points[bad].tolist()}")
        if self.dim != other.dim:
            out.append(f"dim {self.dim} != {other.dim}")
        a, b = _runs(self.cells), _runs(other.cells)
        if [t for t, _ in a] != [t for t, _ in b]:
            out.append(f"cell types {[(t, len(d)) for t, d in a]} != {[(t, len(d)) for t, d in b]}")
        else:
            for (t, da), (_, db) in zip(a, b, strict=True):
                if da.shape != db.shape or not np.array_equal(da, db):
                    out.append(f"cells of type '{t}' differ ({da.shape} vs {db.shape})")
        for loc, fa, fb in (("point", self.point_data, other.point_data), ("cell", self.cell_data, other.cell_data)):
            if sorted(fa) != sorted(fb):
                out.append(f"{loc} fields {sorted(fa)} != {sorted(fb)}")
            for k in sorted(set(fa) & set(fb)):
                x, y = fa[k], fb[k]
                if x.dtype != y.dtype:
                    out.append(f"{loc} field '{k}' dtype {x.dtype} != {y.dtype}")
                elif x.shape != y.shape:
                    out.append(f"{loc} field '{k}' shape {x.shape} != {y.shape}")
                elif not np.array_equal(x, y, equal_nan=np.issubdtype(x.dtype, np.inexact)):
                    out.append(f"{loc} field '{k}' values differ")
        if check_boundaries:
            if sorted(self.boundaries) != sorted(other.boundaries):
                out.append(f"boundaries {sorted(self.boundaries)} != {sorted(other.boundaries)}")
            else:
                for k in self.boundaries:
                    ra, rb = _runs(self.boundaries[k]), _runs(other.boundaries[k])
                    if len(ra) != len(rb) or any(
                        ta != tb or not np.array_equal(x, y) for (ta, x), (tb, y) in zip(ra, rb, strict=True)
                    ):
                        out.append(f"boundary '{k}' differs")
        return out

    def equals(self, other: Mesh, *, check_boundaries: bool = True) -> bool:
        """True when :meth:`diff` finds nothing."""
        return not self.diff(other, check_boundaries=check_boundaries)

    def __repr__(self) -> str:
        types = ", ".join(f"{t}: {c}" for t, c in self.cell_types.items())
        return (
            f"Mesh({self.n_points} points, {self.n_cells} cells [{types}], {self.dim}D, "
            f"point fields {sorted(self.point_data)}, cell fields {sorted(self.cell_data)}, "
            f"boundaries {sorted(self.boundaries)}, source={self.source!r})"
        )

    # ------------------------------------------------------------------ converters (in meshops.mesh_convert)
    def to_meshio(self) -> Any:
        """A ``meshio.Mesh`` (cell fields split per block, boundaries as extra cell sets)."""
        from meshops.mesh_convert import to_meshio

        return to_meshio(self)

    @classmethod
    def from_meshio(cls, m: Any, source: str | None = None) -> Mesh:
        """Build from a ``meshio.Mesh``; Gmsh physical groups become named boundary regions."""
        from meshops.mesh_convert import meshio_to_parts

        mesh = cls(**meshio_to_parts(m, source))
        if mesh.dim == 3 and mesh.n_points and np.all(mesh.points[:, 2] == 0) and mesh.topological_dim <= 2:
            mesh.dim = 2
        return mesh

    def to_pyvista(self) -> Any:
        """The natural pyvista dataset: ``PolyData`` for point clouds and surfaces, else ``UnstructuredGrid``.

        Surfaces are meshes whose cells are all vertices, lines, polygons or strips, in VTK's poly
        data order (so the cell order is kept). Split poly-lines and strips are put back, tensor
        fields are flattened to (n, a*b) with their shape in field data, ``field_data`` arrays become
        VTK field data. The conversion lives in :mod:`meshops.mesh_vtk`.
        """
        from meshops.mesh_convert import to_pyvista

        return to_pyvista(self)

    @classmethod
    def from_pyvista(cls, obj: Any, source: str | None = None, *, face_ids: bool = True) -> Mesh:
        """Build from any pyvista dataset; point and cell order kept (MultiBlocks combined unmerged).

        Poly-lines and triangle strips become 2-point lines and triangles (cell values repeated);
        surface face-id arrays (``ModelFaceID``, ...) become named boundary regions unless
        ``face_ids=False``.
        """
        from meshops.mesh_convert import pyvista_to_parts

        mesh = cls(**pyvista_to_parts(obj, source))
        if mesh.n_points and mesh.topological_dim <= 2 and not np.any(mesh.points[:, 2]):
            mesh.dim = 2
        if face_ids:
            add_face_id_boundaries(mesh)
        return mesh

    def to_trimesh(self) -> Any:
        """A ``trimesh.Trimesh`` of the triangle (and split quad) faces, with ``process=False``."""
        from meshops.mesh_convert import to_trimesh

        return to_trimesh(self)

    @classmethod
    def from_trimesh(cls, tm: Any, source: str | None = None) -> Mesh:
        """Build from a ``trimesh.Trimesh`` (vertex order kept)."""
        from meshops.mesh_convert import trimesh_to_parts

        return cls(**trimesh_to_parts(tm, source))


#: Cell arrays on surfaces that name boundary regions (one region per distinct value).
FACE_ID_ARRAYS = ("ModelFaceID", "CapID", "FaceID", "FaceIDs", "face_id", "BoundaryID", "BC_FaceID")


def add_face_id_boundaries(mesh: Mesh) -> Mesh:
    """On a surface mesh, turn each value of a face-id cell array into a named boundary region.

    Region names are ``"<array>_<value>"`` (e.g. ``ModelFaceID_3``); the array itself stays a
    cell field. Meshes with volume cells are left alone (their ids label regions, not boundaries).
    """
    if mesh.topological_dim != 2 or mesh.boundaries:
        return mesh
    for name in FACE_ID_ARRAYS:
        ids = mesh.cell_data.get(name)
        if ids is None or ids.ndim != 1 or ids.dtype.kind not in "iu":
            continue
        offsets = np.cumsum([0] + [len(b) for b in mesh.cells])
        for v in np.unique(ids):
            region = []
            for i, b in enumerate(mesh.cells):
                sel = ids[offsets[i]: offsets[i + 1]] == v
                if sel.any():
                    region.append(CellBlock(b.type, b.data[sel]))
            mesh.boundaries[f"{name}_{int(v)}"] = region
    return mesh


def count_degenerate(mesh: Mesh, *, rtol: float = 1e-12) -> dict[str, int]:
    """Degenerate cells: ``repeated_ids`` (a node listed twice) and ``zero_measure`` (zero-length
    lines, zero-area triangles, zero-volume tetrahedra, relative to the bounding box).

    Shapes
    ------
    Reads ``points`` (n, 3) and every cell block (m, k); returns counts over all cells.
    """
    rep = zero = 0
    span = float(np.ptp(mesh.points, axis=0).max()) if mesh.n_points else 0.0
    p = mesh.points
    for b in mesh.cells:
        if not len(b) or b.data.shape[1] < 2 or b.type in ("polyvertex", "polyhedron"):
            continue
        srt = np.sort(b.data, axis=1)
        bad = np.any(srt[:, 1:] == srt[:, :-1], axis=1)
        rep += int(bad.sum())
        d = b.data[~bad]
        if b.type == "line":
            m, scale = np.linalg.norm(p[d[:, 1]] - p[d[:, 0]], axis=1), span
        elif b.type == "triangle":
            m = np.linalg.norm(np.cross(p[d[:, 1]] - p[d[:, 0]], p[d[:, 2]] - p[d[:, 0]]), axis=1) / 2
            scale = span ** 2
        elif b.type == "tetra":
            a = p[d[:, 0]]
            m = np.abs(np.einsum("ij,ij->i", np.cross(p[d[:, 1]] - a, p[d[:, 2]] - a), p[d[:, 3]] - a)) / 6
            scale = span ** 3
        else:
            continue
        zero += int(np.sum(m <= rtol * scale))
    return {"repeated_ids": rep, "zero_measure": zero}


def _runs(blocks: Iterable[CellBlock]) -> list[tuple[str, np.ndarray]]:
    """Adjacent blocks of the same type (and width) merged: the cell sequence as (type, data) runs."""
    out: list[tuple[str, list[np.ndarray]]] = []
    for b in blocks:
        if not len(b):
            continue
        if out and out[-1][0] == b.type and out[-1][1][0].shape[1] == b.data.shape[1]:
            out[-1][1].append(b.data)
        else:
            out.append((b.type, [b.data]))
    return [(t, np.concatenate(d)) for t, d in out]


def _native(v: Any) -> np.ndarray:
    """``np.asarray`` in native byte order (big-endian arrays from some readers break torch)."""
    a = np.asarray(v)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a


def _to_numpy(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return _native(v)


def concat_blocks(blocks: Iterable[CellBlock]) -> dict[str, np.ndarray]:
    """Blocks merged by type: ``{type: (m, k) array}`` (polygon blocks of different k stay apart)."""
    out: dict[str, list[np.ndarray]] = {}
    for b in blocks:
        key = b.type if b.type != "polygon" else f"polygon{b.data.shape[1]}"
        out.setdefault(key, []).append(b.data)
    return {k: np.concatenate(v) for k, v in out.items()}
