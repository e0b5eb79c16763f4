"""Train a stock PyTorch Geometric model (``GraphSAGE``) on a meshops dataset.

meshops makes the graphs (``meshops.graph.build``), PyG does the rest: ``graph.to_pyg()`` is a
plain ``torch_geometric.data.Data``, so PyG's ``DataLoader`` and any PyG model take it as is.
The dataset is ``examples/harmonic_dataset.py`` (harmonic extension of boundary data on random 2D
meshes); node features are the boundary data ``g``, a boundary flag and the position.

    python examples/pyg_graphsage.py --cases 32 --epochs 60

For whole hierarchies use ``graph.to_pyg_hetero()`` (levels as node types) with
``torch_geometric.nn.to_hetero``; see :mod:`meshops.graph.pyg` for the batching recipe.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from pathlib import Path

import torch
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GraphSAGE

from meshops.graph import build

log = logging.getLogger("pyg_graphsage")
HERE = Path(__file__).resolve().parent


def load_harmonic(n: int, seed: int = 0):
    """The harmonic2d dataset class from the example file next to this one."""
    spec = importlib.util.spec_from_file_location("harmonic_dataset", HERE / "harmonic_dataset.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod.Harmonic2D(n=n, n_interior=60, n_side=8, degree=1, seed=seed)


def make_graphs(n: int, seed: int = 0) -> list:
    """One PyG ``Data`` per case: x = [g, on_boundary, x, y], y = u."""
    out = []
    for case in load_harmonic(n, seed):
        g = build(case.mesh, {"node_fields": case.inputs})
        d = g.to_pyg()
        wall = (d.node_type > 0).float()[:, None]
        d.x = torch.cat([d.x, wall, d.pos[:, :2]], dim=1)
        d.y = torch.from_numpy(case.stack(case.targets))
        out.append(d)
    return out


def train(cases: int = 32, epochs: int = 60, hidden: int = 64, seed: int = 0, lr: float = 3e-3) -> dict[str, float]:
    """Train on ``cases`` graphs, test on 8 others; returns the first/last training loss and the test MSE."""
    torch.manual_seed(seed)
    train_set, test_set = make_graphs(cases, seed), make_graphs(8, seed + 1000)
    model = GraphSAGE(in_channels=train_set[0].num_node_features, hidden_channels=hidden, num_layers=4,
                      out_channels=1, act="gelu")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(train_set, batch_size=8, shuffle=True)
    history = []
    for epoch in range(epochs):
        total = 0.0
        for batch in loader:
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(batch.x, batch.edge_index), batch.y)
            loss.backward()
            opt.step()
            total += float(loss) * batch.num_graphs
        history.append(total / len(train_set))
        log.info("epoch %d: train mse %.4g", epoch, history[-1])
    model.eval()
    with torch.no_grad():
        b = next(iter(DataLoader(test_set, batch_size=len(test_set))))
        test = float(torch.nn.functional.mse_loss(model(b.x, b.edge_index), b.y))
        var = float(b.y.var())
    return {"first": history[0], "last": history[-1], "test_mse": test, "test_var": var}


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--hidden", type=int, default=64)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    r = train(args.cases, args.epochs, args.hidden)
    log.info("train mse %.4g -> %.4g; test mse %.4g (target variance %.4g)", r["first"], r["last"],
             r["test_mse"], r["test_var"])
    return r


if __name__ == "__main__":
    main()
