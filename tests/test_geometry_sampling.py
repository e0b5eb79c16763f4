"""Farthest-point sampling (exact vs the textbook O(n m) loop) and voxel sampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from meshops.geometry.sampling import farthest_point_sampling, grid_sampling, voxel_sampling


def brute_fps(p: np.ndarray, m: int, start: int = 0) -> list[int]:
    mind = np.full(len(p), np.inf)
    cur, out = start, []
    for _ in range(m):
        out.append(cur)
        mind = np.minimum(mind, np.linalg.norm(p - p[cur], axis=1))
        cur = int(np.argmax(mind))
    return out


@pytest.mark.parametrize("dim", [2, 3])
def test_fps_matches_brute_force(dim):
    p = np.random.default_rng(dim).random((5000, dim))
    idx, rad = farthest_point_sampling(p, 700, start=17)
    assert idx.tolist() == brute_fps(p, 700, start=17)
    assert np.all(np.diff(rad[1:]) <= 1e-15)  # non-increasing selection distances
    # covering: every point within rad[-1] of the samples chosen before the last
    d, _ = cKDTree(p[idx[:-1]]).query(p)
    assert d.max() <= rad[-1] + 1e-12


def test_fps_duplicates_and_bad_input():
    p = np.repeat(np.eye(3), 5, axis=0)  # 3 distinct points, 15 rows
    idx, _ = farthest_point_sampling(p, 10)
    assert len(idx) == 3 and len({tuple(p[i]) for i in idx}) == 3
    bad = np.zeros((4, 3))
    bad[2, 0] = np.nan
    with pytest.raises(ValueError, match="point 2 has a non-finite coordinate"):
        farthest_point_sampling(bad, 2)
    with pytest.raises(ValueError, match="start=9 is out of range"):
        farthest_point_sampling(np.zeros((3, 3)), 2, start=9)


def test_voxel_sampling_size_and_spread():
    p = np.random.default_rng(0).random((20000, 3))
    idx = voxel_sampling(p, 1000)
    assert abs(len(idx) - 1000) < 250 and len(np.unique(idx)) == len(idx)
    d, _ = cKDTree(p[idx]).query(p)
    assert d.max() < 0.2


@pytest.mark.parametrize("dim", [2, 3])
def test_grid_sampling_exact_size_cover_and_spread(dim):
    rng = np.random.default_rng(dim)
    p = rng.random((20000, dim))
    for m in (1, 7, 500, 5000, 12000):
        idx, h = grid_sampling(p, m)
        assert len(idx) == m and np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < len(p)
        if m >= 500:
            d, _ = cKDTree(p[idx]).query(p)
            assert d.max() <= 2.5 * h * np.sqrt(dim)  # a thinned cell is covered from next door
            # spatially uniform: every cell of a coarse 4^d grid holds samples in proportion
            cell = np.floor(p[idx] * 4).clip(0, 3).astype(int) @ (4 ** np.arange(dim))
            cnt = np.bincount(cell, minlength=4**dim)
            assert cnt.min() >= 0.6 * m / 4**dim
    assert np.array_equal(grid_sampling(p, 500)[0], grid_sampling(p.copy(), 500)[0])  # deterministic


def test_grid_sampling_graded_planar_and_duplicates():
    rng = np.random.default_rng(4)
    # graded: 90% of the points in a thin layer; the samples stay spatially uniform (like FPS)
    p = np.concatenate([rng.random((18000, 3)) * [1, 1, 0.01], rng.random((2000, 3))])
    idx, h = grid_sampling(p, 1000)
    assert len(idx) == 1000 and (p[idx, 2] > 0.01).mean() > 0.5
    # a plane in 3D
    q = np.c_[rng.random((5000, 2)), np.zeros(5000)]
    idx, h = grid_sampling(q, 800)
    assert len(idx) == 800 and cKDTree(q[idx]).query(q)[0].max() <= 2.5 * h * np.sqrt(2)
    # fewer distinct points than asked: all distinct ones first, then duplicates
    dup = np.repeat(rng.random((50, 3)), 4, axis=0)
    idx, _ = grid_sampling(dup, 80)
    assert len(idx) == 80 and len(np.unique(dup[idx], axis=0)) == 50
    with pytest.raises(ValueError, match="non-finite"):
        grid_sampling(np.array([[0.0, np.nan, 0]]), 1)
