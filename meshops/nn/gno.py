"""Graph kernel integral (GNO) between two point sets, the building block of GINO-style operators.

``out(y) = mean_{x in N(y)} k(x, y) * (W f)(x)`` for the "linear" kernel, or
``k(x, y, f(x))`` for the "nonlinear" one, where ``N(y)`` are the source points within a radius
of the query ``y`` (same sample of a batch), and ``k`` is an MLP.
"""

from __future__ import annotations

import torch
from torch import nn

from meshops import ops
from meshops.nn.mlp import MLP

__all__ = ["radius_pairs", "GNOKernelIntegral"]


@torch.no_grad()
def radius_pairs(
    x: torch.Tensor,
    y: torch.Tensor,
    radius: float,
    batch_x: torch.Tensor | None = None,
    batch_y: torch.Tensor | None = None,
    max_neighbors: int | None = None,
    ensure_one: bool = True,
) -> torch.Tensor:
    """Pairs of source points ``x`` within ``radius`` of query points ``y`` (same batch entry).

    Brute force in chunks of queries (memory bounded by ~16M distances per chunk), on the device of
    the inputs. With ``max_neighbors`` only the nearest ones are kept; with ``ensure_one`` a query
    with no source in its ball gets its nearest source, so no query is left empty.

    Shapes
    ------
    x : (Nx, d); y : (Ny, d); batch_x : (Nx,); batch_y : (Ny,)
    returns : (2, M) int64, rows [index into x, index into y], sorted by query
    """
    nx, ny = x.shape[0], y.shape[0]
    if nx == 0 or ny == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=x.device)
    x = x.float()
    y = y.float()
    chunk = max(1, (1 << 24) // max(nx, 1))
    srcs, dsts = [], []
    for start in range(0, ny, chunk):
        yc = y[start : start + chunk]
        d = torch.cdist(yc, x)  # (C, Nx)
        if batch_x is not None and batch_y is not None:
            d = d.masked_fill(batch_y[start : start + chunk, None] != batch_x[None, :], float("inf"))
        within = d <= radius
        if max_neighbors is not None and max_neighbors < nx:
            k = max_neighbors
            vals, idx = torch.topk(d, k, dim=1, largest=False)
            keep = vals <= radius
            if ensure_one:
                keep[:, 0] |= torch.isfinite(vals[:, 0])
            q, j = keep.nonzero(as_tuple=True)
            srcs.append(idx[q, j])
            dsts.append(q + start)
        else:
            if ensure_one:
                empty = ~within.any(dim=1)
                if empty.any():
                    nearest = d.argmin(dim=1)
                    rows = empty.nonzero(as_tuple=True)[0]
                    ok = torch.isfinite(d[rows, nearest[rows]])
                    within[rows[ok], nearest[rows[ok]]] = True
            q, s = within.nonzero(as_tuple=True)
            srcs.append(s)
            dsts.append(q + start)
    return torch.stack([torch.cat(srcs), torch.cat(dsts)]).long()


class GNOKernelIntegral(nn.Module):
    """Kernel integral from source points to query points over given neighbor pairs.

    Parameters
    ----------
    in_channels, out_channels : int
        Source feature and output sizes.
    pos_dim : int
        Coordinate size (3 in meshops).
    hidden : int
        Width of the kernel MLP.
    kernel : str
        ``"linear"``: ``k(x, y) * W f(x)``; ``"nonlinear"``: ``k(x, y, f(x)) * W f(x)``.
    reduce : str
        ``"mean"`` (a quadrature with equal weights) or ``"sum"``.

    Shapes
    ------
    src_pos : (Ns, pos_dim); src_feat : (Ns, in_channels); query_pos : (Nq, pos_dim);
    pairs : (2, M) [source index, query index]  ->  (Nq, out_channels)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pos_dim: int = 3,
        hidden: int = 64,
        kernel: str = "linear",
        reduce: str = "mean",
    ) -> None:
        super().__init__()
        if kernel not in ("linear", "nonlinear"):
            raise ValueError(f"GNOKernelIntegral: kernel must be 'linear' or 'nonlinear', got '{kernel}'")
        self.kernel = kernel
        self.reduce = reduce
        k_in = 3 * pos_dim + (in_channels if kernel == "nonlinear" else 0)
        self.kernel_mlp = MLP(k_in, out_channels, hidden, n_layers=3, layer_norm=False, activation="gelu")
        self.value = nn.Linear(in_channels, out_channels)

    def forward(
        self,
        src_pos: torch.Tensor,
        src_feat: torch.Tensor,
        query_pos: torch.Tensor,
        pairs: torch.Tensor,
    ) -> torch.Tensor:
        s, q = pairs[0], pairs[1]
        ps, pq = ops.gather(src_pos, s), ops.gather(query_pos, q)
        parts = [ps, pq, ps - pq]
        if self.kernel == "nonlinear":
            parts.append(ops.gather(src_feat, s))
        k = self.kernel_mlp(torch.cat(parts, dim=-1))
        msg = k * ops.gather(self.value(src_feat), s)
        return ops.scatter(msg, q, dim_size=query_pos.shape[0], reduce=self.reduce)
