"""Multi-scale U-graph operator over the hierarchy levels built by :mod:`meshops.graph`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from meshops.models import register
from meshops.models._common import graph_levels, node_features
from meshops.nn.mlp import MLP
from meshops.nn.ugraph import UGraphProcessor

__all__ = ["UGraphNet", "graph_levels"]


@register("ugraph")
class UGraphNet(nn.Module):
    """Encoder -> U-graph processor over ``levels`` hierarchy levels -> decoder.

    Parameters
    ----------
    in_channels, out_channels, global_channels, edge_channels : int
        As for :class:`meshops.models.mgn.MeshGraphNet`.
    hidden : int
        Latent size.
    levels : int
        Hierarchy levels used (the graph must have at least this many).
    blocks_per_level : int
        Message passing rounds per level on the way down and on the way up.

    Shapes
    ------
    data : MeshGraph with ``x`` (N, in_channels), level-0 edges and the hierarchy attributes
    returns : (N, out_channels)
    """

    partition_unsupported = "its coarse hierarchy levels reach across the whole graph (the halo would be the graph)"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        global_channels: int = 0,
        edge_channels: int = 4,
        hidden: int = 64,
        levels: int = 3,
        blocks_per_level: int = 2,
        aggregate: str = "sum",
    ) -> None:
        super().__init__()
        self.in_channels, self.global_channels, self.levels = in_channels, global_channels, levels
        self.encoder = MLP(in_channels + global_channels, hidden, hidden)
        self.processor = UGraphProcessor(hidden, levels, edge_channels, blocks_per_level, aggregate)
        self.decoder = MLP(hidden, out_channels, hidden, layer_norm=False)

    def forward(self, data: Any) -> torch.Tensor:
        x = node_features(data, self.in_channels, self.global_channels)
        levels = graph_levels(data, self.levels)
        for L in levels:
            L.edge_attr = L.edge_attr.to(x.dtype)
        return self.decoder(self.processor(self.encoder(x), levels))
