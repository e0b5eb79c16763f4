"""Triton kernels: a sorted-CSR segment kernel (deterministic) and an atomic scatter kernel.

Both work on 2-D contiguous row-major views ``(rows, F)``; the launchers below flatten trailing
dims. Accumulation is float32 (float64 for float64 inputs). Offsets are computed in int64 so
``E * F`` may exceed 2**31. The kernels also run on CPU tensors under ``TRITON_INTERPRET=1``
(set before triton is imported), which is how the test suite exercises them without a GPU.

Kernels
-------
``_csr_kernel``      out[r] = reduce_{k in ptr[r]:ptr[r+1]} val[k] * src[col[k]]   (one program per
                     row and feature block; fixed reduction order -> identical bits every run)
``_atomic_kernel``   out[index[e]] (+|max|min)= val[e] * src[gidx[e]]   (one program per edge
                     block and feature block; float atomics -> order-dependent sums)
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

# reduce codes shared by both kernels
SUM, MEAN, MAX, MIN = 0, 1, 2, 3
CODES = {"sum": SUM, "mean": MEAN, "max": MAX, "min": MIN}


@triton.jit
def _csr_kernel(
    src_ptr,
    ptr_ptr,
    col_ptr,
    val_ptr,
    out_ptr,
    F,
    HAS_COL: tl.constexpr,
    HAS_VAL: tl.constexpr,
    REDUCE: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_F: tl.constexpr,
):
    r = tl.program_id(0).to(tl.int64)
    offs_f = tl.program_id(1).to(tl.int64) * BLOCK_F + tl.arange(0, BLOCK_F)
    fmask = offs_f < F
    start = tl.load(ptr_ptr + r).to(tl.int64)
    end = tl.load(ptr_ptr + r + 1).to(tl.int64)
    if REDUCE == 2:
        acc = tl.full((BLOCK_K, BLOCK_F), float("-inf"), ACC)
    elif REDUCE == 3:
        acc = tl.full((BLOCK_K, BLOCK_F), float("inf"), ACC)
    else:
        acc = tl.zeros((BLOCK_K, BLOCK_F), ACC)
    for k0 in range(start, end, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        kmask = k < end
        if HAS_COL:
            rows = tl.load(col_ptr + k, mask=kmask, other=0).to(tl.int64)
        else:
            rows = k
        m2 = kmask[:, None] & fmask[None, :]
        v = tl.load(src_ptr + rows[:, None] * F + offs_f[None, :], mask=m2, other=0.0).to(ACC)
        if HAS_VAL:
            w = tl.load(val_ptr + k, mask=kmask, other=0.0).to(ACC)
            v = v * w[:, None]
        if REDUCE == 2:
            acc = tl.maximum(acc, tl.where(m2, v, float("-inf")))
        elif REDUCE == 3:
            acc = tl.minimum(acc, tl.where(m2, v, float("inf")))
        else:
            acc += v
    n = end - start
    if REDUCE == 2:
        res = tl.max(acc, axis=0)
        res = tl.where(n > 0, res, 0.0)
    elif REDUCE == 3:
        res = tl.min(acc, axis=0)
        res = tl.where(n > 0, res, 0.0)
    else:
        res = tl.sum(acc, axis=0)
        if REDUCE == 1:
            res = res / tl.maximum(n, 1).to(ACC)
    tl.store(out_ptr + r * F + offs_f, res.to(out_ptr.dtype.element_ty), mask=fmask)


@triton.jit
def _atomic_kernel(
    src_ptr,
    index_ptr,
    gidx_ptr,
    val_ptr,
    out_ptr,
    E,
    F,
    HAS_GIDX: tl.constexpr,
    HAS_VAL: tl.constexpr,
    REDUCE: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_E: tl.constexpr,
    BLOCK_F: tl.constexpr,
):
    e = tl.program_id(0).to(tl.int64) * BLOCK_E + tl.arange(0, BLOCK_E)
    offs_f = tl.program_id(1).to(tl.int64) * BLOCK_F + tl.arange(0, BLOCK_F)
    emask = e < E
    fmask = offs_f < F
    m2 = emask[:, None] & fmask[None, :]
    dst = tl.load(index_ptr + e, mask=emask, other=0).to(tl.int64)
    if HAS_GIDX:
        rows = tl.load(gidx_ptr + e, mask=emask, other=0).to(tl.int64)
    else:
        rows = e
    v = tl.load(src_ptr + rows[:, None] * F + offs_f[None, :], mask=m2, other=0.0).to(ACC)
    if HAS_VAL:
        w = tl.load(val_ptr + e, mask=emask, other=0.0).to(ACC)
        v = v * w[:, None]
    ptrs = out_ptr + dst[:, None] * F + offs_f[None, :]
    if REDUCE == 2:
        tl.atomic_max(ptrs, v, mask=m2)
    elif REDUCE == 3:
        tl.atomic_min(ptrs, v, mask=m2)
    else:
        tl.atomic_add(ptrs, v, mask=m2)


def _pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def _acc(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.size(0), math.prod(t.shape[1:])).contiguous()


def _feature_block(f: int) -> int:
    return max(min(_pow2(f), 128), 1)


def csr_reduce(
    src: torch.Tensor,
    ptr: torch.Tensor,
    col: torch.Tensor | None,
    val: torch.Tensor | None,
    reduce: str,
) -> torch.Tensor:
    """``out[r] = reduce(val[k] * src[col[k]] for k in ptr[r]:ptr[r+1])`` (col/val optional).

    Shapes
    ------
    src (R, *F), ptr (S + 1,), col (K,), val (K,) -> (S, *F) in src.dtype
    """
    s = _flat(src)
    S = ptr.numel() - 1
    F = s.size(1)
    out = torch.empty((S, F), dtype=src.dtype, device=src.device)
    if S == 0 or F == 0:
        return out.reshape((S,) + tuple(src.shape[1:])).zero_()
    ptr = ptr.contiguous()
    k_total = max(int(col.numel()) if col is not None else src.size(0), 1)
    avg = max(k_total // max(S, 1), 1)
    block_f = _feature_block(F)
    block_k = min(max(_pow2(avg), 4), 64, max(4096 // block_f, 4))
    grid = (S, triton.cdiv(F, block_f))
    _csr_kernel[grid](
        s,
        ptr,
        col.contiguous() if col is not None else ptr,
        val.contiguous() if val is not None else s,
        out,
        F,
        HAS_COL=col is not None,
        HAS_VAL=val is not None,
        REDUCE=CODES[reduce],
        ACC=_acc(src.dtype),
        BLOCK_K=block_k,
        BLOCK_F=block_f,
        num_warps=4 if block_k * block_f >= 1024 else 2,
    )
    return out.reshape((S,) + tuple(src.shape[1:]))


def atomic_scatter(
    src: torch.Tensor,
    index: torch.Tensor,
    gidx: torch.Tensor | None,
    val: torch.Tensor | None,
    dim_size: int,
    reduce: str,
) -> torch.Tensor:
    """``out[index[e]] (reduce)= val[e] * src[gidx[e]]`` with float atomics; empty rows are 0.

    Shapes
    ------
    src (R, *F), index (E,), gidx (E,), val (E,) -> (dim_size, *F) in src.dtype
    """
    s = _flat(src)
    F = s.size(1)
    E = index.numel()
    acc_t = torch.float64 if src.dtype == torch.float64 else torch.float32
    if reduce == "max":
        buf = torch.full((dim_size, F), float("-inf"), dtype=acc_t, device=src.device)
    elif reduce == "min":
        buf = torch.full((dim_size, F), float("inf"), dtype=acc_t, device=src.device)
    else:
        buf = torch.zeros((dim_size, F), dtype=acc_t, device=src.device)
    if E > 0 and F > 0 and dim_size > 0:
        block_f = _feature_block(F)
        block_e = max(min(4096 // block_f, 128), 4)
        grid = (triton.cdiv(E, block_e), triton.cdiv(F, block_f))
        _atomic_kernel[grid](
            s,
            index.contiguous(),
            gidx.contiguous() if gidx is not None else index,
            val.contiguous() if val is not None else s,
            buf,
            E,
            F,
            HAS_GIDX=gidx is not None,
            HAS_VAL=val is not None,
            REDUCE=CODES[reduce],
            ACC=_acc(src.dtype),
            BLOCK_E=block_e,
            BLOCK_F=block_f,
            num_warps=4,
        )
    if reduce != "sum":
        cnt = torch.bincount(index.long(), minlength=dim_size)[:dim_size] if E else buf.new_zeros(dim_size)
        if reduce == "mean":
            buf = buf / cnt.clamp(min=1).to(acc_t).unsqueeze(1)
        else:
            buf = torch.where((cnt > 0).unsqueeze(1), buf, torch.zeros((), dtype=acc_t, device=buf.device))
    return buf.to(src.dtype).reshape((dim_size,) + tuple(src.shape[1:]))
