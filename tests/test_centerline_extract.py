"""Centerlines from vessel walls (meshops.geometry.centerline_extract) against known centerlines."""

from __future__ import annotations

import numpy as np
import pytest
from vessel_trees import open_wall, path_errors, random_tree, tree_wall, true_paths

from meshops.geometry.centerline import Centerline, project_points
from meshops.geometry.centerline_extract import WallError, extract_centerlines
from meshops.geometry.surface import triangulate
from meshops.geometry.tube import tube_wall


def cylinder(radius: float = 2.0, length: float = 20.0, n_around: int = 48) -> tuple[np.ndarray, np.ndarray]:
    z = np.linspace(0, length, 81)
    cl = Centerline(points=np.stack([0 * z, 0 * z, z], 1), branches=[np.arange(len(z))], radius=np.full(len(z), radius))
    w = tube_wall(cl, n_around=n_around)
    return w.points, triangulate(w.cells[0].data)


def test_demo_aorta_matches_vmtk(shared_data):
    import meshops
    from meshops.graph.centerline import read_centerline

    w = meshops.read(shared_data / "simvascular" / "demo_aorta_wall.vtp")
    res = extract_centerlines(w.points, w.cells[0].data, where="demo_aorta_wall.vtp")
    ref = read_centerline(shared_data / "simvascular" / "demo_aorta_centerlines.vtp")
    cl = res.centerline
    assert cl.n_branches == ref.n_branches == 3
    assert len(cl.bifurcations()) == len(ref.bifurcations()) == 1
    assert len(res.outlets) == 2 and res.inlet.kind == "cap"
    rref = float(ref.radius.mean())
    ref_paths = [(ref.points[q], ref.radius[q]) for q in ref.leaf_paths()]
    unmatched, dist, rad = path_errors(cl, ref_paths)
    assert unmatched == 0
    assert dist < 0.10, dist
    assert rad < 0.10, rad
    # and point by point against the whole reference tree
    assert project_points(cl.points, ref).distance.mean() < 0.1 * rref


@pytest.mark.parametrize("capped", [False, True])
def test_cylinder_radius_exact(capped):
    p, f = cylinder()
    if capped:  # close both ends with fans of flat triangles
        n = len(p)
        ring0, ring1 = np.arange(48), np.arange(n - 48, n)
        p = np.vstack([p, [[0, 0, 0]], [[0, 0, 20.0]]])
        f = np.vstack([f, np.stack([ring0, np.roll(ring0, -1), np.full(48, n)], 1),
                       np.stack([np.roll(ring1, -1), ring1, np.full(48, n + 1)], 1)])
    res = extract_centerlines(p, f)
    cl = res.centerline
    assert cl.n_branches == 1 and len(res.outlets) == 1
    assert res.inlet.kind == ("cap" if capped else "open")
    np.testing.assert_allclose(cl.radius, 2.0, rtol=0.02)
    assert np.abs(cl.points[:, :2]).max() < 0.02 * 2.0
    z = cl.points[cl.branches[0], 2]
    assert {round(z[0]), round(z[-1])} == {0, 20}


def _tree_case(seed: int, opened: bool) -> tuple[int, float, float, int, int]:
    tree = random_tree(seed)
    p, f = tree_wall(tree)
    if opened:
        f = open_wall(p, f, tree)
    res = extract_centerlines(p, f, largest=opened)
    nb_true = 1 + 2 * (len(tree["branches"]) - 1)
    return (*path_errors(res.centerline, true_paths(tree)), res.centerline.n_branches, nb_true)


@pytest.mark.parametrize("seed,opened", [(1, False), (4, True), (11, False)])
def test_synthetic_tree(seed, opened):
    unmatched, dist, rad, nb, nb_true = _tree_case(seed, opened)
    assert unmatched == 0 and nb == nb_true
    assert dist < 0.10 and rad < 0.10, (dist, rad)


@pytest.mark.slow
def test_synthetic_trees_95_percent():
    ok = 0
    cases = [(s, s % 3 == 0) for s in range(20)]
    for seed, opened in cases:
        unmatched, dist, rad, nb, nb_true = _tree_case(seed, opened)
        ok += unmatched == 0 and nb == nb_true and dist < 0.10 and rad < 0.10
    assert ok >= 0.95 * len(cases), ok


def test_not_a_vessel_errors():
    import pyvista as pv

    s = pv.Sphere(radius=1.0).triangulate()
    with pytest.raises(WallError, match="ball.stl: no openings found"):
        extract_centerlines(np.asarray(s.points), np.asarray(s.faces).reshape(-1, 4)[:, 1:], where="ball.stl")
    p, f = cylinder()
    p2 = np.vstack([p, p + [10.0, 0, 0]])
    f2 = np.vstack([f, f + len(p)])
    with pytest.raises(WallError, match="two.stl: the wall has 2 disconnected pieces.*--largest"):
        extract_centerlines(p2, f2, where="two.stl")
    assert extract_centerlines(p2, f2, largest=True).centerline.n_branches == 1
    # a single opening (a closed-end tube) is not a vessel either
    keep = f[:, :].max(1) < len(p)
    with pytest.raises(WallError, match="inlet and at least one outlet|no openings"):
        pc = np.vstack([p, [[0, 0, 20.0]]])
        ring1 = np.arange(len(p) - 48, len(p))
        fc = np.vstack([f[keep], np.stack([np.roll(ring1, -1), ring1, np.full(48, len(p))], 1)])
        extract_centerlines(pc, fc, where="blind.stl")


def test_noisy_nonmanifold_wall():
    """Jittered points, a few faces dropped (holes), a dangling triangle, 10% of the faces wound the
    other way: still one clean branch."""
    rng = np.random.default_rng(0)
    p, f = cylinder(n_around=40)
    p = p + rng.normal(scale=0.02, size=p.shape)
    drop = rng.choice(np.arange(200, len(f) - 200), size=3, replace=False)
    f = np.delete(f, drop, axis=0)
    f = np.vstack([f, [[f[500, 0], f[500, 1], f[900, 2]]]])  # a non-manifold extra face
    flip = rng.random(len(f)) < 0.1
    f[flip] = f[flip][:, ::-1]  # inconsistent winding, as some exporters write it
    cl = extract_centerlines(p, f).centerline
    assert cl.n_branches == 1
    assert abs(np.median(cl.radius) - 2.0) < 0.05 * 2.0


def test_inputs_not_modified():
    p, f = cylinder()
    p0, f0 = p.copy(), f.copy()
    extract_centerlines(p, f)
    assert np.array_equal(p, p0) and np.array_equal(f, f0)


def test_rounded_closed_wall_needs_points():
    """A capsule (no boundary loop, no flat cap): an error without points, a centerline with them."""
    import pyvista as pv

    cap = pv.Capsule(radius=1.0, cylinder_length=8.0, direction=(0, 0, 1), resolution=40).triangulate()
    p = np.asarray(cap.points, dtype=np.float64)
    f = np.asarray(cap.faces).reshape(-1, 4)[:, 1:]
    with pytest.raises(WallError, match="capsule.stl: no openings found.*--inlet"):
        extract_centerlines(p, f, where="capsule.stl")
    z0, z1 = p[:, 2].min(), p[:, 2].max()
    res = extract_centerlines(p, f, inlet=np.array([0, 0, z0 + 1.5]), outlets=np.array([[0, 0, z1 - 1.5]]))
    cl = res.centerline
    assert cl.n_branches == 1 and res.inlet.kind == "point"
    mid = np.abs(cl.points[:, 2] - 0.5 * (z0 + z1)) < 3.0
    np.testing.assert_allclose(cl.radius[mid], 1.0, rtol=0.03)
