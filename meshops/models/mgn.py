"""MeshGraphNet: encode-process-decode message passing on the mesh graph."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from meshops.models import register
from meshops.nn.message_passing import EncodeProcessDecode

__all__ = ["MeshGraphNet", "node_features"]


def node_features(data: Any, in_channels: int, global_channels: int = 0) -> torch.Tensor:
    """``data.x`` with the global parameters ``data.u`` of each node's sample appended.

    Shapes
    ------
    data.x : (N, in_channels); data.u : (B, global_channels); data.batch : (N,)
    returns : (N, in_channels + global_channels)
    """
    x = getattr(data, "x", None)
    n = int(data.num_nodes)
    if x is None:
        if in_channels:
            raise ValueError(f"model expects {in_channels} node input channels but the graph has no 'x'")
        x = torch.zeros(n, 0, device=data.pos.device, dtype=data.pos.dtype)
    if x.shape[-1] != in_channels:
        raise ValueError(f"model expects {in_channels} node input channels, the graph's x has {x.shape[-1]}")
    if global_channels:
        u = getattr(data, "u", None)
        if u is None or u.shape[-1] != global_channels:
            got = None if u is None else tuple(u.shape)
            raise ValueError(f"model expects {global_channels} global parameters in data.u, got shape {got}")
        u = u.reshape(-1, global_channels)
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = torch.zeros(n, dtype=torch.long, device=x.device)
        x = torch.cat([x, u[batch].to(x.dtype)], dim=-1)
    return x


@register("mgn")
class MeshGraphNet(nn.Module):
    """Encode-process-decode message passing (Pfaff et al. 2021) on ``data.edge_index``.

    Parameters
    ----------
    in_channels, out_channels : int
        Node input and output channels.
    global_channels : int
        Global parameters per sample (``data.u``), broadcast to the nodes.
    edge_channels : int
        Size of ``data.edge_attr`` (4: relative position and length).
    hidden : int
        Latent size.
    n_blocks : int
        Message passing rounds.

    Shapes
    ------
    data.x : (N, in_channels); data.edge_index : (2, E); data.edge_attr : (E, edge_channels)
    returns : (N, out_channels)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        global_channels: int = 0,
        edge_channels: int = 4,
        hidden: int = 128,
        n_blocks: int = 8,
        aggregate: str = "sum",
        mlp_layers: int = 2,
    ) -> None:
        super().__init__()
        self.in_channels, self.global_channels = in_channels, global_channels
        self.net = EncodeProcessDecode(
            in_channels + global_channels, edge_channels, out_channels, hidden, n_blocks, aggregate, mlp_layers
        )

    def forward(self, data: Any) -> torch.Tensor:
        x = node_features(data, self.in_channels, self.global_channels)
        return self.net(x, data.edge_attr.to(x.dtype), data.edge_index)
