"""The shipped sample mesh is what examples/make_sample_mesh.py makes, and is a valid mixed mesh."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from meshops.io import read

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data"


def _script():
    spec = importlib.util.spec_from_file_location("make_sample_mesh", ROOT / "examples" / "make_sample_mesh.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shipped_files_match_the_script(tmp_path):
    mod = _script()
    assert mod.main([str(tmp_path)]) == 0
    for ext in ("vtu", "msh"):
        shipped, fresh = read(DATA / f"sample_mixed.{ext}"), read(tmp_path / f"sample_mixed.{ext}")
        assert fresh.diff(shipped) == []
    built = mod.build()
    assert read(DATA / "sample_mixed.msh").diff(built) == []  # lossless, boundaries included
    assert read(DATA / "sample_mixed.vtu").diff(built, check_boundaries=False) == []


def test_sample_is_a_valid_positive_mixed_mesh():
    m = read(DATA / "sample_mixed.msh")
    assert m.cell_types == {"hexahedron": 108, "wedge": 216, "pyramid": 648, "tetra": 648}
    sizes = m.to_pyvista().compute_cell_sizes(length=False, area=False, volume=True)
    vol = np.asarray(sizes.cell_data["Volume"])
    assert np.all(vol > 0)  # every cell is positively oriented in VTK's convention
    assert np.allclose(vol, m.cell_data["volume"]) and vol.sum() == pytest.approx(4.0)
    area = {}
    for name, blocks in m.boundaries.items():
        a = 0.0
        for b in blocks:
            p = m.points[b.data]
            tris = [p[:, [0, 1, 2]]] + ([p[:, [0, 2, 3]]] if b.type == "quad" else [])
            a += sum(0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1).sum() for t in tris)
        area[name] = a
    assert area == pytest.approx({"inlet": 1.0, "outlet": 1.0, "wall": 16.0})
