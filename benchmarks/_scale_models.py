"""The model stages of ``benchmarks/scale.py``: ``mgn`` forward (memory per edge), forward + backward
against PhysicsNeMo's ``MeshGraphNet`` and a PyG ``MessagePassing`` stack, partitioned predict."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from _scale_common import HERE, PeakRSS, _side_by_side, _timed_cpu, tet_box


def _graph(n: int):
    import torch

    from meshops.graph import build

    g = build(tet_box(n), {"levels": 1})
    g.x = torch.randn(g.num_nodes, 3)
    return g


def _concat_forward(model, g):
    """Today's main-branch formula: the edge MLP over the (E, 3H) concatenation (the reference)."""
    import torch

    net = model.net
    h, e = net.node_encoder(g.x), net.edge_encoder(g.edge_attr)
    src, dst = g.edge_index
    for b in net.processor.blocks:
        e = e + b.edge_mlp(torch.cat([e, h[src], h[dst]], -1))
        m = torch.zeros_like(h).index_add_(0, dst, e)
        h = h + b.node_mlp(torch.cat([h, m], -1))
    return net.decoder(h)


def stage_forward(n: int, a: argparse.Namespace) -> dict[str, Any]:
    import torch

    from meshops import models

    g = _graph(n)
    m = models.create("mgn", in_channels=3, out_channels=2, hidden=a.hidden, n_blocks=a.blocks).eval()
    fns = {"meshops": lambda: m(g)}
    if n <= a.concat_max:
        fns["concat (main)"] = lambda: _concat_forward(m, g)
    with torch.no_grad():
        out = _side_by_side(fns, 1)
    out["edges"] = int(g.edge_index.shape[1])
    return out


def _pyg_stack(hidden: int, blocks: int):
    import torch
    from torch import nn
    from torch_geometric.nn import MessagePassing

    from meshops.nn.mlp import MLP

    class Block(MessagePassing):
        def __init__(self) -> None:
            super().__init__(aggr="sum")
            self.edge_mlp = MLP(3 * hidden, hidden, hidden)
            self.node_mlp = MLP(2 * hidden, hidden, hidden)

        def forward(self, x, e, ei):
            e = e + self.edge_mlp(torch.cat([e, x[ei[0]], x[ei[1]]], -1))
            return x + self.node_mlp(torch.cat([x, self.propagate(ei, e=e, size=(x.shape[0], x.shape[0]))], -1)), e

        def message(self, e):
            return e

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ne, self.ee = MLP(3, hidden, hidden), MLP(4, hidden, hidden)
            self.blocks = nn.ModuleList(Block() for _ in range(blocks))
            self.dec = MLP(hidden, 2, hidden, layer_norm=False)

        def forward(self, g):
            x, e = self.ne(g.x), self.ee(g.edge_attr)
            for b in self.blocks:
                x, e = b(x, e, g.edge_index)
            return self.dec(x)

    return Net()


def _interleaved(fns: dict[str, Any], repeat: int) -> dict[str, Any]:
    """Each implementation once per round, ``repeat`` rounds after a warm-up: CPU time (this process's
    user + system time: robust to other processes on a shared machine) median, min and max, wall
    median, peak RSS, and the per-round ratio of every peer to meshops."""
    import statistics

    for f in fns.values():
        f()
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    wall: dict[str, list[float]] = {k: [] for k in fns}
    mb: dict[str, float] = dict.fromkeys(fns, 0.0)
    for _ in range(repeat):
        for k, f in fns.items():
            with PeakRSS() as m:
                t, c = time.perf_counter(), time.process_time()
                f()
                cpu[k].append(time.process_time() - c)
                wall[k].append(time.perf_counter() - t)
            mb[k] = max(mb[k], m.mb)
    out: dict[str, Any] = {k: [statistics.median(cpu[k]), mb[k]] for k in fns}
    out["spread"] = {k: {"cpu_min": min(cpu[k]), "cpu_max": max(cpu[k]), "wall_median": statistics.median(wall[k])}
                     for k in fns}
    out["ratios"] = {k: [b / a for a, b in zip(cpu["meshops"], cpu[k], strict=True)] for k in fns if k != "meshops"}
    return out


def stage_fwdbwd(n: int, a: argparse.Namespace) -> dict[str, Any]:
    from meshops import models

    g = _graph(n)
    nparams = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    ours = models.create("mgn", in_channels=3, out_channels=2, hidden=a.hidden, n_blocks=a.blocks)

    def step(mod, call):
        mod.zero_grad()
        call().pow(2).mean().backward()

    out: dict[str, Any] = {"params": nparams(ours), "edges": int(g.edge_index.shape[1]), "time": "cpu median"}
    fns: dict[str, Any] = {"meshops": lambda: step(ours, lambda: ours(g))}
    if a.checkpointing:
        ck = models.create("mgn", in_channels=3, out_channels=2, hidden=a.hidden, n_blocks=a.blocks, checkpoint=True)
        fns["meshops checkpoint"] = lambda: step(ck, lambda: ck(g))
    pyg = _pyg_stack(a.hidden, a.blocks)
    assert nparams(pyg) == out["params"], (nparams(pyg), out["params"])
    fns["PyG MessagePassing"] = lambda: step(pyg, lambda: pyg(g))
    sys.path.insert(0, str(HERE))
    import peers

    try:
        for trick in (True, False):
            pn = peers.physicsnemo_mgn(3, 4, 2, a.hidden, a.blocks, concat_trick=trick)
            assert nparams(pn) == out["params"], (nparams(pn), out["params"])
            fns[f"PhysicsNeMo trick={trick}"] = lambda pn=pn: step(pn, lambda: pn(g.x, g.edge_attr, g))
        out["stand-ins"] = peers.stubbed_modules()
    except peers.PeerUnavailable as exc:
        out["skipped"] = f"PhysicsNeMo: {exc}"
    out.update(_interleaved(fns, a.repeat))
    return out


def stage_predict(n: int, a: argparse.Namespace) -> dict[str, Any]:
    import torch

    from meshops import models
    from meshops.graph.partition import partition, partitioned_forward

    g = _graph(n)
    m = models.create("mgn", in_channels=3, out_channels=2, hidden=a.hidden, n_blocks=a.blocks).eval()
    per = max(1000, n // a.parts)
    with torch.no_grad():
        t, mb, cpu = _timed_cpu(lambda: partitioned_forward(m, g, partition(g, m.hops, max_nodes_per_part=per)))
    return {"meshops": [t, mb], "cpu": {"meshops": cpu}, "parts": -(-n // per)}


