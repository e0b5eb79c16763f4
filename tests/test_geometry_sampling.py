"""Farthest-point sampling (exact vs the textbook O(n m) loop) and voxel sampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from meshops.geometry.sampling import farthest_point_sampling, voxel_sampling


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
