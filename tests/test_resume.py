"""Resume: a run killed (SIGKILL) mid-epoch and resumed ends with the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
HARMONIC = str(ROOT / "examples" / "harmonic_dataset.py")


def _config(out: Path, cache: Path) -> dict:
    return dict(
        dataset=HARMONIC, dataset_options={"n": 12, "n_interior": 20, "n_side": 5},
        model="mgn", model_options={"hidden": 8, "n_blocks": 2}, graph={"levels": 1},
        epochs=12, batch_size=3, lr=3e-3, seed=7, out=str(out), cache=str(cache),
        checkpoint_every=1, progress=False, split_fractions=[0.8, 0.2, 0.0],
    )


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def test_killed_and_resumed_run_matches_uninterrupted(tmp_path):
    from meshops.train import train

    torch.set_num_threads(1)
    cache = tmp_path / "cache"
    full = train(_config(tmp_path / "full", cache))
    assert full.steps == 12 * 4  # 10 training cases in batches of 3: 4 steps per epoch

    out = tmp_path / "killed"
    cfg = _config(out, cache)
    code = f"import json, torch; torch.set_num_threads(1); from meshops.train import train; train(json.loads({json.dumps(json.dumps(cfg))}))"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path)
    killed_at = None
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            last = out / "last.pt"
            if last.is_file():
                try:
                    step = torch.load(last, weights_only=True)["progress"]["global_step"]
                except Exception:  # replaced while reading: try again
                    step = 0
                if step >= 5:
                    proc.send_signal(signal.SIGKILL)
                    killed_at = step
                    break
            time.sleep(0.005)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait()
    assert killed_at is not None, "the training finished before it could be interrupted"
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["progress"]["global_step"] < 48
    resumed = train(cfg)
    assert resumed.steps == 48
    a, b = _weights(full.last_checkpoint), _weights(resumed.last_checkpoint)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-6), k
    # and the run really trained (weights moved from their initialization)
    torch.manual_seed(7)
    from meshops import models

    init = models.create("mgn", in_channels=5, out_channels=1, global_channels=0, hidden=8, n_blocks=2).state_dict()
    assert any(not torch.allclose(init[k], a[k]) for k in a)


def test_rerun_removes_temporary_checkpoints_of_a_killed_run(tmp_path):
    """A writer killed between creating its temp file and the rename leaves ``.last.<rnd>.tmp.pt``;
    the next run in that folder removes it (and nothing else)."""
    from meshops.train import train

    torch.set_num_threads(1)
    out = tmp_path / "run"
    out.mkdir()
    stale = [out / ".last.abc123.tmp.pt", out / ".config.x9y8.tmp.json"]
    for p in stale:
        p.write_bytes(b"half a checkpoint")
    keep = out / "notes.txt"
    keep.write_text("mine")
    cfg = _config(out, tmp_path / "cache")
    cfg["epochs"] = 1
    train(cfg)
    assert not any(p.exists() for p in stale)
    assert keep.read_text() == "mine"
    assert not list(out.glob(".*.tmp*")) and (out / "last.pt").is_file()
