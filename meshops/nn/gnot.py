"""GNOT layers: heterogeneous normalized attention and geometry-gated mixture-of-experts FFNs.

After "GNOT: A General Neural Operator Transformer for Operator Learning" (Hao et al., ICML 2023):

* *normalized (linear) attention*: queries and keys are soft-maxed over their feature dimension
  (per head), and ``z_i = q_i (sum_j k_j v_j^T) / (q_i . sum_j k_j)``, linear in the number of
  points; sums run over the points of each graph of a batch (``index_add``), no padding;
* *heterogeneous* cross-attention: every input set (here: the mesh nodes' features and the global
  parameters of a case) has its own key / value projections and the results are averaged;
* *geometric gating*: the feed-forward network is a mixture of experts whose weights are a softmax
  of an MLP of the point's coordinates, so different regions of the geometry can use different
  experts.

Shapes follow the rest of ``meshops.nn``: point features ``(N, C)`` with a ``batch`` vector ``(N,)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["GatedFFN", "GNOTBlock", "normalized_attention"]


def normalized_attention(q: Tensor, k: Tensor, v: Tensor, q_batch: Tensor, k_batch: Tensor, num_graphs: int) -> Tensor:
    """Linear attention with feature-softmaxed queries and keys, summed per graph.

    Shapes
    ------
    q (Nq, H, D), k (Nk, H, D), v (Nk, H, E), q_batch (Nq,), k_batch (Nk,) -> (Nq, H, E)
    """
    q, k = q.softmax(-1), k.softmax(-1)
    h, d, e = q.shape[1], q.shape[2], v.shape[2]
    kv = q.new_zeros(num_graphs, h, d, e).index_add_(0, k_batch, torch.einsum("nhd,nhe->nhde", k, v))
    ks = q.new_zeros(num_graphs, h, d).index_add_(0, k_batch, k)
    num = torch.einsum("nhd,nhde->nhe", q, kv[q_batch])
    den = torch.einsum("nhd,nhd->nh", q, ks[q_batch]).clamp_min(1e-12)
    return num / den[..., None]


class _Attention(nn.Module):
    """Normalized attention from query points to one or more input sets (own K, V per set)."""

    def __init__(self, channels: int, heads: int, n_sets: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"GNOT: channels {channels} must be divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(channels, channels)
        self.kv = nn.ModuleList([nn.Linear(channels, 2 * channels) for _ in range(n_sets)])
        self.out = nn.Linear(channels, channels)

    def forward(self, h: Tensor, batch: Tensor, sets: list[tuple[Tensor, Tensor]], num_graphs: int) -> Tensor:
        n, c = h.shape
        q = self.q(h).view(n, self.heads, c // self.heads)
        acc = torch.zeros_like(q)
        for proj, (x, xb) in zip(self.kv, sets, strict=True):
            k, v = proj(x).view(x.shape[0], 2, self.heads, c // self.heads).unbind(1)
            acc = acc + normalized_attention(q, k, v, batch, xb, num_graphs)
        return self.out((acc / len(sets)).reshape(n, c))


class GatedFFN(nn.Module):
    """Mixture of ``experts`` MLPs weighted by a softmax gate computed from the point coordinates.

    Shapes
    ------
    h (N, C), pos (N, P) -> (N, C)
    """

    def __init__(self, channels: int, pos_channels: int, experts: int = 3, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(pos_channels, channels), nn.GELU(), nn.Linear(channels, experts))
        self.experts = nn.ModuleList([
            nn.Sequential(nn.Linear(channels, mlp_ratio * channels), nn.GELU(), nn.Linear(mlp_ratio * channels, channels))
            for _ in range(experts)
        ])

    def forward(self, h: Tensor, pos: Tensor) -> Tensor:
        w = self.gate(pos).softmax(-1)  # (N, E)
        return torch.stack([f(h) for f in self.experts], -1).mul(w[:, None, :]).sum(-1)


class GNOTBlock(nn.Module):
    """Cross-attention to the input sets, gated FFN, self-attention, gated FFN (pre-norm, residual).

    Shapes
    ------
    h (N, C), pos (N, P), batch (N,), sets: list of ((N_s, C), (N_s,)) -> (N, C)
    """

    def __init__(self, channels: int, pos_channels: int, heads: int = 4, n_sets: int = 2, experts: int = 3,
                 mlp_ratio: int = 2) -> None:
        super().__init__()
        self.cross = _Attention(channels, heads, n_sets)
        self.self_attn = _Attention(channels, heads, 1)
        self.ffn1 = GatedFFN(channels, pos_channels, experts, mlp_ratio)
        self.ffn2 = GatedFFN(channels, pos_channels, experts, mlp_ratio)
        self.norms = nn.ModuleList([nn.LayerNorm(channels) for _ in range(4)])

    def forward(self, h: Tensor, pos: Tensor, batch: Tensor, sets: list[tuple[Tensor, Tensor]], num_graphs: int) -> Tensor:
        n1, n2, n3, n4 = self.norms
        h = h + self.cross(n1(h), batch, sets, num_graphs)
        h = h + self.ffn1(n2(h), pos)
        x = n3(h)
        h = h + self.self_attn(x, batch, [(x, batch)], num_graphs)
        return h + self.ffn2(n4(h), pos)
