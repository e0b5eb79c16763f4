"""``meshops info``: the table and the JSON agree with the file's real contents."""

from __future__ import annotations

import json

import numpy as np
import pytest

from meshops.cli import main
from meshops.io import write
from meshops.mesh import CellBlock, Mesh


def _info_json(capsys, *argv: str):
    assert main(["info", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_cylinder_json(shared_data, capsys):
    s = _info_json(capsys, str(shared_data / "simvascular" / "cylinder_all_results.vtu"))
    assert s["n_points"] == 2349
    assert s["cell_types"] == {"tetra": 11079}
    assert s["dim"] == 3
    assert s["point_fields"]["velocity_00100"]["shape"] == [3]
    assert s["point_fields"]["pressure_00100"]["dtype"] == "float64"
    assert "vWSS_00100" in s["point_fields"]
    assert s["bounds"][1][2] == pytest.approx(30.0)


def test_info_table_and_stats(tmp_path, capsys):
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.0]])
    p = np.array([1.0, 2.0, np.nan, 5.0])
    m = Mesh(pts, [CellBlock("triangle", [[0, 1, 2], [1, 3, 2]])], point_data={"p": p},
             cell_data={"id": np.array([7, 9], dtype=np.int32)})
    path = write(m, tmp_path / "sq.vtu")
    s = _info_json(capsys, str(path))
    st = s["point_fields"]["p"]
    assert (st["min"], st["max"], st["mean"], st["nan"]) == (1.0, 5.0, pytest.approx(8 / 3), 1)
    assert s["cell_fields"]["id"] == {"shape": [], "dtype": "int32", "n": 2, "nan": 0, "inf": 0,
                                      "min": 7.0, "max": 9.0, "mean": 8.0}
    assert s["dim"] == 2
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "triangle 2" in out and "2D" in out and "int32" in out


def test_info_missing_file_is_one_clear_error(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.vtu")]) == 1
    err = capsys.readouterr().err
    assert "nope.vtu: no such file or directory" in err


# Expected numbers per shared file: points, cells per type, point fields that must be there
# (SOURCES.md, and the files' own headers).
SHARED = {
    "simvascular/cylinder_all_results.vtu": (2349, {"tetra": 11079}, {"pressure_00100": [], "velocity_00100": [3]}),
    "simvascular/demo_aorta_volume.vtu": (1093, {"tetra": 3471}, {"GlobalNodeID": []}),
    "simvascular/demo_aorta_wall.vtp": (7319, {"triangle": 14634}, {}),
    "simvascular/demo_aorta_centerlines.vtp": (2354, {"line": 2348}, {"MaximumInscribedSphereRadius": []}),
    "simvascular/demo_aorta_rom_centerlines.vtp": (1274, {"line": 1273}, {"MaximumInscribedSphereRadius": [],
                                                                          "CenterlineSectionNormal": [3]}),
    "su2/mesh_NACA0012_inv.su2": (5233, {"triangle": 10216}, {}),
    "su2/naca0012_solution_flow.csv": (5233, {}, {"Pressure": [], "Density": []}),
    "vtk-data/cylinder_crossflow/cylinder_Re35.case": (14831, {"triangle": 39, "quad": 14555},
                                                       {"pressure": [], "velocity": [3], "vorticity_mag": []}),
}


@pytest.mark.parametrize("rel", sorted(SHARED))
def test_info_json_on_shared_files(shared_data, capsys, rel):
    n_points, cells, fields = SHARED[rel]
    s = _info_json(capsys, str(shared_data / rel))
    assert s["n_points"] == n_points
    assert s["cell_types"] == cells and s["n_cells"] == sum(cells.values())
    for name, shape in fields.items():
        assert s["point_fields"][name]["shape"] == shape
        assert s["point_fields"][name]["nan"] == 0
    lo, hi = np.array(s["bounds"])
    assert np.all(lo <= hi)


def test_info_json_openfoam_times(shared_data, tmp_path, capsys):
    import zipfile

    with zipfile.ZipFile(shared_data / "vtk-data" / "openfoam_cavity.zip") as z:
        z.extractall(tmp_path)
    case = tmp_path / "OpenFOAM" / "cavity"
    s = _info_json(capsys, str(case), "--time", "1.5")
    assert s["time"] == 1.5 and s["times"] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert s["cell_types"] == {"hexahedron": 400} and s["n_points"] == 882
    assert s["cell_fields"]["U"]["shape"] == [3] and s["cell_fields"]["p"]["dtype"] == "float64"
    assert s["boundaries"] == {"movingWall": {"quad": 20}, "fixedWalls": {"quad": 60}, "frontAndBack": {"quad": 800}}
    every = _info_json(capsys, str(case), "--time", "all")
    assert [x["time"] for x in every] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]


def test_info_on_a_file_that_is_not_a_mesh(shared_data, capsys):
    assert main(["info", str(shared_data / "beno" / "BC_N32_10.npy")]) == 1
    assert "BC_N32_10.npy: unknown mesh format, extension '.npy'" in capsys.readouterr().err
