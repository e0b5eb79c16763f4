"""The plug-in path: a dataset defined in one new file trains, predicts and evaluates without
touching meshops (the file is written here, outside the package)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import torch

import meshops
from meshops.cli import main as cli

PLUGIN = textwrap.dedent(
    '''
    """Poisson-like toy: u = sin(k x) cos(k y) on random triangulated squares, input k * x."""
    import numpy as np
    from scipy.spatial import Delaunay
    from meshops import CellBlock, Mesh
    from meshops.data import Case, Dataset, register_dataset

    @register_dataset("my_waves")
    class Waves(Dataset):
        inputs = ["kx"]
        targets = ["u"]
        globals = ["k"]

        def __init__(self, n=8):
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            rng = np.random.default_rng(i)
            pts = np.r_[[[0, 0], [1, 0], [1, 1], [0, 1]], rng.uniform(0.05, 0.95, (25, 2))]
            m = Mesh(np.c_[pts, np.zeros(len(pts))], [CellBlock("triangle", Delaunay(pts).simplices)], dim=2)
            k = 1.0 + 0.25 * i
            x, y = pts[:, 0], pts[:, 1]
            m = m.with_fields(kx=k * x, u=np.sin(k * x) * np.cos(k * y))
            return Case(f"wave{i}", m, self.inputs, self.targets, {"k": k})
    '''
)


def test_one_file_dataset_trains_predicts_and_evaluates(tmp_path, capsys):
    torch.set_num_threads(1)
    f = tmp_path / "my_waves.py"
    f.write_text(PLUGIN)
    cfg = tmp_path / "train.yaml"
    cfg.write_text(textwrap.dedent(
        """
        dataset: my_waves.py
        dataset_options: {n: 8}
        model: mgn
        model_options: {hidden: 8, n_blocks: 2}
        graph: {levels: 1}
        epochs: 2
        batch_size: 2
        progress: false
        """
    ))
    out = tmp_path / "run"
    assert cli(["train", str(cfg), "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] > 0 and (out / "best.pt").is_file() and (out / "curves.png").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"]["dataset"] == str(f) and config["features"]["globals"] == ["k"]
    # predict on a user's file carrying the input field, with the global given on the command line
    from meshops.data import load_dataset

    case = load_dataset(str(f), n=8)[5]
    mesh = tmp_path / "user.vtu"
    meshops.write(case.mesh.with_fields({}), mesh)
    assert cli(["predict", str(out / "best.pt"), str(mesh), "--out", str(tmp_path / "pred"), "--global", "k=2.25"]) == 0
    got = meshops.read(tmp_path / "pred" / "user.vtu")
    assert np.allclose(got.point_data["u_error"], got.point_data["u_pred"] - got.point_data["u"], atol=1e-6)
    # without the global: a clear error naming it
    capsys.readouterr()
    assert cli(["predict", str(out / "best.pt"), str(mesh), "--out", str(tmp_path / "pred2")]) == 1
    assert "needs global parameter 'k'" in capsys.readouterr().err
    # evaluate by registered name after the file was loaded once, and by path
    assert cli(["evaluate", str(out / "best.pt"), str(f), "--option", "n=4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_cases"] == 4 and "u" in report["mean"]
