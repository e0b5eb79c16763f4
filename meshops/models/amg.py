"""The AMG multi-graph neural operator (local + feature + physics graphs per layer) as a registered model."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from meshops.models import register
from meshops.models.mgn import node_features
from meshops.models.transolver import batch_of
from meshops.nn.amg import AMGBlock, knn_dense
from meshops.nn.mlp import MLP

__all__ = ["AMGNet"]


@register("amg")
class AMGNet(nn.Module):
    """Lift MLP -> ``n_layers`` :class:`~meshops.nn.amg.AMGBlock` -> output MLP.

    Parameters
    ----------
    in_channels, out_channels, global_channels : int
    hidden : int
        Width (divisible by ``heads``).
    n_layers, heads, k_local, k_global, slices, mlp_ratio : see :class:`~meshops.nn.amg.AMGBlock`.
    local : ``"knn"`` (``k_local`` nearest nodes by position, as in the paper) or ``"mesh"`` (the
        graph's own ``edge_index``, for large meshes).

    Shapes
    ------
    data : graph with ``x`` (N, in_channels), ``pos`` (N, 3), ``batch`` -> (N, out_channels)
    """

    partition_unsupported = "its feature-space kNN graph and physics attention are global"

    def __init__(self, in_channels: int, out_channels: int, global_channels: int = 0, hidden: int = 64,
                 n_layers: int = 3, heads: int = 4, k_local: int = 8, k_global: int = 8, slices: int = 16,
                 mlp_ratio: int = 2, local: str = "knn") -> None:
        super().__init__()
        if local not in ("knn", "mesh"):
            raise ValueError(f"amg: local must be 'knn' or 'mesh', got {local!r}")
        self.in_channels, self.global_channels, self.local = in_channels, global_channels, local
        self.lift = MLP(in_channels + global_channels, hidden, hidden, 2, layer_norm=False, activation="gelu")
        self.blocks = nn.ModuleList(AMGBlock(hidden, heads, k_local, k_global, slices, mlp_ratio) for _ in range(n_layers))
        self.ln = nn.LayerNorm(hidden)
        self.head = MLP(hidden, out_channels, hidden, 2, layer_norm=False, activation="gelu")

    def forward(self, data: Any) -> torch.Tensor:
        x = node_features(data, self.in_channels, self.global_channels)
        batch, B = batch_of(data, x.shape[0], x.device)
        pos = data.pos.to(x.dtype)
        ei = data.edge_index if self.local == "mesh" else None
        if ei is None:
            ei = knn_dense(pos, self.blocks[0].k_local, batch) if len(self.blocks) else None
        h = self.lift(x)
        for blk in self.blocks:
            h = blk(h, pos, batch, B, ei)
        return self.head(self.ln(h))
