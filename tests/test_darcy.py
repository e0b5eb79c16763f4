"""The darcy_neuraloperator dataset: neuraloperator's real Darcy files as meshes; bad files refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from meshops.data import DatasetError, load_dataset

ROOT = Path(__file__).resolve().parents[1]
DS = ROOT / "datasets" / "darcy_neuraloperator"


def _ds(**kw):
    return load_dataset(str(DS), **kw)


def test_real_files_as_meshes(shared_data):
    root = shared_data / "neuraloperator"
    tr = _ds(split="train", resolution=16, root=str(root))
    te32 = _ds(split="test", resolution=32, root=str(root))
    assert len(tr) == 1000 and len(te32) == 50
    raw = torch.load(root / "darcy_train_16.pt", weights_only=True)
    c = tr[7]
    assert c.inputs == ["permeability", "wall_distance"] and c.targets == ["pressure"]
    m = c.mesh
    assert m.n_points == 256 and m.cells[0].data.shape == (2 * 15 * 15, 3)
    # point i*n + j holds grid value [i, j] at ((i + .5)/n, (j + .5)/n)
    np.testing.assert_array_equal(tr.grid(m.point_data["permeability"]), raw["x"][7].numpy().astype(np.float32))
    np.testing.assert_array_equal(tr.grid(m.point_data["pressure"]), raw["y"][7].numpy())
    np.testing.assert_allclose(m.points[1 * 16 + 3, :2], [1.5 / 16, 3.5 / 16])
    # wall distance: the distance of each grid point to the nearest side of the unit square
    wall = m.point_data["wall_distance"]
    assert abs(wall[1 * 16 + 3] - 1.5 / 16) < 1e-7 and abs(wall[15 * 16 + 8] - 0.5 / 16) < 1e-7
    assert abs(te32[0].mesh.point_data["wall_distance"].min() - 0.5 / 32) < 1e-7
    # the 32 grid covers the same square
    p32 = te32[0].mesh.points
    assert abs(p32[:, :2].min() - 0.5 / 32) < 1e-12 and abs(p32[:, :2].max() - 31.5 / 32) < 1e-12
    # boundary ring of 60 nodes flagged through the graph
    from meshops.graph import build

    g = build(m, {"levels": 3})
    assert int((g.node_type > 0).sum()) == 4 * 16 - 4
    assert tr.case_names()[7] == c.name == "darcy_train_16_0007"


def test_triangles_cover_the_square_ccw():
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("darcy_ds_test", DS / "dataset.py")
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    pts, tri, edges = mod.grid_mesh(5, 4)
    a = pts[tri[:, 1], :2] - pts[tri[:, 0], :2]
    b = pts[tri[:, 2], :2] - pts[tri[:, 0], :2]
    area = 0.5 * (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
    assert (area > 0).all()
    np.testing.assert_allclose(area.sum(), (4 / 5) * (3 / 4))  # the hull of the cell centres
    assert len(edges) == 2 * 4 + 2 * 3 and len(np.unique(edges[:, 0])) == len(edges)


def _write(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def test_bad_files(tmp_path):
    x = torch.rand(3, 4, 4) > 0.5
    y = torch.rand(3, 4, 4)
    with pytest.raises(DatasetError, match=r"bad1.pt has no key\(s\) \['y'\]"):
        _ds(path=str(_write(tmp_path / "bad1.pt", {"x": x})))
    with pytest.raises(DatasetError, match=r"bad2.pt: 'x' has shape \(3, 4, 4\) but 'y' has shape \(2, 4, 4\)"):
        _ds(path=str(_write(tmp_path / "bad2.pt", {"x": x, "y": y[:2]})))
    with pytest.raises(DatasetError, match=r"bad3.pt: 'y' has shape \(3, 16\), expected \(samples, n, m\)"):
        _ds(path=str(_write(tmp_path / "bad3.pt", {"x": x, "y": y.reshape(3, 16)})))
    with pytest.raises(DatasetError, match=r"bad4.pt holds a list"):
        _ds(path=str(_write(tmp_path / "bad4.pt", [x, y])))
    y2 = y.clone()
    y2[1, 2, 2] = float("nan")
    with pytest.raises(DatasetError, match=r"bad5.pt: 'y' has non-finite values \(first in sample 1\)"):
        _ds(path=str(_write(tmp_path / "bad5.pt", {"x": x, "y": y2})))
    (tmp_path / "bad6.pt").write_bytes(b"not a torch file")
    with pytest.raises(DatasetError, match=r"bad6.pt cannot be read as a torch file"):
        _ds(path=str(tmp_path / "bad6.pt"))
    with pytest.raises(DatasetError, match=r"nothere.pt does not exist"):
        _ds(path=str(tmp_path / "nothere.pt"))
    with pytest.raises(DatasetError, match=r"split must be 'train' or 'test', got 'val'"):
        _ds(split="val", root=str(tmp_path))
    # a good file with a channel axis works
    ok = _ds(path=str(_write(tmp_path / "ok.pt", {"x": x[:, None], "y": y[:, None]})), n=2)
    assert len(ok) == 2 and ok[1].mesh.n_points == 16
    with pytest.raises(IndexError, match="sample 5 out of range"):
        ok[5]


@pytest.mark.slow
def test_benchmark_smoke(shared_data, tmp_path):
    """``meshops bench darcy`` end to end on a tiny budget: FNO and mgno train, the README block is written."""
    import importlib.util
    import json

    pytest.importorskip("neuralop")
    spec = importlib.util.spec_from_file_location("bench_darcy_test", ROOT / "benchmarks" / "darcy.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    readme = tmp_path / "README.md"
    readme.write_text("# card\n<!-- bench:darcy:begin -->\nold\n<!-- bench:darcy:end -->\ntail\n")
    out = tmp_path / "res.json"
    rc = bench.main(["--data", str(shared_data / "neuraloperator"), "--tiny", "--skip-physics", "--out", str(out),
                     "--readme", str(readme)])
    assert rc == 0
    res = json.loads(out.read_text())["darcy"]["models"]
    for name in ("fno", "mgno"):
        r = res[name]
        assert r["runs"][0]["params"] > 0 and np.isfinite(r["summary"]["test16"]["mean"])
        assert np.isfinite(r["summary"]["test32"]["mean"]) and r["summary"]["test16"]["n"] == 2
    text = readme.read_text()
    assert "old" not in text and "| `mgno` |" in text and text.endswith("tail\n")


@pytest.mark.parametrize("model,options", [("mgno", {"hidden": 8, "n_layers": 1}),
                                           ("amg", {"hidden": 8, "n_layers": 1, "heads": 2, "slices": 4}),
                                           ("transolver", {"hidden": 8, "n_layers": 1, "heads": 2, "slices": 4})])
def test_trainer_trains_and_reloads_our_models(shared_data, tmp_path, model, options):
    """The pipeline's trainer runs mgno/amg/transolver on the Darcy dataset; the checkpoint reloads and predicts."""
    from meshops.train import trainer
    from meshops.train.inference import load_trained, predict_case

    cfg = {"dataset": str(DS), "dataset_options": {"path": str(shared_data / "neuraloperator" / "darcy_test_16.pt"),
                                                   "n": 10},
           "model": model, "model_options": options, "graph": {"levels": 3, "ratio": 0.25}, "epochs": 1,
           "batch_size": 4, "out": str(tmp_path / "run"), "cache": str(tmp_path / "cache"), "device": "cpu"}
    trainer.train(cfg)
    ckpts = sorted((tmp_path / "run").glob("*.pt"))
    assert ckpts, list((tmp_path / "run").iterdir())
    trained = load_trained(str(ckpts[0]))
    case = _ds(path=str(shared_data / "neuraloperator" / "darcy_test_16.pt"), n=2)[1]
    out = predict_case(trained, case)
    assert out["pressure"].shape == (256,) and np.isfinite(out["pressure"]).all()
