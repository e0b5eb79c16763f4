"""Where a step model's one-step p error comes from, on the validation trajectories only (no test case is read).

``python benchmarks/transient_p_error.py runs/cylinder CHECKPOINT [--n-val 3]`` (from the repository root)
prints per validation trajectory (the benchmark's ``fixed_split``) the mean one-step p rel L2 of the model
with the zero-mean hold, without it, with the true mean increment over the free nodes put in, the hold's own
floor (the true increment with its mean replaced by the training mean) and persistence; then the shares of
the model's and persistence's p error energy (and of the nodes) by distance to the obstacle, in D.
"""

from __future__ import annotations

import argparse
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parent))
import protocol as P  # noqa: E402

from meshops.data import load_dataset  # noqa: E402
from meshops.data.trajectory import node_type_onehot  # noqa: E402
from meshops.train.stepping import load_stepper, rel_l2  # noqa: E402

BINS = (0.0, 0.25, 0.5, 1.0, 2.0, 5.0, np.inf)  # distance to the obstacle, in D


def level_errors(st, t, stride: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean one-step p errors [hold, no hold, true mean, hold floor, persistence] and the squared p errors
    per node of the model (as it steps) and of persistence, summed over every ``stride``-th step."""
    X = torch.from_numpy(t.states(["u", "v", "p"]))
    g, H = st.graph(t), st.history
    fixed = g.fixed
    free = (~fixed[:, 2]).to(X.dtype)

    def mean(v: torch.Tensor) -> torch.Tensor:  # over the free (non-Dirichlet) p nodes
        return (v * free).sum() / free.sum()

    rows, e_model, e_pers = [], torch.zeros(X.shape[1], dtype=torch.float64), torch.zeros(X.shape[1], dtype=torch.float64)
    with torch.no_grad():
        for k in range(max(H, 1), len(X) - 1, stride):
            s, nxt = X[k], X[k + 1]
            d = torch.where(fixed, torch.zeros_like(s), st.delta(g, s, X[k - H : k] if H else None))[:, 2]
            dt = nxt[:, 2] - s[:, 2]
            cands = torch.stack([d - (mean(d) - st.d_mean[2]) * free, d, d - (mean(d) - mean(dt)) * free,
                                 dt - (mean(dt) - st.d_mean[2]) * free, torch.zeros_like(d)])
            rows.append(rel_l2((s[:, 2] + cands)[..., None].numpy(), nxt[None, :, 2:].numpy())[:, 0])
            e_model += ((s[:, 2] + cands[0] - nxt[:, 2]) ** 2).double()
            e_pers += (dt**2).double()
    return np.mean(rows, axis=0), e_model.numpy(), e_pers.numpy()


def shares(values: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Share of ``values``' sum in each distance bin of :data:`BINS`."""
    return np.array([values[(dist >= a) & (dist < b)].sum() for a, b in pairwise(BINS)]) / values.sum()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data"), ap.add_argument("checkpoint")
    ap.add_argument("--n-val", type=int, default=3)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    ds = load_dataset("cylinder_flow", root=a.data, split="train")
    st = load_stepper(a.checkpoint)
    for i in P.fixed_split(len(ds), n_val=a.n_val, seed=0)["val"]:
        t = ds[i]
        r, e_model, e_pers = level_errors(st, t)
        print(f"{t.name} one-step p: hold {r[0]:.4f}, no hold {r[1]:.4f}, true mean {r[2]:.4f}, hold floor {r[3]:.4f}, "
              f"persistence {r[4]:.4f} (persistence / these: {' / '.join(f'{r[4] / x:.2f}' for x in r[:4])})")
        oh, names = node_type_onehot(t.mesh)
        pts = np.asarray(t.mesh.points)[:, :2]
        dist = cKDTree(pts[oh[:, names.index("obstacle")] > 0]).query(pts)[0]
        print(f"  share by distance to the obstacle {BINS[1:-1]} D: model {shares(e_model, dist).round(3)}, "
              f"persistence {shares(e_pers, dist).round(3)}, nodes {shares(np.ones(len(pts)), dist).round(3)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
