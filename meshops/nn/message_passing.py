"""MeshGraphNet-style message passing: residual edge and node MLPs with LayerNorm.

Built on :mod:`meshops.ops` (``gather`` / ``scatter``), so the fast kernels are used when present.
"""

from __future__ import annotations

import torch
from torch import nn

from meshops import ops
from meshops.nn.mlp import MLP

__all__ = ["EdgeNodeBlock", "MessagePassingProcessor", "EncodeProcessDecode"]


class EdgeNodeBlock(nn.Module):
    """One round of message passing with residual updates.

    ``e' = e + MLP_e([e, x_src, x_dst])``, ``m_i = sum_{j -> i} e'_{ji}`` (or mean),
    ``x' = x + MLP_n([x, m])``.

    Parameters
    ----------
    hidden : int
        Node and edge latent size.
    aggregate : str
        ``"sum"`` (MeshGraphNet) or ``"mean"``.
    mlp_layers : int
        Linear layers per MLP.

    Shapes
    ------
    x : (N, hidden); e : (E, hidden); edge_index : (2, E) [src, dst] -> ((N, hidden), (E, hidden))
    """

    def __init__(self, hidden: int, aggregate: str = "sum", mlp_layers: int = 2) -> None:
        super().__init__()
        if aggregate not in ("sum", "mean"):
            raise ValueError(f"EdgeNodeBlock: aggregate must be 'sum' or 'mean', got '{aggregate}'")
        self.aggregate = aggregate
        self.edge_mlp = MLP(3 * hidden, hidden, hidden, mlp_layers)
        self.node_mlp = MLP(2 * hidden, hidden, hidden, mlp_layers)

    def forward(
        self, x: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        src, dst = edge_index[0], edge_index[1]
        e = e + self.edge_mlp(torch.cat([e, ops.gather(x, src), ops.gather(x, dst)], dim=-1))
        m = ops.scatter(e, dst, dim_size=x.shape[0], reduce=self.aggregate)
        x = x + self.node_mlp(torch.cat([x, m.to(x.dtype)], dim=-1))
        return x, e


class MessagePassingProcessor(nn.Module):
    """A stack of :class:`EdgeNodeBlock` (no weight sharing).

    Shapes
    ------
    x : (N, hidden); e : (E, hidden); edge_index : (2, E) -> ((N, hidden), (E, hidden))
    """

    def __init__(self, hidden: int, n_blocks: int, aggregate: str = "sum", mlp_layers: int = 2) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(EdgeNodeBlock(hidden, aggregate, mlp_layers) for _ in range(n_blocks))

    def forward(
        self, x: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for block in self.blocks:
            x, e = block(x, e, edge_index)
        return x, e


class EncodeProcessDecode(nn.Module):
    """Encoder MLPs -> message passing processor -> decoder MLP (MeshGraphNet).

    Parameters
    ----------
    node_in, edge_in, out_channels : int
        Raw node feature, edge feature and output sizes.
    hidden : int
        Latent size.
    n_blocks : int
        Message passing rounds.

    Shapes
    ------
    x : (N, node_in); edge_attr : (E, edge_in); edge_index : (2, E) -> (N, out_channels)
    """

    def __init__(
        self,
        node_in: int,
        edge_in: int,
        out_channels: int,
        hidden: int = 128,
        n_blocks: int = 8,
        aggregate: str = "sum",
        mlp_layers: int = 2,
    ) -> None:
        super().__init__()
        self.node_encoder = MLP(node_in, hidden, hidden, mlp_layers)
        self.edge_encoder = MLP(edge_in, hidden, hidden, mlp_layers)
        self.processor = MessagePassingProcessor(hidden, n_blocks, aggregate, mlp_layers)
        self.decoder = MLP(hidden, out_channels, hidden, mlp_layers, layer_norm=False)

    def forward(self, x: torch.Tensor, edge_attr: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        h, e = self.processor(self.node_encoder(x), self.edge_encoder(edge_attr), edge_index)
        return self.decoder(h)
