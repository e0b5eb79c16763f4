"""Graph building's fast paths against plain references on random inputs: CSR symmetrization and
components, chunked edge features, the Morton-sorted tree queries with guessed bounds, coherent
(mesh-ordered) input, grid levels and the lazy level-0 connectivity check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from meshops.graph import _neighbors_kdtree as kd
from meshops.graph import build, knn_graph
from meshops.graph.build import _edge_features, _edge_features_numpy
from meshops.graph.hierarchy import _up_map, build_level, n_components, symmetric_csr, symmetric_edges


def _sym_ref(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    keep = a != b
    a, b = a[keep], b[keep]
    key = np.unique(np.concatenate([a * n + b, b * n + a]))
    return np.stack([key // n, key % n])


@pytest.mark.parametrize("n", [1, 2, 7, 300, 5000])
def test_symmetric_edges_equal_sorted_unique(n):
    rng = np.random.default_rng(n)
    for e in (0, 1, 5, 40, 20000):
        p = rng.integers(0, n, (2, e))
        out = symmetric_edges(p, n)
        assert out.dtype == np.int64 and np.array_equal(out, _sym_ref(p[0], p[1], n)), (n, e)
        assert np.array_equal(symmetric_edges(p.T.copy(), n), out) or e == 2  # (E, 2) layout too
        grouped = p[:, np.argsort(p[1], kind="stable")]  # grouped by target, as kNN rows are
        assert np.array_equal(symmetric_edges(grouped, n), out)


def test_components_csr_and_edges_equal_undirected_reference():
    rng = np.random.default_rng(1)
    for n, e in [(10, 3), (500, 300), (2000, 2500), (3000, 9000)]:
        p = rng.integers(0, n, (2, e))
        ref_k, ref_lab = connected_components(coo_matrix((np.ones(e), (p[0], p[1])), shape=(n, n)), directed=False)
        s = symmetric_edges(p, n)
        for arg in (symmetric_csr(p, n), s):
            k, lab = n_components(arg, n, symmetric=True)
            assert k == ref_k
            # the same partition: labels map one to one
            assert len(set(zip(lab.tolist(), ref_lab.tolist(), strict=True))) == ref_k


def test_chunked_edge_features_bit_equal_plain_formula():
    rng = np.random.default_rng(2)
    pos = rng.normal(size=(1000, 3)) * 10
    e = rng.integers(0, 1000, (2, 100_003))
    d = pos[e[1]] - pos[e[0]]
    ref = np.concatenate([d, np.linalg.norm(d, axis=1, keepdims=True)], 1).astype(np.float32)
    for chunk in (1, 7, 1 << 15, 1 << 20):
        assert np.array_equal(_edge_features_numpy(pos, e, np.float32, chunk=chunk), ref)
    assert np.array_equal(_edge_features(pos, e, np.float32), ref)  # the compiled route
    assert _edge_features(pos, np.zeros((2, 0), np.int64), np.float32).shape == (0, 4)


@pytest.mark.parametrize("order", ["random", "sorted"])
def test_nearest_equals_plain_ckdtree(order):
    rng = np.random.default_rng(4)
    x = rng.random((30_000, 3))
    y = rng.random((20_000, 3))
    if order == "sorted":  # a coherent (mesh-like) order: the tree is built on the points as they are
        x, y = x[kd.spatial_order(x)], y[kd.spatial_order(y)]
        assert kd.coherent(x) and kd.coherent(y)
    else:
        assert not kd.coherent(x)
    for yy, k, bound in [(None, 9, np.inf), (y, 3, np.inf), (y, 5, 0.03), (None, 4, 0.02)]:
        d, j = kd.nearest(x, yy, k, bound)
        d0, j0 = cKDTree(x).query(x if yy is None else yy, k=k, distance_upper_bound=bound)
        assert np.array_equal(d, d0)
        assert np.array_equal(j, j0)  # random points: no ties, the same neighbours


def test_guessed_bounds_equal_one_query_on_graded_points():
    rng = np.random.default_rng(5)
    # density varying by 1e4 along x: block-to-block guesses are often too small
    x = np.concatenate([rng.random((20_000, 3)) * [1e-2, 1, 1], rng.random((5000, 3)) * [100, 1, 1]])
    x = x[np.argsort(x[:, 0])]
    tree = kd._tree(x)
    d, j = kd._query_blocks(tree, x, 7, np.inf)
    d0, j0 = tree.query(x, k=7)
    assert np.array_equal(d, d0) and np.array_equal(j, j0)
    d, j = kd._query_blocks(tree, x, 7, 0.05)
    d0, j0 = tree.query(x, k=7, distance_upper_bound=0.05)
    assert np.array_equal(d, d0) and np.array_equal(j, j0)


def test_knn_graph_on_coherent_input_with_ties_equals_brute():
    # quantized points in sorted (coherent) order: exact ties everywhere, the tree on the input as is
    rng = np.random.default_rng(6)
    x = np.round(rng.random((9000, 3)) * 12) / 12
    x = x[kd.spatial_order(x)]
    assert kd.coherent(x)
    xt = torch.from_numpy(x)
    for k in (3, 8):
        assert torch.equal(knn_graph(xt, k, backend="kdtree"), knn_graph(xt, k, backend="brute")), k


def test_grid_level_maps_and_edges_equal_plain_queries():
    rng = np.random.default_rng(7)
    fine = rng.random((60_000, 3))
    lv = build_level(fine, 25_000, k=6, sampling="grid")
    up, up_w = _up_map(fine, cKDTree(lv.pos), len(lv.pos), 3)
    assert np.array_equal(lv.up, up) and np.array_equal(lv.up_w, up_w)
    _, nb = cKDTree(lv.pos).query(lv.pos, k=7)
    rows = np.repeat(np.arange(len(lv.pos)), 7)
    assert np.array_equal(lv.edges, _sym_ref(rows, nb.ravel(), len(lv.pos)))
    d, j = cKDTree(lv.pos).query(fine, k=3)
    keep = d <= lv.radius
    keep[:, 0] = True
    ref = np.stack([np.broadcast_to(np.arange(len(fine))[:, None], keep.shape)[keep], j[keep]])
    assert np.array_equal(lv.down, ref)


def test_grid_level_of_random_points_comes_in_a_coherent_order():
    # points in random order: the coarse nodes come in their tree's k-d order, not in index order
    rng = np.random.default_rng(9)
    fine = rng.random((80_000, 3))
    lv = build_level(fine, 20_000, k=6, sampling="grid")
    assert not kd.coherent(fine[np.sort(lv.index)]) and kd.coherent(lv.pos)
    assert np.array_equal(lv.pos, fine[lv.index])
    assert len(np.unique(lv.index)) == len(lv.index) == 20_000
    # the maps name the coarse nodes in that order: restriction of the coordinates stays near them
    coarse_mean = np.zeros((len(lv.pos), 3))
    np.add.at(coarse_mean, lv.down[1], lv.down_w[:, None] * fine[lv.down[0]])
    assert np.abs(coarse_mean - lv.pos).max() < 2 * lv.radius


def test_connectivity_asked_only_when_needed_same_result():
    rng = np.random.default_rng(8)
    # two far clusters: level 0 is disconnected, so coarse levels must stay as sampled (not joined)
    two = np.concatenate([rng.random((3000, 3)), rng.random((3000, 3)) + 50.0])
    g = build(two, {"levels": 3, "k": 6})
    assert n_components(g.edge_index.numpy(), 6000)[0] == 2
    for lv in (1, 2):
        assert n_components(g[f"edge_index_{lv}"].numpy(), g.level_size(lv))[0] == 2
    # one cloud with a coarse level of tiny radius: level 0 connected, so every level gets connected
    one = rng.random((4000, 3))
    g = build(one, {"levels": 3, "k": 8, "radius": [None, 1e-3, 1e-3]})
    for lv in (1, 2):
        assert n_components(g[f"edge_index_{lv}"].numpy(), g.level_size(lv))[0] == 1
