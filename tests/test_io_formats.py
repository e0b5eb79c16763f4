"""Formats written by other tools: transient EnSight Gold, PVTU pieces, legacy VTK poly data."""

from __future__ import annotations

import numpy as np
import pytest

from meshops.io import list_times, probe, read, write
from meshops.mesh import CellBlock, Mesh

PTS = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1.0]])


def _ensight_case(d, times=(0.0, 0.5)):
    def ints(*v):
        return "".join(f"{x:10d}" for x in v) + "\n"

    def floats(a):
        return "".join(f"{x:12.5e}\n" for x in a)

    geo = "meshops test\ngeometry\nnode id off\nelement id off\n"
    geo += "part\n" + ints(1) + "fluid\ncoordinates\n" + ints(5)
    geo += "".join(floats(PTS[:, k]) for k in range(3))
    geo += "tetra4\n" + ints(2) + ints(1, 2, 3, 4) + ints(2, 3, 4, 5)
    geo += "part\n" + ints(2) + "inlet\ncoordinates\n" + ints(3)
    geo += "".join(floats(PTS[:3, k]) for k in range(3))
    geo += "tria3\n" + ints(1) + ints(1, 2, 3)
    (d / "mesh.geo").write_text(geo)
    for i, t in enumerate(times):
        var = "T\npart\n" + ints(1) + "coordinates\n" + floats(np.arange(5) + t)
        var += "part\n" + ints(2) + "coordinates\n" + floats(np.arange(3) + t)
        (d / f"T_{i}.scl").write_text(var)
    case = ("FORMAT\ntype: ensight gold\nGEOMETRY\nmodel: mesh.geo\nVARIABLE\nscalar per node: 1 T T_*.scl\n"
            f"TIME\ntime set: 1\nnumber of steps: {len(times)}\nfilename start number: 0\nfilename increment: 1\n"
            f"time values: {' '.join(str(t) for t in times)}\n")
    (d / "flow.case").write_text(case)
    return d / "flow.case"


def test_ensight_transient_with_boundary_part(tmp_path):
    case = _ensight_case(tmp_path)
    assert list_times(case) == [0.0, 0.5]
    assert probe(case)["point_fields"] == {"T": {"shape": [], "dtype": "float32"}}
    steps = read(case, time="all")
    assert [s.time for s in steps] == [0.0, 0.5]
    for s in steps:
        assert np.array_equal(s.points, PTS)
        assert [(b.type, b.data.tolist()) for b in s.cells] == [("tetra", [[0, 1, 2, 3], [1, 2, 3, 4]])]
        assert [(b.type, b.data.tolist()) for b in s.boundaries["inlet"]] == [("triangle", [[0, 1, 2]])]
        assert np.array_equal(s.point_data["T"], np.arange(5, dtype=np.float32) + np.float32(s.time))
    assert read(case, time=0.5).time == 0.5


def test_pvtu_pieces_concatenate_in_order(tmp_path):
    """Two pieces, each with its own points (as parallel solvers write them), read back unmerged."""
    a = Mesh(PTS[:4], [CellBlock("tetra", [[0, 1, 2, 3]])], point_data={"p": np.arange(4.0)},
             cell_data={"c": np.array([10], dtype=np.int32)})
    b = Mesh(PTS[1:], [CellBlock("tetra", [[0, 1, 2, 3]])], point_data={"p": np.arange(1.0, 5.0)},
             cell_data={"c": np.array([20], dtype=np.int32)})
    write(a, tmp_path / "run_0.vtu")
    write(b, tmp_path / "run_1.vtu")
    (tmp_path / "run.pvtu").write_text(
        '<?xml version="1.0"?>\n<VTKFile type="PUnstructuredGrid" version="0.1" byte_order="LittleEndian">\n'
        '<PUnstructuredGrid GhostLevel="0">\n<PPointData><PDataArray type="Float64" Name="p"/></PPointData>\n'
        '<PCellData><PDataArray type="Int32" Name="c"/></PCellData>\n'
        '<PPoints><PDataArray type="Float64" NumberOfComponents="3"/></PPoints>\n'
        '<Piece Source="run_0.vtu"/>\n<Piece Source="run_1.vtu"/>\n</PUnstructuredGrid>\n</VTKFile>\n')
    info = probe(tmp_path / "run.pvtu")
    assert info["point_fields"]["p"] == {"shape": [], "dtype": "float64"}
    assert (info["n_points"], info["n_cells"]) == (8, 2)
    back = read(tmp_path / "run.pvtu")
    assert back.n_points == 8 and back.cell_data["c"].tolist() == [10, 20]
    assert np.array_equal(back.points, np.concatenate([PTS[:4], PTS[1:]]))
    assert back.cells_of_type("tetra").tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert np.array_equal(back.point_data["p"], np.concatenate([np.arange(4.0), np.arange(1.0, 5.0)]))
    (tmp_path / "run_1.vtu").unlink()
    with pytest.raises(Exception, match=r"run\.pvtu: piece 'run_1\.vtu' is missing"):
        read(tmp_path / "run.pvtu")


def test_legacy_vtk_polydata_from_vtk(tmp_path, shared_data):
    """A legacy .vtk poly-line file written by vtk reads like its .vtp twin."""
    pv = pytest.importorskip("pyvista")
    src = shared_data / "simvascular" / "demo_aorta_centerlines.vtp"
    pv.read(str(src)).save(str(tmp_path / "cl.vtk"))
    a, b = read(src), read(tmp_path / "cl.vtk")
    assert a.n_points == b.n_points == 2354
    assert np.array_equal(a.points, b.points)
    assert np.array_equal(a.point_data["MaximumInscribedSphereRadius"], b.point_data["MaximumInscribedSphereRadius"])
    assert a.cell_types == b.cell_types == {"line": 2348}


def test_write_then_info_for_every_writable_format(tmp_path):
    m = Mesh(PTS[[0, 1, 2, 4]], [CellBlock("triangle", [[0, 1, 2], [1, 2, 3]])])  # STL: every point used
    from meshops.io import formats

    writable = sorted(f.name for f in formats().values() if f.writer is not None)
    assert {"vtu", "vtp", "vtk", "xdmf", "gmsh", "su2", "stl", "obj", "ply"} <= set(writable)
    for f in formats().values():
        if f.writer is None:
            continue
        path = write(m, tmp_path / f"a{f.extensions[0]}")
        assert read(path).diff(m) == [], f.name


def test_xdmf_with_hdf5_heavy_data(tmp_path):
    """XDMF as FEniCS/meshio write it by default (arrays in a side .h5 file)."""
    import meshio

    pytest.importorskip("h5py")
    cells = [("tetra", np.array([[0, 1, 2, 3]])), ("tetra", np.array([[1, 2, 3, 4]]))]
    src = meshio.Mesh(PTS, cells, point_data={"u": np.arange(5, dtype=np.float32)},
                      cell_data={"k": [np.array([7], dtype=np.int64), np.array([9], dtype=np.int64)]})
    src.write(tmp_path / "h.xdmf")  # default data_format is HDF
    assert (tmp_path / "h.h5").exists()
    m = read(tmp_path / "h.xdmf")
    assert np.array_equal(m.points, PTS) and m.cells_of_type("tetra").tolist() == [[0, 1, 2, 3], [1, 2, 3, 4]]
    assert m.point_data["u"].dtype == np.float32 and m.cell_data["k"].tolist() == [7, 9]
