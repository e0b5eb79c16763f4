"""The P1 Poisson solve: manufactured solutions (Dirichlet and natural Neumann), convergence, gradcheck, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meshops.nn.poisson import PoissonFactor, cached_factor, p1_laplacian, poisson_solve


def _square(n: int, jitter: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit square, ``n`` x ``n`` nodes, two triangles a cell; interior nodes moved by ``jitter`` x h."""
    a, b = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    P = np.column_stack([a.ravel(), b.ravel()])
    inner = (P > 0).all(1) & (P < 1).all(1)
    P[inner] += jitter / (n - 1) * np.random.default_rng(seed).uniform(-1, 1, (int(inner.sum()), 2))
    i = np.arange(n * n).reshape(n, n)
    T = np.concatenate([np.stack([i[:-1, :-1].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel()], 1),
                        np.stack([i[:-1, :-1].ravel(), i[1:, 1:].ravel(), i[:-1, 1:].ravel()], 1)])
    return P, T


def test_dirichlet_solution_converges_at_second_order():
    errs = []
    for n in (11, 21, 41):
        P, T = _square(n, jitter=0.3)
        bd = (P == 0).any(1) | (P == 1).any(1)
        ex = np.sin(np.pi * P[:, 0]) * np.sin(np.pi * P[:, 1])
        x = PoissonFactor(P, T, bd).solve(2 * np.pi**2 * ex)
        assert np.abs(x[bd]).max() == 0
        errs.append(np.linalg.norm(x - ex) / np.linalg.norm(ex))
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert errs[-1] < 3e-3 and (rates > 1.7).all(), (errs, rates)


def test_the_rest_of_the_boundary_is_natural_neumann():
    # -x'' = 1 on [0, 1] with x(0) = 0 and zero flux elsewhere: x = a - a^2 / 2, in 3D coordinates too
    P, T = _square(31)
    x = PoissonFactor(np.column_stack([P[:, 0], np.zeros(len(P)), P[:, 1]]), T, P[:, 0] == 0).solve(np.ones(len(P)))
    ex = P[:, 0] - P[:, 0] ** 2 / 2
    assert np.abs(x - ex).max() < 1e-3 * ex.max()


def test_stiffness_is_symmetric_with_zero_row_sums_and_mass_is_the_area():
    P, T = _square(9, jitter=0.4)
    K, m = p1_laplacian(P, T)
    assert abs(K - K.T).max() < 1e-12 and np.abs(K.sum(1)).max() < 1e-12
    assert abs(m.sum() - 1.0) < 1e-12 and (m > 0).all()


def test_gradcheck_over_two_graphs_in_float64():
    P, T = _square(6, jitter=0.3)
    f1 = PoissonFactor(P, T, P[:, 0] == 0)
    f2 = PoissonFactor(P * 2.0, T, P[:, 1] == 1)
    s = torch.randn(2 * len(P), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: poisson_solve(s, [f1, f2], [0, len(P), 2 * len(P)]), (s,))


def test_refusals_name_the_problem():
    P, T = _square(5)
    with pytest.raises(ValueError, match="at least one Dirichlet"):
        PoissonFactor(P, T, np.zeros(len(P), bool), where="case_7")
    two = np.concatenate([P, P + 5.0])  # a second square with no Dirichlet node
    fixed = np.zeros(len(two), bool)
    fixed[0] = True
    with pytest.raises(ValueError, match="singular"):
        PoissonFactor(two, np.concatenate([T, T + len(P)]), fixed)
    flat = T.copy()
    flat[3] = [0, 1, 2]  # three nodes on the line a = 0
    with pytest.raises(ValueError, match="triangle 3 .* zero area"):
        p1_laplacian(P, flat)
    f = PoissonFactor(P, T, P[:, 0] == 0)
    with pytest.raises(ValueError, match="do not fit"):
        poisson_solve(torch.zeros(len(P) + 1), [f], [0, len(P)])


def test_a_mesh_is_factorized_once_and_a_new_mask_is_a_new_factor():
    P, T = _square(7)
    f = cached_factor(P, T, P[:, 0] == 0)
    assert cached_factor(P.copy(), T.copy(), P[:, 0] == 0) is f
    g = cached_factor(P, T, P[:, 0] == 1)
    assert g is not f and g.key != f.key
