"""The centerline transformer + anisotropic RBF decoder model (meshops.models.coronary).

The vessels here are small synthetic tubes built in the test (geometry only); the training
targets are smooth fields of the wall coordinates, which is all a unit test needs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from meshops.geometry.centerline import rotation_minimizing_frames
from meshops.models import create
from meshops.models.coronary import CL_FEATURES, attach_centerline, centerline_inputs
from meshops.nn.rbf import place_centers


def _tube(n_s=40, n_theta=16, length=30.0, bend=25.0, seed=0):
    """A bent, tapering tube with a stenosis: centerline (points, radius) and wall points (mm)."""
    rng = np.random.default_rng(seed)
    s = np.linspace(0.0, length, n_s)
    ang = s / bend
    pts = np.stack([bend * np.sin(ang), bend * (1 - np.cos(ang)), 0.15 * s + 0.5 * np.sin(s / 6.0)], 1)
    rad = 1.6 - 0.4 * s / length - 0.5 * np.exp(-(((s - 12.0 - rng.uniform(0, 6)) / 2.5) ** 2))
    T, N, B = rotation_minimizing_frames(pts)
    th = np.linspace(0, 2 * np.pi, n_theta, endpoint=False)
    wall = pts[:, None] + rad[:, None, None] * (np.cos(th)[None, :, None] * N[:, None] + np.sin(th)[None, :, None] * B[:, None])
    return pts, rad, wall.reshape(-1, 3), np.repeat(s, n_theta)


def _case(Q=2.0, seed=0, rot=None, shift=None, n_points=48, **kw):
    pts, rad, wall, s = _tube(seed=seed, **kw)
    if rot is not None:
        pts, wall = pts @ rot.T + shift, wall @ rot.T + shift
    data = Data(pos=torch.tensor(wall, dtype=torch.float32))
    return attach_centerline(data, pts, rad, Q, n_points=n_points), s


def _rotation(seed=1):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def _randomize_head(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    last = model.decoder.head[-1]
    with torch.no_grad():
        last.weight.copy_(torch.randn(last.weight.shape, generator=g) * 0.3)
        last.bias.copy_(torch.randn(last.bias.shape, generator=g) * 0.3)


def test_centerline_inputs_frames_and_invariant_features():
    pts, rad, _, _ = _tube()
    d = centerline_inputs(pts, rad, 2.0, n_points=64)
    m = d["cl_pos"].shape[0]
    assert m == 64 and d["cl_feat"].shape == (64, len(CL_FEATURES))
    f = d["cl_frame"].double()
    torch.testing.assert_close(f @ f.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(m, 3, 3), atol=1e-5, rtol=0)
    assert torch.isfinite(d["cl_feat"]).all()
    rot, shift = _rotation(), np.array([3.0, -7.0, 11.0])
    d2 = centerline_inputs(pts @ rot.T + shift, rad, 2.0, n_points=64)
    # intrinsic features do not see the rigid motion; frames rotate with the vessel
    torch.testing.assert_close(d2["cl_feat"], d["cl_feat"], atol=2e-4, rtol=1e-4)
    r = torch.tensor(rot, dtype=torch.float32)
    torch.testing.assert_close(d2["cl_frame"], d["cl_frame"] @ r.T, atol=1e-4, rtol=0)
    # the Poiseuille resistance to the outlet decreases to 0 and the radius is interpolated
    res = d["cl_feat"][:, list(CL_FEATURES).index("resistance_to_end")]
    assert res[-1] == 0 and bool((res[:-1] > res[1:]).all())
    assert float(d["cl_radius"].min()) >= rad.min() - 1e-6


def test_centers_spread_uniformly_over_branches():
    # main vessel 0..20 along x, side branch of length 10 along y from x=5
    main = np.stack([np.linspace(0, 20, 21), np.zeros(21), np.zeros(21)], 1)
    side = np.stack([np.full(11, 5.0), np.linspace(0, 10, 11), np.zeros(11)], 1)
    pts = np.concatenate([main, side])
    rad = np.concatenate([np.full(21, 1.5), np.full(11, 1.0)])
    d = centerline_inputs(pts, rad, 1.0, branches=[np.arange(21), np.arange(21, 32)], n_points=30)
    assert set(d["cl_branch"].tolist()) == {0, 1}
    pc = place_centers(
        30, d["cl_pos"], d["cl_frame"], d["cl_radius"], d["cl_arclength"], d["cl_branch"], d["cl_batch"], 1
    )
    on_main = pc["pos"][:, 1].abs() < 1e-6
    assert int(on_main.sum()) == 20  # 2/3 of the length -> 2/3 of the centers
    xs = torch.sort(pc["pos"][on_main, 0]).values
    torch.testing.assert_close(xs, torch.arange(20, dtype=torch.float32) + 0.5, atol=1e-4, rtol=0)
    torch.testing.assert_close(pc["spacing"], torch.full((30,), 1.0))
    torch.testing.assert_close(pc["radius"][on_main], torch.full((20,), 1.5))


def test_forward_batched_equals_single_and_chunking_is_invisible():
    torch.manual_seed(0)
    model = create("centerline_rbf", out_channels=3, num_centers=32, d_model=32, n_heads=2, n_layers=2)
    assert model.meshops_config["name"] == "centerline_rbf"
    _randomize_head(model)
    a, _ = _case(Q=1.5, seed=0)
    b, _ = _case(Q=3.0, seed=1, n_s=30, n_points=40)
    batch = Batch.from_data_list([a, b])
    assert batch.cl_batch.max() == 1 and batch.u.shape == (2, 1)
    model.eval()
    with torch.no_grad():
        out = model(batch)
        ya, yb = model(a), model(b)
    assert out.shape == (a.num_nodes + b.num_nodes, 3)
    torch.testing.assert_close(out, torch.cat([ya, yb]), atol=1e-5, rtol=1e-5)
    assert out.std() > 1e-3  # the randomized head gives a non-trivial field
    model.decoder.max_elements = 64
    with torch.no_grad():
        torch.testing.assert_close(model(batch), out, atol=1e-5, rtol=1e-5)
    # any query points: a subset of the wall given as query_pos gives the same values there
    keep = torch.arange(batch.num_nodes) % 3 == 0
    q = batch.clone()
    q.query_pos, q.query_batch = batch.pos[keep], batch.batch[keep]
    with torch.no_grad():
        torch.testing.assert_close(model(q), out[keep], atol=1e-5, rtol=1e-5)


def test_rotating_the_vessel_rotates_nothing_in_scalar_outputs():
    torch.manual_seed(1)
    model = create(
        "centerline_rbf", out_channels=4, num_centers=24, d_model=32, n_heads=2, n_layers=2, vectors=[[1, 4]]
    ).eval()
    _randomize_head(model, seed=3)
    rot, shift = _rotation(seed=5), np.array([10.0, -4.0, 2.5])
    a, _ = _case(seed=2)
    b, _ = _case(seed=2, rot=rot, shift=shift)
    with torch.no_grad():
        ya, yb = model(a), model(b)
    assert ya[:, 0].std() > 1e-3
    torch.testing.assert_close(yb[:, 0], ya[:, 0], atol=2e-3 * float(ya[:, 0].abs().max()), rtol=0)
    # the vector channels rotate with the vessel
    r = torch.tensor(rot, dtype=torch.float32)
    torch.testing.assert_close(yb[:, 1:], ya[:, 1:] @ r.T, atol=2e-3 * float(ya[:, 1:].abs().max()), rtol=0)


def test_overfits_a_single_case():
    torch.manual_seed(0)
    data, s = _case(Q=2.0, seed=4)
    x = data.pos
    # smooth fields of the wall coordinates: a pressure-like decay plus an asymmetric ripple
    target = torch.stack(
        [torch.tensor(1.0 - s / 30.0, dtype=torch.float32) + 0.2 * torch.sin(x[:, 2] / 2.0), 0.5 * torch.cos(x[:, 0] / 4.0) + 0.1 * x[:, 1] / 5.0],
        1,
    )
    model = create("centerline_rbf", out_channels=2, num_centers=64, d_model=32, n_heads=2, n_layers=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(250):
        opt.zero_grad()
        loss = torch.mean((model(data) - target) ** 2)
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = model(data)
    rel = torch.linalg.norm(pred - target, dim=0) / torch.linalg.norm(target - target.mean(0), dim=0)
    assert bool((rel < 0.15).all()), rel


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(points=np.zeros((1, 3)), radius=[1.0]), r"has 1 point\(s\); at least 2 are needed"),
        (dict(radius=lambda r: np.where(np.arange(len(r)) == 5, 0.0, r)), r"radius at centerline point 5 is 0.0"),
        (dict(radius=lambda r: -r), r"radius at centerline point 0 is -"),
        (dict(points=lambda p: np.where(np.arange(len(p))[:, None] == 3, np.nan, p)), r"centerline point 3 has a non-finite coordinate"),
        (dict(Q=0.0), r"inlet flow Q = 0.0; it must be finite and > 0"),
        (dict(Q=-1.5), r"inlet flow Q = -1.5"),
        (dict(radius=lambda r: r[:-1]), r"radius has 39 values but the centerline has 40 points"),
    ],
)
def test_bad_centerline_input(kw, match):
    pts, rad, _, _ = _tube()
    points = kw.get("points", pts)
    radius = kw.get("radius", rad)
    points = points(pts) if callable(points) else points
    radius = radius(rad) if callable(radius) else radius
    with pytest.raises(ValueError, match=match):
        centerline_inputs(points, radius, kw.get("Q", 2.0), where="tube.vtp")


def test_bad_graph_input_in_forward():
    model = create("centerline_rbf", out_channels=1, num_centers=8, d_model=16, n_heads=2, n_layers=1)
    data, _ = _case()
    bad = data.clone()
    bad.cl_q = torch.tensor([0.0])
    with pytest.raises(ValueError, match=r"case 0 has inlet flow Q = 0.0"):
        model(bad)
    bad = data.clone()
    del bad.cl_q
    bad.u = torch.tensor([[-2.0]])
    with pytest.raises(ValueError, match=r"case 0 has inlet flow Q = -2.0"):
        model(bad)
    bad = data.clone()
    bad.pos = bad.pos.clone()
    bad.pos[7, 1] = math.nan
    with pytest.raises(ValueError, match=r"wall point 7 has a non-finite coordinate"):
        model(bad)
    bad = data.clone()
    del bad.cl_frame
    with pytest.raises(ValueError, match=r"no 'cl_frame'"):
        model(bad)
    with pytest.raises(ValueError, match="vector channels"):
        create("centerline_rbf", out_channels=2, vectors=[[0, 3]])


def test_attach_case_centerline_reads_the_dataset_layout():
    from meshops import Mesh
    from meshops.data import Case
    from meshops.models.coronary import attach_case_centerline

    pts, rad, wall, _ = _tube()
    mesh = Mesh(points=wall, field_data={"centerline_points": pts, "centerline_radius": rad})
    case = Case("tube", mesh, [], [], {"Q": 1.7})
    g = attach_case_centerline(Data(pos=torch.tensor(wall, dtype=torch.float32)), case, n_points=32)
    assert g.cl_pos.shape == (32, 3) and float(g.cl_q) == pytest.approx(1.7)
    with pytest.raises(ValueError, match=r"case 'tube': no global 'Q'"):
        attach_case_centerline(g, Case("tube", mesh, [], [], {}))
    with pytest.raises(ValueError, match=r"field_data has no \['centerline_radius'\]"):
        attach_case_centerline(g, Case("tube", Mesh(points=wall, field_data={"centerline_points": pts}), [], [], {"Q": 1.0}))
