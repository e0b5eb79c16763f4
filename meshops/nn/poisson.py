"""A differentiable discrete Poisson solve on a triangle mesh (P1 finite elements).

``x = K_ff^{-1} M_f s`` on the free nodes, ``x = 0`` on the Dirichlet nodes, where ``K`` is the P1
stiffness matrix (the cotangent Laplacian) and ``M`` the lumped mass of the triangles: the solution of
``-lap x = s`` with ``x = 0`` on the Dirichlet nodes and zero normal derivative on the rest of the
boundary. A network that predicts a *local* source ``s`` gets the *global* (elliptic) response ``x``,
as the pressure of an incompressible flow answers a change of the velocity.

Each mesh is factorized once (sparse LU, float64): :func:`cached_factor` keeps the last factors by the
digest of their points, triangles and Dirichlet mask. The backward pass is one more solve with the same factor (``K`` is symmetric).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

__all__ = ["PoissonFactor", "cached_factor", "p1_laplacian", "poisson_solve"]


def p1_laplacian(points: np.ndarray, triangles: np.ndarray) -> tuple[Any, np.ndarray]:
    """The P1 stiffness matrix (cotangent weights, CSR, float64) and the lumped mass per node of
    triangles in 2D or 3D.

    Shapes
    ------
    points : (n, 2 or 3), triangles : (m, 3) -> K (n, n) sparse, mass (n,)
    """
    import scipy.sparse as sp

    P = np.asarray(points, dtype=np.float64)
    if P.shape[1] == 2:
        P = np.column_stack([P, np.zeros(len(P))])
    T = np.asarray(triangles, dtype=np.int64)
    n = len(P)
    a, b, c = P[T[:, 0]], P[T[:, 1]], P[T[:, 2]]
    area2 = np.linalg.norm(np.cross(b - a, c - a), axis=1)  # twice the area
    if len(T) and not (area2 > 0).all():
        k = int(np.argmin(area2))
        raise ValueError(f"p1_laplacian: triangle {k} {T[k].tolist()} has zero area")
    rows, cols, vals = [], [], []
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):  # the angle at k faces the edge (i, j)
        u, v = P[T[:, i]] - P[T[:, k]], P[T[:, j]] - P[T[:, k]]
        w = 0.5 * np.einsum("ij,ij->i", u, v) / area2  # cot(angle) / 2
        rows += [T[:, i], T[:, j], T[:, i], T[:, j]]
        cols += [T[:, j], T[:, i], T[:, i], T[:, j]]
        vals += [-w, -w, w, w]
    K = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    mass = np.bincount(T.ravel(), weights=np.repeat(area2 / 6.0, 3), minlength=n)
    return K, mass


class PoissonFactor:
    """``K_ff`` of one mesh factorized: :meth:`solve` maps a source ``s`` (n,) to ``x`` (n,)."""

    def __init__(self, points: np.ndarray, triangles: np.ndarray, dirichlet: np.ndarray, where: str = "mesh") -> None:
        self.key = self.digest(points, triangles, dirichlet)
        from scipy.sparse.csgraph import connected_components
        from scipy.sparse.linalg import splu

        K, mass = p1_laplacian(points, triangles)
        fixed = np.asarray(dirichlet, dtype=bool)
        if not fixed.any():
            raise ValueError(f"{where}: a Poisson solve needs at least one Dirichlet node (none is fixed)")
        n_parts, part = connected_components(K, directed=False)
        loose = np.setdiff1d(np.arange(n_parts), part[fixed])
        if len(loose):  # a pure Neumann problem there: K_ff is singular
            node = int(np.flatnonzero(part == loose[0])[0])
            raise ValueError(f"{where}: the Poisson matrix is singular: the connected part of the mesh with node {node} "
                             f"({int((part == loose[0]).sum())} nodes) has no Dirichlet node")
        self.n, self.free = len(mass), np.flatnonzero(~fixed)
        self.mass = mass[self.free]
        self.lu = splu(K[self.free][:, self.free].tocsc())

    def solve(self, s: np.ndarray) -> np.ndarray:
        x = np.zeros(self.n)
        x[self.free] = self.lu.solve(self.mass * np.asarray(s, dtype=np.float64)[self.free])
        return x

    def adjoint(self, g: np.ndarray) -> np.ndarray:
        """The gradient with respect to ``s`` of ``<g, solve(s)>``: ``M_f K_ff^{-1} g_f``."""
        out = np.zeros(self.n)
        out[self.free] = self.mass * self.lu.solve(np.asarray(g, dtype=np.float64)[self.free])
        return out

    def unit_rms(self) -> float:
        """The root mean square over the free nodes of the solution of a unit source (a length squared)."""
        return float(np.sqrt(np.mean(self.solve(np.ones(self.n))[self.free] ** 2)))

    @staticmethod
    def digest(points: np.ndarray, triangles: np.ndarray, dirichlet: np.ndarray) -> str:
        h = hashlib.sha1()
        for a in (points, triangles, dirichlet):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


_CACHE: OrderedDict[str, PoissonFactor] = OrderedDict()
_CACHE_SIZE = 64


def cached_factor(points: np.ndarray, triangles: np.ndarray, dirichlet: np.ndarray, where: str = "mesh") -> PoissonFactor:
    """The :class:`PoissonFactor` of this mesh and Dirichlet mask, factorized once for the last
    ``_CACHE_SIZE`` meshes asked for (training statistics and graphs share it)."""
    key = PoissonFactor.digest(points, triangles, dirichlet)
    f = _CACHE.pop(key, None) or PoissonFactor(points, triangles, dirichlet, where=where)
    _CACHE[key] = f
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return f


class _Solve(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, s: torch.Tensor, factors: list[PoissonFactor], ptr: list[int]) -> torch.Tensor:  # type: ignore[override]
        ctx.factors, ctx.ptr = factors, ptr
        return _apply(s, factors, ptr, "solve")

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        return _apply(g, ctx.factors, ctx.ptr, "adjoint"), None, None


def _apply(s: torch.Tensor, factors: list[PoissonFactor], ptr: list[int], how: str) -> torch.Tensor:
    a = s.detach().to("cpu", torch.float64).numpy()
    out = np.concatenate([getattr(f, how)(a[ptr[i] : ptr[i + 1]]) for i, f in enumerate(factors)])
    return torch.from_numpy(out).to(s.device, s.dtype)


def poisson_solve(s: torch.Tensor, factors: list[PoissonFactor], ptr: list[int]) -> torch.Tensor:
    """The Poisson solution of the sources ``s`` (N,) of graphs stacked along the nodes: graph ``i``
    holds nodes ``ptr[i]:ptr[i+1]`` and is solved with ``factors[i]``. Differentiable in ``s``.

    Shapes
    ------
    s : (N,) -> returns (N,)
    """
    if len(factors) + 1 != len(ptr) or ptr[-1] != s.shape[0]:
        raise ValueError(f"poisson_solve: {len(factors)} factors and node offsets {ptr[:3]}... do not fit {s.shape[0]} nodes")
    return _Solve.apply(s, factors, ptr)
