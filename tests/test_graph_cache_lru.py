"""GraphCache keeps a bounded LRU in memory; graphs past it come back from disk; off keeps one."""

from __future__ import annotations

import numpy as np

from meshops import CellBlock, Mesh
from meshops.data.graphs import GraphCache


def _mesh(seed: int) -> Mesh:
    from scipy.spatial import Delaunay

    pts = np.random.default_rng(seed).uniform(0, 1, (60, 2))
    return Mesh(np.c_[pts, np.zeros(60)], [CellBlock("triangle", Delaunay(pts).simplices)], dim=2)


def test_lru_is_bounded_and_streams_from_disk(tmp_path):
    meshes = [_mesh(s) for s in range(4)]
    probe = GraphCache(tmp_path / "probe").get(meshes[0], {"levels": 1})
    one = sum(int(v.nbytes) for _, v in probe.items() if hasattr(v, "nbytes"))
    c = GraphCache(tmp_path / "c", memo_bytes=int(2.5 * one))
    for m in meshes:
        c.get(m, {"levels": 1})
    assert c.builds == 4 and len(c._memo) == 2  # only the two most recent stay in memory
    g = c.get(meshes[0], {"levels": 1})  # evicted: read back from disk, not rebuilt
    assert c.builds == 4 and c.hits == 1 and g.num_nodes == 60
    c.get(meshes[0], {"levels": 1})
    assert c.hits == 2 and len(c._memo) == 2


def test_disabled_cache_keeps_only_the_last_graph(tmp_path):
    c = GraphCache(tmp_path / "off", enabled=False)
    for s in range(3):
        c.get(_mesh(s), {"levels": 1})
    assert len(c._memo) == 1 and not (tmp_path / "off").exists()
    c.get(_mesh(2), {"levels": 1})
    assert c.builds == 3 and c.hits == 1
