"""The BENO paper's data format, and elliptic boundary-value cases in general.

The BENO repository (AI4Science-WestlakeU/beno, ``data/``) ships three arrays per data set, for
``S`` samples on an ``R x R`` cell-centred grid of the unit square (``R = 32``):

* ``RHS_N{R}_{S}.npy`` (S, R*R, 4): ``x, y, f, state`` per grid cell centre, ordered with ``x``
  as the slow index (``i * R + j`` is the cell at ``x = (i + 1/2)/R``, ``y = (j + 1/2)/R``);
  ``state`` is 0 for cells inside the domain and 1..4 for cells in the corner cut-out 1..4;
* ``SOL_N{R}_{S}.npy`` (S, R*R, 1): the solution ``u`` per cell centre (0 outside the domain);
* ``BC_N{R}_{S}.npy`` (S, 4R, 4): ``y, x, g, nan`` per boundary point: the midpoints of the
  ``4R`` cell faces on the domain boundary (rectangular notches keep the perimeter at 4 sides)
  with the Dirichlet value ``g``. Note the order of the first two columns: in the frame of
  ``RHS`` they are (y, x). Checked on the shared samples: read that way, all 1280 boundary points
  are midpoints of faces between an in-domain cell and a cut-out (or outside) cell; read as
  (x, y), only 376 are.

The paper's solver is a 5-point finite-difference scheme for ``Laplace(u) = f`` (checked on the
shared samples: the discrete Laplacian of ``SOL`` matches ``f`` with correlation > 0.98), so the
meshes made here store ``f = -f_BENO`` to follow meshops' ``-div(k grad u) = f`` convention.

:func:`read_beno` turns each sample into a :class:`~meshops.mesh.Mesh`: the in-domain cell
centres and the boundary points as nodes, triangulated (Delaunay, triangles outside the domain
removed), with point fields ``f``, ``k`` (= 1), ``g``, ``bc_type`` (1 on boundary points),
``alpha`` (0), ``u`` (the grid solution at the centres, ``g`` at the boundary points) and
``beno_index`` (grid cell of each node, -1 for boundary points). ``f`` at a boundary point is the
value of the cell it bounds (the grid has none there; it does not enter a Dirichlet problem).
Each re-entrant corner of a notch is added as a boundary node (flagged by ``beno_corner``, with
``g`` the mean of its two neighbouring boundary points) so that the triangulation follows the
domain boundary instead of cutting the corner.

:func:`elliptic_case` turns any elliptic mesh (these, or the ``elliptic_boundary`` dataset's
files) into a :class:`~meshops.data.Case` after checking it (:func:`check_elliptic`).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from meshops.data import Case, DatasetError
from meshops.mesh import CellBlock, Mesh, MeshError

log = logging.getLogger(__name__)

__all__ = [
    "ELLIPTIC_INPUTS",
    "ELLIPTIC_TARGETS",
    "find_beno_files",
    "read_beno",
    "implied_boundary_values",
    "beno_sample_to_mesh",
    "beno_domain_polygon",
    "to_grid",
    "check_elliptic",
    "elliptic_case",
    "boundary_facets",
]

#: Input point fields of an elliptic case (``bc_onehot`` is added by :func:`elliptic_case`).
ELLIPTIC_INPUTS = ["f", "k", "g", "bc_onehot"]
#: Target point field.
ELLIPTIC_TARGETS = ["u"]

_NAME = re.compile(r"^(RHS|SOL|BC)_N(\d+)_(\w+)\.npy$")


# ----------------------------------------------------------------------------- files
def find_beno_files(folder: str | os.PathLike[str], tag: str | None = None) -> dict[str, Path]:
    """The ``RHS``/``SOL``/``BC`` files of one BENO data set in ``folder``.

    ``tag`` selects ``N{R}_{tag}`` when the folder holds several (e.g. ``"N32_10"``).
    ``SOL`` may be absent (prediction only). Returns ``{"RHS": path, "BC": path[, "SOL": path]}``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: BENO data folder does not exist")
    sets: dict[str, dict[str, Path]] = {}
    for p in sorted(folder.iterdir()):
        m = _NAME.match(p.name)
        if m:
            sets.setdefault(f"N{m.group(2)}_{m.group(3)}", {})[m.group(1)] = p
    if tag is not None:
        if tag not in sets:
            raise DatasetError(f"{folder}: no BENO data set '{tag}' (found: {sorted(sets) or 'none'})")
        chosen = sets[tag]
    else:
        if len(sets) != 1:
            raise DatasetError(f"{folder}: expected one BENO data set (RHS_N*_*.npy, BC_N*_*.npy), "
                               f"found {sorted(sets) or 'none'}; pass tag=")
        chosen = next(iter(sets.values()))
    for need in ("RHS", "BC"):
        if need not in chosen:
            raise DatasetError(f"{folder}: BENO data set is missing its {need}_N*.npy file")
    return chosen


def implied_boundary_values(rhs: np.ndarray, sol: np.ndarray, bc: np.ndarray, tol: float = 1e-3
                            ) -> tuple[np.ndarray, np.ndarray]:
    """The boundary values the grid solution actually satisfies, from its 5-point stencil.

    For a boundary point whose in-domain cell has its other three neighbours inside, the stencil
    ``(sum of neighbours + ghost - 4 u_c) / h^2 = f_c`` with ``ghost = 2 g - u_c`` gives ``g``.
    Points next to cells with two boundary faces keep the file's value (one equation, two
    unknowns).

    Shapes
    ------
    rhs : (R*R, 4); sol : (R*R,) or (R*R, 1); bc : (4R, >=3)
    returns : (g (4R,) float64, changed (4R,) bool: the file's value disagreed by more than ``tol``)
    """
    rhs = np.asarray(rhs, dtype=np.float64)
    res = int(round(np.sqrt(rhs.shape[0])))
    h = 1.0 / res
    st = rhs[:, 3].reshape(res, res)
    u = np.asarray(sol, dtype=np.float64).reshape(res, res)
    f = rhs[:, 2].reshape(res, res)
    pts = np.asarray(bc, dtype=np.float64)[:, [1, 0]]
    g = np.asarray(bc, dtype=np.float64)[:, 2].copy()
    changed = np.zeros(len(g), dtype=bool)

    def inside(i: int, j: int) -> bool:
        return 0 <= i < res and 0 <= j < res and st[i, j] == 0

    for k, (x, y) in enumerate(pts):
        if abs(x * res - round(x * res)) < 1e-6:  # a face normal to x
            j, il = int(y * res), int(round(x * res)) - 1
            i, d = (il, (1, 0)) if inside(il, j) else (il + 1, (-1, 0))
        else:
            i, jl = int(x * res), int(round(y * res)) - 1
            j, d = (jl, (0, 1)) if inside(i, jl) else (jl + 1, (0, -1))
        if not inside(i, j):
            continue
        others = [(i + a, j + b) for a, b in ((1, 0), (-1, 0), (0, 1), (0, -1)) if (a, b) != d]
        if not all(inside(*o) for o in others):
            continue
        ghost = h * h * f[i, j] - sum(u[o] for o in others) + 4 * u[i, j]
        gi = 0.5 * (u[i, j] + ghost)
        if abs(gi - g[k]) > tol:
            changed[k] = True
            g[k] = gi
    return g, changed


def read_beno(folder: str | os.PathLike[str], tag: str | None = None, indices: list[int] | None = None,
              boundary_values: str = "file") -> list[Mesh]:
    """Read BENO-format samples as meshes (see the module docstring).

    ``boundary_values="solution"`` replaces the file's boundary values by those the solution
    satisfies (:func:`implied_boundary_values`; needs ``SOL``). In the shared 10 samples, 28 of
    the 112 boundary points where the stencil determines ``g`` disagree with ``BC`` in every
    sample (whole boundary segments carry the values of another segment), so ``SOL`` does not
    solve the problem ``BC`` states there; the point field ``g_repaired`` (int8) flags the
    nodes whose value was replaced.

    Shapes
    ------
    returns : list of Mesh, each with ``n_inside + 4R`` points and triangle cells
    """
    files = find_beno_files(folder, tag)
    rhs = np.load(files["RHS"], allow_pickle=False)
    bc = np.load(files["BC"], allow_pickle=False)
    sol = np.load(files["SOL"], allow_pickle=False) if "SOL" in files else None
    s = rhs.shape[0] if rhs.ndim == 3 else -1
    if rhs.ndim != 3 or rhs.shape[2] != 4:
        raise DatasetError(f"{files['RHS']}: expected shape (samples, R*R, 4), got {rhs.shape}")
    res = int(round(np.sqrt(rhs.shape[1])))
    if res * res != rhs.shape[1]:
        raise DatasetError(f"{files['RHS']}: {rhs.shape[1]} grid points is not a square number")
    if bc.ndim != 3 or bc.shape[0] != s or bc.shape[2] < 3:
        raise DatasetError(f"{files['BC']}: expected shape ({s}, boundary points, 4), got {bc.shape}")
    if sol is not None and (sol.shape[0] != s or sol.shape[1] != rhs.shape[1]):
        raise DatasetError(f"{files['SOL']}: expected shape ({s}, {rhs.shape[1]}, 1), got {sol.shape}")
    if boundary_values not in ("file", "solution"):
        raise DatasetError(f"read_beno: boundary_values must be 'file' or 'solution', got {boundary_values!r}")
    if boundary_values == "solution" and sol is None:
        raise DatasetError(f"{folder}: boundary_values='solution' needs the SOL_N*.npy file")
    out = []
    for i in range(s) if indices is None else indices:
        if not 0 <= i < s:
            raise DatasetError(f"{files['RHS']}: sample {i} out of range (0..{s - 1})")
        where = f"{files['RHS'].name}[{i}]"
        bci = bc[i]
        changed = None
        if boundary_values == "solution":
            bci = np.array(bc[i], dtype=np.float64)
            bci[:, 2], changed = implied_boundary_values(rhs[i], sol[i], bc[i])
            log.info("%s: %d boundary values replaced by those the solution satisfies", where, int(changed.sum()))
        mesh = beno_sample_to_mesh(rhs[i], bci, None if sol is None else sol[i], where=where)
        if changed is not None:
            n_in = int((mesh.point_data["beno_index"] >= 0).sum())
            flag = np.zeros(mesh.n_points, dtype=np.int8)
            flag[n_in : n_in + len(changed)] = changed
            mesh.point_data["g_repaired"] = flag
        out.append(mesh)
    return out


# ----------------------------------------------------------------------------- one sample
def _tri_area(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    a, b, c = p[t[:, 0]], p[t[:, 1]], p[t[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def beno_sample_to_mesh(rhs: np.ndarray, bc: np.ndarray, sol: np.ndarray | None = None, *,
                        where: str = "<beno sample>") -> Mesh:
    """One BENO sample as a triangle mesh of its domain.

    Shapes
    ------
    rhs : (R*R, 4) [x, y, f, state]; bc : (4R, >=3) [y, x, g, ...]; sol : (R*R, 1) or (R*R,)
    returns : Mesh with ``n_inside + n_boundary`` points
    """
    from scipy.spatial import Delaunay

    rhs = np.asarray(rhs, dtype=np.float64)
    bc = np.asarray(bc, dtype=np.float64)
    res = int(round(np.sqrt(rhs.shape[0])))
    state = rhs[:, 3]
    inside = np.flatnonzero(state == 0)
    if len(inside) == 0:
        raise MeshError(f"{where}: no grid cell is inside the domain (every state is non-zero)")
    bpts = bc[:, [1, 0]]  # (y, x) in the RHS frame, see the module docstring
    gval = bc[:, 2]
    if len(bpts) == 0:
        raise MeshError(f"{where}: the sample has no boundary points")
    if not np.all(np.isfinite(bpts)):
        raise MeshError(f"{where}: boundary point {int(np.argwhere(~np.isfinite(bpts))[0, 0])} has no coordinates")
    if not np.all(np.isfinite(gval)):
        raise MeshError(f"{where}: boundary value 'g' is missing (not finite) at boundary point "
                        f"{int(np.argmax(~np.isfinite(gval)))} ({int((~np.isfinite(gval)).sum())} points)")
    # Re-entrant notch corners become boundary nodes too (the data has none there; g is the mean of
    # the two boundary points next to the corner), so the triangulation follows the domain boundary.
    corners = _reentrant_corners(rhs)
    if len(corners):
        from scipy.spatial import cKDTree as _Tree

        d, nn = _Tree(bpts).query(corners, k=2)
        bpts = np.concatenate([bpts, corners])
        gval = np.concatenate([gval, gval[nn].mean(axis=1)])
    pts = np.concatenate([rhs[inside, :2], bpts])
    n_in = len(inside)
    tri = Delaunay(pts, qhull_options="Qbb Qc Qz Q12").simplices.astype(np.int64)
    area = _tri_area(pts, tri)
    cen = pts[tri].mean(axis=1)
    cell = np.clip(np.floor(cen * res).astype(np.int64), 0, res - 1)
    keep = (state[cell[:, 0] * res + cell[:, 1]] == 0) & (np.abs(area) > 1e-12)
    tri = tri[keep]
    neg = _tri_area(pts, tri) < 0
    tri[neg] = tri[neg][:, [0, 2, 1]]
    # f at boundary points: the value of the nearest in-domain cell (the cell the face bounds)
    from scipy.spatial import cKDTree

    _, near = cKDTree(rhs[inside, :2]).query(bpts)
    f_beno = np.concatenate([rhs[inside, 2], rhs[inside, 2][near]])
    u = None
    if sol is not None:
        s = np.asarray(sol, dtype=np.float64).reshape(-1)
        u = np.concatenate([s[inside], gval])
    n = len(pts)
    bc_type = np.zeros(n, dtype=np.int32)
    bc_type[n_in:] = 1
    pd = {
        "f": -f_beno,
        "k": np.ones(n),
        "g": np.concatenate([np.zeros(n_in), gval]),
        "bc_type": bc_type,
        "alpha": np.zeros(n),
        "beno_index": np.concatenate([inside, -np.ones(len(bpts), dtype=np.int64)]).astype(np.int64),
        "beno_corner": np.concatenate([np.zeros(n - len(corners), np.int8), np.ones(len(corners), np.int8)]),
    }
    if u is not None:
        pd["u"] = u
    mesh = Mesh(points=pts, cells=[CellBlock("triangle", tri)], point_data=pd, source=where,
                field_data={"beno_resolution": res})
    return mesh


def _reentrant_corners(rhs: np.ndarray) -> np.ndarray:
    poly = beno_domain_polygon(rhs)
    on_side = np.isclose(poly, 0.0) | np.isclose(poly, 1.0)
    return poly[~on_side.any(axis=1)]


def beno_domain_polygon(rhs: np.ndarray) -> np.ndarray:
    """The outer polygon (counter-clockwise) of a BENO sample's domain: the unit square with the
    axis-aligned rectangle of each cut-out corner removed.

    Shapes
    ------
    rhs : (R*R, 4)
    returns : (v, 2) float64
    """
    rhs = np.asarray(rhs, dtype=np.float64)
    res = int(round(np.sqrt(rhs.shape[0])))
    half = 0.5 / res
    corners = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    notch: dict[int, tuple[float, float]] = {}
    for s in np.unique(rhs[:, 3]):
        if s == 0:
            continue
        c = rhs[rhs[:, 3] == s, :2]
        lo, hi = c.min(0) - half, c.max(0) + half
        n_cells = int(round((hi[0] - lo[0]) * res)) * int(round((hi[1] - lo[1]) * res))
        if n_cells != len(c):
            raise MeshError(f"cut-out {int(s)} is not a rectangle of grid cells ({len(c)} cells in a "
                            f"{n_cells}-cell bounding box)")
        for k, (cx, cy) in enumerate(corners):
            if np.isclose(lo[0] if cx == 0 else hi[0], cx) and np.isclose(lo[1] if cy == 0 else hi[1], cy):
                notch[k] = (hi[0] - lo[0], hi[1] - lo[1])
                break
        else:
            raise MeshError(f"cut-out {int(s)} does not touch a corner of the unit square")
    pts: list[tuple[float, float]] = []
    for k, (cx, cy) in enumerate(corners):
        if k not in notch:
            pts.append((cx, cy))
            continue
        w, h = notch[k]
        sx, sy = (1.0 if cx == 0 else -1.0), (1.0 if cy == 0 else -1.0)
        a, b, c = (cx + sx * w, cy), (cx + sx * w, cy + sy * h), (cx, cy + sy * h)
        pts += [c, b, a] if k in (0, 2) else [a, b, c]
    return np.asarray(pts, dtype=np.float64)


def to_grid(mesh: Mesh, values: np.ndarray, resolution: int) -> np.ndarray:
    """Node values of a mesh made by :func:`beno_sample_to_mesh` back on the BENO grid.

    Shapes
    ------
    values : (n_points,) -> (R*R,) float64 with NaN outside the domain
    """
    idx = np.asarray(mesh.point_data["beno_index"])
    out = np.full(resolution * resolution, np.nan)
    sel = idx >= 0
    out[idx[sel]] = np.asarray(values)[sel]
    return out


# ----------------------------------------------------------------------------- checks and cases
def boundary_facets(mesh: Mesh) -> np.ndarray:
    """Boundary facets (edges of triangles / faces of tetrahedra) after the manifold checks.

    Raises :class:`MeshError` for a facet shared by more than two cells (non-manifold), a pinched
    2D boundary vertex, or a mesh without boundary.

    Shapes
    ------
    returns : (nf, d) int64, node ids sorted per row
    """
    where = mesh.source or "<mesh>"
    blocks = [b for b in mesh.cells if b.type in ("triangle", "tetra")]
    if not blocks or len({b.type for b in blocks}) != 1:
        raise MeshError(f"{where}: elliptic cases need triangle or tetra cells (one kind), got {mesh.cell_types}")
    cells = np.concatenate([b.data for b in blocks]).astype(np.int64)
    k = cells.shape[1]
    f = np.sort(np.concatenate([np.delete(cells, j, axis=1) for j in range(k)]), axis=1)
    uniq, counts = np.unique(f, axis=0, return_counts=True)
    if (counts > 2).any():
        bad = uniq[np.argmax(counts > 2)]
        raise MeshError(f"{where}: non-manifold mesh: facet {bad.tolist()} is shared by "
                        f"{int(counts[np.argmax(counts > 2)])} cells (at most 2 allowed)")
    bnd = uniq[counts == 1]
    if len(bnd) == 0:
        raise MeshError(f"{where}: the domain has no boundary (every facet is shared by two cells); "
                        "boundary values cannot be given")
    if k == 3:
        deg = np.bincount(bnd.ravel(), minlength=mesh.n_points)
        bad_v = np.flatnonzero((deg != 0) & (deg != 2))
        if len(bad_v):
            raise MeshError(f"{where}: non-manifold mesh: boundary vertex {int(bad_v[0])} touches "
                            f"{int(deg[bad_v[0]])} boundary edges (a pinched vertex; expected 2)")
    return bnd


def check_elliptic(mesh: Mesh, require_solution: bool = False) -> np.ndarray:
    """Check an elliptic boundary-value case; returns its boundary facets.

    The mesh must be a manifold triangle/tet mesh with a boundary; it must carry point fields
    ``f``, ``g`` and ``bc_type``; every boundary node must have a boundary type 1-3 and a finite
    boundary value ``g``; interior nodes must have type 0.

    Shapes
    ------
    returns : (nf, d) int64
    """
    where = mesh.source or "<mesh>"
    pd = mesh.point_data
    for name in ["f", "g", "bc_type"] + (["u"] if require_solution else []):
        if name not in pd:
            raise MeshError(f"{where}: point field '{name}' is missing (point fields: {sorted(pd)})")
        if np.asarray(pd[name]).shape[:1] != (mesh.n_points,):
            raise MeshError(f"{where}: point field '{name}' has {len(pd[name])} values but the mesh has "
                            f"{mesh.n_points} points")
    bf = boundary_facets(mesh)
    on_b = np.zeros(mesh.n_points, dtype=bool)
    on_b[np.unique(bf)] = True
    bct = np.asarray(pd["bc_type"]).astype(np.int64)
    if not (bct > 0).any():
        raise MeshError(f"{where}: no boundary nodes: point field 'bc_type' is 0 everywhere")
    untyped = np.flatnonzero(on_b & ~np.isin(bct, (1, 2, 3)))
    if len(untyped):
        i = int(untyped[0])
        raise MeshError(f"{where}: boundary node {i} has bc_type {int(bct[i])} (expected 1, 2 or 3); "
                        f"{len(untyped)} boundary nodes lack a boundary type")
    stray = np.flatnonzero(~on_b & (bct != 0))
    if len(stray):
        raise MeshError(f"{where}: node {int(stray[0])} is not on the boundary but has bc_type {int(bct[stray[0]])}")
    g = np.asarray(pd["g"], dtype=np.float64)
    missing = np.flatnonzero(on_b & ~np.isfinite(g))
    if len(missing):
        raise MeshError(f"{where}: boundary values 'g' missing (not finite) at {len(missing)} boundary nodes, "
                        f"first node {int(missing[0])}")
    for name in ("f", "k"):
        if name in pd and not np.all(np.isfinite(np.asarray(pd[name], dtype=np.float64))):
            raise MeshError(f"{where}: point field '{name}' has non-finite values")
    return bf


def elliptic_case(mesh: Mesh, name: str | None = None) -> Case:
    """A checked :class:`Case` from an elliptic mesh: inputs ``f, k, g, bc_onehot``, target ``u``.

    ``bc_onehot`` (n, 3) marks Dirichlet/Neumann/Robin nodes; the mesh gets one boundary region
    ``"boundary"`` (all boundary facets) so graphs flag boundary nodes; ``k`` defaults to 1.
    The input mesh is not modified.

    Shapes
    ------
    returns : Case whose mesh has ``bc_onehot`` (n, 3) float32 besides the input fields
    """
    bf = check_elliptic(mesh)
    bct = np.asarray(mesh.point_data["bc_type"]).astype(np.int64)
    onehot = np.stack([bct == 1, bct == 2, bct == 3], axis=1).astype(np.float32)
    extra = {"bc_onehot": onehot}
    if "k" not in mesh.point_data:
        extra["k"] = np.ones(mesh.n_points)
    out = mesh.with_fields(extra)
    ftype = "line" if bf.shape[1] == 2 else "triangle"
    out.boundaries = {"boundary": [CellBlock(ftype, bf)]}
    return Case(name or (Path(mesh.source).stem if mesh.source else "case"), out, list(ELLIPTIC_INPUTS),
                list(ELLIPTIC_TARGETS), {})
