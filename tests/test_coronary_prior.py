"""The physics prior of the tree-mode coronary model: healthy radius, Borda-Carnot stenosis loss, Murray split."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from meshops.geometry.vessel_tree import vessel_tree
from meshops.models.coronary import CenterlineRBF, attach_centerline
from meshops.models.coronary_prior import healthy_radius, stenosis_gradient

MU, RHO = 3.5e-3, 1060.0


def test_healthy_radius_matches_a_loop_on_random_runs():
    rng = np.random.default_rng(0)
    r = rng.uniform(0.5, 2.0, 200)
    start = rng.random(200) < 0.05
    start[0] = True
    ref = np.empty_like(r)
    for i in range(len(r)):
        j = i + 1
        while j < len(r) and not start[j]:
            j += 1
        ref[i] = r[i:j].max()
    got = healthy_radius(torch.tensor(r), torch.tensor(start)).numpy()
    assert np.allclose(got, ref, rtol=0, atol=1e-12)


def test_stenosis_gradient_integrates_to_the_throat_loss():
    s = torch.linspace(0.0, 10.0, 101)
    loss = 5.0 * torch.exp(-((s - 5.0) ** 2))  # rises to 5 at the throat, falls back behind it
    start = torch.zeros(101, dtype=torch.bool)
    start[0] = True
    g = stenosis_gradient(loss, s, start)
    assert (g >= 0).all() and float((g[1:] * (s[1:] - s[:-1])).sum()) == pytest.approx(5.0, rel=1e-3)


def _straight(r: np.ndarray, length: float) -> Data:
    pts = np.stack([np.zeros(len(r)), np.zeros(len(r)), np.linspace(0, length, len(r))], 1)
    theta = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    wall = np.concatenate([p + r_ * np.stack([np.cos(theta), np.sin(theta), np.zeros(8)], 1) for p, r_ in zip(pts, r, strict=True)])
    d = Data(pos=torch.tensor(wall, dtype=torch.float32))
    return attach_centerline(d, pts, r, 1.0, n_points=400)


def test_untrained_pressure_is_poiseuille_plus_borda_carnot():
    # a straight 40 mm tube of radius 1.5 mm with a cosine stenosis of 50 % area reduction: the heads start at the
    # prior, so the inlet-to-outlet drop is the Poiseuille integral plus rho/2 u0^2 (A0/As - 1)^2 (0.1 % inertial)
    z = np.linspace(0, 40.0, 801)
    a = 0.5 * (1 - np.cos(2 * np.pi * np.clip((z - 15) / 8, 0, 1)))  # 0 outside [15, 23], 1 at the throat
    r = 1.5 * np.sqrt(1 - 0.5 * a)
    torch.manual_seed(0)
    m = CenterlineRBF(physics="tree", d_model=16, n_heads=2, n_layers=1, num_centers=16).eval()
    with torch.no_grad():
        dp = m(_straight(r, 40.0))[:, 0].numpy().reshape(-1, 8).mean(1)
    q, rs = 1e-6, r * 1e-3
    poiseuille = float(np.sum(0.5 * (8 * MU * q / (np.pi * rs[1:] ** 4) + 8 * MU * q / (np.pi * rs[:-1] ** 4)) * np.diff(z) * 1e-3))
    u0 = q / (math.pi * (1.5e-3) ** 2)
    borda = 0.5 * RHO * u0**2 * (2.0 - 1.0) ** 2
    assert dp[0] - dp[-1] == pytest.approx(poiseuille + borda, rel=0.05)
    assert borda > 2 * 0.05 * (poiseuille + borda)  # the tolerance tells the stenosis term apart


def test_murray_split_ignores_a_stenosis_next_to_the_junction():
    # main vessel along z with a side branch at 20 mm; a 60 % stenosis of the continuing main vessel 1-5 mm past the
    # junction must not change the split (the dataset splits by the healthy radii)
    z = np.linspace(0, 40, 201)
    main = np.stack([np.zeros_like(z), np.zeros_like(z), z], 1)
    r_main = np.where(z < 20, 1.6, 1.6 * 0.7 ** (1 / 3))
    side_t = np.linspace(0, 15, 61)[1:]
    side = main[100] + side_t[:, None] * np.array([np.sin(1.0), 0, np.cos(1.0)])
    r_side = np.full(len(side_t), 1.6 * 0.3 ** (1 / 3))
    pts = np.concatenate([main, side])
    paths = [np.arange(201), np.concatenate([[100], 201 + np.arange(60)])]
    healthy = vessel_tree(pts, np.concatenate([r_main, r_side]), paths)
    sten = r_main * np.sqrt(1 - 0.6 * np.exp(-0.5 * ((z - 23) / 1.0) ** 2))
    narrowed = vessel_tree(pts, np.concatenate([sten, r_side]), paths)
    assert healthy.q_in[1] == pytest.approx(0.3, rel=1e-6)
    assert narrowed.q_in[1] == pytest.approx(healthy.q_in[1], rel=1e-3)
