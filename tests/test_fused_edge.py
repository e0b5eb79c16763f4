"""The fused MeshGraphNet edge update (training fast path) equals the layer-by-layer autograd version."""

from __future__ import annotations

import pytest
import torch

from meshops import models
from meshops.nn.fused_edge import fusable
from meshops.nn.message_passing import EdgeNodeBlock


def _graph(n: int = 40, e: int = 200, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src, dst = torch.randint(0, n, (e,), generator=g), torch.randint(0, n, (e,), generator=g)
    dst[:5] = n - 1  # a node with many in-edges; some nodes get none
    return torch.stack([src, dst])


def _grads(block, x, e, ei):
    x, e = x.clone().requires_grad_(), e.clone().requires_grad_()
    xo, eo = block(x, e, ei)
    ((xo * torch.linspace(-1, 1, xo.numel(), dtype=xo.dtype).view_as(xo)).sum() + eo.pow(2).sum()).backward()
    out = [xo.detach(), eo.detach(), x.grad, e.grad] + [p.grad.clone() for p in block.parameters()]
    block.zero_grad()
    return out


@pytest.mark.parametrize("aggregate", ["sum", "mean"])
def test_fused_block_equals_autograd_block(aggregate):
    torch.manual_seed(0)
    block = EdgeNodeBlock(16, aggregate).double()
    assert fusable(block.edge_mlp)
    ei = _graph()
    x, e = torch.randn(40, 16, dtype=torch.float64), torch.randn(200, 16, dtype=torch.float64)
    fused = _grads(block, x, e, ei)
    block.fused = False
    plain = _grads(block, x, e, ei)
    for a, b in zip(fused, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_fused_block_gradcheck_and_only_edge_or_node_output_used():
    torch.manual_seed(1)
    block = EdgeNodeBlock(4).double()
    ei = _graph(7, 20)
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    e = torch.randn(20, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, e: block(x, e, ei), (x, e))
    assert torch.autograd.gradcheck(lambda x, e: block(x, e, ei)[0], (x, e))  # the last block: e' unused
    assert torch.autograd.gradcheck(lambda x, e: block(x, e, ei)[1], (x, e))


def test_fused_backward_twice_gives_the_same_gradient():
    block = EdgeNodeBlock(8).double()
    ei = _graph(10, 30)
    x = torch.randn(10, 8, dtype=torch.float64, requires_grad=True)
    e = torch.randn(30, 8, dtype=torch.float64, requires_grad=True)
    xo, eo = block(x, e, ei)
    loss = xo.pow(2).sum() + eo.sum()
    first = torch.autograd.grad(loss, [x, e], retain_graph=True)
    second = torch.autograd.grad(loss, [x, e])
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_mgn_training_step_fused_equals_plain_and_float32_close():
    torch.manual_seed(2)
    from torch_geometric.data import Data

    ei = _graph(60, 400)
    d = Data(x=torch.randn(60, 3), edge_index=ei, edge_attr=torch.randn(400, 4), num_nodes=60)
    m = models.create("mgn", in_channels=3, out_channels=2, hidden=32, n_blocks=3)
    res = []
    for fused in (True, False):
        for b in m.net.processor.blocks:
            b.fused = fused
        m.zero_grad()
        y = m(d)
        y.pow(2).mean().backward()
        res.append([y.detach()] + [p.grad.clone() for p in m.parameters()])
    for a, b in zip(*res, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("aggregate", ["sum", "mean"])
def test_inplace_inference_equals_plain_chunked_path(aggregate):
    torch.manual_seed(3)
    block = EdgeNodeBlock(16, aggregate).double()
    ei = _graph(50, 300)
    x, e = torch.randn(50, 16, dtype=torch.float64), torch.randn(300, 16, dtype=torch.float64)
    with torch.no_grad():
        e0 = e.clone()
        xf, ef = block(x, e, ei)
        assert torch.equal(e, e0)  # inplace=False leaves the input alone
        block.fused = False
        xp, ep = block(x, e, ei)
        block.fused = True
        xi, ei_ = block(x, e, ei, inplace=True)
    torch.testing.assert_close(xf, xp, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ef, ep, rtol=1e-10, atol=1e-10)
    assert ei_ is e and torch.equal(xi, xf)


@pytest.mark.parametrize("width", [4, 40])
def test_fused_mlp_equals_the_module(width):
    from meshops.nn.fused_edge import fused_mlp
    from meshops.nn.mlp import MLP

    torch.manual_seed(4)
    mlp = MLP(width, 12, 12).double()
    x = torch.randn(9000, width, dtype=torch.float64, requires_grad=True)  # more than one chunk
    w = torch.randn(9000, 12, dtype=torch.float64)
    outs = []
    for f in (fused_mlp, lambda m, v: m(v)):
        x.grad = None
        mlp.zero_grad()
        y = f(mlp, x)
        (y * w).sum().backward()
        outs.append([y.detach(), x.grad.clone()] + [p.grad.clone() for p in mlp.parameters()])
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    small = torch.randn(5, width, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: fused_mlp(mlp, v), (small,))


def test_linear_fast_path_equals_f_linear():
    from meshops.nn.fused_edge import _linear

    torch.manual_seed(5)
    x, w, b = torch.randn(300, 40), torch.randn(24, 40), torch.randn(24)
    for bias in (b, None):
        ref = torch.nn.functional.linear(x.double(), w.double(), None if bias is None else bias.double())
        torch.testing.assert_close(_linear(x, w, bias).double(), ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(_linear(x.t().contiguous().t(), w, bias).double(), ref, rtol=1e-5, atol=1e-5)
        x64, w64 = x.double(), w.double()
        assert torch.equal(_linear(x64, w64), torch.nn.functional.linear(x64, w64))  # float64: F.linear itself


def test_fused_block_float32_several_chunks_as_accurate_as_plain_float32():
    """The float32 fast path (oneDNN products, chunked sums) is as close to float64 as plain float32 autograd."""
    torch.manual_seed(6)
    block = EdgeNodeBlock(16)
    ei = _graph(300, 9000)  # three chunks of edges
    x, e = torch.randn(300, 16), torch.randn(9000, 16)
    fast = _grads(block, x, e, ei)
    block.fused = False
    plain = _grads(block, x, e, ei)
    block.double()
    ref = _grads(block, x.double(), e.double(), ei)
    for f, p, r in zip(fast, plain, ref, strict=True):
        err_fast, err_plain = (f.double() - r).abs().max(), (p.double() - r).abs().max()
        assert err_fast <= 4 * err_plain + 1e-6 * r.abs().max(), (err_fast, err_plain)
