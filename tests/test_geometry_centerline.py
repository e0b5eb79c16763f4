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


# --------------------------------------------------------------------------- reading and graphs
def _line_mesh(pts, segments, **cell_data):
    from meshops.mesh import CellBlock, Mesh

    return Mesh(points=pts, cells=[CellBlock("line", np.asarray(segments))], cell_data=cell_data,
                point_data={"MaximumInscribedSphereRadius": np.full(len(pts), 0.3)})


def test_read_centerline_y_shape_and_graph():
    from meshops.graph.centerline import centerline_graph, read_centerline

    trunk = np.stack([np.zeros(11), np.zeros(11), np.linspace(0, 10, 11)], 1)
    left = np.stack([-np.linspace(0.5, 5, 10), np.zeros(10), 10 + np.linspace(0.5, 5, 10)], 1)
    right = np.stack([np.linspace(0.5, 5, 10), np.zeros(10), 10 + np.linspace(0.5, 5, 10)], 1)
    pts = np.concatenate([trunk, left, right])
    segs = [[i, i + 1] for i in range(10)] + [[10, 11]] + [[i, i + 1] for i in range(11, 20)] \
        + [[10, 21]] + [[i, i + 1] for i in range(21, 30)]
    c = read_centerline(_line_mesh(pts, segs))
    assert c.n_branches == 3 and c.bifurcations().tolist() == [10]
    assert c.branches[0][0] == 0 and c.branches[0][-1] == 10
    assert c.parent[1] == (0, 10) and c.parent[2] == (0, 10)
    g = centerline_graph(c)
    assert g.num_nodes == 31 and g.edge_index.shape[1] == 60
    assert g.node_type_names == ["interior", "end", "bifurcation"]
    assert g.node_type[10] == 2 and g.node_type[[0, 20, 30]].tolist() == [1, 1, 1]
    np.testing.assert_allclose(g.s[:11], np.arange(11.0))
    F = g.frame.double()
    np.testing.assert_allclose(torch_matmul(F), np.broadcast_to(np.eye(3), F.shape), atol=1e-6)
    np.testing.assert_allclose(g.x[:, 0], 0.3)
    # resampling keeps the junction shared and the topology
    r = c.resampled(0.25)
    assert r.n_branches == 3 and len(r.bifurcations()) == 1 and len(np.unique(r.components())) == 1
    seg = np.linalg.norm(np.diff(r.points[r.branches[0]], axis=0), axis=1)
    assert seg.max() <= 0.25 + 1e-12 and len(r.branches[0]) == 41
    np.testing.assert_allclose(r.points[r.branches[1][0]], [0, 0, 10])
    np.testing.assert_allclose(r.radius, 0.3)


def torch_matmul(F):
    return (F @ F.transpose(1, 2)).numpy()


def test_read_centerline_disconnected_pieces_documented(caplog):
    from meshops.graph.centerline import read_centerline

    a = np.stack([np.linspace(0, 5, 6), np.zeros(6), np.zeros(6)], 1)
    b = a + [0, 10, 0]
    c = read_centerline(_line_mesh(np.concatenate([a, b]), [[i, i + 1] for i in range(5)] +
                                   [[i, i + 1] for i in range(6, 11)]))
    assert "2 disconnected pieces" in caplog.text
    assert c.n_branches == 2 and len(np.unique(c.components())) == 2
    # a gap smaller than join_tol is bridged
    c = read_centerline(_line_mesh(np.concatenate([a, a[-1] + [0.2, 0, 0] + a]), [[i, i + 1] for i in range(5)] +
                                   [[i, i + 1] for i in range(6, 11)]))
    assert len(np.unique(c.components())) == 1


def test_read_centerline_bad_input():
    from meshops.graph.centerline import read_centerline
    from meshops.mesh import CellBlock, Mesh, MeshError

    with pytest.raises(MeshError, match="no line cells"):
        read_centerline(Mesh(points=np.eye(3), cells=[CellBlock("triangle", np.array([[0, 1, 2]]))]))
    pts = np.eye(3)
    pts[1, 0] = np.inf
    with pytest.raises(MeshError, match="point 1 has a non-finite"):
        read_centerline(_line_mesh(pts, [[0, 1], [1, 2]]))
    with pytest.raises(MeshError, match="radius field 'R' not found"):
        read_centerline(_line_mesh(np.eye(3), [[0, 1], [1, 2]]), radius_field="R")


@pytest.mark.parametrize("name", ["demo_aorta_centerlines.vtp", "demo_aorta_rom_centerlines.vtp"])
def test_simvascular_centerlines(shared_data, name):
    from meshops.graph.centerline import centerline_graph, read_centerline

    c = read_centerline(shared_data / "simvascular" / name)
    assert c.n_branches == 3 and len(c.bifurcations()) == 1
    used = np.concatenate(c.branches)
    assert len(np.unique(c.components()[used])) == 1
    assert c.radius is not None and 0.3 < c.radius[used].min() and c.radius[used].max() < 3.0
    if "BranchId" in c.point_data:  # SimVascular's own branch ids agree with the topology
        bid = c.point_data["BranchId"]
        for i, b in enumerate(c.branches):
            vals, cnt = np.unique(bid[b][bid[b] >= 0], return_counts=True)
            assert vals[np.argmax(cnt)] == i
        assert c.point_data["BifurcationId"][c.bifurcations()[0]] == 0
    g = centerline_graph(c, {"levels": 2})
    assert g.level_size(1) == int(np.ceil(0.25 * g.num_nodes))
    # the wall of the aorta projects onto these centerlines within about one radius
    wall = shared_data / "simvascular" / "demo_aorta_wall.vtp"
    import meshops

    w = meshops.read(wall)
    proj = cl.project_points(w.points, c)
    r_at = np.interp(proj.s, cl.arc_length(c.points[c.branches[0]]), c.radius[c.branches[0]])
    trunk = proj.branch == 0
    ratio = proj.distance[trunk] / r_at[trunk]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.25)
