"""The first shipped coronary checkpoint (single vessels, physics='none') still loads and predicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
OLD = ROOT / "tests" / "fixtures" / "centerline_rbf_v1" / "best.pt"


def test_v1_checkpoint_loads_as_plain_centerline_rbf_and_predicts_a_vessel():
    from meshops.data import load_dataset
    from meshops.train import load_trained, predict_mesh

    trained = load_trained(OLD)
    assert trained.model.physics == "none" and not trained.model.stored_ranges()
    ds = load_dataset("coronary_synthetic", split="test")
    case = ds[0]
    pred = predict_mesh(trained, case.mesh, globals=case.globals)
    for t in ("p", "wss_mag"):
        truth = np.asarray(case.mesh.point_data[t], dtype=np.float64)
        err = np.linalg.norm(np.asarray(pred.point_data[f"{t}_pred"]) - truth) / np.linalg.norm(truth)
        assert np.isfinite(err) and err < 0.6, (t, err)  # the v1 model's own accuracy (0.09 / 0.14 mean)


def test_v1_checkpoint_predicts_the_demo_centerline_with_default_range_warnings(tmp_path, capsys):
    demo = ROOT.parent / "shared" / "data" / "simvascular" / "demo_aorta_centerlines.vtp"
    if not demo.is_file():
        pytest.skip(f"{demo} absent (the SimVascular demo lives in ../shared)")
    import argparse

    from meshops.cli import predict

    p = argparse.ArgumentParser()
    predict.add_arguments(p)
    args = p.parse_args([str(OLD), "--centerline", str(demo), "--scale", "10", "--global", "Q=5",
                         "--out", str(tmp_path / "o")])
    assert predict.run(args) == 0
    err = capsys.readouterr().err
    assert "Q = 5 mL/s is outside the training range" in err and "3 branches" in err, err
