"""Physics-informed loss: the residual of a linear elliptic PDE from its finite element matrices.

For a discrete linear problem ``A u = b`` (e.g. P1 finite elements of ``-div(k grad u) = f``) the loss
of a prediction ``u`` is the relative squared residual on the rows where the equation holds,

``L(u) = || (A u~ - b)[rows] ||^2 / || (b - A u_fix)[rows] ||^2``,

where ``u~`` is ``u`` with the known (Dirichlet) values substituted at the fixed nodes and ``u_fix`` is
the vector of those known values (zero elsewhere), so the denominator is the norm of the
effective right-hand side and ``L = 0`` exactly for the discrete solution. It needs no labels: a
model trains on a few labelled cases plus many unlabelled ones (mixed supervision, as in HyPINO).
Matrices are torch sparse tensors; a batch of graphs uses the block-diagonal matrix
(:func:`batch_systems`), and the loss is averaged over the graphs.

:func:`p1_system` assembles ``A`` and ``b`` with scikit-fem for ``-div(k grad u) = f`` with Dirichlet
data (the elliptic_boundary solver's stiffness and load forms), imported only when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from meshops.nn.multigrid_solver import sparse_diagonal

__all__ = ["LinearSystem", "ResidualError", "batch_systems", "energy_loss", "p1_system", "residual", "residual_loss",
           "to_torch_sparse"]


class ResidualError(ValueError):
    """A residual system that does not fit the mesh or the prediction (the message names both)."""


def to_torch_sparse(A: Any, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A scipy sparse matrix (or a torch sparse/dense tensor) as a coalesced torch COO tensor.

    Shapes
    ------
    A : (n, m) -> (n, m) sparse COO
    """
    if isinstance(A, torch.Tensor):
        return (A if A.is_sparse else A.to_sparse()).coalesce().to(dtype)
    c = A.tocoo()
    idx = torch.from_numpy(np.vstack([c.row, c.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.as_tensor(c.data, dtype=dtype), c.shape, check_invariants=True).coalesce()


@dataclass
class LinearSystem:
    """``A u = b`` on the nodes of one mesh (or a batch: block diagonal).

    Attributes
    ----------
    A : (n, n) torch sparse
    b : (n,) float
    rows : (n,) bool, the rows where the equation holds (default: all but the fixed nodes)
    fixed : (n,) bool, nodes with known values (Dirichlet), or None
    values : (n,) float, the known values (used where ``fixed``)
    graph : (n,) int64, the graph of each node in a batch (None: one graph)
    name : str, for error messages
    """

    A: torch.Tensor
    b: torch.Tensor
    rows: torch.Tensor | None = None
    fixed: torch.Tensor | None = None
    values: torch.Tensor | None = None
    graph: torch.Tensor | None = None
    name: str = "<system>"

    def __post_init__(self) -> None:
        n = self.A.shape[0]
        if self.A.dim() != 2 or self.A.shape[1] != n:
            raise ResidualError(f"{self.name}: the residual matrix must be square, got shape {tuple(self.A.shape)}")
        for key in ("b", "rows", "fixed", "values", "graph"):
            v = getattr(self, key)
            if v is not None and (v.dim() != 1 or v.shape[0] != n):
                raise ResidualError(f"{self.name}: '{key}' has shape {tuple(v.shape)} but the matrix has {n} rows")
        if self.fixed is not None and self.values is None:
            raise ResidualError(f"{self.name}: 'fixed' nodes given without their 'values'")
        if self.rows is None:
            self.rows = ~self.fixed if self.fixed is not None else torch.ones(n, dtype=torch.bool)

    @property
    def n(self) -> int:
        return int(self.A.shape[0])

    def to(self, device: torch.device | str) -> LinearSystem:
        mv = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return LinearSystem(self.A.to(device), self.b.to(device), mv(self.rows), mv(self.fixed), mv(self.values),
                            mv(self.graph), self.name)


def batch_systems(systems: Sequence[LinearSystem]) -> LinearSystem:
    """One block-diagonal system for a batch of graphs (node order = concatenation, as PyG batches).

    Shapes
    ------
    systems : k systems of n_i nodes -> a system of sum n_i nodes with ``graph`` set
    """
    if not systems:
        raise ResidualError("batch_systems: no systems")
    idx, val, off = [], [], 0
    for s in systems:
        A = s.A.coalesce()
        idx.append(A.indices() + off)
        val.append(A.values())
        off += s.n
    A = torch.sparse_coo_tensor(torch.cat(idx, 1), torch.cat(val), (off, off), check_invariants=True).coalesce()
    cat = (lambda key, fill: torch.cat([getattr(s, key) if getattr(s, key) is not None else fill(s) for s in systems]))  # noqa: E731
    any_fixed = any(s.fixed is not None for s in systems)
    fixed = cat("fixed", lambda s: torch.zeros(s.n, dtype=torch.bool)) if any_fixed else None
    values = cat("values", lambda s: torch.zeros(s.n, dtype=s.b.dtype)) if any_fixed else None
    graph = torch.cat([torch.full((s.n,), i, dtype=torch.long) for i, s in enumerate(systems)])
    return LinearSystem(A, cat("b", None), cat("rows", None), fixed, values, graph,
                        f"batch of {len(systems)} systems ({systems[0].name}, ...)")


def _check_u(u: torch.Tensor, system: LinearSystem) -> torch.Tensor:
    if u.dim() == 2 and u.shape[1] == 1:
        u = u[:, 0]
    if u.dim() != 1 or u.shape[0] != system.n:
        raise ResidualError(f"{system.name}: the residual matrix is {system.n} x {system.n} but the prediction has shape "
                            f"{tuple(u.shape)}; the matrix does not match the mesh (one row per mesh node, one channel)")
    return u


def residual(u: torch.Tensor, system: LinearSystem) -> torch.Tensor:
    """``A u~ - b`` with the fixed values substituted, zero on rows where the equation does not hold.

    Shapes
    ------
    u : (n,) or (n, 1) -> (n,)
    """
    u = _check_u(u, system)
    A = system.A.to(u.dtype)
    if system.fixed is not None:
        assert system.values is not None
        u = torch.where(system.fixed, system.values.to(u.dtype), u)
    r = torch.sparse.mm(A, u[:, None])[:, 0] - system.b.to(u.dtype)
    assert system.rows is not None
    return torch.where(system.rows, r, torch.zeros_like(r))


def residual_loss(u: torch.Tensor, system: LinearSystem, eps: float = 1e-12) -> torch.Tensor:
    """Relative squared residual, averaged over the graphs of the batch (see the module docstring).

    Shapes
    ------
    u : (n,) or (n, 1) -> () scalar
    """
    r = residual(u, system)
    rhs = _effective_rhs(system, r.dtype)
    assert system.rows is not None
    rhs = torch.where(system.rows, rhs, torch.zeros_like(rhs))
    return _graph_ratio(r.square(), rhs.square(), system.graph, eps)


def _effective_rhs(system: LinearSystem, dtype: torch.dtype) -> torch.Tensor:
    """``b - A u_fix`` (the right-hand side the free values see; ``b`` without fixed values)."""
    b = system.b.to(dtype)
    if system.fixed is None:
        return b
    assert system.values is not None
    ufix = torch.where(system.fixed, system.values.to(dtype), torch.zeros_like(b))
    return b - torch.sparse.mm(system.A.to(dtype), ufix[:, None])[:, 0]


def _graph_ratio(num: torch.Tensor, den: torch.Tensor, graph: torch.Tensor | None, eps: float) -> torch.Tensor:
    """``sum(num) / sum(den)`` per graph of the batch (node ``i`` in graph ``graph[i]``), averaged."""
    if graph is None:
        return num.sum() / (den.sum() + eps)
    G = int(graph.max()) + 1
    n = torch.zeros(G, dtype=num.dtype, device=num.device).index_add_(0, graph, num)
    d = torch.zeros(G, dtype=num.dtype, device=num.device).index_add_(0, graph, den)
    return (n / (d + eps)).mean()


def energy_loss(u: torch.Tensor, system: LinearSystem, eps: float = 1e-12) -> torch.Tensor:
    """Ritz energy ``J(u~) = 1/2 u~^T A u~ - b^T u~`` (fixed values substituted), per graph, averaged.

    For a symmetric positive definite ``A`` (a stiffness matrix on the free nodes) ``J`` is smallest at
    the discrete solution ``u*`` and ``J(u) - J(u*) = 1/2 ||u - u*||_A^2``: minimizing it minimizes the
    energy-norm error, and its gradient is the residual ``A u~ - b`` itself, where the squared
    residual's is ``A (A u~ - b)`` (condition number squared, dominated by the highest frequencies).
    Each graph's energy is divided by the label-free scale ``1/2 b^T D^-1 b`` (effective right-hand
    side ``b - A u_fix`` on the free rows, ``D`` the diagonal of ``A``), so graphs of different sizes
    and loads weigh alike; the value is negative near the solution (only its differences matter).
    Needs the equation to hold on exactly the non-fixed rows.

    Shapes
    ------
    u : (n,) or (n, 1) -> () scalar
    """
    u = _check_u(u, system)
    assert system.rows is not None
    free = ~system.fixed if system.fixed is not None else torch.ones_like(system.rows)
    if not torch.equal(system.rows, free):
        raise ResidualError(f"{system.name}: the energy needs the equation on exactly the non-fixed rows")
    A = system.A.to(u.dtype)
    b = system.b.to(u.dtype)
    if system.fixed is not None:
        assert system.values is not None
        u = torch.where(system.fixed, system.values.to(u.dtype), u)
    bhat = _effective_rhs(system, u.dtype)
    Au = torch.sparse.mm(A, u[:, None])[:, 0]
    # 1/2 u~^T A u~ over all rows (fixed rows couple to free values), load only on the free rows
    e = 0.5 * u * Au - torch.where(free, b * u, torch.zeros_like(u))
    diag = sparse_diagonal(A)
    sc = torch.where(free, 0.5 * bhat.square() / diag.abs().clamp_min(eps), torch.zeros_like(b))
    return _graph_ratio(e, sc, system.graph, eps)


def p1_system(points: np.ndarray, cells: np.ndarray, *, f: np.ndarray, k: np.ndarray | float = 1.0,
              dirichlet: np.ndarray | None = None, g: np.ndarray | None = None, name: str = "<mesh>",
              dtype: torch.dtype = torch.float64) -> LinearSystem:
    """P1 finite element system of ``-div(k grad u) = f`` (scikit-fem) with Dirichlet nodes.

    ``A`` is the stiffness matrix with the P1 interpolant of ``k``, ``b`` the load vector of the P1
    interpolant of ``f`` (the forms of the elliptic_boundary solver); the equation holds on the
    non-Dirichlet rows; Dirichlet nodes take ``g``. (Neumann data would add to ``b``, Robin terms to
    ``A``; pure Dirichlet problems need neither.)

    Shapes
    ------
    points : (n, 2|3) float64; cells : (m, 3|4) int; f, k, g : (n,); dirichlet : (n,) bool -> LinearSystem
    """
    from skfem import Basis, BilinearForm, ElementTetP1, ElementTriP1, LinearForm, MeshTet, MeshTri, asm
    from skfem.helpers import dot, grad

    points = np.asarray(points, dtype=np.float64)
    cells = np.asarray(cells, dtype=np.int64)
    n = len(points)
    if cells.ndim != 2 or cells.shape[1] not in (3, 4):
        raise ResidualError(f"{name}: cells must be triangles or tetrahedra, got shape {cells.shape}")
    if cells.size and (cells.min() < 0 or cells.max() >= n):
        raise ResidualError(f"{name}: cells index point {int(cells.max())} but the mesh has {n} points")
    d = cells.shape[1] - 1
    arrays = {"f": f, "k": np.broadcast_to(np.asarray(k, dtype=np.float64), (n,))}
    if dirichlet is not None:
        arrays["dirichlet"] = dirichlet
        arrays["g"] = np.zeros(n) if g is None else g
    for key, a in arrays.items():
        if np.asarray(a).shape != (n,):
            raise ResidualError(f"{name}: field '{key}' has shape {np.asarray(a).shape} but the mesh has {n} points")
    mesh = (MeshTri if d == 2 else MeshTet)(np.ascontiguousarray(points[:, :d].T), np.ascontiguousarray(cells.T))
    basis = Basis(mesh, ElementTriP1() if d == 2 else ElementTetP1())

    @BilinearForm
    def stiffness(u, v, w):  # type: ignore[no-untyped-def]
        return w["kk"] * dot(grad(u), grad(v))

    @LinearForm
    def load(v, w):  # type: ignore[no-untyped-def]
        return w["ff"] * v

    A = asm(stiffness, basis, kk=basis.interpolate(np.asarray(arrays["k"], dtype=np.float64)))
    b = asm(load, basis, ff=basis.interpolate(np.asarray(f, dtype=np.float64)))
    fixed = values = None
    if dirichlet is not None:
        fixed = torch.from_numpy(np.asarray(dirichlet, dtype=bool))
        values = torch.from_numpy(np.asarray(arrays["g"], dtype=np.float64)).to(dtype)
    return LinearSystem(to_torch_sparse(A, dtype), torch.from_numpy(np.asarray(b)).to(dtype), None, fixed, values,
                        None, name)
