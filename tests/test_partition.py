"""Graph partitions with halos: partitioned mgn inference and training equal the whole graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meshops import CellBlock, Mesh, models
from meshops.graph import build
from meshops.graph.partition import (
    assign_parts,
    coordinate_bisection,
    make_parts,
    model_hops,
    partition,
    partitioned_backward,
    partitioned_forward,
)

torch.set_num_threads(1)


def _graph(n=300, seed=0):
    from scipy.spatial import Delaunay

    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 1, (n, 3))
    g = build(Mesh(pts, [CellBlock("tetra", Delaunay(pts).simplices)], dim=3), {"levels": 1})
    torch.manual_seed(seed)
    g.x = torch.randn(g.num_nodes, 3)
    g.u = torch.randn(1, 2)
    return g


def test_coordinate_bisection_balances_and_is_spatial():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (1003, 3)) * [4, 1, 1]
    a = coordinate_bisection(p, 5)
    counts = np.bincount(a, minlength=5)
    assert counts.sum() == 1003 and counts.max() - counts.min() <= 1
    # the widest axis is cut: parts are ordered slabs along x
    xs = [p[a == k, 0].mean() for k in range(5)]
    assert np.all(np.diff(xs) > 0)
    with pytest.raises(ValueError, match="method must be 'auto', 'metis' or 'rcb', got 'kway'"):
        assign_parts(10, 2, p[:10], method="kway")


def test_halo_has_every_node_within_hops_and_owned_cover_once():
    g = _graph()
    ei = g.edge_index.numpy()
    assign = coordinate_bisection(g.pos.numpy(), 4)
    parts = make_parts(ei, g.num_nodes, assign, hops=2)
    owned = np.concatenate([p.owned for p in parts])
    assert np.array_equal(np.sort(owned), np.arange(g.num_nodes))
    A = np.zeros((g.num_nodes, g.num_nodes), dtype=bool)
    A[ei[1], ei[0]] = True  # dst <- src
    for p in parts:
        reach = np.zeros(g.num_nodes, dtype=bool)
        reach[p.owned] = True
        for _ in range(2):
            reach |= A[reach].any(axis=0)
        assert set(np.flatnonzero(reach)) == set(p.nodes.tolist())
        # every edge among the part's nodes is there
        inside = np.isin(ei[0], p.nodes) & np.isin(ei[1], p.nodes)
        assert np.array_equal(np.flatnonzero(inside), p.edges)
        assert np.array_equal(p.nodes[p.edge_index], ei[:, p.edges])


@pytest.mark.parametrize("aggregate", ["sum", "mean"])
def test_partitioned_mgn_equals_whole_graph(aggregate):
    g = _graph(2000)
    torch.manual_seed(0)
    m = models.create("mgn", in_channels=3, out_channels=2, global_channels=2, hidden=16, n_blocks=3,
                      aggregate=aggregate).eval().double()
    g.x, g.u = g.x.double(), g.u.double()  # float64: the exact result is exact to 1e-12, a wrong one is not
    parts = partition(g, model_hops(m), n_parts=5, method="rcb")
    assert all(p.nodes.size < g.num_nodes for p in parts)
    with torch.no_grad():
        whole = m(g)
        cut = partitioned_forward(m, g, parts)
    assert torch.allclose(cut, whole, rtol=0, atol=1e-12), (cut - whole).abs().max()
    # a halo one hop short is not enough: the check can fail
    short = partition(g, model_hops(m) - 1, n_parts=5, method="rcb")
    with torch.no_grad():
        wrong = partitioned_forward(m, g, short)
    assert (wrong - whole).abs().max() > 1e-8


def test_partitioned_training_gradient_equals_whole_graph():
    g = _graph(seed=1)
    target = torch.randn(g.num_nodes, 2)
    torch.manual_seed(1)
    m = models.create("mgn", in_channels=3, out_channels=2, global_channels=2, hidden=16, n_blocks=2)
    loss_fn = torch.nn.functional.mse_loss
    whole = loss_fn(m(g), target)
    whole.backward()
    ref = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    total = partitioned_backward(m, g, partition(g, 2, max_nodes_per_part=70, method="rcb"), loss_fn, target)
    assert abs(total - float(whole)) < 1e-5
    for r, p in zip(ref, m.parameters(), strict=True):
        assert torch.allclose(r, p.grad, atol=1e-5)


def test_metis_parts_are_exact_too():
    pytest.importorskip("pymetis")
    g = _graph(800, seed=4)
    m = models.create("mgn", in_channels=3, out_channels=2, global_channels=2, hidden=8, n_blocks=2).eval().double()
    g.x, g.u = g.x.double(), g.u.double()
    parts = partition(g, 2, n_parts=4, method="metis")
    sizes = [p.n_owned for p in parts]
    assert len(parts) == 4 and sum(sizes) == g.num_nodes and min(sizes) > 0.8 * g.num_nodes / 4
    with torch.no_grad():
        assert torch.allclose(partitioned_forward(m, g, parts), m(g), rtol=0, atol=1e-12)


def test_models_without_a_finite_halo_say_why():
    m = models.create("ugraph", in_channels=3, out_channels=1, hidden=8, levels=2)
    with pytest.raises(ValueError, match="model 'ugraph' cannot run on graph parts: its coarse hierarchy"):
        model_hops(m)
    m = models.create("gino", in_channels=3, out_channels=1, hidden=8, grid=4)
    with pytest.raises(ValueError, match="model 'gino' cannot run on graph parts: its latent grid"):
        model_hops(m)


def test_predict_partitions_automatically_and_matches_whole(tmp_path, monkeypatch):
    from pathlib import Path

    from meshops.data import load_dataset
    from meshops.train import inference, load_trained, predict_case, train

    harmonic = str(Path(__file__).resolve().parents[1] / "examples" / "harmonic_dataset.py")
    opts = {"n": 4, "n_interior": 200, "n_side": 12, "degree": 2}
    res = train(dict(dataset=harmonic, dataset_options=opts, model="mgn", model_options={"hidden": 16, "n_blocks": 3},
                     epochs=1, batch_size=2, seed=0, out=str(tmp_path / "h"), progress=False,
                     split_fractions=[0.5, 0.0, 0.5]))
    trained = load_trained(res.last_checkpoint)
    case = load_dataset(harmonic, **opts)[0]
    monkeypatch.setattr(inference, "available_bytes", lambda: 1 << 40)
    d = trained.pipeline.sample(case, targets=False)
    assert inference.plan_parts(trained, d) is None
    whole = predict_case(trained, case)["u"]
    calls = []
    real = inference.plan_parts

    def spy(t, data, available=None):
        parts = real(t, data, available)
        calls.append(parts)
        return parts

    monkeypatch.setattr(inference, "plan_parts", spy)
    need = inference.inference_bytes(trained.model, d.num_nodes, d.edge_index.shape[1])
    monkeypatch.setattr(inference, "available_bytes", lambda: need // 2)  # would not fit: cut automatically
    cut = predict_case(trained, case)["u"]
    assert calls[-1] is not None and len(calls[-1]) >= 2
    np.testing.assert_allclose(cut, whole, rtol=0, atol=2e-5 * float(np.abs(whole).max()))
    trained.config["max_nodes_per_part"] = 40  # asked for in the config
    monkeypatch.setattr(inference, "available_bytes", lambda: 1 << 40)
    cut = predict_case(trained, case)["u"]
    assert len(calls[-1]) == -(-d.num_nodes // 40)
    np.testing.assert_allclose(cut, whole, rtol=0, atol=2e-5 * float(np.abs(whole).max()))


def test_ddp_parts_two_gloo_ranks_equal_one(tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed in this environment")
    worker = str(Path(__file__).with_name("ddp_parts_worker.py"))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, worker, str(tmp_path / "one.pt")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", worker, str(tmp_path / "two.pt")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = torch.load(tmp_path / "one.pt", weights_only=True), torch.load(tmp_path / "two.pt", weights_only=True)
    assert np.allclose(a["losses"], b["losses"], rtol=1e-5)
    assert a["losses"][-1] < a["losses"][0]  # it trains
    for k in a["model"]:
        assert torch.allclose(a["model"][k], b["model"][k], rtol=1e-4, atol=1e-6), k


def test_auto_parts_fit_the_budget_with_their_halos_and_are_built_lazily(monkeypatch):
    from types import SimpleNamespace

    from meshops.graph.partition import PartPlan, partitioned_forward
    from meshops.train import inference

    g = _graph(900)
    m = models.create("mgn", in_channels=3, out_channels=2, hidden=8, n_blocks=4).eval()
    trained = SimpleNamespace(model=m, config={})
    need = inference.inference_bytes(m, g.num_nodes, g.edge_index.shape[1])
    have = need // 2  # the whole graph does not fit
    plan = inference.plan_parts(trained, g, available=have)
    assert isinstance(plan, PartPlan) and len(plan) >= 2
    sizes = plan.sizes()
    fixed = inference.inference_bytes(m, 0, 0)
    assert max(inference.inference_bytes(m, a, b) - fixed for a, b in sizes) <= have // 3
    parts = list(plan)
    assert [p.nodes.size for p in parts] == [a for a, _ in sizes]
    assert all(p.edges.size <= b for p, (_, b) in zip(parts, sizes, strict=True))
    with torch.no_grad():
        torch.testing.assert_close(partitioned_forward(m, g, plan), m(g), rtol=1e-5, atol=1e-5)
