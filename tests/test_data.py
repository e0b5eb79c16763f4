"""meshops.data: folder dataset, plug-in discovery, splits, train-only normalization, graph cache."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch

import meshops
from meshops import CellBlock, Mesh
from meshops.data import Case, DatasetError, available_datasets, load_dataset
from meshops.data.graphs import FeatureSpec, GraphCache, Pipeline
from meshops.data.splits import load_or_make_splits, make_splits

torch.set_num_threads(1)


def _mesh(seed: int, n: int = 30) -> Mesh:
    from scipy.spatial import Delaunay

    rng = np.random.default_rng(seed)
    pts = np.r_[[[0, 0], [1, 0], [1, 1], [0, 1]], rng.uniform(0.05, 0.95, (n, 2))]
    m = Mesh(np.c_[pts, np.zeros(len(pts))], [CellBlock("triangle", Delaunay(pts).simplices)], dim=2)
    x = m.points[:, 0]
    return m.with_fields(a=np.sin(3 * x) + seed, b=np.c_[x, x * x, -x] * (seed + 1))


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "results"
    d.mkdir()
    for i in range(5):
        meshops.write(_mesh(i), d / f"case{i}.vtu")
        (d / f"case{i}.json").write_text(json.dumps({"re": 10.0 * i}))
    return d


def test_folder_dataset_reads_fields_and_globals(folder):
    ds = load_dataset("folder", path=str(folder), inputs=["a"], targets=["b"], globals=["re"])
    assert len(ds) == 5 and ds.case_names() == [f"case{i}" for i in range(5)]
    c = ds[3]
    assert isinstance(c, Case) and c.globals == {"re": 30.0}
    assert c.stack(["a", "b"]).shape == (c.mesh.n_points, 4)
    # glob and list forms
    assert len(load_dataset("folder", path=str(folder / "case[0-2].vtu"), inputs=["a"], targets=["b"])) == 3


def test_folder_dataset_errors_name_file_and_field(folder, tmp_path):
    ds = load_dataset("folder", path=str(folder), inputs=["nope"], targets=["b"])
    with pytest.raises(DatasetError, match=r"case0\.vtu.*point field 'nope' is missing"):
        ds[0]
    ds = load_dataset("folder", path=str(folder), inputs=["a"], targets=["b"], globals=["mach"])
    with pytest.raises(DatasetError, match="global parameter 'mach' not found"):
        ds[0]
    with pytest.raises(DatasetError, match="matches no files"):
        load_dataset("folder", path=str(tmp_path / "*.nothing"), inputs=[], targets=["b"])
    with pytest.raises(DatasetError, match="unknown dataset 'no_such_dataset'"):
        load_dataset("no_such_dataset")


PLUGIN = textwrap.dedent(
    """
    import numpy as np
    from meshops import Mesh
    from meshops.data import Case, Dataset

    class Tiny(Dataset):
        inputs = ["a"]
        targets = ["b"]
        def __init__(self, n=3):
            self.n = n
        def __len__(self):
            return self.n
        def __getitem__(self, i):
            m = Mesh(np.random.default_rng(i).random((6, 3)), point_data={"a": np.ones(6), "b": np.arange(6.0)})
            return Case(f"tiny{i}", m, self.inputs, self.targets)
    """
)


def test_plugin_discovery_by_file_folder_and_entry_point(tmp_path, monkeypatch):
    f = tmp_path / "tiny.py"
    f.write_text(PLUGIN)
    assert len(load_dataset(str(f), n=4)) == 4
    # datasets/<name>/dataset.py under a search path
    root = tmp_path / "recipes"
    (root / "tiny_recipe").mkdir(parents=True)
    (root / "tiny_recipe" / "dataset.py").write_text(PLUGIN)
    monkeypatch.setenv("MESHOPS_DATASETS", str(root))
    assert "tiny_recipe" in available_datasets()
    ds = load_dataset("tiny_recipe", n=2)
    assert ds[1].name == "tiny1" and ds.meshops_spec == {"dataset": "tiny_recipe", "options": {"n": 2}}
    # an installed distribution advertising the entry point group meshops.datasets
    pkg = tmp_path / "site"
    (pkg / "tinypkg").mkdir(parents=True)
    (pkg / "tinypkg" / "__init__.py").write_text(PLUGIN)
    dist = pkg / "tinypkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[meshops.datasets]\ntiny_ep = tinypkg:Tiny\n")
    monkeypatch.syspath_prepend(str(pkg))
    assert "tiny_ep" in available_datasets()
    assert len(load_dataset("tiny_ep", n=5)) == 5
    sys.modules.pop("tinypkg", None)


def test_splits_are_seeded_saved_and_reused(tmp_path):
    names = [f"c{i}" for i in range(20)]
    a, b = make_splits(names, seed=1), make_splits(list(reversed(names)), seed=1)
    assert a == b and sorted(sum(a.values(), [])) == sorted(names)
    assert len(a["train"]) == 16 and len(a["val"]) == 2 and len(a["test"]) == 2
    assert make_splits(names, seed=2) != a
    p = tmp_path / "splits.json"
    s1 = load_or_make_splits(p, names, seed=1)
    s2 = load_or_make_splits(p, names, seed=99)  # the saved file wins while it covers the cases
    assert s1 == s2 == a and json.loads(p.read_text())["seed"] == 1
    with pytest.raises(DatasetError, match="unique"):
        make_splits(["x", "x"])


def test_normalization_uses_the_training_cases_only_and_cache_keys(tmp_path):
    cases = [Case(f"c{i}", _mesh(i), ["a"], ["b"], {"re": float(i)}) for i in range(4)]
    feats = FeatureSpec.from_case(cases[0])
    assert feats.in_channels == 1 + 3 + 1 and feats.out_channels == 3 and feats.global_channels == 1
    cache = GraphCache(tmp_path / "cache")
    pipe = Pipeline(feats, {"levels": 1}, cache=cache)
    nz = pipe.fit(cases[:2])
    b = np.concatenate([c.field_array("b") for c in cases[:2]])
    assert np.allclose(nz.targets.mean, b.mean(0)) and np.allclose(nz.targets.std, b.std(0), rtol=1e-6)
    b_all = np.concatenate([c.field_array("b") for c in cases])
    assert not np.allclose(nz.targets.mean, b_all.mean(0))
    assert nz.globals.mean[0] == pytest.approx(0.5)
    # sample: normalized targets, input graph left unchanged
    g = pipe.graph(cases[0])
    before = g.edge_attr.clone()
    s = pipe.sample(cases[0])
    assert torch.equal(g.edge_attr, before) and not torch.equal(s.edge_attr, before)
    assert torch.allclose(s.edge_attr, before / nz.edge_scale)
    dec = pipe.decode(cases[0], g, s.y)
    assert np.allclose(dec["b"], cases[0].field_array("b"), atol=1e-4)
    # on-disk cache: reused by a new process-level cache, rebuilt when geometry or spec change
    builds = cache.builds
    files = sorted((tmp_path / "cache").glob("*.pt"))
    assert len(files) == builds == 2  # only the two training meshes were needed
    torch.load(files[0], weights_only=True)
    fresh = GraphCache(tmp_path / "cache")
    fresh.get(cases[0].mesh, {"levels": 1})
    assert fresh.builds == 0 and fresh.hits == 1
    fresh.get(cases[0].mesh, {"levels": 2})
    moved = cases[0].mesh.copy()
    moved.points[0, 0] += 1e-3
    fresh.get(moved, {"levels": 1})
    assert fresh.builds == 2


def test_train_on_a_folder_with_flags_only(folder, tmp_path, capsys):
    from meshops.cli import main as cli

    out = tmp_path / "run"
    rc = cli(["train", "--path", str(folder), "--inputs", "a", "--targets", "b", "--globals", "re",
              "--model", "mgn", "--epochs", "1", "--batch-size", "2", "--out", str(out), "--no-progress",
              "--cache", str(tmp_path / "cache"), "--set", "model_options.hidden=8", "--set", "model_options.n_blocks=1"])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["dataset"]["options"]["inputs"] == ["a"] and cfg["model"]["hidden"] == 8
    assert cfg["features"]["target_channels"] == [3] and cfg["features"]["globals"] == ["re"]
    splits = json.loads((out / "splits.json").read_text())
    assert sorted(sum((splits[k] for k in ("train", "val", "test")), [])) == [f"case{i}" for i in range(5)]
    # evaluate on the folder itself (read with the checkpoint's field names)
    capsys.readouterr()
    assert cli(["evaluate", str(out / "best.pt"), str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["n_cases"] == 5
