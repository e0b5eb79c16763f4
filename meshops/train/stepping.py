"""Learned time stepping on trajectories (MeshGraphNets' recipe) and autoregressive rollout.

A step model maps the state ``x_t`` (the trajectory's fields, per node) plus one-hot node types
to the increment ``x_{t+1} - x_t``; targets are increments normalized per channel by the training
increments' mean and standard deviation, inputs are states normalized per channel. Training adds
Gaussian noise to the input state (``noise`` standard deviations of each channel's state, or of its
increment with ``noise_ref="increment"``; one number, or one per channel as ``{"u": 0.5, "p": 0.1}``) and asks for the increment to the clean next state, so
the model learns to correct its own drift; with ``unroll = K > 1`` the input of the loss step is the
model's own ``K - 1``-step prediction (gradient-free push-forward).

With ``history = H >= 1`` the model also reads the last ``H`` increments ``x_t - x_{t-1}, ...``
(normalized like the targets) and predicts the change of the increment, ``x_{t+1} - 2 x_t +
x_{t-1}``, normalized per channel by the training second differences: its zero output is linear
extrapolation, and what it learns is the correction to it. Each state of the input window gets its
own noise, or, with ``noise_shared``, one draw shifts the whole window (the increments stay clean,
like the slowly drifting error of a rollout). With ``base="persistence"`` the history is an input
only and the target stays the normalized increment (a bias of the output then integrates once in a
rollout, not twice). A rollout starts from ``H + 1`` true states.

Dirichlet boundary values are kept exact: a (node type, channel) pair whose value never changes in
any training trajectory (inlet velocity, no-slip walls, outlet pressure) is held at its current
value and left out of the loss.

Known case parameters (``globals``, e.g. ``["Re", "D"]`` from ``Trajectory.globals``) are node inputs,
normalized by the training cases. ``diagnosed`` channels (e.g. ``["p"]``) are predicted directly
(their normalized next value) from the other channels and are not read as inputs, as MeshGraphNets
does for the pressure: they cannot drift on their own in a rollout. ``zero_mean`` channels (e.g.
``["p"]``, whose level only the outlet nodes anchor) have their increment shifted, at every step, so
that its mean over the free nodes is the training increments' mean: a bias of the predicted increment
then cannot move the whole field in a rollout. ``poisson`` channels (e.g. ``["p"]``) get one more model
output, a source ``s``, whose P1 Poisson solution on the mesh's triangles (:mod:`meshops.nn.poisson`;
zero where the channel is a fixed Dirichlet value, zero normal derivative on the rest of the boundary;
``s`` in units of the training meshes' response to a unit source) is added to the channel's output: a
local source can then carry a global (elliptic) response, as the pressure answers the velocity.

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
from meshops.train.stepping_eval import (
    evaluate_trajectories,
    one_step_error,
    rel_l2,
    rollout_errors,
    rollout_score,
    stability_steps,
)
from meshops.train.stepping_stats import (
    check_channel_names,
    check_trajectory,
    fit_stats,
    mesh_triangles,
    trajectory_globals,
)

log = logging.getLogger(__name__)

__all__ = ["StepConfig", "Stepper", "evaluate_trajectories", "load_stepper", "one_step_error", "rel_l2", "rollout_errors",
           "rollout_score", "stability_steps", "stepper_from_checkpoint", "train_stepper"]


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
    noise: float | dict[str, float] = 0.02
    unroll: int = 1
    seed: int = 0
    clip: float = 1.0
    history: int = 0
    noise_ref: str = "state"
    val_every: int = 0
    noise_shared: bool = False
    base: str = "extrapolation"
    globals: list[str] = field(default_factory=list)
    val_rollout: int = 0
    diagnosed: list[str] = field(default_factory=list)
    zero_mean: list[str] = field(default_factory=list)
    patience: int = 0
    poisson: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        vals = self.noise.values() if isinstance(self.noise, dict) else [self.noise]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in vals):
            raise ValueError(f"StepConfig: noise must be a non-negative number or one per channel, got {self.noise!r}")
        if self.noise_ref not in ("state", "increment"):
            raise ValueError(f"StepConfig: noise_ref must be 'state' or 'increment', got {self.noise_ref!r}")
        if self.base not in ("extrapolation", "persistence"):
            raise ValueError(f"StepConfig: base must be 'extrapolation' or 'persistence', got {self.base!r}")
        if not isinstance(self.history, int) or self.history < 0:
            raise ValueError(f"StepConfig: history must be a non-negative integer, got {self.history!r}")
        if not isinstance(self.val_rollout, int) or self.val_rollout < 0:
            raise ValueError(f"StepConfig: val_rollout must be a non-negative integer, got {self.val_rollout!r}")
        if not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"StepConfig: patience must be a non-negative integer, got {self.patience!r}")


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
    """A step model with its normalization, node types and Dirichlet mask.

    ``past`` arguments are the ``history`` states before ``state``, oldest first, shape (H, N, C).
    """

    def __init__(self, model: torch.nn.Module, cfg: StepConfig, stats: dict[str, Any]) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg
        self.stats = stats
        self.history = int(cfg.history)
        self.extrapolate = self.history > 0 and getattr(cfg, "base", "extrapolation") == "extrapolation"
        for k in ("x_mean", "x_std", "d_mean", "d_std"):
            self.register_buffer(k, torch.tensor(stats[k], dtype=torch.float32))
        for k in ("r_mean", "r_std"):  # second differences (history >= 1)
            self.register_buffer(k, torch.tensor(stats.get(k, stats["d" + k[1:]]), dtype=torch.float32))
        self.node_types: list[str] = list(stats["node_types"])
        self.fixed = torch.tensor(stats["fixed"], dtype=torch.bool)  # (K, C)
        self.dim = int(stats["dim"])
        chans = list(stats["channels"])
        check_channel_names(cfg, chans)
        self.register_buffer("diag", torch.tensor([c in cfg.diagnosed for c in chans], dtype=torch.bool))
        self.zm = [i for i, c in enumerate(chans) if c in cfg.zero_mean]
        self.prog = [i for i, c in enumerate(chans) if c not in cfg.diagnosed]  # channels read as inputs
        self.pois = [chans.index(c) for c in cfg.poisson]
        self._factors: list[Any] = []
        self._factor_ids: dict[str, int] = {}

    # ------------------------------------------------------------ graphs
    def graph(self, traj: Trajectory) -> Any:
        """The trajectory's graph with node types (``onehot``), Dirichlet mask and planar edges."""
        from meshops.data.graphs import build_graph

        if traj.dim != self.dim:
            raise DatasetError(f"trajectory '{traj.name}' is {traj.dim}D, the model was trained on {self.dim}D cases")
        check_trajectory(self.stats, self.cfg, traj)
        g = build_graph(traj.mesh, self.cfg.graph)
        pi = getattr(g, "point_index", None)
        if pi is not None and not torch.equal(pi.cpu(), torch.arange(traj.mesh.n_points)):
            raise DatasetError(f"trajectory '{traj.name}': the graph does not keep every mesh point in order")
        oh, _ = node_type_onehot(traj.mesh, self.node_types)
        g.onehot = torch.from_numpy(oh)
        g.fixed = self.fixed[torch.from_numpy(oh.argmax(1))]
        glob = (trajectory_globals(traj, self.cfg.globals) - np.asarray(self.stats.get("g_mean", []))) / np.asarray(
            self.stats.get("g_std", []))
        g.glob = torch.from_numpy(np.repeat(glob[None].astype(np.float32), traj.mesh.n_points, axis=0))
        if self.pois:
            g.poisson = torch.tensor([[self._factor(traj, g.fixed[:, c].numpy()) for c in self.pois]])
        return _planar(g, self.dim, float(self.stats["edge_scale"]))

    def _factor(self, traj: Trajectory, dirichlet: np.ndarray) -> int:
        """Index in ``_factors`` of the Poisson factor of ``traj``'s triangles with these Dirichlet nodes."""
        from meshops.nn.poisson import cached_factor

        f = cached_factor(traj.mesh.points, mesh_triangles(traj), dirichlet, where=f"trajectory '{traj.name}'")
        if f.key not in self._factor_ids:
            self._factors.append(f)
            self._factor_ids[f.key] = len(self._factors) - 1
        return self._factor_ids[f.key]

    def _check_past(self, past: torch.Tensor | None) -> None:
        if self.history and (past is None or len(past) < self.history):
            got = 0 if past is None else len(past)
            raise ValueError(f"step: the model reads {self.history} past state(s) before the current one, got {got}")

    def inputs(self, g: Any, state: torch.Tensor, past: torch.Tensor | None = None) -> torch.Tensor:
        """Node features: normalized state, the last ``history`` normalized increments, one-hot node type,
        the normalized ``globals`` of the case."""
        self._check_past(past)
        pr = self.prog
        feats = [((state - self.x_mean) / self.x_std)[:, pr]]
        prev = state
        for k in range(self.history):
            q = past[len(past) - 1 - k]
            feats.append(((prev - q - self.d_mean) / self.d_std)[:, pr])
            prev = q
        feats += [g.onehot.to(state), g.glob.to(state)]
        return torch.cat(feats, dim=1)

    def raw(self, g: Any, state: torch.Tensor, past: torch.Tensor | None = None) -> torch.Tensor:
        """The model's normalized output (increment, or change of increment with ``history``)."""
        g.x = self.inputs(g, state, past)
        out = self.model(g)
        if not self.pois:
            return out
        from meshops.nn.poisson import poisson_solve

        C = self.x_mean.numel()
        ptr = g.ptr.tolist() if getattr(g, "ptr", None) is not None else [0, out.shape[0]]
        y = out[:, :C].clone()
        for j, c in enumerate(self.pois):
            fac = [self._factors[int(k)] for k in g.poisson[:, j]]
            y[:, c] = y[:, c] + poisson_solve(out[:, C + j], fac, ptr) / float(self.stats["poisson_scale"][j])
        return y

    def target(self, state: torch.Tensor, past: torch.Tensor | None, nxt: torch.Tensor) -> torch.Tensor:
        """The normalized training target that turns ``state`` (and ``past``) into ``nxt`` (the
        normalized next value itself for ``diagnosed`` channels)."""
        if self.extrapolate:
            y = (nxt - 2 * state + past[-1] - self.r_mean) / self.r_std
        else:
            y = (nxt - state - self.d_mean) / self.d_std
        return torch.where(self.diag, (nxt - self.x_mean) / self.x_std, y)

    def delta(self, g: Any, state: torch.Tensor, past: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted increment ``x_{t+1} - x_t`` in physical units."""
        out = self.raw(g, state, past)
        if self.extrapolate:
            d = out * self.r_std + self.r_mean + (state - past[-1])
        else:
            d = out * self.d_std + self.d_mean
        return torch.where(self.diag, out * self.x_std + self.x_mean - state, d)

    def step(self, g: Any, state: torch.Tensor, past: torch.Tensor | None = None) -> torch.Tensor:
        """The next state (physical units); Dirichlet entries are held; the ``zero_mean`` channels'
        increment over the free nodes of each graph has the training increments' mean.

        Shapes
        ------
        state : (N, C), past : (H, N, C) oldest first (``history`` H >= 1 only) -> returns (N, C)
        """
        fixed = g.fixed.to(state.device)
        d = torch.where(fixed, torch.zeros_like(state), self.delta(g, state, past))
        if self.zm:
            d = self._hold_mean(g, d, fixed)
        return state + d

    def _hold_mean(self, g: Any, d: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        """Shift the free entries of the ``zero_mean`` channels of ``d`` so that their mean per graph is ``d_mean``."""
        from meshops.models._common import batch_vector

        b = batch_vector(g, d.device)
        nb = int(b.max()) + 1 if len(b) else 1
        free = (~fixed[:, self.zm]).to(d.dtype)
        cnt = torch.zeros(nb, len(self.zm), dtype=d.dtype, device=d.device).index_add_(0, b, free)
        tot = torch.zeros_like(cnt).index_add_(0, b, d[:, self.zm] * free)
        shift = tot / cnt.clamp_min(1.0) - self.d_mean[self.zm]
        out = d.clone()
        out[:, self.zm] = d[:, self.zm] - shift[b] * free
        return out

    def step_window(self, g: Any, window: torch.Tensor) -> torch.Tensor:
        """The next state after ``window`` (the last ``history + 1`` states, oldest first, (H + 1, N, C))."""
        return self.step(g, window[-1], window[:-1] if self.history else None)

    def rollout(self, traj: Trajectory, n_steps: int | None = None, start: int | None = None) -> np.ndarray:
        """Autoregressive rollout from ``traj`` state ``start`` (default ``history``) for ``n_steps``
        (default: to the end); the ``history`` true states before ``start`` seed the window.

        Shapes
        ------
        returns : (n_steps + 1, n, C) float32, entry 0 the state ``start``
        """
        return rollout_states(self, traj, n_steps, start)


@torch.no_grad()
def rollout_states(model: Any, traj: Trajectory, n_steps: int | None = None, start: int | None = None) -> np.ndarray:
    """The rollout of anything with ``cfg``, ``history``, ``x_mean``, ``graph`` and ``step_window`` (a
    :class:`Stepper` or an ensemble of them); see :meth:`Stepper.rollout`."""
    model.eval()
    X = traj.states(model.cfg.fields)
    H = model.history
    start = H if start is None else int(start)
    n_steps = len(X) - 1 - start if n_steps is None else int(n_steps)
    if n_steps < 0 or start < H or start >= len(X):
        raise ValueError(f"rollout: start {start}, {n_steps} steps do not fit {len(X)} states of '{traj.name}'"
                         f" (a model with history {H} starts at state {H} or later)")
    dev = model.x_mean.device
    g = model.graph(traj).to(dev)
    win = torch.from_numpy(X[start - H : start + 1]).to(dev)
    out = [win[-1].cpu().numpy()]
    for k in range(n_steps):
        s = model.step_window(g, win)
        if not torch.isfinite(s).all():
            log.warning("rollout of '%s' blew up (non-finite state) at step %d", traj.name, k + 1)
            out += [np.full_like(out[0], np.nan)] * (n_steps - k)
            break
        win = torch.cat([win[1:], s[None]]) if H else s[None]
        out.append(s.cpu().numpy())
    return np.stack(out)


# ------------------------------------------------------------------ statistics


def in_channels(cfg: StepConfig, stats: dict[str, Any]) -> int:
    """Node input size of a step model: state, ``history`` increments, node types, globals."""
    n_read = len(stats["x_mean"]) - len(cfg.diagnosed)
    return n_read * (1 + int(cfg.history)) + len(stats["node_types"]) + len(cfg.globals)


def build_model(cfg: StepConfig, stats: dict[str, Any]) -> torch.nn.Module:
    from meshops import models

    C = len(stats["x_mean"])
    opts = dict(cfg.model_options)
    opts.update(in_channels=in_channels(cfg, stats), out_channels=C + len(cfg.poisson), global_channels=0, edge_channels=int(stats["dim"]) + 1)
    return models.create(cfg.model, **opts)


# ------------------------------------------------------------------ training


def _batch(graphs: list[Any], states: list[torch.Tensor], pasts: list[torch.Tensor | None],
           targets: list[torch.Tensor]) -> Any:
    from torch_geometric.data import Batch

    items = []
    for g, s, q, y in zip(graphs, states, pasts, targets, strict=True):
        h = g.clone()
        h.state, h.y = s, y
        if q is not None:
            h.past = q.transpose(0, 1)  # (N, H, C): batched along nodes
        items.append(h)
    return Batch.from_data_list(items)


def _noise_scale(cfg: StepConfig, stats: dict[str, Any]) -> torch.Tensor:
    """Noise standard deviation per channel: ``cfg.noise`` (one number, or a value for every channel) times
    the channel's state or increment standard deviation."""
    ref = torch.tensor(stats["x_std"] if cfg.noise_ref == "state" else stats["d_std"], dtype=torch.float32)
    if not isinstance(cfg.noise, dict):
        return ref * cfg.noise
    chans = list(stats["channels"])
    if set(cfg.noise) != set(chans):
        raise ValueError(f"StepConfig: per-channel noise {cfg.noise} must name each of the channels {chans} once")
    return ref * torch.tensor([float(cfg.noise[c]) for c in chans])


def _sample(st: Stepper, g: Any, X: torch.Tensor, rng: np.random.Generator,
            noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """A noisy input window of one trajectory (pushed forward ``unroll - 1`` steps) and its target."""
    cfg, H = st.cfg, st.history
    t = int(rng.integers(H, len(X) - cfg.unroll))
    win = X[t - H : t + 1]
    eps = noise * (torch.randn_like(win[-1]) if cfg.noise_shared else torch.randn_like(win))
    win = torch.where(g.fixed, win, win + eps)
    if cfg.unroll > 1:
        with torch.no_grad():
            for _ in range(cfg.unroll - 1):
                nxt = st.step_window(g, win)
                win = torch.cat([win[1:], nxt[None]])
        t += cfg.unroll - 1
    past = win[:-1] if H else None
    return win[-1], past, st.target(win[-1], past, X[t + 1])


def _loss(st: Stepper, b: Any) -> torch.Tensor:
    past = b.past.transpose(0, 1) if st.history else None
    pred = st.raw(b, b.state, past)
    w = (~b.fixed).float()
    return ((pred - b.y) ** 2 * w).sum() / w.sum().clamp_min(1.0)


def train_stepper(trajs: Sequence[Trajectory], cfg: StepConfig, out: str | Path | None = None,
                  progress: bool = False, val: Sequence[Trajectory] | None = None,
                  model: torch.nn.Module | None = None) -> tuple[Stepper, dict[str, Any]]:
    """Train a step model on ``trajs``; save ``out/best.pt`` when ``out`` is given.

    With ``val`` trajectories and ``cfg.val_every > 0`` their one-step error (or, with
    ``cfg.val_rollout = n``, their error over the first ``n`` steps of a rollout) is measured every
    ``val_every`` steps and the weights with the lowest one are kept (validation-chosen stopping
    point); with ``cfg.patience = n`` training stops after ``n`` validations without a new best
    (early stopping; ``steps`` is then the maximum budget and ``steps_used`` in the history says
    where it stopped). ``model`` replaces the registry model (a peer's network taking the graph).
    Returns the model and a history dict (loss per logged step, validation, wall time).
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    stats = fit_stats(trajs, cfg)
    for t in val or []:  # refused now, not at the first validation
        check_trajectory(stats, cfg, t)
    st = Stepper(model if model is not None else build_model(cfg, stats), cfg, stats)
    graphs = [st.graph(t) for t in trajs]
    X = [torch.from_numpy(t.states(cfg.fields)) for t in trajs]
    opt = torch.optim.AdamW(st.model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / cfg.steps))))
    noise = _noise_scale(cfg, stats)
    hist: list[dict[str, float]] = []
    best: dict[str, Any] = {"val": math.inf, "step": 0, "state": None}
    t0, c0 = time.perf_counter(), time.process_time()
    from tqdm.auto import tqdm

    bar = tqdm(range(cfg.steps), disable=not progress, desc=f"train {cfg.model}", dynamic_ncols=True)
    st.train()
    run, used = 0.0, cfg.steps
    for it in bar:
        picks = [int(rng.integers(len(trajs))) for _ in range(cfg.batch_size)]
        smp = [_sample(st, graphs[i], X[i], rng, noise) for i in picks]
        loss = _loss(st, _batch([graphs[i] for i in picks], *map(list, zip(*smp, strict=True))))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(st.model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        lv = float(loss.detach())
        if not math.isfinite(lv):
            raise RuntimeError(f"stepping: training diverged (loss {lv}) at step {it + 1}")
        run = lv if it == 0 else 0.98 * run + 0.02 * lv
        if (it + 1) % 50 == 0 or it + 1 == cfg.steps:
            hist.append({"step": it + 1, "loss": run, "time_s": time.perf_counter() - t0})
            bar.set_postfix(loss=f"{run:.4g}")
        if val and cfg.val_every and ((it + 1) % cfg.val_every == 0 or it + 1 == cfg.steps):
            _validate(st, val, it + 1, best, hist)
            if cfg.patience and (it + 1 - best["step"]) >= cfg.patience * cfg.val_every:
                used = it + 1
                log.info("stepping: no better validation score for %d validations, stopped at step %d (best %d)",
                         cfg.patience, used, best["step"])
                break
    bar.close()
    if best["state"] is not None:
        st.model.load_state_dict(best["state"])
    st.eval()
    info = {"history": hist, "train_time_s": time.perf_counter() - t0, "train_cpu_s": time.process_time() - c0,
            "n_params": sum(p.numel() for p in st.model.parameters()),
            "best_step": best["step"] or cfg.steps, "steps_used": used,
            "best_val": None if best["state"] is None else best["val"],
            "val_metric": f"rollout_{cfg.val_rollout}" if cfg.val_rollout else "one_step"}
    if out is not None:
        save_stepper(st, Path(out) / "best.pt", extra_config={"train_names": [t.name for t in trajs], **info})
    return st, info


def _validate(st: Stepper, val: Sequence[Trajectory], step: int, best: dict[str, Any],
              hist: list[dict[str, float]]) -> None:
    st.eval()
    n = st.cfg.val_rollout
    e = rollout_score(st, val, n) if n else one_step_error(st, val)
    st.train()
    hist.append({"step": step, f"val_rollout_{n}" if n else "val_one_step": e})
    if e < best["val"]:
        best.update(val=e, step=step, state={k: v.detach().clone() for k, v in st.model.state_dict().items()})


def save_stepper(st: Stepper, path: Path, extra_config: dict[str, Any] | None = None) -> Path:
    """A self-contained checkpoint (``kind: stepping``) of a step model."""
    cfg = {"kind": "stepping", "model": dict(st.model.meshops_config), "step": asdict(st.cfg),
           **(extra_config or {})}
    return save_checkpoint(path, model_state=st.model.state_dict(), config=cfg, normalization=st.stats)


def load_stepper(path: str | Path, device: str | torch.device = "cpu") -> Stepper:
    """Load a step model saved by :func:`train_stepper` (raises naming a non-stepping checkpoint)."""
    return stepper_from_checkpoint(load_checkpoint(path), path).to(device).eval()


def stepper_from_checkpoint(ck: dict[str, Any], path: str | Path) -> Stepper:
    """The step model of an already loaded checkpoint ``ck`` (read from ``path``, named in the refusal)."""
    c = ck["config"]
    if c.get("kind") != "stepping":
        raise CheckpointError(f"{path}: not a time-stepping checkpoint (kind {c.get('kind')!r}); "
                              "train one on a trajectory dataset")
    cfg = StepConfig(**c["step"])
    model = build_model(cfg, ck["normalization"])
    model.load_state_dict(ck["model"])
    return Stepper(model, cfg, ck["normalization"])


def is_stepping_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a time-stepping checkpoint (``kind: stepping``)."""
    try:
        return load_checkpoint(path)["config"].get("kind") == "stepping"
    except (CheckpointError, FileNotFoundError):
        return False

