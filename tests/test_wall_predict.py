"""Prediction on a user's own wall (meshops predict WALL), centerline files of every flavour, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import meshops
from meshops.cli import main
from meshops.geometry.centerline import Centerline
from meshops.geometry.surface import triangulate
from meshops.geometry.tube import tube_wall
from meshops.graph.centerline import centerline_mesh, read_centerline
from meshops.mesh import CellBlock, Mesh, MeshError

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "datasets" / "coronary_synthetic" / "model" / "best.pt"


def vessel_wall_cm() -> tuple[Mesh, Centerline]:
    """A gently curved single vessel in cm (radius 0.18 -> 0.13 cm, length 4 cm), as triangles."""
    s = np.linspace(0, 4.0, 60)
    pts = np.stack([0.3 * np.sin(s / 2.0), 0.1 * s, s], 1)
    r = np.linspace(0.18, 0.13, len(s))
    cl = Centerline(points=pts, branches=[np.arange(len(s))], radius=r)
    w = tube_wall(cl, n_around=32)
    return Mesh(points=w.points, cells=[CellBlock("triangle", triangulate(w.cells[0].data))], source="wall"), cl


@pytest.fixture(scope="module")
def walls(tmp_path_factory):
    d = tmp_path_factory.mktemp("walls")
    wall, cl = vessel_wall_cm()
    meshops.write(wall, d / "wall.vtp")
    meshops.write(wall, d / "wall_stl.stl")
    rng = np.random.default_rng(0)
    perm = rng.permutation(wall.n_points)  # the same wall, points in another order
    inv = np.argsort(perm)
    shuffled = Mesh(points=wall.points[perm], cells=[CellBlock("triangle", inv[wall.cells[0].data])], source="s")
    meshops.write(shuffled, d / "shuffled.vtp")
    return d, wall, cl, perm


@pytest.mark.skipif(not MODEL.exists(), reason="no shipped coronary model")
def test_predict_on_wall_vtp_stl_order(walls, capsys):
    d, wall, _, perm = walls
    out = d / "out"
    assert main(["predict", str(MODEL), str(d / "wall.vtp"), str(d / "wall_stl.stl"), str(d / "shuffled.vtp"),
                 "--global", "Q=1.0", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "the file is in cm" in text and "length scale 10" in text
    a = meshops.read(out / "wall.vtp")
    assert a.n_points == wall.n_points
    np.testing.assert_array_equal(a.points, wall.points)  # the user's points, order and units
    for k in ("p_pred", "wss_mag_pred", "cl_s", "cl_angle", "cl_branch", "cl_distance"):
        assert len(a.point_data[k]) == wall.n_points and np.isfinite(a.point_data[k]).all()
    # the wall sits at one radius (file units) from its centerline
    assert np.median(a.point_data["cl_distance"]) == pytest.approx(0.155, rel=0.15)
    stl_in = meshops.read(d / "wall_stl.stl")  # STL: float32 points in order of first use
    b = meshops.read(out / "wall_stl.vtp")
    np.testing.assert_array_equal(b.points, stl_in.points)
    assert np.isfinite(b.point_data["p_pred"]).all()
    s = meshops.read(out / "shuffled.vtp")
    np.testing.assert_array_equal(s.points, wall.points[perm])
    np.testing.assert_allclose(s.point_data["p_pred"], a.point_data["p_pred"][perm], rtol=2e-2, atol=1.0)


@pytest.mark.skipif(not MODEL.exists(), reason="no shipped coronary model")
def test_predict_stl_writes_vtp_beside_and_show_renders(walls, tmp_path, capsys):
    d, _, cl, _ = walls
    import shutil

    shutil.copy(d / "wall_stl.stl", tmp_path / "wall.stl")
    shutil.copy(d / "wall.vtp", tmp_path / "wall.vtp")
    assert main(["predict", str(MODEL), str(tmp_path / "wall.vtp"), str(tmp_path / "wall.stl"), "--global", "Q=1",
                 "--out", str(tmp_path / "x")]) == 1
    assert "would both be written" in capsys.readouterr().err
    out = tmp_path / "o"
    meshops.write(centerline_mesh(cl), tmp_path / "cl.vtp")
    assert main(["predict", str(MODEL), str(d / "wall_stl.stl"), "--centerline", str(tmp_path / "cl.vtp"),
                 "--scale", "10", "--global", "Q=1.0", "--out", str(out)]) == 0
    assert "given by --scale" in capsys.readouterr().out
    res = meshops.read(out / "wall_stl.vtp")
    stl = meshops.read(d / "wall_stl.stl")
    assert res.n_points == stl.n_points
    np.testing.assert_array_equal(res.points, stl.points)
    assert np.isfinite(res.point_data["p_pred"]).all()
    png = tmp_path / "p.png"
    assert main(["show", str(out / "wall_stl.vtp"), "--field", "p", "--out", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_radius_field_detection_and_errors(tmp_path):
    z = np.linspace(0, 10, 11)
    pts = np.stack([0 * z, 0 * z, z], 1)
    lines = [CellBlock("line", np.stack([np.arange(10), np.arange(1, 11)], 1))]
    for name in ("MaximumInscribedSphereRadius", "Radius", "radii", "vessel_radius_mm"):
        m = Mesh(points=pts, cells=lines, point_data={name: np.full(11, 1.5), "other": z}, source=f"{name}.vtp")
        assert np.allclose(read_centerline(m, require_radius=True).radius, 1.5)
    m = Mesh(points=pts, cells=lines, point_data={"thickness": z, "area": z}, source="cl.vtp")
    with pytest.raises(MeshError, match=r"cl.vtp: the centerline has no radius array; point arrays: \['area', 'thickness'\]"):
        read_centerline(m, require_radius=True)
    with pytest.raises(MeshError, match="cl.vtp: radius array 'area' is 0.0 at point 0"):
        read_centerline(m, radius_field="area")
    with pytest.raises(MeshError, match="cl.vtp: radius field 'rad' not found; point arrays"):
        read_centerline(m, radius_field="rad")
    bad_len = Mesh(points=pts, cells=lines, point_data={"radius": np.ones(7)}, source="short.vtp")
    with pytest.raises(MeshError, match="short.vtp: radius array 'radius' has 7 values but the centerline has 11"):
        read_centerline(bad_len)
    for v, word in ((-1.0, "-1.0"), (np.nan, "nan")):
        r = np.ones(11)
        r[4] = v
        m = Mesh(points=pts, cells=lines, point_data={"radius": r}, source="neg.vtp")
        with pytest.raises(MeshError, match=f"neg.vtp: radius array 'radius' is {word} at point 4"):
            read_centerline(m)


def test_centerline_file_flavours(tmp_path):
    z = np.linspace(0, 10, 21)
    pts = np.stack([np.sin(z / 3), 0 * z, z], 1)
    r = 1 + 0.02 * z
    (tmp_path / "cl.csv").write_text("x,y,z,vessel_radius\n" + "\n".join(f"{a},{b},{c},{d}" for (a, b, c), d in zip(pts, r, strict=True)))
    (tmp_path / "cl.dat").write_text("\n".join(f"{a} {b} {c} {d}" for (a, b, c), d in zip(pts, r, strict=True)))
    cl = Centerline(points=pts, branches=[np.arange(21)], radius=r)
    meshops.write(centerline_mesh(cl), tmp_path / "cl.vtk")
    meshops.write(centerline_mesh(cl), tmp_path / "cl.vtp")
    for name in ("cl.csv", "cl.dat", "cl.vtk", "cl.vtp"):
        got = read_centerline(tmp_path / name, require_radius=True)
        assert got.n_branches == 1, name
        b = got.branches[0]
        np.testing.assert_allclose(got.points[b], pts, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(got.radius[b], r, atol=1e-6, err_msg=name)


def test_vmtk_layout_round_trip(shared_data, tmp_path):
    from meshops.geometry.centerline_extract import extract_centerlines

    w = meshops.read(shared_data / "simvascular" / "demo_aorta_wall.vtp")
    cl = extract_centerlines(w.points, w.cells[0].data).centerline
    m = centerline_mesh(cl)
    ref = meshops.read(shared_data / "simvascular" / "demo_aorta_centerlines.vtp")
    assert set(ref.point_data) <= set(m.point_data)
    assert set(ref.cell_data) <= set(m.cell_data)
    back = read_centerline(m, require_radius=True)
    assert back.n_branches == cl.n_branches and len(back.bifurcations()) == 1
    # VTK itself reads the written file with its arrays
    import pyvista as pv

    path = tmp_path / "cl.vtp"
    meshops.write(m, path)
    pv_cl = pv.read(path)
    assert pv_cl.n_points == m.n_points and "MaximumInscribedSphereRadius" in pv_cl.point_data
    assert "GroupIds" in pv_cl.cell_data and pv_cl.n_cells == sum(len(b.data) for b in m.cells)


def test_cli_errors_one_line(tmp_path, capsys):
    (tmp_path / "bad.stl").write_text("solid x\n garbage\n")
    assert main(["centerline", str(tmp_path / "bad.stl"), "--out", str(tmp_path / "c.vtp")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.stl" in err
    import pyvista as pv

    ball = pv.Sphere().triangulate()
    meshops.write(Mesh(points=np.asarray(ball.points, float),
                       cells=[CellBlock("triangle", np.asarray(ball.faces).reshape(-1, 4)[:, 1:])], source="b"),
                  tmp_path / "ball.stl")
    assert main(["centerline", str(tmp_path / "ball.stl"), "--out", str(tmp_path / "c.vtp")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ball.stl: no openings found" in err
    assert not (tmp_path / "c.vtp").exists()
