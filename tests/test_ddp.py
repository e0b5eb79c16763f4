"""DDP on CPU (gloo): torchrun with 2 processes == 1 process with the same global batch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
HARMONIC = str(ROOT / "examples" / "harmonic_dataset.py")
ARGS = [
    "train", "--dataset", HARMONIC, "--model", "mgn", "--epochs", "2", "--batch-size", "4", "--lr", "3e-3",
    "--seed", "3", "--no-progress",
    "--set", "dataset_options={n: 14, n_interior: 20, n_side: 5}",
    "--set", "model_options={hidden: 8, n_blocks: 2}",
    "--set", "graph={levels: 1}",
    "--set", "split_fractions=[0.8, 0.2, 0.0]",
]


def test_torchrun_two_processes_equals_one(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    meshops_bin = shutil.which("meshops", path=str(Path(sys.executable).parent))
    if torchrun is None or meshops_bin is None:
        pytest.skip("torchrun / meshops entry points are not installed in this environment")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cache = str(tmp_path / "cache")
    one = subprocess.run([meshops_bin, *ARGS, "--out", str(tmp_path / "one"), "--cache", cache],
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "--no-python", meshops_bin, *ARGS,
         "--out", str(tmp_path / "two"), "--cache", cache],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    a = torch.load(tmp_path / "one" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    assert a["progress"]["global_step"] == b["progress"]["global_step"] == 6
    for k in a["model"]:
        assert torch.allclose(a["model"][k], b["model"][k], rtol=1e-4, atol=1e-5), k
    assert "rank 1 of 2 (gloo)" in two.stderr
    assert (tmp_path / "two" / "curves.png").is_file()
