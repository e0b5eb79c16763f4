"""A transformer encoder over the points of a (batched) vessel centerline.

Each case contributes a variable number of centerline points with per-point features (radius,
curvature, arc length, branch id, frame-relative curvature vector, ...) and one *global token*
made from the case's global parameters (the inlet flow rate). Points of one case attend to each
other and to the global token; cases never see each other (a padded batch with a key mask).

Geometry enters the attention as a learned additive bias per head from the Euclidean distance
between two centerline points (expanded on Gaussian radial features), so the encoder is invariant
to rotations and translations of the vessel as long as the point features are (they are in
:func:`meshops.models.coronary.centerline_inputs`). The bias lets side branches know where they
sit relative to the main vessel beyond what arc length says.

This module knows nothing about files; it imports torch only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["CenterlineEncoder", "dense_index"]


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.GELU(), nn.Linear(h, o))


def dense_index(batch: Tensor, num_cases: int) -> tuple[Tensor, Tensor, int]:
    """Position of every row inside its case, for packing rows into a padded ``(B, L)`` layout.

    Parameters
    ----------
    batch : sorted case id of every row.
    num_cases : number of cases ``B``.

    Returns
    -------
    slot : (M,) int64, the index of the row within its case.
    counts : (B,) int64, rows per case.
    width : the largest count ``L``.

    Shapes
    ------
    batch (M,) int -> slot (M,), counts (B,), width int
    """
    counts = torch.bincount(batch, minlength=num_cases)
    ptr = torch.zeros(num_cases + 1, dtype=torch.long, device=batch.device)
    ptr[1:] = torch.cumsum(counts, 0)
    slot = torch.arange(batch.shape[0], device=batch.device) - ptr[batch]
    width = int(counts.max()) if num_cases else 0
    return slot, counts, width


class _Block(nn.Module):
    """Pre-norm transformer block with an additive attention bias."""

    def __init__(self, d: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = _mlp(d, int(d * mlp_ratio), d)
        self.dropout = dropout

    def forward(self, h: Tensor, bias: Tensor) -> Tensor:
        b, length, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0)
        h = h + self.proj(a.transpose(1, 2).reshape(b, length, d))
        return h + self.mlp(self.norm2(h))


class CenterlineEncoder(nn.Module):
    """Transformer over centerline points plus one global token per case.

    Parameters
    ----------
    in_features : number of per-point features.
    n_globals : number of global parameters per case (the inlet flow rate and any others).
    d_model : token width.
    n_heads : attention heads (``d_model`` must be divisible by it).
    n_layers : transformer blocks.
    mlp_ratio : hidden width of the block MLPs relative to ``d_model``.
    n_dist : number of Gaussian radial features of the pairwise distance.
    dist_max : distances (in the units of ``pos``) beyond which the radial features saturate.
    dropout : attention dropout.

    Shapes
    ------
    feat (M, in_features), pos (M, 3), batch (M,) int64 sorted, globals (B, n_globals)
    -> tokens (M, d_model), global_tokens (B, d_model)
    """

    def __init__(
        self,
        in_features: int,
        n_globals: int = 1,
        d_model: int = 128,
        n_heads: int = 4,
        n_layers: int = 4,
        mlp_ratio: float = 2.0,
        n_dist: int = 16,
        dist_max: float = 64.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"CenterlineEncoder: d_model={d_model} is not divisible by n_heads={n_heads}")
        if in_features < 1 or n_globals < 0:
            raise ValueError(f"CenterlineEncoder: in_features={in_features} must be >= 1, n_globals={n_globals} >= 0")
        self.in_features, self.n_globals, self.n_heads, self.n_layers = in_features, n_globals, n_heads, n_layers
        self.embed = _mlp(in_features, d_model, d_model)
        self.global_embed = _mlp(max(n_globals, 1), d_model, d_model)
        self.register_buffer("dist_mu", torch.linspace(0.0, dist_max, n_dist), persistent=False)
        self.dist_width = dist_max / max(n_dist - 1, 1)
        # per layer and head: a bias from the distance, and the bias of the global token's row/column
        self.dist_bias = nn.Linear(n_dist, n_layers * n_heads)
        self.global_bias = nn.Parameter(torch.zeros(n_layers, n_heads))
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, mlp_ratio, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, feat: Tensor, pos: Tensor, batch: Tensor, globals: Tensor) -> tuple[Tensor, Tensor]:
        if feat.dim() != 2 or feat.shape[1] != self.in_features:
            raise ValueError(f"CenterlineEncoder: feat has shape {tuple(feat.shape)}, expected (M, {self.in_features})")
        if pos.shape != (feat.shape[0], 3) or batch.shape != (feat.shape[0],):
            raise ValueError(
                f"CenterlineEncoder: pos {tuple(pos.shape)} / batch {tuple(batch.shape)} do not match {feat.shape[0]} points"
            )
        num_cases = globals.shape[0]
        if globals.dim() != 2 or globals.shape[1] != self.n_globals:
            raise ValueError(f"CenterlineEncoder: globals has shape {tuple(globals.shape)}, expected (B, {self.n_globals})")
        slot, counts, width = dense_index(batch, num_cases)
        d = self.embed[0].out_features
        length = width + 1  # slot 0 is the global token
        h = feat.new_zeros(num_cases, length, d)
        g = globals if self.n_globals else globals.new_zeros(num_cases, 1)
        h[:, 0] = self.global_embed(g)
        h = h.index_put((batch, slot + 1), self.embed(feat))
        dense_pos = pos.new_zeros(num_cases, width, 3).index_put((batch, slot), pos)
        valid = torch.arange(width, device=feat.device)[None, :] < counts[:, None]  # (B, L-1)
        # pairwise distance features -> (B, layers*heads, L-1, L-1)
        dist = torch.cdist(dense_pos, dense_pos)
        rbf = torch.exp(-0.5 * ((dist[..., None] - self.dist_mu) / self.dist_width) ** 2)
        pair = self.dist_bias(rbf).permute(0, 3, 1, 2)
        key_ok = torch.cat([valid.new_ones(num_cases, 1), valid], 1)  # (B, L)
        neg = torch.finfo(h.dtype).min
        for i, blk in enumerate(self.blocks):
            bias = h.new_zeros(num_cases, self.n_heads, length, length)
            bias[:, :, 1:, 1:] = pair[:, i * self.n_heads : (i + 1) * self.n_heads]
            gb = self.global_bias[i].view(1, -1, 1)
            bias[:, :, 0, :] = gb
            bias[:, :, 1:, 0] = gb
            bias = bias.masked_fill(~key_ok[:, None, None, :], neg)
            h = blk(h, bias)
        h = self.norm(h)
        return h[batch, slot + 1], h[:, 0]
