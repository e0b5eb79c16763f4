"""GINO-style operator: input mesh -> latent grid (GNO) -> grid convolutions -> query points (GNO).

Each sample of a batch is scaled to the unit box (per axis; an axis with no extent is flat and
gets a single grid plane), a regular latent grid of ``grid`` points per axis is laid over it, and
kernel integrals over radius neighborhoods carry features from the mesh to the grid and back.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from meshops import ops
from meshops.models import register
from meshops.models._common import batch_vector, node_features
from meshops.nn.gno import GNOKernelIntegral, radius_pairs
from meshops.nn.mlp import MLP

__all__ = ["GINO", "unit_box"]


def unit_box(pos: torch.Tensor, batch: torch.Tensor, n_graphs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions scaled per sample and per axis to [0, 1]; also which axes are flat (no extent).

    Shapes
    ------
    pos : (N, 3); batch : (N,) -> ((N, 3), (3,) bool)
    """
    lo = ops.scatter(pos, batch, dim_size=n_graphs, reduce="min")
    hi = ops.scatter(pos, batch, dim_size=n_graphs, reduce="max")
    ext = hi - lo
    scale = ext.max(dim=0).values
    flat = scale <= 1e-9 * scale.max().clamp_min(1e-30)
    ext = torch.where(flat[None, :], torch.ones_like(ext), ext.clamp_min(1e-12))
    out = (pos - lo[batch]) / ext[batch]
    out = torch.where(flat[None, :], torch.zeros_like(out), out)
    return out, flat


class _ConvBlock(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.c1 = nn.Conv3d(hidden, hidden, 3, padding=1)
        self.c2 = nn.Conv3d(hidden, hidden, 3, padding=1)
        self.act = nn.GELU()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.c2(self.act(self.c1(self.act(h))))


@register("gino")
class GINO(nn.Module):
    """Geometry-informed neural operator (GNO in, grid processor, GNO out), predicting at the nodes.

    Parameters
    ----------
    in_channels, out_channels, global_channels : int
        Node inputs, outputs and global parameters per sample.
    hidden : int
        Latent size.
    grid : int
        Latent grid points per non-flat axis.
    radius : float
        Kernel radius in grid spacings (in the unit box).
    latent_blocks : int
        Residual 3x3x3 convolution blocks on the latent grid.
    kernel : str
        GNO kernel, ``"linear"`` or ``"nonlinear"``.

    Shapes
    ------
    data.pos : (N, 3); data.x : (N, in_channels) -> (N, out_channels)
    """

    partition_unsupported = "its latent grid integrates over every input node in a per-sample unit box (global, not a finite halo)"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        global_channels: int = 0,
        edge_channels: int = 4,
        hidden: int = 32,
        grid: int = 8,
        radius: float = 1.5,
        latent_blocks: int = 2,
        kernel: str = "linear",
        max_neighbors: int = 64,
    ) -> None:
        super().__init__()
        if grid < 2:
            raise ValueError(f"GINO: grid must be >= 2, got {grid}")
        self.in_channels, self.global_channels = in_channels, global_channels
        self.grid, self.radius, self.max_neighbors = grid, radius, max_neighbors
        self.lift = MLP(in_channels + global_channels + 3, hidden, hidden, layer_norm=False)
        self.gno_in = GNOKernelIntegral(hidden, hidden, 3, hidden, kernel)
        self.grid_lift = nn.Linear(hidden + 3, hidden)
        self.latent = nn.Sequential(*[_ConvBlock(hidden) for _ in range(latent_blocks)])
        self.gno_out = GNOKernelIntegral(hidden, hidden, 3, hidden, kernel)
        self.decoder = MLP(2 * hidden, out_channels, hidden, layer_norm=False)

    def forward(self, data: Any) -> torch.Tensor:
        x = node_features(data, self.in_channels, self.global_channels)
        pos = data.pos.to(x.dtype)
        batch = batch_vector(data, pos.device)
        n_graphs = int(getattr(data, "num_graphs", 1) or 1)
        p, flat = unit_box(pos, batch, n_graphs)
        sizes = [1 if bool(f) else self.grid for f in flat]
        axes = [torch.linspace(0, 1, s, device=pos.device, dtype=pos.dtype) if s > 1
                else torch.zeros(1, device=pos.device, dtype=pos.dtype) for s in sizes]
        g = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)  # (P, 3)
        n_p = g.shape[0]
        gpos = g.repeat(n_graphs, 1)
        gbatch = torch.arange(n_graphs, device=pos.device).repeat_interleave(n_p)
        r = self.radius / (self.grid - 1)

        h = self.lift(torch.cat([x, p], dim=-1))
        pairs_in = radius_pairs(p, gpos, r, batch, gbatch, self.max_neighbors)
        hg = self.gno_in(p, h, gpos, pairs_in)
        hg = self.grid_lift(torch.cat([hg, gpos], dim=-1))
        hg = hg.reshape(n_graphs, *sizes, -1).permute(0, 4, 1, 2, 3)
        hg = self.latent(hg)
        hg = hg.permute(0, 2, 3, 4, 1).reshape(n_graphs * n_p, -1)
        pairs_out = radius_pairs(gpos, p, r, gbatch, batch, self.max_neighbors)
        ho = self.gno_out(gpos, hg, p, pairs_out)
        return self.decoder(torch.cat([ho, h], dim=-1))
