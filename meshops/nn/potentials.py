"""Free-space Green's function potentials on mesh graphs (tensors only), for boundary embedding.

For ``-Laplace(u) = f`` in a domain with outward normal ``n``, Green's representation formula is

    u(x) = N[f](x) + S[du/dn](x) - D[u](x),

with the free-space Green's function ``G`` (2D: ``-log(r) / (2 pi)``, 3D: ``1 / (4 pi r)``) and

* the Newtonian (volume) potential ``N[f](x) = int_domain G(x - y) f(y) dy``,
* the single-layer potential ``S[q](x) = int_boundary G(x - y) q(y) ds_y``,
* the double-layer potential ``D[q](x) = int_boundary dG(x - y)/dn_y q(y) ds_y``
  (``D[1] = -1`` inside the domain).

Here they are evaluated by nodal quadrature on a (batched) mesh graph: every node carries a volume
weight (its share of the domain's measure), every boundary node a boundary weight (its share of
the boundary's measure) and an outward unit normal. :func:`node_geometry` estimates these from the
graph alone (positions, edges, the boundary flag), so no cell information is needed; exact weights
can be passed instead. The singular self term of ``N`` and ``S`` is the mean of ``G`` over a disk
(ball) or segment (disk) of the node's measure, and the self term of ``D`` is 0 (flat boundary).

Potentials are dense per graph (``O(N^2)`` per graph of ``N`` nodes, computed in row chunks).
"""

from __future__ import annotations

import math

import torch

from meshops import ops
from meshops.nn.beno import pad_by_graph

__all__ = ["spatial_dim", "green", "node_geometry", "newtonian_potential", "layer_potentials"]


def _unpad(dense: torch.Tensor, mask: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """Inverse of ``pad_by_graph`` for rows in the original (possibly unsorted) order."""
    out = dense[mask]
    order = torch.argsort(batch, stable=True)
    res = torch.empty_like(out)
    res[order] = out
    return res


def spatial_dim(pos: torch.Tensor) -> int:
    """2 when every position has the same z (2D meshes store z = 0), else 3.

    Shapes
    ------
    pos : (N, 3)
    """
    if pos.shape[0] == 0:
        return 2
    return 2 if bool(torch.all(pos[:, 2] == pos[0, 2])) else 3


def green(r: torch.Tensor, dim: int) -> torch.Tensor:
    """Free-space Green's function of ``-Laplace``: ``-log(r)/(2 pi)`` (2D), ``1/(4 pi r)`` (3D).

    Shapes
    ------
    r : any shape, r > 0 -> same shape
    """
    if dim == 2:
        return -torch.log(r) / (2.0 * math.pi)
    if dim == 3:
        return 1.0 / (4.0 * math.pi * r)
    raise ValueError(f"green: dim must be 2 or 3, got {dim}")


def _self_volume(a: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of G over a disk (2D) / ball (3D) of measure ``a`` around its centre."""
    a = a.clamp_min(1e-30)
    if dim == 2:
        rho = torch.sqrt(a / math.pi)
        return -(torch.log(rho) - 0.5) / (2.0 * math.pi)
    rho = (3.0 * a / (4.0 * math.pi)) ** (1.0 / 3.0)
    return 3.0 / (8.0 * math.pi * rho)


def _self_boundary(w: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of G over a segment (2D) / disk (3D) of measure ``w`` around its centre."""
    w = w.clamp_min(1e-30)
    if dim == 2:
        return -(torch.log(w / 2.0) - 1.0) / (2.0 * math.pi)
    rho = torch.sqrt(w / math.pi)
    return 1.0 / (2.0 * math.pi * rho)


def node_geometry(pos: torch.Tensor, edge_index: torch.Tensor, is_boundary: torch.Tensor, batch: torch.Tensor,
                  n_graphs: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quadrature weights and normals of a mesh graph, estimated from its edges.

    * volume weight: ``h^2 * sqrt(3)/12`` per incident triangle (2D; a node has ``degree`` incident
      triangles inside, ``degree - 1`` on the boundary) and ``h^3 / (6 sqrt 2) / 4`` per incident
      tetrahedron (3D; ``1.2 degree - 0.6 [boundary]`` of them, fitted on gmsh meshes), ``h`` the
      mean incident edge length;
    * boundary weight (0 at interior nodes): the mean distance to the two nearest other boundary
      nodes of the same graph (2D), ``sqrt(3)/2`` times the square of the mean distance to the six
      nearest (3D);
    * outward normal (0 at interior nodes): the normalised sum of ``x_i - x_j`` over the graph
      neighbours ``j`` of a boundary node ``i``.

    Shapes
    ------
    pos : (N, 3); edge_index : (2, E) both directions of each edge; is_boundary : (N,) bool;
    batch : (N,) int64
    returns : volume (N,), boundary weight (N,), normal (N, 3)
    """
    n = pos.shape[0]
    dim = spatial_dim(pos)
    src, dst = edge_index[0], edge_index[1]
    vec = pos[src] - pos[dst]
    length = vec.norm(dim=-1, keepdim=True)
    h = ops.scatter(length, src, dim_size=n, reduce="mean")[:, 0]
    deg = torch.bincount(src, minlength=n).to(pos.dtype)
    bf = is_boundary.to(pos.dtype)
    if dim == 2:
        volume = (deg - bf).clamp_min(1.0) * h * h * (math.sqrt(3.0) / 12.0)
    else:
        volume = (1.2 * deg - 0.6 * bf).clamp_min(1.0) * h**3 / (24.0 * math.sqrt(2.0))
    normal = ops.scatter(vec, src, dim_size=n, reduce="sum")
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    normal = normal * bf[:, None]
    if dim == 2:
        normal = normal.clone()
        normal[:, 2] = 0.0
    bw = torch.zeros(n, dtype=pos.dtype, device=pos.device)
    if bool(is_boundary.any()):
        bpos, bmask = pad_by_graph(pos[is_boundary], batch[is_boundary], n_graphs)
        d = torch.cdist(bpos, bpos)
        eye = torch.eye(d.shape[1], dtype=torch.bool, device=d.device)
        d = d.masked_fill(~bmask[:, None, :] | eye[None], float("inf"))
        k = 2 if dim == 2 else 6
        k_eff = min(k, max(d.shape[2] - 1, 1))
        near = torch.topk(d, k_eff, dim=-1, largest=False).values
        finite = torch.isfinite(near)
        m = torch.where(finite, near, torch.zeros_like(near)).sum(-1) / finite.sum(-1).clamp_min(1)
        w = m if dim == 2 else m * m * (math.sqrt(3.0) / 2.0)
        bw[is_boundary] = _unpad(w[..., None], bmask, batch[is_boundary])[:, 0]
    return volume, bw, normal


def _kernel_apply(tgt: torch.Tensor, src: torch.Tensor, src_mask: torch.Tensor, dens: torch.Tensor,
                  self_val: torch.Tensor | None, normal: torch.Tensor | None, dim: int,
                  chunk: int = 1024) -> torch.Tensor:
    """``out[b, i] = sum_j K(tgt[b, i], src[b, j]) dens[b, j]`` for G (``normal=None``) or dG/dn_y.

    ``dens`` already includes the quadrature weights; coincident points use ``self_val`` (G) or 0 (dG/dn).
    """
    outs = []
    for s in range(0, tgt.shape[1], chunk):
        t = tgt[:, s : s + chunk]
        diff = t[:, :, None, :] - src[:, None, :, :]  # x - y: (B, n, m, 3)
        r = diff.norm(dim=-1)
        same = r <= 1e-9 * (1.0 + src.abs().amax())
        rs = torch.where(same, torch.ones_like(r), r)
        if normal is None:
            k = green(rs, dim)
            if self_val is not None:
                k = torch.where(same, self_val[:, None, :].expand_as(k), k)
        else:
            dot = (diff * normal[:, None, :, :]).sum(-1)
            k = dot / (2.0 * math.pi * rs * rs) if dim == 2 else dot / (4.0 * math.pi * rs**3)
            k = torch.where(same, torch.zeros_like(k), k)
        k = k.masked_fill(~src_mask[:, None, :], 0.0)
        outs.append(torch.einsum("bnm,bmc->bnc", k, dens))
    return torch.cat(outs, dim=1)


def newtonian_potential(pos: torch.Tensor, batch: torch.Tensor, n_graphs: int, volume: torch.Tensor,
                        density: torch.Tensor) -> torch.Tensor:
    """``N[f](x_i) = sum_j G(x_i - x_j) volume_j f_j`` within each graph.

    Shapes
    ------
    pos : (N, 3); batch : (N,); volume : (N,); density : (N, C) -> (N, C)
    """
    dim = spatial_dim(pos)
    p, mask = pad_by_graph(pos, batch, n_graphs)
    dens, _ = pad_by_graph(density * volume[:, None], batch, n_graphs)
    vol, _ = pad_by_graph(volume, batch, n_graphs)
    out = _kernel_apply(p, p, mask, dens, _self_volume(vol, dim), None, dim)
    return _unpad(out, mask, batch)


def layer_potentials(pos: torch.Tensor, batch: torch.Tensor, n_graphs: int, is_boundary: torch.Tensor,
                     weight: torch.Tensor, normal: torch.Tensor,
                     density: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Single- and double-layer potentials of boundary densities at every node of each graph.

    ``S[q](x_i) = sum_b G(x_i - x_b) w_b q_b`` and ``D[q](x_i) = sum_b dG(x_i - x_b)/dn_b w_b q_b``
    over the boundary nodes ``b`` of node ``i``'s graph.

    Shapes
    ------
    pos : (N, 3); batch : (N,); is_boundary : (N,) bool; weight : (N,) boundary weights;
    normal : (N, 3) outward normals; density : (N, C) (only boundary rows are used)
    returns : S (N, C), D (N, C)
    """
    dim = spatial_dim(pos)
    p, mask = pad_by_graph(pos, batch, n_graphs)
    bb = batch[is_boundary]
    bp, bmask = pad_by_graph(pos[is_boundary], bb, n_graphs)
    dens, _ = pad_by_graph(density[is_boundary] * weight[is_boundary, None], bb, n_graphs)
    bw, _ = pad_by_graph(weight[is_boundary], bb, n_graphs)
    bn, _ = pad_by_graph(normal[is_boundary], bb, n_graphs)
    s = _kernel_apply(p, bp, bmask, dens, _self_boundary(bw, dim), None, dim)
    d = _kernel_apply(p, bp, bmask, dens, None, bn, dim)
    return _unpad(s, mask, batch), _unpad(d, mask, batch)
