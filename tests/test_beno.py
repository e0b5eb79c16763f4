"""BENO layers and model, the BENO-format loader, elliptic case checks and the elliptic_boundary dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from meshops.data import recipe_module
from meshops.data.beno_format import (
    beno_domain_polygon,
    check_elliptic,
    elliptic_case,
    implied_boundary_values,
    read_beno,
    to_grid,
)
from meshops.mesh import CellBlock, Mesh, MeshError
from meshops.models import create
from meshops.nn.beno import boundary_features, pad_by_graph

ROOT = Path(__file__).resolve().parents[1]


def _gen():
    return recipe_module(ROOT / "datasets" / "elliptic_boundary", "generator")


def _pipeline(cases):
    from meshops.data.graphs import FeatureSpec, Pipeline

    p = Pipeline(FeatureSpec.from_case(cases[0]), {"levels": 1})
    p.fit(cases)
    return p


def _beno(in_channels=10, **kw):
    cfg = dict(in_channels=in_channels, out_channels=1, source_channels=[0], boundary_value_channels=[2],
               boundary_channel=-1, hidden=16, latent=16, n_blocks=2, heads=2, transformer_layers=1)
    cfg.update(kw)
    return create("beno", **cfg)


@pytest.fixture(scope="module")
def cases():
    pytest.importorskip("skfem")
    pytest.importorskip("gmsh")
    gen = _gen()
    return [elliptic_case(gen.make_case(f, "dirichlet", seed=i, h=0.08), f"c{i}")
            for i, f in enumerate(["cutout4", "polygon", "holes"])]


# ----------------------------------------------------------------------------- layers
def test_pad_by_graph_keeps_rows_and_order():
    torch.manual_seed(0)
    batch = torch.tensor([2, 0, 2, 1, 0, 2])
    vals = torch.randn(6, 3)
    dense, mask = pad_by_graph(vals, batch, 4)
    assert dense.shape == (4, 3, 3) and mask.sum(1).tolist() == [2, 1, 3, 0]
    for g in range(4):
        np.testing.assert_array_equal(dense[g][mask[g]].numpy(), vals[batch == g].numpy())


def test_boundary_features_match_brute_force():
    rng = np.random.default_rng(1)
    pos = torch.tensor(rng.uniform(size=(40, 3)), dtype=torch.float64)
    batch = torch.tensor(rng.integers(0, 3, 40))
    is_b = torch.tensor(rng.uniform(size=40) < 0.3)
    for g in range(3):  # every graph needs a boundary node
        is_b[torch.nonzero(batch == g)[0, 0]] = True
    val = torch.tensor(rng.normal(size=(40, 2)))
    out = boundary_features(pos, batch, is_b, val, 3, eps=1e-3).numpy()
    P, B, M, V = pos.numpy(), batch.numpy(), is_b.numpy(), val.numpy()
    for i in range(40):
        cand = np.flatnonzero(M & (B == B[i]))
        d = np.linalg.norm(P[cand] - P[i], axis=1)
        j = cand[np.argmin(d)]
        np.testing.assert_allclose(out[i, 0], d.min(), rtol=1e-9)
        np.testing.assert_allclose(out[i, 1:4], P[j] - P[i], atol=1e-12)
        np.testing.assert_allclose(out[i, 4:6], V[j])
        w = 1 / (d**2 + 1e-6)
        np.testing.assert_allclose(out[i, 6:8], (w[:, None] * V[cand]).sum(0) / w.sum(), rtol=1e-9)


# ----------------------------------------------------------------------------- model
def test_beno_batched_equals_single_and_boundary_roles(cases):
    from meshops.train.trainer import collate

    p = _pipeline(cases)
    samples = [p.sample(c) for c in cases]
    torch.manual_seed(0)
    model = _beno(p.features.in_channels).eval()
    with torch.no_grad():
        single = torch.cat([model(s) for s in samples])
        batched = model(collate(samples))
    assert batched.shape == (sum(c.mesh.n_points for c in cases), 1)
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)

    s = samples[0]
    x2 = s.x.clone()
    x2[:, 2] += torch.randn(len(x2))  # other boundary values
    x3 = s.x.clone()
    x3[:, 0] += torch.randn(len(x3))  # other source
    with torch.no_grad():
        interior_only = model.interior.decoder.net[-1]
        boundary_only = model.boundary.decoder.net[-1]
        base = model(s)
        assert not torch.allclose(base, model(s.clone().update({"x": x2})))
        assert not torch.allclose(base, model(s.clone().update({"x": x3})))
        saved = [t.clone() for t in (boundary_only.weight, boundary_only.bias)]
        boundary_only.weight.zero_(), boundary_only.bias.zero_()
        # only the interior branch left: blind to boundary values, sees the source
        torch.testing.assert_close(model(s), model(s.clone().update({"x": x2})))
        boundary_only.weight.copy_(saved[0]), boundary_only.bias.copy_(saved[1])
        interior_only.weight.zero_(), interior_only.bias.zero_()
        # only the boundary branch left: blind to the source
        torch.testing.assert_close(model(s), model(s.clone().update({"x": x3})))


def test_beno_multilevel_branches_batch_consistently(cases):
    from meshops.data.graphs import FeatureSpec, Pipeline
    from meshops.train.trainer import collate

    p = Pipeline(FeatureSpec.from_case(cases[0]), {"levels": 3, "ratio": 0.25})
    p.fit(cases)
    samples = [p.sample(c) for c in cases]
    torch.manual_seed(0)
    model = _beno(p.features.in_channels, levels=3, blocks_per_level=1).eval()
    with torch.no_grad():
        single = torch.cat([model(s) for s in samples])
        batched = model(collate(samples))
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="no hierarchy level 1"):
        model(_pipeline(cases).sample(cases[0]))


def test_beno_global_pool_is_per_graph(cases):
    from meshops.train.trainer import collate

    p = _pipeline(cases)
    samples = [p.sample(c) for c in cases]
    torch.manual_seed(1)
    model = _beno(p.features.in_channels, global_pool=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(collate(samples)), torch.cat([model(s) for s in samples]),
                                   rtol=1e-4, atol=1e-5)


def test_beno_3d_and_gradients_reach_the_transformer():
    pytest.importorskip("gmsh")
    gen = _gen()
    case = elliptic_case(gen.make_case("cube_cutout1", "dirichlet", seed=0, h=0.25), "cube")
    p = _pipeline([case])
    model = _beno(p.features.in_channels)
    out = model(p.sample(case))
    assert out.shape == (case.mesh.n_points, 1) and torch.isfinite(out).all()
    out.pow(2).mean().backward()
    g = [q.grad for n, q in model.named_parameters() if "boundary.encoder" in n]
    assert g and all(t is not None for t in g) and sum(float(t.abs().sum()) for t in g) > 0


def test_beno_learns_a_small_dirichlet_problem(cases):
    from meshops.train.trainer import collate

    p = _pipeline(cases)
    b = collate([p.sample(c) for c in cases])
    torch.manual_seed(0)
    model = _beno(p.features.in_channels, hidden=32, latent=32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = (model(b) - b.y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])


def test_beno_bad_input(cases):
    p = _pipeline(cases)
    s = p.sample(cases[0])
    model = _beno(p.features.in_channels)
    s2 = s.clone()
    s2.x = s.x.clone()
    s2.x[:, -1] = 0.0
    with pytest.raises(ValueError, match="no boundary nodes"):
        model(s2)
    with pytest.raises(ValueError, match="more than one role"):
        _beno(10, source_channels=[0, 2])
    with pytest.raises(ValueError, match="out of range"):
        _beno(10, boundary_value_channels=[12])


# ----------------------------------------------------------------------------- elliptic case checks
def _square_mesh(n=5):
    x, y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    pts = np.stack([x.ravel(), y.ravel()], 1)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    tri = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    on_b = (np.isclose(pts, 0) | np.isclose(pts, 1)).any(1)
    pd = {"f": np.ones(n * n), "g": np.where(on_b, 1.0, 0.0), "bc_type": on_b.astype(np.int32),
          "u": np.zeros(n * n)}
    return Mesh(points=pts, cells=[CellBlock("triangle", tri)], point_data=pd, source="square.vtu")


def test_elliptic_case_fields_and_input_unchanged():
    m = _square_mesh()
    before = {k: v.copy() for k, v in m.point_data.items()}
    c = elliptic_case(m)
    assert c.inputs == ["f", "k", "g", "bc_onehot"] and c.targets == ["u"]
    assert c.stack(c.inputs).shape == (25, 6)
    assert "boundary" in c.mesh.boundaries and "bc_onehot" not in m.point_data and not m.boundaries
    for k, v in before.items():
        np.testing.assert_array_equal(m.point_data[k], v)


def test_elliptic_bad_input_errors():
    m = _square_mesh()
    g = m.point_data["g"].copy()
    g[0] = np.nan
    with pytest.raises(MeshError, match=r"square.vtu: boundary values 'g' missing .* at 1 boundary nodes, first node 0"):
        check_elliptic(m.with_fields(g=g))
    bt = m.point_data["bc_type"].copy()
    bt[0] = 0
    with pytest.raises(MeshError, match="boundary node 0 has bc_type 0"):
        check_elliptic(m.with_fields(bc_type=bt))
    with pytest.raises(MeshError, match="no boundary nodes: point field 'bc_type' is 0 everywhere"):
        check_elliptic(m.with_fields(bc_type=np.zeros(25, np.int32)))
    closed = Mesh(points=np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]),
                  cells=[CellBlock("triangle", np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]))],
                  point_data={"f": np.zeros(4), "g": np.zeros(4), "bc_type": np.zeros(4, np.int32)}, source="shell.vtu")
    with pytest.raises(MeshError, match="shell.vtu: the domain has no boundary"):
        check_elliptic(closed)
    fan = Mesh(points=np.array([[0, 0], [1, 0], [0.5, 1], [0.5, -1], [1.5, 0.5]]),
               cells=[CellBlock("triangle", np.array([[0, 1, 2], [0, 1, 3], [0, 1, 4]]))],
               point_data={"f": np.zeros(5), "g": np.zeros(5), "bc_type": np.ones(5, np.int32)}, source="fan.vtu")
    with pytest.raises(MeshError, match=r"fan.vtu: non-manifold mesh: facet \[0, 1\] is shared by 3 cells"):
        check_elliptic(fan)
    with pytest.raises(MeshError, match="point field 'g' is missing"):
        check_elliptic(Mesh(points=m.points, cells=m.cells, point_data={"f": np.zeros(25), "bc_type": bt}))


# ----------------------------------------------------------------------------- BENO-format data
def test_read_beno_shared_samples(shared_data):
    folder = shared_data / "beno"
    meshes = read_beno(folder)
    rhs = np.load(folder / "RHS_N32_10.npy")
    sol = np.load(folder / "SOL_N32_10.npy")
    assert len(meshes) == 10
    for i, m in enumerate(meshes):
        check_elliptic(m, require_solution=True)
        inside = np.flatnonzero(rhs[i, :, 3] == 0)
        pd = m.point_data
        n_b = int((pd["bc_type"] > 0).sum())
        assert m.n_points == len(inside) + n_b and n_b == 128 + 4  # 4R face midpoints + 4 notch corners
        grid = to_grid(m, pd["u"], 32)
        np.testing.assert_array_equal(grid[inside], sol[i, inside, 0])
        assert np.isnan(grid[rhs[i, :, 3] != 0]).all()
        np.testing.assert_array_equal(to_grid(m, pd["f"], 32)[inside], -rhs[i, inside, 2])  # -div grad u = f
        poly = beno_domain_polygon(rhs[i])
        assert len(poly) == 12  # four notches
    # the file's boundary values disagree with the solution on whole segments; the repair finds them
    g, changed = implied_boundary_values(rhs[0], sol[0], np.load(folder / "BC_N32_10.npy")[0])
    assert changed.sum() == 28
    rep = read_beno(folder, indices=[0], boundary_values="solution")[0]
    assert int(rep.point_data["g_repaired"].sum()) == 28


def test_read_beno_bad_files(tmp_path, shared_data):
    from meshops.data import DatasetError

    with pytest.raises(DatasetError, match="expected one BENO data set"):
        read_beno(tmp_path)
    np.save(tmp_path / "RHS_N32_2.npy", np.zeros((2, 1000, 4)))
    np.save(tmp_path / "BC_N32_2.npy", np.zeros((2, 128, 4)))
    with pytest.raises(DatasetError, match="1000 grid points is not a square number"):
        read_beno(tmp_path)
    rhs = np.load(shared_data / "beno" / "RHS_N32_10.npy")[:2]
    bc = np.load(shared_data / "beno" / "BC_N32_10.npy")[:2].copy()
    bc[1, 5, 2] = np.nan
    np.save(tmp_path / "RHS_N32_2.npy", rhs)
    np.save(tmp_path / "BC_N32_2.npy", bc)
    with pytest.raises(MeshError, match=r"RHS_N32_2.npy\[1\]: boundary value 'g' is missing"):
        read_beno(tmp_path)


def test_beno_model_runs_on_beno_format_case(shared_data):
    m = read_beno(shared_data / "beno", indices=[3])[0]
    case = elliptic_case(m, "beno3")
    p = _pipeline([case])
    out = _beno(p.features.in_channels)(p.sample(case))
    assert out.shape == (m.n_points, 1)


# ----------------------------------------------------------------------------- dataset recipe
def test_elliptic_boundary_dataset(tmp_path):
    from meshops.data import load_dataset

    pytest.importorskip("gmsh")
    ds = load_dataset("elliptic_boundary", families=["cutout2"], bcs=["neumann", "mixed"], n=2, root=tmp_path)
    assert len(ds) == 4 and len(list(tmp_path.glob("*.vtu"))) == 4
    c = ds[1]
    assert c.stack(c.inputs).shape == (c.mesh.n_points, 6)
    assert c.mesh.field_data["bc"] in ("neumann", "mixed")
    with pytest.raises(Exception, match="unknown shape family 'blob'"):
        load_dataset("elliptic_boundary", families=["blob"], root=tmp_path)
