"""`meshops demo`: the shipped coronary model predicts on shipped held-out vessels end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import meshops
from meshops.cli import main

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "datasets" / "coronary_synthetic" / "model"


def test_demo_predicts_held_out_vessels(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--cases", "2", "--renders", "1"]) == 0
    summary = json.loads((out / "demo.json").read_text())
    test_names = json.loads((MODEL / "splits.json").read_text())["test"]
    train_names = set(json.loads((MODEL / "splits.json").read_text())["train"])
    from meshops.cli.demo import interleave_trees
    from meshops.data import load_dataset

    known = set(load_dataset("coronary_mixed").case_names())
    test_names = [n for n in test_names if n in known]  # trees packed later than this checkout are left out
    assert [r["case"] for r in summary["cases"]] == interleave_trees(test_names)[:2]
    if any(n.startswith("tree_") for n in test_names):  # a held-out tree is in the table and rendered
        assert summary["cases"][1]["case"].startswith("tree_") and summary["cases"][1]["branches"] > 1
    assert not train_names & {r["case"] for r in summary["cases"]}
    for r in summary["cases"]:
        for name, err in r["rel_l2"].items():
            assert np.isfinite(err) and err >= 0, (r["case"], name, err)
        wall = meshops.read(out / f"{r['case']}.vtp")
        for name in r["rel_l2"]:
            pred, truth = wall.point_data[f"{name}_pred"], wall.point_data[name]
            err = wall.point_data[f"{name}_error"]
            np.testing.assert_allclose(err, pred.astype(np.float64) - truth, rtol=0, atol=1e-3 * np.abs(truth).max())
            rel = np.linalg.norm(err) / np.linalg.norm(truth)
            assert abs(rel - r["rel_l2"][name]) < 1e-3
    pngs = sorted(p.name for p in out.glob("*.png"))
    shown = [r["case"] for r in summary["cases"]]
    want = [shown[0]] + [n for n in shown[1:] if n.startswith("tree_")][:1]
    assert pngs == sorted(f"{n}_{t}.png" for n in want for t in summary["mean_rel_l2"])
