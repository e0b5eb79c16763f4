"""Multigrid cycles on the graph hierarchy: a fixed linear solver and a learned MgNO layer.

The cycle and the fixed solver live in :mod:`meshops.nn.multigrid_solver` (re-exported here);
this module holds the learned layer.

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

import torch
from torch import nn

from meshops import ops
from meshops.nn.mlp import MLP
from meshops.nn.multigrid_solver import (
    CycleOps,
    LinearMultigrid,
    check_levels,
    galerkin,
    jacobi_omega,
    multigrid_cycle,
    prolongation_matrix,
)
from meshops.nn.ugraph import Level, prolong, restrict

__all__ = [
    "CycleOps",
    "LevelOperator",
    "LinearMultigrid",
    "MultigridLayer",
    "check_levels",
    "coefficient_levels",
    "galerkin",
    "jacobi_omega",
    "level_geometry",
    "multigrid_cycle",
    "prolongation_matrix",
]


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

    ``(K u)_i = W_0 u_i + sum_m W_m (1/deg_i) sum_{j -> i} k_m(e_ji) * (u_j - u_i)``

    with ``k_m = MLP(edge geometry / h_i [, c_j, c_i])`` a per-channel weight vector per edge (``n_kernels`` of them;
    ``*`` is the channel-wise product, as in a depthwise convolution), ``W_m`` channel mixing matrices,
    ``h_i`` the local spacing (mean incident edge length), so the stencil's shape is scale-free. Linear in ``u``.

    With ``cond_channels > 0`` the kernel also sees a coefficient field ``c`` (the layer's
    conditioning, e.g. the permeability restricted to the level) at both ends of the edge, so the
    stencil is that of ``-div(a grad .)`` for the given ``a``: the operator stays linear in ``u``
    but depends on the problem's coefficients, as a discretized PDE operator does.

    Shapes
    ------
    u : (N, C); level : :class:`~meshops.nn.ugraph.Level` with edge_attr (E, 4);
    cond : (N, cond_channels) -> (N, C)
    """

    def __init__(self, channels: int, n_kernels: int = 1, kernel_hidden: int = 16, cond_channels: int = 0) -> None:
        super().__init__()
        if n_kernels < 1:
            raise ValueError(f"LevelOperator: n_kernels must be >= 1, got {n_kernels}")
        self.channels, self.n_kernels = channels, n_kernels
        self.cond_channels = int(cond_channels)
        self.kernel = MLP(4 + 2 * self.cond_channels, n_kernels * channels, kernel_hidden, 2, layer_norm=False)
        self.mix = nn.Linear((n_kernels + 1) * channels, channels, bias=False)
        nn.init.normal_(self.mix.weight, std=1.0 / math.sqrt((n_kernels + 1) * channels))

    def weights(self, edge_geom: torch.Tensor, edge_index: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        """Per-edge kernel weights (E, n_kernels * channels) from the normalized edge geometry (E, 4)
        and, with ``cond_channels``, the coefficient ``cond`` (N, cond_channels) at both edge ends."""
        if edge_geom.shape[1] != 4:
            raise ValueError(f"LevelOperator: edge_attr must have 4 columns [dx, dy, dz, length], got {edge_geom.shape[1]}")
        if self.cond_channels:
            if cond is None or edge_index is None or cond.shape[-1] != self.cond_channels:
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"LevelOperator: needs a coefficient field of {self.cond_channels} channels per node, "
                                 f"got {got}")
            edge_geom = torch.cat([edge_geom, ops.gather(cond, edge_index[0]), ops.gather(cond, edge_index[1])], -1)
        return self.kernel(edge_geom)

    def forward(self, u: torch.Tensor, level: Level, k: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        if k is None:
            e, _ = _edge_geometry(level, u.dtype)
            k = self.weights(e, level.edge_index, cond)
        src, dst = level.edge_index[0], level.edge_index[1]
        diff = ops.gather(u, src) - ops.gather(u, dst)  # (E, C)
        msg = k * (diff if self.n_kernels == 1 else diff.repeat(1, self.n_kernels))  # (E, M*C)
        agg = ops.scatter(msg, dst, dim_size=u.shape[0], reduce="mean")  # (N, M*C)
        return self.mix(torch.cat([u, agg], dim=-1))


def coefficient_levels(c: torch.Tensor, levels: Sequence[Level]) -> list[torch.Tensor]:
    """A node field on level 0 carried down the hierarchy by restriction (weighted means), one per level.

    Shapes
    ------
    c : (N_0, C) -> per level (N_l, C)
    """
    if c.shape[0] != levels[0].num_nodes:
        raise ValueError(f"coefficient_levels: field has {c.shape[0]} rows, level 0 has {levels[0].num_nodes} nodes")
    out = [c]
    for L in levels[1:]:
        assert L.down is not None
        out.append(restrict(out[-1], L.down, L.down_w, L.num_nodes))
    return out


def level_geometry(levels: Sequence[Level], dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per level: normalized edge geometry (E_l, 4) and the local spacing ``h`` (N_l,) of every node.

    Shapes
    ------
    returns : list of ((E_l, 4), (N_l,))
    """
    return [_edge_geometry(L, dtype) for L in levels]


class _LearnedCycle:
    """Binds a :class:`MultigridLayer` to one batch's levels for :func:`multigrid_cycle`.

    Kernel weights of every operator are computed once per level and reused within the cycle.
    ``keep`` (per level, ``None`` or a (N_l, 1) 0/1 mask) switches smoothing off at masked-out nodes.
    """

    def __init__(self, layer: MultigridLayer, levels: Sequence[Level], edge_geom: Sequence[torch.Tensor],
                 cond: Sequence[torch.Tensor] | None = None, keep: Sequence[torch.Tensor | None] | None = None):
        self.layer, self.levels, self.edge_geom, self.cond = layer, levels, edge_geom, cond
        self.keep = list(keep) if keep is not None else [None] * len(levels)
        self.n_levels = len(levels)
        self._k: dict[tuple[int, int], torch.Tensor] = {}

    def _pick(self, mods: nn.ModuleList, level: int) -> nn.Module:
        return mods[0] if len(mods) == 1 else mods[level]

    def _run(self, mods: nn.ModuleList, which: int, level: int, u: torch.Tensor) -> torch.Tensor:
        op = self._pick(mods, level)
        key = (which, level)
        if key not in self._k:
            c = None if self.cond is None else self.cond[level]
            self._k[key] = op.weights(self.edge_geom[level], self.levels[level].edge_index, c)
        return op(u, self.levels[level], self._k[key])

    def apply(self, level: int, u: torch.Tensor) -> torch.Tensor:
        return self._run(self.layer.A, 0, level, u)

    def smooth(self, level: int, r: torch.Tensor) -> torch.Tensor:
        keep = self.keep[level]
        if keep is None:
            return self._run(self.layer.S, 1, level, r)
        if not bool(keep.any()):
            return torch.zeros_like(r)
        return self._run(self.layer.S, 1, level, r) * keep

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
    share_levels : one ``A``/``S`` pair for every level instead of one per level.
    n_kernels, kernel_hidden : see :class:`LevelOperator`.
    learned_transfer : add learned channel mixing after restriction and prolongation.
    activation : ``"gelu"``, ``"silu"``, ``"relu"`` or ``"none"``.
    cond_channels : channels of a coefficient field that conditions every ``A``/``S`` stencil
        (:class:`LevelOperator`); ``forward`` then takes it as ``cond`` (level 0, restricted here,
        or already one tensor per level).
    Zero-shot refinement: the layer records the mean finest-level spacing ``h_train`` of the graphs
    it is trained on (a buffer, saved with the weights). Where a level is clearly finer than that
    (nodes of local spacing below ``0.75 h_train``: a finer mesh than any seen in training) it only
    restricts and prolongates (no smoothing), so the trained operators act on the spacings they were trained on
    and the finer mesh's detail flows through the pointwise path ``W f`` (as FNO's truncated modes
    ignore frequencies it was not trained on).

    Shapes
    ------
    f : (N_0, channels); levels : list of :class:`~meshops.nn.ugraph.Level`; cond : (N_0, cond_channels)
    -> (N_0, channels)
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
        cond_channels: int = 0,
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
        self.cond_channels = int(cond_channels)
        self.A = nn.ModuleList(LevelOperator(channels, n_kernels, kernel_hidden, cond_channels) for _ in range(n_ops))
        self.S = nn.ModuleList(LevelOperator(channels, n_kernels, kernel_hidden, cond_channels) for _ in range(n_ops))
        n_tr = 1 if share_levels else max(1, int(n_levels or 1) - 1)
        self.R = nn.ModuleList(nn.Linear(channels, channels) for _ in range(n_tr)) if learned_transfer else None
        self.P = nn.ModuleList(nn.Linear(channels, channels) for _ in range(n_tr)) if learned_transfer else None
        self.skip = nn.Linear(channels, channels)
        self.register_buffer("h_train", torch.zeros((), dtype=torch.float64))
        self.register_buffer("n_train", torch.zeros((), dtype=torch.int64))
        acts = {"gelu": nn.GELU(), "silu": nn.SiLU(), "relu": nn.ReLU(), "none": nn.Identity()}
        if activation not in acts:
            raise ValueError(f"MultigridLayer: activation {activation!r} is not one of {sorted(acts)}")
        self.act = acts[activation]

    def forward(self, f: torch.Tensor, levels: Sequence[Level],
                cond: torch.Tensor | Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        n = len(levels) if self.n_levels is None else self.n_levels
        if len(levels) < n:
            raise ValueError(f"MultigridLayer: the graph has {len(levels)} hierarchy levels, the layer needs {n}")
        if f.shape[0] != levels[0].num_nodes or f.shape[-1] != self.channels:
            raise ValueError(f"MultigridLayer: input has shape {tuple(f.shape)}, expected ({levels[0].num_nodes}, "
                             f"{self.channels})")
        levels = list(levels[:n])
        check_levels(levels, "MultigridLayer")
        geoms = level_geometry(levels, f.dtype)
        if isinstance(cond, torch.Tensor):
            cond = coefficient_levels(cond, levels)
        cyc = _LearnedCycle(self, levels, [e for e, _ in geoms], cond, self._trained_nodes(geoms))
        u = multigrid_cycle(cyc, f, None, gamma=2 if self.cycle == "W" else 1, pre=self.pre, post=self.post,
                            coarse=self.coarse, levels=n)
        return self.act(u + self.skip(f))

    def _trained_nodes(self, geoms: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor | None]:
        """Per level, ``None`` (smooth everywhere) or a (N_l, 1) mask of the nodes whose local spacing is
        at least ``0.75 h_train``; in training, update ``h_train`` instead."""
        h0 = geoms[0][1].detach().double().mean()
        if self.training and torch.isfinite(h0):
            with torch.no_grad():
                self.n_train += 1
                self.h_train += (h0 - self.h_train) / self.n_train.clamp_max(1000).double()
        if self.training or float(self.n_train) == 0:
            return [None] * len(geoms)
        ref = 0.75 * float(self.h_train)
        out: list[torch.Tensor | None] = []
        for _, h in geoms:
            keep = h.detach() >= ref
            out.append(None if bool(keep.all()) else keep.to(h.dtype)[:, None])
        return out
