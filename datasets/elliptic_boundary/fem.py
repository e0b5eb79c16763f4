"""P1 finite elements (scikit-fem) for ``-div(k grad u) = f`` with Dirichlet, Neumann and Robin data.

The solver takes nodal data (the P1 interpolants of ``k``, ``f`` and the boundary data ``g``) on a
triangle (2D) or tetrahedron (3D) mesh and a type per boundary facet:

* ``1`` Dirichlet: ``u = g``;
* ``2`` Neumann: ``k du/dn = g``;
* ``3`` Robin: ``k du/dn + alpha u = g`` (``alpha > 0``).

A node on both a Dirichlet facet and another facet is a Dirichlet node (Dirichlet wins).

Uniqueness. With at least one Dirichlet facet, or a Robin facet with ``alpha > 0``, the problem has
a unique solution. With Neumann data on the whole boundary the solution exists only if
``int f + int g = 0`` and is unique up to a constant; the solver then imposes ``int u = 0`` with a
Lagrange multiplier and solves the (projected) compatible problem. The generator makes its pure
Neumann cases compatible exactly at the discrete level (it shifts ``f`` by a constant), so the
projection does nothing there; data that are far from compatible (relative defect > 1e-2) raise.

This module is a recipe file of the ``elliptic_boundary`` dataset (the folder is not a package):
load it by path, e.g. ``importlib.util.spec_from_file_location``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

log = logging.getLogger("meshops.datasets.elliptic_boundary.fem")

DIRICHLET, NEUMANN, ROBIN = 1, 2, 3
#: boundary region name -> facet type (the regions of a generated case)
REGION_TYPES = {"dirichlet": DIRICHLET, "neumann": NEUMANN, "robin": ROBIN}
BC_NAMES = {0: "interior", DIRICHLET: "dirichlet", NEUMANN: "neumann", ROBIN: "robin"}


class FEMError(ValueError):
    """Invalid input to the elliptic solver; the message names the array and the bad value."""


# ----------------------------------------------------------------------------- topology
def _facets_of(cells: np.ndarray) -> np.ndarray:
    """All cell facets (with repetition), sorted node ids per row.

    Shapes
    ------
    cells : (m, d+1) int
    returns : (m * (d+1), d) int64
    """
    k = cells.shape[1]
    faces = [np.delete(cells, j, axis=1) for j in range(k)]
    return np.sort(np.concatenate(faces), axis=1).astype(np.int64)


def check_manifold(cells: np.ndarray, n_points: int, where: str = "<mesh>") -> np.ndarray:
    """Check that ``cells`` form a manifold mesh with a boundary and return its boundary facets.

    Raises :class:`FEMError` when a facet is shared by more than two cells, when (2D) a boundary
    vertex touches more or fewer than two boundary edges (a pinched, bow-tie vertex), or when the
    mesh has no boundary facet at all.

    Shapes
    ------
    cells : (m, d+1) int, triangles (d = 2) or tetrahedra (d = 3)
    returns : (nf, d) int64, boundary facets (node ids sorted per row)
    """
    cells = np.asarray(cells)
    if cells.ndim != 2 or cells.shape[1] not in (3, 4) or len(cells) == 0:
        raise FEMError(f"{where}: cells must be a non-empty (m, 3) or (m, 4) array, got shape {cells.shape}")
    if cells.min() < 0 or cells.max() >= n_points:
        raise FEMError(f"{where}: cells index point {int(cells.max())} but the mesh has {n_points} points")
    f = _facets_of(cells)
    uniq, counts = np.unique(f, axis=0, return_counts=True)
    if (counts > 2).any():
        bad = uniq[np.argmax(counts > 2)]
        raise FEMError(
            f"{where}: non-manifold mesh: facet {bad.tolist()} is shared by {int(counts.max())} cells (at most 2 allowed)"
        )
    bnd = uniq[counts == 1]
    if len(bnd) == 0:
        raise FEMError(f"{where}: the domain has no boundary facets (a closed mesh): boundary values cannot be imposed")
    if cells.shape[1] == 3:
        deg = np.bincount(bnd.ravel(), minlength=n_points)
        bad = np.flatnonzero((deg != 0) & (deg != 2))
        if len(bad):
            raise FEMError(
                f"{where}: non-manifold mesh: boundary vertex {int(bad[0])} touches {int(deg[bad[0]])} boundary edges "
                "(a pinched vertex; expected 2)"
            )
    return bnd


def boundary_facets(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Boundary facets of a triangle/tet mesh (after :func:`check_manifold`).

    Shapes
    ------
    points : (n, 2|3) float
    cells : (m, d+1) int
    returns : (nf, d) int64
    """
    return check_manifold(cells, len(points))


def node_bc_type(n_points: int, facets: np.ndarray, facet_type: np.ndarray) -> np.ndarray:
    """Per-node boundary type from per-facet types (0 interior; Dirichlet > Robin > Neumann).

    Shapes
    ------
    facets : (nf, d) int
    facet_type : (nf,) int in {1, 2, 3}
    returns : (n_points,) int32
    """
    out = np.zeros(n_points, dtype=np.int32)
    for t in (NEUMANN, ROBIN, DIRICHLET):  # later ones overwrite
        out[np.unique(facets[facet_type == t])] = t
    return out


def _facet_measure(points: np.ndarray, facets: np.ndarray) -> np.ndarray:
    """Length (2D) or area (3D) of each boundary facet.

    Shapes
    ------
    points : (n, 2|3) float64
    facets : (nf, 2|3) int
    returns : (nf,) float64
    """
    p = points[facets]
    if facets.shape[1] == 2:
        return np.linalg.norm(p[:, 1] - p[:, 0], axis=1)
    p3 = p if p.shape[2] == 3 else np.concatenate([p, np.zeros(p.shape[:2] + (1,))], axis=2)
    return 0.5 * np.linalg.norm(np.cross(p3[:, 1] - p3[:, 0], p3[:, 2] - p3[:, 0]), axis=1)


# ----------------------------------------------------------------------------- solver
@dataclass
class Solution:
    """A solved problem: nodal solution and the skfem objects to evaluate errors with."""

    u: np.ndarray
    mesh: object
    basis: object
    bc_type: np.ndarray


def _skfem_mesh(points: np.ndarray, cells: np.ndarray):
    from skfem import ElementTetP1, ElementTriP1, MeshTet, MeshTri

    d = cells.shape[1] - 1
    p = np.ascontiguousarray(points[:, :d].T, dtype=np.float64)
    if d == 2:
        return MeshTri(p, np.ascontiguousarray(cells.T)), ElementTriP1()
    return MeshTet(p, np.ascontiguousarray(cells.T)), ElementTetP1()


def solve(
    points: np.ndarray,
    cells: np.ndarray,
    *,
    f: np.ndarray,
    g: np.ndarray,
    facet_type: np.ndarray | Callable[[np.ndarray], np.ndarray],
    k: np.ndarray | float = 1.0,
    alpha: np.ndarray | float = 1.0,
    facets: np.ndarray | None = None,
    g_facet: np.ndarray | None = None,
    where: str = "<mesh>",
) -> Solution:
    """Solve ``-div(k grad u) = f`` with P1 elements and the given boundary data.

    The system is :func:`assemble`'s; Dirichlet nodes are condensed out, a pure Neumann problem
    is solved with ``int u = 0``. Parameters as for :func:`assemble`.

    Shapes
    ------
    returns : Solution with ``u`` (n,) float64 and ``bc_type`` (n,) int32
    """
    A, b, bc, mesh, basis = assemble(points, cells, f=f, g=g, facet_type=facet_type, k=k, alpha=alpha, facets=facets,
                                     g_facet=g_facet, where=where)
    n = len(b)
    g = np.broadcast_to(np.asarray(g, dtype=np.float64), (n,))
    from skfem import condense

    D = np.flatnonzero(bc == DIRICHLET)
    if len(D):
        u = np.zeros(n)
        u[D] = g[D]
        u = solve_linear(*condense(A, b, x=u, D=D), where=where)
    elif (bc == ROBIN).any():
        u = solve_linear(A, b, where=where)
    else:
        u = _solve_pure_neumann(A, b, basis, where)
    return Solution(u=np.asarray(u, dtype=np.float64), mesh=mesh, basis=basis, bc_type=bc)


def assemble(
    points: np.ndarray,
    cells: np.ndarray,
    *,
    f: np.ndarray,
    g: np.ndarray,
    facet_type: np.ndarray | Callable[[np.ndarray], np.ndarray],
    k: np.ndarray | float = 1.0,
    alpha: np.ndarray | float = 1.0,
    facets: np.ndarray | None = None,
    g_facet: np.ndarray | None = None,
    where: str = "<mesh>",
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, Any, Any]:
    """The P1 system ``A u = b`` of ``-div(k grad u) = f`` with Neumann and Robin terms, before the
    Dirichlet rows are imposed: stiffness (+ Robin mass on Robin facets), load (+ boundary flux).

    Parameters
    ----------
    points, cells
        The mesh (triangles or tetrahedra). 2D points may have a zero third column.
    f, k, g, alpha
        Nodal values (P1 interpolants). ``g`` only matters on boundary nodes; ``alpha`` on Robin
        facets. Scalars broadcast.
    facet_type
        Type (1 Dirichlet, 2 Neumann, 3 Robin) per boundary facet, aligned with ``facets`` (default:
        :func:`boundary_facets`), or a callable mapping facet midpoints ``(nf, dim)`` to types.
    g_facet
        Optional Neumann/Robin data per boundary-facet node, aligned with ``facets``; lets data
        jump at corners (a flux with two normals). Default: ``g`` at the facet's nodes.
    where
        A name for error messages (the case or file name).

    Shapes
    ------
    points : (n, 2|3) float64
    cells : (m, 3|4) int
    f, k, g, alpha : (n,) float64 or scalar
    facet_type : (nf,) int
    g_facet : (nf, d) float64, optional
    returns : A (n, n) CSR, b (n,), node ``bc_type`` (n,) int32, skfem mesh, skfem basis
    """
    points = np.asarray(points, dtype=np.float64)
    cells = np.asarray(cells, dtype=np.int64)
    n = len(points)
    d = cells.shape[1] - 1 if cells.ndim == 2 else 0
    bf = check_manifold(cells, n, where) if facets is None else np.asarray(facets, dtype=np.int64)
    if callable(facet_type):
        mid = points[bf][:, :, :d].mean(axis=1)
        facet_type = np.asarray(facet_type(mid))
    facet_type = np.asarray(facet_type).astype(np.int64)
    if facet_type.shape != (len(bf),):
        raise FEMError(f"{where}: facet_type has shape {facet_type.shape}, expected ({len(bf)},) (one per boundary facet)")
    bad = ~np.isin(facet_type, (DIRICHLET, NEUMANN, ROBIN))
    if bad.any():
        raise FEMError(f"{where}: facet_type has value {int(facet_type[bad][0])}; allowed 1 (D), 2 (N), 3 (R)")

    def nodal(name: str, v: np.ndarray | float) -> np.ndarray:
        a = np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy()
        return a

    f, k, g, alpha = nodal("f", f), nodal("k", k), nodal("g", g), nodal("alpha", alpha)
    bc = node_bc_type(n, bf, facet_type)
    for name, a, mask in (("f", f, slice(None)), ("k", k, slice(None)), ("g", g, bc > 0)):
        sel = a[mask]
        if not np.all(np.isfinite(sel)):
            idx = np.flatnonzero(mask if not isinstance(mask, slice) else np.ones(n, bool))[~np.isfinite(sel)]
            raise FEMError(f"{where}: field '{name}' is not finite at node {int(idx[0])} ({a[idx[0]]}); "
                           f"{len(idx)} such nodes" + (" (boundary values missing)" if name == "g" else ""))
    if (k <= 0).any():
        i = int(np.argmax(k <= 0))
        raise FEMError(f"{where}: field 'k' must be positive, node {i} has {k[i]}")
    if (facet_type == ROBIN).any() and (alpha[np.unique(bf[facet_type == ROBIN])] <= 0).any():
        raise FEMError(f"{where}: field 'alpha' must be positive on Robin facets")

    from skfem import Basis, BilinearForm, LinearForm, asm
    from skfem.helpers import dot, grad

    mesh, elem = _skfem_mesh(points, cells)
    basis = Basis(mesh, elem)

    @BilinearForm
    def stiffness(u, v, w):
        return w["kk"] * dot(grad(u), grad(v))

    @LinearForm
    def load(v, w):
        return w["ff"] * v

    A = asm(stiffness, basis, kk=basis.interpolate(k))
    b = asm(load, basis, ff=basis.interpolate(f))

    # Neumann / Robin terms, assembled per facet (exact for P1 data on straight facets).
    gf = g[bf] if g_facet is None else np.asarray(g_facet, dtype=np.float64)
    if gf.shape != bf.shape:
        raise FEMError(f"{where}: g_facet has shape {gf.shape}, expected {bf.shape} (values per boundary facet node)")
    nr = facet_type != DIRICHLET
    if nr.any() and not np.all(np.isfinite(gf[nr])):
        raise FEMError(f"{where}: boundary values 'g' are not finite on {int((~np.isfinite(gf[nr])).any(1).sum())} "
                       "Neumann/Robin facets (boundary values missing)")
    meas = _facet_measure(points, bf)
    fb, gb, mb = bf[nr], gf[nr], meas[nr]
    if len(fb):
        m = fb.shape[1]
        # int_F (sum_a g_a phi_a) phi_i = |F| (g_i + sum_a g_a) / (m (m + 1))
        contrib = mb[:, None] * (gb + gb.sum(1, keepdims=True)) / (m * (m + 1))
        b = b + np.bincount(fb.ravel(), weights=contrib.ravel(), minlength=n)
    rb = bf[facet_type == ROBIN]
    if len(rb):
        m = rb.shape[1]
        a_f = alpha[rb].mean(1) * meas[facet_type == ROBIN] / (m * (m + 1))
        rows = np.repeat(rb, m, axis=1).ravel()
        cols = np.tile(rb, (1, m)).ravel()
        vals = (np.repeat(a_f, m * m) * (1.0 + (rows == cols)))
        A = A + sp.csr_matrix((vals, (rows, cols)), shape=(n, n))

    return sp.csr_matrix(A), np.asarray(b, dtype=np.float64), bc, mesh, basis


def case_system(mesh: Any) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """The solver's own system for a generated case (a :class:`meshops.Mesh` written by the
    generator): :func:`assemble` with the case's fields and its boundary regions ``dirichlet`` /
    ``neumann`` / ``robin`` as the facet types, so the case's ``u`` solves it.

    Shapes
    ------
    returns : A (n, n) CSR, b (n,), Dirichlet mask (n,) bool, Dirichlet values (n,) (``g``)
    """
    where = mesh.source or "<mesh>"
    pd = mesh.point_data
    missing = [key for key in ("f", "k", "g", "alpha", "bc_type") if key not in pd]
    if missing:
        raise FEMError(f"{where}: point fields {missing} missing (not an elliptic_boundary case)")
    facets, types = [], []
    for name, t in REGION_TYPES.items():
        for block in mesh.boundaries.get(name, []):
            facets.append(np.asarray(block.data, dtype=np.int64))
            types.append(np.full(len(block.data), t))
    if not facets:
        raise FEMError(f"{where}: no 'dirichlet', 'neumann' or 'robin' boundary regions")
    alpha = np.asarray(pd["alpha"], dtype=np.float64)
    g = np.asarray(pd["g"], dtype=np.float64)
    A, b, bc, _, _ = assemble(mesh.points, mesh.cells[0].data, f=np.asarray(pd["f"], dtype=np.float64), g=g,
                              facet_type=np.concatenate(types), k=np.asarray(pd["k"], dtype=np.float64),
                              alpha=np.where(alpha > 0, alpha, 1.0), facets=np.concatenate(facets), where=where)
    return A, b, bc == DIRICHLET, g


def solve_linear(A, b, x=None, I=None, where: str = "<mesh>") -> np.ndarray:  # noqa: E741
    """Sparse direct solve (SuperLU); with ``x, I`` from ``skfem.condense`` returns the full vector."""
    sol = spla.spsolve(sp.csc_matrix(A), b)
    if not np.all(np.isfinite(sol)):
        raise FEMError(f"{where}: the linear solve produced non-finite values (singular system?)")
    if x is None:
        return sol
    out = np.array(x, dtype=np.float64)
    out[I] = sol
    return out


def _solve_pure_neumann(A, b, basis, where: str) -> np.ndarray:
    from skfem import LinearForm, asm

    @LinearForm
    def one(v, w):
        return v

    c = asm(one, basis)
    defect = float(b.sum())  # = int f + int g (the constant test function)
    scale = float(np.abs(b).sum()) or 1.0
    if abs(defect) > 1e-2 * scale:
        raise FEMError(
            f"{where}: pure Neumann data are incompatible: int f + int g = {defect:.4g} "
            f"(relative {abs(defect) / scale:.2e}); the problem has no solution"
        )
    if abs(defect) > 1e-8 * scale:
        log.warning("%s: pure Neumann data compatible only up to %.2e (projected)", where, abs(defect) / scale)
    n = A.shape[0]
    K = sp.bmat([[A, sp.csr_matrix(c.reshape(-1, 1))], [sp.csr_matrix(c.reshape(1, -1)), None]], format="csc")
    rhs = np.concatenate([b, [0.0]])
    sol = spla.spsolve(K, rhs)
    if not np.all(np.isfinite(sol)):
        raise FEMError(f"{where}: the pure Neumann solve produced non-finite values")
    return sol[:n]


# ----------------------------------------------------------------------------- errors
def errors(sol: Solution, u_exact: Callable[[np.ndarray], np.ndarray],
           grad_exact: Callable[[np.ndarray], np.ndarray], *, subtract_mean: bool = False) -> tuple[float, float]:
    """L2 and H1-seminorm errors of ``sol.u`` against an exact solution (quadrature of order 4).

    ``u_exact(x)`` takes coordinates ``x`` of shape (dim, ...) and returns (...); ``grad_exact``
    returns (dim, ...). ``subtract_mean`` compares both with their means removed (pure Neumann).

    Shapes
    ------
    returns : (l2_error, h1_seminorm_error) floats
    """
    from skfem import Basis, Functional, asm
    from skfem.helpers import grad

    basis = Basis(sol.mesh, sol.basis.elem, intorder=4)
    uh = basis.interpolate(sol.u)
    shift_h = shift_e = 0.0
    if subtract_mean:
        vol = asm(Functional(lambda w: 1.0 + 0.0 * w.x[0]), basis)
        shift_h = asm(Functional(lambda w: w["uh"]), basis, uh=uh) / vol
        shift_e = asm(Functional(lambda w: u_exact(w.x)), basis) / vol

    l2 = asm(Functional(lambda w: (w["uh"] - shift_h - (u_exact(w.x) - shift_e)) ** 2), basis, uh=uh)
    h1 = asm(Functional(lambda w: sum((grad(w["uh"])[i] - grad_exact(w.x)[i]) ** 2 for i in range(w.x.shape[0]))),
             basis, uh=uh)
    return float(np.sqrt(l2)), float(np.sqrt(h1))
