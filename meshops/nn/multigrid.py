"""Multigrid cycles on the graph hierarchy: a fixed linear solver and a learned MgNO layer.

One cycle (:func:`multigrid_cycle`) serves both. At level ``l`` it smooths ``u <- u + S_l(f - A_l u)``
``pre`` times, restricts the residual to level ``l+1``, recurses ``gamma`` times (1: V-cycle, 2:
W-cycle) from a zero initial guess, prolongates the correction back, adds it and smooths ``post``
times. The coarsest level only smooths (``coarse`` times) or, for the fixed solver, solves exactly.
What ``A``, ``S``, restriction and prolongation are is up to a :class:`CycleOps` object:

* :class:`LinearMultigrid` -- the textbook solver for a sparse symmetric matrix: prolongation ``P_l``
  from the hierarchy's ``up_l`` maps (interpolation from the ``up_k`` nearest coarse nodes), by
  default improved by one damped Jacobi step ``(I - omega D^{-1} A) P`` as in smoothed aggregation,
  restriction ``R_l = P_l^T``, Galerkin coarse operators ``A_{l+1} = R_l A_l P_l`` and damped Jacobi
  smoothers ``S_l = omega_l D_l^{-1}`` with ``omega_l = 4 / (3 rho(D_l^{-1} A_l))``. The property
  tests check it against pyamg.
* :class:`MultigridLayer` -- the MgNO idea ("MgNO: Efficient Parameterization of Linear Operators
  via Multigrid") on graphs: ``A_l`` and ``S_l`` are learned linear message-passing operators
  (:class:`LevelOperator`) on each level's edges, restriction and prolongation are the hierarchy's
  ``down``/``up`` maps (a weighted mean and an interpolation) with optional learned channel mixing.
  The cycle maps the layer input ``f`` to ``u ~ A^{-1} f`` from ``u = 0``; the layer returns
  ``act(u + W f + b)``. On a regular grid whose hierarchy is the grid coarsened 2x per direction
  this is MgNO with stencil convolutions replaced by message passing.

Every gather/scatter goes through :mod:`meshops.ops`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from meshops import ops
from meshops.nn.mlp import MLP
from meshops.nn.ugraph import Level, prolong, restrict

__all__ = [
    "CycleOps",
    "LevelOperator",
    "LinearMultigrid",
    "MultigridLayer",
    "check_levels",
    "galerkin",
    "jacobi_omega",
    "level_geometry",
    "multigrid_cycle",
    "prolongation_matrix",
    "reference_spacing",
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


def _diag(A: torch.Tensor) -> torch.Tensor:
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
    d = _diag(A)
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
                d = _diag(Al)
                AP = torch.sparse.mm(Al, P).coalesce()
                scaled = torch.sparse_coo_tensor(AP.indices(), AP.values() * (w / d[AP.indices()[0]]), AP.shape)
                P = (P - scaled).coalesce()
            self.P.append(P)
            self.A.append(galerkin(self.A[-1], P))
        self.n_levels = len(self.A)
        self.diag = [_diag(a) for a in self.A]
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


# ----------------------------------------------------------------------------- the learned layer
def _edge_geometry(L: Level, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-edge ``[d / h_dst, |d| / h_dst]`` and per-node local spacing ``h`` (mean incident edge length).

    Shapes
    ------
    returns : ((E, 4) float, (N,) float)
    """
    ea = L.edge_attr.to(dtype)
    length = ea[:, -1]
    dst = L.edge_index[1]
    h = ops.scatter(length[:, None], dst, dim_size=L.num_nodes, reduce="mean")[:, 0]
    # isolated nodes (no edges) get the level's mean spacing so nothing divides by zero
    fill = length.mean() if length.numel() else torch.ones((), dtype=dtype, device=ea.device)
    h = torch.where(h > 0, h, fill.expand_as(h)).clamp_min(torch.finfo(dtype).tiny)
    hd = ops.gather(h, dst)
    return ea / hd[:, None], h


class LevelOperator(nn.Module):
    """A learned linear operator on one level's graph (a depthwise-separable stencil, message passing).

    ``(K u)_i = s_i^p [ W_0 u_i + sum_m W_m (1/deg_i) sum_{j -> i} k_m(e_ji) * (u_j - u_i) ]``

    with ``k_m = MLP(edge geometry / h_i)`` a per-channel weight vector per edge (``n_kernels`` of them;
    ``*`` is the channel-wise product, as in a depthwise convolution), ``W_m`` channel mixing matrices,
    ``h_i`` the local spacing (mean incident edge length) and ``s_i = h_i / H_i`` the spacing relative
    to the coarsest level's (``H``, see :func:`reference_spacing`), raised to ``p = scale_power``
    (``-2`` for a diffusion-like operator ``A``, ``+2`` for a smoother ``S ~ A^{-1}``): the same weights
    describe the same continuous operator on finer or coarser graphs, and the scale is set by the
    domain, not by the units. Linear in ``u``.

    Shapes
    ------
    u : (N, C); level : :class:`~meshops.nn.ugraph.Level` with edge_attr (E, 4); scale : (N,) -> (N, C)
    """

    def __init__(self, channels: int, n_kernels: int = 1, kernel_hidden: int = 16, scale_power: float = 0.0) -> None:
        super().__init__()
        if n_kernels < 1:
            raise ValueError(f"LevelOperator: n_kernels must be >= 1, got {n_kernels}")
        self.channels, self.n_kernels, self.scale_power = channels, n_kernels, float(scale_power)
        self.kernel = MLP(4, n_kernels * channels, kernel_hidden, 2, layer_norm=False)
        self.mix = nn.Linear((n_kernels + 1) * channels, channels, bias=False)
        nn.init.normal_(self.mix.weight, std=1.0 / math.sqrt((n_kernels + 1) * channels))

    def weights(self, edge_geom: torch.Tensor) -> torch.Tensor:
        """Per-edge kernel weights (E, n_kernels * channels) from the normalized edge geometry (E, 4)."""
        if edge_geom.shape[1] != 4:
            raise ValueError(f"LevelOperator: edge_attr must have 4 columns [dx, dy, dz, length], got {edge_geom.shape[1]}")
        return self.kernel(edge_geom)

    def forward(self, u: torch.Tensor, level: Level, scale: torch.Tensor | None = None,
                k: torch.Tensor | None = None) -> torch.Tensor:
        if k is None or scale is None:
            e, h = _edge_geometry(level, u.dtype)
            k = self.weights(e) if k is None else k
            scale = h / h.max() if scale is None else scale
        src, dst = level.edge_index[0], level.edge_index[1]
        diff = ops.gather(u, src) - ops.gather(u, dst)  # (E, C)
        msg = k * (diff if self.n_kernels == 1 else diff.repeat(1, self.n_kernels))  # (E, M*C)
        agg = ops.scatter(msg, dst, dim_size=u.shape[0], reduce="mean")  # (N, M*C)
        out = self.mix(torch.cat([u, agg], dim=-1))
        if self.scale_power:
            out = out * scale.pow(self.scale_power)[:, None]
        return out


def reference_spacing(levels: Sequence[Level], spacings: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per node of every level, the spacing ``H`` of the coarsest level with edges, carried along the maps.

    The coarsest level ``d`` that has edges keeps its own spacing; finer levels get it by
    prolongation (each node from its coarse parents, so every graph of a batch keeps its own),
    coarser edge-less levels by restriction.

    Shapes
    ------
    spacings : per level (N_l,) -> per level (N_l,)
    """
    n = len(levels)
    d = max((lv for lv in range(n) if levels[lv].edge_index.shape[1] > 0), default=0)
    out: list[torch.Tensor | None] = [None] * n
    out[d] = spacings[d]
    for lv in range(d - 1, -1, -1):
        c = levels[lv + 1]
        assert c.up is not None
        out[lv] = prolong(out[lv + 1][:, None], c.up, c.up_w, levels[lv].num_nodes)[:, 0]  # type: ignore[index]
    for lv in range(d + 1, n):
        c = levels[lv]
        assert c.down is not None
        out[lv] = restrict(out[lv - 1][:, None], c.down, c.down_w, c.num_nodes)[:, 0]  # type: ignore[index]
    return [t for t in out if t is not None]


def level_geometry(levels: Sequence[Level], dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per level: normalized edge geometry (E_l, 4) and the relative spacing ``h / H`` (N_l,) of every node.

    Shapes
    ------
    returns : list of ((E_l, 4), (N_l,))
    """
    eg = [_edge_geometry(L, dtype) for L in levels]
    ref = reference_spacing(levels, [h for _, h in eg])
    return [(e, h / r.clamp_min(torch.finfo(dtype).tiny)) for (e, h), r in zip(eg, ref, strict=True)]


class _LearnedCycle:
    """Binds a :class:`MultigridLayer` to one batch's levels for :func:`multigrid_cycle`.

    Kernel weights of every operator are computed once per level and reused within the cycle.
    """

    def __init__(self, layer: MultigridLayer, levels: Sequence[Level], geoms: Sequence[tuple[torch.Tensor, torch.Tensor]]):
        self.layer, self.levels, self.geoms = layer, levels, geoms
        self.n_levels = len(levels)
        self._k: dict[tuple[int, int], torch.Tensor] = {}

    def _pick(self, mods: nn.ModuleList, level: int) -> nn.Module:
        return mods[0] if len(mods) == 1 else mods[level]

    def _run(self, mods: nn.ModuleList, which: int, level: int, u: torch.Tensor) -> torch.Tensor:
        op = self._pick(mods, level)
        key = (which, level)
        if key not in self._k:
            self._k[key] = op.weights(self.geoms[level][0])
        return op(u, self.levels[level], self.geoms[level][1], self._k[key])

    def apply(self, level: int, u: torch.Tensor) -> torch.Tensor:
        return self._run(self.layer.A, 0, level, u)

    def smooth(self, level: int, r: torch.Tensor) -> torch.Tensor:
        return self._run(self.layer.S, 1, level, r)

    def restrict(self, level: int, r: torch.Tensor) -> torch.Tensor:
        c = self.levels[level + 1]
        assert c.down is not None
        out = restrict(r, c.down, c.down_w, c.num_nodes)
        if self.layer.R is not None:
            out = out + self._pick(self.layer.R, level)(out)
        return out

    def prolong(self, level: int, e: torch.Tensor) -> torch.Tensor:
        c = self.levels[level + 1]
        assert c.up is not None
        out = prolong(e, c.up, c.up_w, self.levels[level].num_nodes)
        if self.layer.P is not None:
            out = out + self._pick(self.layer.P, level)(out)
        return out

    def coarse_solve(self, level: int, f: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor | None:
        return None


class MultigridLayer(nn.Module):
    """An MgNO layer: ``act(MG(f) + W f + b)``, ``MG`` a learned V/W-cycle on the graph hierarchy.

    Parameters
    ----------
    channels : int
        Feature channels (in = out).
    n_levels : int or None
        Levels the cycle descends (``None``: all levels of the graph; needs ``share_levels``).
    cycle : ``"V"`` or ``"W"``
    pre, post : smoothing steps before/after the coarse correction; ``coarse`` on the coarsest level.
    share_levels : one ``A``/``S`` pair for every level (resolution-agnostic: the operators are
        scaled by the local spacing) instead of one per level.
    n_kernels, kernel_hidden : see :class:`LevelOperator`.
    learned_transfer : add learned channel mixing after restriction and prolongation.
    activation : ``"gelu"``, ``"silu"``, ``"relu"`` or ``"none"``.
    scale_power : ``A`` is scaled by ``(h/H)^-p`` and ``S`` by ``(h/H)^p`` (2: a second-order operator
        and its inverse; 0: plain per-hop stencils).

    Shapes
    ------
    f : (N_0, channels); levels : list of :class:`~meshops.nn.ugraph.Level` -> (N_0, channels)
    """

    def __init__(
        self,
        channels: int,
        n_levels: int | None = None,
        cycle: str = "V",
        pre: int = 1,
        post: int = 1,
        coarse: int = 2,
        share_levels: bool = True,
        n_kernels: int = 1,
        kernel_hidden: int = 16,
        learned_transfer: bool = False,
        activation: str = "gelu",
        scale_power: float = 2.0,
    ) -> None:
        super().__init__()
        if cycle not in ("V", "W"):
            raise ValueError(f"MultigridLayer: cycle must be 'V' or 'W', got {cycle!r}")
        if n_levels is None and not share_levels:
            raise ValueError("MultigridLayer: n_levels=None (all levels of the graph) needs share_levels=True")
        if n_levels is not None and n_levels < 1:
            raise ValueError(f"MultigridLayer: n_levels must be >= 1, got {n_levels}")
        if min(pre, post, coarse) < 0 or pre + post == 0:
            raise ValueError(f"MultigridLayer: need pre, post, coarse >= 0 and pre + post > 0, got {pre}, {post}, {coarse}")
        self.channels, self.n_levels, self.cycle = channels, n_levels, cycle
        self.pre, self.post, self.coarse = pre, post, coarse
        n_ops = 1 if share_levels else int(n_levels or 1)
        self.A = nn.ModuleList(LevelOperator(channels, n_kernels, kernel_hidden, -scale_power) for _ in range(n_ops))
        self.S = nn.ModuleList(LevelOperator(channels, n_kernels, kernel_hidden, scale_power) for _ in range(n_ops))
        n_tr = 1 if share_levels else max(1, int(n_levels or 1) - 1)
        self.R = nn.ModuleList(nn.Linear(channels, channels) for _ in range(n_tr)) if learned_transfer else None
        self.P = nn.ModuleList(nn.Linear(channels, channels) for _ in range(n_tr)) if learned_transfer else None
        self.skip = nn.Linear(channels, channels)
        acts = {"gelu": nn.GELU(), "silu": nn.SiLU(), "relu": nn.ReLU(), "none": nn.Identity()}
        if activation not in acts:
            raise ValueError(f"MultigridLayer: activation {activation!r} is not one of {sorted(acts)}")
        self.act = acts[activation]

    def forward(self, f: torch.Tensor, levels: Sequence[Level]) -> torch.Tensor:
        n = len(levels) if self.n_levels is None else self.n_levels
        if len(levels) < n:
            raise ValueError(f"MultigridLayer: the graph has {len(levels)} hierarchy levels, the layer needs {n}")
        if f.shape[0] != levels[0].num_nodes or f.shape[-1] != self.channels:
            raise ValueError(f"MultigridLayer: input has shape {tuple(f.shape)}, expected ({levels[0].num_nodes}, "
                             f"{self.channels})")
        levels = list(levels[:n])
        check_levels(levels, "MultigridLayer")
        geoms = level_geometry(levels, f.dtype)
        u = multigrid_cycle(_LearnedCycle(self, levels, geoms), f, None, gamma=2 if self.cycle == "W" else 1,
                            pre=self.pre, post=self.post, coarse=self.coarse, levels=n)
        return self.act(u + self.skip(f))
