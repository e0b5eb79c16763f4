"""Multigrid cycles on the graph hierarchy and the fixed linear solver.

One cycle (:func:`multigrid_cycle`) serves both this solver and the learned MgNO layer in
:mod:`meshops.nn.multigrid`. At level ``l`` it smooths ``u <- u + S_l(f - A_l u)`` ``pre`` times,
restricts the residual to level ``l+1``, recurses ``gamma`` times (1: V-cycle, 2: W-cycle) from a
zero initial guess, prolongates the correction back, adds it and smooths ``post`` times. The
coarsest level only smooths (``coarse`` times) or, for the fixed solver, solves exactly. What ``A``,
``S``, restriction and prolongation are is up to a :class:`CycleOps` object.

:class:`LinearMultigrid` is the textbook solver for a sparse symmetric matrix: prolongation ``P_l``
from the hierarchy's ``up_l`` maps (interpolation from the ``up_k`` nearest coarse nodes), by
default improved by one damped Jacobi step ``(I - omega D^{-1} A) P`` as in smoothed aggregation,
restriction ``R_l = P_l^T``, Galerkin coarse operators ``A_{l+1} = R_l A_l P_l`` and damped Jacobi
smoothers ``S_l = omega_l D_l^{-1}`` with ``omega_l = 4 / (3 rho(D_l^{-1} A_l))``. The property
tests check it against pyamg.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from meshops.nn.ugraph import Level

__all__ = [
    "CycleOps",
    "LinearMultigrid",
    "check_levels",
    "galerkin",
    "jacobi_omega",
    "multigrid_cycle",
    "prolongation_matrix",
    "sparse_diagonal",
]


# ----------------------------------------------------------------------------- checks
def check_levels(levels: Sequence[Level], where: str = "hierarchy") -> None:
    """Validate a list of hierarchy levels; raise ``ValueError`` naming the level and the problem.

    Checks: at least one level; every level has nodes; coarse levels have non-empty ``down`` and
    ``up`` maps whose indices lie inside the two levels; every finer node is reached by the up map
    (else prolongation leaves it at zero).

    Shapes
    ------
    levels : list of :class:`~meshops.nn.ugraph.Level`, level 0 first
    """
    if len(levels) == 0:
        raise ValueError(f"{where}: no levels")
    for lvl, L in enumerate(levels):
        if int(L.num_nodes) <= 0:
            raise ValueError(f"{where}: level {lvl} is empty (0 nodes)")
        ei = L.edge_index
        if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= L.num_nodes):
            raise ValueError(f"{where}: level {lvl} edge_index refers to node {int(ei.max())} but the level has "
                             f"{L.num_nodes} nodes")
        if lvl == 0:
            continue
        nf = int(levels[lvl - 1].num_nodes)
        for name, pairs, fine_row in (("down", L.down, 0), ("up", L.up, 1)):
            if pairs is None or pairs.numel() == 0:
                raise ValueError(f"{where}: level {lvl} has an empty '{name}_{lvl}' map (no pairs between levels "
                                 f"{lvl - 1} and {lvl})")
            fine, coarse = pairs[fine_row], pairs[1 - fine_row]
            if int(fine.min()) < 0 or int(fine.max()) >= nf:
                raise ValueError(f"{where}: '{name}_{lvl}' refers to level-{lvl - 1} node {int(fine.max())} but that "
                                 f"level has {nf} nodes")
            if int(coarse.min()) < 0 or int(coarse.max()) >= L.num_nodes:
                raise ValueError(f"{where}: '{name}_{lvl}' refers to level-{lvl} node {int(coarse.max())} but that "
                                 f"level has {L.num_nodes} nodes")
        assert L.up is not None
        hit = torch.zeros(nf, dtype=torch.bool, device=L.up.device)
        hit[L.up[1]] = True
        if not bool(hit.all()):
            miss = int(torch.nonzero(~hit)[0, 0])
            raise ValueError(f"{where}: 'up_{lvl}' leaves {int((~hit).sum())} level-{lvl - 1} nodes without a "
                             f"coarse parent (first: node {miss})")


# ----------------------------------------------------------------------------- the cycle
class CycleOps(Protocol):
    """What :func:`multigrid_cycle` needs at each level (``l = 0`` finest)."""

    n_levels: int

    def apply(self, level: int, u: torch.Tensor) -> torch.Tensor:
        """``A_l u``."""
        ...

    def smooth(self, level: int, r: torch.Tensor) -> torch.Tensor:
        """The smoother's correction ``S_l r`` for a residual ``r``."""
        ...

    def restrict(self, level: int, r: torch.Tensor) -> torch.Tensor:
        """Level ``level`` -> ``level + 1``."""
        ...

    def prolong(self, level: int, e: torch.Tensor) -> torch.Tensor:
        """Level ``level + 1`` -> ``level``."""
        ...

    def coarse_solve(self, level: int, f: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor | None:
        """An exact coarsest-level solve, or ``None`` to smooth instead."""
        ...


def multigrid_cycle(
    cyc: CycleOps,
    f: torch.Tensor,
    u: torch.Tensor | None = None,
    *,
    level: int = 0,
    gamma: int = 1,
    pre: int = 1,
    post: int = 1,
    coarse: int = 2,
    levels: int | None = None,
) -> torch.Tensor:
    """One multigrid cycle for ``A u = f`` starting at ``level`` (V-cycle: ``gamma=1``, W: ``gamma=2``).

    Parameters
    ----------
    cyc : the level operators (:class:`LinearMultigrid`, :class:`MultigridLayer`, ...).
    f : right-hand side at ``level``.
    u : initial guess (``None`` = zero).
    gamma : recursive calls per level (1 V, 2 W).
    pre, post : smoothing steps before and after the coarse correction.
    coarse : smoothing steps on the coarsest level when ``cyc.coarse_solve`` returns ``None``.
    levels : number of levels used (default ``cyc.n_levels``).

    Shapes
    ------
    f, u : (N_level, *C) -> (N_level, *C)
    """
    n = cyc.n_levels if levels is None else levels
    last = level == n - 1
    if last:
        out = cyc.coarse_solve(level, f, u)
        if out is not None:
            return out
        steps = coarse
    else:
        steps = pre
    for _ in range(steps):
        # from a zero guess the first step is just S f
        u = cyc.smooth(level, f) if u is None else u + cyc.smooth(level, f - cyc.apply(level, u))
    if last:
        return u if u is not None else torch.zeros_like(f)
    r = f if u is None else f - cyc.apply(level, u)
    rc = cyc.restrict(level, r)
    e: torch.Tensor | None = None
    for _ in range(max(1, gamma)):
        e = multigrid_cycle(cyc, rc, e, level=level + 1, gamma=gamma, pre=pre, post=post, coarse=coarse, levels=n)
    assert e is not None
    corr = cyc.prolong(level, e)
    u = corr if u is None else u + corr
    for _ in range(post):
        u = u + cyc.smooth(level, f - cyc.apply(level, u))
    return u


# ----------------------------------------------------------------------------- the fixed solver
def prolongation_matrix(up: torch.Tensor, up_w: torch.Tensor | None, n_coarse: int, n_fine: int,
                        dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The interpolation of an ``up_l`` map as a sparse ``(n_fine, n_coarse)`` matrix (coalesced COO).

    Shapes
    ------
    up : (2, M) int64 ``[coarse index, fine index]``; up_w : (M,) -> (n_fine, n_coarse) sparse
    """
    w = torch.ones(up.shape[1], dtype=dtype) if up_w is None else up_w.to(dtype)
    return torch.sparse_coo_tensor(torch.stack([up[1], up[0]]), w, (n_fine, n_coarse)).coalesce()


def galerkin(A: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """The Galerkin coarse operator ``P^T A P`` (sparse, coalesced).

    Shapes
    ------
    A : (n, n) sparse; P : (n, m) sparse -> (m, m) sparse
    """
    return torch.sparse.mm(torch.sparse.mm(P.t().coalesce(), A), P).coalesce()


def sparse_diagonal(A: torch.Tensor) -> torch.Tensor:
    """The diagonal of a coalesced sparse COO matrix (duplicates summed, 0 where absent).

    Shapes
    ------
    A : (n, n) sparse -> (n,)
    """
    idx, val = A.indices(), A.values()
    on = idx[0] == idx[1]
    d = torch.zeros(A.shape[0], dtype=val.dtype, device=val.device)
    return d.index_add_(0, idx[0][on], val[on])


def jacobi_omega(A: torch.Tensor, iters: int = 50, seed: int = 0) -> float:
    """Damping ``4 / (3 rho)`` for Jacobi, ``rho`` the spectral radius of ``D^{-1} A`` (power iteration).

    Shapes
    ------
    A : (n, n) sparse, symmetric positive definite
    """
    d = sparse_diagonal(A)
    if bool((d <= 0).any()):
        i = int(torch.nonzero(d <= 0)[0, 0])
        raise ValueError(f"jacobi_omega: diagonal entry {i} is {float(d[i])}; damped Jacobi needs a positive diagonal")
    s = d.rsqrt()
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(A.shape[0], generator=g, dtype=A.dtype) + 0.5
    rho = 1.0
    for _ in range(iters):
        w = s * torch.sparse.mm(A, (s * v)[:, None])[:, 0]
        rho = float(w.norm() / v.norm().clamp_min(1e-300))
        v = w / w.norm().clamp_min(1e-300)
    return 4.0 / (3.0 * rho * 1.01)


class LinearMultigrid:
    """Multigrid for a sparse SPD matrix on the graph hierarchy (Galerkin, damped Jacobi).

    Parameters
    ----------
    A : (n, n) sparse SPD matrix on the level-0 nodes (rows of Dirichlet nodes removed, say).
    prolongations : ``P_l`` (n_l, n_{l+1}) sparse for l = 0..L-2, e.g. from
        :func:`prolongation_matrix` of the hierarchy's ``up`` maps (restricted to the unknowns).
    omega : Jacobi damping per level; ``None`` uses :func:`jacobi_omega` on every level.
    exact_coarse : solve the coarsest level exactly (dense Cholesky) instead of smoothing.
    smooth_prolongation : replace each ``P_l`` by ``(I - omega_l D_l^{-1} A_l) P_l`` (one damped Jacobi
        step, as smoothed aggregation does to its tentative prolongation): lower-energy
        interpolation, denser coarse operators.

    Shapes
    ------
    :meth:`solve`, :meth:`cycle` : b, x (n,) or (n, k)
    """

    def __init__(self, A: torch.Tensor, prolongations: Sequence[torch.Tensor], omega: float | Sequence[float] | None = None,
                 exact_coarse: bool = True, smooth_prolongation: bool = True) -> None:
        A = A.coalesce()
        self.A: list[torch.Tensor] = [A]
        self.P: list[torch.Tensor] = []
        for lvl, P in enumerate(prolongations):
            P = P.coalesce().to(A.dtype)
            if P.shape[0] != self.A[-1].shape[0]:
                raise ValueError(f"LinearMultigrid: prolongation {lvl} has {P.shape[0]} rows but level {lvl} has "
                                 f"{self.A[-1].shape[0]} unknowns")
            if smooth_prolongation:
                Al = self.A[-1]
                w = jacobi_omega(Al) if omega is None else (float(omega) if isinstance(omega, (int, float)) else
                                                            float(omega[lvl]))
                d = sparse_diagonal(Al)
                AP = torch.sparse.mm(Al, P).coalesce()
                scaled = torch.sparse_coo_tensor(AP.indices(), AP.values() * (w / d[AP.indices()[0]]), AP.shape)
                P = (P - scaled).coalesce()
            self.P.append(P)
            self.A.append(galerkin(self.A[-1], P))
        self.n_levels = len(self.A)
        self.diag = [sparse_diagonal(a) for a in self.A]
        for lvl, d in enumerate(self.diag):
            if bool((d <= 0).any()):
                raise ValueError(f"LinearMultigrid: level {lvl} has a non-positive diagonal entry (an empty coarse "
                                 f"node or a bad prolongation)")
        if omega is None:
            self.omega = [jacobi_omega(a) for a in self.A]
        elif isinstance(omega, (int, float)):
            self.omega = [float(omega)] * self.n_levels
        else:
            self.omega = [float(o) for o in omega]
        self.exact_coarse = exact_coarse
        self._chol = torch.linalg.cholesky(self.A[-1].to_dense()) if exact_coarse else None

    @staticmethod
    def _mv(A: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(A, x[:, None])[:, 0] if x.dim() == 1 else torch.sparse.mm(A, x)

    def apply(self, level: int, u: torch.Tensor) -> torch.Tensor:
        return self._mv(self.A[level], u)

    def smooth(self, level: int, r: torch.Tensor) -> torch.Tensor:
        d = self.diag[level] if r.dim() == 1 else self.diag[level][:, None]
        return self.omega[level] * r / d

    def restrict(self, level: int, r: torch.Tensor) -> torch.Tensor:
        return self._mv(self.P[level].t(), r)

    def prolong(self, level: int, e: torch.Tensor) -> torch.Tensor:
        return self._mv(self.P[level], e)

    def coarse_solve(self, level: int, f: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor | None:
        if self._chol is None:
            return None
        rhs = f[:, None] if f.dim() == 1 else f
        out = torch.cholesky_solve(rhs, self._chol)
        return out[:, 0] if f.dim() == 1 else out

    def cycle(self, b: torch.Tensor, x: torch.Tensor | None = None, *, gamma: int = 1, pre: int = 2,
              post: int = 2) -> torch.Tensor:
        """One V- (``gamma=1``) or W-cycle (``gamma=2``) for ``A x = b``."""
        return multigrid_cycle(self, b, x, gamma=gamma, pre=pre, post=post, coarse=20)

    def residual(self, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return b - self.apply(0, x)
