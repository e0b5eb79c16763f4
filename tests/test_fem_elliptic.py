"""The elliptic_boundary FEM solver and generator: manufactured solutions, generator properties, bad input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from meshops.data import recipe_module

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("skfem")


def _load(name: str):
    return recipe_module(ROOT / "datasets" / "elliptic_boundary", name)


fem = _load("fem")


# ----------------------------------------------------------------------------- manufactured solutions
# u = exp(x) sin(2y) + x y,  k = 1 + x^2/2 + y/4,  f = -div(k grad u)
def U2(x):
    return np.exp(x[0]) * np.sin(2 * x[1]) + x[0] * x[1]


def G2(x):
    return np.array([np.exp(x[0]) * np.sin(2 * x[1]) + x[1], 2 * np.exp(x[0]) * np.cos(2 * x[1]) + x[0]])


def K2(x):
    return 1 + 0.5 * x[0] ** 2 + 0.25 * x[1]


def F2(x):
    gx, gy = G2(x)
    lap = -3 * np.exp(x[0]) * np.sin(2 * x[1])
    return -(x[0] * gx + 0.25 * gy + K2(x) * lap)


# 3D: u = sin(x) cosh(y) + z^2,  k = 1 + z,  f = -(k lap u + dk/dz du/dz) = -((1 + z) 2 + 2 z)
def U3(x):
    return np.sin(x[0]) * np.cosh(x[1]) + x[2] ** 2


def G3(x):
    return np.array([np.cos(x[0]) * np.cosh(x[1]), np.sin(x[0]) * np.sinh(x[1]), 2 * x[2]])


def K3(x):
    return 1 + x[2]


def F3(x):
    return -((1 + x[2]) * 2 + 2 * x[2])


def _box_normals(mid):
    n = np.zeros_like(mid)
    for d in range(mid.shape[1]):
        n[np.isclose(mid[:, d], 1.0), d] = 1.0
        n[np.isclose(mid[:, d], 0.0), d] = -1.0
    return n


def _solve_mms(level, mode, dim=2, alpha=2.0):
    from skfem import MeshTet, MeshTri

    U, G, K, F = (U2, G2, K2, F2) if dim == 2 else (U3, G3, K3, F3)
    n1 = 2**level + 1
    axes = [np.linspace(0, 1, n1)] * dim
    m = MeshTri.init_tensor(*axes) if dim == 2 else MeshTet.init_tensor(*axes)
    p, t = m.p.T.copy(), m.t.T.copy()
    bf = fem.boundary_facets(p, t)
    mid = p[bf].mean(1)
    if mode == "mixed":  # Dirichlet on x=0 / y=0 (/ z=0), Neumann on x=1, Robin on y=1 (and z=1)
        ft = np.full(len(bf), fem.DIRICHLET)
        ft[np.isclose(mid[:, 0], 1)] = fem.NEUMANN
        ft[np.isclose(mid[:, 1], 1)] = fem.ROBIN
        if dim == 3:
            ft[np.isclose(mid[:, 2], 1)] = fem.ROBIN
    else:
        ft = np.full(len(bf), fem.NEUMANN)
    nrm = _box_normals(mid)
    gf = np.zeros(bf.shape)
    for a in range(bf.shape[1]):
        xa = p[bf[:, a]].T
        gf[:, a] = K(xa) * (G(xa) * nrm.T).sum(0) + np.where(ft == fem.ROBIN, alpha * U(xa), 0.0)
    x = p.T
    sol = fem.solve(p, t, f=F(x) * np.ones(len(p)), g=U(x), k=K(x), alpha=alpha, facet_type=ft, facets=bf,
                    g_facet=gf)
    return fem.errors(sol, U, G, subtract_mean=(mode == "neumann")), sol


def _orders(errs):
    e = np.asarray(errs)
    return np.log2(e[:-1] / e[1:])


@pytest.mark.parametrize("mode", ["mixed", "neumann"])
def test_manufactured_solution_2d_convergence_order(mode):
    errs = [_solve_mms(L, mode)[0] for L in (3, 4, 5, 6)]
    orders = _orders(errs)
    # theory for P1: L2 order 2, H1 order 1; the finest pairs must be within 10%
    assert abs(orders[-1, 0] - 2.0) < 0.2, orders
    assert abs(orders[-1, 1] - 1.0) < 0.1, orders
    assert np.all(orders[:, 0] > 1.8) and np.all(orders[:, 1] > 0.9), orders
    assert errs[-1][0] < 1e-3  # and the error is small, not merely decaying


def test_manufactured_solution_3d_convergence_order():
    errs = [_solve_mms(L, "mixed", dim=3)[0] for L in (1, 2, 3, 4)]
    orders = _orders(errs)
    assert abs(orders[-1, 0] - 2.0) < 0.2, orders
    assert abs(orders[-1, 1] - 1.0) < 0.1, orders


def test_dirichlet_values_are_imposed_exactly():
    (_, _), sol = _solve_mms(3, "mixed")
    d = sol.bc_type == fem.DIRICHLET
    p = sol.mesh.p
    assert d.sum() > 0
    np.testing.assert_allclose(sol.u[d], U2(p[:, d]), atol=1e-12)


# ----------------------------------------------------------------------------- bad input
def _square(n=4):
    from skfem import MeshTri

    m = MeshTri.init_tensor(np.linspace(0, 1, n), np.linspace(0, 1, n))
    return m.p.T.copy(), m.t.T.copy()


def test_closed_mesh_without_boundary_is_rejected():
    # the surface of a tetrahedron: every edge is shared by two triangles, so there is no boundary
    np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    tri = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]])
    with pytest.raises(fem.FEMError, match="no boundary facets"):
        fem.check_manifold(tri, 4, "closed.vtu")


def test_non_manifold_edge_is_rejected():
    pts = np.array([[0, 0], [1, 0], [0.5, 1], [0.5, -1], [1.5, 0.5]], float)
    tri = np.array([[0, 1, 2], [0, 1, 3], [0, 1, 4]])  # edge (0, 1) in three triangles
    with pytest.raises(fem.FEMError, match=r"non-manifold mesh: facet \[0, 1\] is shared by 3 cells"):
        fem.solve(pts, tri, f=0.0, g=0.0, facet_type=lambda m: np.ones(len(m)), where="fan.vtu")


def test_pinched_vertex_is_rejected():
    np.array([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], float)
    tri = np.array([[0, 1, 2], [0, 3, 4]])  # two triangles touching at vertex 0 only (bow tie)
    with pytest.raises(fem.FEMError, match="boundary vertex 0 touches 4 boundary edges"):
        fem.check_manifold(tri, 5, "bowtie.vtu")


def test_missing_boundary_values_are_rejected():
    p, t = _square()
    g = np.zeros(len(p))
    bf = fem.boundary_facets(p, t)
    g[bf[3, 0]] = np.nan
    with pytest.raises(fem.FEMError, match=r"sq.vtu: field 'g' is not finite at node \d+ .*boundary values missing"):
        fem.solve(p, t, f=1.0, g=g, facet_type=np.ones(len(bf), int), facets=bf, where="sq.vtu")


def test_incompatible_pure_neumann_is_rejected():
    p, t = _square()
    bf = fem.boundary_facets(p, t)
    with pytest.raises(fem.FEMError, match="pure Neumann data are incompatible"):
        fem.solve(p, t, f=1.0, g=0.0, facet_type=np.full(len(bf), fem.NEUMANN), facets=bf)


def test_bad_facet_type_and_coefficient():
    p, t = _square()
    bf = fem.boundary_facets(p, t)
    with pytest.raises(fem.FEMError, match="facet_type has value 7"):
        fem.solve(p, t, f=1.0, g=0.0, facet_type=np.full(len(bf), 7), facets=bf)
    with pytest.raises(fem.FEMError, match="field 'k' must be positive"):
        fem.solve(p, t, f=1.0, g=0.0, k=-1.0, facet_type=np.ones(len(bf), int), facets=bf)


# ----------------------------------------------------------------------------- generator
gen = _load("generator")
needs_gmsh = pytest.mark.skipif(importlib.util.find_spec("gmsh") is None, reason="gmsh (extra 'fem') is not installed")


@needs_gmsh
@pytest.mark.parametrize("family", ["cutout4", "cutout0", "polygon", "holes"])
@pytest.mark.parametrize("bc", ["dirichlet", "neumann", "robin", "mixed"])
def test_generated_case_fields(family, bc):
    m = gen.make_case(family, bc, seed=11)
    pd = m.point_data
    assert 200 <= m.n_points <= 900
    for name in ("f", "k", "g", "bc_type", "u", "alpha"):
        assert pd[name].shape == (m.n_points,)
        assert np.all(np.isfinite(pd[name]))
    bct = pd["bc_type"]
    bf = fem.boundary_facets(m.points, m.cells[0].data)
    on_boundary = np.zeros(m.n_points, bool)
    on_boundary[np.unique(bf)] = True
    assert np.array_equal(bct > 0, on_boundary)  # every boundary node has a type, interior nodes none
    assert np.all(pd["g"][~on_boundary] == 0)
    kinds = {"dirichlet": {1}, "neumann": {2}, "robin": {3}}
    if bc in kinds:
        assert set(np.unique(bct[on_boundary]).tolist()) == kinds[bc]
    else:
        assert 1 in set(bct.tolist()) and len(set(bct[on_boundary].tolist())) >= 2
    d = bct == 1
    np.testing.assert_allclose(pd["u"][d], pd["g"][d], atol=1e-12)
    if bc == "neumann":  # unique zero-mean solution of compatible data
        from skfem import Basis, ElementTriP1, Functional, MeshTri, asm

        b = Basis(MeshTri(m.points[:, :2].T, m.cells[0].data.T), ElementTriP1())
        mean = asm(Functional(lambda w: w["uh"]), b, uh=b.interpolate(pd["u"]))
        assert abs(mean) < 1e-10
    assert pd["u"].std() > 0.05


@needs_gmsh
def test_generator_is_deterministic_and_writes_vtu(tmp_path):
    a = gen.make_case("cutout4", "dirichlet", seed=5)
    b = gen.make_case("cutout4", "dirichlet", seed=5)
    c = gen.make_case("cutout4", "dirichlet", seed=6)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.point_data["u"], b.point_data["u"])
    assert a.n_points != c.n_points or not np.allclose(a.point_data["u"], c.point_data["u"])
    entries = gen.generate(tmp_path, ["cutout2"], ["neumann"], n=2, seed=0)
    assert len(entries) == 2 and (tmp_path / "index.json").exists()
    m = gen.read_case(tmp_path / entries[0]["file"])
    assert m.dim == 2 and m.point_data["bc_type"].dtype == np.int32
    fresh = gen.make_case("cutout2", "neumann", entries[0]["seed"])
    np.testing.assert_allclose(m.point_data["u"], fresh.point_data["u"])
    assert m.diff(fresh) == [] and list(m.boundaries) == ["neumann"]


@needs_gmsh
@pytest.mark.parametrize("family", ["holes", "cube_cutout1"])
def test_written_case_keeps_its_typed_boundary_facets(tmp_path, family):
    """VTU has no named regions: the facets travel as tagged extra cells and come back exactly,
    so the solver's system (fem.case_system) is the same from the file as from the generator."""
    case = gen.make_case(family, "mixed", seed=11)
    assert {"dirichlet"} < set(case.boundaries)
    back = gen.read_case(gen.write_case(case, tmp_path / "c.vtu"))
    assert back.diff(case) == [] and len(back.cells) == 1
    A0, b0, d0, _ = fem.case_system(case)
    A1, b1, d1, _ = fem.case_system(back)
    assert abs(A0 - A1).max() == 0 and np.array_equal(b0, b1) and np.array_equal(d0, d1)
    import meshio

    raw = meshio.read(tmp_path / "c.vtu")
    raw.cell_data["facet_type"][-1][:] = 9
    meshio.write(tmp_path / "bad.vtu", raw)
    with pytest.raises(fem.FEMError, match="bad.vtu: cell field 'facet_type' holds unknown facet type 9"):
        gen.read_case(tmp_path / "bad.vtu")


def test_cutout_domains_have_the_right_number_of_notches():
    rng = np.random.default_rng(0)
    geometry = _load("geometry")
    for n in range(5):
        d = geometry.square_with_cutouts(n, rng)
        assert len(d.outer) == 4 + 2 * n
        assert 1.0 - 4 * 0.45**2 < d.area <= 1.0
        assert (d.area < 1.0) == (n > 0)


@needs_gmsh
def test_generated_3d_case():
    m = gen.make_case("cube_cutout1", "mixed", seed=2)
    assert m.dim == 3 and m.cells[0].type == "tetra"
    assert set(np.unique(m.point_data["bc_type"]).tolist()) >= {0, 1}
    d = m.point_data["bc_type"] == 1
    np.testing.assert_allclose(m.point_data["u"][d], m.point_data["g"][d], atol=1e-12)
