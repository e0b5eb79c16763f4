"""Trajectories: cases with many time steps on one fixed mesh, for learned time stepping.

A :class:`Trajectory` is a static :class:`~meshops.mesh.Mesh` (geometry and named boundary regions)
plus, for every state field, its values at ``T`` times. A trajectory dataset yields trajectories
(``len(ds)``, ``ds[i] -> Trajectory``) and names its ``fields`` (the state channels stepped in time).

Planar cases: a mesh whose points all lie in a coordinate plane is 2D, and a one-cell-thick
extrusion (OpenFOAM's 2D cases: two point layers of wedges or hexahedra) is collapsed to its first
layer by :func:`flatten_extruded`; vector fields then keep their in-plane components only (a warning
names a dropped component that is not zero), so no phantom ``z`` channel reaches a model.

:class:`TrajectoryFolder` (registered as ``trajectory_folder``) reads, per case, a time series file
(``.pvd``, ``.xdmf``, an OpenFOAM case: anything :func:`meshops.io.read` reads with ``time="all"``;
one file whose point fields carry the step in their names, ``pressure_00020``: :func:`split_step_fields`)
or a folder of snapshot files (one time step each, in natural order of their names).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from meshops.data import DatasetError, register_dataset
from meshops.mesh import CellBlock, Mesh

log = logging.getLogger(__name__)

__all__ = ["Trajectory", "TrajectoryFolder", "flatten_extruded", "node_type_onehot", "planar_axes",
           "split_step_fields", "topological_regions", "trajectory_from_meshes"]

_EXTRUDED = {"wedge": 3, "hexahedron": 4}


@dataclass
class Trajectory:
    """One case of a transient dataset.

    Attributes
    ----------
    name : str
    mesh : Mesh
        The fixed geometry with its boundary regions (points (n, 3); z = 0 for 2D cases).
    times : (T,) float64
    fields : dict of str -> (T, n) or (T, n, c) float32
    globals : dict of str -> float
    dim : 2 or 3
    """

    name: str
    mesh: Mesh
    times: np.ndarray
    fields: dict[str, np.ndarray]
    globals: dict[str, float] = field(default_factory=dict)
    dim: int = 3

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64)
        T, n = len(self.times), self.mesh.n_points
        for k, a in self.fields.items():
            if a.shape[:2] != (T, n):
                raise DatasetError(f"trajectory '{self.name}': field '{k}' has shape {a.shape}, expected "
                                   f"({T}, {n}, ...) for {T} times and {n} points")
        if T >= 2 and not np.all(np.diff(self.times) > 0):
            raise DatasetError(f"trajectory '{self.name}': times are not increasing: {self.times[:5]} ...")

    @property
    def n_steps(self) -> int:
        return len(self.times)

    def states(self, names: Sequence[str]) -> np.ndarray:
        """The named fields stacked along channels.

        Shapes
        ------
        returns : (T, n, C) float32
        """
        missing = [k for k in names if k not in self.fields]
        if missing:
            raise DatasetError(f"trajectory '{self.name}': fields {missing} missing; it has {sorted(self.fields)}")
        parts = [np.asarray(self.fields[k], dtype=np.float32).reshape(self.n_steps, self.mesh.n_points, -1)
                 for k in names]
        return np.concatenate(parts, axis=2)

    def channel_names(self, names: Sequence[str]) -> list[str]:
        """One name per channel of :meth:`states` (``U_x``, ``U_y`` for a vector field ``U``)."""
        out = []
        for k in names:
            a = self.fields[k]
            c = 1 if a.ndim == 2 else a.shape[2]
            out += [k] if c == 1 else [f"{k}_{'xyz'[j] if c <= 3 else j}" for j in range(c)]
        return out


def planar_axes(points: np.ndarray, rtol: float = 1e-9) -> tuple[int, ...] | None:
    """The two in-plane axes when every point lies in a plane ``x_k = const``, else None.

    Shapes
    ------
    points : (n, 3)
    """
    ext = np.ptp(np.asarray(points, dtype=np.float64), axis=0)
    big = float(ext.max()) if len(points) else 0.0
    flat = [k for k in range(points.shape[1]) if ext[k] <= rtol * max(big, 1e-300)]
    if len(flat) != 1 or points.shape[1] != 3:
        return None
    return tuple(k for k in range(3) if k != flat[0])


def flatten_extruded(mesh: Mesh) -> tuple[Mesh, np.ndarray, int] | None:
    """Collapse a one-cell-thick extruded mesh (two point layers) to its first layer.

    Returns ``(mesh2d, keep, axis)``: the planar mesh (points with the extrusion axis set to the
    first layer's value, triangles / quads from the wedges / hexahedra, boundary regions restricted
    to the kept points), the kept point ids, and the extrusion axis; None when the mesh is not
    such an extrusion.

    Shapes
    ------
    keep : (n2d,) int64
    """
    P = np.asarray(mesh.points, dtype=np.float64)
    if not mesh.cells or any(b.type not in _EXTRUDED for b in mesh.cells):
        return None
    for ax in range(3):
        vals = np.unique(np.round(P[:, ax], 12))
        if len(vals) != 2:
            continue
        lay0 = np.isclose(P[:, ax], vals[0])
        keep = np.nonzero(lay0)[0]
        if 2 * len(keep) != len(P):
            continue
        inv = np.full(len(P), -1, dtype=np.int64)
        inv[keep] = np.arange(len(keep))
        blocks = []
        for b in mesh.cells:
            d = np.asarray(b.data, dtype=np.int64)
            face = np.array([row[lay0[row]] for row in d]) if len(d) else d[:, :0]
            if face.ndim != 2 or face.shape[1] != _EXTRUDED[b.type]:
                return None
            blocks.append(CellBlock("triangle" if b.type == "wedge" else "quad", inv[face]))
        bnd = {}
        for name, bl in mesh.boundaries.items():
            ids = inv[_side_points(bl, lay0)]
            if len(ids):
                bnd[name] = [CellBlock("vertex", ids[:, None])]
            else:
                log.info("%s: boundary region '%s' lies in the extrusion's front or back plane; not a region in 2D",
                         mesh.source or "<mesh>", name)
        pts = P[keep].copy()
        m2 = Mesh(pts, blocks, boundaries=bnd, dim=2, source=mesh.source)
        return m2, keep, ax
    return None


def _side_points(blocks: Sequence[CellBlock], lay0: np.ndarray) -> np.ndarray:
    """The first-layer points of a boundary region's faces that cross the two layers (the side walls of an
    extrusion); faces within one layer are its front or back (OpenFOAM's ``empty`` patch) and give none."""
    parts = []
    for b in blocks:
        f = np.asarray(b.data, np.int64).reshape(len(b.data), -1)
        if f.shape[1] > 1:
            f = f[lay0[f].any(1) & ~lay0[f].all(1)]
        parts.append(f.ravel())
    ids = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    return ids[lay0[ids]]


def _in_plane(name: str, a: np.ndarray, axes: tuple[int, ...], where: str) -> np.ndarray:
    """A 3-vector field's in-plane components (warns naming a non-zero dropped component)."""
    if a.ndim == 3 and a.shape[2] == 3:
        drop = [k for k in range(3) if k not in axes][0]
        big = float(np.abs(a).max()) if a.size else 0.0
        off = float(np.abs(a[..., drop]).max()) if a.size else 0.0
        if off > 1e-6 * max(big, 1e-300):
            warnings.warn(f"{where}: planar case, but field '{name}' has an out-of-plane component "
                          f"'{'xyz'[drop]}' up to {off:.3g} (max |{name}| {big:.3g}); it is dropped",
                          stacklevel=3)
        return a[..., list(axes)]
    return a


def trajectory_from_meshes(name: str, meshes: Sequence[Mesh], fields: Sequence[str], times: Sequence[float],
                           globals: dict[str, float] | None = None) -> Trajectory:
    """A trajectory from snapshots on one mesh (planar or one-cell-thick cases made 2D).

    Shapes
    ------
    meshes : T meshes with the same points; fields in ``point_data``, (n,) or (n, c) each
    """
    if not meshes:
        raise DatasetError(f"trajectory '{name}': no snapshots")
    m0 = meshes[0]
    where = m0.source or name
    for k, m in enumerate(meshes):
        if m.n_points != m0.n_points:
            raise DatasetError(f"{m.source or name}: snapshot {k} has {m.n_points} points, the first {m0.n_points}")
        for f in fields:
            if f not in m.point_data:
                held = (f" ('{f}' is a cell field here: a trajectory steps point fields; average it to the points)"
                        if f in m.cell_data else "")
                raise DatasetError(f"{m.source or name}: point field '{f}' missing; it has {sorted(m.point_data)}{held}")
    data = {f: np.stack([np.asarray(m.point_data[f], dtype=np.float32) for m in meshes]) for f in fields}
    geom, dim, keep, axes = m0, 3, None, planar_axes(m0.points)
    if axes is None:
        fl = flatten_extruded(m0)
        if fl is not None:
            geom, keep, ax = fl
            axes = tuple(k for k in range(3) if k != ax)
    if axes is not None:
        dim = 2
        if keep is None:
            geom = Mesh(np.asarray(m0.points, dtype=np.float64), list(m0.cells), boundaries=dict(m0.boundaries),
                        dim=2, source=m0.source)
        data = {f: _in_plane(f, a if keep is None else a[:, keep], axes, where) for f, a in data.items()}
    if not geom.boundaries:
        regions = topological_regions(geom)
        if regions:
            geom = Mesh(geom.points, list(geom.cells), boundaries=regions, dim=geom.dim, source=geom.source)
            sizes = ", ".join(f"'{k}' {len(v[0].data)} points" for k, v in regions.items())
            warnings.warn(f"{where}: the files have no boundary regions; marked from the mesh topology: {sizes} "
                          "(inlet, outlet and walls are not told apart)", stacklevel=2)
        else:
            warnings.warn(f"{where}: the mesh has no boundary regions; every node gets the type 'interior' "
                          "(inlet, walls and obstacles are not marked)", stacklevel=2)
    return Trajectory(name, geom, np.asarray(times, dtype=np.float64), data, dict(globals or {}), dim)


def topological_regions(mesh: Mesh) -> dict[str, list[CellBlock]]:
    """Boundary regions of a mesh that has none, from its topology: the points of the faces (3D) or edges
    (2D) that belong to one cell only, split into connected parts; the part with the largest extent is
    ``boundary`` (the outer one), the others together ``obstacle``. ``{}`` for a mesh without cells.

    Shapes
    ------
    returns : {name: [CellBlock("vertex", (m, 1) point ids)]}
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from meshops.geometry.topology import boundary_faces

    faces, _ = boundary_faces(mesh.cells) if mesh.cells else ([], [])
    if not faces:
        return {}
    a = np.concatenate([f[:, :-1].ravel() for f in faces])  # each face's points chained: one part per face
    b = np.concatenate([f[:, 1:].ravel() for f in faces])
    _, lab = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(mesh.n_points,) * 2), directed=False)
    on = np.unique(np.concatenate([f.ravel() for f in faces]))
    P = np.asarray(mesh.points, dtype=np.float64)
    extent = {int(k): float(np.linalg.norm(np.ptp(P[on[lab[on] == k]], axis=0))) for k in np.unique(lab[on])}
    outer = lab[on] == max(extent, key=extent.__getitem__)
    out = {"boundary": [CellBlock("vertex", on[outer][:, None])]}
    if not outer.all():
        out["obstacle"] = [CellBlock("vertex", on[~outer][:, None])]
    return out


def node_type_onehot(mesh: Mesh, names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """One-hot node types from the mesh's boundary regions (``interior`` first).

    ``names`` fixes the column order (from training); a region of the mesh not in ``names`` is an
    error, a name the mesh lacks gets an empty column. A mesh without regions warns.

    Shapes
    ------
    returns : (n, K) float32, K names
    """
    from meshops.graph import node_types

    if not mesh.boundaries:
        warnings.warn(f"{mesh.source or '<mesh>'}: no boundary regions; all nodes are 'interior'", stacklevel=2)
    order = None if names is None else [n for n in names[1:] if n in mesh.boundaries]
    t, tn = node_types(mesh, order)
    names = list(tn) if names is None else list(names)
    extra = [n for n in tn if n not in names]
    if extra:
        raise DatasetError(f"{mesh.source or '<mesh>'}: boundary regions {extra} were not seen in training "
                           f"(known node types: {names}); give the case with the regions the model was trained on")
    col = np.array([names.index(n) for n in tn])
    out = np.zeros((mesh.n_points, len(names)), dtype=np.float32)
    out[np.arange(mesh.n_points), col[t]] = 1.0
    return out, names


_STEP_SUFFIX = re.compile(r"^(.+)_(\d+)$")


def split_step_fields(mesh: Mesh, fields: Sequence[str]) -> list[Mesh] | None:
    """The snapshots of one file that holds every time step as its own point field ``<field>_<step>``
    (SimVascular's ``all_results.vtu``: ``pressure_00020``, ``velocity_00020``, ...): one mesh per step
    held by every field of ``fields``, with those fields under their own names and ``time`` the step
    number (solver steps: the file has no physical times). None when the mesh has the fields themselves,
    not every field has such steps, or the suffixes are at most three numbers up to 3 (``U_0``, ``U_1``,
    ``U_2`` are a vector's components as often as steps). Steps that some fields lack are dropped with a
    warning.
    """
    if all(f in mesh.point_data for f in fields):
        return None
    steps: dict[str, dict[int, str]] = {f: {} for f in fields}
    for name in mesh.point_data:
        m = _STEP_SUFFIX.match(name)
        if m and m.group(1) in steps:
            steps[m.group(1)][int(m.group(2))] = name
    if not all(steps.values()):
        return None
    held = [set(s) for s in steps.values()]
    common, every = sorted(set.intersection(*held)), set.union(*held)
    if len(every) <= 3 and max(every) <= 3:
        return None
    if len(common) < len(every):
        log.warning("%s: time steps %s are not held by every field of %s; dropped", mesh.source or "<mesh>",
                    sorted(every - set(common)), list(fields))
    log.info("%s: %d time steps read from the point fields %s", mesh.source or "<mesh>", len(common),
             ", ".join(f"{f}_<step>" for f in fields))
    return [Mesh(mesh.points, list(mesh.cells), point_data={f: mesh.point_data[steps[f][k]] for f in fields},
                 boundaries=dict(mesh.boundaries), dim=mesh.dim, source=mesh.source, time=float(k)) for k in common]


def _natural(p: Path) -> list[Any]:
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", p.name)]


@register_dataset("trajectory_folder")
class TrajectoryFolder:
    """Trajectories from files: one time series file or one folder of snapshots per case.

    Parameters
    ----------
    path : folder
        Its entries (sub-folders of snapshot files, or series files) are the cases.
    fields : list of str
        The state fields (point data) stepped in time.
    dt : float, optional
        Time between snapshots when the files carry no times (default: their index).
    """

    def __init__(self, path: str, fields: Sequence[str], dt: float | None = None, pattern: str = "*") -> None:
        self.root = Path(path)
        if not self.root.is_dir():
            raise DatasetError(f"trajectory_folder: {self.root} is not a folder")
        self.fields = list(fields)
        self.dt = dt
        self.entries = sorted((p for p in self.root.glob(pattern) if not p.name.startswith(".")), key=_natural)
        if not self.entries:
            raise DatasetError(f"trajectory_folder: {self.root} holds no cases matching '{pattern}'")

    def __len__(self) -> int:
        return len(self.entries)

    def case_names(self) -> list[str]:
        return [p.stem if p.is_file() else p.name for p in self.entries]

    def __getitem__(self, i: int) -> Trajectory:
        from meshops.io import read
        from meshops.io.openfoam import is_case

        p = self.entries[i]
        foam = is_case(p)
        if p.is_dir() and not foam:
            files = sorted((f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                            and f.suffix.lower() not in (".json", ".txt", ".md")), key=_natural)
            meshes = [read(f) for f in files]
        else:  # an OpenFOAM case holds cell values: vtk's cell-to-point averages (patch values on the walls)
            meshes = read(p, time="all", **({"cell_to_point": True} if foam else {}))
            meshes = meshes if isinstance(meshes, list) else [meshes]
            if len(meshes) == 1:
                meshes = split_step_fields(meshes[0], self.fields) or meshes
        if len(meshes) < 2:
            raise DatasetError(f"trajectory_folder: {p} holds {len(meshes)} time step(s); a trajectory needs 2+")
        times = [getattr(m, "time", None) for m in meshes]
        if any(t is None for t in times) or len(set(times)) != len(times):
            times = [k * (self.dt or 1.0) for k in range(len(meshes))]
        return trajectory_from_meshes(self.case_names()[i], meshes, self.fields, times)
