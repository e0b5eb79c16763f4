"""Triton fast path of :func:`meshops.ops.rbf.rbf_eval`: one fused kernel per case.

Each program takes a block of query points and loops over the case's centers in blocks: it forms
the Mahalanobis offsets ``A_k (x_q - c_k)`` in registers, the kernel values (zero beyond
``R2_CUT``, as the torch path) and accumulates ``phi @ w`` with ``tl.dot`` in IEEE float32, so no
``(Q, K)`` temporary ever reaches memory. It is registered as the custom op ``meshops::rbf_eval``
(``register_fake`` for tracing, ``register_autograd`` with the chunked torch backward
:func:`meshops.ops._rbf_common.rbf_backward`). It runs on CUDA, and on CPU tensors when
``TRITON_INTERPRET=1`` is set before triton is imported (how the tests exercise it).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from meshops.ops._rbf_common import PHI_MIN, R2_CUT, _groups, rbf_backward

__all__ = ["rbf_eval_op"]


@triton.jit
def _rbf_fwd_kernel(
    x_ptr,
    c_ptr,
    a_ptr,
    w_ptr,
    out_ptr,
    Q,
    K,
    C,
    R2CUT,
    PHIMIN,
    BLOCK_Q: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    pid = tl.program_id(0)
    q = pid * BLOCK_Q + tl.arange(0, BLOCK_Q)
    qm = q < Q
    x0 = tl.load(x_ptr + q * 3 + 0, mask=qm, other=0.0)
    x1 = tl.load(x_ptr + q * 3 + 1, mask=qm, other=0.0)
    x2 = tl.load(x_ptr + q * 3 + 2, mask=qm, other=0.0)
    cc = tl.arange(0, BLOCK_C)
    cm = cc < C
    acc = tl.zeros((BLOCK_Q, BLOCK_C), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        km = k < K
        d0 = x0[:, None] - tl.load(c_ptr + k * 3 + 0, mask=km, other=0.0)[None, :]
        d1 = x1[:, None] - tl.load(c_ptr + k * 3 + 1, mask=km, other=0.0)[None, :]
        d2 = x2[:, None] - tl.load(c_ptr + k * 3 + 2, mask=km, other=0.0)[None, :]
        r2 = tl.zeros((BLOCK_Q, BLOCK_K), dtype=tl.float32)
        for i in tl.static_range(3):
            ai0 = tl.load(a_ptr + k * 9 + i * 3 + 0, mask=km, other=0.0)
            ai1 = tl.load(a_ptr + k * 9 + i * 3 + 1, mask=km, other=0.0)
            ai2 = tl.load(a_ptr + k * 9 + i * 3 + 2, mask=km, other=0.0)
            di = ai0[None, :] * d0 + ai1[None, :] * d1 + ai2[None, :] * d2
            r2 += di * di
        phi = tl.exp(-0.5 * tl.minimum(r2, R2CUT))
        phi = tl.where((phi > PHIMIN) & km[None, :], phi, 0.0)
        wb = tl.load(w_ptr + k[:, None] * C + cc[None, :], mask=km[:, None] & cm[None, :], other=0.0)
        acc += tl.dot(phi, wb, input_precision="ieee")
    tl.store(out_ptr + q[:, None] * C + cc[None, :], acc, mask=qm[:, None] & cm[None, :])


def _forward(x: Tensor, centers: Tensor, precision: Tensor, weights: Tensor, x_ptr: Tensor, c_ptr: Tensor) -> Tensor:
    c = weights.shape[1]
    out = torch.zeros(x.shape[0], c, dtype=torch.float32, device=x.device)
    xp, cp = x_ptr.tolist(), c_ptr.tolist()
    block_c = max(16, triton.next_power_of_2(c))
    block_q, block_k = 32, 32
    for x0, x1, c0, c1 in _groups(xp, cp):
        shift = centers[c0:c1].mean(0)
        xs = (x[x0:x1] - shift).contiguous()
        cs = (centers[c0:c1] - shift).contiguous()
        og = torch.empty(x1 - x0, c, dtype=torch.float32, device=x.device)
        grid = (triton.cdiv(x1 - x0, block_q),)
        _rbf_fwd_kernel[grid](
            xs, cs, precision[c0:c1].contiguous(), weights[c0:c1].contiguous(), og,
            x1 - x0, c1 - c0, c, R2_CUT, PHI_MIN, BLOCK_Q=block_q, BLOCK_K=block_k, BLOCK_C=block_c,
        )
        out[x0:x1] = og
    return out


@torch.library.custom_op("meshops::rbf_eval", mutates_args=())
def rbf_eval_op(x: Tensor, centers: Tensor, precision: Tensor, weights: Tensor, x_ptr: Tensor, c_ptr: Tensor) -> Tensor:
    """Fused anisotropic RBF evaluation (float32, D = 3); see :func:`meshops.ops.rbf.rbf_eval`.

    Shapes
    ------
    x (Q, 3), centers (M, 3), precision (M, 3, 3), weights (M, C), x_ptr / c_ptr (B+1,) int64 on
    the CPU -> (Q, C) float32
    """
    return _forward(x, centers, precision, weights, x_ptr, c_ptr)


@rbf_eval_op.register_fake
def _(x: Tensor, centers: Tensor, precision: Tensor, weights: Tensor, x_ptr: Tensor, c_ptr: Tensor) -> Tensor:
    return x.new_empty(x.shape[0], weights.shape[1])


def _setup(ctx, inputs, output):  # type: ignore[no-untyped-def]
    x, centers, precision, weights, x_ptr, c_ptr = inputs
    ctx.save_for_backward(x, centers, precision, weights)
    ctx.ptrs = (x_ptr.tolist(), c_ptr.tolist())


def _backward(ctx, grad):  # type: ignore[no-untyped-def]
    x, centers, precision, weights = ctx.saved_tensors
    xp, cp = ctx.ptrs
    gx, gc, ga, gw = rbf_backward(grad, x, centers, precision, weights, xp, cp, ctx.needs_input_grad[:4])
    return gx, gc, ga, gw, None, None


rbf_eval_op.register_autograd(_backward, setup_context=_setup)
