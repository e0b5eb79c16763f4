"""meshops.models: mgn, ugraph, gino on real MeshGraphs; batching must not mix samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from meshops import CellBlock, Mesh, models
from meshops.graph import build

torch.set_num_threads(1)


def _square(n: int, seed: int) -> Mesh:
    from scipy.spatial import Delaunay

    rng = np.random.default_rng(seed)
    pts = np.r_[[[0, 0], [1, 0], [1, 1], [0, 1]], rng.uniform(0.05, 0.95, (n, 2))]
    return Mesh(np.c_[pts, np.zeros(len(pts))], [CellBlock("triangle", Delaunay(pts).simplices)], dim=2)


def _graph(seed: int, levels: int = 3):
    g = build(_square(40 + 5 * seed, seed), {"levels": levels})
    torch.manual_seed(seed)
    g.x = torch.randn(g.num_nodes, 3)
    g.u = torch.randn(1, 2)
    return g


@pytest.mark.parametrize(
    "name,opts",
    [("mgn", {"hidden": 16, "n_blocks": 2}), ("ugraph", {"hidden": 16, "levels": 3, "blocks_per_level": 1}),
     ("gino", {"hidden": 8, "grid": 4})],
)
def test_model_forward_batches_without_mixing_samples(name, opts):
    from torch_geometric.data import Batch

    torch.manual_seed(0)
    m = models.create(name, in_channels=3, out_channels=2, global_channels=2, **opts).eval()
    json.dumps(m.meshops_config)
    assert m.meshops_config["name"] == name
    g1, g2 = _graph(1), _graph(2)
    with torch.no_grad():
        y1, y2 = m(g1), m(g2)
        yb = m(Batch.from_data_list([g1, g2]))
    assert y1.shape == (g1.num_nodes, 2)
    assert torch.allclose(yb, torch.cat([y1, y2]), atol=1e-5)
    # gradients reach every parameter
    m.train()
    m(Batch.from_data_list([g1, g2])).pow(2).mean().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


def test_model_errors_name_the_problem():
    g = _graph(1, levels=1)
    m = models.create("ugraph", in_channels=3, out_channels=1, global_channels=2, hidden=8, levels=3)
    with pytest.raises(ValueError, match="no hierarchy level 1"):
        m(g)
    m = models.create("mgn", in_channels=5, out_channels=1, hidden=8, n_blocks=1)
    with pytest.raises(ValueError, match="expects 5 node input channels, the graph's x has 3"):
        m(g)
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        models.create("nope")
    assert {"mgn", "ugraph", "gino"} <= set(models.available())
