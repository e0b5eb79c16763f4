"""Green's function potentials (meshops.nn.potentials) against closed forms, and BENO's zero-mean output."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from meshops.data import recipe_module
from meshops.data.beno_format import elliptic_case
from meshops.models import create
from meshops.nn.potentials import green, layer_potentials, newtonian_potential, node_geometry, spatial_dim

ROOT = Path(__file__).resolve().parents[1]
T = torch.float64


def _disk(R=1.0, rings=40, m_bnd=200):
    """Nodes of a disk: polar rings with exact annulus-sector areas, plus ``m_bnd`` boundary nodes."""
    dr = R / rings
    pts, vol = [np.zeros((1, 3))], [np.array([math.pi * (dr / 2) ** 2])]
    for k in range(1, rings):
        r = k * dr
        n = max(6, int(round(2 * math.pi * r / dr)))
        a = np.linspace(0, 2 * math.pi, n, endpoint=False) + 0.3 * k
        pts.append(np.stack([r * np.cos(a), r * np.sin(a), np.zeros(n)], 1))
        ring = math.pi * ((R if k == rings - 1 else r + dr / 2) ** 2 - (r - dr / 2) ** 2)
        vol.append(np.full(n, ring / n))
    a = np.linspace(0, 2 * math.pi, m_bnd, endpoint=False)
    bnd = np.stack([R * np.cos(a), R * np.sin(a), np.zeros(m_bnd)], 1)
    pos = np.concatenate(pts + [bnd])
    vol = np.concatenate(vol + [np.zeros(m_bnd)])
    is_b = np.zeros(len(pos), dtype=bool)
    is_b[-m_bnd:] = True
    normal = np.where(is_b[:, None], pos / R, 0.0)
    w = np.where(is_b, 2 * math.pi * R / m_bnd, 0.0)
    return (torch.tensor(pos, dtype=T), torch.tensor(vol, dtype=T), torch.tensor(is_b), torch.tensor(w, dtype=T),
            torch.tensor(normal, dtype=T))


def test_green_and_dim():
    r = torch.tensor([0.5, 1.0, 2.0], dtype=T)
    torch.testing.assert_close(green(r, 2), -torch.log(r) / (2 * math.pi))
    torch.testing.assert_close(green(r, 3), 1 / (4 * math.pi * r))
    with pytest.raises(ValueError, match="dim must be 2 or 3, got 4"):
        green(r, 4)
    assert spatial_dim(torch.tensor([[0.0, 1.0, 0.0], [2.0, 3.0, 0.0]])) == 2
    assert spatial_dim(torch.tensor([[0.0, 1.0, 0.0], [2.0, 3.0, 0.1]])) == 3


def test_disk_potentials_match_closed_forms():
    R = 1.3
    pos, vol, is_b, w, normal = _disk(R)
    batch = torch.zeros(len(pos), dtype=torch.long)
    r = pos[:, :2].norm(dim=1)
    inside = r < 0.9 * R
    # Newtonian potential of f = 1 on a disk: (R^2 - r^2)/4 - (R^2/2) log R
    nf = newtonian_potential(pos, batch, 1, vol, torch.ones(len(pos), 1, dtype=T))[:, 0]
    exact = (R**2 - r**2) / 4 - R**2 / 2 * math.log(R)
    err = (nf - exact)[inside].abs().max() / exact.abs().max()
    assert err < 5e-3, float(err)
    # single layer of q = 1: -R log R inside; double layer of q = 1: -1 inside
    s, d = layer_potentials(pos, batch, 1, is_b, w, normal, torch.ones(len(pos), 2, dtype=T))
    torch.testing.assert_close(s[inside, 0], torch.full_like(s[inside, 0], -R * math.log(R)), atol=2e-3, rtol=0)
    torch.testing.assert_close(d[inside, 1], -torch.ones_like(d[inside, 1]), atol=2e-3, rtol=0)
    # on the boundary: D[1] = -1/2 (the self term of a flat boundary is 0), S[1] still -R log R
    torch.testing.assert_close(d[is_b, 0], torch.full_like(d[is_b, 0], -0.5), atol=2e-2, rtol=0)
    torch.testing.assert_close(s[is_b, 0], torch.full_like(s[is_b, 0], -R * math.log(R)), atol=2e-2, rtol=0)
    # outside (a circle of targets): S[1] = -R log|x|, D[1] = 0; add them as extra non-weighted nodes
    out = torch.tensor([[2.5, 0.0, 0.0], [0.0, -3.0, 0.0]], dtype=T)
    pos2 = torch.cat([pos, out])
    z = torch.zeros(2, dtype=T)
    s2, d2 = layer_potentials(pos2, torch.zeros(len(pos2), dtype=torch.long), 1, torch.cat([is_b, torch.zeros(2, dtype=torch.bool)]),
                              torch.cat([w, z]), torch.cat([normal, torch.zeros(2, 3, dtype=T)]), torch.ones(len(pos2), 1, dtype=T))
    torch.testing.assert_close(s2[-2:, 0], -R * torch.log(out[:, :2].norm(dim=1)), atol=1e-6, rtol=0)
    torch.testing.assert_close(d2[-2:, 0], z, atol=1e-6, rtol=0)


def test_sphere_single_layer_3d():
    # S[1] of a sphere of radius R is R inside (1/(4 pi R) * 4 pi R^2) and R^2/|x| outside
    R, m = 0.8, 2000
    k = np.arange(m) + 0.5
    phi, th = np.arccos(1 - 2 * k / m), math.pi * (1 + 5**0.5) * k
    sph = R * np.stack([np.cos(th) * np.sin(phi), np.sin(th) * np.sin(phi), np.cos(phi)], 1)
    tgt = np.array([[0.0, 0.0, 0.0], [0.2, -0.1, 0.3], [0.0, 0.0, 2.0]])
    pos = torch.tensor(np.concatenate([sph, tgt]), dtype=T)
    is_b = torch.zeros(len(pos), dtype=torch.bool)
    is_b[:m] = True
    w = torch.where(is_b, 4 * math.pi * R**2 / m, 0.0).to(T)
    normal = torch.where(is_b[:, None], pos / R, 0.0)
    s, d = layer_potentials(pos, torch.zeros(len(pos), dtype=torch.long), 1, is_b, w, normal,
                            torch.ones(len(pos), 1, dtype=T))
    torch.testing.assert_close(s[m:, 0], torch.tensor([R, R, R**2 / 2.0], dtype=T), atol=2e-3, rtol=0)
    torch.testing.assert_close(d[m:, 0], torch.tensor([-1.0, -1.0, 0.0], dtype=T), atol=2e-3, rtol=0)


def test_potentials_permutation_equivariant_and_per_graph():
    pos_a, vol_a, b_a, w_a, n_a = _disk(1.0, rings=8, m_bnd=40)
    pos_b, vol_b, b_b, w_b, n_b = _disk(0.6, rings=6, m_bnd=30)
    pos_b = pos_b + torch.tensor([0.3, 0.1, 0.0], dtype=T)
    gen = torch.Generator().manual_seed(0)
    dens_a = torch.randn(len(pos_a), 2, generator=gen, dtype=T)
    dens_b = torch.randn(len(pos_b), 2, generator=gen, dtype=T)

    def run(pos, vol, is_b, w, nrm, dens, batch, ng):
        return torch.cat([newtonian_potential(pos, batch, ng, vol, dens),
                          *layer_potentials(pos, batch, ng, is_b, w, nrm, dens)], 1)

    one_a = run(pos_a, vol_a, b_a, w_a, n_a, dens_a, torch.zeros(len(pos_a), dtype=torch.long), 1)
    one_b = run(pos_b, vol_b, b_b, w_b, n_b, dens_b, torch.zeros(len(pos_b), dtype=torch.long), 1)
    # two overlapping graphs in one batch, rows interleaved at random: each keeps its own result
    cat = [torch.cat(t) for t in ((pos_a, pos_b), (vol_a, vol_b), (b_a, b_b), (w_a, w_b), (n_a, n_b),
                                   (dens_a, dens_b))]
    batch = torch.cat([torch.zeros(len(pos_a), dtype=torch.long), torch.ones(len(pos_b), dtype=torch.long)])
    perm = torch.randperm(len(batch), generator=gen)
    both = run(*[t[perm] for t in cat], batch[perm], 2)
    expect = torch.cat([one_a, one_b])[perm]
    torch.testing.assert_close(both, expect, rtol=1e-10, atol=1e-10)


@pytest.fixture(scope="module")
def meshes():
    pytest.importorskip("skfem")
    pytest.importorskip("gmsh")
    gen = recipe_module(ROOT / "datasets" / "elliptic_boundary", "generator")
    return [gen.make_case(fam, bc, seed=3) for fam, bc in (("cutout0", "neumann"), ("holes", "neumann"),
                                                           ("cutout2", "dirichlet"))]


def test_node_geometry_3d_tetra_mesh():
    pytest.importorskip("gmsh")
    gen = recipe_module(ROOT / "datasets" / "elliptic_boundary", "generator")
    mesh = gen.make_case("cube_cutout0", "neumann", seed=1)
    g = _graph(mesh)
    pos, is_b = g.pos.to(T), g.node_type > 0
    batch = torch.zeros(len(pos), dtype=torch.long)
    vol, bw, normal = node_geometry(pos, g.edge_index, is_b, batch, 1)
    cells = mesh.cells[0].data
    e = mesh.points[cells[:, 1:]] - mesh.points[cells[:, :1]]
    assert abs(float(vol.sum()) / (np.abs(np.linalg.det(e)).sum() / 6) - 1) < 0.06
    tri = mesh.points[np.concatenate([blk.data for blocks in mesh.boundaries.values() for blk in blocks])]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum() / 2
    assert abs(float(bw.sum()) / area - 1) < 0.06
    _, d = layer_potentials(pos, batch, 1, is_b, bw, normal, torch.ones(len(pos), 1, dtype=T))
    assert float((d[~is_b, 0] + 1).abs().median()) < 0.05


def _graph(mesh):
    from meshops.data.graphs import build_graph

    return build_graph(mesh, {"levels": 1})


def test_node_geometry_estimates_mesh_measures(meshes):
    for mesh in meshes:
        g = _graph(mesh)
        pos, is_b = g.pos.to(T), g.node_type > 0
        batch = torch.zeros(len(pos), dtype=torch.long)
        vol, bw, normal = node_geometry(pos, g.edge_index, is_b, batch, 1)
        cells = mesh.cells[0].data
        p = mesh.points[:, :2]
        e = p[cells[:, 1:]] - p[cells[:, :1]]
        area = np.abs(np.linalg.det(e)).sum() / 2
        assert abs(float(vol.sum()) / area - 1) < 0.03, (mesh.source, float(vol.sum()), area)
        seg = np.concatenate([blk.data for blocks in mesh.boundaries.values() for blk in blocks])
        length = np.linalg.norm(p[seg[:, 0]] - p[seg[:, 1]], axis=1).sum()
        assert abs(float(bw.sum()) / length - 1) < 0.05, (mesh.source, float(bw.sum()), length)
        assert bool((bw[~is_b] == 0).all()) and bool((bw[is_b] > 0).all())
        # outward: moving a boundary node along its normal leaves the domain's bounding box or the
        # D[1] = -1 test below fails; here check D[1] ~ -1 at interior nodes, which needs outward normals
        _, d = layer_potentials(pos, batch, 1, is_b, bw, normal, torch.ones(len(pos), 1, dtype=T))
        assert float((d[~is_b, 0] + 1).abs().median()) < 0.05, mesh.source


def test_beno_pure_neumann_output_is_mean_free(meshes):
    from meshops.data.graphs import FeatureSpec, Pipeline
    from meshops.train.trainer import collate

    cases = [elliptic_case(m, f"c{i}") for i, m in enumerate(meshes)]
    p = Pipeline(FeatureSpec.from_case(cases[0]), {"levels": 1})
    p.fit(cases)
    samples = [p.sample(c) for c in cases]
    cfg = dict(in_channels=p.features.in_channels, out_channels=1, source_channels=[0],
               boundary_value_channels=[2], hidden=16, latent=16, n_blocks=2, heads=2, transformer_layers=1)
    torch.manual_seed(0)
    pinned = create("beno", anchor_channels=[3, 5], **cfg).eval()
    free = create("beno", **cfg).eval()
    free.load_state_dict({k: v for k, v in pinned.state_dict().items() if k != "offset"})
    with torch.no_grad():
        pinned.offset.fill_(0.25)
        batched = pinned(collate(samples))
        for s, c in zip(samples, cases, strict=True):
            out = pinned(s)
            g = s
            vol, _, _ = node_geometry(g.pos.float(), g.edge_index, s.x[:, -1] > 0.5,
                                      torch.zeros(len(out), dtype=torch.long), 1)
            mean = float((out[:, 0] * vol).sum() / vol.sum())
            if c.mesh.field_data.get("bc") == "neumann" or (c.mesh.point_data["bc_type"] != 1).all():
                assert abs(mean - 0.25) < 1e-5
                # the same model without the constraint differs by a constant only
                diff = out - free(s)
                assert float(diff.std()) < 1e-5 and float(diff.abs().mean()) > 1e-4
            else:  # Dirichlet nodes pin the solution: output untouched
                torch.testing.assert_close(out, free(s))
        torch.testing.assert_close(batched, torch.cat([pinned(s) for s in samples]), rtol=1e-4, atol=1e-5)
