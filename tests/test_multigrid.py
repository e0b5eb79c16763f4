"""Multigrid on the graph hierarchy: the fixed V-cycle against pyamg, and the learned MgNO layer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from meshops.graph import build
from meshops.mesh import CellBlock, Mesh
from meshops.nn.multigrid import (
    LevelOperator,
    LinearMultigrid,
    MultigridLayer,
    check_levels,
    multigrid_cycle,
    prolongation_matrix,
)
from meshops.nn.ugraph import Level

ROOT = Path(__file__).resolve().parents[1]


def _recipe(name: str):
    """A module of the elliptic_boundary recipe (the folder is not a package)."""
    modname = f"meshops_elliptic_boundary_{name}"
    if modname not in sys.modules:
        spec = importlib.util.spec_from_file_location(modname, ROOT / "datasets" / "elliptic_boundary" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[modname] = mod
        spec.loader.exec_module(mod)
    return sys.modules[modname]


@pytest.fixture(scope="module")
def poisson():
    """P1 stiffness matrix of -lap u = f on an unstructured (gmsh) mesh of an L-shaped domain, Dirichlet rows removed."""
    pytest.importorskip("skfem")
    pytest.importorskip("gmsh")
    from skfem import Basis, ElementTriP1, MeshTri, asm
    from skfem.models.poisson import laplace

    geo = _recipe("geometry")
    outer = np.array([[0, 0], [1, 0], [1, 0.6], [0.6, 0.6], [0.6, 1], [0, 1.0]])
    pts, tri = geo.mesh_2d(geo.Domain2D(family="lshape", outer=outer), h=0.03)
    m = MeshTri(np.ascontiguousarray(pts[:, :2].T), np.ascontiguousarray(tri.T))
    A = asm(laplace, Basis(m, ElementTriP1())).tocsr()
    free = np.setdiff1d(np.arange(len(pts)), m.boundary_nodes())
    return pts, tri, A[free][:, free].tocsr(), free


def _torch_sparse(A) -> torch.Tensor:
    c = A.tocoo()
    return torch.sparse_coo_tensor(np.vstack([c.row, c.col]), c.data, c.shape, dtype=torch.float64).coalesce()


def hierarchy_prolongations(pts, tri, free, levels: int, up_k: int, interpolation: str = "idw") -> list[torch.Tensor]:
    """``P_l`` from the hierarchy's up maps, rows restricted to the unknowns, unused coarse nodes dropped."""
    g = build(Mesh(points=pts, cells=[CellBlock("triangle", tri)]),
              {"levels": levels, "ratio": 0.25, "up_k": up_k, "interpolation": interpolation})
    rows = torch.as_tensor(free)
    Ps = []
    for lv in range(1, levels):
        P = prolongation_matrix(g[f"up_{lv}"], g[f"up_w_{lv}"], g.level_size(lv), g.level_size(lv - 1)).to_dense()
        P = P[rows]
        cols = torch.nonzero(P.abs().sum(0) > 0)[:, 0]
        Ps.append(P[:, cols].to_sparse().coalesce())
        rows = cols
    return Ps


def ours_factor(mg: LinearMultigrid, n: int, cycles: int = 25, gamma: int = 1) -> float:
    """Asymptotic residual reduction per cycle (geometric mean over cycles 6..cycles), A x = 0 from a random x."""
    x = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    b = torch.zeros(n, dtype=torch.float64)
    res = [float(mg.residual(b, x).norm())]
    for _ in range(cycles):
        x = mg.cycle(b, x, gamma=gamma)
        res.append(float(mg.residual(b, x).norm()))
    return (res[5] / res[-1]) ** (1.0 / (cycles - 5))


def pyamg_factor(A, levels: int, smoother: str, cycles: int = 25) -> float:
    import pyamg

    kw = {}
    if smoother == "jacobi":
        kw = dict(presmoother=("jacobi", {"omega": 2.0 / 3.0, "iterations": 2}),
                  postsmoother=("jacobi", {"omega": 2.0 / 3.0, "iterations": 2}))
    ml = pyamg.smoothed_aggregation_solver(A, max_levels=levels, max_coarse=1, **kw)
    x0 = np.random.default_rng(0).standard_normal(A.shape[0])
    res: list[float] = []
    ml.solve(np.zeros(A.shape[0]), x0=x0, maxiter=cycles, tol=1e-300, residuals=res, cycle="V", accel=None)
    return float((res[5] / res[-1]) ** (1.0 / (len(res) - 1 - 5)))


def test_vcycle_beats_pyamg_smoothed_aggregation(poisson):
    pytest.importorskip("pyamg")
    pts, tri, A, free = poisson
    At = _torch_sparse(A)
    ours, amg_sgs, amg_jac = {}, {}, {}
    for L in (2, 3, 4, 5):
        # the hierarchy's default up maps (3 nearest coarse nodes), smoothed by one Jacobi step
        mg = LinearMultigrid(At, hierarchy_prolongations(pts, tri, free, L, up_k=3), smooth_prolongation=True)
        ours[L] = ours_factor(mg, A.shape[0])
        amg_sgs[L] = pyamg_factor(A, L, "default")
        amg_jac[L] = pyamg_factor(A, L, "jacobi")
    print(f"\nP1 Poisson, {A.shape[0]} unknowns; residual reduction per V-cycle (2+2 damped Jacobi):")
    for L in ours:
        print(f"  levels {L}: ours {ours[L]:.2f}   pyamg SA (sym. Gauss-Seidel) {amg_sgs[L]:.2f}   "
              f"pyamg SA (2+2 Jacobi) {amg_jac[L]:.2f}")
    for L in ours:
        assert ours[L] >= 2.0, (L, ours)
        assert ours[L] >= amg_sgs[L], (L, ours[L], amg_sgs[L])
        assert ours[L] >= amg_jac[L], (L, ours[L], amg_jac[L])
        # more levels do not make it much worse
        assert ours[L] >= 0.8 * ours[2], (L, ours)


def test_raw_up_maps_and_w_cycle(poisson):
    """The up maps used as they are (no smoothing of P) still reduce the residual >= 2x per cycle."""
    pts, tri, A, free = poisson
    At = _torch_sparse(A)
    raw = {}
    for L in (2, 4):
        mg = LinearMultigrid(At, hierarchy_prolongations(pts, tri, free, L, up_k=3), smooth_prolongation=False)
        raw[L] = ours_factor(mg, A.shape[0])
    w = ours_factor(mg, A.shape[0], gamma=2)
    # barycentric up maps reproduce linear fields: a better raw prolongation, a faster cycle
    lin = ours_factor(LinearMultigrid(At, hierarchy_prolongations(pts, tri, free, 4, 3, "linear"),
                                      smooth_prolongation=False), A.shape[0])
    print(f"\nraw up maps (up_k=3): V-cycle {raw[2]:.2f} (2 levels), {raw[4]:.2f} (4 levels); W-cycle {w:.2f} (4 levels); "
          f"linear up maps V-cycle {lin:.2f} (4 levels)")
    assert min(raw.values()) >= 2.0, raw
    assert w >= raw[4], (w, raw)
    assert lin >= 1.3 * raw[4], (lin, raw)


def test_vcycle_solves_to_tolerance(poisson):
    """Used as a solver the cycle converges to the sparse direct solution."""
    import scipy.sparse.linalg as spla

    pts, tri, A, free = poisson
    mg = LinearMultigrid(_torch_sparse(A), hierarchy_prolongations(pts, tri, free, 3, up_k=3))
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    x = torch.zeros(A.shape[0], dtype=torch.float64)
    bt = torch.from_numpy(b)
    for _ in range(20):
        x = mg.cycle(bt, x)
    exact = spla.spsolve(A.tocsc(), b)
    assert np.linalg.norm(x.numpy() - exact) <= 1e-6 * np.linalg.norm(exact)


# ----------------------------------------------------------------------------- learned layer
def _grid_graph(n: int, levels: int = 3):
    xs = np.linspace(0, 1, n)
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel(), np.zeros(n * n)], 1)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()
    tri = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return build(Mesh(points=pts, cells=[CellBlock("triangle", tri)]), {"levels": levels, "ratio": 0.25})


def _levels(g, n):
    from meshops.models.ugraph import graph_levels

    return graph_levels(g, n)


def test_multigrid_layer_shapes_grad_and_linearity():
    torch.manual_seed(0)
    g = _grid_graph(9, 3)
    levels = _levels(g, 3)
    layer = MultigridLayer(8, n_levels=None, activation="none", cycle="W", learned_transfer=True)
    f = torch.randn(g.num_nodes, 8, requires_grad=True)
    out = layer(f, levels)
    assert out.shape == (g.num_nodes, 8)
    out.square().sum().backward()
    assert f.grad is not None and torch.isfinite(f.grad).all()
    assert all(p.grad is not None for p in layer.A.parameters())
    # without activation (and without transfer biases) the cycle is linear in f
    lin = MultigridLayer(8, n_levels=3, share_levels=False, activation="none")
    with torch.no_grad():
        lin.skip.bias.zero_()
        f1, f2 = torch.randn(g.num_nodes, 8), torch.randn(g.num_nodes, 8)
        torch.testing.assert_close(lin(f1 + 2 * f2, levels), lin(f1, levels) + 2 * lin(f2, levels), atol=1e-4, rtol=1e-4)


def test_level_operator_annihilates_constants_off_diagonal():
    """The stencil part acts on differences: with W_0 = 0 a constant field maps to 0."""
    g = _grid_graph(6, 1)
    op = LevelOperator(3)
    with torch.no_grad():
        op.mix.weight[:, :3] = 0
    L = _levels(g, 1)[0]
    out = op(torch.ones(g.num_nodes, 3) * 2.5, L)
    assert out.abs().max() < 1e-5


def test_multigrid_layer_is_batch_consistent():
    """A batch of two different-size graphs gives each graph's own output."""
    from torch_geometric.data import Batch

    torch.manual_seed(0)
    g1, g2 = _grid_graph(7, 3), _grid_graph(10, 3)
    layer = MultigridLayer(4, n_levels=3)
    layer(torch.randn(g1.num_nodes, 4), _levels(g1, 3))  # training mode: records g1's spacing
    layer.eval()  # g2 is finer than g1: its finest level is scaled, per node, batch or not
    b = Batch.from_data_list([g1, g2])
    x = torch.randn(b.num_nodes, 4)
    out = layer(x, _levels(b, 3))
    o1 = layer(x[: g1.num_nodes], _levels(g1, 3))
    o2 = layer(x[g1.num_nodes:], _levels(g2, 3))
    torch.testing.assert_close(out, torch.cat([o1, o2]), atol=1e-5, rtol=1e-5)


def test_empty_level_is_refused():
    g = _grid_graph(6, 3)
    levels = _levels(g, 3)
    bad = list(levels)
    bad[2] = Level(edge_index=torch.zeros(2, 0, dtype=torch.long), edge_attr=torch.zeros(0, 4), num_nodes=0,
                   down=torch.zeros(2, 0, dtype=torch.long), down_w=torch.zeros(0), up=torch.zeros(2, 0, dtype=torch.long),
                   up_w=torch.zeros(0))
    with pytest.raises(ValueError, match=r"level 2 is empty \(0 nodes\)"):
        check_levels(bad)
    with pytest.raises(ValueError, match="level 2 is empty"):
        MultigridLayer(4, n_levels=3)(torch.randn(g.num_nodes, 4), bad)
    bad[2] = Level(levels[2].edge_index, levels[2].edge_attr, levels[2].num_nodes, levels[2].down,
                   levels[2].down_w, torch.zeros(2, 0, dtype=torch.long), torch.zeros(0))
    with pytest.raises(ValueError, match="empty 'up_2' map"):
        check_levels(bad)
    up = levels[1].up[:, levels[1].up[1] != 3]
    bad = [levels[0], Level(levels[1].edge_index, levels[1].edge_attr, levels[1].num_nodes, levels[1].down,
                            levels[1].down_w, up, None)]
    with pytest.raises(ValueError, match=r"'up_1' leaves 1 level-0 nodes without a coarse parent \(first: node 3\)"):
        check_levels(bad)


def test_cycle_zero_guess_matches_explicit():
    """multigrid_cycle from u=None equals the cycle from an explicit zero guess."""
    g = _grid_graph(8, 3)
    layer = MultigridLayer(3, n_levels=3)
    levels = _levels(g, 3)
    from meshops.nn.multigrid import _LearnedCycle, level_geometry

    cyc = _LearnedCycle(layer, levels, [e for e, _ in level_geometry(levels, torch.float32)])
    f = torch.randn(g.num_nodes, 3)
    with torch.no_grad():
        a = multigrid_cycle(cyc, f, None, pre=2, post=1)
        b = multigrid_cycle(cyc, f, torch.zeros_like(f), pre=2, post=1)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_conditioned_layer_is_linear_in_f_and_follows_the_coefficient():
    """A coefficient-conditioned cycle stays linear in its input, changes with the coefficient,
    is batch-consistent, and refuses a coefficient of the wrong width."""
    from torch_geometric.data import Batch

    torch.manual_seed(1)
    g1, g2 = _grid_graph(7, 3), _grid_graph(9, 3)
    layer = MultigridLayer(4, n_levels=3, activation="none", cond_channels=2)
    with torch.no_grad():
        layer.skip.bias.zero_()
    lv = _levels(g1, 3)
    c = torch.rand(g1.num_nodes, 2) + 0.5
    layer(torch.randn(g1.num_nodes, 4), lv, c)
    layer.eval()
    f1, f2 = torch.randn(g1.num_nodes, 4), torch.randn(g1.num_nodes, 4)
    torch.testing.assert_close(layer(f1 - 3 * f2, lv, c), layer(f1, lv, c) - 3 * layer(f2, lv, c), atol=1e-4, rtol=1e-4)
    c2 = c.clone()
    c2[: g1.num_nodes // 2, 0] += 1.0
    assert (layer(f1, lv, c) - layer(f1, lv, c2)).abs().max() > 1e-3
    b = Batch.from_data_list([g1, g2])
    cb = torch.cat([c, torch.rand(g2.num_nodes, 2)])
    fb = torch.randn(b.num_nodes, 4)
    out = layer(fb, _levels(b, 3), cb)
    torch.testing.assert_close(out[: g1.num_nodes], layer(fb[: g1.num_nodes], lv, c), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="coefficient field of 2 channels per node, got \\(49, 3\\)"):
        layer(f1, lv, torch.rand(g1.num_nodes, 3))
    with pytest.raises(ValueError, match="coefficient field of 2 channels per node, got None"):
        layer(f1, lv)


def test_finer_levels_than_trained_only_transfer():
    """Training records the finest spacing; on a 2x finer graph the new finest level does no
    smoothing: the layer equals act(P(cycle of the coarser levels on R f)) + W f) exactly.
    The record travels in the state dict."""
    from meshops.nn.multigrid import _LearnedCycle, level_geometry

    torch.manual_seed(0)
    coarse, fine = _grid_graph(9, 3), _grid_graph(17, 4)
    layer = MultigridLayer(4, n_levels=None, pre=1, post=1, coarse=2)
    layer.train()
    lc = _levels(coarse, 3)
    layer(torch.randn(coarse.num_nodes, 4), lc)
    h0 = level_geometry(lc, torch.float32)[0][1].double().mean()
    assert float(layer.n_train) == 1 and abs(float(layer.h_train) - float(h0)) < 1e-6
    layer.eval()
    assert layer._trained_nodes(level_geometry(lc, torch.float32)) == [None] * 3
    lf = _levels(fine, 4)
    geo = level_geometry(lf, torch.float32)
    keep = layer._trained_nodes(geo)
    assert float(keep[0].sum()) == 0 and keep[2:] == [None, None]
    f = torch.randn(fine.num_nodes, 4)
    with torch.no_grad():
        out = layer(f, lf)
        cyc = _LearnedCycle(layer, lf, [e for e, _ in geo])
        rf = cyc.restrict(0, f)
        e1 = multigrid_cycle(cyc, rf, None, level=1, pre=1, post=1, coarse=2, levels=4)
        ref = layer.act(cyc.prolong(0, e1) + layer.skip(f))
        full = layer.act(multigrid_cycle(cyc, f, None, pre=1, post=1, coarse=2, levels=4) + layer.skip(f))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert (out - full).abs().max() > 1e-3  # smoothing the new level would have changed the output
    other = MultigridLayer(4, n_levels=None)
    other.load_state_dict(layer.state_dict())
    assert float(other.h_train) == float(layer.h_train)
