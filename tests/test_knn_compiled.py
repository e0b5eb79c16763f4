"""The compiled (numba) kNN against its reference, scipy's cKDTree, on random inputs (uniform,
clustered, duplicated, lattice), self and cross queries, with and without a distance bound."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

pytest.importorskip("numba")

from meshops.geometry import _kdtree_numba as kn  # noqa: E402
from meshops.graph import _neighbors_kdtree as kd  # noqa: E402


def _clouds():
    rng = np.random.default_rng(3)
    yield "uniform", rng.random((3000, 3))
    c = rng.normal(size=(20, 3)) * 5
    yield "clustered", np.concatenate([c[i] + rng.normal(scale=10.0 ** -rng.integers(0, 4), size=(150, 3)) for i in range(20)])
    base = rng.random((700, 3))
    yield "duplicated", np.concatenate([base, base[:300], base[:50]])
    g = np.stack(np.meshgrid(*[np.arange(12.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    yield "lattice", g
    yield "tiny", rng.random((5, 3))


def _tree(x):
    perm, xp = kn.kd_order(np.ascontiguousarray(x), kn.LEAF)
    bx, first = kn.build_boxes(xp, kn.LEAF)
    return perm, xp, bx, first


@pytest.mark.parametrize("name,x", list(_clouds()))
@pytest.mark.parametrize("k", [1, 3, 10, 33])
def test_self_query_matches_ckdtree(name, x, k):
    k = min(k, len(x))
    perm, xp, bx, first = _tree(x)
    assert np.array_equal(np.sort(perm), np.arange(len(x))) and np.array_equal(xp, x[perm])
    d, j = kn.query(xp, bx, first, xp, k, np.inf, 0)
    dr, jr = cKDTree(xp).query(xp, k=k + 1)
    dr, jr = dr.reshape(len(x), k + 1), jr.reshape(len(x), k + 1)
    assert np.array_equal(d, dr[:, :k])  # the same distances, bit for bit
    # the same neighbours up to exact ties: each returned index is at the returned distance
    assert np.array_equal(np.linalg.norm(xp[j] - xp[:, None], axis=-1), d)
    untied = (np.diff(dr, axis=1) > 0).all(1)  # no tie among the k + 1 nearest
    assert untied.any() or name in ("lattice", "duplicated")
    assert np.array_equal(j[untied], jr[untied, :k])


@pytest.mark.parametrize("name,x", list(_clouds()))
def test_cross_query_with_bound_matches_ckdtree(name, x):
    rng = np.random.default_rng(7)
    lo, hi = x.min(0), x.max(0)
    y = lo + (hi - lo) * rng.random((800, 3)) * 1.2 - 0.1 * (hi - lo)
    perm, xp, bx, first = _tree(x)
    ext = float(np.linalg.norm(hi - lo))
    for k, bound in [(1, np.inf), (3, np.inf), (5, 0.05 * ext), (12, 0.2 * ext)]:
        k = min(k, len(x))
        d, j = kn.query(xp, bx, first, np.ascontiguousarray(y), k, bound, -1)
        dr, jr = cKDTree(xp).query(y, k=k + 1, distance_upper_bound=bound)
        dr, jr = dr.reshape(len(y), k + 1), jr.reshape(len(y), k + 1)
        assert np.array_equal(d, dr[:, :k]), (k, bound)
        assert np.array_equal(j == len(x), jr[:, :k] == len(x))  # the same rows miss the same slots
        fin = np.isfinite(dr)
        untied = ((np.diff(np.where(fin, dr, 1e300), axis=1) > 0) | ~fin[:, 1:]).all(1)
        assert np.array_equal(j[untied], jr[untied, :k])


def test_workers_do_not_change_the_result(monkeypatch):
    x = np.random.default_rng(1).random((20000, 3))
    out = []
    for w in ("1", "-1"):
        monkeypatch.setenv("MESHOPS_WORKERS", w)
        out.append(kd.nearest(x, None, 9))
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])


def test_nearest_and_knn_keep_the_cKDTree_route_for_large_k():
    x = np.random.default_rng(2).random((400, 3))
    d, j = kd.nearest(x, None, kn.MAX_K + 5)
    dr, jr = cKDTree(x).query(x, k=kn.MAX_K + 5)
    assert np.array_equal(d, dr)
