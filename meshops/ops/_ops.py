"""``torch.library`` custom ops: the fast paths, with fake (meta) kernels and autograd.

Three ops, each with a device-agnostic torch-native implementation (the fastest native route we
measured on CPU; also the CUDA fallback when triton is missing) and a Triton kernel on CUDA:

``meshops::csr_reduce(src, ptr, col?, reduce)``
    ``out[r] = reduce(src[col[k]] for k in ptr[r]:ptr[r+1])``; ``col=None`` means ``k`` itself
    (a sorted segment). Contract: ``ptr[0] == 0``, ``ptr[-1] == len(col)`` (or ``len(src)``), and
    ``col`` has no repeats (it is a permutation or a subset). No atomics: deterministic.
``meshops::spmm(x, ptr, col, val?, ptr_t?, col_t?, val_t?)``
    Sparse CSR times dense, ``out[r] = sum_k val[k] * x[col[k]]`` (the fused gather-scatter);
    ``*_t`` is the transposed structure, used by the backward (built there when absent).
    Deterministic.
``meshops::scatter_atomic(src, index, gidx?, val?, dim_size, reduce)``
    ``out[index[e]] (reduce)= val[e] * src[gidx[e]]`` with atomics on CUDA (order-dependent
    float sums); ``gidx``/``val`` only with ``reduce="sum"``.

Everything accumulates in float32 for float16/bfloat16 and returns the input dtype.
"""

from __future__ import annotations

import importlib.util
import math
import warnings

import torch
from torch import Tensor

from meshops.ops._check import acc_dtype
from meshops.ops._config import triton_on_cpu

HAS_TRITON = importlib.util.find_spec("triton") is not None



_CPU_INTERP = triton_on_cpu()
HAS_MKL = torch.backends.mkl.is_available()


def use_triton(t: Tensor) -> bool:
    """Whether the Triton kernels run for tensors on ``t``'s device."""
    return HAS_TRITON and (t.is_cuda or (_CPU_INTERP and t.device.type == "cpu"))


def _tri():  # imported lazily: importing triton costs ~1 s and is pointless on CPU
    from meshops.ops import _triton

    return _triton


def _flat(t: Tensor) -> Tensor:
    return t if t.dim() == 2 else t.reshape(t.size(0), math.prod(t.shape[1:]))


def _unflat(t: Tensor, rows: int, like: Tensor) -> Tensor:
    return t if like.dim() == 2 else t.reshape((rows,) + tuple(like.shape[1:]))


def _to(t: Tensor, dtype: torch.dtype) -> Tensor:
    return t if t.dtype == dtype else t.to(dtype)


def _rows_of(ptr: Tensor, total: int) -> Tensor:
    """Row id of every CSR entry, (total,) int64."""
    n = ptr.numel() - 1
    return torch.repeat_interleave(
        torch.arange(n, device=ptr.device), (ptr[1:] - ptr[:-1]).long(), output_size=total
    )


def _mm_ok(t: Tensor) -> bool:
    """Sparse CSR @ dense is the fast native route (MKL on CPU, cuSPARSE on CUDA)."""
    return HAS_MKL or t.is_cuda


def _csr_mm(ptr: Tensor, col: Tensor, val: Tensor | None, x2: Tensor, n_rows: int) -> Tensor:
    """``A @ x2`` with ``A`` the (n_rows, len(x2)) CSR matrix; x2 is 2-D float32/float64."""
    values = torch.ones(col.numel(), dtype=x2.dtype, device=x2.device) if val is None else val.to(x2.dtype)
    with warnings.catch_warnings():  # torch warns that sparse CSR is "beta"; CSR @ dense is stable
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        a = torch.sparse_csr_tensor(
            ptr.long(), col.long(), values, size=(n_rows, x2.size(0)), check_invariants=False
        )
    return a @ x2


def transpose_csr(ptr: Tensor, col: Tensor, num_cols: int) -> tuple[Tensor, Tensor, Tensor]:
    """Sort a CSR by column: returns ``(ptr_t, col_t, perm_t)``; ``perm_t`` indexes entries.

    Shapes
    ------
    ptr (S + 1,), col (K,) -> ptr_t (num_cols + 1,), col_t (K,), perm_t (K,)
    """
    k = col.numel()
    row = _rows_of(ptr, k)
    key = col.int() if num_cols < 2**31 - 1 else col.long()
    col_sorted, perm_t = torch.sort(key, stable=True)
    ptr_t = torch.searchsorted(col_sorted, torch.arange(num_cols + 1, device=col.device, dtype=key.dtype))
    return ptr_t.long(), row.index_select(0, perm_t), perm_t


# ------------------------------------------------------------------------------ csr_reduce
def _csr_reduce_impl(src: Tensor, ptr: Tensor, col: Tensor | None, reduce: str) -> Tensor:
    if use_triton(src):
        return _tri().csr_reduce(src, ptr, col, None, reduce)
    n = ptr.numel() - 1
    dt = acc_dtype(src.dtype)
    s2 = _to(_flat(src), dt)
    k = col.numel() if col is not None else src.size(0)
    if reduce in ("sum", "mean") and _mm_ok(src):
        cols = col if col is not None else torch.arange(k, device=src.device)
        out = _csr_mm(ptr, cols, None, s2, n)
        if reduce == "mean":
            out = out / (ptr[1:] - ptr[:-1]).clamp(min=1).to(dt).unsqueeze(1)
    else:
        data = s2 if col is None else s2.index_select(0, col.long())
        name = {"sum": "sum", "mean": "mean", "max": "max", "min": "min"}[reduce]
        out = torch.segment_reduce(data, name, offsets=ptr.long(), axis=0, unsafe=True)
        if reduce in ("max", "min"):
            empty = (ptr[1:] == ptr[:-1]).unsqueeze(1)
            out = out.masked_fill(empty, 0)
    return _unflat(_to(out, src.dtype), n, src)


@torch.library.custom_op("meshops::csr_reduce", mutates_args=())
def csr_reduce_op(src: Tensor, ptr: Tensor, col: Tensor | None, reduce: str) -> Tensor:
    return _csr_reduce_impl(src, ptr, col, reduce)


@csr_reduce_op.register_fake
def _(src: Tensor, ptr: Tensor, col: Tensor | None, reduce: str) -> Tensor:
    return src.new_empty((ptr.shape[0] - 1,) + tuple(src.shape[1:]))


def _csr_reduce_setup(ctx, inputs, output) -> None:
    src, ptr, col, reduce = inputs
    ctx.reduce = reduce
    ctx.src_shape = src.shape
    if reduce in ("max", "min"):
        ctx.save_for_backward(ptr, col, src, output)
    else:
        ctx.save_for_backward(ptr, col)


def _csr_reduce_backward(ctx, grad: Tensor):
    if ctx.reduce in ("max", "min"):
        ptr, col, src, out = ctx.saved_tensors
    else:
        ptr, col = ctx.saved_tensors
    rows = ctx.src_shape[0]
    n = ptr.numel() - 1
    k = col.numel() if col is not None else rows
    dt = acc_dtype(grad.dtype)
    g2 = _flat(grad).to(dt)
    row = _rows_of(ptr, k)
    if ctx.reduce == "mean":
        g2 = g2 / (ptr[1:] - ptr[:-1]).clamp(min=1).to(dt).unsqueeze(1)
    gk = g2.index_select(0, row)
    if ctx.reduce in ("max", "min"):
        s2 = _flat(src).to(dt)
        vals = s2 if col is None else s2.index_select(0, col.long())
        mask = vals == _flat(out).to(dt).index_select(0, row)
        cnt = torch.zeros((n, gk.size(1)), dtype=dt, device=gk.device).index_add_(0, row, mask.to(dt))
        gk = torch.where(mask, gk / cnt.clamp(min=1).index_select(0, row), torch.zeros((), dtype=dt, device=gk.device))
    if col is None:
        g_src = gk
    else:
        g_src = torch.zeros((rows, gk.size(1)), dtype=dt, device=gk.device).index_copy_(0, col.long(), gk)
    return g_src.to(grad.dtype).reshape(ctx.src_shape), None, None, None


csr_reduce_op.register_autograd(_csr_reduce_backward, setup_context=_csr_reduce_setup)


# ------------------------------------------------------------------------------------ spmm
def _spmm_impl(
    x: Tensor,
    ptr: Tensor,
    col: Tensor,
    val: Tensor | None,
    ptr_t: Tensor | None,
    col_t: Tensor | None,
    val_t: Tensor | None,
) -> Tensor:
    n = ptr.numel() - 1
    if use_triton(x):
        return _tri().csr_reduce(x, ptr, col, val, "sum")
    dt = acc_dtype(x.dtype)
    x2 = _to(_flat(x), dt)
    if _mm_ok(x):
        out = _csr_mm(ptr, col, val, x2, n)
    else:
        msg = x2.index_select(0, col.long())
        if val is not None:
            msg = msg * val.to(dt).unsqueeze(1)
        out = torch.segment_reduce(msg, "sum", offsets=ptr.long(), axis=0, unsafe=True)
    return _unflat(_to(out, x.dtype), n, x)


@torch.library.custom_op("meshops::spmm", mutates_args=())
def spmm_op(
    x: Tensor,
    ptr: Tensor,
    col: Tensor,
    val: Tensor | None,
    ptr_t: Tensor | None,
    col_t: Tensor | None,
    val_t: Tensor | None,
) -> Tensor:
    return _spmm_impl(x, ptr, col, val, ptr_t, col_t, val_t)


@spmm_op.register_fake
def _(x, ptr, col, val, ptr_t, col_t, val_t) -> Tensor:
    return x.new_empty((ptr.shape[0] - 1,) + tuple(x.shape[1:]))


def _spmm_setup(ctx, inputs, output) -> None:
    x, ptr, col, val, ptr_t, col_t, val_t = inputs
    ctx.x_shape = x.shape
    ctx.has_t = ptr_t is not None
    ctx.save_for_backward(x, ptr, col, val, ptr_t, col_t, val_t)


def _spmm_backward(ctx, grad: Tensor):
    x, ptr, col, val, ptr_t, col_t, val_t = ctx.saved_tensors
    g_x = g_val = None
    if ctx.needs_input_grad[0]:
        if ptr_t is None or col_t is None:
            ptr_t, col_t, perm_t = transpose_csr(ptr, col, x.size(0))
            val_t = None if val is None else val.index_select(0, perm_t)
        g_x = spmm_op(grad, ptr_t, col_t, val_t, ptr, col, val).reshape(ctx.x_shape)
    if val is not None and ctx.needs_input_grad[3]:
        dt = acc_dtype(grad.dtype)
        row = _rows_of(ptr, col.numel())
        g_val = (_flat(grad).to(dt).index_select(0, row) * _flat(x).to(dt).index_select(0, col.long())).sum(1)
        g_val = g_val.to(val.dtype)
    return g_x, None, None, g_val, None, None, None


spmm_op.register_autograd(_spmm_backward, setup_context=_spmm_setup)


# -------------------------------------------------------------------------- scatter_atomic
def _scatter_atomic_impl(
    src: Tensor, index: Tensor, gidx: Tensor | None, val: Tensor | None, dim_size: int, reduce: str
) -> Tensor:
    if use_triton(src):
        return _tri().atomic_scatter(src, index, gidx, val, dim_size, reduce)
    dt = acc_dtype(src.dtype)
    # allocate the output before the (E, F) temporaries: measured 1.5-2x faster on CPU (the
    # allocator otherwise hands back freshly mapped pages for the big temporary every call)
    out = torch.zeros((dim_size, math.prod(src.shape[1:])), dtype=dt, device=src.device)
    s2 = _to(_flat(src), dt)
    if gidx is not None:
        s2 = s2.index_select(0, gidx)
    if val is not None:
        s2 = s2 * _to(val, dt).unsqueeze(1)
    idx = index if reduce in ("sum", "mean") else index.long()
    if reduce == "sum":
        out.index_add_(0, idx, s2)
    elif reduce == "mean":  # one pass; rows that receive nothing keep their 0
        out.scatter_reduce_(0, idx.long().unsqueeze(1).expand_as(s2), s2, "mean", include_self=False)
    else:
        out.scatter_reduce_(0, idx.unsqueeze(1).expand_as(s2), s2, "amax" if reduce == "max" else "amin",
                            include_self=False)
    return _unflat(_to(out, src.dtype), dim_size, src)


@torch.library.custom_op("meshops::scatter_atomic", mutates_args=())
def scatter_atomic_op(
    src: Tensor, index: Tensor, gidx: Tensor | None, val: Tensor | None, dim_size: int, reduce: str
) -> Tensor:
    return _scatter_atomic_impl(src, index, gidx, val, dim_size, reduce)


@scatter_atomic_op.register_fake
def _(src, index, gidx, val, dim_size, reduce) -> Tensor:
    return src.new_empty((dim_size,) + tuple(src.shape[1:]))


def _scatter_atomic_setup(ctx, inputs, output) -> None:
    src, index, gidx, val, dim_size, reduce = inputs
    ctx.reduce = reduce
    ctx.dim_size = dim_size
    ctx.src_shape = src.shape
    keep_out = output if reduce in ("max", "min") else None
    ctx.save_for_backward(src, index, gidx, val, keep_out)


def _scatter_atomic_backward(ctx, grad: Tensor):
    src, index, gidx, val, out = ctx.saved_tensors
    dt = acc_dtype(grad.dtype)
    idx = index.long()
    g2 = _flat(grad).to(dt)
    zero = torch.zeros((), dtype=dt, device=g2.device)
    g_src = g_val = None
    if ctx.reduce in ("max", "min"):
        s2 = _flat(src).to(dt)
        mask = s2 == _flat(out).to(dt).index_select(0, idx)
        cnt = torch.zeros_like(g2).index_add_(0, idx, mask.to(dt))
        g_src = torch.where(mask, (g2 / cnt.clamp(min=1)).index_select(0, idx), zero)
        return g_src.to(grad.dtype).reshape(ctx.src_shape), None, None, None, None, None
    if ctx.reduce == "mean":
        cnt = torch.zeros(ctx.dim_size, dtype=dt, device=g2.device).index_add_(
            0, idx, torch.ones(idx.numel(), dtype=dt, device=g2.device)
        )
        g2 = g2 / cnt.clamp(min=1).unsqueeze(1)
    if ctx.needs_input_grad[0]:
        if gidx is None:
            g_src = g2.index_select(0, idx)
            if val is not None:
                g_src = g_src * val.to(dt).unsqueeze(1)
            g_src = g_src.to(grad.dtype).reshape(ctx.src_shape)
        else:
            g_src = scatter_atomic_op(g2.to(grad.dtype), gidx, index, val, ctx.src_shape[0], "sum")
            g_src = g_src.reshape(ctx.src_shape)
    if val is not None and ctx.needs_input_grad[3]:
        s2 = _flat(src).to(dt)
        if gidx is not None:
            s2 = s2.index_select(0, gidx.long())
        g_val = (g2.index_select(0, idx) * s2).sum(1).to(val.dtype)
    return g_src, None, None, g_val, None, None


scatter_atomic_op.register_autograd(_scatter_atomic_backward, setup_context=_scatter_atomic_setup)


# ------------------------------------------------------------------------- entry points
def _direct(*tensors: Tensor | None) -> bool:
    """Skip the custom-op layer (~20 us a call) when neither autograd nor tracing needs it."""
    if torch.compiler.is_compiling():
        return False
    grad = torch.is_grad_enabled()
    for t in tensors:
        if t is None:
            continue
        if type(t) is not torch.Tensor or (grad and t.requires_grad):  # fake/functional tensors: trace the op
            return False
    return True


def csr_reduce(src: Tensor, ptr: Tensor, col: Tensor | None, reduce: str) -> Tensor:
    """``meshops::csr_reduce`` (see the module docstring)."""
    if _direct(src):
        return _csr_reduce_impl(src, ptr, col, reduce)
    return csr_reduce_op(src, ptr, col, reduce)


def spmm(
    x: Tensor,
    ptr: Tensor,
    col: Tensor,
    val: Tensor | None,
    ptr_t: Tensor | None,
    col_t: Tensor | None,
    val_t: Tensor | None,
) -> Tensor:
    """``meshops::spmm`` (see the module docstring)."""
    if _direct(x, val):
        return _spmm_impl(x, ptr, col, val, ptr_t, col_t, val_t)
    return spmm_op(x, ptr, col, val, ptr_t, col_t, val_t)


def scatter_atomic(
    src: Tensor, index: Tensor, gidx: Tensor | None, val: Tensor | None, dim_size: int, reduce: str
) -> Tensor:
    """``meshops::scatter_atomic`` (see the module docstring)."""
    if _direct(src, val):
        return _scatter_atomic_impl(src, index, gidx, val, dim_size, reduce)
    return scatter_atomic_op(src, index, gidx, val, dim_size, reduce)
