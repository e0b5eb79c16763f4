"""The Mesh container: checks, copies that never touch the input, converters that keep order."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from meshops.mesh import CellBlock, Mesh, MeshError


def _mixed(rng: np.random.Generator) -> Mesh:
    pts = rng.random((9, 3))
    return Mesh(pts, [CellBlock("tetra", [[0, 1, 2, 3]]), CellBlock("pyramid", [[1, 2, 3, 4, 5]]),
                      CellBlock("tetra", [[5, 6, 7, 8]])],
                point_data={"p": rng.random(9), "U": rng.random((9, 3)).astype(np.float32)},
                cell_data={"id": np.array([3, 1, 2], dtype=np.int32)})


def test_2d_points_get_z_zero_and_remember():
    m = Mesh(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), [CellBlock("triangle", [[0, 1, 2]])])
    assert m.points.shape == (3, 3) and m.dim == 2 and np.all(m.points[:, 2] == 0)
    assert m.points.dtype == np.float64 and m.cells[0].data.dtype == np.int64


def test_summary_properties():
    m = _mixed(np.random.default_rng(0))
    assert (m.n_points, m.n_cells) == (9, 3)
    assert m.cell_types == {"tetra": 2, "pyramid": 1}
    assert m.topological_dim == 3
    assert np.array_equal(m.bounds, np.stack([m.points.min(0), m.points.max(0)]))
    assert m.cells_of_type("tetra").shape == (2, 4)


def test_validate_messages(caplog):
    m = _mixed(np.random.default_rng(1))
    m.source = "case.vtu"
    m.validate()
    bad = m.copy()
    bad.cells[1] = CellBlock("pyramid", [[1, 2, 3, 4, 12]])
    with pytest.raises(MeshError, match=r"case\.vtu: cells block 'pyramid' indexes point 12 but the mesh has 9 points"):
        bad.validate()
    bad = m.copy()
    bad.point_data["p"] = np.zeros(8)
    with pytest.raises(MeshError, match=r"case\.vtu: point field 'p' has 8 values but the mesh has 9 points"):
        bad.validate()
    bad = m.copy()
    bad.point_data["p"][4] = np.inf
    with caplog.at_level(logging.WARNING, logger="meshops"):
        bad.validate()
    assert "case.vtu: point field 'p' has 1 non-finite values (first at point 4: inf)" in caplog.text
    with pytest.raises(MeshError, match=r"x\.vtu: the mesh is empty \(0 points\)"):
        Mesh(np.zeros((0, 3)), source="x.vtu").validate()


def test_with_fields_never_modifies_input():
    m = _mixed(np.random.default_rng(2))
    before = m.copy()
    out = m.with_fields(cell_data={"c": np.ones(3)}, q=np.arange(9))
    assert "q" in out.point_data and "c" in out.cell_data
    assert m.diff(before) == [] and "q" not in m.point_data and "c" not in m.cell_data
    out.cells[0].data[0, 0] = 8  # the copy's cells are its own blocks
    out.boundaries["x"] = []
    assert m.boundaries == {}


def test_diff_reports_each_difference():
    a = _mixed(np.random.default_rng(3))
    b = a.copy()
    assert a.equals(b)
    b.point_data["U"] = b.point_data["U"].astype(np.float64)
    b.cell_data["id"] = b.cell_data["id"][::-1].copy()
    b.points[2, 1] += 1e-12
    d = b.diff(a)
    assert any("point 2" in x for x in d)
    assert "point field 'U' dtype float64 != float32" in d
    assert "cell field 'id' values differ" in d
    # adjacent blocks of one type compare as one run
    c = Mesh(a.points, [CellBlock("tetra", [[0, 1, 2, 3]]), CellBlock("tetra", [[5, 6, 7, 8]])])
    e = Mesh(a.points, [CellBlock("tetra", [[0, 1, 2, 3], [5, 6, 7, 8]])])
    assert c.diff(e) == []


def test_meshio_round_trip_keeps_order():
    m = _mixed(np.random.default_rng(4))
    back = Mesh.from_meshio(m.to_meshio())
    assert back.diff(m) == []


def test_pyvista_round_trip_keeps_order_and_dtypes():
    m = _mixed(np.random.default_rng(5))
    grid = m.to_pyvista()
    assert grid.n_cells == 3 and grid.n_points == 9
    back = Mesh.from_pyvista(grid)
    assert back.diff(m) == []
    cloud = Mesh(np.random.default_rng(6).random((5, 3)), point_data={"r": np.arange(5.0)})
    pd = cloud.to_pyvista()
    assert pd.n_points == 5 and np.array_equal(pd.point_data["r"], np.arange(5.0))


def test_trimesh_round_trip_no_merging():
    trimesh = pytest.importorskip("trimesh")
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 1, 0.0]])  # point 3 duplicates point 0
    m = Mesh(pts, [CellBlock("triangle", [[0, 1, 2], [3, 1, 4]])])
    tm = m.to_trimesh()
    assert isinstance(tm, trimesh.Trimesh) and len(tm.vertices) == 5
    back = Mesh.from_trimesh(tm)
    assert back.diff(m) == []


def test_io_does_not_import_torch():
    code = ("import sys, meshops.io as io, numpy as np\n"
            "from meshops.mesh import Mesh, CellBlock\n"
            "import tempfile, os\n"
            "d = tempfile.mkdtemp()\n"
            "m = Mesh(np.eye(3), [CellBlock('triangle', [[0, 1, 2]])])\n"
            "for ext in ('vtu', 'vtp', 'msh', 'su2', 'stl'):\n"
            "    io.read(io.write(m, os.path.join(d, 'a.' + ext)))\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_from_pyvista_splits_polylines_and_strips_in_vtk_cell_order():
    pv = pytest.importorskip("pyvista")
    pts = np.random.default_rng(7).random((8, 3))
    poly = pv.PolyData(pts, strips=np.array([6, 0, 1, 2, 3, 4, 5]), lines=np.array([3, 5, 6, 7, 2, 0, 7]),
                       verts=np.array([2, 0, 1]))
    poly.cell_data["c"] = np.arange(poly.n_cells)  # VTK order: verts, lines, polys, strips
    m = Mesh.from_pyvista(poly)
    assert [(b.type, b.data.tolist()) for b in m.cells] == [
        ("vertex", [[0], [1]]),
        ("line", [[5, 6], [6, 7], [0, 7]]),
        ("triangle", [[0, 1, 2], [2, 1, 3], [2, 3, 4], [4, 3, 5]]),  # strip orientation alternates
    ]
    assert m.cell_data["c"].tolist() == [0, 0, 1, 1, 2, 3, 3, 3, 3]
    assert m.field_data["vtk:split_cells"].tolist() == [0, 0, 1, 1, 2, 3, 3, 3, 3]


def test_fields_are_native_byte_order():
    big = np.arange(4, dtype=">f8")
    m = Mesh(np.eye(4, 3), point_data={"p": big}, cell_data={})
    assert m.point_data["p"].dtype.isnative and np.array_equal(m.point_data["p"], big)
    assert m.with_fields(q=big).point_data["q"].dtype.isnative
