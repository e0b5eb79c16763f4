"""Transient benchmark: learned time stepping on cylinder-flow, meshops models against persistence and PhysicsNeMo.

``meshops bench transient --data runs/cylinder [--steps N] [--readme datasets/cylinder_flow/README.md]``
trains every model on the ``train`` split of the cylinder-flow dataset (``datasets/cylinder_flow``,
a folder written by ``meshops datasets generate cylinder-flow``) with the same recipe and budget
(:func:`meshops.train.stepping.train_stepper`: increments, per-channel normalization, input noise,
AdamW with a cosine schedule, ``--steps`` optimizer steps of ``--batch-size`` snapshots), then on
the held-out ``test`` trajectories reports, per model:

* one-step rel L2 of u, v, p (from every fifth true state, mean over those and the trajectories);
* rollout rel L2 from the first snapshot: mean over the first 50 and 100 steps, and over the whole
  trajectory; steps until the channel-mean error passes 1.0 (or the state blows up);
* shedding frequency: the FFT peak of ``v`` at a wake probe (3 diameters behind the first obstacle)
  over the rollout, against the solver's, on the same samples;
* time per step (one forward pass on CPU, batch of one) against OpenFOAM's wall time for the same
  ``snapshot_dt`` (its solver steps per snapshot times its measured seconds per step).

Persistence (copy the last state) is the floor every model must beat. PhysicsNeMo 2.2.2's
``MeshGraphNet`` runs through ``benchmarks/peers.py`` when that loader exists and can load it;
otherwise the table says why it was skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- transient-benchmark:begin -->", "<!-- transient-benchmark:end -->"
MODELS = {
    "mgn": ("mgn", {"hidden": 32, "n_blocks": 6}, {}),
    "ugraph": ("ugraph", {"hidden": 32, "levels": 3, "blocks_per_level": 2}, {"levels": 3}),
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="meshops bench transient", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT / "runs" / "cylinder"), help="generated cylinder-flow folder")
    p.add_argument("--models", default="mgn,ugraph", help="comma-separated subset of " + ",".join(MODELS))
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per model")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--noise", type=float, default=0.02)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--max-test", type=int, default=None, help="test trajectories used (default all)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "transient_results.json"))
    p.add_argument("--checkpoints", default=str(ROOT / "runs" / "bench_transient"))
    p.add_argument("--readme", default=None, help="card to update (between the transient-benchmark markers)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def probe_index(traj: Any, card: dict[str, Any]) -> int:
    """The mesh node nearest to 3 diameters behind the first obstacle's centre."""
    o = card["geometry"]["obstacles"][0]
    target = np.array([o["x"] + 3.0 * card["D"], o["y"]])
    return int(np.argmin(np.linalg.norm(traj.mesh.points[:, :2] - target, axis=1)))


def shedding_frequency(times: np.ndarray, v: np.ndarray) -> float:
    """FFT peak of a probe signal (NaN when the signal is non-finite or flat)."""
    from meshops.data import recipe_module

    spec = recipe_module(ROOT / "datasets" / "cylinder_flow", "strouhal")
    if not np.isfinite(v).all() or np.ptp(v) < 1e-6:
        return float("nan")
    return spec.spectrum_peak(times, v)


def evaluate(step_fn: Any, graph: Any, traj: Any, card: dict[str, Any], fields: list[str],
             one_step_stride: int = 5) -> dict[str, Any]:
    """One-step and rollout errors, stability and shedding frequency of ``step_fn`` on ``traj``."""
    import torch

    from meshops.train.stepping import rel_l2, rollout_errors, stability_steps

    X = traj.states(fields)
    with torch.no_grad():
        ts = np.arange(0, len(X) - 1, one_step_stride)
        one = np.stack([step_fn(graph, torch.from_numpy(X[t])).numpy() for t in ts])
        s = torch.from_numpy(X[0])
        R = [X[0]]
        t0 = time.perf_counter()
        for _ in range(len(X) - 1):
            s = step_fn(graph, s)
            if not torch.isfinite(s).all():
                R += [np.full_like(X[0], np.nan)] * (len(X) - len(R))
                break
            R.append(s.numpy())
        dt_step = (time.perf_counter() - t0) / (len(X) - 1)
    R = np.stack(R)
    e1 = rel_l2(one.astype(np.float64), X[ts + 1].astype(np.float64)).mean(axis=0)
    er = rollout_errors(R, X)
    k = probe_index(traj, card)
    iv = fields.index("v")
    return {"one_step": e1.tolist(), "rollout_50": np.nanmean(er[1:51], axis=0).tolist(),
            "rollout_100": np.nanmean(er[1:101], axis=0).tolist(), "rollout_full": np.nanmean(er[1:], axis=0).tolist(),
            "rollout_curve": np.nanmean(er, axis=1).tolist(), "stable_steps": stability_steps(er[1:].mean(axis=1, keepdims=True)),
            "f_pred": shedding_frequency(traj.times, R[:, k, iv]), "f_true": shedding_frequency(traj.times, X[:, k, iv]),
            "s_per_step": dt_step}


def persistence(graph: Any, s: Any) -> Any:
    return s


def physicsnemo_peer() -> tuple[Any, str]:
    """PhysicsNeMo's MeshGraphNet through benchmarks/peers.py, or None and the reason it is skipped."""
    peers = ROOT / "benchmarks" / "peers.py"
    if not peers.is_file():
        return None, "benchmarks/peers.py (the PhysicsNeMo loader of the scale issue) is not on this branch"
    import importlib.util

    spec = importlib.util.spec_from_file_location("meshops_bench_peers", peers)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    try:
        spec.loader.exec_module(mod)
        loader = getattr(mod, "physicsnemo_meshgraphnet", None)
        if loader is None:
            return None, "benchmarks/peers.py has no physicsnemo_meshgraphnet loader"
        return loader, ""
    except Exception as e:  # noqa: BLE001 - a missing peer is reported, not fatal
        return None, f"PhysicsNeMo could not be loaded: {type(e).__name__}: {e}"


def fmt3(v: list[float]) -> str:
    return " / ".join(f"{x:.4f}" for x in v)


def table(res: dict[str, Any]) -> str:
    lines = ["", "", f"Command: `{res['command']}` ({res['n_train']} training, {res['n_test']} held-out test "
             f"trajectories of {res['snapshots']} snapshots; {res['train_steps']} optimizer steps x batch "
             f"{res['batch_size']} per model; CPU).", "",
             "| model | params | train s | one-step rel L2 u / v / p | rollout 1-50 | rollout 1-100 | full rollout | "
             "stable steps (min) | f_pred / f_solver | s per step |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res["models"].items():
        fr = np.array([x["f_pred"] / x["f_true"] for x in r["cases"]])
        fr_s = "n/a (no shedding)" if not np.isfinite(fr).any() else f"{np.nanmean(fr):.3f} (worst {np.nanmax(np.abs(fr - 1)):.1%})"
        lines.append(f"| {name} | {r.get('n_params', 0)} | {r.get('train_time_s', 0):.0f} | {fmt3(r['one_step'])} | "
                     f"{fmt3(r['rollout_50'])} | {fmt3(r['rollout_100'])} | {fmt3(r['rollout_full'])} | "
                     f"{r['stable_steps']} | {fr_s} | {r['s_per_step']:.4f} |")
    for name, why in res.get("skipped", {}).items():
        lines.append(f"| {name} | skipped: {why} | | | | | | | | |")
    lines += ["", f"OpenFOAM (icoFoam, one core) takes {res['foam_s_per_snapshot']:.3f} s of wall time per snapshot "
              f"interval ({res['foam_steps_per_snapshot']} solver steps); the ratios are in the JSON "
              f"(`{Path(res['out']).name}`).", ""]
    return "\n".join(lines)


def mean_over(cases: list[dict[str, Any]], key: str) -> list[float]:
    return np.mean([c[key] for c in cases], axis=0).tolist()


def main(argv: list[str] | None = None) -> int:
    import torch

    from meshops.atomic import replace_block, write_text_atomic
    from meshops.data import load_dataset
    from meshops.train import stepping as S

    a = parse(argv)
    torch.set_num_threads(1)
    data = Path(a.data)
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: no generated cylinder-flow folder; run `meshops datasets generate "
                                f"cylinder-flow --n 24 --out {data}` first")
    tr_ds = load_dataset("cylinder_flow", root=str(data), split="train")
    train = [tr_ds[i] for i in range(len(tr_ds))]
    fields = ["u", "v", "p"]
    cards = [tr_ds.card(i) for i in range(len(tr_ds))]
    sps = [c["solver"]["wall_s_per_step"] for c in cards]
    nsteps = int(round(cards[0]["solver"]["snapshot_dt"] / cards[0]["solver"]["dt"]))
    res: dict[str, Any] = {"command": "meshops bench transient " + " ".join(argv or sys.argv[1:]),
                           "n_train": len(train), "train_cases": tr_ds.case_names(), "snapshots": train[0].n_steps,
                           "train_steps": a.steps, "batch_size": a.batch_size, "models": {}, "skipped": {},
                           "foam_s_per_snapshot": float(np.median(sps)) * nsteps, "foam_steps_per_snapshot": nsteps,
                           "out": a.out, "channels": fields}
    runs: dict[str, tuple[Any, Any]] = {"persistence": (None, persistence)}
    infos: dict[str, dict[str, Any]] = {}
    for name in a.models.split(","):
        model, mo, gr = MODELS[name]
        cfg = S.StepConfig(fields=fields, model=model, model_options=mo, graph=gr, steps=a.steps,
                           batch_size=a.batch_size, lr=a.lr, noise=a.noise, seed=a.seed)
        st, info = S.train_stepper(train, cfg, out=Path(a.checkpoints) / name, progress=True)
        infos[name] = info
        runs[name] = (st, st.step)
    # the test trajectories are read after training (cases finished meanwhile by the generator count)
    te_ds = load_dataset("cylinder_flow", root=str(data), split="test", max_cases=a.max_test)
    test = [(te_ds[i], te_ds.card(i)) for i in range(len(te_ds))]
    res.update(n_test=len(test), test_cases=te_ds.case_names())
    loader, why = physicsnemo_peer()
    if loader is None:
        res["skipped"]["PhysicsNeMo MeshGraphNet"] = why
        print(f"PhysicsNeMo MeshGraphNet skipped: {why}")
    ref = next(r[0] for r in runs.values() if r[0] is not None)
    for name, (st, fn) in runs.items():
        cases = []
        for traj, card in test:
            g = (st or ref).graph(traj)
            cases.append({"name": traj.name, **evaluate(fn, g, traj, card, fields)})
        r = {k: mean_over(cases, k) for k in ("one_step", "rollout_50", "rollout_100", "rollout_full")}
        r.update(stable_steps=int(min(c["stable_steps"] for c in cases)), cases=cases,
                 s_per_step=float(np.median([c["s_per_step"] for c in cases])))
        if name in infos:
            r.update(n_params=infos[name]["n_params"], train_time_s=infos[name]["train_time_s"])
        r["speedup_vs_openfoam"] = res["foam_s_per_snapshot"] / max(r["s_per_step"], 1e-12)
        res["models"][name] = r
        print(f"{name}: one-step {fmt3(r['one_step'])}, rollout full {fmt3(r['rollout_full'])}, "
              f"stable {r['stable_steps']}")
    write_text_atomic(json.dumps(res, indent=1, default=float), a.out)
    txt = table(res)
    print(txt)
    if a.readme:
        replace_block(a.readme, BEGIN, END, txt, prefix="## Benchmark (meshops bench transient)\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
