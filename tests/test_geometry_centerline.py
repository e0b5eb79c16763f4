"""Centerline geometry: resampling, frames, curvature/torsion, projection of tube points."""

from __future__ import annotations

import numpy as np
import pytest

from meshops.geometry import centerline as cl


def helix(a: float = 2.0, c: float = 0.5, turns: float = 3.0, n: int = 4000) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi * turns, n)
    return np.stack([a * np.cos(t), a * np.sin(t), c * t], axis=1)


def test_arc_length_and_resample_uniform():
    p = helix(n=500)
    new, s, vals = cl.resample(p, spacing=0.05, values=np.arange(500.0))
    seg = np.linalg.norm(np.diff(new, axis=0), axis=1)
    assert seg.max() <= 0.05 + 1e-12
    # uniform in arc length of the input polyline: chords equal up to the curvature effect
    assert seg.std() / seg.mean() < 1e-3
    np.testing.assert_allclose(new[[0, -1]], p[[0, -1]])
    np.testing.assert_allclose(s[-1], cl.arc_length(p)[-1])
    assert np.all(np.diff(vals) > 0)  # interpolated index grows monotonically
    new2, _, _ = cl.resample(p, n=17)
    assert len(new2) == 17


def test_resample_errors():
    with pytest.raises(ValueError, match="zero length"):
        cl.resample(np.zeros((4, 3)), n=5)
    with pytest.raises(ValueError, match="spacing must be > 0"):
        cl.resample(helix(n=10), spacing=0.0)
    with pytest.raises(ValueError, match="exactly one"):
        cl.resample(helix(n=10))
    bad = helix(n=10)
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="point 3 has a non-finite"):
        cl.resample(bad, n=5)


def test_helix_curvature_torsion_analytic():
    a, c = 2.0, 0.5
    p, _, _ = cl.resample(helix(a, c, n=20000), spacing=0.01)
    k, tau = cl.curvature_torsion(p)
    inner = slice(5, -5)
    np.testing.assert_allclose(k[inner], a / (a * a + c * c), rtol=0.01)
    np.testing.assert_allclose(tau[inner], c / (a * a + c * c), rtol=0.01)


def test_straight_line_has_zero_curvature_and_torsion():
    p = np.linspace([0, 0, 0], [1, 2, 3], 50)
    k, tau = cl.curvature_torsion(p)
    assert np.abs(k).max() < 1e-8 and np.abs(tau).max() == 0


def test_frames_orthonormal_continuous_and_rotation_minimizing():
    p, _, _ = cl.resample(helix(n=5000), spacing=0.02)
    T, N, B = cl.rotation_minimizing_frames(p)
    for u in (T, N, B):
        np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, atol=1e-12)
    assert np.abs(np.einsum("ij,ij->i", T, N)).max() < 1e-12
    assert np.abs(np.einsum("ij,ij->i", T, B)).max() < 1e-12
    np.testing.assert_allclose(np.cross(T, N), B, atol=1e-12)
    # continuity: neighbouring normals differ by O(h)
    assert np.linalg.norm(np.diff(N, axis=0), axis=1).max() < 0.05
    # rotation minimizing: the normal's derivative has no binormal component (no twist)
    s = cl.arc_length(p)
    dN = np.gradient(N, s, axis=0)
    twist = np.einsum("ij,ij->i", dN, B)
    assert np.abs(twist[3:-3]).max() < 1e-3


def test_frames_on_straight_line_stay_constant():
    p = np.linspace([0, 0, 0], [0, 0, 5], 30)
    T, N, B = cl.rotation_minimizing_frames(p, normal0=np.array([1.0, 0, 0]))
    np.testing.assert_allclose(N, np.tile([1.0, 0, 0], (30, 1)), atol=1e-14)
    with pytest.raises(ValueError, match="parallel to the first tangent"):
        cl.rotation_minimizing_frames(p, normal0=np.array([0, 0, 1.0]))


def tube_around(p: np.ndarray, radius: np.ndarray, n_around: int = 24):
    T, N, B = cl.rotation_minimizing_frames(p)
    th = np.linspace(-np.pi, np.pi, n_around, endpoint=False) + np.pi / n_around
    pts = p[:, None, :] + radius[:, None, None] * (
        np.cos(th)[None, :, None] * N[:, None, :] + np.sin(th)[None, :, None] * B[:, None, :]
    )
    s = cl.arc_length(p)
    return pts.reshape(-1, 3), np.repeat(s, n_around), np.tile(th, len(p)), np.repeat(radius, n_around)


def test_projection_recovers_tube_coordinates():
    # a gently curved centerline (radius of curvature >> tube radius), tube radius varying along it
    t = np.linspace(0, 1, 400)
    p = np.stack([10 * np.sin(t), 10 * (1 - np.cos(t)), 3 * t], axis=1)
    p, s, _ = cl.resample(p, spacing=0.05)
    r = 0.5 + 0.2 * np.sin(3 * s)
    pts, s_true, th_true, r_true = tube_around(p, r)
    proj = cl.project_points(pts, p)
    h = 0.05
    inner = (s_true > 0.3) & (s_true < s[-1] - 0.3)
    assert np.abs(proj.s - s_true)[inner].max() < h
    assert np.abs(proj.distance - r_true)[inner].max() < h * 0.2
    dth = np.angle(np.exp(1j * (proj.angle - th_true)))
    assert np.abs(dth)[inner].max() < 0.02


def test_projection_is_exact_nearest_against_brute_force():
    rng = np.random.default_rng(0)
    p = np.cumsum(rng.normal(size=(60, 3)), axis=0)  # uneven, kinked polyline
    q = rng.normal(size=(500, 3)) * 5 + p.mean(0)
    proj = cl.project_points(q, p)
    a, b = p[:-1], p[1:]
    d, _ = cl._point_segment(q[:, None, :], a[None], b[None])
    np.testing.assert_allclose(proj.distance, d.min(1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(q - proj.foot, axis=1), proj.distance, atol=1e-12)


def test_branched_centerline_components_and_bifurcations():
    pts = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 1, 0], [3, -1, 0], [10, 10, 10], [11, 10, 10]], float)
    c = cl.Centerline(pts, branches=[[0, 1, 2], [2, 3], [2, 4], [5, 6]], radius=np.ones(7))
    assert c.edges().shape == (5, 2)
    assert c.bifurcations().tolist() == [2]
    comp = c.components()
    assert len(np.unique(comp)) == 2 and comp[5] == comp[6] != comp[0]
    proj = cl.project_points(np.array([[3.0, 1.5, 0.0], [10.5, 10, 11]]), c)
    assert proj.branch.tolist() == [1, 3]
    with pytest.raises(ValueError, match="radius has 3 values"):
        cl.Centerline(pts, branches=[[0, 1]], radius=np.ones(3))
