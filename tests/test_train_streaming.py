"""Datasets bigger than the memory budget train: graphs built once into the disk cache, nothing
kept per case (MESHOPS_GRAPH_MEMO_MB=0), statistics in one streaming pass; peak RSS bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = r'''
import json, os, resource, sys
import psutil, torch
torch.set_num_threads(1)
from meshops.train import train
before = psutil.Process().memory_info().rss
res = train(json.loads(sys.argv[1]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "peak": peak, "steps": res.steps}))
'''


def _dataset(folder: Path, n_cases: int, n_points: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import numpy as np
    import scale

    import meshops

    folder.mkdir()
    for i in range(n_cases):
        m = scale.tet_box(n_points, seed=i)
        m.point_data["p"] = np.sin(3 * m.points[:, 0] + i) * (1 + m.points[:, 1])
        meshops.write(m, folder / f"case{i:03d}.vtu")


def _run(tmp_path: Path, files: list[str], name: str) -> tuple[dict, int]:
    cfg = dict(dataset="folder", dataset_options={"path": files, "inputs": ["u"], "targets": ["p"]},
               model="mgn", model_options={"hidden": 8, "n_blocks": 1}, epochs=1, batch_size=1,
               out=str(tmp_path / f"run_{name}"), cache=str(tmp_path / f"cache_{name}"), progress=False,
               split_fractions=[0.75, 0.25, 0.0])
    env = dict(os.environ, MESHOPS_GRAPH_MEMO_MB="0", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True, env=env,
                       timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    cached = list((tmp_path / f"cache_{name}").glob("*.pt"))
    assert len(cached) == len(files) and out["steps"] == len(files) * 3 // 4
    return out, sum(f.stat().st_size for f in cached)


@pytest.mark.slow
def test_training_streams_a_dataset_bigger_than_the_rss_budget(tmp_path):
    """Peak RSS does not grow with the dataset: 4x the cases (their graphs far above the budget)
    raise the training peak by less than a quarter of the extra graphs' size."""
    _dataset(tmp_path / "ds", n_cases=32, n_points=12_000)
    files = sorted(str(f) for f in (tmp_path / "ds").glob("*.vtu"))
    small, disk_small = _run(tmp_path, files[:8], "small")
    big, disk_big = _run(tmp_path, files, "big")
    budget = (disk_big - disk_small) / 4
    grew = (big["peak"] - big["before"]) - (small["peak"] - small["before"])
    assert grew < budget, (f"32 cases peaked {grew / 2**20:.0f} MB above 8 cases; the 24 extra graphs take "
                           f"{(disk_big - disk_small) / 2**20:.0f} MB on disk")
