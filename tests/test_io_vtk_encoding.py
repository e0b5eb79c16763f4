"""A legacy VTK file whose field name is not UTF-8 (a Latin-1 tool) reads, with the name decoded."""

from __future__ import annotations

import logging

import numpy as np

import meshops


def test_latin1_field_name_reads_with_a_warning(tmp_path, caplog):
    rng = np.random.default_rng(0)
    m = meshops.Mesh(rng.random((4, 3)), [("tetra", np.array([[0, 1, 2, 3]]))],
                     point_data={"pX": rng.random(4)})
    meshops.write(m, tmp_path / "a.vtk")
    raw = (tmp_path / "a.vtk").read_bytes()
    assert raw.count(b"pX") == 1
    (tmp_path / "b.vtk").write_bytes(raw.replace(b"pX", "pé".encode("latin-1")))
    with caplog.at_level(logging.WARNING):
        got = meshops.read(tmp_path / "b.vtk")
    assert list(got.point_data) == ["pé"]
    np.testing.assert_array_equal(got.point_data["pé"], m.point_data["pX"])
    assert "not UTF-8" in caplog.text and "'pé'" in caplog.text
