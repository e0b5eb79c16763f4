"""MeshGraph -> stock PyG objects: to_pyg, to_pyg_hetero, and batching with correct offsets at every level."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import Delaunay
from torch_geometric.data import Data, HeteroData
from torch_geometric.loader import DataLoader

from meshops.graph import build, restrict
from meshops.graph.pyg import hierarchy_loader, level_name
from meshops.mesh import CellBlock, Mesh


def tri_mesh(n: int, seed: int) -> Mesh:
    rng = np.random.default_rng(seed)
    pts = np.c_[rng.uniform(size=(n, 2)), np.zeros(n)]
    tri = Delaunay(pts[:, :2]).simplices.astype(np.int64)
    u = np.sin(3 * pts[:, 0]) + pts[:, 1]
    return Mesh(pts, [CellBlock("triangle", tri)], point_data={"u": u, "v": np.c_[pts[:, 0], -pts[:, 1]]}, dim=2)


def graphs(sizes=(40, 57, 33), levels: int = 3) -> list:
    out = []
    for i, n in enumerate(sizes):
        g = build(tri_mesh(n, i), {"node_fields": ["u", "v"], "levels": levels, "ratio": 0.4})
        g.y = g.x[:, :1].clone()
        out.append(g)
    return out


def test_to_pyg_level0_is_plain_data_with_node_tensors():
    g = graphs((30,))[0]
    d = g.to_pyg()
    assert type(d) is Data
    assert torch.equal(d.x, g.x) and torch.equal(d.edge_index, g.edge_index) and torch.equal(d.y, g.y)
    assert torch.equal(d.edge_attr, g.edge_attr) and torch.equal(d.node_type, g.node_type)
    assert not any(k.startswith(("pos_", "down_", "up_", "edge_index_")) for k in d.keys())
    d.validate(raise_on_error=True)


def test_to_pyg_coarse_level_restricts_x():
    g = graphs((50,))[0]
    for lv in (1, 2):
        d = g.to_pyg(level=lv)
        assert d.num_nodes == g.level_size(lv)
        assert torch.equal(d.edge_index, g[f"edge_index_{lv}"])
        x = g.x
        for k in range(1, lv + 1):
            x = restrict(x, g, k)
        torch.testing.assert_close(d.x, x)
        d.validate(raise_on_error=True)
    with pytest.raises(ValueError, match="level 3 does not exist"):
        g.to_pyg(level=3)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_to_pyg_batches_with_level_offsets(level):
    gs = graphs()
    batch = next(iter(DataLoader([g.to_pyg(level) for g in gs], batch_size=len(gs))))
    sizes = [g.level_size(level) for g in gs]
    key = "edge_index" if level == 0 else f"edge_index_{level}"
    want = torch.cat([g[key] + off for g, off in zip(gs, np.cumsum([0] + sizes[:-1]), strict=True)], dim=1)
    assert torch.equal(batch.edge_index, want)
    assert torch.equal(batch.batch, torch.repeat_interleave(torch.arange(len(gs)), torch.tensor(sizes)))


def _offsets(gs, level):
    sizes = [g.level_size(level) for g in gs]
    return np.cumsum([0] + sizes[:-1]), sizes


def test_hetero_batches_with_offsets_at_every_level():
    gs = graphs()
    hs = [g.to_pyg_hetero() for g in gs]
    assert isinstance(hs[0], HeteroData)
    hs[0].validate(raise_on_error=True)
    assert set(hs[0].node_types) == {level_name(i) for i in range(3)}
    b = next(iter(DataLoader(hs, batch_size=len(gs))))
    for lv in range(3):
        off, sizes = _offsets(gs, lv)
        node = b[level_name(lv)]
        assert node.num_nodes == sum(sizes)
        assert torch.equal(node.batch, torch.repeat_interleave(torch.arange(len(gs)), torch.tensor(sizes)))
        key = "edge_index" if lv == 0 else f"edge_index_{lv}"
        want = torch.cat([g[key] + o for g, o in zip(gs, off, strict=True)], dim=1)
        assert torch.equal(b[level_name(lv), "to", level_name(lv)].edge_index, want)
        if lv == 0:
            continue
        offf, _ = _offsets(gs, lv - 1)
        shift = [torch.tensor([[a], [c]]) for a, c in zip(offf, off, strict=True)]
        want = torch.cat([g[f"down_{lv}"] + s for g, s in zip(gs, shift, strict=True)], dim=1)
        assert torch.equal(b[level_name(lv - 1), "down", level_name(lv)].edge_index, want)
        want = torch.cat([g[f"up_{lv}"] + s.flip(0) for g, s in zip(gs, shift, strict=True)], dim=1)
        assert torch.equal(b[level_name(lv), "up", level_name(lv - 1)].edge_index, want)
        torch.testing.assert_close(b[level_name(lv - 1), "down", level_name(lv)].edge_weight,
                                   torch.cat([g[f"down_w_{lv}"] for g in gs]))


def test_hetero_restriction_in_batch_matches_per_graph():
    """Restricting the batched level-0 x through the batched down map gives each graph's own level-1 x."""
    gs = graphs()
    b = next(iter(DataLoader([g.to_pyg_hetero() for g in gs], batch_size=len(gs))))
    e = b[level_name(0), "down", level_name(1)]
    x1 = torch.zeros(b[level_name(1)].num_nodes, b[level_name(0)].x.size(1))
    x1.index_add_(0, e.edge_index[1], b[level_name(0)].x[e.edge_index[0]] * e.edge_weight[:, None])
    torch.testing.assert_close(x1, b[level_name(1)].x)


def test_hetero_works_with_to_hetero_model():
    from torch_geometric.nn import GraphSAGE, to_hetero

    h = graphs((40,))[0].to_pyg_hetero()
    model = to_hetero(GraphSAGE((-1, -1), 16, num_layers=2, out_channels=1), h.metadata(), aggr="sum")
    out = model(h.x_dict, h.edge_index_dict)
    assert set(out) == set(h.node_types)
    assert out[level_name(0)].shape == (h[level_name(0)].num_nodes, 1)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_hierarchy_loader_meshgraph_follow_batch():
    gs = graphs()
    b = next(iter(hierarchy_loader(gs, batch_size=len(gs))))
    for lv in (1, 2):
        off, sizes = _offsets(gs, lv)
        assert torch.equal(b[f"pos_{lv}_batch"], torch.repeat_interleave(torch.arange(len(gs)), torch.tensor(sizes)))
        want = torch.cat([g[f"edge_index_{lv}"] + o for g, o in zip(gs, off, strict=True)], dim=1)
        assert torch.equal(b[f"edge_index_{lv}"], want)
    with pytest.raises(ValueError, match="different numbers of levels"):
        hierarchy_loader(gs + graphs((30,), levels=2))


def test_example_trains_stock_graphsage():
    """examples/pyg_graphsage.py: a stock PyG GraphSAGE learns the harmonic dataset from meshops graphs."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "pyg_graphsage.py"
    spec = importlib.util.spec_from_file_location("pyg_graphsage", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = mod.train(cases=16, epochs=30, hidden=32)
    assert r["last"] < 0.3 * r["first"]
    assert r["test_mse"] < 0.35 * r["test_var"], r
