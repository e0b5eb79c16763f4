"""Score saved ``meshops bench transient`` checkpoints of one model as an ensemble, beside each member.

``python benchmarks/transient_ensemble.py runs/cylinder runs/pnoise02_ckpt ugraph val OUT.json`` (from the
repository root; ``shipped`` in place of the folder: the shipped subset) loads ``CKPT/ugraph_seed{0,1,2}/best.pt``,
builds their :class:`~meshops.train.stepping_ensemble.StepEnsemble` and scores it, every member and persistence with
the benchmark's :func:`transient.evaluate` on the validation trajectories (``val``: the benchmark's
``fixed_split(n_val=3)`` of the training split) or the held-out ones (``test``). Prints per case and the
case means (one-step ratio to persistence, 100-step rollout, frequency ratio) and writes them to OUT.
``CKPT`` may be several folders joined by commas (``runs/u3_ckpt,runs/pnoise02_ckpt``): the ensemble is
then every seed of every folder (members named by folder and seed). MODEL is the bench's name (``ugraph``,
``mgn``, or ``physicsnemo``, whose checkpoints the bench writes as ``kind: stepping-peer``); one checkpoint alone
is scored without an ensemble row. ``--ensemble-only`` scores the ensemble and persistence without its members
(already scored, e.g. on validation by an earlier call).

``... OUT.json runs/diagpois_ckpt/ugraph_seed0/best.pt 0.03,0.1,0.3`` adds a blend: that checkpoint
(e.g. a model that predicts p from u, v) as one more member with weight ``alpha`` on p (and 0 on the
other channels), the seeds sharing ``1 - alpha``, for each ``alpha`` of the list.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import protocol as P  # noqa: E402
import transient as bench  # noqa: E402

from meshops.atomic import write_text_atomic  # noqa: E402
from meshops.data import load_dataset  # noqa: E402
from meshops.train.stepping_ensemble import StepEnsemble  # noqa: E402

KEYS = ("one_step", "rollout_100", "f_pred", "f_true", "stable_steps")


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    only = "--ensemble-only" in argv
    argv = [a for a in argv if a != "--ensemble-only"]
    root, ck, model, split, out = argv[:5]
    paths = [p for folder in ck.split(",") for p in sorted(Path(folder).glob(f"{model}_seed*/best.pt"))]
    if not paths:
        raise SystemExit(f"{ck}: no {model}_seed*/best.pt")
    members = [bench.load_any_stepper(p) for p in paths]
    ds = load_dataset("cylinder_flow", root=None if root == "shipped" else root, split="train" if split == "val" else "test")
    idx = P.fixed_split(len(ds), n_val=3, seed=0)["val"] if split == "val" else range(len(ds))
    named = [(f"{q.parent.parent.name}/{q.parent.name}", m) for q, m in zip(paths, members, strict=True)]
    ens = [("ensemble", StepEnsemble(members).eval())] if len(members) > 1 else []  # one checkpoint: scored alone
    fns = [*ens, *([] if only and ens else named), ("persistence", None)]
    if len(argv) > 6:
        extra, ip = bench.load_any_stepper(argv[5]), list(members[0].stats["channels"]).index("p")
        for a in (float(x) for x in argv[6].split(",")):
            w = np.full((len(members) + 1, 3), 1.0 / len(members))
            w[-1] = 0.0
            w[:-1, ip], w[-1, ip] = (1 - a) / len(members), a
            fns.append((f"blend p {a:g}", StepEnsemble(members + [extra], weights=w.tolist()).eval()))
    res: dict[str, dict] = {n: {} for n, _ in fns}
    for i in idx:
        t, c = ds[i], ds.card(i)
        for name, m in fns:
            fn, g = (bench.persistence, None) if m is None else (m.step_window, m.graph(t))
            r = bench.evaluate(fn, g, t, c, ["u", "v", "p"], 1, 1)
            res[name][t.name] = {k: r[k] for k in KEYS}
    pers = np.mean([r["one_step"] for r in res["persistence"].values()], axis=0)
    for name, cases in res.items():
        e = np.mean([r["one_step"] for r in cases.values()], axis=0)
        r100 = np.mean([r["rollout_100"] for r in cases.values()], axis=0)
        fr = [r["f_pred"] / r["f_true"] for r in cases.values()]
        score = float(np.mean([np.mean(r["rollout_100"]) for r in cases.values()]))
        cases["mean"] = {"one_step": e.tolist(), "ratio": (pers / e).tolist(), "rollout_100": r100.tolist(),
                         "f_ratio": fr, "score": score}
        print(f"{name:24s} one-step ratio {np.round(pers / e, 2)} rollout 1-100 {np.round(r100, 3)} "
              f"f_pred/f_solver {np.round(fr, 3)} score (mean 100-step) {score:.4f}")
    write_text_atomic(json.dumps({"checkpoints": ck, "model": model, "split": split, "results": res}, indent=1,
                                 default=float), out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
