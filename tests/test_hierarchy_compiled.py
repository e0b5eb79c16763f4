"""The compiled (numba) kernels of a hierarchy build against their numpy/scipy references, bit for
bit, on random inputs: edge features, the component count, the grid level's down and up maps,
the Morton order; and whole builds with the kernels on and off."""

import importlib

import numpy as np
import pytest
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

pytest.importorskip("numba")

import meshops.graph.hierarchy as gh  # noqa: E402
from meshops.graph import _hierarchy_numba as hn  # noqa: E402
from meshops.graph import _neighbors_kdtree as kd  # noqa: E402
from meshops.graph import build  # noqa: E402

gb = importlib.import_module("meshops.graph.build")  # the module (``meshops.graph.build`` is also the function)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_edge_features_match_numpy(dim, dtype):
    rng = np.random.default_rng(dim)
    pos = rng.normal(size=(500, dim)) * 10.0 ** rng.integers(-3, 4, size=(500, 1))
    e = rng.integers(0, 500, size=(2, 4000))
    out = gb._edge_features(pos, e, dtype)
    ref = gb._edge_features_numpy(pos, e, dtype, chunk=333)
    assert out.dtype == dtype and np.array_equal(out, ref)
    assert np.array_equal(ref[:, :dim], (pos[e[1]] - pos[e[0]]).astype(dtype))


def test_count_components_matches_scipy():
    rng = np.random.default_rng(0)
    for n, m in [(1, 0), (10, 0), (200, 150), (2000, 1900), (2000, 4000)]:
        e = rng.integers(0, n, size=(2, m))
        ref = connected_components(coo_matrix((np.ones(m), (e[0], e[1])), shape=(n, n)), directed=False)[0]
        assert gh.count_components(e, n) == ref == gh.n_components(e, n)[0]


def test_grid_maps_match_numpy():
    rng = np.random.default_rng(1)
    n, mc, kq = 3000, 400, 4
    dd = np.sort(rng.random((n, kq)) * rng.choice([0.01, 0.1, 1.0], size=(n, 1)), axis=1)
    dd[:40, 0] = 0.0  # fine nodes that are coarse nodes
    jj = rng.integers(0, mc, size=(n, kq))
    for kd_, r in [(1, 0.05), (3, 0.05), (3, 10.0), (4, 1e-9)]:
        got, ref = hn.grid_down_map(dd, jj, kd_, r, mc), gh._grid_down_weights(dd, jj, kd_, r, mc)
        for a, b in zip(got, ref, strict=True):
            assert np.array_equal(a, b)
    for k in (1, 3, 4):
        tol = 1e-12
        pairs, w = hn.idw_up_map(np.ascontiguousarray(dd[:, :k]), np.ascontiguousarray(jj[:, :k]), k, tol)
        ref, wr = gh._up_weights(dd[:, :k], jj[:, :k], tol)
        assert np.array_equal(pairs, ref) and np.array_equal(w, wr)
        assert np.allclose(np.bincount(pairs[1], weights=w, minlength=n), 1.0)


def test_morton_order_matches_numpy(monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.random((5000, 3)) * [1.0, 3.0, 0.01] + [2.0, -1.0, 5.0]
    x[:100] = x[100:200]
    fast = kd.spatial_order(x)
    monkeypatch.setattr(kd, "_knn", None)
    assert np.array_equal(fast, kd.spatial_order(x))


@pytest.mark.parametrize("spec", [{"levels": 3, "k": 8, "sampling": "grid"}, {"levels": 3, "k": 8},
                                  {"levels": 2, "sampling": "grid", "up_k": 4}])
def test_build_same_with_and_without_kernels(spec, monkeypatch):
    x = np.random.default_rng(4).random((20000, 3))
    x[:30] = x[30:60]  # duplicates: fine nodes at distance 0 of a coarse node
    g1 = build(x, spec)
    monkeypatch.setattr(gh, "_compiled", None)
    monkeypatch.setattr(gb, "_compiled", None)
    g0 = build(x, spec)
    keys = [k for k in g0.keys() if isinstance(g0[k], torch.Tensor)]
    assert len(keys) >= 13
    assert [k for k in keys if not torch.equal(g0[k], g1[k])] == []


def test_symmetric_rows_match_scipy(monkeypatch):
    rng = np.random.default_rng(5)
    n = 3000
    nb = rng.integers(0, n, size=(n, 9))
    nb[:40, 3] = nb[:40, 2]  # a repeated neighbour
    nb[40:80, 0] = np.arange(40, 80)  # self-loops
    rows = np.repeat(np.arange(n), 9)
    for pairs in (np.stack([nb.ravel(), rows]), np.stack([rows, nb.ravel()]), np.stack([rows[:-50], nb.ravel()[:-50]])):
        fast = gh.symmetric_edges(pairs, n)
        with monkeypatch.context() as m:
            m.setattr(gh, "_compiled", None)
            assert np.array_equal(fast, gh.symmetric_edges(pairs, n))
    padded = nb.copy()
    padded[::7, -1] = n  # missing neighbours (index n) in dense rows are dropped
    got = hn.symmetric_rows(np.arange(0, padded.size + 1, 9, dtype=np.int64), padded.reshape(-1), n)
    keep = padded < n
    monkeypatch.setattr(gh, "_compiled", None)
    ref = gh.symmetric_edges(np.stack([np.broadcast_to(np.arange(n)[:, None], padded.shape)[keep], padded[keep]]), n)
    assert np.array_equal(got, ref)


def test_second_nearest_matches_ckdtree():
    from scipy.spatial import cKDTree

    from meshops.geometry import sampling

    rng = np.random.default_rng(6)
    x = rng.random((5000, 3)) * [1.0, 5.0, 0.2]
    x[:20] = x[20:40]  # duplicates: second nearest at distance 0
    q = x[rng.permutation(5000)[:700]]
    ref = cKDTree(x).query(q, k=2)[0][:, 1]
    assert np.array_equal(sampling._second_nearest(x, q), ref)
