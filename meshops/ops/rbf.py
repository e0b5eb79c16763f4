"""Anisotropic Gaussian radial basis functions evaluated at query points.

For query points ``x_q`` and centers ``c_k`` with precision factors ``A_k`` (so that the inverse
covariance is ``A_k^T A_k``) and amplitudes ``w_k``::

    f(x_q) = sum_k  w_k * exp(-0.5 * |A_k (x_q - c_k)|^2)

The sum runs over the centers of the query's own group (one group per case of a batch): queries
``x[x_ptr[g]:x_ptr[g+1]]`` see only centers ``centers[c_ptr[g]:c_ptr[g+1]]``. This is what the
anisotropic RBF decoder of :mod:`meshops.nn.rbf` evaluates at wall points.

Memory is bounded: queries are processed in chunks so that no temporary exceeds ``max_elements``
numbers (a 1e6-point wall with 1024 centers needs a few MB of temporaries), in the forward *and* the
backward pass (a custom autograd function recomputes each chunk instead of storing the (Q, K)
kernel matrix). Every input gets a gradient: query points, centers, precision factors and
amplitudes.

Numerics: each group is shifted by the mean of its centers before evaluation (the result does
not change, the rounding error of ``A (x - c)`` shrinks when coordinates are far from the
origin). float16 / bfloat16 inputs are evaluated in float32 and the result cast back.

This module imports torch only (the ``ops`` layering rule).
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

# The constants, chunking and chunked torch math live in _rbf_common, which the Triton kernel imports
# too (so neither imports the other); the constants stay importable from here.
from meshops.ops._rbf_common import DEFAULT_MAX_ELEMENTS, rbf_backward, rbf_forward
from meshops.ops._rbf_common import PHI_MIN as PHI_MIN
from meshops.ops._rbf_common import R2_CUT as R2_CUT

__all__ = ["rbf_eval", "rbf_eval_dense", "group_ptr"]

log = logging.getLogger(__name__)

def group_ptr(batch: Tensor | None, n: int, num_groups: int | None = None) -> Tensor:
    """CSR pointer of a sorted group-id vector.

    Parameters
    ----------
    batch : (n,) int tensor, sorted (non-decreasing) group ids, or None for a single group.
    n : number of rows.
    num_groups : number of groups (default: ``batch.max() + 1``).

    Returns
    -------
    ptr : (num_groups + 1,) int64, ``ptr[g]:ptr[g+1]`` are the rows of group ``g``.
    """
    if batch is None:
        return torch.tensor([0, n], dtype=torch.long)
    if batch.dim() != 1 or batch.shape[0] != n:
        raise ValueError(f"group_ptr: batch has shape {tuple(batch.shape)}, expected ({n},)")
    if n and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("group_ptr: batch must be sorted (non-decreasing) group ids")
    if num_groups is None:
        num_groups = int(batch.max()) + 1 if n else 0
    counts = torch.bincount(batch.long().cpu(), minlength=num_groups)
    ptr = torch.zeros(num_groups + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(counts, 0)
    return ptr


def _check(
    x: Tensor, centers: Tensor, precision: Tensor, weights: Tensor, x_ptr: Tensor | None, c_ptr: Tensor | None
) -> tuple[list[int], list[int]]:
    for name, t in (("x", x), ("centers", centers), ("precision", precision), ("weights", weights)):
        if not isinstance(t, Tensor):
            raise TypeError(f"rbf_eval: {name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"rbf_eval: {name} must be floating point, got dtype {t.dtype}")
    if x.dim() != 2:
        raise ValueError(f"rbf_eval: x has shape {tuple(x.shape)}, expected (Q, D)")
    d = x.shape[1]
    if centers.dim() != 2 or centers.shape[1] != d:
        raise ValueError(f"rbf_eval: centers has shape {tuple(centers.shape)}, expected (M, {d})")
    m = centers.shape[0]
    if precision.shape != (m, d, d):
        raise ValueError(f"rbf_eval: precision has shape {tuple(precision.shape)}, expected ({m}, {d}, {d})")
    if weights.dim() != 2 or weights.shape[0] != m:
        raise ValueError(f"rbf_eval: weights has shape {tuple(weights.shape)}, expected ({m}, C)")
    dtypes = {x.dtype, centers.dtype, precision.dtype, weights.dtype}
    if len(dtypes) != 1:
        raise TypeError(f"rbf_eval: x, centers, precision, weights must share one dtype, got {sorted(map(str, dtypes))}")
    devs = {x.device, centers.device, precision.device, weights.device}
    if len(devs) != 1:
        raise ValueError(f"rbf_eval: inputs are on different devices {sorted(map(str, devs))}")
    if (x_ptr is None) != (c_ptr is None):
        raise ValueError("rbf_eval: give both x_ptr and c_ptr (one group per case) or neither")
    if x_ptr is None or c_ptr is None:
        return [0, x.shape[0]], [0, m]
    xp = [int(v) for v in x_ptr.tolist()]
    cp = [int(v) for v in c_ptr.tolist()]
    if len(xp) != len(cp) or len(xp) < 2:
        raise ValueError(f"rbf_eval: x_ptr has {len(xp)} entries and c_ptr {len(cp)}; both need B+1 >= 2 entries")
    for name, p, total in (("x_ptr", xp, x.shape[0]), ("c_ptr", cp, m)):
        if p[0] != 0 or p[-1] != total:
            raise ValueError(f"rbf_eval: {name} must start at 0 and end at {total}, got {p[0]}..{p[-1]}")
        if any(b < a for a, b in zip(p[:-1], p[1:], strict=False)):
            raise ValueError(f"rbf_eval: {name} is not non-decreasing: {p}")
    return xp, cp


class _RBFEval(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, centers, precision, weights, xp, cp, chunk_size, max_elements):  # type: ignore[override]
        out = rbf_forward(x, centers, precision, weights, xp, cp, chunk_size, max_elements)
        ctx.save_for_backward(x, centers, precision, weights)
        ctx.groups = (xp, cp, chunk_size, max_elements)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        x, centers, precision, weights = ctx.saved_tensors
        xp, cp, chunk_size, max_elements = ctx.groups
        grads = rbf_backward(grad_out, x, centers, precision, weights, xp, cp, ctx.needs_input_grad[:4], chunk_size, max_elements)
        return (*grads, None, None, None, None)


def rbf_eval(
    x: Tensor,
    centers: Tensor,
    precision: Tensor,
    weights: Tensor,
    x_ptr: Tensor | None = None,
    c_ptr: Tensor | None = None,
    *,
    chunk_size: int | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    impl: str = "auto",
) -> Tensor:
    """Sum of anisotropic Gaussians at query points, chunked, with autograd.

    ``out[q] = sum_k weights[k] * exp(-0.5 * |precision[k] @ (x[q] - centers[k])|^2)`` where ``k``
    runs over the centers of the query's group. Pairs whose kernel value is below ~3e-22 (squared
    Mahalanobis distance above ~99) contribute exactly 0 (see ``R2_CUT``).

    Parameters
    ----------
    x : query points.
    centers : Gaussian centers.
    precision : precision factors ``A_k``; the inverse covariance is ``A_k^T A_k`` (e.g.
        ``diag(1/sigma) R^T`` for a covariance ``R diag(sigma^2) R^T``).
    weights : amplitudes, one per center and output channel.
    x_ptr, c_ptr : CSR pointers of the groups (cases): queries ``x_ptr[g]:x_ptr[g+1]`` see the
        centers ``c_ptr[g]:c_ptr[g+1]``. Both None: one group.
    chunk_size : queries per chunk (default: chosen from ``max_elements``).
    max_elements : bound on the size of one ``(chunk, K, D)`` temporary.
    impl : ``"torch"`` (the chunked reference), ``"triton"`` (the fused kernel of
        :mod:`meshops.ops._rbf_triton`: CUDA, or CPU under ``TRITON_INTERPRET=1``; float32
        accumulation; backward by the chunked torch recomputation) or ``"auto"`` (Triton for
        CUDA float32/16 inputs with D = 3 when triton imports, else torch).

    Returns
    -------
    out : the field values at the query points.

    Shapes
    ------
    x (Q, D), centers (M, D), precision (M, D, D), weights (M, C), x_ptr / c_ptr (B+1,) int
    -> out (Q, C). All floating tensors share one dtype and device.

    Raises
    ------
    ValueError, TypeError
        on a shape, dtype, device or pointer mismatch; the message names the argument.
    """
    xp, cp = _check(x, centers, precision, weights, x_ptr, c_ptr)
    if max_elements < 1:
        raise ValueError(f"rbf_eval: max_elements must be >= 1, got {max_elements}")
    if impl not in ("auto", "torch", "triton"):
        raise ValueError(f"rbf_eval: impl must be 'auto', 'torch' or 'triton', got {impl!r}")
    dtype = x.dtype
    if dtype in (torch.float16, torch.bfloat16):
        x, centers, precision, weights = (t.float() for t in (x, centers, precision, weights))
    auto = impl == "auto"
    if auto:
        impl = "triton" if (x.is_cuda and x.dtype == torch.float32 and x.shape[1] == 3 and _triton_ok()) else "torch"
    if impl == "triton" and auto:
        try:
            return rbf_eval(x, centers, precision, weights, x_ptr, c_ptr, impl="triton").to(dtype)
        except Exception as e:  # pragma: no cover - a GPU/driver the kernel does not compile for
            global _TRITON_BROKEN
            if not _TRITON_BROKEN:
                log.warning("rbf_eval: the Triton kernel failed (%s); using the torch path from now on", e)
            _TRITON_BROKEN = True
            impl = "torch"
    if impl == "triton":
        if x.shape[1] != 3 or x.dtype != torch.float32:
            raise ValueError(f"rbf_eval: impl='triton' needs D = 3 and float32/16 inputs, got D = {x.shape[1]}, {dtype}")
        from meshops.ops._rbf_triton import rbf_eval_op

        xpt = torch.tensor(xp, dtype=torch.long)
        cpt = torch.tensor(cp, dtype=torch.long)
        return rbf_eval_op(x.contiguous(), centers.contiguous(), precision.contiguous(), weights.contiguous(), xpt, cpt).to(dtype)
    out = _RBFEval.apply(x, centers, precision, weights, xp, cp, chunk_size, max_elements)
    return out.to(dtype)


_TRITON_BROKEN = False


def _triton_ok() -> bool:
    if _TRITON_BROKEN:
        return False
    try:
        import triton  # noqa: F401
    except Exception:  # pragma: no cover - triton missing or broken
        return False
    return True


def rbf_eval_dense(
    x: Tensor,
    centers: Tensor,
    precision: Tensor,
    weights: Tensor,
    x_ptr: Tensor | None = None,
    c_ptr: Tensor | None = None,
) -> Tensor:
    """Unchunked plain-autograd evaluation of :func:`rbf_eval` (reference; O(Q K D) memory).

    Supports higher-order derivatives (``create_graph=True``), which :func:`rbf_eval` does not.

    Shapes
    ------
    x (Q, D), centers (M, D), precision (M, D, D), weights (M, C) -> out (Q, C).
    """
    xp, cp = _check(x, centers, precision, weights, x_ptr, c_ptr)
    outs = []
    for g in range(len(xp) - 1):
        xs, cs = x[xp[g] : xp[g + 1]], centers[cp[g] : cp[g + 1]]
        diff = xs[:, None, :] - cs[None, :, :]
        dd = torch.einsum("kij,qkj->qki", precision[cp[g] : cp[g + 1]], diff)
        phi = torch.exp(-0.5 * (dd * dd).sum(-1))
        outs.append(phi @ weights[cp[g] : cp[g + 1]])
    return torch.cat(outs, 0) if outs else x.new_zeros(0, weights.shape[1])
