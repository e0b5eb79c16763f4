"""Public ops: validation, then dispatch to the fast path (or the reference)."""

from __future__ import annotations

import torch

from meshops.ops import _dispatch
from meshops.ops._check import (
    INDEX_DTYPES,
    check_index_tensor,
    check_ptr,
    check_reduce,
    check_same_device,
    check_src,
    index_bound,
)
from meshops.ops._config import is_deterministic
from meshops.ops.csr import CSR

__all__ = ["gather", "scatter", "segment", "softmax", "gather_scatter"]


def gather(x: torch.Tensor, index: torch.Tensor, *, deterministic: bool | None = None) -> torch.Tensor:
    """Rows of ``x`` picked by ``index``: ``out[e] = x[index[e]]``.

    The backward is a scatter-sum (deterministic on request, see :class:`deterministic`).

    Parameters
    ----------
    x : Tensor
        Node features, any dtype, any trailing dims.
    index : Tensor
        int32/int64 row ids in ``[0, x.size(0))``.
    deterministic : bool, optional
        Override the global switch for the backward.

    Shapes
    ------
    x (N, *F), index (E,) -> (E, *F)
    """
    check_src("gather", "x", x, floating=False)
    check_index_tensor("gather", "index", index)
    det = is_deterministic(deterministic)
    if x.device.type == "cpu" and index.device.type == "cpu":
        # index_select bounds-checks on CPU: name the bad value only when it fails (no extra pass)
        try:
            return _dispatch.gather(x, index, det)
        except (IndexError, RuntimeError):
            index_bound("gather", "index", index, x.size(0))
            raise
    check_same_device("gather", x=x, index=index)
    index_bound("gather", "index", index, x.size(0))
    return _dispatch.gather(x, index, det)


def scatter(
    src: torch.Tensor,
    index: torch.Tensor,
    dim_size: int | None = None,
    reduce: str = "sum",
    *,
    csr: CSR | None = None,
    deterministic: bool | None = None,
) -> torch.Tensor:
    """Reduce the rows of ``src`` that share an index: ``out[i] = reduce(src[e] : index[e] == i)``.

    Rows of ``out`` that receive nothing are 0 for every reduction. float16/bfloat16 accumulate
    in float32. Gradients: sum/mean scatter back by a gather; max/min route to the arg-extremum
    (split evenly between ties, like ``torch.scatter_reduce``).

    Parameters
    ----------
    src : Tensor
        Values, floating dtype (integer dtypes allowed for sum/max/min).
    index : Tensor
        int32/int64 target row of each source row, ``0 <= index < dim_size``.
    dim_size : int, optional
        Output rows (default ``index.max() + 1``, which costs a device sync).
    reduce : {"sum", "mean", "max", "min"}
    csr : CSR, optional
        ``CSR.from_index(index, dim_size)`` computed once; used by the deterministic path instead
        of sorting on every call.
    deterministic : bool, optional
        Force (True) or forbid (False) the sorted-CSR bit-deterministic path.

    Shapes
    ------
    src (E, *F), index (E,) -> (dim_size, *F)
    """
    check_reduce("scatter", reduce)
    check_src("scatter", "src", src, floating=reduce == "mean")
    check_index_tensor("scatter", "index", index, src.size(0))
    if (
        csr is None
        and type(dim_size) is int
        and dim_size >= 0
        and src.device.type == "cpu"
        and index.device.type == "cpu"
        and _dispatch.cpu_atomic_route(src, index, reduce, dim_size)
    ):
        # index_add_ / scatter_reduce_ bounds-check on CPU: name the bad value only when they fail
        try:
            return _dispatch.scatter_cpu_atomic(src, index, dim_size, reduce)
        except (IndexError, RuntimeError):
            index_bound("scatter", "index", index, dim_size)
            raise
    check_same_device("scatter", src=src, index=index)
    n = index_bound("scatter", "index", index, dim_size)
    if csr is not None and (csr.num_rows != n or csr.num_entries != index.numel()):
        raise ValueError(
            f"scatter: csr has {csr.num_rows} rows and {csr.num_entries} entries, but dim_size={n} "
            f"and index has {index.numel()} entries"
        )
    return _dispatch.scatter(src, index, n, reduce, csr, is_deterministic(deterministic))


def segment(src: torch.Tensor, ptr: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """Reduce sorted segments: ``out[s] = reduce(src[ptr[s]:ptr[s+1]])``; empty segments are 0.

    Always deterministic (no atomics on any device).

    Parameters
    ----------
    src : Tensor
        Values sorted by segment, floating dtype.
    ptr : Tensor
        int32/int64 non-decreasing offsets, ``ptr[-1] <= src.size(0)``.
    reduce : {"sum", "mean", "max", "min"}

    Shapes
    ------
    src (E, *F), ptr (S + 1,) -> (S, *F)
    """
    check_reduce("segment", reduce)
    check_src("segment", "src", src)
    check_same_device("segment", src=src, ptr=ptr)
    check_ptr("segment", ptr, src.size(0))
    return _dispatch.segment(src, ptr, reduce)


def softmax(
    src: torch.Tensor,
    index: torch.Tensor,
    dim_size: int | None = None,
    *,
    csr: CSR | None = None,
    deterministic: bool | None = None,
) -> torch.Tensor:
    """Softmax over the rows that share an index value (edge softmax for attention).

    ``out[e] = exp(src[e]) / sum(exp(src[k]) : index[k] == index[e])``, separately for every
    feature column, computed stably (the group max is subtracted first).

    Shapes
    ------
    src (E, *F), index (E,) -> (E, *F)
    """
    check_src("softmax", "src", src)
    check_index_tensor("softmax", "index", index, src.size(0))
    check_same_device("softmax", src=src, index=index)
    n = index_bound("softmax", "index", index, dim_size)
    return _dispatch.softmax(src, index, n, csr, is_deterministic(deterministic))


def gather_scatter(
    x: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
    edge_index: torch.Tensor,
    weight: torch.Tensor | None = None,
    edge_attr: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    edge_weight: torch.Tensor | None = None,
    include_dst: bool = True,
    reduce: str = "sum",
    dim_size: int | None = None,
    csr: CSR | None = None,
    deterministic: bool | None = None,
) -> torch.Tensor:
    """Fused message passing: ``out[dst] = reduce over edges of w_e * msg_e``.

    With ``weight`` (a linear message, the layout of ``torch.nn.Linear.weight``)::

        msg_e = cat(x_src[src_e], x_dst[dst_e], edge_attr[e]) @ weight.T + bias

    and without it ``msg_e = x_src[src_e]`` (plain aggregation, e.g. restriction / prolongation
    with ``edge_weight``). For sum and mean the linear map is applied after aggregating, using
    linearity, so no (E, F_out) tensor is ever formed: ``sum_e W [x_s; x_d; a] =
    W_s (A x_s) + deg * (W_d x_d + b) + W_e (A_e a)``. ``reduce="max"``/``"min"`` materialize
    the messages (reference path).

    Parameters
    ----------
    x : Tensor or (Tensor, Tensor)
        Node features, or ``(x_src, x_dst)`` for a bipartite graph (e.g. hierarchy maps).
    edge_index : Tensor
        (2, E) int32/int64, row 0 source, row 1 destination.
    weight : Tensor, optional
        (F_out, F_src + F_dst + D) with ``F_dst`` omitted when ``include_dst=False`` and ``D``
        when ``edge_attr`` is None.
    edge_attr : Tensor, optional
        (E, D) edge features (only used with ``weight``).
    bias : Tensor, optional
        (F_out,) added to every message.
    edge_weight : Tensor, optional
        (E,) scalar multiplier of every message.
    include_dst : bool
        Put ``x_dst[dst]`` into the concatenation (default True).
    reduce : {"sum", "mean", "max", "min"}
        Mean divides by the edge count of each destination (not by the weight sum).
    dim_size : int, optional
        Destination nodes (default ``x_dst.size(0)``, i.e. ``x.size(0)`` when not bipartite).
    csr : CSR, optional
        ``CSR.from_edge_index(edge_index, dim_size)`` (see :func:`csr`) for the sorted path.
    deterministic : bool, optional
        Force or forbid the sorted-CSR bit-deterministic path.

    Shapes
    ------
    x (N, F) or ((N_src, F_src), (N_dst, F_dst)), edge_index (2, E), weight (F_out, F_in),
    edge_attr (E, D), bias (F_out,), edge_weight (E,) -> (dim_size, F_out)
    (without ``weight``: x (N_src, *F) -> (dim_size, *F))
    """
    op = "gather_scatter"
    check_reduce(op, reduce)
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"{op}: x must be a tensor or a pair (x_src, x_dst), got {len(x)} items")
        x_src, x_dst = x
        bipartite = True
    else:
        x_src, x_dst, bipartite = x, x, False
    check_src(op, "x_src" if bipartite else "x", x_src)
    if bipartite and x_dst is not None:
        check_src(op, "x_dst", x_dst)
    if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = tuple(edge_index.shape) if isinstance(edge_index, torch.Tensor) else type(edge_index).__name__
        raise ValueError(f"{op}: edge_index must have shape (2, E), got {shape}")
    if edge_index.dtype not in INDEX_DTYPES:
        raise TypeError(f"{op}: edge_index has dtype {edge_index.dtype}; expected torch.int64 or torch.int32")
    E = edge_index.size(1)
    if bipartite or weight is not None or edge_weight is not None or x_src.device != edge_index.device:
        check_same_device(op, x=x_src, x_dst=x_dst, edge_index=edge_index, weight=weight, edge_attr=edge_attr,
                          bias=bias, edge_weight=edge_weight)
    if dim_size is None:
        dim_size = x_dst.size(0) if x_dst is not None else x_src.size(0)

    def bounds() -> None:
        index_bound(op, "edge_index[0] (source)", edge_index[0], x_src.size(0))
        index_bound(op, "edge_index[1] (destination)", edge_index[1], dim_size)

    # on CPU the native routes bounds-check themselves (CSR.from_edge_index, index_select,
    # index_add_): name the bad value only when they fail, sparing two passes over the edges
    lazy = x_src.device.type == "cpu" and edge_index.device.type == "cpu" and not _dispatch.triton_cpu()
    if not lazy:
        bounds()
    if edge_weight is not None:
        check_src(op, "edge_weight", edge_weight)
        if edge_weight.shape != (E,):
            raise ValueError(f"{op}: edge_weight must have shape ({E},), got {tuple(edge_weight.shape)}")
    use_dst = include_dst and weight is not None
    if weight is not None:
        if x_src.dim() != 2:
            raise ValueError(f"{op}: with weight, x must be 2-D (N, F), got shape {tuple(x_src.shape)}")
        if use_dst and (x_dst is None or x_dst.dim() != 2):
            raise ValueError(f"{op}: include_dst=True needs a 2-D x_dst")
        if use_dst and x_dst.size(0) != dim_size:
            raise ValueError(f"{op}: x_dst has {x_dst.size(0)} rows but dim_size={dim_size}")
        if edge_attr is not None:
            check_src(op, "edge_attr", edge_attr)
            if edge_attr.dim() != 2 or edge_attr.size(0) != E:
                raise ValueError(
                    f"{op}: edge_attr must have shape ({E}, D), got {tuple(edge_attr.shape)}"
                )
        f_in = x_src.size(1) + (x_dst.size(1) if use_dst else 0) + (0 if edge_attr is None else edge_attr.size(1))
        if weight.dim() != 2 or weight.size(1) != f_in:
            parts = f"F_src={x_src.size(1)}" + (f" + F_dst={x_dst.size(1)}" if use_dst else "") + (
                "" if edge_attr is None else f" + D={edge_attr.size(1)}"
            )
            raise ValueError(
                f"{op}: weight has shape {tuple(weight.shape)}; expected "
                f"({weight.size(0) if weight.dim() == 2 else 'F_out'}, {f_in}) with {parts}"
            )
        if bias is not None and bias.shape != (weight.size(0),):
            raise ValueError(f"{op}: bias must have shape ({weight.size(0)},), got {tuple(bias.shape)}")
    elif edge_attr is not None or bias is not None:
        raise ValueError(f"{op}: edge_attr and bias need a weight (the linear message); got weight=None")
    if csr is not None and (csr.num_rows != dim_size or csr.num_entries != E or csr.col is None):
        raise ValueError(
            f"{op}: csr ({csr}) does not match edge_index with {E} edges and dim_size={dim_size}"
        )
    args = (
        x_src, x_dst if use_dst else None, edge_index, weight, edge_attr, bias, edge_weight,
        dim_size, reduce, csr, is_deterministic(deterministic),
    )
    if not lazy:
        return _dispatch.gather_scatter(*args)
    try:
        return _dispatch.gather_scatter(*args)
    except (IndexError, RuntimeError):
        bounds()
        raise
