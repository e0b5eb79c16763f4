"""The PDE residual loss: zero at the FEM solution, positive elsewhere, batched, mismatches refused."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from meshops.train.physics import (
    LinearSystem,
    ResidualError,
    batch_systems,
    p1_system,
    residual,
    residual_loss,
)

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    name = "meshops_elliptic_boundary_generator"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "datasets" / "elliptic_boundary" / "generator.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


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
