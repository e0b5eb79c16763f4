# ruff: noqa: E741  (l is the spherical-harmonic degree, as in the literature)
"""Spherical operator layers and the sfno_graph model: equivariance, point-set independence, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from meshops.models import create
from meshops.nn.spherical import (
    SFNOBlock,
    SHEdgeEncoding,
    SpectralConvS2,
    SphereMessagePassing,
    SphericalConv,
)
from meshops.ops.sht import SHT, fibonacci_sphere, gauss_legendre_grid, icosphere, real_sph_harm

torch.set_num_threads(1)


def _rotation(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=g))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _z_rotation(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _equivariance_gap(layer, R: torch.Tensor, L_in: int = 6) -> float:
    """Apply ``layer`` to f o R^T on a Gauss grid X and to f on the rotated grid R^T X.

    Both see the same array of values; an equivariant layer gives the same output array.
    The quadrature of the rotated grid is exact for the same band-limited functions.
    """
    g = gauss_legendre_grid(16, 32)
    X = g.points
    s_a = SHT(X, 12, g.weights, name="grid")
    s_b = SHT(X @ R, 12, g.weights, name="rotated grid")  # rows R^T x_i
    torch.manual_seed(3)
    c = torch.randn((L_in + 1) ** 2, 4, dtype=torch.float64)
    vals = real_sph_harm(L_in, X @ R) @ c  # f(R^T x_i)
    out_a = layer(vals, s_a)
    out_b = layer(vals, s_b)
    return float((out_a - out_b).abs().max().detach() / out_a.abs().max().detach())


def test_degree_only_block_is_rotation_equivariant():
    torch.manual_seed(0)
    blk = SFNOBlock(4, lmax=12, mode="degree", inner_skip=True).double()
    for seed in (1, 2):
        assert _equivariance_gap(lambda v, s: blk(v, s), _rotation(seed)) < 1e-10


def test_lm_mode_equivariant_only_about_the_axis():
    torch.manual_seed(0)
    conv = SphericalConv(4, 4, lmax=12, mode="lm").double()
    assert _equivariance_gap(lambda v, s: conv(v, s), _z_rotation(0.7)) < 1e-10
    assert _equivariance_gap(lambda v, s: conv(v, s), _rotation(1)) > 1e-3
    # the degree mode passes the same general rotation (so the check can tell them apart)
    conv_d = SphericalConv(4, 4, lmax=12, mode="degree").double()
    assert _equivariance_gap(lambda v, s: conv_d(v, s), _rotation(1)) < 1e-10


def test_same_weights_on_grid_and_icosphere():
    """A spectral layer is point-set independent: grid and icosphere (least squares) agree."""
    torch.manual_seed(0)
    conv = SphericalConv(3, 2, lmax=8).double()
    g = gauss_legendre_grid(12, 24)
    p, _ = icosphere(3)
    s_grid, s_ico = SHT.from_grid(g, 8), SHT(p, 8, method="lsq")
    c = torch.randn(81, 3, dtype=torch.float64)
    out_grid = conv(s_grid.inverse(c), s_grid)
    out_ico = conv(s_ico.inverse(c), s_ico)
    # compare at the icosphere points: evaluate the grid output's expansion there
    torch.testing.assert_close(s_ico.inverse(s_grid(out_grid)), out_ico, atol=1e-10, rtol=0)
    # resampling: grid in, icosphere out
    torch.testing.assert_close(conv(s_grid.inverse(c), s_grid, s_ico), out_ico, atol=1e-10, rtol=0)


def test_gradcheck_layers_float64():
    torch.manual_seed(0)
    s = SHT(fibonacci_sphere(40), 3, method="lsq")
    for mode in ("degree", "lm"):
        conv = SphericalConv(2, 2, lmax=3, mode=mode).double()
        x = torch.randn(40, 2, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda v, conv=conv: conv(v, s), (x,))
    sc = SpectralConvS2(2, 3, lmax=2).double()
    c = torch.randn(9, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(sc, (c,))


def test_sh_edge_encoding_addition_theorem_and_zero_edges():
    enc = SHEdgeEncoding(3, with_length=True)
    v = torch.randn(20, 3, dtype=torch.float64)
    v[0] = 0.0
    e = enc(v)
    assert e.shape == (20, 17)
    torch.testing.assert_close(e[:, -1], v.norm(dim=-1))
    # sum_m Y_lm^2 = (2l + 1) / (4 pi): with the sqrt(4 pi) scaling, 2l + 1 for every direction
    for l in range(4):
        blk = e[1:, l * l : (l + 1) ** 2]
        torch.testing.assert_close((blk**2).sum(-1), torch.full((19,), 2.0 * l + 1, dtype=torch.float64))
    assert e[0, 0] == 1.0 and bool((e[0, 1:16] == 0).all())
    assert torch.isfinite(e).all()


def test_message_passing_mean_over_neighbours():
    torch.manual_seed(0)
    p, f = icosphere(1)
    e = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).T
    ei = torch.cat([e, e.flip(0)], 1).unique(dim=1)
    mp = SphereMessagePassing(5, sh_lmax=2).double()
    x = torch.randn(2, p.shape[0], 5, dtype=torch.float64)
    out = mp(x, ei, p)
    assert out.shape == x.shape
    # batched and unbatched agree
    torch.testing.assert_close(out[1], mp(x[1], ei, p))


def _data(pos, x, **kw):
    from torch_geometric.data import Data

    return Data(pos=pos.float(), x=x, **kw)


def test_sfno_graph_model_on_point_sets_and_batches():
    from torch_geometric.data import Batch

    torch.manual_seed(0)
    model = create("sfno_graph", in_channels=3, out_channels=2, hidden=8, layers=2, lmax=6, local=True)
    assert model.meshops_config["name"] == "sfno_graph"
    p, f = icosphere(2)
    e = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).T
    ei = torch.cat([e, e.flip(0)], 1).unique(dim=1)
    d_ico = _data(p, torch.randn(p.shape[0], 3), edge_index=ei, face=f.T.contiguous())
    q = fibonacci_sphere(100)
    ring = torch.stack([torch.arange(100), torch.arange(100).roll(1)])
    d_fib = _data(q, torch.randn(100, 3), edge_index=ring)  # no faces: least squares
    p1, f1 = icosphere(2)
    p1 = p1 @ _rotation(5)
    d_ico1 = _data(p1, torch.randn(p1.shape[0], 3), edge_index=torch.stack([f1[:, 0], f1[:, 1]]), face=f1.T.contiguous())
    out_ico = model(d_ico)
    out_ico1 = model(d_ico1)
    out_fib = model(d_fib)
    assert out_ico.shape == (p.shape[0], 2) and out_fib.shape == (100, 2)
    batch = Batch.from_data_list([d_ico, d_ico1])
    out = model(batch)
    torch.testing.assert_close(out, torch.cat([out_ico, out_ico1]), atol=1e-5, rtol=1e-5)
    # no weights are saved for the transforms
    assert all("basis" not in k and "analysis" not in k for k in model.state_dict())
    # the model learns: a few steps reduce the loss on a fixed target
    target = torch.sin(3 * d_ico.pos[:, :2])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(d_ico), target)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0]


def test_sfno_graph_bad_inputs():
    model = create("sfno_graph", in_channels=2, out_channels=2, hidden=4, layers=1, lmax=10)
    q = fibonacci_sphere(50)
    with pytest.raises(ValueError, match=r"L=10 is too large for 50 points"):
        model(_data(q, torch.randn(50, 2)))
    with pytest.raises(ValueError, match=r"not on the unit sphere: measured radius"):
        model(_data(q * 2, torch.randn(50, 2)))
    with pytest.raises(ValueError, match=r"expected 2 input channels, got 3"):
        model(_data(fibonacci_sphere(200), torch.randn(200, 3)))
    with pytest.raises(ValueError, match=r"pos_features must be"):
        create("sfno_graph", in_channels=2, out_channels=2, pos_features="lat")
    with pytest.raises(ValueError, match=r"needs data.edge_index"):
        create("sfno_graph", in_channels=2, out_channels=2, lmax=2, local=True)(_data(q, torch.randn(50, 2)))


def test_sfno_graph_internal_grid_and_local_branch():
    torch.manual_seed(0)
    p, f = icosphere(3)
    e = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).T
    ei = torch.cat([e, e.flip(0)], 1).unique(dim=1)
    model = create("sfno_graph", in_channels=3, out_channels=3, hidden=8, layers=3, lmax=6, internal=[8, 16],
                   local=True, residual=True, zero_init=True)  # fmt: skip
    d = _data(p, torch.randn(p.shape[0], 3), edge_index=ei, face=f.T.contiguous())
    # zero_init + residual: the untrained model is the identity (persistence)
    torch.testing.assert_close(model(d), d.x)
    torch.nn.init.normal_(model.decoder[-1].weight)
    out = model(d)
    assert out.shape == (p.shape[0], 3) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert model.local_in.msg[0].weight.grad is not None and model.blocks[1].spectral.conv.weight.grad is not None
    # the internal grid's transform is not saved
    assert not any(k.startswith("internal") for k in model.state_dict())
    with pytest.raises(ValueError, match=r"internal grid 6x16 is too coarse for lmax=6"):
        create("sfno_graph", in_channels=3, out_channels=3, lmax=6, internal=[6, 16])


def test_block_resampling_skip_keeps_band_limited_input():
    """With another output point set, the outer skip is the input resampled exactly."""
    torch.manual_seed(0)
    blk = SFNOBlock(2, lmax=5).double()
    for prm in list(blk.spectral.parameters()) + list(blk.mlp.parameters()):
        torch.nn.init.zeros_(prm)
    g = gauss_legendre_grid(8, 16)
    q = fibonacci_sphere(200)
    s_in, s_out = SHT.from_grid(g, 5), SHT(q, 5, method="lsq")
    c = torch.randn(36, 2, dtype=torch.float64)
    torch.testing.assert_close(blk(s_in.inverse(c), s_in, sht_out=s_out), s_out.inverse(c), atol=1e-12, rtol=0)


def test_rotating_linear_represents_coriolis_multiplication():
    """With A_1 = identity (or B_1 = identity) the rotating linear path is exactly x -> z x."""
    from meshops.models.sphere import RotatingLinear

    g = gauss_legendre_grid(12, 24)
    s = SHT.from_grid(g, 8)
    z = g.points[:, 2:3]
    c = torch.zeros(81, 2, dtype=torch.float64)
    c[:49] = torch.randn(49, 2, dtype=torch.float64)  # degree <= 6, so z x has degree <= 7
    x = s.inverse(c)
    for branch in ("a", "b"):
        lin = RotatingLinear(2, 2, lmax=8).double()
        conv = lin.a[1] if branch == "a" else lin.b[0]
        with torch.no_grad():
            conv.weight.copy_(torch.eye(2, dtype=torch.float64).expand_as(conv.weight))
        torch.testing.assert_close(lin(x, z, s), z * x, atol=1e-12, rtol=0)
    assert torch.count_nonzero(RotatingLinear(2, 2, lmax=3).double()(x, z, SHT.from_grid(g, 3))) == 0


def test_fit_linear_recovers_a_linear_spectral_operator():
    """Closed-form fit of the 'full' linear path: exact for data made by a linear spectral map."""
    torch.manual_seed(0)
    g = gauss_legendre_grid(8, 16)
    s = SHT.from_grid(g, 4)
    K, C = 25, 2
    M = 0.1 * torch.randn(K * C, K * C, dtype=torch.float64)
    c = torch.randn(200, K, C, dtype=torch.float64)
    x = s.inverse(c)
    y = x + s.inverse((c.reshape(200, -1) @ M).reshape(200, K, C))
    model = create("sfno_graph", in_channels=2, out_channels=2, hidden=4, layers=1, lmax=4, residual=True,
                   zero_init=True, linear="full", pos_features="none").double()  # fmt: skip
    res = model.fit_linear(x, y, s)
    assert res < 1e-6
    torch.testing.assert_close(model.forward_points(x[:5], g.points, s), y[:5], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"fit_linear needs linear='full'"):
        create("sfno_graph", in_channels=2, out_channels=2, lmax=4).fit_linear(x, y, s)
