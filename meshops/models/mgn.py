"""MeshGraphNet: encode-process-decode message passing on the mesh graph."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from meshops.models import register
from meshops.models._common import node_features
from meshops.nn.message_passing import EncodeProcessDecode

__all__ = ["MeshGraphNet", "node_features"]


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
    checkpoint : bool
        Per-block activation checkpointing in training (less memory, one more forward).
    precision : str
        ``"fp32"`` or ``"bf16"`` (autocast; fast where the hardware has bf16 units).

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
        checkpoint: bool = False,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        self.in_channels, self.global_channels = in_channels, global_channels
        self.net = EncodeProcessDecode(
            in_channels + global_channels, edge_channels, out_channels, hidden, n_blocks, aggregate, mlp_layers,
            checkpoint, precision,
        )
        self.hops = n_blocks  # message-passing rounds: the halo a partition needs

    def forward(self, data: Any) -> torch.Tensor:
        x = node_features(data, self.in_channels, self.global_channels)
        return self.net(x, data.edge_attr.to(x.dtype), data.edge_index)
