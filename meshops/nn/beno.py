"""Boundary-embedded neural operator layers (BENO, Wang et al., ICLR 2024).

The solution of ``-div(k grad u) = f`` with boundary data ``g`` splits, by linearity and the
Green's function representation, into ``u = u_f + u_g``: the response to the source with zero
boundary data and the response to the boundary data with zero source. BENO mirrors this with two
message-passing branches on the same mesh graph,

* the interior branch sees the source (and the shared inputs) but not the boundary values,
* the boundary branch sees the boundary values but not the source,

each conditioned at every layer on a latent vector that a Transformer encoder computes from the
whole boundary (positions, boundary type and, for the boundary branch, boundary values), and the
two decoded outputs are summed.

Pieces here (tensors only; nothing about files or meshes):

* :func:`pad_by_graph` - ragged per-graph sets to a padded (B, M, C) tensor and mask;
* :class:`BoundaryEncoder` - Transformer over each graph's boundary nodes -> (B, latent);
* :func:`boundary_features` - per node: distance and offset to the nearest boundary node, the
  boundary values there and their inverse-distance-weighted mean (Shepard interpolation);
* :class:`ConditionedBlock` - the pipeline's :class:`~meshops.nn.message_passing.EdgeNodeBlock`
  with FiLM conditioning of the node state by the boundary latent;
* :class:`ConditionedUGraph` - the same blocks in a U-shaped pass over the graph hierarchy
  (restriction / prolongation of :mod:`meshops.nn.ugraph`), for a global receptive field;
* :class:`BENOBranch` - encoder, conditioned processor (flat or U-shaped), decoder.

Works for 2D and 3D graphs alike: positions are (N, 3) with z = 0 in 2D.
"""

from __future__ import annotations

import torch
from torch import nn

from meshops import ops
from meshops.nn.message_passing import EdgeNodeBlock
from meshops.nn.mlp import MLP
from meshops.nn.ugraph import Level, prolong, restrict

__all__ = ["pad_by_graph", "BoundaryEncoder", "boundary_features", "ConditionedBlock", "ConditionedUGraph",
           "BENOBranch", "coarse_batch"]


def pad_by_graph(values: torch.Tensor, batch: torch.Tensor, n_graphs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scatter rows of a ragged batch into a zero-padded dense tensor.

    Rows need not be sorted by graph; the order within a graph is kept.

    Shapes
    ------
    values : (M, C); batch : (M,) int64 in [0, n_graphs)
    returns : dense (n_graphs, M_max, C) and mask (n_graphs, M_max) bool
    """
    counts = torch.bincount(batch, minlength=n_graphs)
    m_max = int(counts.max()) if counts.numel() else 0
    order = torch.argsort(batch, stable=True)
    b_sorted = batch[order]
    ptr = torch.cumsum(counts, 0) - counts
    slot = torch.arange(batch.numel(), device=batch.device) - ptr[b_sorted]
    dense = values.new_zeros((n_graphs, m_max) + tuple(values.shape[1:]))
    mask = torch.zeros(n_graphs, m_max, dtype=torch.bool, device=values.device)
    dense[b_sorted, slot] = values[order]
    mask[b_sorted, slot] = True
    return dense, mask


class BoundaryEncoder(nn.Module):
    """Transformer encoder over the boundary nodes of each graph, pooled to one latent per graph.

    Tokens are embedded by an MLP, passed through ``n_layers`` pre-norm Transformer encoder layers
    (self-attention among the boundary nodes of the same graph only), then mean- and max-pooled
    and mapped to ``latent`` channels.

    Parameters
    ----------
    token_in : int
        Channels per boundary token.
    latent : int
        Model width and output size.
    heads, n_layers : int
        Attention heads and layers.

    Shapes
    ------
    tokens : (M, token_in); batch : (M,) graph of each token -> (n_graphs, latent)
    """

    def __init__(self, token_in: int, latent: int = 64, heads: int = 4, n_layers: int = 2) -> None:
        super().__init__()
        if latent % heads:
            raise ValueError(f"BoundaryEncoder: latent ({latent}) must be divisible by heads ({heads})")
        self.embed = MLP(token_in, latent, latent, 2)
        layer = nn.TransformerEncoderLayer(latent, heads, 2 * latent, dropout=0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.pool = MLP(2 * latent, latent, latent, 2)

    def forward(self, tokens: torch.Tensor, batch: torch.Tensor, n_graphs: int) -> torch.Tensor:
        counts = torch.bincount(batch, minlength=n_graphs)
        if bool((counts == 0).any()):
            g = int(torch.nonzero(counts == 0)[0, 0])
            raise ValueError(f"BoundaryEncoder: graph {g} of the batch has no boundary nodes "
                             "(a domain without boundary cannot carry boundary values)")
        dense, mask = pad_by_graph(self.embed(tokens), batch, n_graphs)
        h = self.encoder(dense, src_key_padding_mask=~mask)
        flat = h[mask]
        b_sorted = torch.sort(batch, stable=True).values
        mean = ops.scatter(flat, b_sorted, dim_size=n_graphs, reduce="mean")
        mx = ops.scatter(flat, b_sorted, dim_size=n_graphs, reduce="max")
        return self.pool(torch.cat([mean, mx], dim=-1))


def boundary_features(
    pos: torch.Tensor,
    batch: torch.Tensor,
    is_boundary: torch.Tensor,
    values: torch.Tensor | None,
    n_graphs: int,
    eps: float = 1e-3,
) -> torch.Tensor:
    """Geometry (and values) of the nearest boundary, per node.

    For each node: the distance to the nearest boundary node of its graph, the offset vector to
    it, and, when ``values`` is given, the boundary values at that node and their Shepard
    (inverse-squared-distance weighted) mean over all boundary nodes of the graph. Boundary nodes
    see themselves (distance 0, their own values).

    Shapes
    ------
    pos : (N, 3); batch : (N,); is_boundary : (N,) bool; values : (N, C) or None
    returns : (N, 4) without values, (N, 4 + 2 C) with values
    """
    n = pos.shape[0]
    node_dense, node_mask = pad_by_graph(pos, batch, n_graphs)
    bnd_pos, bnd_mask = pad_by_graph(pos[is_boundary], batch[is_boundary], n_graphs)
    if bnd_pos.shape[1] == 0:
        raise ValueError("boundary_features: the batch has no boundary nodes")
    d = torch.cdist(node_dense, bnd_pos)  # (B, Nmax, Mmax)
    d = d.masked_fill(~bnd_mask[:, None, :], float("inf"))
    dmin, arg = d.min(dim=-1)  # (B, Nmax)
    nearest = torch.gather(bnd_pos, 1, arg[..., None].expand(-1, -1, 3))
    feats = [dmin[..., None], nearest - node_dense]
    if values is not None:
        bnd_val, _ = pad_by_graph(values[is_boundary], batch[is_boundary], n_graphs)
        c = values.shape[1]
        feats.append(torch.gather(bnd_val, 1, arg[..., None].expand(-1, -1, c)))
        w = 1.0 / (d * d + eps * eps)
        w = w.masked_fill(~bnd_mask[:, None, :], 0.0)
        w = w / w.sum(-1, keepdim=True)
        feats.append(torch.einsum("bnm,bmc->bnc", w, bnd_val))
    dense = torch.cat(feats, dim=-1)
    out = dense[node_mask]
    order = torch.argsort(batch, stable=True)
    res = torch.empty_like(out)
    res[order] = out
    assert res.shape[0] == n
    return res


class ConditionedBlock(nn.Module):
    """FiLM-conditioned message passing: ``x <- EdgeNodeBlock(x * (1 + gamma(z)) + beta(z))``.

    ``z`` is the per-graph boundary latent, broadcast to the graph's nodes; ``gamma`` and
    ``beta`` are linear maps of it (initialised to zero, so the block starts as a plain
    :class:`EdgeNodeBlock`).

    Shapes
    ------
    x : (N, hidden); e : (E, hidden); edge_index : (2, E); z : (B, latent); batch : (N,)
    returns : ((N, hidden), (E, hidden))
    """

    def __init__(self, hidden: int, latent: int, aggregate: str = "mean", mlp_layers: int = 2) -> None:
        super().__init__()
        self.film = nn.Linear(latent, 2 * hidden)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.block = EdgeNodeBlock(hidden, aggregate, mlp_layers)

    def forward(self, x: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor, z: torch.Tensor,
                batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gamma, beta = ops.gather(self.film(z), batch).chunk(2, dim=-1)
        return self.block(x * (1.0 + gamma) + beta, e, edge_index)


def coarse_batch(batch: torch.Tensor, level: Level) -> torch.Tensor:
    """Graph index of each node of a coarse level, from the down map of the finer level.

    Shapes
    ------
    batch : (N_{l-1},) int64; level.down : (2, M) -> (N_l,) int64
    """
    assert level.down is not None
    src, dst = level.down[0], level.down[1]
    return ops.scatter(batch[src].to(torch.float64)[:, None], dst, dim_size=level.num_nodes,
                       reduce="max")[:, 0].round().to(torch.long)


class ConditionedUGraph(nn.Module):
    """U-shaped pass over the hierarchy with boundary-conditioned blocks at every level.

    Down: at each level (restricting from the finer one) ``blocks_per_level`` conditioned blocks;
    up: prolong, merge with the level's skip, ``blocks_per_level`` conditioned blocks. Each level
    has its own edge encoder.

    Shapes
    ------
    h : (N_0, hidden); levels : list of Level; z : (B, latent); batch : (N_0,) -> (N_0, hidden)
    """

    def __init__(self, hidden: int, latent: int, n_levels: int, edge_in: int, blocks_per_level: int = 2,
                 aggregate: str = "mean", mlp_layers: int = 2) -> None:
        super().__init__()
        self.n_levels = n_levels
        self.edge_encoders = nn.ModuleList(MLP(edge_in, hidden, hidden, mlp_layers) for _ in range(n_levels))

        def stack() -> nn.ModuleList:
            return nn.ModuleList(ConditionedBlock(hidden, latent, aggregate, mlp_layers) for _ in range(blocks_per_level))

        self.down = nn.ModuleList(stack() for _ in range(n_levels))
        self.up = nn.ModuleList(stack() for _ in range(n_levels - 1))
        self.merge = nn.ModuleList(MLP(2 * hidden, hidden, hidden, mlp_layers) for _ in range(n_levels - 1))

    def forward(self, h: torch.Tensor, levels: list[Level], z: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        if len(levels) < self.n_levels:
            raise ValueError(f"ConditionedUGraph: the graph has {len(levels)} levels, the model needs {self.n_levels}")
        skips, edges, batches = [], [], []
        b = batch
        for lvl in range(self.n_levels):
            L = levels[lvl]
            if lvl > 0:
                assert L.down is not None
                h = restrict(h, L.down, L.down_w, L.num_nodes)
                b = coarse_batch(b, L)
            e = self.edge_encoders[lvl](L.edge_attr.to(h.dtype))
            for blk in self.down[lvl]:
                h, e = blk(h, e, L.edge_index, z, b)
            skips.append(h)
            edges.append(e)
            batches.append(b)
        for lvl in range(self.n_levels - 2, -1, -1):
            nxt = levels[lvl + 1]
            assert nxt.up is not None
            h_up = prolong(h, nxt.up, nxt.up_w, levels[lvl].num_nodes)
            h = skips[lvl] + self.merge[lvl](torch.cat([skips[lvl], h_up], dim=-1))
            e = edges[lvl]
            for blk in self.up[lvl]:
                h, e = blk(h, e, levels[lvl].edge_index, z, batches[lvl])
        return h


class BENOBranch(nn.Module):
    """One BENO branch: node encoder, boundary Transformer, conditioned processor, decoder.

    Parameters
    ----------
    node_in, edge_in, token_in, out_channels : int
        Node feature, edge feature, boundary token and output sizes.
    hidden, latent : int
        Node/edge latent size and boundary latent size.
    n_blocks : int
        Message-passing rounds of the flat processor (``levels == 1``), each conditioned on the
        boundary latent.
    levels, blocks_per_level : int
        With ``levels > 1`` a :class:`ConditionedUGraph` over that many hierarchy levels replaces
        the flat processor.
    global_pool : bool
        Add an MLP of the per-graph mean of the encoded node inputs to the boundary latent.

    Shapes
    ------
    x : (N, node_in); levels : list of Level (level 0: the graph's edges); tokens : (M, token_in);
    token_batch : (M,); batch : (N,) -> (N, out_channels)
    """

    def __init__(self, node_in: int, edge_in: int, token_in: int, out_channels: int, hidden: int = 64,
                 latent: int = 64, n_blocks: int = 6, heads: int = 4, transformer_layers: int = 2,
                 aggregate: str = "mean", mlp_layers: int = 2, levels: int = 1, blocks_per_level: int = 2,
                 global_pool: bool = False) -> None:
        super().__init__()
        self.node_encoder = MLP(node_in, hidden, hidden, mlp_layers)
        # optional: the mean of the encoded node inputs joins the boundary latent (a global summary
        # of the branch's volume data, e.g. the domain integral of the source)
        self.pool = MLP(hidden, latent, latent, mlp_layers) if global_pool else None
        self.boundary = BoundaryEncoder(token_in, latent, heads, transformer_layers)
        self.levels = levels
        if levels > 1:
            self.processor = ConditionedUGraph(hidden, latent, levels, edge_in, blocks_per_level, aggregate,
                                               mlp_layers)
        else:
            self.edge_encoder = MLP(edge_in, hidden, hidden, mlp_layers)
            self.blocks = nn.ModuleList(ConditionedBlock(hidden, latent, aggregate, mlp_layers)
                                        for _ in range(n_blocks))
        self.decoder = MLP(hidden + latent, out_channels, hidden, mlp_layers, layer_norm=False)

    def forward(self, x: torch.Tensor, levels: list[Level], tokens: torch.Tensor, token_batch: torch.Tensor,
                batch: torch.Tensor, n_graphs: int) -> torch.Tensor:
        z = self.boundary(tokens, token_batch, n_graphs)
        h = self.node_encoder(x)
        if self.pool is not None:
            z = z + self.pool(ops.scatter(h, batch, dim_size=n_graphs, reduce="mean"))
        if self.levels > 1:
            h = self.processor(h, levels, z, batch)
        else:
            L = levels[0]
            e = self.edge_encoder(L.edge_attr.to(x.dtype))
            for blk in self.blocks:
                h, e = blk(h, e, L.edge_index, z, batch)
        return self.decoder(torch.cat([h, ops.gather(z, batch)], dim=-1))
