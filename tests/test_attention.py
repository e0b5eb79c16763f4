"""Physics attention (Transolver): permutation equivariance, mixed-size batches, slices, the model."""

from __future__ import annotations

import pytest
import torch

from meshops.nn.attention import PhysicsAttention, Transolver, TransolverBlock


def test_physics_attention_permutation_equivariant():
    torch.manual_seed(0)
    pa = PhysicsAttention(16, heads=4, slices=8).double()
    x = torch.randn(50, 16, dtype=torch.float64)
    perm = torch.randperm(50)
    out, w = pa(x, return_slices=True)
    out_p = pa(x[perm])
    torch.testing.assert_close(out_p, out[perm])
    assert w.shape == (50, 4, 8)
    torch.testing.assert_close(w.sum(-1), torch.ones(50, 4, dtype=torch.float64))


def test_physics_attention_mixed_size_batch_and_unsorted_batch():
    torch.manual_seed(1)
    blk = TransolverBlock(8, heads=2, slices=4).double()
    a, b, c = (torch.randn(n, 8, dtype=torch.float64) for n in (7, 30, 1))
    x = torch.cat([a, b, c])
    batch = torch.cat([torch.full((7,), 0), torch.full((30,), 1), torch.full((1,), 2)])
    out = blk(x, batch)
    ref = torch.cat([blk(a), blk(b), blk(c)])
    torch.testing.assert_close(out, ref)
    # nodes of the graphs interleaved (batch not sorted): same per-node result
    perm = torch.randperm(38)
    torch.testing.assert_close(blk(x[perm], batch[perm]), out[perm])


def test_tokens_are_per_graph():
    """Changing one graph of a batch leaves the other graph's output unchanged."""
    torch.manual_seed(2)
    pa = PhysicsAttention(8, heads=2, slices=4)
    x = torch.randn(20, 8)
    batch = torch.tensor([0] * 12 + [1] * 8)
    out1 = pa(x, batch)
    x2 = x.clone()
    x2[12:] += 5.0
    out2 = pa(x2, batch)
    torch.testing.assert_close(out1[:12], out2[:12])
    assert not torch.allclose(out1[12:], out2[12:])


def test_transolver_trains_on_a_smooth_field():
    """A tiny Transolver fits u = sin(pi x) y on random points (loss drops 5x in 150 steps)."""
    torch.manual_seed(0)
    net = Transolver(2, 1, hidden=16, n_layers=2, heads=2, slices=8)
    p = torch.rand(128, 2)
    y = torch.sin(torch.pi * p[:, :1]) * p[:, 1:]
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = (net(p) - y).square().mean()
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < first / 5


def test_bad_inputs():
    with pytest.raises(ValueError, match="divisible by heads"):
        PhysicsAttention(10, heads=4)
    pa = PhysicsAttention(8, heads=2, slices=4)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 8\), got \(5, 7\)"):
        pa(torch.randn(5, 7))
    with pytest.raises(ValueError, match=r"batch must have shape \(5,\)"):
        pa(torch.randn(5, 8), torch.zeros(4, dtype=torch.long))
