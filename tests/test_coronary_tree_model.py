"""The tree mode of centerline_rbf: Murray split, tree pressure integral, physical coherence, ranges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from meshops.geometry.centerline import Centerline
from meshops.geometry.tube import branch_paths, tube_wall
from meshops.geometry.vessel_tree import vessel_tree
from meshops.models.coronary import CenterlineRBF, attach_centerline, input_ranges, range_warnings
from meshops.models.coronary_tree import ring_coherence, tree_pressure

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT.parent / "shared" / "data" / "simvascular" / "demo_aorta_centerlines.vtp"
SHIPPED = ROOT / "datasets" / "coronary_synthetic" / "model" / "best.pt"


def _curve(start: np.ndarray, direction: np.ndarray, length: float, bend: np.ndarray, n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return start + length * t * direction + length * 0.15 * np.sin(np.pi * t) * bend


def generated_tree(seed: int, stenosis: bool = True) -> Centerline:
    """A coronary-like tree: a main vessel with 2-4 side branches (one with a sub-branch), Murray radii."""
    rng = np.random.default_rng(seed)
    n_main = 80
    main = _curve(np.zeros(3), np.array([0.0, 0.0, 1.0]), rng.uniform(35, 55), np.array([1.0, 0.0, 0.0]), n_main)
    r_main = np.full(n_main, rng.uniform(1.5, 2.0))
    pts, rad, branches, parent = [main], [r_main], [np.arange(n_main)], [(-1, -1)]
    count = n_main
    n_side = int(rng.integers(2, 5))
    for k in range(n_side):
        at = int((k + 1) * n_main / (n_side + 1))
        phi = rng.uniform(0.15, 0.4)
        r_main[at:] *= (1 - phi) ** (1 / 3)
        ang = rng.uniform(0, 2 * np.pi)
        d = np.array([np.cos(ang), np.sin(ang), 1.0]) / np.sqrt(2)
        n = 30
        side = _curve(main[at], d, rng.uniform(12, 25), np.cross(d, [0, 0, 1.0]), n + 1)[1:]
        r_side = np.full(n, r_main[at - 1] * phi ** (1 / 3)) * np.linspace(1.0, 0.9, n)
        if stenosis and k == 0:
            r_side *= 1 - 0.4 * np.exp(-0.5 * ((np.arange(n) - n / 2) / 3.0) ** 2)
        pts.append(side)
        rad.append(r_side)
        branches.append(np.concatenate([[at], count + np.arange(n)]))
        parent.append((0, at))
        count += n
    if stenosis:
        r_main *= 1 - 0.5 * np.exp(-0.5 * ((np.arange(n_main) - n_main * 0.3) / 4.0) ** 2)
    return Centerline(np.concatenate(pts), branches, np.concatenate(rad), parent)


def _graph(cl: Centerline, q: float, n_around: int = 16):
    wall = tube_wall(cl, n_around=n_around)
    fd = wall.field_data
    d = Data(pos=torch.tensor(wall.points, dtype=torch.float32))
    d = attach_centerline(d, fd["centerline_points"], fd["centerline_radius"], q, branches=fd["centerline_branches"])
    d.wall_branch = torch.as_tensor(wall.point_data["branch"]).long()  # what prepare_sample adds for tube walls
    return wall, d


def _random_tree_model(seed: int) -> CenterlineRBF:
    torch.manual_seed(seed)
    m = CenterlineRBF(physics="tree", d_model=32, n_heads=4, n_layers=1, num_centers=64)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.5)  # far from the zero-initialized heads: coherence must not depend on training
    m.target_mean.copy_(torch.tensor([100.0, 3.0]))
    m.target_std.copy_(torch.tensor([200.0, 5.0]))
    return m.eval()


def _physical(model: CenterlineRBF, d) -> np.ndarray:
    with torch.no_grad():
        out = model(d)
    return (out * model.target_std + model.target_mean).numpy()


def test_murray_split_conserves_flow_and_follows_r3():
    cl = generated_tree(3, stenosis=False)
    t = vessel_tree(cl.points, cl.radius, branch_paths(cl))
    assert t.parent[0] == -1 and (t.parent[1:] == 0).all() and (t.generation[1:] == 1).all()
    out = t.flow_fraction(0, np.array([t.length[0]]))[0] + t.q_in[1:].sum()
    assert out == pytest.approx(1.0, abs=1e-12)
    # first junction: the side branch takes r_c^3 / (r_c^3 + r_continuing^3), radii 2 r_junction downstream
    sj, c, qc = t.children[0][0]
    paths = branch_paths(cl)
    s0 = np.cumsum(np.r_[0, np.linalg.norm(np.diff(cl.points[paths[0]], axis=0), axis=1)])
    sc = np.cumsum(np.r_[0, np.linalg.norm(np.diff(cl.points[paths[c]], axis=0), axis=1)])
    r_j = np.interp(sj, s0, cl.radius[paths[0]])
    r_c = np.interp(2 * r_j, sc, cl.radius[paths[c]])
    r_d = np.interp(sj + 2 * r_j, s0, cl.radius[paths[0]])
    assert qc == pytest.approx(r_c**3 / (r_c**3 + r_d**3), rel=1e-9)


def test_tree_pressure_is_exact_for_constant_gradient_and_continuous():
    # main: 5 points at s = 0..4; child attached at s = 2.5 (between points 2 and 3), 3 points
    s = torch.tensor([0.0, 1, 2, 3, 4, 0, 1, 2])
    branch = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1])
    up = torch.zeros(8, dtype=torch.long)
    up[5] = 2 - 5
    lam = torch.zeros(8)
    lam[5] = 0.5
    gen = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1])
    g = torch.full((8,), 2.0)
    p = tree_pressure(g, s, branch, torch.zeros(8, dtype=torch.long), up, lam, gen)
    assert torch.allclose(p[:5], -2.0 * s[:5])
    assert torch.allclose(p[5:], -2.0 * (2.5 + s[5:]))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tree_outputs_are_physically_coherent_on_generated_trees(seed):
    cl = generated_tree(seed)
    wall, d = _graph(cl, q=float(np.random.default_rng(seed).uniform(0.5, 2.5)))
    out = _physical(_random_tree_model(seed), d)
    c = ring_coherence(wall, out[:, 0], out[:, 1], 16)
    assert c["monotone_fraction"] >= 0.95, c
    assert c["junction_jump_rel"] < 0.02, c
    assert c["wss_min"] >= 0.0 and c["pressure_drop"] > 0, c


def test_batched_trees_match_single_trees():
    m = _random_tree_model(7)
    graphs = [_graph(generated_tree(s), q=1.0 + s)[1] for s in (4, 5)]
    single = [_physical(m, g) for g in graphs]
    both = _physical(m, Batch.from_data_list(graphs))
    single_all = np.concatenate(single)
    assert (np.abs(single_all - both) <= 1e-3 * np.abs(single_all).max(0)).all()


@pytest.mark.skipif(not DEMO.is_file(), reason=f"{DEMO} absent (the SimVascular demo lives in ../shared)")
def test_demo_aorta_tree_is_coherent():
    from meshops.graph.centerline import read_centerline

    cl = read_centerline(DEMO, require_radius=True)
    cl = Centerline(cl.points * 10.0, cl.branches, cl.radius * 10.0, cl.parent)  # cm -> mm
    wall, d = _graph(cl, q=5.0)
    for model in (_random_tree_model(11), *_shipped()):
        out = _physical(model, d)
        c = ring_coherence(wall, out[:, 0], out[:, 1], 16)
        assert c["monotone_fraction"] >= 0.95 and c["junction_jump_rel"] < 0.02 and c["wss_min"] >= 0, c


def _shipped() -> list[CenterlineRBF]:
    from meshops.train.inference import load_trained

    m = load_trained(SHIPPED).model
    return [m] if getattr(m, "physics", "none") == "tree" else []


def test_shipped_model_is_tree_mode_and_coherent_on_generated_trees():
    (model,) = _shipped() or [None]
    assert model is not None, f"{SHIPPED} is not a physics='tree' centerline_rbf"
    assert model.stored_ranges(), "the shipped checkpoint stores no training ranges"
    for seed in (20, 21):
        wall, d = _graph(generated_tree(seed), q=1.5)
        out = _physical(model, d)
        c = ring_coherence(wall, out[:, 0], out[:, 1], 16)
        assert c["monotone_fraction"] >= 0.95 and c["junction_jump_rel"] < 0.02 and c["wss_min"] >= 0, c


def test_range_warnings_name_the_value():
    m = _random_tree_model(0)
    m.train_ranges.copy_(torch.tensor([[1.0, 2.0], [0.5, 2.5], [0.1, 2.5], [10, 60], [0, 0.5], [1, 8]]))
    _, d = _graph(generated_tree(0), q=5.0)
    w = range_warnings(m, d)
    assert any("inlet flow Q 5 mL/s is outside the training range 0.5-2.5 mL/s" in x for x in w), w
    r = input_ranges(d)[0]
    assert any(f"radius {r[0]:.4g}-{r[1]:.4g} mm" in x for x in w), w
    _, d = _graph(generated_tree(0), q=1.0)
    m.train_ranges[0] = torch.tensor([0.1, 5.0])
    assert not any("radius" in x or "inlet flow" in x for x in range_warnings(m, d))


def test_prepare_sample_knows_the_branch_of_swept_wall_points_and_predict_is_coherent(tmp_path):
    import meshops
    from meshops.train.inference import load_trained, predict_mesh

    trained = load_trained(SHIPPED)
    cl = generated_tree(30)
    wall = tube_wall(cl, n_around=16)
    pred = predict_mesh(trained, wall, globals={"Q": 1.2})
    c = ring_coherence(wall, pred.point_data["p_pred"], pred.point_data["wss_mag_pred"], 16)
    assert c["monotone_fraction"] >= 0.95 and c["junction_jump_rel"] < 0.02 and c["wss_min"] >= 0, c
    meshops.write(pred, tmp_path / "w.vtp")  # the wall's field data (with its branch-field marker) writes
    d = trained.model.prepare_sample(_graph(cl, 1.2)[1], type("C", (), {"mesh": wall, "name": "w", "globals": {"Q": 1.2}})())
    assert torch.equal(d.wall_branch, torch.as_tensor(wall.point_data["branch"]).long())


@pytest.mark.skipif(not DEMO.is_file(), reason=f"{DEMO} absent (the SimVascular demo lives in ../shared)")
def test_predict_warns_on_stderr_outside_training_ranges(tmp_path, capsys):
    from meshops.cli import main

    assert _shipped(), f"{SHIPPED} is not a physics='tree' centerline_rbf"
    rc = main(["predict", str(SHIPPED), "--centerline", str(DEMO), "--scale", "10", "--global", "Q=5",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "warning:" in err and "inlet flow Q 5 mL/s is outside the training range" in err, err
    assert "radius" in err, err
