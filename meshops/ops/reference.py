"""Plain-torch reference implementations: always present, always right, slow is fine.

These define the semantics the fast paths are tested against. No validation happens here (the
public functions in :mod:`meshops.ops` validate first). Conventions:

- rows along dim 0, any number of trailing feature dims;
- float16/bfloat16 accumulate in float32 and the result is cast back to the input dtype;
- an output row that receives no entries is 0 for every reduction (also max and min);
- max/min gradients are split evenly between tied maxima (``torch.scatter_reduce`` semantics).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from meshops.ops._check import acc_dtype


def _expand(index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return index.long().view((-1,) + (1,) * (like.dim() - 1)).expand_as(like)


def gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[index]`` along dim 0."""
    return x.index_select(0, index.long())


def scatter(src: torch.Tensor, index: torch.Tensor, dim_size: int, reduce: str = "sum") -> torch.Tensor:
    """``out[i] = reduce(src[e] for e with index[e] == i)``; empty rows are 0."""
    dt = acc_dtype(src.dtype)
    s = src.to(dt)
    out = s.new_zeros((dim_size,) + tuple(src.shape[1:]))
    idx = _expand(index, s)
    if reduce in ("sum", "mean"):
        out = out.scatter_add(0, idx, s)
        if reduce == "mean":
            cnt = torch.zeros(dim_size, dtype=dt, device=src.device)
            cnt = cnt.index_add(0, index.long(), torch.ones(index.numel(), dtype=dt, device=src.device))
            out = out / cnt.clamp(min=1).view((-1,) + (1,) * (src.dim() - 1))
    elif reduce in ("max", "min"):
        out = out.scatter_reduce(0, idx, s, "amax" if reduce == "max" else "amin", include_self=False)
    else:
        raise ValueError(f"unknown reduce {reduce!r}")
    return out.to(src.dtype)


def segment(src: torch.Tensor, ptr: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """Reduce ``src[ptr[s]:ptr[s+1]]`` for every segment ``s``; empty segments are 0."""
    ptr = ptr.long()
    n = ptr.numel() - 1
    lengths = ptr[1:] - ptr[:-1]
    index = torch.repeat_interleave(torch.arange(n, device=src.device), lengths)
    start = int(ptr[0]) if ptr.numel() else 0
    return scatter(src[start : start + index.numel()], index, n, reduce)


def softmax(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Softmax over the rows sharing an index value, separately for every feature column."""
    dt = acc_dtype(src.dtype)
    s = src.to(dt)
    m = scatter(s, index, dim_size, "max").detach()
    e = (s - m.index_select(0, index.long())).exp()
    z = scatter(e, index, dim_size, "sum")
    return (e / z.index_select(0, index.long())).to(src.dtype)


def message(
    x_src: torch.Tensor,
    x_dst: torch.Tensor | None,
    edge_index: torch.Tensor,
    weight: torch.Tensor | None,
    edge_attr: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    edge_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Materialized per-edge messages ``w_e * (cat(x_src[src], x_dst[dst], edge_attr) @ W.T + b)``.

    With ``weight=None`` the message is ``w_e * x_src[src]``. ``x_dst=None`` leaves the
    destination features out of the concatenation.
    """
    src, dst = edge_index[0].long(), edge_index[1].long()
    parts = [x_src.index_select(0, src)]
    if weight is not None:
        if x_dst is not None:
            parts.append(x_dst.index_select(0, dst))
        if edge_attr is not None:
            parts.append(edge_attr)
        h = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        msg = F.linear(h, weight, bias)
    else:
        msg = parts[0]
    if edge_weight is not None:
        msg = msg * edge_weight.view((-1,) + (1,) * (msg.dim() - 1))
    return msg


def gather_scatter(
    x_src: torch.Tensor,
    x_dst: torch.Tensor | None,
    edge_index: torch.Tensor,
    weight: torch.Tensor | None,
    edge_attr: torch.Tensor | None,
    bias: torch.Tensor | None,
    edge_weight: torch.Tensor | None,
    dim_size: int,
    reduce: str = "sum",
) -> torch.Tensor:
    """``out[dst] = reduce(message(e))`` over the edges, with the messages materialized."""
    out_dtype = x_src.dtype
    dt = acc_dtype(out_dtype)

    def up(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.to(dt)

    msg = message(up(x_src), up(x_dst), edge_index, up(weight), up(edge_attr), up(bias), up(edge_weight))
    return scatter(msg, edge_index[1], dim_size, reduce).to(out_dtype)
