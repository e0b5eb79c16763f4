"""Multi-layer perceptrons, the building block of every meshops layer."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """``Linear -> act -> ... -> Linear`` with an optional LayerNorm on the output.

    Parameters
    ----------
    in_channels, out_channels : int
        Feature sizes.
    hidden : int
        Width of the hidden layers.
    n_layers : int
        Number of linear layers (>= 1).
    layer_norm : bool
        Apply ``LayerNorm(out_channels)`` at the end (MeshGraphNet does, except in decoders).
    activation : str
        ``"silu"``, ``"relu"`` or ``"gelu"``.

    Shapes
    ------
    x : (..., in_channels) -> (..., out_channels)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int = 128,
        n_layers: int = 2,
        layer_norm: bool = True,
        activation: str = "silu",
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"MLP: n_layers must be >= 1, got {n_layers}")
        acts = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU}
        if activation not in acts:
            raise ValueError(f"MLP: activation '{activation}' is not one of {sorted(acts)}")
        sizes = [in_channels] + [hidden] * (n_layers - 1) + [out_channels]
        layers: list[nn.Module] = []
        for i in range(n_layers):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < n_layers - 1:
                layers.append(acts[activation]())
        if layer_norm:
            layers.append(nn.LayerNorm(out_channels))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
