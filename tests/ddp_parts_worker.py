"""Worker for tests/test_partition.py: partitioned training of one case across torchrun ranks."""

from __future__ import annotations

import sys

import numpy as np
import torch

from meshops import CellBlock, Mesh, models
from meshops.graph import build
from meshops.graph.partition import partition
from meshops.train.distributed import partitioned_backward_ddp, setup, teardown


def main(out: str) -> None:
    from scipy.spatial import Delaunay

    torch.set_num_threads(1)
    info = setup("cpu")
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 1, (400, 3))
    g = build(Mesh(pts, [CellBlock("tetra", Delaunay(pts).simplices)], dim=3), {"levels": 1})
    torch.manual_seed(0)
    g.x = torch.randn(g.num_nodes, 3)
    target = torch.randn(g.num_nodes, 2)
    model = models.create("mgn", in_channels=3, out_channels=2, hidden=8, n_blocks=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    parts = partition(g, 2, n_parts=4, method="rcb")
    losses = []
    for _ in range(3):
        opt.zero_grad()
        losses.append(partitioned_backward_ddp(model, g, parts, torch.nn.functional.mse_loss, target, info))
        opt.step()
    if info.is_main:
        torch.save({"model": model.state_dict(), "losses": losses}, out)
    teardown(info)


if __name__ == "__main__":
    main(sys.argv[1])
