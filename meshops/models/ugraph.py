"""Multi-scale U-graph operator over the hierarchy levels built by :mod:`meshops.graph`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from meshops.models import register
from meshops.models.mgn import node_features
from meshops.nn.mlp import MLP
from meshops.nn.ugraph import Level, UGraphProcessor

__all__ = ["UGraphNet", "graph_levels"]


def graph_levels(data: Any, n_levels: int) -> list[Level]:
    """The first ``n_levels`` hierarchy levels of a (batched) MeshGraph as :class:`Level` objects.

    Raises ``ValueError`` naming the missing attribute when the graph has fewer levels.
    """
    levels = [Level(data.edge_index, data.edge_attr, int(data.num_nodes))]
    for lvl in range(1, n_levels):
        need = [f"pos_{lvl}", f"edge_index_{lvl}", f"edge_attr_{lvl}", f"down_{lvl}", f"up_{lvl}"]
        missing = [k for k in need if getattr(data, k, None) is None]
        if missing:
            raise ValueError(
                f"the graph has no hierarchy level {lvl} (missing {missing}); build it with at least "
                f"{n_levels} levels or lower the model's 'levels'"
            )
        levels.append(
            Level(
                edge_index=getattr(data, f"edge_index_{lvl}"),
                edge_attr=getattr(data, f"edge_attr_{lvl}"),
                num_nodes=int(getattr(data, f"pos_{lvl}").shape[0]),
                down=getattr(data, f"down_{lvl}"),
                down_w=getattr(data, f"down_w_{lvl}", None),
                up=getattr(data, f"up_{lvl}"),
                up_w=getattr(data, f"up_w_{lvl}", None),
            )
        )
    return levels


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
