"""Mesh / point cloud -> :class:`MeshGraph` (a ``torch_geometric.data.Data``) with a multi-scale hierarchy.

Contract (shared with models and the data pipeline):

* ``pos`` (N, 3) float32; ``x`` (N, F) float32 from ``spec.node_fields`` (absent if none);
* ``edge_index`` (2, E) int64 holding both directions of each unique undirected mesh edge, sorted
  by (source, target); ``edge_attr`` (E, 4) = ``[pos[dst] - pos[src], |pos[dst] - pos[src]|]``;
* ``node_type`` (N,) int64: 0 interior, k > 0 the k-th named boundary region, names in
  ``node_type_names`` (``["interior", region1, ...]``);
* ``point_index`` (N,) int64: the mesh point each node is (identity here: every mesh point is a
  node, in the mesh's order, including points no cell uses, which get no edges);
* levels ``l = 1..L-1``: ``pos_{l}``, ``edge_index_{l}``, ``edge_attr_{l}``, ``down_{l}`` (2, M)
  ``[index in level l-1, index in level l]`` with ``down_w_{l}`` (sum 1 per level-l node),
  ``up_{l}`` (2, M') ``[index in level l, index in level l-1]`` with ``up_w_{l}`` (sum 1 per
  level-(l-1) node); ``num_levels``; ``level_radius`` (1, L) (0 for level 0).

Restriction is the weighted mean ``scatter(w * x[down[0]], down[1], reduce="sum")``; prolongation
the weighted sum ``scatter(w * x[up[0]], up[1], reduce="sum")`` (see :func:`restrict`, :func:`prolong`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from meshops.atomic import atomic_path
from meshops.geometry.topology import cell_adjacency
from meshops.graph.hierarchy import (
    build_level,
    connect_components,
    count_components,
    rows_edges,
    symmetric_edges,
)
from meshops.graph.transfer import prolong, restrict
from meshops.mesh import Mesh, MeshError
from meshops.pages import small_pages

try:  # compiled edge kernels (numba); the numpy references otherwise
    from meshops.graph import _hierarchy_numba as _compiled
except ImportError:  # pragma: no cover - numba is a dependency
    _compiled = None

log = logging.getLogger(__name__)

__all__ = [
    "GraphSpec", "MeshGraph", "add_levels", "build", "edge_features", "load_graph", "node_types", "prolong",
    "restrict", "save_graph",
]


@dataclass
class GraphSpec:
    """What :func:`build` makes. Accepts a dict too (``GraphSpec.coerce``); unknown keys are an error.

    Attributes
    ----------
    node_fields : point fields stacked (in this order) into ``x``; vectors contribute all components.
    levels : number of levels L (1 = just the graph).
    ratio : size of level l over level l-1 (scalar, or one per coarse level: ``levels - 1`` values).
    sizes : explicit sizes of levels 1..L-1 (overrides ``ratio``).
    radius : per-level radius (scalar or ``levels`` values; ``None`` entries are automatic). Level 0
        uses it only when ``edges="radius"``; coarse levels use it for down-map balls and, unless
        ``k`` is given for the level, for edges. Automatic: twice the FPS covering radius (FPS
        levels), ``sqrt(3)`` grid cells (grid levels).
    k : per-level kNN (scalar or ``levels`` values). Level 0 uses it when ``edges="knn"``
        (default 8); a coarse level with ``k`` uses a symmetrized kNN graph instead of radius edges.
    edges : level-0 edges: ``"mesh"`` (cell edges), ``"knn"``, ``"radius"``, or ``"auto"`` (mesh edges
        if the mesh has cells of dimension >= 1, else kNN).
    max_num_neighbors : cap per node on radius edges (nearest kept).
    sampling : ``"auto"`` (default: exact FPS up to 20,000 coarse nodes, grid sampling above),
        ``"fps"``, ``"grid"`` (linear time) or ``"voxel"``; see :mod:`meshops.graph.hierarchy`.
    up_k : coarse nodes interpolated per fine node in the inverse-distance prolongation.
    interpolation : prolongation ``"idw"`` (inverse-distance over ``up_k`` nearest coarse nodes) or
        ``"linear"`` (barycentric on the coarse nodes' Delaunay triangulation on planar levels, exact
        for linear fields; inverse-distance where that is not possible).
    boundary_order : region names in priority order for points in several regions (default: the
        mesh's order; the first region listing a point wins). Regions not listed follow in mesh order.
    connect_levels : make every coarse level connected when level 0 is (adds shortest joining edges).
    """

    node_fields: list[str] = field(default_factory=list)
    levels: int = 1
    ratio: float | list[float] = 0.25
    sizes: list[int] | None = None
    radius: float | list[float | None] | None = None
    k: int | list[int | None] | None = None
    edges: str = "auto"
    max_num_neighbors: int = 32
    sampling: str = "auto"
    up_k: int = 3
    interpolation: str = "idw"
    boundary_order: list[str] | None = None
    connect_levels: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.node_fields, str):
            self.node_fields = [self.node_fields]
        self.node_fields = list(self.node_fields or [])
        if int(self.levels) < 1:
            raise ValueError(f"GraphSpec: levels must be >= 1, got {self.levels}")
        self.levels = int(self.levels)
        if self.edges not in ("auto", "mesh", "knn", "radius"):
            raise ValueError(f"GraphSpec: edges must be 'auto', 'mesh', 'knn' or 'radius', got {self.edges!r}")
        if self.interpolation not in ("idw", "linear"):
            raise ValueError(f"GraphSpec: interpolation must be 'idw' or 'linear', got {self.interpolation!r}")
        if self.sampling not in ("auto", "fps", "grid", "voxel"):
            raise ValueError(f"GraphSpec: sampling must be 'auto', 'fps', 'grid' or 'voxel', got {self.sampling!r}")
        for r in self._per_level(self.ratio, self.levels - 1, "ratio"):
            if r is None or not (0 < float(r) <= 1):
                raise ValueError(f"GraphSpec: ratio values must be in (0, 1], got {r}")
        for r in self._per_level(self.radius, self.levels, "radius"):
            if r is not None and not (float(r) > 0 and math.isfinite(float(r))):
                raise ValueError(f"GraphSpec: radius must be > 0, got {r}")
        for k in self._per_level(self.k, self.levels, "k"):
            if k is not None and int(k) < 1:
                raise ValueError(f"GraphSpec: k must be >= 1, got {k}")
        if self.sizes is not None and len(self.sizes) != self.levels - 1:
            raise ValueError(f"GraphSpec: sizes needs {self.levels - 1} values (levels 1..L-1), got {len(self.sizes)}")
        if self.max_num_neighbors < 1:
            raise ValueError(f"GraphSpec: max_num_neighbors must be >= 1, got {self.max_num_neighbors}")

    @staticmethod
    def _per_level(v: Any, n: int, name: str) -> list[Any]:
        if isinstance(v, (list, tuple)):
            if len(v) != n:
                raise ValueError(f"GraphSpec: {name} needs {n} values, got {len(v)}")
            return list(v)
        return [v] * n

    def radius_at(self, level: int) -> float | None:
        return self._per_level(self.radius, self.levels, "radius")[level]

    def k_at(self, level: int) -> int | None:
        return self._per_level(self.k, self.levels, "k")[level]

    def ratio_at(self, level: int) -> float:
        return float(self._per_level(self.ratio, self.levels - 1, "ratio")[level - 1])

    @classmethod
    def coerce(cls, spec: GraphSpec | Mapping[str, Any] | None) -> GraphSpec:
        if spec is None:
            return cls()
        if isinstance(spec, cls):
            return spec
        if isinstance(spec, Mapping):
            names = {f.name for f in dataclasses.fields(cls)}
            bad = sorted(set(spec) - names)
            if bad:
                raise ValueError(f"GraphSpec: unknown keys {bad} (known: {sorted(names)})")
            return cls(**dict(spec))
        raise TypeError(f"GraphSpec: expected a GraphSpec, a dict or None, got {type(spec).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_MAP_KEY = ("down_", "up_")


def _level_of(key: str, prefix: str) -> int | None:
    rest = key[len(prefix):]
    return int(rest) if key.startswith(prefix) and rest.isdigit() else None


class MeshGraph(Data):
    """A ``Data`` whose hierarchy keys batch correctly (node offsets per level)."""

    def level_size(self, level: int) -> int:
        """Number of nodes at ``level`` (0 is the graph itself)."""
        if level == 0:
            return int(self.num_nodes)
        return int(self[f"pos_{level}"].size(0))

    def to_pyg(self, level: int = 0) -> Data:
        """One level as a plain ``torch_geometric.data.Data`` (see :func:`meshops.graph.pyg.to_pyg`)."""
        from meshops.graph.pyg import to_pyg

        return to_pyg(self, level)

    def to_pyg_hetero(self) -> Any:
        """The hierarchy as a ``HeteroData`` (see :func:`meshops.graph.pyg.to_pyg_hetero`)."""
        from meshops.graph.pyg import to_pyg_hetero

        return to_pyg_hetero(self)

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        lv = _level_of(key, "edge_index_")
        if lv is not None:
            return self.level_size(lv)
        lv = _level_of(key, "down_")
        if lv is not None:
            return torch.tensor([[self.level_size(lv - 1)], [self.level_size(lv)]])
        lv = _level_of(key, "up_")
        if lv is not None:
            return torch.tensor([[self.level_size(lv)], [self.level_size(lv - 1)]])
        if key == "point_index":
            return 0
        return super().__inc__(key, value, *args, **kwargs)

    def __cat_dim__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        for p in ("edge_index_", "down_", "up_"):
            if _level_of(key, p) is not None:
                return -1
        return super().__cat_dim__(key, value, *args, **kwargs)


def edge_features(pos: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``[pos[dst] - pos[src], length]`` per edge.

    Shapes
    ------
    pos : (n, 3) float64
    edges : (2, E) int64 ``[src, dst]``
    returns : (E, 4) float64
    """
    return _edge_features(pos, edges, np.float64)


def _edge_features(pos: np.ndarray, edges: np.ndarray, dtype) -> np.ndarray:
    """:func:`edge_features` computed in float64 and written straight into a ``dtype`` array
    (compiled: one pass over the edges; else :func:`_edge_features_numpy`, the same bits)."""
    if _compiled is None:
        return _edge_features_numpy(pos, edges, dtype)
    pos = np.ascontiguousarray(pos, dtype=np.float64)
    e = np.ascontiguousarray(edges, dtype=np.int64).reshape(2, -1)
    out = np.empty((e.shape[1], pos.shape[1] + 1), dtype=dtype)
    _compiled.edge_features(pos, e[0], e[1], out)
    return out


def _edge_features_numpy(pos: np.ndarray, edges: np.ndarray, dtype, chunk: int = 1 << 15) -> np.ndarray:
    """The numpy reference of :func:`_edge_features`.

    In chunks of ``chunk`` edges gathered into reused buffers (``np.take(..., out=)``), so the
    temporaries stay in cache: 3x faster than whole-array gathers at 1e7 edges, the same bits.
    """
    pos = np.ascontiguousarray(pos, dtype=np.float64)
    n_e, d = edges.shape[1], pos.shape[1]
    out = np.empty((n_e, d + 1), dtype=dtype)
    a, b = np.empty((min(chunk, n_e), d)), np.empty((min(chunk, n_e), d))
    for s in range(0, n_e, chunk):
        t = min(n_e, s + chunk)
        da = np.take(pos, edges[1, s:t], axis=0, out=a[: t - s])
        da -= np.take(pos, edges[0, s:t], axis=0, out=b[: t - s])
        out[s:t, :d] = da
        sq = da[:, 0] * da[:, 0]
        for j in range(1, d):
            sq += da[:, j] * da[:, j]
        out[s:t, d] = np.sqrt(sq)  # the same bits as np.linalg.norm(d, axis=1)
    return out


def node_types(mesh: Mesh, order: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Node type per mesh point from the named boundary regions.

    Region ``k`` (1-based, in ``order`` then mesh order) marks the points of its faces/edges; a point
    in several regions gets the first one (priority order). Points in none are 0 (interior).

    Shapes
    ------
    returns : (types (n,) int64, names [``"interior"``, region1, ...])
    """
    names = list(mesh.boundaries)
    if order:
        unknown = [o for o in order if o not in mesh.boundaries]
        if unknown:
            raise MeshError(f"{mesh.source or '<mesh>'}: boundary_order names {unknown} that are not boundary "
                            f"regions (regions: {names})")
        names = list(order) + [n for n in names if n not in order]
    t = np.zeros(mesh.n_points, dtype=np.int64)
    # the first region wins: assign in reverse priority so earlier regions overwrite later ones
    name_to_k = {nm: i + 1 for i, nm in enumerate(names)}
    for nme in reversed(names):
        for b in mesh.boundaries[nme]:
            data = b.data
            if np.asarray(data).dtype == object:
                ids = np.concatenate([np.asarray(c, np.int64).ravel() for c in data]) if len(data) else []
            else:
                ids = np.asarray(data, np.int64).ravel()
            t[ids] = name_to_k[nme]
    return t, ["interior"] + names


def _node_features(mesh: Mesh, names: Sequence[str]) -> np.ndarray | None:
    if not names:
        return None
    cols = []
    for nm in names:
        if nm not in mesh.point_data:
            extra = " (it is a cell field; node fields must be point fields)" if nm in mesh.cell_data else ""
            raise MeshError(f"{mesh.source or '<mesh>'}: node field '{nm}' not found{extra}; point fields: "
                            f"{sorted(mesh.point_data)}")
        a = np.asarray(mesh.point_data[nm])
        if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
            raise MeshError(f"{mesh.source or '<mesh>'}: node field '{nm}' is not numeric ({a.dtype})")
        cols.append(a.reshape(mesh.n_points, -1).astype(np.float64))
    return np.concatenate(cols, axis=1)


def as_mesh(obj: Any, where: str = "build") -> Mesh:
    """A :class:`Mesh` from a Mesh, a path, a PyVista dataset, a meshio or trimesh object, or an (n, 3) array.

    Paths and in-memory meshes go through :func:`meshops.io.read` (the latest time step).
    """
    if isinstance(obj, Mesh):
        return obj
    arr = obj.detach().cpu().numpy() if isinstance(obj, Tensor) else np.asarray(obj) if isinstance(obj, (list, tuple, np.ndarray)) else None
    if arr is not None and arr.ndim == 2 and arr.shape[1] in (2, 3):
        return Mesh(points=arr)
    if isinstance(obj, (str, Path)) or type(obj).__module__.split(".")[0] in ("pyvista", "vtkmodules", "vtk", "meshio", "trimesh"):
        from meshops.io import read

        out = read(obj)
        return out[-1] if isinstance(out, list) else out
    raise TypeError(f"{where}: expected a Mesh, a path, a pyvista/meshio/trimesh object or an (n, 3) point array, "
                    f"got {type(obj).__name__}")


_as_mesh = as_mesh


def _level0_edges(mesh: Mesh, spec: GraphSpec) -> np.ndarray:
    pts = mesh.points
    n = mesh.n_points
    mode = spec.edges
    if mode == "auto":
        mode = "mesh" if mesh.topological_dim >= 1 else "knn"
    if mode == "mesh":
        if not mesh.cells:
            raise MeshError(f"{mesh.source or '<mesh>'}: edges='mesh' but the mesh has no cells (a point cloud); "
                            "use edges='knn' or 'radius'")
        for b in mesh.cells:
            d = np.asarray(b.data)
            if d.dtype != object and d.size and (int(d.max()) >= n or int(d.min()) < 0):
                bad = int(d.max()) if int(d.max()) >= n else int(d.min())
                raise MeshError(f"{mesh.source or '<mesh>'}: cells block '{b.type}' indexes point {bad} "
                                f"but the mesh has {n} points")
        return cell_adjacency(mesh.cells, n)
    from meshops.graph._neighbors_kdtree import kdtree_knn
    from meshops.graph.neighbors import radius_graph

    if mode == "knn":
        k = spec.k_at(0) or 8
        if n - 1 < k:
            log.warning("%s: k=%d but the point cloud has %d points; connecting all", mesh.source or "<mesh>", k, n)
        # knn_graph's rows (nearest first, ties to the lower index), symmetrized without a (2, E) list
        return rows_edges(kdtree_knn(np.ascontiguousarray(pts, dtype=np.float64), None, k, True), n)
    r = spec.radius_at(0)
    if r is None:
        raise ValueError("GraphSpec: edges='radius' needs radius for level 0 (radius=[r0, ...] or a scalar)")
    return symmetric_edges(radius_graph(torch.from_numpy(pts), r, max_num_neighbors=spec.max_num_neighbors).numpy(), n)


@small_pages()  # a build touches GBs of fresh arrays once: see meshops.pages
def build(mesh: Mesh | np.ndarray | Tensor | Any, spec: GraphSpec | Mapping[str, Any] | None = None) -> MeshGraph:
    """Build a :class:`MeshGraph` (with its hierarchy) from a mesh or a point cloud.

    Parameters
    ----------
    mesh : a :class:`~meshops.mesh.Mesh`, a path, a PyVista dataset, a meshio or trimesh object, or an
        ``(n, 3)`` array (a point cloud); see :func:`as_mesh`.
    spec : a :class:`GraphSpec` or a dict of its fields.

    Shapes
    ------
    returns : see the module docstring (N = ``mesh.n_points``).

    Raises
    ------
    MeshError
        non-finite coordinates, cells indexing missing points, missing node fields (messages name
        the source, the field and the value).
    ValueError
        invalid spec values (zero/negative radius, k < 1, ratio outside (0, 1]).
    """
    spec = GraphSpec.coerce(spec)
    mesh = _as_mesh(mesh)
    where = mesh.source or "<mesh>"
    n = mesh.n_points
    if n == 0:
        raise MeshError(f"{where}: the mesh is empty (0 points)")
    pts = mesh.points
    if not np.all(np.isfinite(pts)):
        bad = int(np.argwhere(~np.isfinite(pts))[0, 0])
        raise MeshError(f"{where}: point {bad} has a non-finite coordinate {pts[bad].tolist()}")
    x = _node_features(mesh, spec.node_fields)
    edges = _level0_edges(mesh, spec)
    ntype, tnames = node_types(mesh, spec.boundary_order)

    data = MeshGraph()
    data.pos = torch.from_numpy(pts.astype(np.float32))
    if x is not None:
        data.x = torch.from_numpy(x.astype(np.float32))
    data.edge_index = torch.from_numpy(edges.astype(np.int64, copy=False))
    data.edge_attr = torch.from_numpy(_edge_features(pts, edges, np.float32))
    data.node_type = torch.from_numpy(ntype)
    data.node_type_names = tnames
    data.point_index = torch.arange(n, dtype=torch.int64)
    data.num_nodes = n

    add_levels(data, pts, edges, spec, where)
    return data


@small_pages()
def add_levels(data: MeshGraph, pts: np.ndarray, edges: np.ndarray, spec: GraphSpec, where: str = "<mesh>") -> MeshGraph:
    """Add hierarchy levels ``1..spec.levels-1`` (``pos_l``, ``edge_index_l``, maps, ...) to ``data`` in place.

    Shapes
    ------
    pts : (N, 3) float64 level-0 positions
    edges : (2, E) int64 level-0 edges (for the connectivity check, which runs only when a coarse
        level comes out disconnected: a connected coarse level needs no joining either way).
    """
    n = len(pts)
    radii = [0.0]
    fine = pts
    connected0: bool | None = None  # is level 0 connected? Asked only when a coarse level is not
    for lv in range(1, spec.levels):
        nf = len(fine)
        m = int(spec.sizes[lv - 1]) if spec.sizes is not None else max(1, int(math.ceil(spec.ratio_at(lv) * nf)))
        if m > nf:
            raise ValueError(f"GraphSpec: level {lv} asks for {m} nodes but level {lv - 1} has {nf}")
        if m < 1:
            raise ValueError(f"GraphSpec: level {lv} size must be >= 1, got {m}")
        L = build_level(fine, m, radius=spec.radius_at(lv), k=spec.k_at(lv),
                        max_num_neighbors=spec.max_num_neighbors, sampling=spec.sampling, up_k=spec.up_k,
                        interpolation=spec.interpolation)
        le = L.edges
        if spec.connect_levels and count_components(le, len(L.pos)) > 1:
            if connected0 is None:
                connected0 = count_components(edges, n) == 1
            if connected0:
                le = connect_components(L.pos, le)
        data[f"pos_{lv}"] = torch.from_numpy(L.pos.astype(np.float32))
        data[f"edge_index_{lv}"] = torch.from_numpy(le)
        data[f"edge_attr_{lv}"] = torch.from_numpy(_edge_features(L.pos, le, np.float32))
        data[f"down_{lv}"] = torch.from_numpy(L.down)
        data[f"down_w_{lv}"] = torch.from_numpy(L.down_w.astype(np.float32))
        data[f"up_{lv}"] = torch.from_numpy(L.up)
        data[f"up_w_{lv}"] = torch.from_numpy(L.up_w.astype(np.float32))
        radii.append(L.radius)
        log.debug("%s: level %d: %d nodes, %d edges, radius %.4g (cover %.4g)", where, lv, len(L.pos),
                  le.shape[1], L.radius, L.cover)
        fine = L.pos
    data.num_levels = spec.levels
    data.level_radius = torch.tensor([radii], dtype=torch.float32)
    return data


GRAPH_FORMAT = "meshops.graph/1"


def save_graph(data: MeshGraph, path: str | Any, spec: GraphSpec | None = None) -> Any:
    """Save a graph as plain tensors + JSON-able metadata (loads with ``torch.load(weights_only=True)``).

    Written to a temporary file in the same folder, then moved into place (atomic).
    """
    path = Path(path)
    tensors, meta = {}, {}
    for k, v in data.items():
        if isinstance(v, Tensor):
            tensors[k] = v.detach().cpu()
        elif isinstance(v, (int, float, str, bool, list, tuple)) or v is None:
            meta[k] = v
        else:
            raise TypeError(f"save_graph: attribute '{k}' of type {type(v).__name__} cannot be saved")
    payload = {"format": GRAPH_FORMAT, "tensors": tensors, "meta": meta,
               "spec": spec.to_dict() if spec is not None else None}
    with atomic_path(path, make_parents=True) as tmp:
        torch.save(payload, tmp)
    return path


def load_graph(path: str | Any) -> MeshGraph:
    """Load a graph written by :func:`save_graph` (``weights_only=True``: no pickled objects)."""
    payload = torch.load(path, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != GRAPH_FORMAT:
        raise ValueError(f"{path}: not a meshops graph file (format {payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r}, expected {GRAPH_FORMAT!r})")
    data = MeshGraph()
    for k, v in payload["tensors"].items():
        data[k] = v
    for k, v in payload["meta"].items():
        data[k] = v
    return data
