"""What the torch reference and the Triton kernel of :func:`meshops.ops.rbf.rbf_eval` share.

The cut-off constants, the group and chunk iteration (``_groups``, ``_spans``, ``_chunk_rows``),
and the chunked torch forward and backward (the backward is also the Triton path's). Both
:mod:`meshops.ops.rbf` (the public function and its dispatch) and :mod:`meshops.ops._rbf_triton`
import this module; it imports neither of them.

This module imports torch only (the ``ops`` layering rule).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["DEFAULT_MAX_ELEMENTS", "PHI_MIN", "R2_CUT", "rbf_backward", "rbf_forward"]

#: Default bound on the number of elements of one (chunk, K, D) temporary.
DEFAULT_MAX_ELEMENTS = 1 << 18

#: Pairs with a squared Mahalanobis distance beyond ~R2_CUT (kernel value below ~exp(-50) ~ 2e-22,
#: far below the resolution of any float32 or float64 sum of O(1) terms) contribute exactly 0.
R2_CUT = 100.0
PHI_MIN = 1.5 * math.exp(-0.5 * R2_CUT)


def _chunk_rows(k: int, d: int, chunk_size: int | None, max_elements: int) -> int:
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"rbf_eval: chunk_size must be >= 1, got {chunk_size}")
        return int(chunk_size)
    return max(1, max_elements // max(1, k * d))


def _groups(xp: list[int], cp: list[int]) -> Iterator[tuple[int, int, int, int]]:
    """``(x0, x1, c0, c1)`` query and center ranges of every group that has both queries and centers."""
    for g in range(len(xp) - 1):
        x0, x1, c0, c1 = xp[g], xp[g + 1], cp[g], cp[g + 1]
        if x1 > x0 and c1 > c0:
            yield x0, x1, c0, c1


def _spans(x0: int, x1: int, step: int) -> Iterator[tuple[int, int]]:
    """``[s, e)`` row chunks of at most ``step`` rows covering ``[x0, x1)``."""
    for s in range(x0, x1, step):
        yield s, min(s + step, x1)


def _phi(xs: Tensor, a_perm: Tensor, neg_ca: Tensor) -> tuple[Tensor, Tensor]:
    """Mahalanobis offsets ``dd`` (D, q, K) and kernel values ``phi`` (q, K) of one chunk.

    Component-major layout: every elementwise pass runs over contiguous (q, K) planes, which is
    several times faster on CPU than reducing a trailing dimension of size 3.
    """
    d = a_perm.shape[0]
    dd = torch.baddbmm(neg_ca, xs.expand(d, -1, -1), a_perm)  # dd[i, q, k] = (A_k (x_q - c_k))_i
    r2 = dd[0] * dd[0]
    for i in range(1, d):
        r2.addcmul_(dd[i], dd[i])
    # Far pairs are exactly 0: exp of large negative arguments, and products of tiny kernel values
    # with small gradients, hit the CPU's slow denormal path (5-20x slower). Capping the argument
    # keeps exp fast; the threshold zeroes the capped values.
    phi = r2.clamp_(max=R2_CUT).mul_(-0.5).exp_()
    torch.nn.functional.threshold_(phi, PHI_MIN, 0.0)
    return dd, phi


def _group_consts(centers: Tensor, precision: Tensor, c0: int, c1: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Shift, shifted centers, ``A`` as (D, D, K) and ``-A c`` as (D, 1, K) for one group."""
    shift = centers[c0:c1].mean(0)
    cs = centers[c0:c1] - shift
    a = precision[c0:c1]
    a_perm = a.permute(1, 2, 0).contiguous()  # [i, j, k] = A_k[i, j]
    neg_ca = (-torch.einsum("kij,kj->ik", a, cs)).unsqueeze(1).contiguous()
    return shift, cs, a_perm, neg_ca


def rbf_forward(
    x: Tensor,
    centers: Tensor,
    precision: Tensor,
    weights: Tensor,
    xp: list[int],
    cp: list[int],
    chunk_size: int | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Tensor:
    """The chunked torch evaluation of :func:`meshops.ops.rbf.rbf_eval` (no autograd of its own).

    Shapes
    ------
    x (Q, D), centers (M, D), precision (M, D, D), weights (M, C), xp / cp: B + 1 group offsets
    -> (Q, C)
    """
    out = x.new_zeros(x.shape[0], weights.shape[1])
    d = x.shape[1]
    for x0, x1, c0, c1 in _groups(xp, cp):
        shift, _, a_perm, neg_ca = _group_consts(centers, precision, c0, c1)
        w = weights[c0:c1]
        step = _chunk_rows(c1 - c0, d, chunk_size, max_elements)
        for s, e in _spans(x0, x1, step):
            _, phi = _phi(x[s:e] - shift, a_perm, neg_ca)
            out[s:e] = phi @ w
    return out


def rbf_backward(
    grad_out: Tensor,
    x: Tensor,
    centers: Tensor,
    precision: Tensor,
    weights: Tensor,
    xp: list[int],
    cp: list[int],
    needs: tuple[bool, ...] = (True, True, True, True),
    chunk_size: int | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None]:
    """Gradients of :func:`rbf_eval` with respect to x, centers, precision and weights (chunked
    recomputation; the backward of both the torch path and the Triton path).

    Shapes
    ------
    grad_out (Q, C) and the inputs of :func:`rbf_eval` -> grads shaped like x, centers, precision,
    weights (None where ``needs`` is False)
    """
    need_x, need_c, need_a, need_w = needs
    gx = torch.zeros_like(x) if need_x else None
    gc = torch.zeros_like(centers) if need_c else None
    ga = torch.zeros_like(precision) if need_a else None
    gw = torch.zeros_like(weights) if need_w else None
    grad_out = grad_out.to(x.dtype)
    d = x.shape[1]
    for x0, x1, c0, c1 in _groups(xp, cp):
        k = c1 - c0
        shift, cs, a_perm, neg_ca = _group_consts(centers, precision, c0, c1)
        a_rows = a_perm.permute(0, 2, 1)  # [i, k, j] = A_k[i, j]
        w = weights[c0:c1]
        e_sum = x.new_zeros(d, k)  # sum_q dL/d(dd_iqk)
        a_acc = x.new_zeros(d, k, d)  # sum_q dL/d(dd_iqk) x_qj
        step = _chunk_rows(k, d, chunk_size, max_elements)
        for s, e in _spans(x0, x1, step):
            xs = x[s:e] - shift
            dd, phi = _phi(xs, a_perm, neg_ca)
            go = grad_out[s:e]
            if gw is not None:
                gw[c0:c1] += phi.T @ go
            nsphi = (go @ w.T).mul_(phi).neg_()  # -dL/dphi * phi, (q, K)
            edd = dd.mul_(nsphi)  # dL/d(dd), (D, q, K), in place of dd
            if gx is not None:
                gx[s:e] = torch.bmm(edd, a_rows).sum(0)
            e_sum += edd.sum(1)
            if ga is not None:
                a_acc += torch.bmm(edd.transpose(1, 2), xs.expand(d, -1, -1))
        if gc is not None:
            gc[c0:c1] = -torch.einsum("ik,ikj->kj", e_sum, a_rows)
        if ga is not None:
            ga[c0:c1] = a_acc.permute(1, 0, 2) - e_sum.T.unsqueeze(-1) * cs.unsqueeze(1)
    return gx, gc, ga, gw
