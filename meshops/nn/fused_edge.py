"""The MeshGraphNet edge update and its aggregation as one autograd function (training fast path).

``e' = e + LayerNorm(W_2 silu(W_e e + P[src, :H] + P[dst, H:]) + b_2)`` and ``m = sum_{e -> i} e'``,
where ``P = x [W_s; W_d]^T + [b; 0]`` holds both node projections of the first edge layer.

Same weights, same arithmetic as the layer-by-layer autograd version (``Linear -> SiLU -> Linear
-> LayerNorm``), with fewer passes over the (E, H) edge tensors and fewer fresh (E, H) buffers
(each fresh buffer is page-faulted in by the OS: on CPU that costs about as much as the pass):

- both gathers in one ``embedding_bag`` (rows ``2 src`` and ``2 dst + 1`` of ``P`` viewed as
  (2N, H)), added in place to ``W_e e``;
- the (rows, H) x (H, H) products of a chunk through :func:`_linear` (oneDNN's matmul in float32
  on CPU, ~15 % faster than MKL's there), the weight gradients through ``addmm_``;
- the residual added into the LayerNorm output in place (its backward needs only the input);
- backward by hand, chunk by chunk: the residual and the aggregation's gradient summed into the
  output buffer that the first layer's input gradient is then added into, the SiLU
  gradient in place, the activation recomputed in cache instead of stored, and the first layer's
  bias gradient left to the N-row projection ``P`` (no reduction over the edges).

Intermediates are kept per chunk (small buffers the allocator recycles, never copied);
double backward (gradients of gradients) is not supported.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["fused_edge_update", "fused_mlp", "fusable", "edge_update_inplace"]


def fusable(mlp: nn.Module) -> bool:
    """Whether an edge MLP is ``Linear -> SiLU -> Linear -> LayerNorm`` (the MeshGraphNet default)."""
    net = getattr(mlp, "net", None)
    if net is None or len(net) != 4:
        return False
    kinds = (nn.Linear, nn.SiLU, nn.Linear, nn.LayerNorm)
    return all(type(m) is k for m, k in zip(net, kinds, strict=True)) and net[3].elementwise_affine


def _onednn_linear() -> Any:
    try:
        op = torch.ops.mkldnn._linear_pointwise  # Inductor's CPU linear: oneDNN's matmul
    except (AttributeError, RuntimeError):
        return None
    if not torch.backends.mkldnn.is_available():
        return None
    # a private op: its signature may change between PyTorch versions; use it only if it still
    # computes x @ w.T + b here (checked once on random inputs)
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(s, generator=g) for s in ((5, 7), (3, 7), (3,)))
    try:
        ok = torch.allclose(op(x, w, b, "none", [], ""), F.linear(x, w, b), rtol=1e-4, atol=1e-5)
    except (RuntimeError, TypeError):
        return None
    return op if ok else None


_ONEDNN = _onednn_linear()


def _linear(x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """``x @ w.T + b``. Float32 on CPU goes to oneDNN's matmul where PyTorch ships it: at the
    (4096, 128) x (128, 128) shapes of a chunk it is ~15 % faster than MKL's sgemm (``F.linear``) on
    the AMD cores measured (MKL takes a slower path on non-Intel CPUs); the sums are the same up to
    rounding order. Everything else (float64, CUDA, no oneDNN, ``torch.backends.mkldnn`` off) is
    ``F.linear``.

    Shapes
    ------
    x : (n, K) contiguous; w : (M, K) contiguous; b : (M,) -> (n, M)
    """
    if (_ONEDNN is not None and x.dtype == torch.float32 and x.device.type == "cpu" and torch.backends.mkldnn.enabled
            and x.is_contiguous() and w.is_contiguous()):
        return _ONEDNN(x, w, b, "none", [], "")
    return F.linear(x, w, b)


#: Edge rows per chunk: a chunk's (rows, H) temporaries stay in the core's L2 cache between ops.
CHUNK_ROWS = 4096


def _chunks(n: int):
    return ((a, min(n, a + CHUNK_ROWS)) for a in range(0, n, CHUNK_ROWS))


def _forward(e: Tensor, p2: Tensor, pair: Tensor, dst: Tensor, w_e: Tensor, w_2: Tensor, b_2: Tensor,
             ln_w: Tensor, ln_b: Tensor, eps: float) -> tuple[Tensor, Tensor, list]:
    """Chunk by chunk: out, m (sum at dst) and per chunk (y1 pre-activation, y2 LayerNorm input, mean, rstd).

    The per-chunk tensors are small fresh buffers the allocator reuses (no page faults, no copies).
    """
    n_e, h = e.shape
    out = e.new_empty(n_e, h)
    m = e.new_zeros(p2.shape[0] // 2, h)
    w_e = w_e.contiguous()
    saved = []
    for a, b in _chunks(n_e):
        y1 = _linear(e[a:b], w_e)
        y1 += F.embedding_bag(pair[a:b], p2, mode="sum")
        y2 = _linear(F.silu(y1), w_2, b_2)
        o, mean, rstd = torch.native_layer_norm(y2, [h], ln_w, ln_b, eps)
        m.index_add_(0, dst[a:b], torch.add(o, e[a:b], out=out[a:b]))
        saved.append((y1, y2, mean, rstd))
    return out, m, saved


class _FusedEdge(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, e: Tensor, proj: Tensor, pair: Tensor, dst: Tensor, w_e: Tensor, w_2: Tensor,
                b_2: Tensor, ln_w: Tensor, ln_b: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        n, h = proj.shape[0], e.shape[1]
        out, m, saved = _forward(e, proj.reshape(2 * n, h), pair, dst, w_e, w_2, b_2, ln_w, ln_b, eps)
        ctx.save_for_backward(e, pair, dst, w_e, w_2, b_2, ln_w, ln_b)
        ctx.inner = saved  # intermediates (never modified, so no version check is needed)
        ctx.n = n
        ctx.set_materialize_grads(False)
        return out, m

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g_out: Tensor | None, g_m: Tensor | None):  # type: ignore[override]
        e, pair, dst, w_e, w_2, b_2, ln_w, ln_b = ctx.saved_tensors
        if g_out is None and g_m is None:
            return (None,) * 10
        h = e.shape[1]
        g_w2, g_we = torch.zeros_like(w_2), torch.zeros_like(w_e)
        g_b2, g_lnw, g_lnb = torch.zeros_like(b_2), torch.zeros_like(ln_w), torch.zeros_like(ln_b)
        g_proj = e.new_zeros(2 * ctx.n, h)
        g_e = torch.empty_like(e)
        mask = [True, True, True]
        w_2t, w_et = w_2.t().contiguous(), w_e.t().contiguous()
        for (a, b), (y1, y2, mean, rstd) in zip(_chunks(e.shape[0]), ctx.inner, strict=True):
            g = g_e[a:b]
            if g_m is not None:
                torch.index_select(g_m, 0, dst[a:b], out=g)
                if g_out is not None:
                    g += g_out[a:b]
            else:
                g.copy_(g_out[a:b])
            g_y2, gw, gb = torch.ops.aten.native_layer_norm_backward(g, y2, [h], mean, rstd, ln_w, ln_b, mask)
            g_lnw += gw
            g_lnb += gb
            g_w2.addmm_(g_y2.t(), F.silu(y1))  # the activation recomputed in cache, never stored
            g_b2 += g_y2.sum(0)
            g_y1 = torch.ops.aten.silu_backward.grad_input(_linear(g_y2, w_2t), y1, grad_input=g_y2)
            g_we.addmm_(g_y1.t(), e[a:b])
            g_proj.index_add_(0, pair[a:b, 0], g_y1)
            g_proj.index_add_(0, pair[a:b, 1], g_y1)
            g += _linear(g_y1, w_et)  # e's gradient: the residual's plus the first layer's
        return g_e, g_proj.view(ctx.n, 2 * h), None, None, g_we, g_w2, g_b2, g_lnw, g_lnb, None


def fused_edge_update(mlp: nn.Module, e: Tensor, proj: Tensor, src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
    """``(e', m)``: the residual edge update of ``mlp`` (see :func:`fusable`) and its sum at ``dst``.

    Parameters
    ----------
    mlp : the edge MLP; ``mlp.net[0].weight[:, :H]`` multiplies ``e``
    proj : both node projections side by side, bias included in the first half

    Shapes
    ------
    e : (E, H); proj : (N, 2H); src, dst : (E,) int64 -> ((E, H), (N, H))
    """
    lin1, _, lin2, ln = mlp.net
    h = e.shape[1]
    pair = torch.stack([2 * src, 2 * dst + 1], dim=1)
    return _FusedEdge.apply(e, proj, pair, dst, lin1.weight[:, :h], lin2.weight, lin2.bias, ln.weight, ln.bias,
                            float(ln.eps))


@torch.no_grad()
def edge_update_inplace(mlp: nn.Module, e: Tensor, proj: Tensor, src: Tensor, dst: Tensor) -> Tensor:
    """Inference: ``e`` overwritten by ``e'`` chunk by chunk; returns ``m`` (the sum at ``dst``).

    Holds only (chunk, H) temporaries besides ``e``, ``proj`` and ``m``.

    Shapes
    ------
    e : (E, H), updated in place; proj : (N, 2H); src, dst : (E,) -> (N, H)
    """
    lin1, _, lin2, ln = mlp.net
    n_e, h = e.shape
    p2 = proj.reshape(-1, h)
    w_et, w_2t = lin1.weight[:, :h].t(), lin2.weight.t()
    m = e.new_zeros(proj.shape[0], h)
    for a, b in _chunks(n_e):
        y = p2.index_select(0, 2 * src[a:b])
        y += p2.index_select(0, 2 * dst[a:b] + 1)
        y.addmm_(e[a:b], w_et)
        o = F.layer_norm(torch.addmm(lin2.bias, F.silu(y, inplace=True), w_2t), [h], ln.weight, ln.bias, ln.eps)
        m.index_add_(0, dst[a:b], e[a:b].add_(o))
    return m


class _FusedMLP(torch.autograd.Function):
    """``LayerNorm(W_2 silu(W_1 x + b_1) + b_2)`` chunk by chunk; the pre-activation is kept only when
    recomputing it would cost a real matmul (``x`` wider than 16)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w_1: Tensor, b_1: Tensor, w_2: Tensor, b_2: Tensor, ln_w: Tensor, ln_b: Tensor,
                eps: float) -> Tensor:
        n, h = x.shape[0], w_2.shape[0]
        keep = x.shape[1] > 16
        out = x.new_empty(n, h)
        saved = []
        for a, b in _chunks(n):
            y1 = _linear(x[a:b], w_1, b_1)
            y2 = _linear(F.silu(y1), w_2, b_2)
            o, mean, rstd = torch.native_layer_norm(y2, [h], ln_w, ln_b, eps)
            out[a:b] = o
            saved.append((y1 if keep else None, y2, mean, rstd))
        ctx.save_for_backward(x, w_1, b_1, w_2, ln_w, ln_b)
        ctx.inner = saved
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g: Tensor):  # type: ignore[override]
        x, w_1, b_1, w_2, ln_w, ln_b = ctx.saved_tensors
        h = w_2.shape[0]
        g_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        narrow = x.shape[1] <= 16  # (H, C) += (H, rows) (rows, C) is ~8x slower in MKL than its transpose
        g_w1 = x.new_zeros(x.shape[1], h) if narrow else torch.zeros_like(w_1)
        g_b1, g_w2 = torch.zeros_like(b_1), torch.zeros_like(w_2)
        g_b2, g_lnw, g_lnb = x.new_zeros(h), torch.zeros_like(ln_w), torch.zeros_like(ln_b)
        w_2t = w_2.t().contiguous()
        for (a, b), (y1, y2, mean, rstd) in zip(_chunks(x.shape[0]), ctx.inner, strict=True):
            g_y2, gw, gb = torch.ops.aten.native_layer_norm_backward(g[a:b], y2, [h], mean, rstd,
                                                                     ln_w, ln_b, [True, True, True])
            g_lnw += gw
            g_lnb += gb
            y = y1 if y1 is not None else _linear(x[a:b], w_1, b_1)
            g_w2.addmm_(g_y2.t(), F.silu(y))
            g_b2 += g_y2.sum(0)
            g_y1 = torch.ops.aten.silu_backward.grad_input(_linear(g_y2, w_2t), y, grad_input=g_y2)
            if narrow:
                g_w1.addmm_(x[a:b].t(), g_y1)
            else:
                g_w1.addmm_(g_y1.t(), x[a:b])
            g_b1 += g_y1.sum(0)
            if g_x is not None:
                torch.mm(g_y1, w_1, out=g_x[a:b])
        return g_x, g_w1.t() if narrow else g_w1, g_b1, g_w2, g_b2, g_lnw, g_lnb, None


def fused_mlp(mlp: nn.Module, x: Tensor) -> Tensor:
    """``mlp(x)`` for a :func:`fusable` MLP, chunked (same weights and arithmetic, fewer (n, H) buffers).

    Shapes
    ------
    x : (n, C) -> (n, H)
    """
    lin1, _, lin2, ln = mlp.net
    return _FusedMLP.apply(x, lin1.weight, lin1.bias, lin2.weight, lin2.bias, ln.weight, ln.bias, float(ln.eps))
