"""Transient benchmark: learned time stepping on cylinder-flow, meshops models against PhysicsNeMo and baselines.

``meshops bench transient --data runs/cylinder [--steps N] [--patience P] [--lrs 1e-3,3e-3] [--seeds 0,1,2]
[--readme datasets/cylinder_flow/README.md]`` trains every model on the ``train`` split of the
cylinder-flow dataset (``datasets/cylinder_flow``, a folder written by ``meshops datasets generate
cylinder-flow``; ``--data shipped``: the shipped subset) with one recipe
(:func:`meshops.train.stepping.train_stepper`: the last ``--history`` increments as inputs, the
correction to linear extrapolation as the per-channel normalized target, input noise relative to
the increments, AdamW with a cosine schedule over at most ``--steps`` optimizer steps of
``--batch-size`` snapshots), under the shared protocol (``benchmarks/protocol.py``): one
training-split trajectory (``--n-val``) is held out for validation (:func:`protocol.fixed_split`); its error,
measured every ``--val-every`` steps, picks the kept weights and stops a run after ``--patience``
validations without a new best; every candidate of the search (``--lrs`` x ``--widths``) is trained
with the first seed and the one with the lowest validation score is kept and trained with the
other seeds. Test scores are computed only for the kept runs. The held-out ``test`` trajectories
then give, per model (mean and spread over seeds):

* one-step rel L2 of u, v, p (from every fifth true state, mean over those and the trajectories)
  and its ratio to persistence's;
* rollout rel L2 from the first state every model can start from: mean over the first 50 and 100
  steps and over the whole trajectory; steps until the channel-mean error passes 1.0 (or blows up);
* shedding frequency: the FFT peak of ``v`` at a wake probe (3 diameters behind the first obstacle)
  over the rollout, against the solver's on the same samples;
* time per step (one forward pass on CPU, batch of one) against OpenFOAM's wall time for the same
  ``snapshot_dt`` (its solver steps per snapshot times its measured seconds per step).

``--extra-train DIR`` adds the train-split cases of a second generated folder to the training set (the
validation and test trajectories stay those of ``--data``; a case name in both is refused).

With ``--ensemble`` each model's seed runs are also scored as one model, the mean of their next states
(:class:`meshops.train.stepping_ensemble.StepEnsemble`), with its own validation score.

Baselines: persistence (copy the last state) and linear extrapolation (``2 x_t - x_{t-1}``: what a
history model outputs before training). PhysicsNeMo 2.2.2's ``MeshGraphNet`` (through
``benchmarks/peers.py``, with the width, depth, activation and aggregation of meshops ``mgn``, so
the same parameter count) is trained by the same recipe on the same inputs; when it cannot be
loaded the table says why.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- transient-benchmark:begin -->", "<!-- transient-benchmark:end -->"
PEER = "PhysicsNeMo MeshGraphNet"


def model_specs(hidden: int, blocks: int) -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    """name -> (registry model, model options, graph options); ``physicsnemo`` is built by peers.py."""
    return {"mgn": ("mgn", {"hidden": hidden, "n_blocks": blocks}, {}),
            "ugraph": ("ugraph", {"hidden": hidden, "levels": 3, "blocks_per_level": max(1, blocks // 3)}, {"levels": 3}),
            "physicsnemo": ("physicsnemo", {"hidden": hidden, "n_blocks": blocks}, {})}


def _noise_arg(text: str) -> float | dict[str, float]:
    """``--noise``: one number, or ``channel=value`` pairs separated by commas."""
    try:
        if "=" not in text:
            return float(text)
        return {k.strip(): float(v) for k, v in (item.split("=", 1) for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"--noise: expected a number or u=0.5,v=0.5,p=0, got {text!r}") from None


def _noises_arg(text: str) -> list[float | dict[str, float]]:
    """``--noises``: ``--noise`` values separated by semicolons."""
    return [_noise_arg(t) for t in text.split(";") if t.strip()]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="meshops bench transient", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT / "runs" / "cylinder"),
                   help="generated cylinder-flow folder, or 'shipped' for the shipped subset (tests)")
    p.add_argument("--extra-train", default=None,
                   help="another generated cylinder-flow folder whose train-split cases are added to the training set "
                        "(validation and test stay those of --data)")
    p.add_argument("--models", default="mgn,ugraph,physicsnemo", help="comma-separated subset of mgn, ugraph, physicsnemo")
    p.add_argument("--steps", type=int, default=300, help="most optimizer steps per model and seed (the budget)")
    p.add_argument("--patience", type=int, default=0,
                   help="early stopping: validations without a new best before a run stops (0: train all --steps)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--blocks", type=int, default=6, help="message-passing blocks (ugraph: blocks / 3 per level)")
    p.add_argument("--history", type=int, default=1, help="past increments given to the models")
    p.add_argument("--unroll", type=int, default=2, help="push-forward: the loss step's input is the model's own K-1 step prediction")
    p.add_argument("--noise", type=_noise_arg, default=0.1,
                   help="input noise in std of each channel (of --noise-ref): one number, or per channel as u=0.5,v=0.5,p=0")
    p.add_argument("--noises", type=_noises_arg, default=None,
                   help="semicolon-separated input-noise candidates of the validation search, each written like "
                        "--noise (e.g. '0.5;u=0.5,v=0.5,p=0.2'); default: --noise alone, not searched")
    p.add_argument("--noise-ref", default="increment", choices=["state", "increment"])
    p.add_argument("--lrs", default="2e-3", help="comma-separated learning rates of the validation search")
    p.add_argument("--widths", default="32", help="comma-separated hidden widths of the validation search")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--n-val", type=int, default=1, help="training-split trajectories held out for validation")
    p.add_argument("--val-every", type=int, default=50)
    p.add_argument("--val-rollout", type=int, default=0,
                   help="weights chosen on the validation error over the first N rollout steps (0: one-step error)")
    p.add_argument("--diagnosed", default="", help="comma-separated channels predicted directly, not read as inputs (e.g. p)")
    p.add_argument("--zero-mean", default="", help="comma-separated channels whose increment keeps the training mean over the free nodes (e.g. p)")
    p.add_argument("--poisson", default="", help="comma-separated channels whose output adds the P1 Poisson solution of a "
                   "predicted source (e.g. p; Dirichlet where the channel is fixed)")
    p.add_argument("--globals", default="", help="comma-separated case parameters given to the models (e.g. Re)")
    p.add_argument("--ensemble", action="store_true",
                   help="also score every model's seeds as one ensemble (the mean of their next states)")
    p.add_argument("--checkpoints", default=None, help="folder for each trained model's best.pt (NAME_seedS/)")
    p.add_argument("--jobs", type=int, default=1, help="training runs at a time (worker processes)")
    p.add_argument("--max-test", type=int, default=None, help="test trajectories used (default all)")
    p.add_argument("--out", default=str(HERE / "transient_results.json"))
    p.add_argument("--readme", default=None, help="card to update (between the transient-benchmark markers)")
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


def _rollout(step_fn: Any, graph: Any, X: np.ndarray, start: int, H: int) -> tuple[np.ndarray, float]:
    import torch

    win = torch.from_numpy(X[start - H : start + 1])
    R = [X[start]]
    t0 = time.process_time()  # CPU time of this (one-thread) process: the shared machine's load does not count
    for _ in range(len(X) - 1 - start):
        s = step_fn(graph, win)
        if not torch.isfinite(s).all():
            R += [np.full_like(X[0], np.nan)] * (len(X) - start - len(R))
            break
        R.append(s.numpy())
        win = torch.cat([win[1:], s[None]])
    return np.stack(R), (time.process_time() - t0) / max(len(X) - 1 - start, 1)


def evaluate(step_fn: Any, graph: Any, traj: Any, card: dict[str, Any], fields: list[str], start: int, H: int,
             one_step_stride: int = 5) -> dict[str, Any]:
    """One-step and rollout errors, stability and shedding frequency of ``step_fn(graph, window)`` on
    ``traj``; every model starts at state ``start`` (its window holds the ``H`` states before)."""
    import torch

    from meshops.train.stepping import rel_l2, rollout_errors, stability_steps
    from meshops.train.stepping_eval import steps_below

    X = traj.states(fields)
    Xt = torch.from_numpy(X)
    with torch.no_grad():
        ts = np.arange(start, len(X) - 1, one_step_stride)
        one = np.stack([step_fn(graph, Xt[t - H : t + 1]).numpy() for t in ts])
        R, dt_step = _rollout(step_fn, graph, X, start, H)
    e1 = rel_l2(one.astype(np.float64), X[ts + 1].astype(np.float64)).mean(axis=0)
    er = rollout_errors(R, X[start:])
    pers = rollout_errors(np.broadcast_to(X[start], X[start:].shape), X[start:])
    k = probe_index(traj, card)
    iv = fields.index("v")
    tt = traj.times[start:]
    # plain means: a rollout that blew up within a horizon has no error over it (NaN), not the mean of the steps before
    return {"one_step": e1.tolist(), "rollout_50": er[1:51].mean(axis=0).tolist(),
            "rollout_100": er[1:101].mean(axis=0).tolist(), "rollout_full": er[1:].mean(axis=0).tolist(),
            "rollout_curve": np.nanmean(er, axis=1).tolist(), "stable_steps": stability_steps(er[1:].mean(axis=1, keepdims=True)),
            "below_persistence": steps_below(er, pers),
            "f_pred": shedding_frequency(tt, R[:, k, iv]), "f_true": shedding_frequency(tt, X[start:, k, iv]),
            "s_per_step": dt_step}


def persistence(graph: Any, win: Any) -> Any:
    return win[-1]


def extrapolation(graph: Any, win: Any) -> Any:
    """Linear extrapolation ``2 x_t - x_{t-1}``, Dirichlet entries held like the models hold them."""
    import torch

    nxt = 2 * win[-1] - win[-2]
    return torch.where(graph.fixed, win[-1], nxt)


class PeerNet:
    """Adapter: PhysicsNeMo's MeshGraphNet called on a meshops graph (``g.x``, ``g.edge_attr``, edges)."""

    def __new__(cls, net: Any) -> Any:
        import torch

        class _Peer(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, g: Any) -> Any:
                return self.inner(g.x, g.edge_attr, g)

        return _Peer(net)


def load_peers() -> tuple[Any, str]:
    """benchmarks/peers.py as a module, or None and the reason PhysicsNeMo is skipped."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    try:
        import peers

        peers.physicsnemo_meshgraphnet()
        return peers, ""
    except Exception as e:  # noqa: BLE001 - a missing peer is reported, not fatal
        return None, f"{type(e).__name__}: {e}"


def fmt3(v: list[float]) -> str:
    return " / ".join(f"{x:.4f}" for x in v)


def step_config(name: str, a: argparse.Namespace, seed: int, cand: dict[str, Any]) -> Any:
    """The recipe of one run: the shared settings of ``a`` with the candidate's ``lr``, ``hidden`` and, when
    the noise is searched, ``noise``."""
    from meshops.train import stepping as S

    model, mo, gr = model_specs(int(cand["hidden"]), a.blocks)[name]
    return S.StepConfig(fields=["u", "v", "p"], model=model, model_options=mo, graph=gr, steps=a.steps,
                        batch_size=a.batch_size, lr=float(cand["lr"]), noise=cand.get("noise", a.noise), noise_ref=a.noise_ref,
                        history=a.history, seed=seed, val_every=a.val_every, unroll=a.unroll,
                        val_rollout=a.val_rollout, patience=a.patience,
                        globals=_names(a.globals), diagnosed=_names(a.diagnosed),
                        zero_mean=_names(a.zero_mean), poisson=_names(a.poisson))


def _names(arg: str) -> list[str]:
    return [c for c in arg.split(",") if c]


def peer_net(peers: Any, cfg: Any, stats: dict[str, Any], a: argparse.Namespace, seed: int) -> Any:
    """PhysicsNeMo's MeshGraphNet for the stepping inputs (state, history increments, node type, globals)."""
    import torch

    from meshops.train import stepping as S

    torch.manual_seed(seed)
    C = len(stats["x_mean"]) + len(cfg.poisson)  # the same Poisson source outputs as ours
    hidden = int(cfg.model_options["hidden"])
    return PeerNet(peers.physicsnemo_mgn(S.in_channels(cfg, stats), int(stats["dim"]) + 1, C, hidden, a.blocks))


def train_model(name: str, train: list[Any], val: list[Any], a: argparse.Namespace, seed: int,
                peers: Any, cand: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Train one model (``name`` of :func:`model_specs`) with the shared recipe; return the stepper and info."""
    from meshops.train import stepping as S

    cfg = step_config(name, a, seed, cand)
    net = peer_net(peers, cfg, S.fit_stats(train, cfg), a, seed) if name == "physicsnemo" else None
    return S.train_stepper(train, cfg, progress=a.jobs <= 1, val=val, model=net)


_SHARED: dict[str, Any] = {}  # the parent's train / val trajectories, inherited by forked workers
Job = tuple[str, int, int]  # (model, candidate index, seed)


def _train_job(job: Job) -> tuple[dict[str, Any], dict[str, Any]]:
    """One training run in a worker process: the weights (CPU tensors) and the info."""
    import torch

    torch.set_num_threads(1)
    name, ci, seed = job
    a, train, val = _SHARED["a"], _SHARED["train"], _SHARED["val"]
    peers = load_peers()[0] if name == "physicsnemo" else None
    st, info = train_model(name, train, val, a, seed, peers, _SHARED["cands"][name][ci])
    print(f"  {name} candidate {ci} seed {seed}: val {info['best_val']}, {info['steps_used']} steps "
          f"(best {info['best_step']}), {info['train_cpu_s']:.0f} CPU s", flush=True)
    return {k: v.detach().cpu() for k, v in st.model.state_dict().items()}, info


def train_jobs(jobs: list[Job], a: argparse.Namespace, train: list[Any], val: list[Any], peers: Any,
               cands: dict[str, list[dict[str, Any]]]) -> dict[Job, tuple[Any, dict[str, Any]]]:
    """Every run of ``jobs``, ``--jobs`` at a time in forked worker processes; steppers rebuilt here."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from meshops.train import stepping as S

    _SHARED.update(a=a, train=train, val=val, cands=cands)
    if a.jobs <= 1:
        done = [_train_job(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=a.jobs, mp_context=mp.get_context("fork")) as ex:
            done = list(ex.map(_train_job, jobs))
    out = {}
    for (n, ci, s), (state, info) in zip(jobs, done, strict=True):
        cfg = step_config(n, a, s, cands[n][ci])
        stats = S.fit_stats(train, cfg)
        net = peer_net(peers, cfg, stats, a, s) if n == "physicsnemo" else S.build_model(cfg, stats)
        net.load_state_dict(state)
        out[(n, ci, s)] = (S.Stepper(net, cfg, stats).eval(), info)
    return out


def search_and_train(names: list[str], seeds: list[int], a: argparse.Namespace, train: list[Any], val: list[Any],
                     peers: Any) -> tuple[dict[str, list[tuple[Any, dict[str, Any]]]], dict[str, Any]]:
    """The protocol's two rounds: every candidate of every model with ``seeds[0]`` (the validation
    search), then the kept candidate with the other seeds. Returns the kept runs per model (seed
    order) and the search record (candidates, their validation scores, the kept index)."""
    import protocol as P

    lrs = [float(x) for x in _names(a.lrs)]
    widths = [int(x) for x in _names(a.widths)]
    grid = P.candidates(lrs, widths, width_key="hidden")
    if a.noises:
        grid = [{**c, "noise": nz} for c in grid for nz in a.noises]
    cands = {n: [dict(c) for c in grid] for n in names}
    s0 = seeds[0]
    first = train_jobs([(n, ci, s0) for n in names for ci in range(len(cands[n]))], a, train, val, peers, cands)
    score = {j: r[1]["best_val"] for j, r in first.items()}
    kept = {n: P.best_candidate([score[(n, ci, s0)] for ci in range(len(cands[n]))], cands[n]) for n in names}
    for n in names:
        print(f"{n}: kept candidate {cands[n][kept[n]]} on validation ({score[(n, kept[n], s0)]})", flush=True)
    rest = train_jobs([(n, kept[n], s) for n in names for s in seeds[1:]], a, train, val, peers, cands)
    runs = {n: [first[(n, kept[n], s0)]] + [rest[(n, kept[n], s)] for s in seeds[1:]] for n in names}
    record = {n: {"candidates": cands[n], "kept": kept[n],
                  "search": [{"config": c, "val": score[(n, ci, s0)], "epochs_used": first[(n, ci, s0)][1]["steps_used"],
                              "best_epoch": first[(n, ci, s0)][1]["best_step"]} for ci, c in enumerate(cands[n])]}
              for n in names}
    return runs, record


def ensemble(runs: list[tuple[Any, dict[str, Any]]], val: list[Any], a: argparse.Namespace) -> tuple[list[Any], list[dict[str, Any]]]:
    """The seeds of one model as one :class:`StepEnsemble` (its step function, and one info: the members'
    summed budget and parameters, its own validation score by the search's metric)."""
    from meshops.train.stepping import one_step_error, rollout_score
    from meshops.train.stepping_ensemble import StepEnsemble

    ens = StepEnsemble([st for st, _ in runs]).eval()
    infos = [i for _, i in runs]
    score = rollout_score(ens, val, a.val_rollout) if a.val_rollout else one_step_error(ens, val)
    info = {"best_val": score, "steps_used": sum(i["steps_used"] for i in infos), "best_step": "+".join(
        str(i["best_step"]) for i in infos), "n_params": sum(i["n_params"] for i in infos),
            **{k: sum(i[k] for i in infos) for k in ("train_time_s", "train_cpu_s")}}
    return [(ens, ens.step_window)], [info]


def save_checkpoints(trained: dict[str, list[tuple[Any, dict[str, Any]]]], seeds: list[int], root: Path,
                     blocks: int) -> None:
    """``root/NAME_seedS/best.pt`` for every trained model: a meshops model's is a ``kind: stepping`` checkpoint
    (``meshops rollout`` reads it); the peer's network is not a registry model, so its checkpoint is ``kind:
    stepping-peer`` (the library refuses it by name; :func:`load_any_stepper` reads both)."""
    from dataclasses import asdict

    from meshops.train.checkpoint import save_checkpoint
    from meshops.train.stepping import save_stepper

    for name, runs in trained.items():
        for s, (st, info) in zip(seeds, runs, strict=True):
            path = root / f"{name}_seed{s}" / "best.pt"
            if name == "physicsnemo":
                cfg = {"kind": "stepping-peer", "peer": name, "blocks": blocks, "step": asdict(st.cfg), **info}
                save_checkpoint(path, model_state=st.model.state_dict(), config=cfg, normalization=st.stats)
            else:
                save_stepper(st, path, extra_config=info)


def load_any_stepper(path: str | Path) -> Any:
    """A step model from :func:`save_checkpoints`: ours through the library, the peer's rebuilt by ``peers.py``."""
    from types import SimpleNamespace

    from meshops.train import stepping as S
    from meshops.train.checkpoint import load_checkpoint

    ck = load_checkpoint(path)
    c = ck["config"]
    if c.get("kind") != "stepping-peer":
        return S.stepper_from_checkpoint(ck, path).eval()
    peers, why = load_peers()
    if peers is None:
        raise RuntimeError(f"{path}: a {c['peer']} checkpoint, and the peer does not load here ({why})")
    cfg = S.StepConfig(**c["step"])
    net = peer_net(peers, cfg, ck["normalization"], SimpleNamespace(blocks=int(c["blocks"])), cfg.seed)
    net.load_state_dict(ck["model"])
    return S.Stepper(net, cfg, ck["normalization"]).eval()


def _eval_job(key: tuple[str, int, int]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    name, j, i = key
    st, fn = _SHARED["fns"][name][j]
    t, c = _SHARED["test"][i]
    return {"name": t.name, **evaluate(fn, st.graph(t), t, c, ["u", "v", "p"], _SHARED["start"], _SHARED["H"])}


def evaluate_all(fns: dict[str, list[tuple[Any, Any]]], test: list[tuple[Any, dict[str, Any]]], start: int, H: int,
                 jobs: int) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Every (model, seed, test case) evaluation, ``jobs`` at a time in forked workers (each times its
    own rollout on one thread)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    _SHARED.update(fns=fns, test=test, start=start, H=H)
    keys = [(n, j, i) for n, fs in fns.items() for j in range(len(fs)) for i in range(len(test))]
    if jobs <= 1:
        return {k: _eval_job(k) for k in keys}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("fork")) as ex:
        return dict(zip(keys, ex.map(_eval_job, keys), strict=True))


def budget(a: argparse.Namespace) -> Any:
    """The protocol's budget record of the shared recipe (``--steps`` at most, early stopping)."""
    import protocol as P

    return P.Budget(max_epochs=a.steps, patience=max(a.patience, 1) if a.patience else a.steps,
                    eval_every=max(a.val_every, 1), unit="steps")


METRICS = [("one_step_u", "one-step u"), ("one_step_v", "one-step v"), ("one_step_p", "one-step p"),
           ("rollout_100", "rollout 1-100 (mean u, v, p)"), ("rollout_full", "full rollout (mean u, v, p)"),
           ("stable_steps", "stable steps (min over cases)"),
           ("below_persistence", "steps below persistence, every channel (min over cases)"), ("f_error", "abs(f_pred / f_solver - 1)")]


def _seed_metrics(cases: list[dict[str, Any]]) -> dict[str, float]:
    """One seed's test metrics: means over the test trajectories (stability: the worst one)."""
    one = np.mean([c["one_step"] for c in cases], axis=0)
    out = {f"one_step_{ch}": float(one[j]) for j, ch in enumerate("uvp")}
    out["rollout_100"] = float(np.mean([np.mean(c["rollout_100"]) for c in cases]))
    out["rollout_full"] = float(np.mean([np.mean(c["rollout_full"]) for c in cases]))
    out["stable_steps"] = float(min(c["stable_steps"] for c in cases))
    if all("below_persistence" in c for c in cases):
        out["below_persistence"] = float(min(min(c["below_persistence"]) for c in cases))
    fe = [abs(c["f_pred"] / c["f_true"] - 1) for c in cases]
    if np.isfinite(fe).all():  # a baseline without a wake has no frequency: the metric is left out
        out["f_error"] = float(np.mean(fe))
    return out


def protocol_model(label: str, runs: list[list[dict[str, Any]]], trained: list[dict[str, Any]] | None,
                   search: dict[str, Any] | None) -> dict[str, Any]:
    """The protocol record of one model (what ``protocol.results_table`` reads): kept config, search,
    per-seed runs (``trained``: their training infos) and the spread of every test metric over the seeds."""
    import protocol as P

    per = [_seed_metrics(cases) for cases in runs]
    infos = trained or [{"best_val": float("nan"), "steps_used": 0, "best_step": 0, "n_params": 0}]
    keys = [k for k, _ in METRICS if all(k in p for p in per)]
    vals = [i["best_val"] if i["best_val"] is not None else float("nan") for i in infos]
    return {"label": label, "peer": label == PEER,
            "config": search["candidates"][search["kept"]] if search else {},
            "search": search["search"] if search else [],
            "runs": [{"val": v, "epochs_used": i["steps_used"], "best_epoch": i["best_step"], "params": i["n_params"],
                      "test": p} for v, i, p in zip(vals, infos, per, strict=True)],
            "summary": {k: P.spread([p[k] for p in per]) for k in keys},
            "val": P.spread(vals) if trained else {"mean": float("nan"), "std": 0.0, "min": float("nan"),
                                                    "max": float("nan"), "n": 1},
            "epochs_used": P.spread([i["steps_used"] for i in infos]),
            "best_epoch": [i["best_step"] for i in infos]}


def protocol_text(res: dict[str, Any]) -> str:
    """The protocol paragraph, the mean ± std [min, max] table and the generated conclusions."""
    import protocol as P

    pr = res["protocol"]
    search = f"learning rate in {{{res['lrs']}}} x width in {{{res['widths']}}}"
    if res.get("noises"):
        search += f" x input noise in {{{'; '.join(P.value_text(nz) for nz in res['noises'])}}} (x the {res['noise_ref']} std)"
    extra = ("Baselines without training (persistence, linear extrapolation) have one deterministic run. "
             "The published MeshGraphNet configuration (width 128, 15 blocks, lr 1e-4, millions of steps) is not a "
             "candidate: one of its steps costs about 40x ours here, beyond this CPU's budget.")
    if any(n.endswith(" ensemble") for n in pr["models"]):
        extra += (" An ensemble row is one model: the mean next state of that model's seed runs, stepped and rolled "
                  "out together (its steps, parameters and training time are the seeds' sums; its val is its own score).")
    trained = [n for n in pr["models"] if pr["models"][n]["search"]]
    pairs = [(trained[0], n) for n in trained[1:]]
    only = {**pr, "models": {n: pr["models"][n] for n in trained}}  # the search counts of the trained models
    text = [P.statement(only, "learned time stepping on cylinder-flow, test = the held-out trajectories",
                        f"validation error over the first {res['val_rollout']} rollout steps" if res["val_rollout"]
                        else "validation one-step error", search, extra), "",
            P.results_table(pr, METRICS, config_keys=["lr", "hidden"] + (["noise"] if res.get("noises") else [])), ""]
    for key, title in (("one_step_p", "one-step p"), ("rollout_100", "rollout over 100 steps")):
        text.append(P.conclusion(pr, key, title, pairs=pairs))
        text.append("")
    return "\n".join(text)


def summarize(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Mean over test cases, then over seeds; per-seed values kept for the spread."""
    keys = ("one_step", "rollout_50", "rollout_100", "rollout_full")
    per_seed = [{k: np.mean([c[k] for c in cases], axis=0).tolist() for k in keys} for cases in runs]
    r: dict[str, Any] = {k: np.mean([s[k] for s in per_seed], axis=0).tolist() for k in keys}
    r["per_seed"] = per_seed
    r["stable_steps"] = int(min(c["stable_steps"] for cases in runs for c in cases))
    r["below_persistence"] = np.min([c["below_persistence"] for cases in runs for c in cases], axis=0).astype(int).tolist()
    fr = np.array([c["f_pred"] / c["f_true"] for cases in runs for c in cases], dtype=np.float64)
    r["f_ratio"] = fr.tolist()
    r["s_per_step"] = float(np.median([c["s_per_step"] for cases in runs for c in cases]))
    r["cases"] = runs[0]
    return r


def _freq_text(fr: list[float]) -> str:
    f = np.asarray(fr, dtype=np.float64)
    if not np.isfinite(f).any():
        return "n/a (no shedding)"
    return f"{np.nanmean(f):.3f} (worst {np.nanmax(np.abs(f - 1)):.1%})"


def _stop_text(res: dict[str, Any]) -> str:
    p = res.get("patience", 0)
    return f" (early stopping after {p} validations without a new best, every {res['val_every']} steps)" if p else ""


def _val_text(res: dict[str, Any]) -> str:
    n = res.get("val_rollout", 0)
    return f"error over the first {n} rollout steps" if n else "one-step error"


def _globals_text(res: dict[str, Any]) -> str:
    g, d = res.get("globals") or [], res.get("diagnosed") or []
    return ((f"; case parameters {', '.join(g)} as inputs" if g else "")
            + (f"; {', '.join(d)} predicted directly (not an input)" if d else "")
            + (f"; the mean increment of {', '.join(res['zero_mean'])} over the free nodes held at the training mean"
               if res.get("zero_mean") else "")
            + (f"; {', '.join(res['poisson'])} gets the P1 Poisson solution of a predicted source added (Dirichlet where fixed)"
               if res.get("poisson") else ""))


def _noise_used(res: dict[str, Any]) -> str:
    import protocol as P

    if not res.get("noises"):
        return f"noise {P.value_text(res['noise'])}"
    kept = {n: P.value_text(m["config"]["noise"]) for n, m in res["protocol"]["models"].items() if m["config"]}
    return "input noise chosen on validation (" + "; ".join(f"{n}: {v}" for n, v in kept.items()) + ")"


def _extra_text(res: dict[str, Any]) -> str:
    extra = res.get("extra_cases") or []
    return f" (of them {len(extra)} from {res['extra_train']}: {', '.join(extra)})" if extra else ""


def table(res: dict[str, Any]) -> str:
    pers = np.array(res["models"]["persistence"]["one_step"])
    lines = ["", "", f"Command: `{res['command']}` ({res['n_train']} training{_extra_text(res)} and {res['n_val']} validation "
             f"trajectories, {res['n_test']} held-out test trajectories ({', '.join(res['test_cases'])}) of "
             f"{res['snapshots']} snapshots; at most {res['train_steps']} optimizer steps x batch {res['batch_size']} per "
             f"model and seed{_stop_text(res)}, seeds {res['seeds']}, weights chosen on the validation trajectory's {_val_text(res)}; "
             f"history {res['history']}, push-forward unroll {res['unroll']}, {_noise_used(res)} x {res['noise_ref']} std"
             f"{_globals_text(res)}; CPU).", "",
             "| model | params | train CPU s | best step | one-step rel L2 u / v / p | persistence / model | "
             "rollout 1-50 | rollout 1-100 | full rollout | stable steps (min) | steps below persistence u / v / p (min) | "
             "f_pred / f_solver | CPU s per step |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res["models"].items():
        ratio = pers / np.maximum(np.array(r["one_step"]), 1e-12)
        lines.append(f"| {name} | {r.get('n_params', 0)} | {r.get('train_cpu_s', 0):.0f} | {r.get('best_step', '-')} | "
                     f"{fmt3(r['one_step'])} | {' / '.join(f'{x:.2f}' for x in ratio)} | {fmt3(r['rollout_50'])} | "
                     f"{fmt3(r['rollout_100'])} | {fmt3(r['rollout_full'])} | {r['stable_steps']} | "
                     f"{' / '.join(str(k) for k in r.get('below_persistence', []))} | {_freq_text(r['f_ratio'])} | {r['s_per_step']:.4f} |")
    for name, why in res.get("skipped", {}).items():
        lines.append(f"| {name} | skipped: {why} | | | | | | | | | | | |")
    lines += ["", "Train CPU s and CPU s per step are CPU times of one-thread processes (the machine's load does not "
              f"count). OpenFOAM (icoFoam, one core) took {res['foam_s_per_snapshot']:.3f} s of wall time per snapshot "
              f"interval ({res['foam_steps_per_snapshot']} solver steps, median over the training cases, on the shared "
              "machine: an upper bound of its CPU time); per-seed numbers and the ratios are in "
              f"`{Path(res['out']).name}`.", ""]
    return "\n".join(lines)


def data_root(a: argparse.Namespace) -> str | None:
    """The generated folder of ``--data`` (None: the shipped subset)."""
    if a.data == "shipped":
        return None
    if not Path(a.data).is_dir():
        raise FileNotFoundError(f"{a.data}: no generated cylinder-flow folder; run `meshops datasets generate "
                                f"cylinder-flow --n 24 --out {a.data}` first (or pass --data shipped)")
    return a.data


def extra_train(a: argparse.Namespace) -> list[Any]:
    """The train-split trajectories of ``--extra-train`` (none without it); a case name that ``--data``
    also holds, in any split, is refused (a case must not be trained on twice or leak into validation or test)."""
    from meshops.data import load_dataset

    if not a.extra_train:
        return []
    if not Path(a.extra_train).is_dir():
        raise FileNotFoundError(f"{a.extra_train}: no generated cylinder-flow folder (--extra-train)")
    ds = load_dataset("cylinder_flow", root=a.extra_train, split="train")
    same = sorted(set(ds.case_names()) & set(load_dataset("cylinder_flow", root=data_root(a)).case_names()))
    if same:
        raise ValueError(f"{a.extra_train}: case {same[0]} is also in {a.data} (--extra-train needs other cases)")
    if len(ds) == 0:
        raise FileNotFoundError(f"{a.extra_train}: no training-split case (--extra-train)")
    return [ds[i] for i in range(len(ds))]


def _setup(a: argparse.Namespace, argv: list[str] | None) -> tuple[list[Any], list[Any], dict[str, Any]]:
    from meshops.data import load_dataset

    sys.path.insert(0, str(HERE))
    import protocol as P

    ds = load_dataset("cylinder_flow", root=data_root(a), split="train")
    if len(ds) < a.n_val + 1:
        raise FileNotFoundError(f"{a.data}: {len(ds)} training-split case(s); --n-val {a.n_val} needs "
                                f"{a.n_val + 1} or more")
    sp = P.fixed_split(len(ds), n_val=a.n_val, seed=0)
    train, val = [ds[i] for i in sp["train"]], [ds[i] for i in sp["val"]]
    extra = extra_train(a)
    train += extra
    splits, note = dict(sp), "cylinder_flow train split: train / val"
    if extra:
        splits["extra_train"] = [t.name for t in extra]
        note += f"; extra_train: the train split of {a.extra_train}"
    cards = [ds.card(i) for i in range(len(ds))]
    steps = [int(round(c["solver"]["snapshot_dt"] / c["solver"]["dt"])) for c in cards]  # dt differs per case
    sps = [c["solver"]["wall_s_per_step"] * k for c, k in zip(cards, steps, strict=True)]
    res = {"command": "meshops bench transient " + shlex.join(argv if argv is not None else sys.argv[1:]),
           "n_train": len(train), "n_val": len(val), "train_cases": [t.name for t in train],
           "val_cases": [t.name for t in val], "extra_train": a.extra_train, "extra_cases": [t.name for t in extra],
           "splits": P.split_record(splits, note),
           "snapshots": train[0].n_steps, "train_steps": a.steps, "batch_size": a.batch_size, "history": a.history,
           "unroll": a.unroll, "noise": a.noise, "noises": a.noises, "noise_ref": a.noise_ref, "val_rollout": a.val_rollout,
           "globals": _names(a.globals), "diagnosed": _names(a.diagnosed),
           "zero_mean": _names(a.zero_mean), "poisson": _names(a.poisson), "seeds": a.seeds, "models": {}, "skipped": {},
           "patience": a.patience, "val_every": a.val_every, "lrs": a.lrs, "widths": a.widths, "foam_s_per_snapshot": float(np.median(sps)),
           "foam_steps_per_snapshot": int(np.median(steps)), "out": a.out, "channels": ["u", "v", "p"]}
    return train, val, res


def main(argv: list[str] | None = None) -> int:
    import torch

    from meshops.atomic import replace_block, write_text_atomic
    from meshops.data import load_dataset

    a = parse(argv)
    torch.set_num_threads(1)
    train, val, res = _setup(a, argv)
    peers, why = load_peers()
    names = _names(a.models)
    if "physicsnemo" in names and peers is None:
        names.remove("physicsnemo")
        res["skipped"][PEER] = why
        print(f"{PEER} skipped: {why}")
    seeds = [int(s) for s in a.seeds.split(",")]
    trained, search = search_and_train(names, seeds, a, train, val, peers)
    if a.checkpoints:
        save_checkpoints(trained, seeds, Path(a.checkpoints), a.blocks)
    # the test trajectories are read after training (cases finished meanwhile by the generator count)
    te = load_dataset("cylinder_flow", root=data_root(a), split="test", max_cases=a.max_test)
    test = [(te[i], te.card(i)) for i in range(len(te))]
    res.update(n_test=len(test), test_cases=te.case_names())
    ref = next(iter(trained.values()))[0][0]
    H, start = a.history, max(a.history, 1)
    fns = {"persistence": [(ref, persistence)], "linear extrapolation": [(ref, extrapolation)]}
    fns.update({n: [(st, st.step_window) for st, _ in trained[n]] for n in names})
    infos = {n: [i for _, i in trained[n]] for n in names}
    if a.ensemble:
        for n in names:
            fns[f"{n} ensemble"], infos[f"{n} ensemble"] = ensemble(trained[n], val, a)
    ev = evaluate_all(fns, test, start, max(H, 1), a.jobs)
    res["protocol"] = {"budget": budget(a).__dict__.copy(), "seeds": seeds, "splits": res["splits"], "models": {}}
    for name, fs in fns.items():
        runs = [[ev[(name, j, i)] for i in range(len(test))] for j in range(len(fs))]
        r = summarize(runs)
        if name in infos:
            inf = infos[name]
            r.update(n_params=inf[0]["n_params"], train_time_s=float(np.mean([i["train_time_s"] for i in inf])),
                     train_cpu_s=float(np.mean([i["train_cpu_s"] for i in inf])),
                     best_step=",".join(str(i["best_step"]) for i in inf),
                     val_score=[i["best_val"] for i in inf], steps_used=[i["steps_used"] for i in inf])
        r["speedup_vs_openfoam"] = res["foam_s_per_snapshot"] / max(r["s_per_step"], 1e-12)
        label = name.replace("physicsnemo", PEER)
        res["models"][label] = r
        res["protocol"]["models"][label] = protocol_model(label, runs, infos.get(name), search.get(name))
        print(f"{name}: one-step {fmt3(r['one_step'])}, rollout 1-100 {fmt3(r['rollout_100'])}, stable {r['stable_steps']}")
    write_text_atomic(json.dumps(res, indent=1, default=float), a.out)
    txt = protocol_text(res) + "\n" + table(res)
    print(txt)
    if a.readme:
        replace_block(a.readme, BEGIN, END, txt, prefix="## Benchmark (meshops bench transient)\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
