"""Every ``meshops bench NAME`` command runs end to end at a tiny size (slow), so a refactor cannot break one
silently. Each runs in its own process through the console entry point, as a user types it; the model
benchmarks also write their JSON, which is checked for the protocol's fields (>= 2 seeds, spread)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MESHOPS_SHARED_DATA", ROOT.parent / "shared" / "data"))

pytestmark = pytest.mark.slow


def bench(name: str, *args: str, timeout: float = 2400) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = "import sys; from meshops.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "bench", name, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"meshops bench {name} {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def ensemble_script(*args: str) -> dict:
    """``benchmarks/transient_ensemble.py ARGS... OUT`` run as a user types it; its results."""
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "transient_ensemble.py"), *args], check=True,
                   capture_output=True, text=True, timeout=1200)
    return json.loads(Path(args[-1]).read_text())["results"]


def protocol_models(res: dict) -> dict:
    """The per-model results of one protocol run; checks the fields every card table is built from."""
    assert res["seeds"] and res["budget"]["max_epochs"] >= 1 and res["splits"]["counts"]
    for name, m in res["models"].items():
        assert m["search"] and m["config"] and len(m["runs"]) == len(res["seeds"]), name
        for stats in m["summary"].values():
            assert set(stats) == {"mean", "std", "min", "max", "n"} and stats["n"] == len(res["seeds"])
        assert all(1 <= r["epochs_used"] <= res["budget"]["max_epochs"] or r["epochs_used"] == 0 for r in m["runs"])
    return res["models"]


def test_darcy_tiny(tmp_path):
    pytest.importorskip("neuralop")
    if not (SHARED / "neuraloperator" / "darcy_train_16.pt").is_file():
        pytest.skip(f"{SHARED / 'neuraloperator'}: neuraloperator's Darcy files are absent")
    out = tmp_path / "darcy.json"
    bench("darcy", "--tiny", "--data", str(SHARED / "neuraloperator"), "--out", str(out))
    res = json.loads(out.read_text())
    models = protocol_models(res["darcy"])
    assert set(models) == {"fno", "mgno"} and math.isfinite(models["mgno"]["summary"]["test32"]["mean"])
    stage2 = [c for c in models["mgno"]["search"] if c["config"].get("label") == "stage 2"]
    assert len(stage2) == 1 and stage2[0]["config"]["learned_transfer"] is True and "test" not in stage2[0]
    assert set(protocol_models(res["physics"]["dirichlet"])) == {"10% labels + residual", "10% labels + energy",
                                                                 "10% labels", "100% labels"}


def test_darcy_data_choices_are_a_second_stage_on_validation(tmp_path):
    """``--stage2 data``: mgno's winner again with a shared data choice changed (here the permeability alone as
    input: the model is built for one input channel fewer), scored on validation only."""
    pytest.importorskip("neuralop")
    if not (SHARED / "neuraloperator" / "darcy_train_16.pt").is_file():
        pytest.skip(f"{SHARED / 'neuraloperator'}: neuraloperator's Darcy files are absent")
    out = tmp_path / "darcy.json"
    bench("darcy", "--tiny", "--models", "mgno", "--skip-physics", "--stage2", "data", "--seeds", "0",
          "--data", str(SHARED / "neuraloperator"), "--out", str(out))
    m = protocol_models(json.loads(out.read_text())["darcy"])["mgno"]
    data = [c for c in m["search"] if c["config"].get("label") == "stage 2 (data)"]
    assert len(data) == 1 and data[0]["config"]["inputs"] == ["permeability"]
    assert math.isfinite(data[0]["val"]) and "test" not in data[0]


def test_elliptic_tiny(tmp_path):
    pytest.importorskip("skfem")
    out = tmp_path / "elliptic.json"
    bench("elliptic", "--tiny", "--out", str(out))
    models = protocol_models(json.loads(out.read_text())["results"][0])
    assert set(models) == {"beno", "ugraph"} and math.isfinite(models["beno"]["summary"]["ood_rel_l2"]["mean"])
    stage2 = [c for c in models["beno"]["search"] if c["config"].get("label") == "stage 2"]
    assert [c["config"]["single_scale"] for c in stage2] == [1.0]  # the second stage ran, on validation
    assert math.isfinite(stage2[0]["val"]) and "test" not in stage2[0]


def test_sphere_tiny(tmp_path):
    pytest.importorskip("torch_harmonics")
    pytest.importorskip("h5py")
    out = tmp_path / "sphere.json"
    bench("sphere", "--tiny", "--data", str(tmp_path / "data"), "--json", str(out))
    models = protocol_models(json.loads(out.read_text())["results"][0])
    assert set(models) == {"linear", "ours_grid", "peer_grid"}
    assert all(math.isfinite(m["summary"]["one_step"]["mean"]) for m in models.values())


def test_coronary_small(tmp_path):
    """Single vessels (the dataset's hash split), every model, 2 seeds, one epoch."""
    out = tmp_path / "coronary.json"
    bench("coronary", "--quick", "--max-cases", "20", "--epochs", "1", "--seeds", "0,1", "--threads", "1",
          "--out", str(out))
    models = protocol_models(json.loads(out.read_text())["results"])
    assert set(models) == {"rbf128", "rbf1024", "transolver", "gnot", "mgn", "ugraph"}


def test_coronary_trees_protocol_merge(tmp_path):
    """The tree protocol in two processes (a 2-lr search, 2 seeds) and the merge that writes the card block."""
    common = ["--dataset", "coronary_trees", "--quick", "--tree-split", "0.25,0.25", "--max-cases", "12",
              "--epochs", "2", "--patience", "1", "--seeds", "0,1", "--lrs", "1e-3,3e-3", "--threads", "1"]
    bench("coronary", *common, "--models", "rbf128", "--out", str(tmp_path / "a.json"))
    bench("coronary", *common, "--models", "mgn", "--out", str(tmp_path / "b.json"))
    wide = [*common[:common.index("--seeds")], "--seeds", "0", "--lrs", "3e-3", "--widths", "16", "--threads", "1"]
    bench("coronary", *wide, "--models", "mgn", "--out", str(tmp_path / "c.json"))  # one more candidate, apart
    card = tmp_path / "card.md"
    card.write_text("# card\n")
    bench("coronary", "--merge", *(str(tmp_path / f"{x}.json") for x in "abc"),
          "--out", str(tmp_path / "m.json"), "--readme", str(card))
    models = protocol_models(json.loads((tmp_path / "m.json").read_text())["results"])
    assert set(models) == {"rbf128", "mgn"} and [len(models[k]["search"]) for k in ("rbf128", "mgn")] == [2, 3]
    text = card.read_text()
    assert "| rbf128 |" in text and "| mgn |" in text and "lr in {1e-3,3e-3}" in text
    assert "in a separate run, for mgn: lr in {3e-3} x width in {16}" in text


def test_transient_small(tmp_path):
    """The protocol path on the shipped subset (or MESHOPS_CYLINDER_DATA): a 2 x 2 search (lr x input noise), 2 seeds."""
    data = os.environ.get("MESHOPS_CYLINDER_DATA", "shipped")
    out = tmp_path / "transient.json"
    bench("transient", "--data", data, "--steps", "4", "--val-every", "2", "--patience", "1", "--lrs", "1e-3,3e-3",
          "--noises", "0.5;u=0.5,v=0.5,p=0.2", "--seeds", "0,1", "--models", "mgn", "--max-test", "1", "--val-rollout", "3", "--out", str(out),
          "--checkpoints", str(tmp_path / "ckpt"), "--ensemble")
    res = json.loads(out.read_text())
    m = res["protocol"]["models"]["mgn"]
    assert len(m["search"]) == 4 and len(m["runs"]) == 2 and all(r["epochs_used"] <= 4 for r in m["runs"])
    assert [c["config"]["noise"] for c in m["search"]][:2] == [0.5, {"u": 0.5, "v": 0.5, "p": 0.2}]
    assert m["summary"]["one_step_p"]["n"] == 2 and math.isfinite(m["summary"]["one_step_p"]["mean"])
    assert len(res["models"]["mgn"]["below_persistence"]) == 3 and "below_persistence" in m["summary"]
    assert (tmp_path / "ckpt" / "mgn_seed1" / "best.pt").is_file()
    e = res["protocol"]["models"]["mgn ensemble"]  # the two seeds as one model, scored on validation and test
    assert len(e["runs"]) == 1 and math.isfinite(e["runs"][0]["val"]) and math.isfinite(e["summary"]["one_step_p"]["mean"])
    # benchmarks/transient_ensemble.py scores the saved seeds as one ensemble
    r = ensemble_script("shipped", str(tmp_path / "ckpt"), "mgn", "test", str(tmp_path / "ens.json"))
    assert set(r) == {"ensemble", "ckpt/mgn_seed0", "ckpt/mgn_seed1", "persistence"}
    members = [r[f"ckpt/mgn_seed{k}"]["mean"]["one_step"] for k in (0, 1)]
    assert np.all(np.array(r["ensemble"]["mean"]["one_step"]) <= np.mean(members, axis=0) + 1e-6)  # the norm is convex


def test_transient_peer_checkpoint_reloads_and_scores_as_in_the_bench(tmp_path, bench_module):
    """``--checkpoints`` saves the peer's weights too (``kind: stepping-peer``): they reload through
    ``transient.load_any_stepper`` and score on the test case exactly as the bench scored them; the library
    refuses such a checkpoint by name."""
    from meshops.train.checkpoint import CheckpointError
    from meshops.train.stepping import load_stepper

    mod = bench_module("transient")
    peers, why = mod.load_peers()
    if peers is None:
        pytest.skip(f"PhysicsNeMo does not load here ({why}); `make peers` installs it")
    out, ck = tmp_path / "t.json", tmp_path / "ckpt"
    bench("transient", "--data", "shipped", "--steps", "3", "--val-every", "3", "--patience", "1", "--lrs", "1e-3",
          "--seeds", "0", "--models", "physicsnemo", "--max-test", "1", "--val-rollout", "2", "--out", str(out),
          "--checkpoints", str(ck))
    case = json.loads(out.read_text())["models"][mod.PEER]["cases"][0]
    again = ensemble_script("shipped", str(ck), "physicsnemo", "test", str(tmp_path / "ens.json"))
    again = again["ckpt/physicsnemo_seed0"][case["name"]]
    assert np.allclose(again["one_step"], case["one_step"], rtol=1e-5)
    with pytest.raises(CheckpointError, match="stepping-peer"):
        load_stepper(ck / "physicsnemo_seed0" / "best.pt")


def test_kernels_quick(tmp_path):
    out = tmp_path / "kernels.json"
    bench("kernels", "--quick", "--device", "cpu", "--threads", "1", "--repeat", "1", "--min-time", "0",
          "--no-backward", "--sizes", "1e4:16:6", "--json", str(out))
    assert json.loads(out.read_text())


def test_graph_small():
    proc = bench("graph", "--sizes", "2e3", "--repeat", "1", "--hier-max", "2e3")
    assert "2000" in proc.stdout or "2e+03" in proc.stdout or proc.stdout.strip()


def test_scale_small(tmp_path):
    out = tmp_path / "scale.json"
    bench("scale", "--sizes", "2e3", "--model-max", "2e3", "--concat-max", "2e3", "--hidden", "8", "--blocks", "1",
          "--work", str(tmp_path / "work"), "--json", str(out))
    assert json.loads(out.read_text())
    fmt = tmp_path / "formats.json"
    bench("scale", "--sizes", "2e3", "--stages", "read-formats", "--work", str(tmp_path / "work"), "--json", str(fmt))
    rows = json.loads(fmt.read_text())["results"]
    assert len(rows) == 11 and all("cpu" in r["2000"] for r in rows.values())  # every flavour read by both


def test_protocol_statement():
    proc = bench("protocol")
    assert "Protocol:" in proc.stdout and "seeds [0, 1, 2]" in proc.stdout
