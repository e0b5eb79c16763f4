"""Multi-scale U-graph processing over the hierarchy levels of :mod:`meshops.graph`.

Level 0 is the mesh graph; level ``l`` has its own nodes and edges. Going down, node features are
restricted with the weighted mean of the ``down_l`` map; going up, they are prolonged with the
weighted sum of the ``up_l`` map (weights sum to one per fine node) and merged with the skip
connection of that level, as in a U-Net.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from meshops import ops
from meshops.nn.message_passing import MessagePassingProcessor
from meshops.nn.mlp import MLP

__all__ = ["restrict", "prolong", "Level", "UGraphProcessor"]


def restrict(h: torch.Tensor, pairs: torch.Tensor, weight: torch.Tensor | None, dim_size: int) -> torch.Tensor:
    """Fine -> coarse: weighted mean over the fine nodes mapped to each coarse node.

    Shapes
    ------
    h : (N_fine, C); pairs : (2, M) [fine index, coarse index]; weight : (M,) -> (N_coarse, C)
    """
    src, dst = pairs[0], pairs[1]
    w = torch.ones(src.shape[0], device=h.device, dtype=h.dtype) if weight is None else weight.to(h.dtype)
    num = ops.scatter(ops.gather(h, src) * w[:, None], dst, dim_size=dim_size, reduce="sum")
    den = ops.scatter(w[:, None], dst, dim_size=dim_size, reduce="sum")
    return num / den.clamp_min(torch.finfo(den.dtype).tiny)


def prolong(h: torch.Tensor, pairs: torch.Tensor, weight: torch.Tensor | None, dim_size: int) -> torch.Tensor:
    """Coarse -> fine: weighted sum (interpolation weights sum to one per fine node).

    Shapes
    ------
    h : (N_coarse, C); pairs : (2, M) [coarse index, fine index]; weight : (M,) -> (N_fine, C)
    """
    src, dst = pairs[0], pairs[1]
    v = ops.gather(h, src)
    if weight is not None:
        v = v * weight.to(h.dtype)[:, None]
    return ops.scatter(v, dst, dim_size=dim_size, reduce="sum")


@dataclass
class Level:
    """One hierarchy level as the processor sees it.

    Attributes
    ----------
    edge_index : (2, E_l) int64
    edge_attr : (E_l, edge_in) float
    num_nodes : int
    down : (2, M) [index in level l-1, index in level l] or None for level 0
    down_w : (M,) or None
    up : (2, M') [index in level l, index in level l-1] or None for level 0
    up_w : (M',) or None
    """

    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    num_nodes: int
    down: torch.Tensor | None = None
    down_w: torch.Tensor | None = None
    up: torch.Tensor | None = None
    up_w: torch.Tensor | None = None


class UGraphProcessor(nn.Module):
    """Message passing at every level, fine to coarse and back, with skip connections.

    Parameters
    ----------
    hidden : int
        Latent size at every level.
    n_levels : int
        Number of levels used (level 0 included).
    edge_in : int
        Raw edge feature size (each level has its own edge encoder).
    blocks_per_level : int
        Message passing rounds on each level, on the way down and again on the way up.

    Shapes
    ------
    h : (N_0, hidden); levels : list of ``n_levels`` :class:`Level` -> (N_0, hidden)
    """

    def __init__(
        self, hidden: int, n_levels: int, edge_in: int = 4, blocks_per_level: int = 2, aggregate: str = "sum"
    ) -> None:
        super().__init__()
        if n_levels < 1:
            raise ValueError(f"UGraphProcessor: n_levels must be >= 1, got {n_levels}")
        self.n_levels = n_levels
        self.edge_encoders = nn.ModuleList(MLP(edge_in, hidden, hidden) for _ in range(n_levels))
        self.down_blocks = nn.ModuleList(
            MessagePassingProcessor(hidden, blocks_per_level, aggregate) for _ in range(n_levels)
        )
        self.up_blocks = nn.ModuleList(
            MessagePassingProcessor(hidden, blocks_per_level, aggregate) for _ in range(n_levels - 1)
        )
        self.merge = nn.ModuleList(MLP(2 * hidden, hidden, hidden) for _ in range(n_levels - 1))

    def forward(self, h: torch.Tensor, levels: list[Level]) -> torch.Tensor:
        if len(levels) < self.n_levels:
            raise ValueError(
                f"UGraphProcessor: the graph has {len(levels)} hierarchy levels, the model needs {self.n_levels}"
            )
        skips: list[torch.Tensor] = []
        edges: list[torch.Tensor] = []
        for lvl in range(self.n_levels):
            L = levels[lvl]
            if lvl > 0:
                assert L.down is not None
                h = restrict(h, L.down, L.down_w, L.num_nodes)
            e = self.edge_encoders[lvl](L.edge_attr)
            h, e = self.down_blocks[lvl](h, e, L.edge_index)
            skips.append(h)
            edges.append(e)
        for lvl in range(self.n_levels - 2, -1, -1):
            up = levels[lvl + 1]
            assert up.up is not None
            h_up = prolong(h, up.up, up.up_w, levels[lvl].num_nodes)
            h = skips[lvl] + self.merge[lvl](torch.cat([skips[lvl], h_up], dim=-1))
            h, _ = self.up_blocks[lvl](h, edges[lvl], levels[lvl].edge_index)
        return h
