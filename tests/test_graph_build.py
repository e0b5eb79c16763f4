"""graph.build: mesh edges, features, node types, hierarchy properties, batching, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from meshops.geometry.topology import cell_edges
from meshops.graph import GraphSpec, MeshGraph, build, prolong, restrict
from meshops.graph.hierarchy import n_components
from meshops.mesh import CellBlock, Mesh, MeshError


def quad_grid(nx: int, ny: int) -> Mesh:
    xs, ys = np.meshgrid(np.arange(nx + 1.0), np.arange(ny + 1.0), indexing="ij")
    pts = np.stack([xs.ravel(), ys.ravel()], 1)
    idx = np.arange((nx + 1) * (ny + 1)).reshape(nx + 1, ny + 1)
    q = np.stack([idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()], 1)
    return Mesh(points=pts, cells=[CellBlock("quad", q)])


def test_single_tet_has_six_edges_and_contract_fields():
    m = Mesh(points=np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]),
             cells=[CellBlock("tetra", np.array([[0, 1, 2, 3]]))], point_data={"p": np.arange(4.0),
                                                                               "u": np.ones((4, 3))})
    g = build(m, {"node_fields": ["p", "u"]})
    assert isinstance(g, MeshGraph)
    assert g.edge_index.shape == (2, 12) and g.edge_index.dtype == torch.int64
    assert g.pos.dtype == torch.float32 and g.pos.shape == (4, 3)
    assert g.x.shape == (4, 4) and torch.equal(g.x[:, 0], torch.arange(4.0))
    src, dst = g.edge_index
    np.testing.assert_allclose(g.edge_attr[:, :3], g.pos[dst] - g.pos[src])
    np.testing.assert_allclose(g.edge_attr[:, 3], (g.pos[dst] - g.pos[src]).norm(dim=1), rtol=1e-6)
    # both directions of each undirected edge, exactly once
    pairs = set(map(tuple, g.edge_index.T.tolist()))
    assert len(pairs) == 12 and all((b, a) in pairs for a, b in pairs)
    assert torch.equal(g.point_index, torch.arange(4)) and g.num_levels == 1
    assert "x" not in build(m)


def test_quad_grid_2x2_has_12_edges():
    assert len(cell_edges(quad_grid(2, 2).cells)) == 12
    assert build(quad_grid(2, 2)).edge_index.shape[1] == 24


def test_euler_formula_on_closed_surfaces():
    import trimesh

    cases = [(trimesh.creation.icosphere(subdivisions=3), 2), (trimesh.creation.box(), 2),
             (trimesh.creation.torus(major_radius=2.0, minor_radius=0.5), 0)]
    for tm, expected in cases:
        e = cell_edges([CellBlock("triangle", tm.faces)])
        assert len(tm.vertices) - len(e) + len(tm.faces) == expected
        assert 3 * len(tm.faces) == 2 * len(e)  # every edge shared by exactly two faces


def test_mixed_polygon_polyhedron_and_quadratic_cells():
    # a hex and a wedge sharing the quad face 1-2-6-5, a polygon and a tetra10
    pts = np.random.default_rng(0).random((20, 3))
    hexa = CellBlock("hexahedron", np.array([[0, 1, 2, 3, 4, 5, 6, 7]]))
    wedge = CellBlock("wedge", np.array([[1, 8, 2, 5, 9, 6]]))
    e = cell_edges([hexa, wedge], 20)
    assert len(e) == 12 + 9 - 4  # the shared quad face's 4 edges counted once
    pent = CellBlock("polygon", np.array([[10, 11, 12, 13, 14]]))
    assert len(cell_edges([pent])) == 5
    tet10 = CellBlock("tetra10", np.arange(10)[None])
    assert len(cell_edges([tet10])) == 12
    # polyhedron given as faces: a cube
    faces = [[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]]
    cube = np.empty(1, dtype=object)
    cube[0] = faces
    poly = CellBlock("polyhedron", cube)
    assert len(cell_edges([poly])) == 12
    m = Mesh(points=pts, cells=[hexa, wedge, pent, tet10])
    g = build(m)
    assert g.edge_index.shape[1] == 2 * len(cell_edges(m.cells))
    with pytest.raises(ValueError, match="unknown cell type 'blob'"):
        cell_edges([CellBlock("blob", np.zeros((1, 3), int))])


def test_degenerate_cells_drop_self_loops():
    m = Mesh(points=np.random.default_rng(1).random((4, 3)),
             cells=[CellBlock("triangle", np.array([[0, 1, 1], [1, 2, 3]]))])
    g = build(m)
    assert (g.edge_index[0] != g.edge_index[1]).all()
    assert g.edge_index.shape[1] == 2 * 4  # 0-1, 1-2, 2-3, 1-3


def test_node_types_from_boundaries_with_priority():
    m = quad_grid(3, 3)
    m.boundaries = {"left": [CellBlock("line", np.array([[0, 1], [1, 2], [2, 3]]))],
                    "bottom": [CellBlock("line", np.array([[0, 4], [4, 8], [8, 12]]))]}
    g = build(m)
    assert g.node_type_names == ["interior", "left", "bottom"]
    assert g.node_type[[1, 2, 3]].tolist() == [1, 1, 1] and g.node_type[[4, 8, 12]].tolist() == [2, 2, 2]
    assert g.node_type[0] == 1  # in both: the first region wins
    assert g.node_type[5] == 0
    g2 = build(m, GraphSpec(boundary_order=["bottom"]))
    assert g2.node_type_names == ["interior", "bottom", "left"] and g2.node_type[0] == 1
    with pytest.raises(MeshError, match="not boundary regions"):
        build(m, GraphSpec(boundary_order=["top"]))


def _hier_mesh():
    import trimesh

    tm = trimesh.creation.icosphere(subdivisions=4)  # 2562 vertices, connected
    return Mesh.from_trimesh(tm)


@pytest.mark.parametrize("sampling", ["fps", "voxel", "grid", "auto"])
def test_hierarchy_properties(sampling):
    m = _hier_mesh()
    g = build(m, {"levels": 4, "ratio": [0.25, 0.25, 0.5], "sampling": sampling})
    sizes = [g.level_size(lv) for lv in range(4)]
    if sampling == "auto":  # small levels: exact FPS
        ref = build(m, {"levels": 4, "ratio": [0.25, 0.25, 0.5], "sampling": "fps"})
        assert all(torch.equal(g[f"pos_{lv}"], ref[f"pos_{lv}"]) for lv in range(1, 4))
    if sampling in ("fps", "grid", "auto"):
        assert sizes == [2562, 641, 161, 81]
    else:
        assert all(abs(s - t) <= 0.35 * t for s, t in zip(sizes[1:], [641, 161, 81], strict=True))
    for lv in range(1, 4):
        n_f, n_c = sizes[lv - 1], sizes[lv]
        down, dw = g[f"down_{lv}"], g[f"down_w_{lv}"].double()
        up, uw = g[f"up_{lv}"], g[f"up_w_{lv}"].double()
        assert down[0].max() < n_f and down[1].max() < n_c and up[0].max() < n_c and up[1].max() < n_f
        # partitions of unity
        np.testing.assert_allclose(torch.zeros(n_c, dtype=torch.float64).index_add_(0, down[1], dw), 1, atol=1e-6)
        np.testing.assert_allclose(torch.zeros(n_f, dtype=torch.float64).index_add_(0, up[1], uw), 1, atol=1e-6)
        assert (dw > 0).all() and (uw > 0).all()
        # every fine node maps down to a coarse node within the level radius
        fine = g.pos if lv == 1 else g[f"pos_{lv - 1}"]
        coarse = g[f"pos_{lv}"]
        assert torch.unique(down[0]).numel() == n_f
        d = (fine[down[0]] - coarse[down[1]]).norm(dim=1)
        r = float(g.level_radius[0, lv])
        best = torch.full((n_f,), float("inf")).scatter_reduce(0, down[0], d, "amin")
        assert (best <= r * (1 + 1e-5)).all()
        # coarse level connected
        assert n_components(g[f"edge_index_{lv}"].numpy(), n_c)[0] == 1
        ea = g[f"edge_attr_{lv}"]
        ei = g[f"edge_index_{lv}"]
        np.testing.assert_allclose(ea[:, :3], coarse[ei[1]] - coarse[ei[0]], atol=1e-6)
    # constants survive restriction and prolongation; linear fields are reproduced closely
    one = torch.ones(sizes[0], 2)
    c1 = restrict(one, g, 1)
    np.testing.assert_allclose(c1, 1, atol=1e-5)
    np.testing.assert_allclose(prolong(c1, g, 1), 1, atol=1e-5)


def test_coarsest_level_connected_even_with_tiny_radius():
    m = _hier_mesh()
    g = build(m, {"levels": 2, "ratio": 0.05, "radius": [None, 1e-3]})
    assert n_components(g.edge_index_1.numpy(), g.level_size(1))[0] == 1
    # the down map still covers every fine node (nearest coarse node attached)
    assert torch.unique(g.down_1[0]).numel() == m.n_points


def test_batching_offsets_every_level():
    from torch_geometric.data import Batch

    m = _hier_mesh()
    g = build(m, {"levels": 3})
    b = Batch.from_data_list([g, g])
    n0, n1, n2 = (g.level_size(i) for i in range(3))
    assert b.edge_index_1.shape[1] == 2 * g.edge_index_1.shape[1]
    assert torch.equal(b.edge_index_1[:, g.edge_index_1.shape[1]:], g.edge_index_1 + n1)
    assert torch.equal(b.down_2[:, g.down_2.shape[1]:], g.down_2 + torch.tensor([[n1], [n2]]))
    assert torch.equal(b.up_1[:, g.up_1.shape[1]:], g.up_1 + torch.tensor([[n1], [n0]]))
    assert torch.equal(b.point_index[n0:], g.point_index)
    out = b.to_data_list()[1]
    assert torch.equal(out.down_1, g.down_1)


def test_point_cloud_knn_and_radius_level0():
    pts = np.random.default_rng(0).random((300, 3))
    g = build(pts, {"k": 6})
    assert g.edge_index.shape[1] >= 300 * 6
    g = build(pts, {"edges": "radius", "radius": 0.2})
    d = (g.pos[g.edge_index[0]] - g.pos[g.edge_index[1]]).norm(dim=1)
    assert d.max() <= 0.2 + 1e-6
    with pytest.raises(ValueError, match="needs radius for level 0"):
        build(pts, {"edges": "radius"})
    with pytest.raises(MeshError, match="no cells"):
        build(pts, {"edges": "mesh"})


def test_bad_input():
    pts = np.random.default_rng(0).random((10, 3))
    bad = pts.copy()
    bad[4, 2] = np.nan
    with pytest.raises(MeshError, match=r"point 4 has a non-finite coordinate"):
        build(bad)
    with pytest.raises(ValueError, match="radius must be > 0"):
        GraphSpec(radius=0.0)
    with pytest.raises(ValueError, match="k must be >= 1"):
        GraphSpec(k=0)
    with pytest.raises(ValueError, match="unknown keys"):
        GraphSpec.coerce({"levles": 2})
    m = Mesh(points=pts, point_data={"p": np.ones(10)}, cell_data={})
    with pytest.raises(MeshError, match="node field 'q' not found"):
        build(m, {"node_fields": ["q"]})
    m = Mesh(points=pts, cells=[CellBlock("triangle", np.array([[0, 1, 12]]))])
    with pytest.raises(MeshError, match="indexes point 12 but the mesh has 10 points"):
        build(m)
    # fewer points than k: documented result, all other points connected
    g = build(pts[:4], {"k": 8})
    assert g.edge_index.shape[1] == 12


def test_real_cylinder_mesh(shared_data):
    import meshops

    m = meshops.read(shared_data / "simvascular" / "cylinder_all_results.vtu")
    g = build(m, {"levels": 3, "node_fields": ["pressure_00100", "velocity_00100"]})
    assert g.x.shape == (m.n_points, 4)
    # tet mesh edges: each tet's 6 edges are in the graph
    tets = m.cells_of_type("tetra")
    ref = cell_edges(m.cells, m.n_points)
    assert g.edge_index.shape[1] == 2 * len(ref)
    keys = set((ref[:, 0] * m.n_points + ref[:, 1]).tolist())
    for a, b in [(0, 1), (2, 3), (1, 3)]:
        e = np.sort(tets[:, [a, b]], axis=1)
        assert set((e[:, 0] * m.n_points + e[:, 1]).tolist()) <= keys
    assert n_components(g.edge_index_2.numpy(), g.level_size(2))[0] == 1
    dn, _ = cKDTree(g.pos_1.numpy()).query(g.pos.numpy())
    assert dn.max() <= float(g.level_radius[0, 1]) + 1e-5


def test_save_load_roundtrip_weights_only(tmp_path):
    from meshops.graph import load_graph, save_graph

    g = build(_hier_mesh(), {"levels": 2})
    out = save_graph(g, tmp_path / "g.pt")
    h = load_graph(out)
    assert isinstance(h, MeshGraph) and h.num_levels == 2
    for k in ("pos", "edge_index", "edge_attr", "down_1", "up_w_1", "node_type", "point_index"):
        assert torch.equal(g[k], h[k])
    assert h.node_type_names == g.node_type_names
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a meshops graph file"):
        load_graph(tmp_path / "other.pt")


def test_transform_does_not_modify_input_mesh():
    m = quad_grid(3, 3)
    before = (m.points.copy(), m.cells[0].data.copy())
    build(m, {"levels": 2})
    assert np.array_equal(m.points, before[0]) and np.array_equal(m.cells[0].data, before[1])


def test_cli_graph(tmp_path, shared_data, capsys):
    import json

    from meshops.cli import main
    from meshops.graph import load_graph

    out = tmp_path / "graph.pt"
    rc = main(["graph", str(shared_data / "simvascular" / "cylinder_all_results.vtu"), "--levels", "3",
               "--out", str(out), "--fields", "pressure_00100"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    g = load_graph(out)
    assert info["nodes"] == [g.level_size(i) for i in range(3)] == [2349, 588, 147]
    rc = main(["graph", str(shared_data / "simvascular" / "demo_aorta_rom_centerlines.vtp"), "--centerline",
               "--out", str(tmp_path / "c.pt")])
    assert rc == 0 and load_graph(tmp_path / "c.pt").node_type_names == ["interior", "end", "bifurcation"]
    assert main(["graph", str(tmp_path / "missing.vtu")]) == 1
    assert "missing.vtu" in capsys.readouterr().err


def test_real_2d_mesh_node_types(shared_data):
    import meshops

    m = meshops.read(shared_data / "su2" / "mesh_NACA0012_inv.su2")
    g = build(m, {"levels": 2})
    assert g.node_type_names == ["interior", "airfoil", "farfield"]
    counts = torch.bincount(g.node_type, minlength=3).tolist()
    assert counts[1] == len(np.unique(m.boundaries["airfoil"][0].data))
    assert counts[2] == len(np.unique(m.boundaries["farfield"][0].data))
    assert torch.all(g.pos[:, 2] == 0) and torch.all(g.pos_1[:, 2] == 0)
    # Euler on the planar triangulation with one hole: V - E + F = 0
    assert m.n_points - g.edge_index.shape[1] // 2 + m.n_cells == 0


def _prolonged(g, lv, values):
    up, w = g[f"up_{lv}"], g[f"up_w_{lv}"].double()
    n_fine = g.num_nodes if lv == 1 else g[f"pos_{lv - 1}"].shape[0]
    out = torch.zeros(n_fine, dtype=torch.float64).index_add_(0, up[1], w * values[up[0]])
    return out, torch.zeros(n_fine, dtype=torch.float64).index_add_(0, up[1], w)


def test_linear_prolongation_reproduces_linear_fields(shared_data):
    """interpolation='linear' is exact for linear fields on a planar mesh with a hole (the NACA
    farfield mesh); inverse-distance weights are not. Weights still sum to 1 per fine node."""
    import meshops

    m = meshops.read(shared_data / "su2" / "mesh_NACA0012_inv.su2")
    errs = {}
    for interp in ("idw", "linear"):
        g = build(m, {"levels": 3, "interpolation": interp})
        for lv in (1, 2):
            coarse = g[f"pos_{lv}"].double()
            fine = g.pos.double() if lv == 1 else g[f"pos_{lv - 1}"].double()
            lin = lambda p: 0.7 * p[:, 0] - 1.3 * p[:, 1] + 2.0  # noqa: E731
            val, tot = _prolonged(g, lv, lin(coarse))
            torch.testing.assert_close(tot, torch.ones_like(tot))
            scale = lin(fine).abs().max()
            errs[interp, lv] = float((val - lin(fine)).abs().max() / scale)
            frac = float(((val - lin(fine)).abs() < 1e-5 * scale).double().mean())  # float32 positions, weights
            if interp == "linear":
                assert frac > 0.97, (lv, frac)
    assert errs["linear", 1] < 1e-3 * errs["idw", 1]
    with pytest.raises(ValueError, match="interpolation must be 'idw' or 'linear', got 'cubic'"):
        GraphSpec(interpolation="cubic")


def test_linear_prolongation_falls_back_off_the_plane():
    """Points of a curved surface are not planar: 'linear' gives the inverse-distance maps."""
    rng = np.random.default_rng(0)
    p = rng.normal(size=(300, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    cloud = Mesh(points=p, cells=[])
    a = build(cloud, {"levels": 2, "interpolation": "linear"})
    b = build(cloud, {"levels": 2, "interpolation": "idw"})
    assert torch.equal(a.up_1, b.up_1) and torch.equal(a.up_w_1, b.up_w_1)
