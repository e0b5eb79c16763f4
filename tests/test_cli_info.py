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
