"""GNOT (General Neural Operator Transformer) as a registered model: ``models.create("gnot", ...)``.

The query points are the graph's nodes; the input sets are the nodes' own input features and the
case's global parameters (one token per case), each with its own keys and values
(:mod:`meshops.nn.gnot`: heterogeneous normalized attention, geometry-gated expert FFNs). The
gates read the node positions ``data.pos`` divided by ``pos_scale``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from meshops.models import register
from meshops.models._common import batch_vector
from meshops.nn.gnot import GNOTBlock

__all__ = ["GNOT"]


@register("gnot")
class GNOT(nn.Module):
    """GNOT on node inputs ``x`` and globals ``u``.

    Parameters
    ----------
    in_channels, out_channels, global_channels : int
    hidden, n_layers, heads, experts, mlp_ratio : transformer size and mixture-of-experts width.
    pos_scale : positions are divided by it before the gates (a typical length of the geometry).

    Shapes
    ------
    data : graph with ``x`` (N, in_channels), ``pos`` (N, 3), ``u`` (B, global_channels), ``batch`` -> (N, out_channels)
    """

    def __init__(self, in_channels: int, out_channels: int, global_channels: int = 0, hidden: int = 64,
                 n_layers: int = 3, heads: int = 4, experts: int = 3, mlp_ratio: int = 2, pos_scale: float = 10.0) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"gnot: needs node input features (in_channels >= 1), got {in_channels}")
        self.in_channels, self.global_channels, self.pos_scale = in_channels, global_channels, float(pos_scale)
        self.enc_q = nn.Sequential(nn.Linear(in_channels, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.enc_x = nn.Sequential(nn.Linear(in_channels, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.enc_u = nn.Sequential(nn.Linear(max(global_channels, 1), hidden), nn.GELU(), nn.Linear(hidden, hidden))
        n_sets = 2 if global_channels else 1
        self.blocks = nn.ModuleList([GNOTBlock(hidden, 3, heads, n_sets, experts, mlp_ratio) for _ in range(n_layers)])
        self.head = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, out_channels))

    def forward(self, data: Any) -> torch.Tensor:
        x = getattr(data, "x", None)
        if x is None or x.shape[-1] != self.in_channels:
            got = None if x is None else tuple(x.shape)
            raise ValueError(f"gnot: expects node inputs x with {self.in_channels} channels, got {got}")
        batch = batch_vector(data, x.device)
        b = int(batch.max()) + 1 if batch.numel() else 1
        sets = [(self.enc_x(x), batch)]
        if self.global_channels:
            u = getattr(data, "u", None)
            if u is None or u.shape[-1] != self.global_channels:
                raise ValueError(f"gnot: expects {self.global_channels} global parameters in data.u")
            u = u.reshape(-1, self.global_channels).to(x.dtype)
            sets.append((self.enc_u(u), torch.arange(u.shape[0], device=x.device)))
        pos = data.pos.to(x.dtype) / self.pos_scale
        h = self.enc_q(x)
        for blk in self.blocks:
            h = blk(h, pos, batch, sets, b)
        return self.head(h)
