"""BENO: the boundary-embedded neural operator for elliptic PDEs with boundary data.

Registered as ``beno``. See :mod:`meshops.nn.beno` for the layers and the idea (a Green's-function
split into an interior branch that sees the source and a boundary branch that sees the boundary
values, both conditioned at every layer by a Transformer embedding of the boundary; outputs summed),
with Green's function potentials of the source and boundary values as node inputs
(:mod:`meshops.nn.potentials`) and, optionally, the exact zero-mean constraint of pure Neumann
problems.

Which input channels are which is part of the config, so the model works with any ``x`` layout,
in particular the one :class:`meshops.data.graphs.Pipeline` makes (normalized input fields, then
normalized positions, then a 0/1 boundary flag as the last channel).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from meshops import ops
from meshops.models import register
from meshops.models._common import batch_vector, graph_levels, node_features
from meshops.nn.beno import BENOBranch, boundary_features
from meshops.nn.potentials import layer_potentials, newtonian_potential, node_geometry

__all__ = ["BENO"]

# the potentials of O(1) data on unit-size domains are O(0.01) (N) and O(0.1) (S, D): scaled
# towards O(1) node inputs (the defaults of ``newton_scale`` and ``single_scale``; the elliptic benchmark
# searches both on validation)
NEWTON_SCALE = 40.0
SINGLE_SCALE = 4.0


def _channels(name: str, idx: Sequence[int], n: int) -> list[int]:
    out = []
    for i in idx:
        j = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= j < n:
            raise ValueError(f"BENO: {name} channel {i} is out of range for {n} input channels")
        out.append(j)
    return out


@register("beno")
class BENO(nn.Module):
    """Boundary-embedded neural operator (interior branch + boundary branch, summed).

    Parameters
    ----------
    in_channels, out_channels : int
        Node input and output channels.
    source_channels : list of int
        Columns of ``x`` with the source term (``f``): given to the interior branch only.
    boundary_value_channels : list of int
        Columns with the boundary values (``g``): given to the boundary branch only (and to its
        boundary tokens and nearest-boundary features).
    boundary_channel : int
        Column holding a 0/1 boundary-node flag (default: the last one, as the Pipeline makes it).
        The remaining columns (coefficient, boundary-type one-hot, positions) go to both branches.
    global_channels, edge_channels : int
        Global parameters per sample (``data.u``) and ``edge_attr`` size.
    hidden, latent : int
        Message-passing width and boundary latent width.
    n_blocks : int
        Conditioned message-passing rounds per branch (flat processor, ``levels == 1``).
    levels, blocks_per_level : int
        ``levels > 1``: each branch runs a U-shaped pass over that many hierarchy levels of the
        graph (``meshops.graph.build`` with ``levels >= levels``), ``blocks_per_level``
        conditioned blocks per level on the way down and again on the way up.
    heads, transformer_layers : int
        Boundary Transformer encoder size.
    global_pool : bool
        Also condition each branch on the per-graph mean of its encoded node inputs.
    potentials : bool
        Green's function features (:mod:`meshops.nn.potentials`, weights and normals estimated
        from the graph): the interior branch gets the Newtonian potentials ``N[f]`` of its source
        channels and ``N[1]``, the boundary branch the single- and double-layer potentials
        ``S[g], D[g]`` of its boundary values (boundary nodes only) and ``S[1], D[1]`` (Green's
        representation ``u = N[f] + S[du/dn] - D[u]``: for a Neumann problem ``N[f] + S[g]`` is
        known, the network learns the rest).
    anchor_channels : list of int or None
        Columns that flag nodes where the solution is pinned (Dirichlet, Robin), e.g. those of a
        boundary-type one-hot. A graph where all of them are constant has none of these nodes (a
        pure Neumann problem, solvable up to a constant): its output gets its volume-weighted mean
        (weights from the graph) replaced by a learned constant, as the zero-mean target requires.
    newton_scale : float
        Factor on the Newtonian potentials before they enter the interior branch (``N[f]`` of O(1)
        data on a unit-size domain is O(0.01)).
    single_scale : float
        Factor on the single-layer potentials ``S[g], S[1]`` before they enter the boundary branch
        (O(0.1) on unit-size domains; the double layer ``D`` is O(1) and enters as it is).

    Shapes
    ------
    data.x : (N, in_channels); data.pos : (N, 3); data.edge_index : (2, E);
    data.edge_attr : (E, edge_channels); data.batch : (N,) (optional)
    returns : (N, out_channels)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        source_channels: Sequence[int] = (0,),
        boundary_value_channels: Sequence[int] = (1,),
        boundary_channel: int = -1,
        global_channels: int = 0,
        edge_channels: int = 4,
        hidden: int = 64,
        latent: int = 64,
        n_blocks: int = 6,
        heads: int = 4,
        transformer_layers: int = 2,
        aggregate: str = "mean",
        mlp_layers: int = 2,
        levels: int = 1,
        blocks_per_level: int = 2,
        global_pool: bool = False,
        potentials: bool = True,
        anchor_channels: Sequence[int] | None = None,
        newton_scale: float = NEWTON_SCALE,
        single_scale: float = SINGLE_SCALE,
    ) -> None:
        super().__init__()
        for nm, v in (("newton_scale", newton_scale), ("single_scale", single_scale)):
            if not v > 0:
                raise ValueError(f"BENO: {nm} must be > 0, got {v}")
        self.newton_scale, self.single_scale = float(newton_scale), float(single_scale)
        self.in_channels, self.global_channels = in_channels, global_channels
        self.src = _channels("source", source_channels, in_channels)
        self.bval = _channels("boundary value", boundary_value_channels, in_channels)
        self.bflag = _channels("boundary flag", [boundary_channel], in_channels)[0]
        overlap = set(self.src) & set(self.bval) | ({self.bflag} & (set(self.src) | set(self.bval)))
        if overlap:
            raise ValueError(f"BENO: channels {sorted(overlap)} are given more than one role")
        self.shared = [i for i in range(in_channels) if i not in set(self.src) | set(self.bval)]
        nb, ns, nsh = len(self.bval), len(self.src), len(self.shared) + global_channels
        geo = 4  # distance and offset to the nearest boundary node
        # tokens: position (3) + shared channels (boundary type, coefficient, ...) [+ boundary values]
        if levels < 1:
            raise ValueError(f"BENO: levels must be >= 1, got {levels}")
        self.levels = levels
        self.potentials = potentials
        self.anchor = None if anchor_channels is None else _channels("anchor", anchor_channels, in_channels)
        npf = ns + 1 if potentials else 0  # N[f], N[1]
        npg = 2 * (nb + 1) if potentials else 0  # S[g], S[1], D[g], D[1]
        self.interior = BENOBranch(ns + nsh + geo + npf, edge_channels, 3 + nsh, out_channels, hidden, latent,
                                   n_blocks, heads, transformer_layers, aggregate, mlp_layers, levels,
                                   blocks_per_level, global_pool)
        self.boundary = BENOBranch(nb + nsh + geo + 2 * nb + npg, edge_channels, 3 + nsh + nb, out_channels,
                                   hidden, latent, n_blocks, heads, transformer_layers, aggregate, mlp_layers,
                                   levels, blocks_per_level, global_pool)
        self.offset = nn.Parameter(torch.zeros(out_channels)) if self.anchor is not None else None

    def forward(self, data: Any) -> torch.Tensor:
        x = node_features(data, self.in_channels, self.global_channels)
        n = x.shape[0]
        pos = data.pos.to(x.dtype)
        batch = batch_vector(data, x.device)
        n_graphs = int(batch.max()) + 1 if n else 1
        is_b = x[:, self.bflag] > 0.5
        if not bool(is_b.any()):
            raise ValueError("BENO: the graph has no boundary nodes (boundary flag channel "
                             f"{self.bflag} is 0 everywhere); BENO needs the domain boundary")
        shared = torch.cat([x[:, self.shared], x[:, self.in_channels:]], dim=-1)
        src, bval = x[:, self.src], x[:, self.bval]
        geo_val = boundary_features(pos, batch, is_b, bval, n_graphs)  # (N, 4 + 2 nb)
        geo = geo_val[:, :4]
        levels = graph_levels(data, self.levels)
        tb = batch[is_b]
        tok_shared = torch.cat([pos[is_b], shared[is_b]], dim=-1)
        in_f, in_g = [src, shared, geo], [bval, shared, geo_val]
        volume = None
        if self.potentials or self.anchor is not None:
            volume, bweight, normal = node_geometry(pos, data.edge_index, is_b, batch, n_graphs)
        if self.potentials:
            one = torch.ones_like(x[:, :1])
            pf = self.newton_scale * newtonian_potential(pos, batch, n_graphs, volume, torch.cat([src, one], -1))
            s_g, d_g = layer_potentials(pos, batch, n_graphs, is_b, bweight, normal, torch.cat([bval, one], -1))
            pg = torch.cat([self.single_scale * s_g, d_g], -1)
            in_f.append(pf)
            in_g.append(pg)
        u_f = self.interior(torch.cat(in_f, -1), levels, tok_shared, tb, batch, n_graphs)
        u_g = self.boundary(torch.cat(in_g, -1), levels, torch.cat([tok_shared, bval[is_b]], -1), tb, batch,
                            n_graphs)
        out = u_f + u_g
        if self.anchor is not None:
            out = self._pin_neumann(out, x, is_b, batch, n_graphs, volume)
        return out

    def _pin_neumann(self, out: torch.Tensor, x: torch.Tensor, is_b: torch.Tensor, batch: torch.Tensor,
                     n_graphs: int, volume: torch.Tensor) -> torch.Tensor:
        """Replace the volume-weighted mean of each pure Neumann graph's output by ``self.offset``."""
        a = x[:, self.anchor]
        spread = (ops.scatter(a, batch, dim_size=n_graphs, reduce="max")
                  - ops.scatter(a, batch, dim_size=n_graphs, reduce="min")).amax(-1)
        has_interior = ops.scatter((~is_b).to(x.dtype)[:, None], batch, dim_size=n_graphs, reduce="max")[:, 0]
        free = (spread <= 1e-6) & (has_interior > 0)  # (B,) graphs without pinned nodes
        w = volume[:, None]
        mean = (ops.scatter(out * w, batch, dim_size=n_graphs, reduce="sum")
                / ops.scatter(w, batch, dim_size=n_graphs, reduce="sum"))
        shift = torch.where(free[:, None], mean - self.offset, torch.zeros_like(mean))
        return out - ops.gather(shift, batch)
