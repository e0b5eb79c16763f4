"""meshops.nn: layers tested by properties (equivariance, exact reductions, brute-force neighbors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meshops.nn import MLP, EdgeNodeBlock, GNOKernelIntegral, prolong, radius_pairs, restrict

torch.set_num_threads(1)


def test_mlp_shapes_and_bad_activation():
    m = MLP(3, 5, hidden=8, n_layers=3)
    assert m(torch.randn(7, 3)).shape == (7, 5)
    # LayerNorm at the end: zero mean, unit variance per row
    y = m(torch.randn(4, 3))
    assert torch.allclose(y.mean(-1), torch.zeros(4), atol=1e-5)
    with pytest.raises(ValueError, match="activation 'tanhh'"):
        MLP(3, 5, activation="tanhh")
    with pytest.raises(ValueError, match="n_layers must be >= 1, got 0"):
        MLP(3, 5, n_layers=0)


def test_edge_node_block_is_permutation_equivariant():
    torch.manual_seed(0)
    n, e, h = 20, 60, 8
    x, ea = torch.randn(n, h), torch.randn(e, h)
    ei = torch.randint(0, n, (2, e))
    blk = EdgeNodeBlock(h)
    x1, e1 = blk(x, ea, ei)
    perm = torch.randperm(n)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    x2, e2 = blk(x[perm], ea, inv[ei])
    assert torch.allclose(x2, x1[perm], atol=1e-5)
    assert torch.allclose(e2, e1, atol=1e-5)
    # an isolated node only sees itself: changing another node's features leaves it alone
    iso = torch.tensor([[0], [1]])
    xa, _ = blk(x[:3], ea[:1], iso)
    xb = x[:3].clone()
    xb[0] += 1.0
    xc, _ = blk(xb, ea[:1], iso)
    assert torch.allclose(xa[2], xc[2]) and not torch.allclose(xa[1], xc[1])


def test_restrict_and_prolong_are_weighted_mean_and_sum():
    h = torch.tensor([[1.0], [3.0], [5.0], [7.0]])
    down = torch.tensor([[0, 1, 2, 3, 1], [0, 0, 1, 1, 1]])
    w = torch.tensor([1.0, 3.0, 1.0, 1.0, 2.0])
    r = restrict(h, down, w, 2)
    assert torch.allclose(r[:, 0], torch.tensor([(1 + 9) / 4, (5 + 7 + 6) / 4]))
    # interpolation weights summing to one reproduce constants exactly
    up = torch.tensor([[0, 1, 0, 1, 1], [0, 0, 1, 2, 3]])
    uw = torch.tensor([0.25, 0.75, 1.0, 1.0, 1.0])
    c = torch.full((2, 3), 2.5)
    assert torch.allclose(prolong(c, up, uw, 4), torch.full((4, 3), 2.5))


def test_radius_pairs_match_brute_force_and_respect_batches():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(200, 3, generator=g), torch.rand(50, 3, generator=g)
    bx, by = (torch.arange(200) % 2), (torch.arange(50) % 2)
    pairs = radius_pairs(x, y, 0.2, bx, by, ensure_one=False)
    d = np.linalg.norm(y.numpy()[:, None] - x.numpy()[None], axis=-1)
    want = {(int(s), int(q)) for q, s in zip(*np.nonzero((d <= 0.2) & (by.numpy()[:, None] == bx.numpy()[None])), strict=False)}
    got = {(int(s), int(q)) for s, q in pairs.T}
    assert got == want and len(want) > 50
    # a far query gets its nearest source with ensure_one
    far = torch.tensor([[5.0, 5.0, 5.0]])
    p = radius_pairs(x, far, 0.1)
    assert p.shape == (2, 1) and int(p[0, 0]) == int(torch.cdist(far, x).argmin())
    # max_neighbors keeps the nearest ones
    pk = radius_pairs(x, y[:1], 10.0, max_neighbors=5)
    assert set(pk[0].tolist()) == set(torch.cdist(y[:1], x)[0].topk(5, largest=False).indices.tolist())


def test_gno_is_the_mean_of_kernel_times_values():
    torch.manual_seed(0)
    layer = GNOKernelIntegral(4, 6, pos_dim=3, hidden=8)
    sp, sf, qp = torch.rand(10, 3), torch.randn(10, 4), torch.rand(3, 3)
    pairs = torch.tensor([[0, 1, 2, 5, 9], [0, 0, 1, 1, 2]])
    out = layer(sp, sf, qp, pairs)
    for q in range(3):
        srcs = pairs[0][pairs[1] == q]
        k = layer.kernel_mlp(torch.cat([sp[srcs], qp[q].expand(len(srcs), 3), sp[srcs] - qp[q]], -1))
        want = (k * layer.value(sf[srcs])).mean(0)
        assert torch.allclose(out[q], want, atol=1e-6)
