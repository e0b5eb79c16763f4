"""Wall surfaces swept around centerlines (meshops.geometry.tube) and `meshops predict --centerline`
on the real SimVascular demo aorta centerlines."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

import meshops
from meshops.geometry.centerline import Centerline, tangents
from meshops.geometry.tube import tube_wall

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "datasets" / "coronary_synthetic" / "model" / "best.pt"


def _helix(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 3 * np.pi, n)
    pts = np.stack([10 * np.cos(t), 10 * np.sin(t), 4 * t], 1)
    return pts, 1.0 + 0.3 * np.sin(t)


def test_tube_wall_rings_sit_at_the_radius_with_outward_quads() -> None:
    pts, r = _helix()
    k = 16
    m = tube_wall(Centerline(points=pts, branches=[np.arange(len(pts))], radius=r), n_around=k)
    assert m.n_points == len(pts) * k
    assert m.cells[0].type == "quad" and len(m.cells[0]) == (len(pts) - 1) * k
    rings = m.points.reshape(len(pts), k, 3)
    d = np.linalg.norm(rings - pts[:, None, :], axis=2)
    np.testing.assert_allclose(d, np.repeat(r[:, None], k, 1), rtol=1e-12)
    np.testing.assert_allclose(rings.mean(1), pts, atol=1e-9)
    # rings are perpendicular to the centerline tangent
    tan = tangents(pts)
    assert np.abs(np.einsum("ikj,ij->ik", rings - pts[:, None, :], tan)).max() < 1e-9
    q = m.cells[0].data
    nrm = np.cross(m.points[q[:, 1]] - m.points[q[:, 0]], m.points[q[:, 3]] - m.points[q[:, 0]])
    out = m.points[q].mean(1) - pts[q[:, 0] // k]
    assert (np.einsum("ij,ij->i", nrm, out) > 0).all()
    fd = m.field_data
    np.testing.assert_array_equal(fd["centerline_points"], pts)
    np.testing.assert_array_equal(fd["centerline_radius"], r)
    assert len(fd["centerline_branches"]) == 1


def test_tube_wall_branch_starts_at_its_parent_and_resamples() -> None:
    main = np.stack([np.zeros(11), np.zeros(11), np.linspace(0, 10, 11)], 1)
    side = np.array([[0.5, 0, 10.5], [3.0, 0, 13.0], [6.0, 0, 16.0]])
    pts = np.concatenate([main, side])
    cl = Centerline(points=pts, branches=[np.arange(11), np.arange(11, 14)], radius=np.ones(14),
                    parent=[(-1, -1), (0, 10)])
    m = tube_wall(cl, n_around=8)
    assert m.n_points == (11 + 4) * 8  # the side tube starts at the junction point 10
    assert m.field_data["centerline_branches"][1][0] == 10
    rs = tube_wall(cl, n_around=8, spacing=0.5)
    br = rs.field_data["centerline_branches"]
    cp = rs.field_data["centerline_points"]
    assert br[1][0] == br[0][-1]  # junction shared after resampling
    assert np.linalg.norm(np.diff(cp[br[0]], axis=0), axis=1).max() <= 0.5 + 1e-12
    assert rs.n_points == sum(len(b) for b in br) * 8


@pytest.mark.parametrize("bad, match", [
    (dict(radius=None), "no radius field"),
    (dict(radius=np.r_[1.0, -1.0, 1.0]), "radius at centerline point 1 is -1.0"),
])
def test_tube_wall_bad_input(bad: dict, match: str) -> None:
    kw = dict(points=np.eye(3), branches=[np.arange(3)], radius=np.ones(3))
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        tube_wall(Centerline(**kw), where="demo.vtp")
    with pytest.raises(ValueError, match="n_around must be >= 3, got 2"):
        tube_wall(Centerline(points=np.eye(3), branches=[np.arange(3)], radius=np.ones(3)), n_around=2)


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_predict_centerline_on_simvascular_demo(shared_data: Path, tmp_path: Path, scale: float) -> None:
    if not CKPT.exists():
        pytest.skip(f"{CKPT} not trained (make train-coronary)")
    from meshops.cli import predict

    src = shared_data / "simvascular" / "demo_aorta_centerlines.vtp"
    p = argparse.ArgumentParser()
    predict.add_arguments(p)
    k = 12
    args = p.parse_args([str(CKPT), "--centerline", str(src), "--global", "Q=1.0", "--scale", str(scale),
                         "--n-around", str(k), "--out", str(tmp_path)])
    assert predict.run(args) == 0
    out = meshops.read(tmp_path / "demo_aorta_centerlines_wall.vtp")

    # independent of meshops.geometry.tube: branches from the file's own line cells
    raw = meshops.read(src)
    from meshops.graph.centerline import read_centerline

    cl = read_centerline(src)
    rad = np.asarray(raw.point_data["MaximumInscribedSphereRadius"], dtype=np.float64)
    stations = []
    for b, (pb, pp) in zip(cl.branches, cl.parent, strict=True):
        path = np.concatenate([[pp], b]) if pb >= 0 and b[0] != pp else b
        keep = np.concatenate([[True], np.linalg.norm(np.diff(raw.points[path], axis=0), axis=1) > 0])
        stations.append(path[keep])
    n_st = sum(len(s) for s in stations)
    assert out.n_points == n_st * k
    assert len(stations) == 3
    for name in ("p_pred", "wss_mag_pred"):
        assert name in out.point_data and np.isfinite(out.point_data[name]).all()
    # written in the file's units: every ring sits at the file's radius around the file's point
    rings = out.points.reshape(n_st, k, 3)
    idx = np.concatenate(stations)
    d = np.linalg.norm(rings - raw.points[idx][:, None, :], axis=2)
    np.testing.assert_allclose(d, np.repeat(rad[idx][:, None], k, 1), rtol=1e-5)
    np.testing.assert_allclose(out.point_data["radius"], np.repeat(rad[idx], k), rtol=1e-5)
