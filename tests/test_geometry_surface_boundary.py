"""Surfaces (normals, areas, curvature, sampling) and boundaries (faces, outward normals, regions, SDF)."""

from __future__ import annotations

import numpy as np
import pytest

from meshops.geometry import boundary as gb
from meshops.geometry import surface as gs
from meshops.geometry.topology import boundary_faces
from meshops.graph.boundary import extract_boundary
from meshops.mesh import CellBlock, Mesh, MeshError


@pytest.fixture(scope="module")
def sphere():
    import trimesh

    tm = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    return np.asarray(tm.vertices), np.asarray(tm.faces), tm


def test_sphere_normals_areas_curvature(sphere):
    p, f, tm = sphere
    n = gs.vertex_normals(p, f)
    assert np.abs(np.einsum("ij,ij->i", n, p / np.linalg.norm(p, axis=1, keepdims=True)) - 1).max() < 1e-3
    A = gs.vertex_areas(p, f)
    np.testing.assert_allclose(A.sum(), tm.area, rtol=1e-12)
    assert abs(A.sum() - 4 * np.pi) / (4 * np.pi) < 0.01
    K = gs.gaussian_curvature(p, f)
    np.testing.assert_allclose((K * A).sum(), 4 * np.pi, rtol=1e-9)  # Gauss-Bonnet, chi = 2
    import trimesh

    ref = trimesh.curvature.discrete_gaussian_curvature_measure(tm, p, 0.0)
    np.testing.assert_allclose(K * A, ref, atol=1e-9)
    H = gs.mean_curvature(p, f)
    assert np.abs(H - 1.0).max() < 0.03
    # a piecewise-linear field integrates exactly with the vertex areas
    lin = p[:, 0] + 2.0
    np.testing.assert_allclose((A * lin).sum(), (gs.face_areas(p, f) * lin[f].mean(1)).sum(), rtol=1e-12)


def test_sample_points_on_surface(sphere):
    p, f, _ = sphere
    pts, fi, bary = gs.sample_points(p, f, 5000, seed=1)
    assert pts.shape == (5000, 3) and np.all(bary >= 0) and np.allclose(bary.sum(1), 1)
    np.testing.assert_allclose(pts, np.einsum("nk,nkd->nd", bary, p[f[fi]]))
    r = np.linalg.norm(pts, axis=1)
    assert r.max() <= 1 + 1e-12 and r.min() > 0.99
    # uniform by area: each octant gets about 1/8
    octant = (pts > 0) @ np.array([1, 2, 4])
    counts = np.bincount(octant, minlength=8)
    assert np.abs(counts / 5000 - 0.125).max() < 0.03
    with pytest.raises(ValueError, match="zero area"):
        gs.sample_points(np.zeros((3, 3)), np.array([[0, 1, 2]]), 4)


def test_triangulate_polygons():
    quads = np.array([[0, 1, 2, 3]])
    assert gs.triangulate(quads).tolist() == [[0, 1, 2], [0, 2, 3]]
    assert gs.triangulate([[0, 1, 2, 3, 4], [5, 6, 7]]).shape == (4, 3)


def test_signed_distance_sphere_and_box(sphere):
    p, f, _ = sphere
    rng = np.random.default_rng(0)
    u = rng.normal(size=(1000, 3))
    q = u / np.linalg.norm(u, axis=1, keepdims=True) * rng.uniform(0.6, 1.5, size=(1000, 1))
    sd = gb.signed_distance(q, p, f)
    exact = np.linalg.norm(q, axis=1) - 1
    assert np.abs(sd - exact).max() < 5e-3  # polygonal approximation of the sphere
    assert np.all(np.sign(sd[np.abs(exact) > 0.01]) == np.sign(exact[np.abs(exact) > 0.01]))
    # unsigned distance equals brute force over all faces
    _, d, _ = gb.closest_points(q[:200], p, f)
    cp, _ = gb._closest_on_triangles(q[:200, None, :], p[f[:, 0]][None], p[f[:, 1]][None], p[f[:, 2]][None])
    np.testing.assert_allclose(d, np.linalg.norm(cp - q[:200, None, :], axis=2).min(1), atol=1e-12)

    import trimesh

    box = trimesh.creation.box(extents=(2.0, 2.0, 2.0))
    q = rng.uniform(-2, 2, size=(3000, 3))
    sd = gb.signed_distance(q, np.asarray(box.vertices), np.asarray(box.faces))
    a = np.abs(q) - 1.0
    exact = np.linalg.norm(np.maximum(a, 0), axis=1) + np.minimum(a.max(1), 0)
    np.testing.assert_allclose(sd, exact, atol=1e-12)  # corners and edges included: pseudo-normals


def hex_grid(n: int, flip: bool = False) -> Mesh:
    g = np.arange(n + 1.0)
    X, Y, Z = np.meshgrid(g, g, g, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel(), Z.ravel()], 1)
    idx = np.arange((n + 1) ** 3).reshape(n + 1, n + 1, n + 1)
    c = [idx[:-1, :-1, :-1], idx[1:, :-1, :-1], idx[1:, 1:, :-1], idx[:-1, 1:, :-1],
         idx[:-1, :-1, 1:], idx[1:, :-1, 1:], idx[1:, 1:, 1:], idx[:-1, 1:, 1:]]
    h = np.stack([a.ravel() for a in c], 1)
    if flip:  # negatively oriented cells (mirror ordering)
        h = h[:, [0, 3, 2, 1, 4, 7, 6, 5]]
    return Mesh(points=pts, cells=[CellBlock("hexahedron", h)])


@pytest.mark.parametrize("flip", [False, True])
def test_volume_boundary_outward(flip):
    m = hex_grid(3, flip)
    faces, owners = boundary_faces(m.cells)
    assert sum(len(x) for x in faces) == 6 * 9
    b = extract_boundary(m)
    assert b.faces.shape == (108, 3)
    cen = m.points[b.faces].mean(1) - 1.5
    assert np.all(np.einsum("ij,ij->i", b.normals, cen) > 0)
    q = np.array([[1.5, 1.5, 1.5], [0.2, 1.0, 2.0], [4.0, 1.5, 1.5]])
    np.testing.assert_allclose(b.signed_distance(q), [-1.5, -0.2, 1.0], atol=1e-12)


def test_2d_boundary_edges_normals_regions():
    n = 4
    xs, ys = np.meshgrid(np.arange(n + 1.0), np.arange(n + 1.0), indexing="ij")
    pts = np.stack([xs.ravel(), ys.ravel()], 1)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    q = np.stack([idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()], 1)
    left = np.stack([idx[0, :-1], idx[0, 1:]], 1)
    m = Mesh(points=pts, cells=[CellBlock("quad", q)], boundaries={"left": [CellBlock("line", left[:, ::-1])]})
    b = extract_boundary(m)
    assert b.faces.shape == (16, 2)
    mid = m.points[b.faces].mean(1)
    assert np.all(np.einsum("ij,ij->i", b.normals, mid - [2, 2, 0]) > 0)
    assert b.names == ["unnamed", "left"] and (b.region == 1).sum() == 4
    assert np.all(mid[b.region == 1][:, 0] == 0)
    sd = b.signed_distance(np.array([[2.0, 2.0], [0.5, 3.0], [-1.0, -1.0]]))
    np.testing.assert_allclose(sd, [-2.0, -0.5, np.sqrt(2)], atol=1e-12)
    assert len(b.region_faces("left")) == 4
    with pytest.raises(KeyError, match="'right' not found"):
        b.region_faces("right")


def test_boundary_bad_input():
    with pytest.raises(MeshError, match="no boundary"):
        extract_boundary(Mesh(points=np.random.rand(5, 3), cells=[CellBlock("line", np.array([[0, 1]]))]))
    with pytest.raises(ValueError, match="query point 1 has a non-finite"):
        gb.signed_distance(np.array([[0, 0, 0], [np.nan, 0, 0]]), np.eye(3), np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="only degenerate faces"):
        gb.signed_distance(np.zeros((1, 3)), np.zeros((3, 3)), np.array([[0, 1, 2]]))


def test_real_boundaries(shared_data):
    import meshops

    cyl = meshops.read(shared_data / "simvascular" / "cylinder_all_results.vtu")
    b = extract_boundary(cyl)
    # closed boundary: every edge shared by two triangles, Euler characteristic 2
    e = np.sort(np.concatenate([b.faces[:, [0, 1]], b.faces[:, [1, 2]], b.faces[:, [2, 0]]]), 1)
    _, cnt = np.unique(e, axis=0, return_counts=True)
    assert np.all(cnt == 2)
    nv = len(np.unique(b.faces))
    assert nv - len(cnt) + len(b.faces) == 2
    sd = b.signed_distance(cyl.points[::3])
    assert sd.max() <= 1e-9 and -2.0 <= sd.min() < -1.9  # radius 2 cylinder
    air = meshops.read(shared_data / "su2" / "mesh_NACA0012_inv.su2")
    b = extract_boundary(air)
    assert b.names == ["unnamed", "airfoil", "farfield"]
    assert np.bincount(b.region).tolist() == [0, 200, 50]
    # points on the airfoil chord are outside the fluid domain
    assert np.all(b.signed_distance(np.array([[0.3, 0.0], [0.6, 0.0]])) > 0)
    assert np.all(b.signed_distance(air.points) <= 1e-9)
    wall = meshops.read(shared_data / "simvascular" / "demo_aorta_wall.vtp")
    b = extract_boundary(wall)
    assert len(b.names) == 6 and np.all(b.region > 0)
