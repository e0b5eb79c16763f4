"""Write -> read round trips are exact for every writable format; writes are atomic; inputs untouched."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

import meshops
from meshops.io import formats, probe, read, register_format, write
from meshops.io.vtkconv import write_series
from meshops.mesh import CellBlock, Mesh, MeshError


def _freeze(m: Mesh) -> Mesh:
    """Make every array read-only: any in-place change by a reader/writer raises."""
    for a in [m.points, *[b.data for b in m.cells], *m.point_data.values(), *m.cell_data.values(),
              *[b.data for v in m.boundaries.values() for b in v]]:
        a.setflags(write=False)
    return m


def volume_mesh(rng: np.random.Generator, boundaries: bool = True) -> Mesh:
    """Mixed 3D cells in an interleaved order, fields of several dtypes and shapes."""
    pts = rng.random((14, 3))
    cells = [
        CellBlock("tetra", [[0, 1, 2, 3], [1, 2, 3, 4]]),
        CellBlock("hexahedron", [[2, 3, 4, 5, 6, 7, 8, 9]]),
        CellBlock("tetra", [[5, 6, 7, 8]]),
        CellBlock("wedge", [[0, 1, 2, 3, 4, 5], [8, 9, 10, 11, 12, 13]]),
        CellBlock("pyramid", [[7, 8, 9, 10, 11]]),
    ]
    nc = 7
    pd = {"p": rng.random(14), "U": rng.random((14, 3)).astype(np.float32),
          "gid": np.arange(14, dtype=np.int64) * 3, "flag": (np.arange(14) % 3).astype(np.int32)}
    cd = {"vol": rng.random(nc), "region": np.array([1, 1, 2, 1, 3, 3, 4], dtype=np.int32),
          "grad": rng.standard_normal((nc, 3))}
    bnd = {"inlet": [CellBlock("triangle", [[0, 1, 2]])],
           "wall": [CellBlock("quad", [[2, 3, 4, 5], [6, 7, 8, 9]]), CellBlock("triangle", [[3, 4, 5]])]}
    return Mesh(pts, cells, point_data=pd, cell_data=cd, boundaries=bnd if boundaries else {})


def surface_mesh(rng: np.random.Generator, lines: bool = True) -> Mesh:
    pts = rng.random((12, 3))
    cells = ([CellBlock("line", [[0, 1], [1, 2], [2, 3]])] if lines else []) + [
        CellBlock("triangle", [[0, 1, 2], [2, 3, 4]]),
        CellBlock("quad", [[4, 5, 6, 7]]),
        CellBlock("triangle", [[7, 8, 9]]),
        CellBlock("polygon", [[0, 5, 9, 10, 11]]),
    ]
    nc = sum(len(b) for b in cells)
    pd = {"p": rng.random(12), "n": rng.random((12, 3)).astype(np.float32), "id": np.arange(12, dtype=np.int32)}
    cd = {"area": rng.random(nc), "ModelFaceID": (np.arange(nc) % 2 + 1).astype(np.int32)}
    return Mesh(pts, cells, point_data=pd, cell_data=cd)


@pytest.mark.parametrize("ext", ["vtu", "vtk", "xdmf", "msh"])
def test_volume_round_trip_exact(tmp_path, ext):
    m = _freeze(volume_mesh(np.random.default_rng(1), boundaries=(ext == "msh")))
    before = m.copy()
    path = write(m, tmp_path / f"vol.{ext}")
    back = read(path)
    assert back.diff(m) == []
    assert back.diff(before) == [] and m.diff(before) == []  # the input was not modified
    assert back.point_data["U"].dtype == np.float32 and back.cell_data["region"].dtype == np.int32
    assert sorted(os.listdir(tmp_path)) == [f"vol.{ext}"]  # nothing else left behind


def test_gmsh_round_trip_keeps_tensor_shape_and_boundaries(tmp_path):
    m = volume_mesh(np.random.default_rng(2))
    m = m.with_fields(cell_data={"stress": np.random.default_rng(3).random((7, 3, 3))})
    back = read(write(m, tmp_path / "t.msh"))
    assert back.cell_data["stress"].shape == (7, 3, 3)
    assert back.diff(m) == []
    assert {k: [b.type for b in v] for k, v in back.boundaries.items()} == {"inlet": ["triangle"], "wall": ["quad", "triangle"]}


@pytest.mark.parametrize("ext", ["vtp", "vtu", "vtk"])
def test_surface_round_trip_and_face_ids(tmp_path, ext):
    m = _freeze(surface_mesh(np.random.default_rng(4)))
    back = read(write(m, tmp_path / f"s.{ext}"))
    assert back.diff(m, check_boundaries=False) == []
    # face ids on a surface become named regions of the same cells (lines are not faces)
    ids = m.cell_data["ModelFaceID"]
    assert sorted(back.boundaries) == ["ModelFaceID_1", "ModelFaceID_2"]
    n1 = sum(len(b) for b in back.boundaries["ModelFaceID_1"])
    assert n1 == int((ids == 1).sum())


def test_vtp_refuses_to_reorder_cells(tmp_path):
    m = surface_mesh(np.random.default_rng(5), lines=False)
    m.cells.append(CellBlock("line", [[0, 1]]))
    m.cell_data = {}
    with pytest.raises(MeshError, match=r"bad\.vtp.*would be reordered"):
        write(m, tmp_path / "bad.vtp")
    assert not (tmp_path / "bad.vtp").exists()


@pytest.mark.parametrize("dim", [2, 3])
def test_su2_round_trip_with_markers(tmp_path, dim, caplog):
    if dim == 3:
        m = volume_mesh(np.random.default_rng(6))
    else:
        pts = np.random.default_rng(7).random((6, 2))
        m = Mesh(pts, [CellBlock("triangle", [[0, 1, 2], [1, 3, 2]]), CellBlock("quad", [[2, 3, 5, 4]]),
                       CellBlock("triangle", [[0, 2, 4]])],
                 boundaries={"airfoil": [CellBlock("line", [[0, 1], [1, 3]])], "farfield": [CellBlock("line", [[4, 5]])]})
    with caplog.at_level(logging.WARNING):
        back = read(write(m, tmp_path / "m.su2"))
    assert back.dim == dim
    assert back.diff(m.with_fields() if dim == 2 else Mesh(m.points, m.cells, boundaries=m.boundaries)) == []
    if dim == 3:  # fields cannot be stored: said so, by name
        assert "cannot store point fields" in caplog.text and "'p'" in caplog.text


def test_ply_obj_stl_round_trips(tmp_path):
    m = surface_mesh(np.random.default_rng(8), lines=False)
    ply = Mesh(m.points, m.cells, point_data=m.point_data)
    assert read(write(ply, tmp_path / "s.ply")).diff(ply) == []
    obj = Mesh(m.points, m.cells)
    assert read(write(obj, tmp_path / "s.obj")).diff(obj) == []
    # STL: triangles only, float32 coordinates, no vertex list (points in order of first use)
    pts = np.random.default_rng(9).random((5, 3)).astype(np.float32).astype(np.float64)
    stl = Mesh(pts, [CellBlock("triangle", [[0, 1, 2], [2, 1, 3], [3, 4, 2]])])
    assert read(write(stl, tmp_path / "s.stl")).diff(stl) == []
    with pytest.raises(MeshError, match=r"s2\.stl: format 'stl' cannot store cells of type polygon, quad"):
        write(obj, tmp_path / "s2.stl")


def test_point_cloud_and_2d_round_trip(tmp_path):
    rng = np.random.default_rng(10)
    cloud = Mesh(rng.random((30, 3)), point_data={"r": rng.random(30)})
    assert read(write(cloud, tmp_path / "c.vtu")).diff(cloud) == []
    flat = Mesh(rng.random((4, 2)), [CellBlock("triangle", [[0, 1, 2], [1, 3, 2]])], point_data={"u": rng.random((4, 2))})
    back = read(write(flat, tmp_path / "f.vtu"))
    assert back.dim == 2 and back.diff(flat) == []


def test_time_series_pvd_and_file_list(tmp_path):
    rng = np.random.default_rng(11)
    base = volume_mesh(rng, boundaries=False)
    steps = [base.with_fields(p=np.full(14, float(i))) for i in range(3)]
    pvd = write_series(steps, tmp_path / "run.pvd", times=[0.0, 0.25, 0.5])
    assert probe(pvd)["times"] == [0.0, 0.25, 0.5]
    m = read(pvd, time=0.25)
    assert m.time == 0.25 and np.all(m.point_data["p"] == 1.0)
    allm = read(pvd, time="all")
    assert [x.time for x in allm] == [0.0, 0.25, 0.5]
    assert all(a.diff(b) == [] for a, b in zip(allm, steps, strict=True))
    files = sorted(str(p) for p in tmp_path.glob("run_*.vtu"))
    assert read(files).point_data["p"][0] == 2.0  # default: the latest step
    assert read(files, time=1).point_data["p"][0] == 1.0
    assert meshops.io.list_times(files) == [0.0, 1.0, 2.0]
    with pytest.raises(MeshError, match=r"no time step 7 \(available times: 0, 0.25, 0.5\)"):
        read(pvd, time=7)


def test_xdmf_time_series(tmp_path):
    import meshio

    rng = np.random.default_rng(12)
    pts = rng.random((5, 3))
    cells = [("tetra", np.array([[0, 1, 2, 3], [1, 2, 3, 4]]))]
    path = tmp_path / "ts.xdmf"
    with meshio.xdmf.TimeSeriesWriter(str(path), data_format="XML") as w:
        w.write_points_cells(pts, cells)
        for t in (0.0, 0.5, 1.0):
            w.write_data(t, point_data={"T": np.full(5, t)})
    assert meshops.io.list_times(path) == [0.0, 0.5, 1.0]
    m = read(path, time=0.5)
    assert m.time == 0.5 and np.all(m.point_data["T"] == 0.5) and np.array_equal(m.points, pts)
    assert len(read(path, time="all")) == 3


def test_write_is_atomic(tmp_path):
    m = volume_mesh(np.random.default_rng(13))
    target = tmp_path / "keep.msh"
    write(m, target)
    before = target.read_bytes()
    bad = m.with_fields(p=np.array(["a"] * 14))  # strings: Gmsh stores numbers only, fails mid-file
    with pytest.raises(MeshError, match=r"keep\.msh: field 'p' has dtype <U1"):
        write(bad, target)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.msh"]


def test_register_format_plugin(tmp_path):
    def reader(path, time=None, **kw):
        with np.load(path) as z:
            return Mesh(z["points"], [CellBlock("triangle", z["tri"])], point_data={"f": z["f"]})

    def writer(mesh, path, **kw):
        with open(path, "wb") as fh:
            np.savez(fh, points=mesh.points, tri=mesh.cells_of_type("triangle"), f=mesh.point_data["f"])

    register_format("testnpz", [".tnpz"], reader, writer, stores=("point_data", "dtypes"), cell_types={"triangle"})
    try:
        m = Mesh(np.eye(3), [CellBlock("triangle", [[0, 1, 2]])], point_data={"f": np.arange(3.0)})
        path = write(m, tmp_path / "a.tnpz")
        assert read(path).diff(m) == []
        info = probe(path)
        assert info["format"] == "testnpz" and info["loaded"] is True and info["point_fields"]["f"]["shape"] == []
    finally:
        from meshops.io import registry

        registry._FORMATS.pop("testnpz", None)
    assert "testnpz" not in formats()


def test_probe_reads_headers_only(tmp_path):
    m = volume_mesh(np.random.default_rng(14), boundaries=False)
    path = write(m, tmp_path / "v.vtu")
    info = probe(path)
    assert info["loaded"] is False
    assert (info["n_points"], info["n_cells"]) == (14, 7)
    assert info["point_fields"]["U"] == {"shape": [3], "dtype": "float32"}
    assert info["cell_fields"]["region"] == {"shape": [], "dtype": "int32"}
