"""The implied pressure (P1 Poisson solve) and the step model's pressure split ``q = p - alpha S(u, v)``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.spatial import Delaunay

from meshops.data import DatasetError, load_dataset
from meshops.geometry.pressure import PressurePoisson, triangulate
from meshops.train import stepping as S


def _disk(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """A jittered grid of the unit disk, its Delaunay triangles and the id of the node at the centre."""
    rng = np.random.default_rng(seed)
    g = np.linspace(-1, 1, n)
    P = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    h = g[1] - g[0]
    inner = np.abs(P).max(1) < 1 - 1e-9
    P[inner] += rng.uniform(-0.2, 0.2, (int(inner.sum()), 2)) * h
    P = P[np.hypot(*P.T) <= 1.0]
    c = int(np.argmin(np.hypot(*P.T)))
    P -= P[c]
    return P, Delaunay(P).simplices, c


def test_rotation_pressure_converges_at_second_order():
    # solid-body rotation u = (-w y, w x) is a steady Euler flow: p = w^2 r^2 / 2 with p(0) = 0
    errs = []
    for n in (17, 33, 65):
        P, T, c = _disk(n)
        w = 1.7
        p = PressurePoisson(P, T, [c]).solve(-w * P[:, 1], w * P[:, 0])
        ref = 0.5 * w**2 * (P**2).sum(1)
        errs.append(np.linalg.norm(p - ref) / np.linalg.norm(ref))
    assert errs[-1] < 5e-3, errs
    assert errs[0] / errs[-1] > 8, errs  # ~h^2: 4x per halving


def test_batched_solve_matches_column_by_column_and_uniform_flow_has_no_pressure():
    P, T, c = _disk(17, seed=1)
    rng = np.random.default_rng(2)
    S_ = PressurePoisson(P, T, [c])
    U, V = rng.normal(size=(len(P), 3)), rng.normal(size=(len(P), 3))
    B = S_.solve(U, V)
    for k in range(3):
        np.testing.assert_allclose(B[:, k], S_.solve(U[:, k], V[:, k]), rtol=1e-10, atol=1e-12)
    assert np.abs(S_.solve(np.full(len(P), 2.0), np.full(len(P), -1.0))).max() < 1e-10


def test_bad_meshes_are_refused():
    with pytest.raises(ValueError, match="degenerate"):
        PressurePoisson(np.array([[0, 0], [1, 0], [2, 0.0]]), np.array([[0, 1, 2]]), [0])
    with pytest.raises(ValueError, match="outside"):
        PressurePoisson(np.array([[0, 0], [1, 0], [0, 1.0]]), np.array([[0, 1, 2]]), [5])
    assert triangulate(np.array([[0, 1, 2, 3]])).tolist() == [[0, 1, 2], [0, 2, 3]]


@pytest.fixture(scope="module")
def short_traj():
    return load_dataset("cylinder_flow", max_steps=14)[0]


def _scaled(t, k: float):
    return dataclasses.replace(t, fields={**t.fields, "p": (t.fields["p"] * k).astype(np.float32)})


def test_split_round_trips_and_alpha_follows_the_pressure_units(short_traj):
    cfg = S.StepConfig(poisson="p")
    stats = S.fit_stats([short_traj], cfg)
    sp = S.PressureSplit(stats["channels"], "p")
    a1 = sp.fit_alpha([short_traj], cfg.fields, stats["node_types"], np.asarray(stats["fixed"]))
    a2 = S.PressureSplit(stats["channels"], "p").fit_alpha([_scaled(short_traj, 1000.0)], cfg.fields,
                                                           stats["node_types"], np.asarray(stats["fixed"]))
    assert 0.7 < a1 < 1.4, a1  # kinematic pressure: the implied one at about its own scale
    assert a2 == pytest.approx(1000.0 * a1, rel=1e-3)  # a pressure in other units: alpha follows
    sol = sp.solver(short_traj, stats["node_types"], np.asarray(stats["fixed"]))
    X = short_traj.states(cfg.fields)
    Q = sp.to_model(sol, X)
    np.testing.assert_allclose(sp.to_physical(sol, Q), X, atol=1e-5)
    np.testing.assert_array_equal(Q[..., :2], X[..., :2])
    dq, dp = np.abs(np.diff(Q[..., 2], axis=0)).mean(), np.abs(np.diff(X[..., 2], axis=0)).mean()
    assert dq < 0.4 * dp, (dq, dp)  # q changes much less per snapshot than p
    out = np.unique(short_traj.mesh.boundaries["outlet"][0].data)
    np.testing.assert_array_equal(Q[:, out, 2], X[:, out, 2])  # the Dirichlet nodes keep p


def test_poisson_stepper_trains_rolls_out_and_reloads(short_traj, tmp_path):
    torch.set_num_threads(1)
    cfg = S.StepConfig(steps=30, batch_size=2, lr=3e-3, noise=0.01, poisson="p", history=1, unroll=2,
                       model_options={"hidden": 16, "n_blocks": 2})
    st, _ = S.train_stepper([short_traj], cfg, out=tmp_path)
    assert st.stats["poisson_alpha"] > 0
    R = st.rollout(short_traj, 8)
    X = short_traj.states(cfg.fields)
    assert np.isfinite(R).all()
    # the rollout's pressure is q + alpha S of its own velocity, never integrated on its own
    sol = st.split.cached(short_traj.name, short_traj.mesh.n_points)
    q = st.split.to_model(sol, R)[..., 2]
    assert np.abs(q[0] - st.split.to_model(sol, X[1:2])[0, :, 2]).max() < 1e-5
    R2 = S.load_stepper(tmp_path / "best.pt").rollout(short_traj, 8)
    np.testing.assert_allclose(R2, R, atol=1e-5)
    one = st.step_window(st.graph(short_traj), torch.from_numpy(X[:2]))
    assert one.shape == X.shape[1:]


def test_poisson_refusals(short_traj):
    stats = S.fit_stats([short_traj], S.StepConfig())
    with pytest.raises(ValueError, match="poisson channel 'q'"):
        S.PressureSplit(stats["channels"], "q")
    cfg = S.StepConfig(poisson="p", diagnosed=["p"])
    with pytest.raises(ValueError, match="both poisson and diagnosed"):
        S.Stepper(S.build_model(cfg, stats), cfg, stats)
    flat3d = dataclasses.replace(short_traj, dim=3)
    sp = S.PressureSplit(stats["channels"], "p")
    with pytest.raises(DatasetError, match="2D cases"):
        sp.solver(flat3d, stats["node_types"], np.asarray(stats["fixed"]))
