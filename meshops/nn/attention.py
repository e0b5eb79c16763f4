"""Physics attention (Transolver): nodes softly assigned to learned slices whose tokens attend to each other.

Transolver ("Transolver: A Fast Transformer Solver for PDEs on General Geometries", Wu et al. 2024)
replaces attention between N mesh nodes by attention between M << N *slice tokens*:

1. each node ``i`` gets slice weights ``w_i = softmax_m(Linear(x_i) / tau)`` per head (``tau`` learned);
2. the token of slice ``m`` in graph ``b`` is the weighted mean of the node features of that graph,
   ``z_bm = sum_{i in b} w_im x_i / sum_{i in b} w_im`` (a batched matrix product over zero-padded
   per-graph blocks, so graphs of different sizes share one call);
3. the M tokens of each graph attend to each other (multi-head scaled dot-product attention);
4. each node gets back ``sum_m w_im z'_bm`` (deslicing), then an output projection.

Cost is O(N M C + B M^2 C). Every per-node step is per node and the reductions are sums over the
nodes of one graph, so the block is permutation equivariant and handles batches of graphs of
different sizes through ``batch`` (no padding).

Public API (also used by other benchmarks as a Transolver baseline):

* :class:`PhysicsAttention` -- the slice attention, ``(x, batch) -> (N, C)``;
* :class:`TransolverBlock` -- pre-norm ``x + PA(LN x)``, ``x + MLP(LN x)``;
* :class:`Transolver` -- lift MLP, ``n_layers`` blocks, output MLP, on plain tensors
  (the registered model ``transolver`` in :mod:`meshops.models.transolver` wraps it for graphs).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from meshops.nn.mlp import MLP

__all__ = ["PhysicsAttention", "Transolver", "TransolverBlock", "dense_slots", "slice_weights"]


def _batch_vector(x: torch.Tensor, batch: torch.Tensor | None, num_graphs: int | None) -> tuple[torch.Tensor, int]:
    if batch is None:
        return torch.zeros(x.shape[0], dtype=torch.long, device=x.device), 1 if num_graphs is None else num_graphs
    if batch.dim() != 1 or batch.shape[0] != x.shape[0]:
        raise ValueError(f"batch must have shape ({x.shape[0]},) (one graph id per node), got {tuple(batch.shape)}")
    b = int(batch.max()) + 1 if batch.numel() else 0
    return batch, b if num_graphs is None else int(num_graphs)


def dense_slots(batch: torch.Tensor, num_graphs: int) -> tuple[torch.Tensor, int]:
    """Position of every node within its graph (stable: in node order), and the largest graph size.

    Lets per-graph work run on a padded ``(num_graphs, n_max, ...)`` block: ``dense[batch, slot] = x``.

    Shapes
    ------
    batch : (N,) int64 (sorted or not) -> ((N,) int64, int)
    """
    N = batch.shape[0]
    if N == 0:
        return batch.new_zeros(0), 0
    order = torch.argsort(batch, stable=True)
    counts = torch.bincount(batch, minlength=num_graphs)
    ptr = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(batch)
    slot[order] = torch.arange(N, device=batch.device) - ptr[batch[order]]
    return slot, int(counts.max())


def slice_weights(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Soft slice assignment ``softmax(logits / temperature)`` over the last dim.

    Shapes
    ------
    logits : (N, H, M); temperature : (H, 1) or scalar -> (N, H, M), rows sum to 1
    """
    return torch.softmax(logits / temperature.clamp_min(1e-2), dim=-1)


class PhysicsAttention(nn.Module):
    """Transolver's physics attention on node features of a batch of graphs.

    Parameters
    ----------
    channels : int
        Node feature size ``C`` (in = out).
    heads : int
        Attention heads; ``C`` must be divisible by ``heads``.
    slices : int
        Slice tokens ``M`` per head.
    dropout : float
        Dropout on the token attention weights (training only).

    Shapes
    ------
    x : (N, C); batch : (N,) int64 graph id per node (``None``: one graph) -> (N, C)

    Notes
    -----
    :meth:`forward` with ``return_slices=True`` also returns the slice weights ``(N, heads, slices)``.
    """

    def __init__(self, channels: int, heads: int = 4, slices: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"PhysicsAttention: channels ({channels}) must be divisible by heads ({heads})")
        if slices < 1:
            raise ValueError(f"PhysicsAttention: slices must be >= 1, got {slices}")
        self.channels, self.heads, self.slices, self.dim_head = channels, heads, slices, channels // heads
        self.dropout = dropout
        self.in_x = nn.Linear(channels, channels)
        self.in_w = nn.Linear(channels, channels)
        self.slice_proj = nn.Linear(self.dim_head, slices)
        nn.init.orthogonal_(self.slice_proj.weight)
        self.temperature = nn.Parameter(torch.full((heads, 1), 0.5))
        self.q = nn.Linear(self.dim_head, self.dim_head, bias=False)
        self.k = nn.Linear(self.dim_head, self.dim_head, bias=False)
        self.v = nn.Linear(self.dim_head, self.dim_head, bias=False)
        self.out = nn.Linear(channels, channels)

    def forward(
        self,
        x: torch.Tensor,
        batch: torch.Tensor | None = None,
        num_graphs: int | None = None,
        return_slices: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 2 or x.shape[1] != self.channels:
            raise ValueError(f"PhysicsAttention: x must have shape (N, {self.channels}), got {tuple(x.shape)}")
        batch, B = _batch_vector(x, batch, num_graphs)
        N, H, M, D = x.shape[0], self.heads, self.slices, self.dim_head
        fx = self.in_x(x).view(N, H, D)
        w = slice_weights(self.slice_proj(self.in_w(x).view(N, H, D)), self.temperature)  # (N, H, M)
        # per-graph work on padded blocks (padding rows have zero weight): one batched matmul each way
        slot, nmax = dense_slots(batch, B)
        wd = w.new_zeros(B, nmax, H, M)
        wd[batch, slot] = w
        fd = fx.new_zeros(B, nmax, H, D)
        fd[batch, slot] = fx
        wt = wd.permute(0, 2, 3, 1)  # (B, H, M, n)
        # slice tokens: weighted mean of the node features of each graph
        z = torch.matmul(wt, fd.permute(0, 2, 1, 3)) / (wt.sum(-1, keepdim=True) + 1e-5)  # (B, H, M, D)
        # attention among the tokens of each graph
        q, k, v = self.q(z), self.k(z), self.v(z)
        att = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)  # (B, H, M, D)
        # deslice: each node takes back the weighted sum of its graph's tokens
        back = torch.matmul(wd.permute(0, 2, 1, 3), att)  # (B, H, n, D)
        out = back.permute(0, 2, 1, 3)[batch, slot].reshape(N, H * D)
        out = self.out(out)
        return (out, w) if return_slices else out


class TransolverBlock(nn.Module):
    """``x + PA(LN x)`` then ``x + MLP(LN x)`` (pre-norm transformer block with physics attention).

    Shapes
    ------
    x : (N, C); batch : (N,) -> (N, C)
    """

    def __init__(self, channels: int, heads: int = 4, slices: int = 32, mlp_ratio: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(channels)
        self.attn = PhysicsAttention(channels, heads, slices, dropout)
        self.ln2 = nn.LayerNorm(channels)
        self.mlp = MLP(channels, channels, channels * mlp_ratio, 2, layer_norm=False, activation="gelu")

    def forward(self, x: torch.Tensor, batch: torch.Tensor | None = None, num_graphs: int | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), batch, num_graphs)
        return x + self.mlp(self.ln2(x))


class Transolver(nn.Module):
    """Transolver on node features: lift MLP -> ``n_layers`` :class:`TransolverBlock` -> output MLP.

    Parameters
    ----------
    in_channels, out_channels : int
    hidden : int
        Width (divisible by ``heads``).
    n_layers, heads, slices, mlp_ratio, dropout : see :class:`TransolverBlock`.

    Shapes
    ------
    x : (N, in_channels); batch : (N,) -> (N, out_channels)
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 64, n_layers: int = 4, heads: int = 4,
                 slices: int = 32, mlp_ratio: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.lift = MLP(in_channels, hidden, hidden, 2, layer_norm=False, activation="gelu")
        self.blocks = nn.ModuleList(TransolverBlock(hidden, heads, slices, mlp_ratio, dropout) for _ in range(n_layers))
        self.ln = nn.LayerNorm(hidden)
        self.head = MLP(hidden, out_channels, hidden, 2, layer_norm=False, activation="gelu")

    def forward(self, x: torch.Tensor, batch: torch.Tensor | None = None, num_graphs: int | None = None) -> torch.Tensor:
        h = self.lift(x)
        for blk in self.blocks:
            h = blk(h, batch, num_graphs)
        return self.head(self.ln(h))
