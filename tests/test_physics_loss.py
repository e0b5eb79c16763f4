"""The PDE residual loss: zero at the FEM solution, positive elsewhere, batched, mismatches refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from meshops.train.physics import (
    LinearSystem,
    ResidualError,
    batch_systems,
    energy_loss,
    p1_system,
    residual,
    residual_loss,
)

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    from meshops.data import recipe_module

    return recipe_module(ROOT / "datasets" / "elliptic_boundary", "generator")


@pytest.fixture(scope="module")
def cases():
    pytest.importorskip("skfem")
    pytest.importorskip("gmsh")
    gen = _generator()
    return [gen.make_case("cutout2", "dirichlet", s, coefficient="variable") for s in (1, 2)]


def _system(mesh):
    pd = mesh.point_data
    return p1_system(mesh.points, mesh.cells[0].data, f=pd["f"], k=pd["k"], dirichlet=pd["bc_type"] == 1, g=pd["g"],
                     name=mesh.source)


def test_solver_solution_has_zero_residual(cases):
    for mesh in cases:
        s = _system(mesh)
        u = torch.from_numpy(mesh.point_data["u"])
        assert float(residual_loss(u, s)) < 1e-20
        # a perturbed solution has a clearly positive residual; u = 0 has loss 1 (the effective rhs)
        assert float(residual_loss(u + 0.01 * torch.randn_like(u), s)) > 1e-6
        assert abs(float(residual_loss(torch.zeros_like(u), s)) - 1.0) < 1e-12


def test_dirichlet_values_are_substituted(cases):
    mesh = cases[0]
    s = _system(mesh)
    u = torch.from_numpy(mesh.point_data["u"]).clone()
    u[s.fixed] += 100.0  # wrong boundary values in the prediction do not matter: the known ones are used
    assert float(residual_loss(u, s)) < 1e-20


def test_batched_loss_is_mean_of_cases_and_differentiable(cases):
    systems = [_system(m) for m in cases]
    us = [torch.from_numpy(m.point_data["u"]) + 0.05 * torch.randn(m.n_points, dtype=torch.float64) for m in cases]
    b = batch_systems(systems)
    u = torch.cat(us).requires_grad_(True)
    loss = residual_loss(u[:, None], b)
    ref = sum(residual_loss(x, s) for x, s in zip(us, systems, strict=True)) / 2
    torch.testing.assert_close(loss.detach(), ref)
    loss.backward()
    assert torch.isfinite(u.grad).all() and u.grad.abs().sum() > 0
    # gradient is zero at fixed nodes (their values are substituted)
    assert float(u.grad[b.fixed].abs().max()) == 0.0


def test_mismatch_is_refused(cases):
    s = _system(cases[0])
    n = s.n
    with pytest.raises(ResidualError, match=rf"residual matrix is {n} x {n} but the prediction has shape \({n + 3},\)"):
        residual(torch.zeros(n + 3, dtype=torch.float64), s)
    with pytest.raises(ResidualError, match=r"prediction has shape \(.*, 2\)"):
        residual_loss(torch.zeros(n, 2, dtype=torch.float64), s)
    with pytest.raises(ResidualError, match=rf"'b' has shape \({n - 1},\) but the matrix has {n} rows"):
        LinearSystem(s.A, s.b[:-1], name="case7")
    with pytest.raises(ResidualError, match=r"case7: the residual matrix must be square, got shape \(3, 4\)"):
        LinearSystem(torch.zeros(3, 4).to_sparse(), torch.zeros(3), name="case7")
    mesh = cases[0]
    with pytest.raises(ResidualError, match=r"field 'f' has shape \(5,\) but the mesh has"):
        p1_system(mesh.points, mesh.cells[0].data, f=np.zeros(5), name="case7")


def test_small_poisson_by_hand():
    """1D-like check: a 2-triangle square, no Dirichlet nodes, k = 1: A is the P1 stiffness matrix."""
    pytest.importorskip("skfem")
    pts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.0]])
    tri = np.array([[0, 1, 2], [0, 2, 3]])
    s = p1_system(pts, tri, f=np.ones(4))
    A = s.A.to_dense().numpy()
    np.testing.assert_allclose(A.sum(1), 0, atol=1e-14)  # constants are in the kernel
    np.testing.assert_allclose(np.diag(A), [1, 1, 1, 1], atol=1e-14)
    np.testing.assert_allclose(s.b.numpy().sum(), 1.0, atol=1e-14)  # int f = area


def test_energy_is_smallest_at_the_solution_by_half_the_energy_norm(cases):
    """J(u* + d) - J(u*) = 1/2 d^T A d / scale exactly; the gradient at u* vanishes on the free nodes;
    a batch gives the mean of the graphs; rows other than the free ones are refused."""
    systems, sols = [], []
    for mesh in cases:
        s = _system(mesh)
        u = torch.from_numpy(mesh.point_data["u"]).clone().requires_grad_(True)
        j0 = energy_loss(u, s)
        (g,) = torch.autograd.grad(j0, u)
        free = ~s.fixed
        assert float(g[free].abs().max()) < 1e-9 * float(s.b.abs().max() + 1)
        d = torch.randn(s.n, dtype=torch.float64) * free
        j1 = energy_loss(u.detach() + d, s)
        # the scale is the same for both (label-free), so recover it from the identity
        quad = 0.5 * float(d @ torch.sparse.mm(s.A, d[:, None])[:, 0])
        assert float(j1 - j0) > 0
        j2 = energy_loss(u.detach() + 2 * d, s)
        np.testing.assert_allclose(float(j2 - j0), 4 * float(j1 - j0), rtol=1e-9)  # quadratic in d
        assert quad > 0
        # fixed (Dirichlet) entries of the prediction are ignored: they are substituted
        bumped = u.detach() + 5.0 * s.fixed.double()
        np.testing.assert_allclose(float(energy_loss(bumped, s)), float(j0), rtol=1e-12)
        systems.append(s)
        sols.append(u.detach())
    both = batch_systems(systems)
    np.testing.assert_allclose(float(energy_loss(torch.cat(sols), both)),
                               np.mean([float(energy_loss(x, s)) for x, s in zip(sols, systems, strict=True)]), rtol=1e-12)
    odd = LinearSystem(systems[0].A, systems[0].b, torch.ones(systems[0].n, dtype=torch.bool), systems[0].fixed,
                       systems[0].values, name="case_x")
    with pytest.raises(ResidualError, match="case_x: the energy needs the equation on exactly the non-fixed rows"):
        energy_loss(sols[0], odd)


@pytest.mark.parametrize("kind", ["mixed", "robin", "neumann"])
def test_solver_system_of_every_boundary_kind(kind):
    """The elliptic solver's own system (fem.case_system: Neumann fluxes, Robin terms) is solved by
    the case's u: zero residual and zero energy gradient on the free nodes, positive elsewhere."""
    pytest.importorskip("skfem")
    pytest.importorskip("gmsh")
    from meshops.data import recipe_module
    from meshops.train.physics import to_torch_sparse

    fem = recipe_module(ROOT / "datasets" / "elliptic_boundary", "fem")
    mesh = _generator().make_case("cutout1", kind, 3, coefficient="variable")
    A, b, dirichlet, g = fem.case_system(mesh)
    assert dirichlet.any() == (kind == "mixed")
    s = LinearSystem(to_torch_sparse(A), torch.from_numpy(b), None, torch.from_numpy(dirichlet),
                     torch.from_numpy(g), name=mesh.source)
    u = torch.from_numpy(mesh.point_data["u"]).clone().requires_grad_(True)
    assert float(residual_loss(u.detach(), s)) < 1e-18
    (grad,) = torch.autograd.grad(energy_loss(u, s), u)
    assert float(grad[~s.fixed].abs().max()) < 1e-10
    assert float(residual_loss(u.detach() + 0.01 * torch.randn_like(u), s)) > 1e-8
    del mesh.point_data["alpha"]
    with pytest.raises(fem.FEMError, match="point fields \\['alpha'\\] missing"):
        fem.case_system(mesh)
