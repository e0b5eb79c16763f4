"""Route each public op to its fastest implementation (inputs are already validated).

CUDA (Triton): the atomic kernel by default, the sorted-CSR kernel when deterministic or when a
cached :class:`CSR` is given. CPU: the torch-native route measured fastest per op in
``benchmarks/kernels.py``:

- scatter sum/mean/max/min, one shot: ``index_add_`` / ``scatter_reduce_`` (the peers' route);
  with a cached CSR: sparse-CSR @ dense (MKL), 1.5-4x faster for sum/mean;
- segment sum/mean: CSR @ dense; segment max/min: ``segment_reduce``;
- gather_scatter sum/mean: sort once (when ``_sort_pays``) then CSR @ dense and the linear map
  on the nodes, else ``index_select`` + ``index_add_``; max/min materialize the messages.

All CPU routes are deterministic run to run, so ``deterministic`` only changes CUDA routes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from meshops.ops import _ops
from meshops.ops import reference as ref
from meshops.ops._check import acc_dtype
from meshops.ops._config import checks_enabled, triton_on_cpu
from meshops.ops.csr import CSR


def triton_cpu() -> bool:
    return _ops.HAS_TRITON and triton_on_cpu()


def _native_cpu(t: Tensor) -> bool:
    return t.device.type == "cpu" and not _ops.use_triton(t)


def _width(t: Tensor) -> int:
    return math.prod(t.shape[1:])


def _sort_pays(t: Tensor, rows: int, width: int) -> bool:
    """CPU: is sorting the index (once) + CSR @ dense cheaper than ``index_add_``?

    Measured on one core: CSR @ dense (MKL) is 3-5x faster than ``index_add_`` at widths
    16..256. ``torch.sort`` is a radix sort from ~65k entries (E=1e6 int32: about a quarter
    of an ``index_add_`` at width 16) but a comparison sort below (E=3e4: 3.5x an
    ``index_add_`` at width 16), so small indices only pay from wide rows.
    """
    if not _ops.HAS_MKL:
        return False
    return width >= (8 if rows >= 65536 else 96)


# --------------------------------------------------------------------------------- gather
class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, index: Tensor, det: bool) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(index)
        ctx.rows = x.size(0)
        ctx.det = det
        return x.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (index,) = ctx.saved_tensors
        return scatter(grad, index, ctx.rows, "sum", None, ctx.det), None, None


def gather(x: Tensor, index: Tensor, det: bool) -> Tensor:
    if x.requires_grad and torch.is_grad_enabled():
        return _Gather.apply(x, index, det)
    return x.index_select(0, index)


# -------------------------------------------------------------------------------- scatter
def _scatter_sort_pays(rows: int, n: int, width: int) -> bool:
    """CPU one-shot scatter: never sort (pass a cached ``csr=`` to get the CSR @ dense route).

    ``index_add_`` streams ``src`` and scatters into ``out``; sorting first pays only in a
    window (E=1e6, N=1.7e5, F=16: sort + CSR 350 ms vs 420 ms) and loses outside it (E=1e7:
    the sort alone costs more than ``index_add_``), so a one-shot scatter stays on the peers'
    route and a cached :class:`CSR` (sorted once per graph) is the way to the 2-4x speed-up.
    """
    return False


def cpu_atomic_route(src: Tensor, index: Tensor, reduce: str, n: int) -> bool:
    """True when a one-shot CPU scatter goes to ``index_add_`` / ``scatter_reduce_``."""
    if not src.is_floating_point() or not _native_cpu(src):
        return False
    return reduce in ("max", "min") or not _scatter_sort_pays(index.numel(), n, _width(src))


def scatter_cpu_atomic(src: Tensor, index: Tensor, n: int, reduce: str) -> Tensor:
    return _ops.scatter_atomic(src, index, None, None, n, reduce)


def scatter(src: Tensor, index: Tensor, n: int, reduce: str, csr: CSR | None, det: bool) -> Tensor:
    if not src.is_floating_point():
        return ref.scatter(src, index, n, reduce)
    if _native_cpu(src):
        if reduce in ("max", "min"):
            return _ops.scatter_atomic(src, index, None, None, n, reduce)
        if csr is None and _scatter_sort_pays(index.numel(), n, _width(src)):
            csr = CSR.from_index(index, n)
        if csr is not None:
            return _ops.csr_reduce(src, csr.ptr, csr.perm, reduce)
        return _ops.scatter_atomic(src, index, None, None, n, reduce)
    # float64 max/min: no float64 atomic max on every GPU; the sorted path needs none
    if det or csr is not None or (src.dtype == torch.float64 and reduce in ("max", "min") and src.is_cuda):
        c = csr if csr is not None else CSR.from_index(index, n)
        return _ops.csr_reduce(src, c.ptr, c.perm, reduce)
    return _ops.scatter_atomic(src, index, None, None, n, reduce)


# -------------------------------------------------------------------------------- segment
def segment(src: Tensor, ptr: Tensor, reduce: str) -> Tensor:
    if checks_enabled() or not torch.compiler.is_compiling():
        start, end = int(ptr[0]), int(ptr[-1])
        if start != 0 or end != src.size(0):
            src = src[start:end]
            ptr = ptr - start
    return _ops.csr_reduce(src, ptr, None, reduce)


# -------------------------------------------------------------------------------- softmax
class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, src: Tensor, index: Tensor, n: int, csr: CSR | None, det: bool) -> Tensor:  # type: ignore[override]
        dt = acc_dtype(src.dtype)
        s = src.to(dt)
        m = scatter(s, index, n, "max", csr, det)
        e = (s - m.index_select(0, index)).exp_()
        z = scatter(e, index, n, "sum", csr, det)
        y = e.div_(z.index_select(0, index))
        ctx.save_for_backward(y, index)
        ctx.n, ctx.csr, ctx.det = n, csr, det
        return y.to(src.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        y, index = ctx.saved_tensors
        gy = grad.to(y.dtype) * y
        s = scatter(gy, index, ctx.n, "sum", ctx.csr, ctx.det)
        g = gy - y * s.index_select(0, index)
        return g.to(grad.dtype), None, None, None, None


def softmax(src: Tensor, index: Tensor, n: int, csr: CSR | None, det: bool) -> Tensor:
    if csr is None and src.size(0) > 0:
        native = _native_cpu(src)
        if (native and _scatter_sort_pays(src.size(0), n, _width(src))) or (det and not native):
            csr = CSR.from_index(index, n)  # one sort serves the three reductions
    return _Softmax.apply(src, index, n, csr, det)


# ------------------------------------------------------------------------- gather_scatter
def _split_weight(weight: Tensor, f_src: int, f_dst: int) -> tuple[Tensor, Tensor | None, Tensor | None]:
    w_s = weight[:, :f_src]
    w_d = weight[:, f_src : f_src + f_dst] if f_dst else None
    w_e = weight[:, f_src + f_dst :] if weight.size(1) > f_src + f_dst else None
    return w_s, w_d, w_e


def gather_scatter(
    x_src: Tensor,
    x_dst: Tensor | None,
    edge_index: Tensor,
    weight: Tensor | None,
    edge_attr: Tensor | None,
    bias: Tensor | None,
    edge_weight: Tensor | None,
    n: int,
    reduce: str,
    csr: CSR | None,
    det: bool,
) -> Tensor:
    if reduce in ("max", "min"):
        return ref.gather_scatter(x_src, x_dst, edge_index, weight, edge_attr, bias, edge_weight, n, reduce)
    out_dtype = x_src.dtype
    src_i, dst_i = edge_index[0], edge_index[1]
    if _native_cpu(x_src):  # CPU routes are deterministic either way: pick the fastest
        agg_width = min(_width(x_src), weight.size(0)) if weight is not None else _width(x_src)
        use_csr = csr is not None or _sort_pays(x_src, edge_index.size(1), agg_width)
    else:
        use_csr = csr is not None or det
    if use_csr and csr is None:
        csr = CSR.from_edge_index(edge_index, n, x_src.size(0))

    # apply W_src before aggregating when that makes the aggregated width smaller (linearity)
    h, w_post = x_src, None
    if weight is not None:
        dt = acc_dtype(out_dtype)
        f_dst = x_dst.size(1) if x_dst is not None else 0
        w_s, w_d, w_e = _split_weight(weight.to(dt), x_src.size(1), f_dst)
        if weight.size(0) < x_src.size(1):
            h = (x_src.to(dt) @ w_s.T).to(out_dtype)
        else:
            w_post = w_s

    def aggregate(v: Tensor) -> Tensor:  # sum_e w_e * v[src_e] into dst
        if csr is not None:
            val = None if edge_weight is None else edge_weight.index_select(0, csr.perm)
            if v.requires_grad and torch.is_grad_enabled():
                t = csr.transpose()
                val_t = None if edge_weight is None else edge_weight.index_select(0, t.perm)
                return _ops.spmm(v, csr.ptr, csr.col, val, t.ptr, t.col, val_t)
            return _ops.spmm(v, csr.ptr, csr.col, val, None, None, None)
        return _ops.scatter_atomic(v, dst_i, src_i, edge_weight, n, "sum")

    def per_edge_sum(v: Tensor) -> Tensor:  # sum_e v[e] into dst
        if csr is not None:
            return _ops.csr_reduce(v, csr.ptr, csr.perm, "sum")
        return _ops.scatter_atomic(v, dst_i, None, None, n, "sum")

    def counts() -> Tensor:
        if csr is not None:
            return csr.degree()
        return torch.zeros(n, dtype=torch.long, device=dst_i.device).index_add_(
            0, dst_i, torch.ones_like(dst_i, dtype=torch.long)
        )

    agg = aggregate(h)
    if weight is None:
        out = agg
    else:
        out = agg.to(dt)
        if w_post is not None:
            out = out @ w_post.T
        if w_d is not None or bias is not None:
            deg = (counts().to(dt) if edge_weight is None else per_edge_sum(edge_weight.to(dt))).unsqueeze(1)
            if w_d is not None:
                node = x_dst.to(dt) @ w_d.T
                if bias is not None:
                    node = node + bias.to(dt)
            else:
                node = bias.to(dt).expand(n, -1)
            out = out + deg * node
        if w_e is not None and edge_attr is not None:
            ea = edge_attr.to(dt)
            if edge_weight is not None:
                ea = ea * edge_weight.to(dt).unsqueeze(1)
            out = out + per_edge_sum(ea) @ w_e.T
    if reduce == "mean":
        cnt = counts().clamp(min=1).to(out.dtype)
        out = out / cnt.view((-1,) + (1,) * (out.dim() - 1))
    return out if out.dtype == out_dtype else out.to(out_dtype)
