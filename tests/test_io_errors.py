"""Bad input: each case gives one clear error (a warning for NaN/Inf) naming the file, field and value."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from meshops.io import probe, read, write
from meshops.mesh import CellBlock, Mesh, MeshError

VTU_ASCII = """<?xml version="1.0"?>
<VTKFile type="UnstructuredGrid" version="0.1" byte_order="LittleEndian">
  <UnstructuredGrid>
    <Piece NumberOfPoints="4" NumberOfCells="1">
      <Points>
        <DataArray type="Float64" NumberOfComponents="3" format="ascii">
          0 0 0  1 0 0  0 1 0  0 0 1
        </DataArray>
      </Points>
      <Cells>
        <DataArray type="Int64" Name="connectivity" format="ascii">0 1 2 {last}</DataArray>
        <DataArray type="Int64" Name="offsets" format="ascii">4</DataArray>
        <DataArray type="UInt8" Name="types" format="ascii">10</DataArray>
      </Cells>
      <PointData>
        <DataArray type="Float64" Name="p" format="ascii">{p}</DataArray>
      </PointData>
    </Piece>
  </UnstructuredGrid>
</VTKFile>
"""


def _tet() -> Mesh:
    return Mesh(np.eye(4, 3), [CellBlock("tetra", [[0, 1, 2, 3]])], point_data={"p": np.arange(4.0)})


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.vtu: no such file or directory"):
        read(tmp_path / "nope.vtu")
    with pytest.raises(FileNotFoundError, match=r"gone\.msh: no such file"):
        probe(tmp_path / "gone.msh")


def test_unknown_extension(tmp_path):
    f = tmp_path / "mesh.xyz"
    f.write_text("1 2 3\n")
    with pytest.raises(MeshError, match=r"mesh\.xyz: unknown mesh format, extension '\.xyz' \(known extensions: .*\.vtu"):
        read(f)
    with pytest.raises(MeshError, match=r"out\.xyz: unknown mesh format, extension '\.xyz'"):
        write(_tet(), tmp_path / "out.xyz")
    with pytest.raises(MeshError, match=r"x\.pvtu: format 'pvtu' is read-only"):
        write(_tet(), tmp_path / "x.pvtu")


@pytest.mark.parametrize("ext,match", [
    ("vtu", r"t\.vtu: cannot read as vtu"),
    ("msh", r"t\.msh: (section \$\w+ is not closed|\$Elements announces)"),
    ("su2", r"t\.su2: file ends after \d+ of 6 points \(truncated\?\)"),
    ("vtk", r"t\.vtk: cannot read as legacy VTK"),
])
def test_truncated_file(tmp_path, ext, match):
    m = _tet()
    if ext == "su2":
        m = Mesh(m.points, m.cells)
        m = Mesh(np.vstack([m.points, [[1, 1, 1], [2, 2, 2]]]), m.cells)
    path = write(m, tmp_path / f"t.{ext}")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(MeshError, match=match):
        read(path)


def test_corrupt_file(tmp_path):
    f = tmp_path / "junk.vtp"
    f.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(MeshError, match=r"junk\.vtp: "):
        read(f)
    g = tmp_path / "junk.msh"
    g.write_text("hello\n")
    with pytest.raises(MeshError, match=r"junk\.msh: not a Gmsh file \(no \$MeshFormat header\)"):
        read(g)


def test_field_length_mismatch(tmp_path):
    f = tmp_path / "short.vtu"
    f.write_text(VTU_ASCII.format(last=3, p="1 2 3"))
    with pytest.raises(MeshError, match=r"short\.vtu: point field 'p' has 3 values but the mesh has 4 points"):
        read(f)
    with pytest.raises(MeshError, match=r"cell field 'c' has 2 values but the mesh has 1 cells"):
        _tet().with_fields(cell_data={"c": [1.0, 2.0]})


def test_nan_and_inf_warn(tmp_path, caplog):
    f = tmp_path / "nan.vtu"
    f.write_text(VTU_ASCII.format(last=3, p="1 nan inf 4"))
    with caplog.at_level(logging.WARNING, logger="meshops"):
        m = read(f)
    assert np.isnan(m.point_data["p"][1])
    assert "nan.vtu: point field 'p' has 2 non-finite values (first at point 1: nan)" in caplog.text


def test_empty_mesh(tmp_path):
    import meshio

    f = tmp_path / "empty.vtk"
    meshio.write_points_cells(str(f), np.zeros((0, 3)), [])
    with pytest.raises(MeshError, match=r"empty\.vtk: .*empty"):
        read(f)
    with pytest.raises(MeshError, match=r"<mesh>: the mesh is empty \(0 points\)"):
        write(Mesh(np.zeros((0, 3))), tmp_path / "e.vtu")
    assert not (tmp_path / "e.vtu").exists()


def test_cells_index_past_points(tmp_path):
    f = tmp_path / "past.vtu"
    f.write_text(VTU_ASCII.format(last=7, p="1 2 3 4"))
    with pytest.raises(MeshError, match=r"past\.vtu: cells block 'tetra' indexes point 7 but the mesh has 4 points"):
        read(f)
    s = tmp_path / "past.su2"
    s.write_text("NDIME= 2\nNELEM= 1\n5 0 1 9 0\nNPOIN= 3\n0 0 0\n1 0 1\n0 1 2\nNMARK= 1\nMARKER_TAG= wall\n"
                 "MARKER_ELEMS= 1\n3 0 5\n")
    with pytest.raises(MeshError, match=r"past\.su2: cells block 'triangle' indexes point 9 but the mesh has 3 points"):
        read(s)


def test_unknown_time(tmp_path):
    path = write(_tet(), tmp_path / "one.vtu")
    with pytest.raises(MeshError, match=r"one\.vtu: has no time steps, cannot select time=0\.5"):
        read(path, time=0.5)
