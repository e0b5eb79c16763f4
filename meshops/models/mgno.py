"""MgNO on graphs: stacked learned multigrid V/W-cycles over the hierarchy levels of :mod:`meshops.graph`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from meshops.models import register
from meshops.models.mgn import node_features
from meshops.models.ugraph import graph_levels
from meshops.nn.mlp import MLP
from meshops.nn.multigrid import MultigridLayer, coefficient_levels

__all__ = ["MgNO", "available_levels"]


def available_levels(data: Any) -> int:
    """Number of hierarchy levels a (batched) graph carries (level 0 included)."""
    n = 1
    while getattr(data, f"pos_{n}", None) is not None:
        n += 1
    return n


@register("mgno")
class MgNO(nn.Module):
    """Lift -> ``n_layers`` :class:`~meshops.nn.multigrid.MultigridLayer` -> projection.

    Parameters
    ----------
    in_channels, out_channels, global_channels : int
        As for :class:`meshops.models.mgn.MeshGraphNet`.
    hidden : int
        Channels of the multigrid layers.
    n_layers : int
        Stacked layers (each one cycle).
    levels : int or None
        Hierarchy levels the cycles use; ``None`` uses every level the graph has (operators shared
        across levels, so a finer mesh may bring one more level: zero-shot super-resolution).
    cycle : ``"V"`` or ``"W"``; pre, post, coarse : smoothing steps (see :func:`~meshops.nn.multigrid.multigrid_cycle`).
    share_levels, n_kernels, kernel_hidden, learned_transfer : see
        :class:`~meshops.nn.multigrid.MultigridLayer`.
    condition : the node inputs (coefficients, source, flags), restricted down the hierarchy, condition
        every learned stencil (the operator of ``-div(a grad u)`` depends on ``a``); ``False``: the
        plain MgNO, whose operators see only the geometry.

    Shapes
    ------
    data : MeshGraph with ``x`` (N, in_channels), level-0 edges and hierarchy levels -> (N, out_channels)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        global_channels: int = 0,
        edge_channels: int = 4,
        hidden: int = 32,
        n_layers: int = 4,
        levels: int | None = None,
        cycle: str = "V",
        pre: int = 1,
        post: int = 1,
        coarse: int = 2,
        share_levels: bool = True,
        n_kernels: int = 1,
        kernel_hidden: int = 16,
        learned_transfer: bool = False,
        condition: bool = True,
    ) -> None:
        super().__init__()
        if edge_channels != 4:
            raise ValueError(f"mgno: edge_channels must be 4 ([dx, dy, dz, length]), got {edge_channels}")
        self.in_channels, self.global_channels, self.levels = in_channels, global_channels, levels
        self.lift = nn.Linear(in_channels + global_channels, hidden)
        self.condition = bool(condition)
        cond = in_channels + global_channels if condition else 0
        self.layers = nn.ModuleList(
            MultigridLayer(hidden, levels, cycle, pre, post, coarse, share_levels, n_kernels, kernel_hidden,
                           learned_transfer, cond_channels=cond)
            for _ in range(n_layers)
        )
        self.proj = MLP(hidden, out_channels, 2 * hidden, 2, layer_norm=False, activation="gelu")

    def forward(self, data: Any) -> torch.Tensor:
        x = node_features(data, self.in_channels, self.global_channels)
        n = self.levels if self.levels is not None else available_levels(data)
        levels = graph_levels(data, n)
        h = self.lift(x)
        cond = coefficient_levels(x, levels) if self.condition else None
        for layer in self.layers:
            h = layer(h, levels, cond)
        return self.proj(h)
