"""One canonical cell representation: orientation, writability and what other tools read back."""

from __future__ import annotations

import numpy as np
import pytest

import meshops
from meshops.io import formats, read, write
from meshops.mesh import CellBlock, Mesh, MeshError

pv = pytest.importorskip("pyvista")

# Reference cells in VTK order with positive VTK volume (pyvista's own unit cells).
_LINEAR = {"tetra": pv.CellType.TETRA, "hexahedron": pv.CellType.HEXAHEDRON, "wedge": pv.CellType.WEDGE,
           "pyramid": pv.CellType.PYRAMID}


def _one_cell(kind: str) -> Mesh:
    from pyvista import examples

    grid = {"tetra": examples.cells.Tetrahedron, "hexahedron": examples.cells.Hexahedron,
            "wedge": examples.cells.Wedge, "pyramid": examples.cells.Pyramid,
            "wedge15": examples.cells.QuadraticWedge, "pyramid13": examples.cells.QuadraticPyramid,
            "tetra10": examples.cells.QuadraticTetrahedron, "hexahedron20": examples.cells.QuadraticHexahedron,
            "voxel": examples.cells.Voxel, "hexa_prism": examples.cells.HexagonalPrism,
            "penta_prism": examples.cells.PentagonalPrism}[kind]()
    m = Mesh.from_pyvista(grid)
    m.cell_data["id"] = np.arange(m.n_cells, dtype=np.int32)
    return m


def _volumes(mesh: Mesh) -> np.ndarray:
    return np.asarray(mesh.to_pyvista().compute_cell_sizes(length=False, area=False)["Volume"])


def _writable_volume_formats() -> list[str]:
    out = []
    for f in formats().values():
        if f.writer is not None and "volume" in f.stores and f.name not in ("pvd",):
            out.append(f.extensions[0])
    return sorted(out)


@pytest.mark.parametrize("ext", _writable_volume_formats())
@pytest.mark.parametrize("kind", ["tetra", "hexahedron", "wedge", "pyramid", "wedge15", "pyramid13",
                                  "tetra10", "hexahedron20", "voxel", "hexa_prism", "penta_prism"])
def test_signed_volume_positive_after_roundtrip(tmp_path, ext, kind):
    m = _one_cell(kind)
    assert np.all(_volumes(m) > 0), f"{kind}: reference cell not positive"
    fmt = meshops.io.find_format(tmp_path / f"c{ext}", for_writing=True)
    if fmt.cell_types is not None and kind not in fmt.cell_types:
        pytest.skip(f"{ext} does not store {kind}")
    try:
        path = write(m, tmp_path / f"c{ext}")
    except MeshError as e:  # a format without this cell type must say so, naming it
        assert kind in str(e) or "no VTK equivalent" in str(e) or "cannot" in str(e)
        return
    back = read(path)
    assert back.cell_types == m.cell_types
    assert np.all(_volumes(back) > 0), f"{kind} inverted by {ext}"


def test_wedge_same_orientation_through_every_reader(tmp_path):
    m = _one_cell("wedge")
    for ext in (".vtu", ".vtk", ".msh", ".xdmf"):
        back = read(write(m, tmp_path / f"w{ext}"))
        assert np.array_equal(back.cells_of_type("wedge"), m.cells_of_type("wedge")), ext


@pytest.mark.parametrize("ext", [".vtu", ".vtk", ".vtp"])
def test_pyvista_reads_every_array_and_field_data(tmp_path, ext):
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.5]], float)
    cells = [CellBlock("triangle", [[0, 1, 2], [1, 3, 2]])]
    m = Mesh(pts, cells, point_data={"p": np.arange(4.0), "n": np.arange(4, dtype=np.int64),
                                     "T": np.arange(36.0).reshape(4, 3, 3)},
             cell_data={"c": np.array([1, 2], np.int32), "u8": np.array([3, 4], np.uint8)},
             field_data={"Q": np.array([2.5]), "Re": np.array([100.0, 200.0])})
    path = write(m, tmp_path / f"f{ext}")
    ds = pv.read(str(path))
    assert {"p", "n", "T"} <= set(ds.point_data.keys())
    assert {"c", "u8"} <= set(ds.cell_data.keys())
    assert np.array_equal(ds.cell_data["c"], [1, 2]) and np.array_equal(ds.point_data["n"], np.arange(4))
    assert np.allclose(ds.field_data["Q"], 2.5)
    back = read(path)
    assert back.diff(m) == []
    assert np.array_equal(back.field_data["Re"], [100.0, 200.0])


def test_poly_cells_split_with_map_and_written_back(tmp_path):
    from pyvista import examples

    for grid in (examples.cells.PolyLine(), examples.cells.TriangleStrip(), examples.cells.PolyVertex()):
        m = Mesh.from_pyvista(grid)
        assert "vtk:split_cells" in m.field_data
        out = pv.read(str(write(m, tmp_path / "s.vtu")))
        assert np.array_equal(out.celltypes, grid.celltypes)
        assert np.array_equal(out.cell_connectivity, grid.cell_connectivity)
        assert read(tmp_path / "s.vtu").diff(m) == []


def test_polyhedron_faces_kept(tmp_path):
    from pyvista import examples

    grid = examples.cells.Polyhedron()
    m = Mesh.from_pyvista(grid)
    assert m.cell_types == {"polyhedron": 1}
    out = pv.read(str(write(m, tmp_path / "p.vtu")))
    assert out.celltypes[0] == pv.CellType.POLYHEDRON
    assert np.isclose(out.volume, grid.volume)


def test_endless_stream_refused(tmp_path):
    link = tmp_path / "zero.vtk"
    link.symlink_to("/dev/zero")
    with pytest.raises(MeshError, match=r"zero\.vtk: not a regular file"):
        read(link)


def test_to_pyvista_natural_type_and_read_objects():
    from pyvista import examples

    surf = pv.Sphere(theta_resolution=8, phi_resolution=6)
    surf.point_data["h"] = surf.points[:, 2]
    m = meshops.io.read(surf)
    back = m.to_pyvista()
    assert isinstance(back, pv.PolyData)
    assert np.array_equal(back.faces, surf.faces) and np.array_equal(back.point_data["h"], surf.point_data["h"])
    for obj in (pv.ImageData(dimensions=(3, 4, 2)), examples.load_rectilinear(), examples.load_structured(),
                examples.load_hexbeam()):
        obj = obj.copy()
        obj.point_data["x"] = np.asarray(obj.points)[:, 0]
        mm = meshops.io.read(obj)
        ug = obj.cast_to_unstructured_grid()
        out = mm.to_pyvista().cast_to_unstructured_grid()
        assert np.array_equal(out.celltypes, ug.celltypes)
        assert np.array_equal(out.cell_connectivity, ug.cell_connectivity)
        assert np.array_equal(out.point_data["x"], obj.point_data["x"])
    mb = pv.MultiBlock([surf, surf.translate((3, 0, 0))])
    assert meshops.io.read(mb).n_points == 2 * surf.n_points


def test_validate_checks_widths_types_and_big_ids():
    from meshops.mesh import count_degenerate

    pts = np.random.default_rng(0).random((5, 3))
    with pytest.raises(MeshError, match="cell block 'tetra' has 3 columns, a tetra has 4 nodes"):
        Mesh(pts, [CellBlock("tetra", [[0, 1, 2]])]).validate()
    with pytest.raises(MeshError, match="unknown cell type 'blob'"):
        Mesh(pts, [CellBlock("blob", [[0, 1, 2]])]).validate()
    with pytest.raises(MeshError, match="indexes point 8589934592 but the mesh has 5 points"):
        Mesh(pts, [CellBlock("tetra", [[0, 1, 2, 2**33]])]).validate()
    flat = np.vstack([pts[:3], pts[:3].mean(0)])
    m = Mesh(np.vstack([pts, flat]), [CellBlock("tetra", [[0, 1, 2, 3], [0, 0, 1, 2], [5, 6, 7, 8]])])
    assert count_degenerate(m) == {"repeated_ids": 1, "zero_measure": 1}
    assert meshops.io.summarize(m)["degenerate_cells"] == {"repeated_ids": 1, "zero_measure": 1}
