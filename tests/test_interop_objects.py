"""PyVista / meshio / trimesh objects wherever a mesh is taken: graph.build, the dataset contract, predict_mesh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from meshops import CellBlock, Mesh
from meshops.data import Case
from meshops.graph import build

ROOT = Path(__file__).resolve().parents[1]
HARMONIC = str(ROOT / "examples" / "harmonic_dataset.py")


def _surface() -> Mesh:
    pts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 0.5, 1.0]])
    tri = np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    return Mesh(pts, [CellBlock("triangle", tri)], point_data={"p": np.arange(5.0)})


@pytest.mark.parametrize("kind", ["pyvista", "meshio", "trimesh", "path"])
def test_build_takes_objects_like_the_mesh(kind, tmp_path):
    m = _surface()
    if kind == "pyvista":
        obj = m.to_pyvista()
    elif kind == "meshio":
        obj = m.to_meshio()
    elif kind == "trimesh":
        import trimesh

        obj = trimesh.Trimesh(m.points, m.cells[0].data, process=False)
    else:
        import meshops

        obj = meshops.write(m, tmp_path / "s.vtu")
    want = build(m)
    got = build(obj, {"node_fields": ["p"]} if kind != "trimesh" else None)
    assert torch.equal(got.edge_index, want.edge_index) and torch.equal(got.pos, want.pos)
    if kind != "trimesh":
        assert torch.equal(got.x[:, 0], torch.arange(5.0))


def test_build_rejects_other_objects():
    with pytest.raises(TypeError, match="build: expected a Mesh, a path, a pyvista"):
        build(object())


def test_case_converts_a_pyvista_mesh():
    c = Case("c", _surface().to_pyvista(), ["p"], [])
    assert isinstance(c.mesh, Mesh) and c.field_array("p").shape == (5, 1)


def test_predict_mesh_takes_a_pyvista_mesh(tmp_path):
    from meshops.data import load_dataset
    from meshops.train import load_trained, train
    from meshops.train.inference import predict_mesh

    opts = {"n": 8, "n_interior": 20, "n_side": 5, "degree": 1}
    res = train(dict(dataset=HARMONIC, dataset_options=opts, model="mgn", model_options={"hidden": 8, "n_blocks": 1},
                     epochs=1, batch_size=4, seed=0, out=str(tmp_path / "r"), cache=str(tmp_path / "c"),
                     progress=False, split_fractions=[0.5, 0.25, 0.25]))
    trained = load_trained(res.last_checkpoint)
    full = load_dataset(HARMONIC, **opts)[0].mesh
    # a PyVista dataset has no named boundary regions: compare with the same mesh without them
    mesh = Mesh(full.points, full.cells, point_data=dict(full.point_data), dim=full.dim)
    a = predict_mesh(trained, mesh)
    b = predict_mesh(trained, mesh.to_pyvista())
    np.testing.assert_allclose(b.point_data["u_pred"], a.point_data["u_pred"], rtol=1e-6)
