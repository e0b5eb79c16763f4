"""End to end on real CFD results (SimVascular cylinder): train, checkpoint, reload, predict to VTU,
re-read, error fields == prediction - truth; the CLI predict/evaluate agree with the library."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import meshops
from meshops.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]


def _example():
    spec = importlib.util.spec_from_file_location("cylinder_end_to_end", ROOT / "examples" / "cylinder_end_to_end.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cylinder_end_to_end(shared_data, tmp_path, monkeypatch, capsys):
    torch.set_num_threads(1)
    monkeypatch.setenv("MESHOPS_SHARED_DATA", str(shared_data))
    out = tmp_path / "cyl"
    summary = _example().main(["--out", str(out), "--tiny", "--no-render"])
    assert set(summary) == {"mgn", "ugraph"}
    for name, info in summary.items():
        ck = torch.load(info["checkpoint"], weights_only=True)
        assert ck["format"] == "meshops-checkpoint" and json.loads(ck["config_json"])["model"]["name"] == name
        pred = meshops.read(info["prediction"])
        src = meshops.read(Path(info["prediction"]).parents[1] / Path(info["prediction"]).name)
        assert np.array_equal(pred.points, src.points)  # the user's point order is kept
        for f in ("pressure", "wss"):
            p, t, e = (np.asarray(pred.point_data[k], np.float64) for k in (f"{f}_pred", f, f"{f}_error"))
            assert p.shape == t.shape == e.shape and np.isfinite(p).all()
            assert np.allclose(e, p - t, rtol=1e-5, atol=1e-5 * np.abs(t).max())
            assert np.std(p) > 0
        # the CLI gives the same prediction from the same checkpoint
        cli_out = tmp_path / f"cli_{name}"
        t_in, t_out = (int(s[1:]) for s in Path(info["prediction"]).stem.split("_to_"))
        flags = ["--global", f"t_in={t_in}", "--global", f"t_out={t_out}"]
        assert cli(["predict", info["checkpoint"], str(src.source), "--out", str(cli_out), *flags]) == 0
        again = meshops.read(cli_out / Path(info["prediction"]).name)
        assert np.allclose(again.point_data["pressure_pred"], pred.point_data["pressure_pred"], rtol=1e-6)
    # evaluate the test split of the mgn run: per-case and mean metrics, JSON
    report = tmp_path / "eval.json"
    ds_file = str(ROOT / "examples" / "cylinder_dataset.py")
    assert cli(["evaluate", summary["mgn"]["checkpoint"], ds_file, "--option", "max_cases=12",
                "--split", "test", "--out", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["n_cases"] >= 1 and set(r["mean"]) == {"pressure", "wss"}
    assert all(0 <= c["wss"]["rel_l2"] < 10 for c in r["cases"].values())


def test_predict_rejects_foreign_and_corrupt_checkpoints(tmp_path, capsys):
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a checkpoint" * 10)
    mesh = tmp_path / "m.vtu"
    meshops.write(meshops.Mesh(np.random.default_rng(0).random((4, 3)), [("tetra", np.array([[0, 1, 2, 3]]))]), mesh)
    assert cli(["predict", str(foreign), str(mesh), "--out", str(tmp_path / "o")]) == 1
    assert "not a meshops checkpoint" in capsys.readouterr().err
    assert cli(["predict", str(bad), str(mesh), "--out", str(tmp_path / "o")]) == 1
    assert "corrupt, truncated or not a torch file" in capsys.readouterr().err


@pytest.mark.slow
def test_cylinder_full_example(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MESHOPS_SHARED_DATA", str(shared_data))
    summary = _example().main(["--out", str(tmp_path / "full")])
    for info in summary.values():
        assert Path(info["picture"]).is_file()
