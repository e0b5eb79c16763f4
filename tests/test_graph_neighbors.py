"""Neighbor search vs brute force and scipy's cKDTree: random clouds, ties, caps, batches, real meshes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from meshops.graph import knn, knn_graph, radius, radius_graph

BACKENDS = ["kdtree", "cell", "brute"]


def _sets(e: torch.Tensor, n_query: int) -> list[set[int]]:
    out: list[set[int]] = [set() for _ in range(n_query)]
    for q, j in e.T.tolist():
        out[q].add(j)
    return out


def _ckdtree_radius_sets(x, y, r):
    return [set(lst) for lst in cKDTree(x).query_ball_point(y, r)]


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("n", [1000, 10000])
def test_radius_matches_ckdtree_and_brute(dim, n):
    rng = np.random.default_rng(n + dim)
    x = rng.random((n, dim))
    y = rng.random((n // 4, dim))
    for r in (0.02, 0.06) if dim == 3 else (0.01, 0.03):
        ref = _ckdtree_radius_sets(x, y, r)
        outs = {be: radius(torch.from_numpy(x), torch.from_numpy(y), r, max_num_neighbors=None, backend=be)
                for be in (BACKENDS if n <= 1000 else ["kdtree", "cell"])}
        for be, e in outs.items():
            assert _sets(e, len(y)) == ref, be
        # identical ordering (query, distance, index) across backends
        first = next(iter(outs.values()))
        for e in outs.values():
            assert torch.equal(e, first)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("n", [1000, 10000])
def test_knn_matches_ckdtree(dim, n):
    rng = np.random.default_rng(7 * n + dim)
    x = rng.random((n, dim))
    y = rng.random((500, dim))
    for k in (1, 5, 16):
        _, ref = cKDTree(x).query(y, k=k)
        ref = [set(np.atleast_1d(r).tolist()) for r in ref.reshape(len(y), k)]
        for be in BACKENDS if n <= 1000 else ["kdtree", "cell"]:
            e = knn(torch.from_numpy(x), torch.from_numpy(y), k, backend=be)
            assert e.shape == (2, len(y) * k)
            assert _sets(e, len(y)) == ref, (be, k)


@pytest.mark.slow
@pytest.mark.parametrize("dim", [2, 3])
def test_large_clouds_1e5(dim):
    rng = np.random.default_rng(dim)
    x = rng.random((100_000, dim))
    r = 0.01 if dim == 3 else 0.003
    ref = _ckdtree_radius_sets(x, x, r)
    for be in ("kdtree", "cell"):
        e = radius_graph(torch.from_numpy(x), r, max_num_neighbors=None, loop=True, backend=be)
        assert _sets(e.flip(0), len(x)) == ref
        e = knn_graph(torch.from_numpy(x), 8, backend=be)
        _, nb = cKDTree(x).query(x, k=9)
        assert _sets(e.flip(0), len(x)) == [set(row[1:].tolist()) for row in nb]


def test_cap_keeps_nearest_and_ties_go_to_lower_index():
    # a query at the origin with 8 points at distance 1 (ties) and 2 at distance 0.5
    x = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1],
                      [0.6, 0.8, 0], [0.8, 0.6, 0], [0.5, 0, 0], [0, 0.5, 0]], dtype=torch.float64)
    y = torch.zeros(1, 3, dtype=torch.float64)
    for be in BACKENDS:
        e = radius(x, y, 1.0, max_num_neighbors=5, backend=be)
        assert e[1].tolist() == [8, 9, 0, 1, 2], be
        e = knn(x, y, 4, backend=be)
        assert e[1].tolist() == [8, 9, 0, 1], be
        e = radius(x, y, 1.0, max_num_neighbors=None, backend=be)
        assert e[1].tolist() == [8, 9, 0, 1, 2, 3, 4, 5, 6, 7], be
        # boundary inclusive: distance == r counts
        assert radius(x, y, 0.5, backend=be)[1].tolist() == [8, 9]


def test_grid_ties_knn_graph_exact():
    g = np.stack(np.meshgrid(np.arange(6.0), np.arange(6.0), indexing="ij"), -1).reshape(-1, 2)
    x = torch.from_numpy(g)
    outs = [knn_graph(x, 3, backend=be) for be in BACKENDS]
    for e in outs[1:]:
        assert torch.equal(e, outs[0])
    # corner node 0 has neighbors 1 and 6 at distance 1, then 7 at sqrt(2)
    nb0 = outs[0][0][outs[0][1] == 0].tolist()
    assert nb0 == [1, 6, 7]
    # interior node 7: four at distance 1; the three lowest indices are kept
    assert outs[0][0][outs[0][1] == 7].tolist() == [1, 6, 8]


def test_graph_flow_loops_and_symmetry():
    x = torch.rand(400, 3, generator=torch.Generator().manual_seed(0))
    e = radius_graph(x, 0.2, max_num_neighbors=None)
    assert (e[0] != e[1]).all()
    s = set(map(tuple, e.T.tolist()))
    assert all((b, a) in s for a, b in s)
    el = radius_graph(x, 0.2, max_num_neighbors=None, loop=True)
    assert el.shape[1] == e.shape[1] + 400
    assert torch.equal(radius_graph(x, 0.2, flow="target_to_source"), radius_graph(x, 0.2).flip(0))
    kg = knn_graph(x, 6)
    assert kg.shape[1] == 400 * 6 and torch.equal(torch.bincount(kg[1]), torch.full((400,), 6))


def test_batches_never_cross():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(300, 3, generator=gen)
    b = torch.repeat_interleave(torch.arange(3), 100)
    for be in BACKENDS:
        e = radius_graph(x, 0.3, batch=b, backend=be, max_num_neighbors=None)
        assert (b[e[0]] == b[e[1]]).all()
        # same as per-example search with offsets
        ref = torch.cat([radius_graph(x[i * 100:(i + 1) * 100], 0.3, max_num_neighbors=None) + i * 100
                         for i in range(3)], 1)
        assert set(map(tuple, e.T.tolist())) == set(map(tuple, ref.T.tolist()))
        ek = knn_graph(x, 4, batch=b, backend=be)
        assert (b[ek[0]] == b[ek[1]]).all() and ek.shape[1] == 1200
    y = torch.rand(50, 3, generator=gen)
    by = torch.randint(0, 3, (50,), generator=gen)
    e = knn(x, y, 5, batch_x=b, batch_y=by)
    assert (b[e[1]] == by[e[0]]).all() and e.shape[1] == 250


def test_chunking_bounds_memory_and_keeps_results():
    x = torch.rand(3000, 3, generator=torch.Generator().manual_seed(2))
    a = radius_graph(x, 0.1, backend="cell", max_num_neighbors=None)
    b = radius_graph(x, 0.1, backend="cell", max_num_neighbors=None, pair_budget=500)
    assert torch.equal(a, b)
    c = knn_graph(x, 10, backend="cell", pair_budget=300)
    assert torch.equal(c, knn_graph(x, 10, backend="kdtree"))


def test_bad_input_errors():
    x = torch.rand(10, 3)
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="x: point 3 has a non-finite coordinate"):
        radius_graph(bad, 0.1)
    with pytest.raises(ValueError, match="r must be a positive finite number, got 0"):
        radius(x, x, 0.0)
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        knn(x, x, 0)
    with pytest.raises(ValueError, match="dimension 3 but y has 2"):
        knn(x, torch.rand(4, 2), 2)
    # fewer points than k: all of them, no padding
    e = knn(x[:3], x, 5)
    assert e.shape == (2, 30)
    assert knn_graph(x[:3], 5).shape == (2, 6)
    assert radius(x[:0], x, 0.1).shape == (2, 0)


def test_real_meshes(shared_data):
    import meshops

    m = meshops.read(shared_data / "simvascular" / "cylinder_all_results.vtu")
    p = m.points
    # spacing-scale radius on a graded tet mesh
    r = 0.6
    ref = _ckdtree_radius_sets(p, p, r)
    for be in ("kdtree", "cell"):
        e = radius_graph(torch.from_numpy(p), r, max_num_neighbors=None, loop=True, backend=be)
        assert _sets(e.flip(0), len(p)) == ref
    # bipartite: airfoil surface queries against the SU2 mesh nodes
    su2 = shared_data / "su2" / "mesh_NACA0012_inv.su2"
    if su2.exists():
        a = meshops.read(su2)
        q = a.points[:: 7] + 1e-3
        _, nb = cKDTree(a.points).query(q, k=6)
        for be in ("kdtree", "cell"):
            e = knn(torch.from_numpy(a.points), torch.from_numpy(q), 6, backend=be)
            assert _sets(e, len(q)) == [set(r.tolist()) for r in nb]


@pytest.mark.gpu
def test_cuda_cell_list_matches_cpu():
    x = torch.rand(20000, 3, generator=torch.Generator().manual_seed(5))
    y = torch.rand(3000, 3, generator=torch.Generator().manual_seed(6))
    xc, yc = x.double().cuda(), y.double().cuda()  # float64: the same boundary decisions as the CPU route
    for r, cap in ((0.03, None), (0.05, 16)):
        a = radius(x, y, r, max_num_neighbors=cap)
        b = radius(xc, yc, r, max_num_neighbors=cap)
        assert b.is_cuda and _sets(b.cpu(), len(y)) == _sets(a, len(y))
    assert _sets(knn(xc, yc, 12).cpu(), len(y)) == _sets(knn(x, y, 12), len(y))
    e = knn_graph(xc, 8, batch=torch.repeat_interleave(torch.arange(4), 5000).cuda())
    assert e.is_cuda and e.shape[1] == 20000 * 8
