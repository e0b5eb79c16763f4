"""The cKDTree route's fast paths (spatial query order, packed-key pair sort, dense kNN rows) against
brute force: lattices full of exact ties, duplicated points, quantized clouds, caps, bipartite sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meshops.graph import _neighbors_kdtree as kd
from meshops.graph import knn, knn_graph, radius, radius_graph


def _lattice(dim: int, m: int) -> np.ndarray:
    g = np.stack(np.meshgrid(*[np.arange(float(m))] * dim, indexing="ij"), -1).reshape(-1, dim)
    return g[np.random.default_rng(dim).permutation(len(g))]  # scrambled order: not the tree order


def _clouds():
    rng = np.random.default_rng(3)
    quant = np.round(rng.random((400, 3)) * 4) / 4  # many exact ties and duplicates (exact in binary)
    dup = np.concatenate([rng.random((150, 3))] * 3)  # every point three times
    return {"lattice2": _lattice(2, 13), "lattice3": _lattice(3, 7), "quantized": quant, "duplicates": dup}


@pytest.mark.parametrize("name", ["lattice2", "lattice3", "quantized", "duplicates"])
def test_knn_graph_equals_brute_with_ties(name):
    x = torch.from_numpy(_clouds()[name])
    for k in (1, 4, 6, 7, 13):
        for loop in (False, True):
            a = knn_graph(x, k, loop=loop, backend="kdtree")
            b = knn_graph(x, k, loop=loop, backend="brute")
            assert torch.equal(a, b), (name, k, loop)


@pytest.mark.parametrize("name", ["lattice2", "lattice3", "quantized", "duplicates"])
def test_radius_graph_equals_brute_with_ties(name):
    x = _clouds()[name]
    scale = 1.0 if name.startswith("lattice") else 0.25
    xt = torch.from_numpy(x)
    for r in (scale, 1.5 * scale, 2.0 * scale):
        for cap in (None, 1, 3, 5, 40):
            for loop in (False, True):
                a = radius_graph(xt, r, loop=loop, max_num_neighbors=cap, backend="kdtree")
                b = radius_graph(xt, r, loop=loop, max_num_neighbors=cap, backend="brute")
                assert torch.equal(a, b), (name, r, cap, loop)


def test_bipartite_equals_brute():
    rng = np.random.default_rng(5)
    # integer coordinates: squared distances are exact, so every route computes the same distances
    x = np.round(rng.random((700, 3)) * 6)
    y = np.concatenate([x[:100], np.round(rng.random((150, 3)) * 6), 6 * rng.random((50, 3))])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for k in (1, 5, 9):
        assert torch.equal(knn(xt, yt, k, backend="kdtree"), knn(xt, yt, k, backend="brute")), k
    for r, cap in ((1.0, None), (1.8, None), (1.8, 4), (3.0, 2)):
        a = radius(xt, yt, r, max_num_neighbors=cap, backend="kdtree")
        assert torch.equal(a, radius(xt, yt, r, max_num_neighbors=cap, backend="brute")), (r, cap)


def test_dense_capped_route_equals_pair_route():
    """Few kept of many in range takes the bounded-kNN route; it must agree with the pair route."""
    x = np.random.default_rng(8).random((600, 3))
    q1, n1 = kd.kdtree_radius(x, None, 0.4, 3, True)  # ~60 in range, 3 kept: bounded kNN
    assert kd._mean_count(x, x, 0.4) > 12
    q, nb, d = kd._pairs_self(x, 0.4, loop=False)
    q2, n2 = kd._sort_pairs(q, nb, d, 0.4, x, x)
    keep = kd._rank(q2, len(x)) < 3
    assert np.array_equal(q1, q2[keep]) and np.array_equal(n1, n2[keep])


def test_packed_sort_fixes_colliding_quantized_distances():
    """With few distance bits, many distances share a quantum; the order must still be exact."""
    rng = np.random.default_rng(9)
    x, y = rng.random((300, 3)), rng.random((40, 3))
    q, nb, d = kd._pairs_cross(x, y, 0.5)
    ref = np.lexsort((nb, d, q))
    for bits in (10, 12, 20):
        qs, ns = kd._sort_pairs(q, nb, d, 0.5, x, y, dist_bits=bits)
        assert np.array_equal(qs, q[ref]) and np.array_equal(ns, nb[ref]), bits


def test_spatial_order_is_a_permutation():
    p = np.random.default_rng(1).random((1000, 4))
    o = kd.spatial_order(p)
    assert np.array_equal(np.sort(o), np.arange(1000))
    assert kd.spatial_order(p[:1]).tolist() == [0]


def test_random_clouds_many_sizes_match_brute():
    rng = np.random.default_rng(11)
    for n in (2, 3, 10, 57, 300):
        x = torch.from_numpy(rng.random((n, 3)))
        for k in (1, 2, 9):
            assert torch.equal(knn_graph(x, k, backend="kdtree"), knn_graph(x, k, backend="brute")), (n, k)
        for cap in (None, 2):
            a = radius_graph(x, 0.3, max_num_neighbors=cap, backend="kdtree")
            assert torch.equal(a, radius_graph(x, 0.3, max_num_neighbors=cap, backend="brute")), (n, cap)
