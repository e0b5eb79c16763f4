"""Learned time stepping on trajectories (MeshGraphNets' recipe) and autoregressive rollout.

A step model maps the state ``x_t`` (the trajectory's fields, per node) plus one-hot node types
to the increment ``x_{t+1} - x_t``; targets are increments normalized per channel by the training
increments' mean and standard deviation, inputs are states normalized per channel. Training adds
Gaussian noise to the input state (``noise`` standard deviations of each channel's state) and asks
for the increment to the clean next state, so the model learns to correct its own drift; with
``unroll = K > 1`` the input of the loss step is the model's own ``K - 1``-step prediction
(gradient-free push-forward).

Dirichlet boundary values are kept exact: a (node type, channel) pair whose value never changes in
any training trajectory (inlet velocity, no-slip walls, outlet pressure) is held at its current
value and left out of the loss.

2D trajectories (``Trajectory.dim == 2``) get in-plane edge features ``(dx, dy, |d|)``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meshops.data import DatasetError
from meshops.data.trajectory import Trajectory, node_type_onehot
from meshops.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

__all__ = ["StepConfig", "Stepper", "train_stepper", "rel_l2", "load_stepper", "rollout_errors"]


@dataclass
class StepConfig:
    """Training settings of a step model (JSON-able, stored in the checkpoint)."""

    fields: list[str] = field(default_factory=lambda: ["u", "v", "p"])
    model: str = "mgn"
    model_options: dict[str, Any] = field(default_factory=lambda: {"hidden": 64, "n_blocks": 8})
    graph: dict[str, Any] = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 2
    lr: float = 1e-3
    min_lr_ratio: float = 0.02
    noise: float = 0.02
    unroll: int = 1
    seed: int = 0
    clip: float = 1.0


def rel_l2(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-channel relative L2 error over the nodes, ``||pred - true|| / ||true||``.

    Shapes
    ------
    pred, true : (..., n, C) -> returns (..., C)
    """
    num = np.sqrt(((pred - true) ** 2).sum(axis=-2))
    den = np.sqrt((true**2).sum(axis=-2))
    return num / np.maximum(den, 1e-12)


def _edge_scale(g: Any) -> float:
    return float(g.edge_attr[:, -1].mean())


def _planar(g: Any, dim: int, scale: float) -> Any:
    """Edge features in the plane for 2D (drop the zero ``dz`` column), divided by ``scale``."""
    for k in list(g.keys()):
        if k.startswith("edge_attr") and isinstance(g[k], torch.Tensor):
            e = g[k].float()
            if dim == 2:
                e = e[:, [0, 1, 3]]
            g[k] = e / scale
    return g


class Stepper(torch.nn.Module):
    """A step model with its normalization, node types and Dirichlet mask."""

    def __init__(self, model: torch.nn.Module, cfg: StepConfig, stats: dict[str, Any]) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg
        self.stats = stats
        for k in ("x_mean", "x_std", "d_mean", "d_std"):
            self.register_buffer(k, torch.tensor(stats[k], dtype=torch.float32))
        self.node_types: list[str] = list(stats["node_types"])
        self.fixed = torch.tensor(stats["fixed"], dtype=torch.bool)  # (K, C)
        self.dim = int(stats["dim"])

    # ------------------------------------------------------------ graphs
    def graph(self, traj: Trajectory) -> Any:
        """The trajectory's graph with node types (``onehot``), Dirichlet mask and planar edges."""
        from meshops.data.graphs import build_graph

        if traj.dim != self.dim:
            raise DatasetError(f"trajectory '{traj.name}' is {traj.dim}D, the model was trained on {self.dim}D cases")
        g = build_graph(traj.mesh, self.cfg.graph)
        pi = getattr(g, "point_index", None)
        if pi is not None and not torch.equal(pi.cpu(), torch.arange(traj.mesh.n_points)):
            raise DatasetError(f"trajectory '{traj.name}': the graph does not keep every mesh point in order")
        oh, _ = node_type_onehot(traj.mesh, self.node_types)
        g.onehot = torch.from_numpy(oh)
        g.fixed = self.fixed[torch.from_numpy(oh.argmax(1))]
        return _planar(g, self.dim, float(self.stats["edge_scale"]))

    def delta(self, g: Any, state: torch.Tensor) -> torch.Tensor:
        """Normalized predicted increment at ``state`` (physical units)."""
        xn = (state - self.x_mean) / self.x_std
        g.x = torch.cat([xn, g.onehot.to(xn)], dim=1)
        return self.model(g)

    def step(self, g: Any, state: torch.Tensor) -> torch.Tensor:
        """The next state (physical units); Dirichlet entries are held.

        Shapes
        ------
        state : (N, C) -> returns (N, C)
        """
        d = self.delta(g, state) * self.d_std + self.d_mean
        return torch.where(g.fixed.to(state.device), state, state + d)

    @torch.no_grad()
    def rollout(self, traj: Trajectory, n_steps: int | None = None, start: int = 0) -> np.ndarray:
        """Autoregressive rollout from ``traj`` state ``start`` for ``n_steps`` (default: to the end).

        Shapes
        ------
        returns : (n_steps + 1, n, C) float32, entry 0 the initial state
        """
        self.eval()
        X = traj.states(self.cfg.fields)
        n_steps = len(X) - 1 - start if n_steps is None else int(n_steps)
        if n_steps < 0 or start < 0 or start >= len(X):
            raise ValueError(f"rollout: start {start}, {n_steps} steps do not fit {len(X)} states of '{traj.name}'")
        dev = self.x_mean.device
        g = self.graph(traj).to(dev)
        s = torch.from_numpy(X[start]).to(dev)
        out = [s.cpu().numpy()]
        for k in range(n_steps):
            s = self.step(g, s)
            if not torch.isfinite(s).all():
                log.warning("rollout of '%s' blew up (non-finite state) at step %d", traj.name, k + 1)
                out += [np.full_like(out[0], np.nan)] * (n_steps - k)
                break
            out.append(s.cpu().numpy())
        return np.stack(out)


# ------------------------------------------------------------------ statistics


def fit_stats(trajs: Sequence[Trajectory], cfg: StepConfig) -> dict[str, Any]:
    """Per-channel state and increment statistics, node type names and the Dirichlet mask."""
    if not trajs:
        raise DatasetError("stepping: no training trajectories")
    dims = {t.dim for t in trajs}
    if len(dims) != 1:
        raise DatasetError(f"stepping: training trajectories mix dimensions {sorted(dims)}")
    names: list[str] = ["interior"]
    for t in trajs:
        names += [n for n in t.mesh.boundaries if n not in names]
    xs, ds, var = [], [], []
    for t in trajs:
        X = t.states(cfg.fields)
        if len(X) < 2 + cfg.unroll:
            raise DatasetError(f"trajectory '{t.name}' has {len(X)} steps; training needs {2 + cfg.unroll}")
        oh, _ = node_type_onehot(t.mesh, names)
        xs.append(X.reshape(-1, X.shape[2]))
        D = np.diff(X, axis=0)
        ds.append(D.reshape(-1, X.shape[2]))
        ty = oh.argmax(1)
        var.append(np.stack([np.abs(X - X[:1])[:, ty == k].max(axis=(0, 1)) if (ty == k).any()
                             else np.zeros(X.shape[2]) for k in range(len(names))]))
    xa, da = np.concatenate(xs), np.concatenate(ds)
    scale = float(np.abs(xa).max(axis=0).max())
    fixed = (np.max(var, axis=0) <= 1e-6 * max(scale, 1e-30))
    fixed[0] = False  # interior nodes are always predicted
    from meshops.data.graphs import build_graph

    g = build_graph(trajs[0].mesh, cfg.graph)
    return {"x_mean": xa.mean(0).tolist(), "x_std": np.maximum(xa.std(0), 1e-8).tolist(),
            "d_mean": da.mean(0).tolist(), "d_std": np.maximum(da.std(0), 1e-10).tolist(),
            "node_types": names, "fixed": fixed.tolist(), "dim": int(trajs[0].dim),
            "edge_scale": _edge_scale(g), "channels": trajs[0].channel_names(cfg.fields),
            "dt": float(np.mean(np.diff(trajs[0].times)))}


def build_model(cfg: StepConfig, stats: dict[str, Any]) -> torch.nn.Module:
    from meshops import models

    C, K = len(stats["x_mean"]), len(stats["node_types"])
    opts = dict(cfg.model_options)
    opts.update(in_channels=C + K, out_channels=C, global_channels=0, edge_channels=int(stats["dim"]) + 1)
    return models.create(cfg.model, **opts)


# ------------------------------------------------------------------ training


def _batch(graphs: list[Any], states: list[torch.Tensor], targets: list[torch.Tensor]) -> Any:
    from torch_geometric.data import Batch

    items = []
    for g, s, y in zip(graphs, states, targets, strict=True):
        h = g.clone()
        h.state, h.y = s, y
        items.append(h)
    return Batch.from_data_list(items)


def train_stepper(trajs: Sequence[Trajectory], cfg: StepConfig, out: str | Path | None = None,
                  progress: bool = False) -> tuple[Stepper, dict[str, Any]]:
    """Train a step model on ``trajs``; save ``out/best.pt`` when ``out`` is given.

    Returns the model and a history dict (loss per logged step, wall time).
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    stats = fit_stats(trajs, cfg)
    model = build_model(cfg, stats)
    st = Stepper(model, cfg, stats)
    graphs = [st.graph(t) for t in trajs]
    X = [torch.from_numpy(t.states(cfg.fields)) for t in trajs]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / cfg.steps))))
    noise = torch.tensor(stats["x_std"]) * cfg.noise
    hist: list[dict[str, float]] = []
    t0 = time.perf_counter()
    from tqdm.auto import tqdm

    bar = tqdm(range(cfg.steps), disable=not progress, desc=f"train {cfg.model}", dynamic_ncols=True)
    st.train()
    run = 0.0
    for it in bar:
        picks = [(int(rng.integers(len(trajs))),) for _ in range(cfg.batch_size)]
        gs, ss, ys = [], [], []
        for (i,) in picks:
            T = len(X[i])
            t = int(rng.integers(T - cfg.unroll))
            s = X[i][t]
            fx = graphs[i].fixed
            s = torch.where(fx, s, s + noise * torch.randn_like(s))
            if cfg.unroll > 1:
                with torch.no_grad():
                    for _ in range(cfg.unroll - 1):
                        s = st.step(graphs[i], s)
                t += cfg.unroll - 1
            y = (X[i][t + 1] - s - st.d_mean) / st.d_std
            gs.append(graphs[i])
            ss.append(s)
            ys.append(y)
        b = _batch(gs, ss, ys)
        pred = st.delta(b, b.state)
        w = (~b.fixed).float()
        loss = ((pred - b.y) ** 2 * w).sum() / w.sum().clamp_min(1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        lv = float(loss.detach())
        if not math.isfinite(lv):
            raise RuntimeError(f"stepping: training diverged (loss {lv}) at step {it + 1}")
        run = lv if it == 0 else 0.98 * run + 0.02 * lv
        if (it + 1) % 50 == 0 or it + 1 == cfg.steps:
            hist.append({"step": it + 1, "loss": run, "time_s": time.perf_counter() - t0})
            bar.set_postfix(loss=f"{run:.4g}")
    bar.close()
    st.eval()
    info = {"history": hist, "train_time_s": time.perf_counter() - t0, "n_params": sum(p.numel() for p in model.parameters())}
    if out is not None:
        save_stepper(st, Path(out) / "best.pt", extra_config={"train_names": [t.name for t in trajs], **info})
    return st, info


def save_stepper(st: Stepper, path: Path, extra_config: dict[str, Any] | None = None) -> Path:
    """A self-contained checkpoint (``kind: stepping``) of a step model."""
    cfg = {"kind": "stepping", "model": dict(st.model.meshops_config), "step": asdict(st.cfg),
           **(extra_config or {})}
    return save_checkpoint(path, model_state=st.model.state_dict(), config=cfg, normalization=st.stats)


def load_stepper(path: str | Path, device: str | torch.device = "cpu") -> Stepper:
    """Load a step model saved by :func:`train_stepper` (raises naming a non-stepping checkpoint)."""
    ck = load_checkpoint(path)
    c = ck["config"]
    if c.get("kind") != "stepping":
        raise CheckpointError(f"{path}: not a time-stepping checkpoint (kind {c.get('kind')!r}); "
                              "train one on a trajectory dataset")
    cfg = StepConfig(**c["step"])
    model = build_model(cfg, ck["normalization"])
    model.load_state_dict(ck["model"])
    return Stepper(model, cfg, ck["normalization"]).to(device).eval()


def rollout_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Rel L2 per step and channel of a rollout (NaN after a blow-up).

    Shapes
    ------
    pred, true : (S, n, C) -> returns (S, C)
    """
    return rel_l2(pred.astype(np.float64), true.astype(np.float64))


def stability_steps(err: np.ndarray, threshold: float = 1.0) -> int:
    """Steps until any channel's rollout error passes ``threshold`` or is non-finite (all steps if never).

    Shapes
    ------
    err : (S, C)
    """
    bad = ~np.isfinite(err).all(axis=1) | (np.nan_to_num(err, nan=np.inf).max(axis=1) > threshold)
    k = np.nonzero(bad)[0]
    return int(k[0]) if len(k) else int(len(err) - 1)


def evaluate_trajectories(st: Stepper, trajs: Sequence[Trajectory], horizons: Sequence[int] = (1, 50)) -> dict[str, Any]:
    """1-step, ``horizons``-step and full-rollout rel L2 per trajectory and channel, and their means.

    The ``k``-step error is the mean rel L2 over the first ``k`` steps of the rollout from the first
    snapshot (``1``: every true state stepped once, mean over the states); ``full`` over the whole
    trajectory. Persistence (the initial state held) is reported beside each.
    """
    channels = list(st.stats["channels"])
    per: dict[str, Any] = {}
    for t in trajs:
        X = t.states(st.cfg.fields)
        g = st.graph(t)
        with torch.no_grad():
            one = np.stack([st.step(g, torch.from_numpy(X[k])).numpy() for k in range(len(X) - 1)])
        R = st.rollout(t)
        er = rollout_errors(R, X)
        pr = rollout_errors(np.repeat(X[:1], len(X), 0), X)
        rec = {"one_step": dict(zip(channels, rel_l2(one, X[1:]).mean(0).tolist(), strict=True)),
               "one_step_persistence": dict(zip(channels, rel_l2(X[:-1], X[1:]).mean(0).tolist(), strict=True))}
        for h in [h for h in horizons if h > 1] + [len(X) - 1]:
            key = "full" if h == len(X) - 1 else f"rollout_{h}"
            rec[key] = dict(zip(channels, np.nanmean(er[1 : h + 1], 0).tolist(), strict=True))
            rec[key + "_persistence"] = dict(zip(channels, pr[1 : h + 1].mean(0).tolist(), strict=True))
        rec["steps"] = len(X) - 1
        rec["steps_until_error_above_1"] = stability_steps(er[1:].mean(axis=1, keepdims=True))
        per[t.name] = rec
    if not per:
        raise DatasetError("evaluate: the dataset has no trajectories")
    keys = [k for k in next(iter(per.values())) if isinstance(next(iter(per.values()))[k], dict)]
    mean = {k: {c: float(np.mean([r[k][c] for r in per.values()])) for c in channels} for k in keys}
    return {"cases": per, "mean": mean, "channels": channels}


def is_stepping_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a time-stepping checkpoint (``kind: stepping``)."""
    try:
        return load_checkpoint(path)["config"].get("kind") == "stepping"
    except (CheckpointError, FileNotFoundError):
        return False

