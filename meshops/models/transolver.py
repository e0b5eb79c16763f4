"""Transolver (physics attention over learned slices) as a registered model."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from meshops.models import register
from meshops.models.mgn import node_features
from meshops.nn.attention import Transolver as _Transolver

__all__ = ["TransolverModel"]


def batch_of(data: Any, n: int, device: torch.device) -> tuple[torch.Tensor | None, int]:
    """``data.batch`` and the number of graphs (one graph when unbatched)."""
    b = getattr(data, "batch", None)
    if b is None:
        return None, 1
    return b, int(getattr(data, "num_graphs", int(b.max()) + 1 if b.numel() else 1))


@register("transolver")
class TransolverModel(nn.Module):
    """Transolver baseline on the node inputs (positions enter through ``x``, as the pipeline adds them).

    Parameters
    ----------
    in_channels, out_channels, global_channels : int
    hidden, n_layers, heads, slices, mlp_ratio, dropout : see :class:`meshops.nn.attention.Transolver`.

    Shapes
    ------
    data : graph with ``x`` (N, in_channels) (and ``batch``) -> (N, out_channels)
    """

    def __init__(self, in_channels: int, out_channels: int, global_channels: int = 0, hidden: int = 64,
                 n_layers: int = 4, heads: int = 4, slices: int = 32, mlp_ratio: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_channels, self.global_channels = in_channels, global_channels
        self.net = _Transolver(in_channels + global_channels, out_channels, hidden, n_layers, heads, slices,
                               mlp_ratio, dropout)

    def forward(self, data: Any) -> torch.Tensor:
        x = node_features(data, self.in_channels, self.global_channels)
        batch, B = batch_of(data, x.shape[0], x.device)
        return self.net(x, batch, B)
