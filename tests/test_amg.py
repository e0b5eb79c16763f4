"""AMG multi-graph block: kNN correctness, permutation equivariance, mixed-size batches, the models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meshops.nn.amg import AMGBlock, GraphAttention, knn_dense


def _as_set(ei: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in ei.t().tolist()}


def test_knn_dense_matches_brute_force_per_graph():
    torch.manual_seed(0)
    x = torch.randn(40, 3, dtype=torch.float64)
    batch = torch.tensor([1] * 15 + [0] * 20 + [2] * 5)[torch.randperm(40)]
    ei = knn_dense(x, 6, batch)
    want = set()
    for g in range(3):
        idx = torch.nonzero(batch == g)[:, 0]
        d = torch.cdist(x[idx], x[idx])
        d.fill_diagonal_(float("inf"))
        k = min(6, len(idx) - 1)
        nb = d.argsort(1)[:, :k]
        for i in range(len(idx)):
            for j in nb[i]:
                want.add((int(idx[j]), int(idx[i])))
    assert _as_set(ei) == want
    assert (batch[ei[0]] == batch[ei[1]]).all()
    assert (ei[0] != ei[1]).all()


def test_graph_attention_weights_sum_to_one():
    """With v = constant the attention output is that constant's projection at every node with in-edges."""
    torch.manual_seed(0)
    ga = GraphAttention(8, heads=2).double()
    with torch.no_grad():
        ga.kv.weight[8:].zero_()
        ga.kv.bias[8:] = 1.0
    x = torch.randn(10, 8, dtype=torch.float64)
    ei = knn_dense(x, 3)
    out = ga(x, ei)
    ref = ga.out(torch.ones(1, 8, dtype=torch.float64)).expand(10, 8)
    torch.testing.assert_close(out, ref)


@pytest.fixture
def block():
    torch.manual_seed(0)
    return AMGBlock(16, heads=4, k_local=5, k_global=4, slices=6).double()


def test_amg_block_permutation_equivariant(block):
    torch.manual_seed(3)
    x = torch.randn(60, 16, dtype=torch.float64)
    pos = torch.rand(60, 2, dtype=torch.float64)
    perm = torch.randperm(60)
    out = block(x, pos)
    torch.testing.assert_close(block(x[perm], pos[perm]), out[perm])


def test_amg_block_mixed_size_batch(block):
    torch.manual_seed(4)
    sizes = [9, 33, 20]
    xs = [torch.randn(n, 16, dtype=torch.float64) for n in sizes]
    ps = [torch.rand(n, 3, dtype=torch.float64) for n in sizes]
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    out = block(torch.cat(xs), torch.cat(ps), batch, 3)
    ref = torch.cat([block(x, p) for x, p in zip(xs, ps, strict=True)])
    torch.testing.assert_close(out, ref)
    # interleaved nodes of the three graphs
    perm = torch.randperm(len(batch))
    torch.testing.assert_close(block(torch.cat(xs)[perm], torch.cat(ps)[perm], batch[perm], 3), out[perm])


def test_amg_block_branches_and_errors():
    with pytest.raises(ValueError, match="subset of local/global/physics"):
        AMGBlock(8, heads=2, branches=("local", "far"))
    blk = AMGBlock(8, heads=2, branches=("global",))
    with pytest.raises(ValueError, match="pos has 4 rows but x has 5"):
        blk(torch.randn(5, 8), torch.rand(4, 3))
    with pytest.raises(ValueError, match="k must be >= 1"):
        knn_dense(torch.randn(4, 2), 0)


def _grid_case(n: int):
    from meshops.graph import build
    from meshops.mesh import CellBlock, Mesh

    xs = np.linspace(0, 1, n)
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel(), np.zeros(n * n)], 1)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()
    tri = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    g = build(Mesh(points=pts, cells=[CellBlock("triangle", tri)]), {"levels": 3, "ratio": 0.25})
    g.x = torch.randn(g.num_nodes, 3)
    return g


@pytest.mark.parametrize("name,cfg", [
    ("amg", dict(hidden=16, n_layers=2, heads=2, slices=4)),
    ("amg", dict(hidden=16, n_layers=1, heads=2, slices=4, local="mesh")),
    ("transolver", dict(hidden=16, n_layers=2, heads=2, slices=4)),
    ("mgno", dict(hidden=8, n_layers=2)),
    ("mgno", dict(hidden=8, n_layers=1, levels=3, cycle="W", share_levels=False, learned_transfer=True)),
])
def test_registered_models_batch_of_different_sizes(name, cfg):
    from torch_geometric.data import Batch

    from meshops.models import create

    torch.manual_seed(0)
    model = create(name, in_channels=3, out_channels=2, **cfg)
    g1, g2 = _grid_case(6), _grid_case(9)
    b = Batch.from_data_list([g1, g2])
    out = model(b)
    assert out.shape == (g1.num_nodes + g2.num_nodes, 2)
    torch.testing.assert_close(out, torch.cat([model(g1), model(g2)]), atol=1e-5, rtol=1e-4)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
