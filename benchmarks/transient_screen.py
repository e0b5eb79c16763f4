"""Screen a stepping recipe on validation trajectories only (no test case is read).

``python benchmarks/transient_screen.py runs/cylinder OUT '{"n_val": 3, "globals": ["Re"]}'`` (from the
repository root) trains ``ugraph`` (or ``"model": "mgn"``) on the training split minus ``n_val``
trajectories held out by ``benchmarks/protocol.fixed_split`` (the benchmark's rule), with the
benchmark's recipe updated by the JSON options (``StepConfig`` fields), saves ``OUT/best.pt`` and
prints per validation trajectory the 100-step rollout error against persistence's and the shares of
the p error energy in its spatial mean and in its time-mean field.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import protocol as P  # noqa: E402
import transient as bench  # noqa: E402

from meshops.data import load_dataset  # noqa: E402
from meshops.train.stepping import StepConfig, train_stepper  # noqa: E402
from meshops.train.stepping_eval import rel_l2  # noqa: E402

#: the recipe flags of the stop-34 benchmark command (noise 0.1, the screens' baseline); the stop-35
#: command in datasets/cylinder_flow/README.md adds ``--noise 0.5`` (``'{"noise": 0.5}'`` here)
BENCH_FLAGS = ["--steps", "1500", "--val-every", "100", "--patience", "6", "--val-rollout", "100", "--zero-mean", "p"]


def recipe(opts: dict) -> StepConfig:
    """The benchmark's recipe (``transient.step_config`` under its committed flags, lr 3e-3, width 32)
    with the ``StepConfig`` fields of ``opts`` replaced."""
    a = bench.parse(BENCH_FLAGS)
    cfg = bench.step_config(opts.pop("model", "ugraph"), a, 0, {"lr": 3e-3, "hidden": opts.pop("hidden", 32)})
    return dataclasses.replace(cfg, **opts)


def one_step(st, t) -> tuple[np.ndarray, np.ndarray]:
    """Mean one-step rel L2 per channel of ``st`` on ``t`` (every true state stepped once) and persistence's."""
    X = t.states(["u", "v", "p"])
    g, Xt, H = st.graph(t), torch.from_numpy(X), st.history
    with torch.no_grad():
        one = np.stack([st.step_window(g, Xt[k - H : k + 1]).numpy() for k in range(H, len(X) - 1)])
    return rel_l2(one, X[H + 1 :]).mean(0), rel_l2(X[H:-1], X[H + 1 :]).mean(0)


def report(st, t, n: int = 100) -> None:
    X = t.states(["u", "v", "p"])
    e1, p1 = one_step(st, t)
    print(f"{t.name} one-step model {e1.round(4)} persistence {p1.round(4)} ratio {(p1 / e1).round(2)}")
    if st.zm:
        zm, st.zm = st.zm, []
        print(f"  same weights without the zero-mean hold: one-step {one_step(st, t)[0].round(4)}")
        st.zm = zm
    s = max(st.history, 1)
    R, T = st.rollout(t, n_steps=n, start=s), X[s : n + s + 1]
    rel, pers = rel_l2(R, T), rel_l2(np.broadcast_to(X[s], T.shape), T)
    ep = (R - T)[..., 2]
    level = ep.mean(1, keepdims=True)
    bias = np.broadcast_to(ep.mean(0, keepdims=True), ep.shape)
    e2 = (ep**2).sum()
    print(f"{t.name} rollout 1-{n} model {rel[1:].mean(0).round(3)} persistence {pers[1:].mean(0).round(3)}")
    print(f"  p error energy: spatial mean {(level**2).sum() * ep.shape[1] / e2:.3f}, time-mean field {(bias**2).sum() / e2:.3f}")
    for k in (10, 25, 50, 75, 100):
        print(f"   step {k}: model {rel[k].round(3)} persistence {pers[k].round(3)}")


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    root, out = argv[0], argv[1]
    opts = json.loads(argv[2]) if len(argv) > 2 else {}
    ds = load_dataset("cylinder_flow", root=root, split="train")
    sp = P.fixed_split(len(ds), n_val=int(opts.pop("n_val", 1)), seed=0)
    train, val = [ds[i] for i in sp["train"]], [ds[i] for i in sp["val"]]
    print("train", [t.name for t in train], "val", [t.name for t in val], flush=True)
    st, info = train_stepper(train, recipe(opts), val=val, out=out)
    print(f"best_val {info['best_val']} steps {info['steps_used']} best {info['best_step']} cpu {info['train_cpu_s']:.0f}")
    for t in val:
        report(st, t)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
