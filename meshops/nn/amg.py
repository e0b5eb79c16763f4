"""The AMG multi-graph block: local, global (feature) and physics graphs in one graph transformer layer.

After "Harnessing Scale and Physics: A Multi-Graph Neural Operator Framework for PDEs on Arbitrary
Geometries" (KDD 2025). Each layer looks at the nodes through three graphs:

* a **local graph**: the ``k_local`` nearest neighbours by position (or the mesh edges), with
  relative positions as edge features -- short-range physics;
* a **global graph**: the ``k_global`` nearest neighbours by *feature* similarity, rebuilt from the
  current features in every layer -- nodes far apart but in the same physical state talk;
* a **physics graph**: nodes softly assigned to learned slices whose tokens attend to each other
  (:class:`~meshops.nn.attention.PhysicsAttention`) -- global, O(N M) instead of O(N^2).

Local and global graphs are processed by multi-head graph attention (:class:`GraphAttention`,
edge softmax via :func:`meshops.ops.softmax`); the three branches are fused by a linear layer and
followed by an MLP, both as pre-norm residual updates (a "GraphFormer" layer). The neighbour
searches are exact, per graph of the batch (``batch``), on dense per-graph distance blocks, which
suits graphs up to a few thousand nodes; pass ``local_edge_index`` (e.g. the mesh edges) for
larger meshes. The paper's node sampling is not done here: every node takes part.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from meshops import ops
from meshops.nn.attention import PhysicsAttention, dense_slots
from meshops.nn.mlp import MLP

__all__ = ["AMGBlock", "GraphAttention", "knn_dense"]


@torch.no_grad()
def knn_dense(x: torch.Tensor, k: int, batch: torch.Tensor | None = None) -> torch.Tensor:
    """Exact ``k`` nearest neighbours (Euclidean, self excluded) within each graph of a batch.

    A graph with ``n <= k`` nodes links every node to all ``n - 1`` others. Which of several
    neighbours at exactly the same distance is kept is unspecified (``torch.topk``), so the result
    depends on the node order only through exact ties.

    Shapes
    ------
    x : (N, D) float; batch : (N,) int64 (sorted or not) -> (2, E) int64 ``[neighbour, centre]``
    """
    if k < 1:
        raise ValueError(f"knn_dense: k must be >= 1, got {k}")
    N = x.shape[0]
    if N == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=x.device)
    if batch is None:
        batch = torch.zeros(N, dtype=torch.long, device=x.device)
    B = int(batch.max()) + 1
    slot, nmax = dense_slots(batch, B)
    dense = x.new_zeros(B, nmax, x.shape[1], dtype=torch.float32)
    dense[batch, slot] = x.float()
    node = torch.full((B, nmax), -1, dtype=torch.long, device=x.device)
    node[batch, slot] = torch.arange(N, device=x.device)
    valid = node >= 0
    # Exact differences (no matrix-product shortcut) and a stable sort: tied distances (regular
    # grids) resolve by node order, the same whether a graph is alone or padded inside a batch.
    d = torch.cdist(dense, dense, compute_mode="donot_use_mm_for_euclid_dist")  # (B, nmax, nmax)
    d = d.masked_fill(~valid[:, None, :], float("inf"))
    d.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    kk = min(k, max(nmax - 1, 1))
    dist, nb = torch.sort(d, dim=-1, stable=True)
    dist, nb = dist[..., :kk], nb[..., :kk]  # (B, nmax, kk)
    ok = torch.isfinite(dist) & valid[:, :, None]
    src = torch.gather(node, 1, nb.reshape(B, -1)).reshape(nb.shape)[ok]
    dst = node[:, :, None].expand_as(nb)[ok]
    return torch.stack([src, dst])


class GraphAttention(nn.Module):
    """Multi-head dot-product attention over the in-edges of each node (edge softmax).

    ``out_i = sum_{j -> i} softmax_j(q_i . k_ij / sqrt(d)) v_ij`` with ``k_ij = W_k x_j + W_e e_ij`` and
    ``v_ij = W_v x_j + W_f e_ij`` when edge features ``e`` are given. A node without in-edges gets 0.

    Shapes
    ------
    x : (N, C); edge_index : (2, E) ``[src, dst]``; edge_attr : (E, edge_dim) or None -> (N, C)
    """

    def __init__(self, channels: int, heads: int = 4, edge_dim: int = 0) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"GraphAttention: channels ({channels}) must be divisible by heads ({heads})")
        self.heads, self.dim_head, self.edge_dim = heads, channels // heads, edge_dim
        self.q = nn.Linear(channels, channels)
        self.kv = nn.Linear(channels, 2 * channels)
        self.edge = MLP(edge_dim, 2 * channels, channels, 2, layer_norm=False) if edge_dim else None
        self.out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        N, H, D = x.shape[0], self.heads, self.dim_head
        src, dst = edge_index[0], edge_index[1]
        kv = ops.gather(self.kv(x), src)  # (E, 2C)
        if self.edge is not None:
            if edge_attr is None or edge_attr.shape[-1] != self.edge_dim:
                got = None if edge_attr is None else tuple(edge_attr.shape)
                raise ValueError(f"GraphAttention: expected edge_attr (E, {self.edge_dim}), got {got}")
            kv = kv + self.edge(edge_attr.to(x.dtype))
        k, v = kv.view(-1, 2, H, D).unbind(1)
        q = ops.gather(self.q(x).view(N, H, D), dst)
        score = (q * k).sum(-1) / math.sqrt(D)  # (E, H)
        alpha = ops.softmax(score, dst, dim_size=N)
        out = ops.scatter((alpha[:, :, None] * v).reshape(-1, H * D), dst, dim_size=N, reduce="sum")
        return self.out(out)


class AMGBlock(nn.Module):
    """One multi-graph layer: local + global graph attention + physics attention, fused, then an MLP.

    Parameters
    ----------
    channels : int
    heads : int
        Heads of the three attentions.
    k_local, k_global : int
        Neighbours by position and by feature.
    slices : int
        Physics-attention slices.
    mlp_ratio : int
        Hidden size of the MLP over ``channels``.
    branches : tuple of str
        Which of ``"local"``, ``"global"``, ``"physics"`` are used (ablations).

    Shapes
    ------
    x : (N, C); pos : (N, d); batch : (N,) or None; local_edge_index : (2, E) or None -> (N, C)
    """

    def __init__(self, channels: int, heads: int = 4, k_local: int = 8, k_global: int = 8, slices: int = 16,
                 mlp_ratio: int = 2, branches: tuple[str, ...] = ("local", "global", "physics")) -> None:
        super().__init__()
        bad = [b for b in branches if b not in ("local", "global", "physics")]
        if bad or not branches:
            raise ValueError(f"AMGBlock: branches must be a non-empty subset of local/global/physics, got {branches}")
        self.branches, self.k_local, self.k_global = tuple(branches), k_local, k_global
        self.ln1 = nn.LayerNorm(channels)
        self.local = GraphAttention(channels, heads, edge_dim=4) if "local" in branches else None
        self.glob = GraphAttention(channels, heads) if "global" in branches else None
        self.phys = PhysicsAttention(channels, heads, slices) if "physics" in branches else None
        self.fuse = nn.Linear(len(self.branches) * channels, channels)
        self.ln2 = nn.LayerNorm(channels)
        self.mlp = MLP(channels, channels, channels * mlp_ratio, 2, layer_norm=False, activation="gelu")

    @staticmethod
    def relative_positions(pos: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``[(p_dst - p_src) / s, |p_dst - p_src| / s]`` with ``s`` the mean edge length of each centre node.

        Shapes
        ------
        pos : (N, d <= 3); edge_index : (2, E) -> (E, 4)
        """
        p = pos if pos.shape[1] == 3 else torch.cat([pos, pos.new_zeros(pos.shape[0], 3 - pos.shape[1])], 1)
        d = ops.gather(p, edge_index[1]) - ops.gather(p, edge_index[0])
        ln = d.norm(dim=1, keepdim=True)
        s = ops.scatter(ln, edge_index[1], dim_size=pos.shape[0], reduce="mean")
        s = ops.gather(s, edge_index[1]).clamp_min(torch.finfo(pos.dtype).tiny)
        return torch.cat([d, ln], 1) / s

    def forward(self, x: torch.Tensor, pos: torch.Tensor, batch: torch.Tensor | None = None,
                num_graphs: int | None = None, local_edge_index: torch.Tensor | None = None) -> torch.Tensor:
        if pos.shape[0] != x.shape[0]:
            raise ValueError(f"AMGBlock: pos has {pos.shape[0]} rows but x has {x.shape[0]}")
        h = self.ln1(x)
        parts = []
        if self.local is not None:
            ei = local_edge_index if local_edge_index is not None else knn_dense(pos, self.k_local, batch)
            parts.append(self.local(h, ei, self.relative_positions(pos.to(h.dtype), ei)))
        if self.glob is not None:
            parts.append(self.glob(h, knn_dense(h.detach(), self.k_global, batch)))
        if self.phys is not None:
            parts.append(self.phys(h, batch, num_graphs))
        x = x + self.fuse(torch.cat(parts, dim=-1))
        return x + self.mlp(self.ln2(x))
