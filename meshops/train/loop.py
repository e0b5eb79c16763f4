"""The training loops: :func:`fit_loop` runs epochs, :func:`train_epoch` runs the steps of one,
:func:`training_step` is one optimizer update.

The order of the training cases in epoch ``e`` is a permutation drawn from a generator seeded with
``(seed, e)`` (:func:`epoch_order`), so a resumed run skips the steps already done and replays the
rest exactly. Under DDP each global batch is split over the processes and every process scales its
loss so the averaged gradient equals that of the global batch's mean per-case loss.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from meshops import ops
from meshops.train import distributed as D
from meshops.train.config import TrainConfig
from meshops.train.metrics import mean_metrics
from meshops.train.parts import parts_step
from meshops.train.setup import TrainData, global_batches
from meshops.train.state import Checkpoints, Run
from meshops.train.validate import evaluate_samples, score

log = logging.getLogger(__name__)

__all__ = ["collate", "epoch_order", "fit_loop", "per_graph_mse", "train_epoch", "training_step"]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The training cases' order in ``epoch``: a permutation that is a pure function of (seed, epoch)."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g).tolist()


def collate(samples: Sequence[Any]) -> Any:
    """Batch graphs with torch_geometric (the MeshGraph ``__inc__`` offsets every level's indices)."""
    from torch_geometric.data import Batch

    return Batch.from_data_list(list(samples))


def per_graph_mse(pred: torch.Tensor, y: torch.Tensor, batch: torch.Tensor | None, n_graphs: int) -> torch.Tensor:
    """Mean squared error of each graph of a batch (node and channel mean).

    Shapes
    ------
    pred, y : (N, C); batch : (N,) -> (n_graphs,)
    """
    err = (pred.float() - y.float()).pow(2).mean(dim=-1, keepdim=True)
    if batch is None:
        return err.mean().reshape(1)
    return ops.scatter(err, batch, dim_size=n_graphs, reduce="mean").reshape(-1)


def training_step(config: TrainConfig, info: D.DistInfo, run: Run, data: Any, n_local: int, n_global: int) -> float:
    """Forward, loss, backward, clip, optimizer and schedule step on this process's part of a batch.

    Returns the global batch's mean per-case loss as this process sees it.
    """
    with torch.autocast(device_type=info.device.type, dtype=run.amp[1], enabled=run.amp[0]):
        pred = run.model(data)
    ell = per_graph_mse(pred, data.y, getattr(data, "batch", None), n_local)
    loss = ell.sum() * (info.world / n_global)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if config.clip and config.clip > 0:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    return float(loss.detach()) / info.world * n_global / max(n_local, 1)


@dataclass
class EpochEnd:
    """How an epoch ended: its step losses, whether the run's step budget ran out, and where."""

    losses: list[float]
    stopped: bool
    finished: bool
    position: int


def train_epoch(config: TrainConfig, info: D.DistInfo, run: Run, data: TrainData, ckpts: Checkpoints,
                epoch: int, skip: int) -> EpochEnd:
    """The steps of one epoch, from batch ``skip`` on (a resumed epoch skips the steps already done)."""
    from tqdm.auto import tqdm

    p = run.progress
    batches = global_batches(epoch_order(len(data.train_samples), config.seed, epoch), config.batch_size, info.world)
    bar = tqdm(total=len(batches), initial=skip, desc=f"epoch {epoch + 1}/{config.epochs}",
               disable=not (config.progress and info.is_main), leave=False, dynamic_ncols=True)
    losses: list[float] = []
    stopped, k = False, len(batches) - 1
    for k, gb in enumerate(batches):
        if k < skip:
            continue
        local = gb[info.rank :: info.world]
        if data.parts is not None:  # each case part by part (the config's max_nodes_per_part / partitions)
            lv = parts_step(config, info, run, [data.train_samples[i] for i in local], local, len(gb), data.parts)
        else:
            batch = collate([data.train_samples[i] for i in local]).to(info.device)
            lv = training_step(config, info, run, batch, len(local), len(gb))
        p.global_step += 1
        losses.append(lv)
        bar.update(1)
        bar.set_postfix(loss=f"{lv:.4g}", lr=f"{run.scheduler.get_last_lr()[0]:.2e}")
        if not np.isfinite(lv):
            raise RuntimeError(f"training diverged: loss is {lv} at step {p.global_step} (epoch {epoch + 1})")
        if config.checkpoint_every and p.global_step % config.checkpoint_every == 0 and info.is_main:
            ckpts.save(ckpts.last, run, epoch, k + 1)
        if p.global_step >= run.total_run:
            stopped = True
            break
    bar.close()
    return EpochEnd(losses, stopped, finished=not stopped or k == len(batches) - 1, position=k + 1)


def validate(info: D.DistInfo, run: Run, data: TrainData, ckpts: Checkpoints, epoch: int,
             rec: dict[str, Any]) -> None:
    """Score the validation cases into ``rec``; a new best score (or no best.pt yet) writes best.pt."""
    p = run.progress
    fwd = None
    if data.parts is not None:
        parts = data.parts

        def fwd(model, d, i):  # validation cases part by part too (keys after the training cases)
            return parts.forward(model, d, -1 - i)
    vloss, per_case = evaluate_samples(run.bare_model, data.pipeline, data.val_samples, data.val_names,
                                       info.device, run.amp, forward=fwd)
    s = score(per_case)
    rec.update(val_loss=vloss, val_rel_l2=s, val_fields=mean_metrics(per_case))
    p.history.append(rec)
    if s < p.best or not ckpts.best.is_file():
        p.best = min(p.best, s)
        ckpts.save(ckpts.best, run, epoch + 1, 0, with_state=False)
    tl = rec["train_loss"]
    log.info("epoch %d: train loss %s, val loss %.4g, val rel L2 %.4g", epoch + 1,
             "(no steps)" if tl is None else f"{tl:.4g}", vloss, s)


def fit_loop(config: TrainConfig, info: D.DistInfo, run: Run, data: TrainData, ckpts: Checkpoints) -> None:
    """Epochs from where ``run.progress`` stands until the epoch budget or ``max_steps`` is spent.

    Each epoch: train its steps, record the losses, validate (every ``val_every`` epochs and at
    the end), save ``last.pt`` at the position a resume starts from.
    """
    p = run.progress
    run.model.train()
    t0 = time.perf_counter()
    first, skip = p.epoch, p.step_in_epoch
    stop = p.global_step >= run.total_run
    for epoch in range(first, config.epochs):
        if stop:
            break
        end = train_epoch(config, info, run, data, ckpts, epoch, skip if epoch == first else 0)
        stop = end.stopped
        rec: dict[str, Any] = {"epoch": epoch + 1, "step": p.global_step, "lr": run.scheduler.get_last_lr()[0],
                               # None (JSON null) when the epoch ran no steps (a resume at its end): never a NaN in metrics.json
                               "train_loss": float(np.mean(end.losses)) if end.losses else None,
                               "time_s": time.perf_counter() - t0}
        if info.is_main and ((epoch + 1) % config.val_every == 0 or stop or epoch + 1 == config.epochs):
            validate(info, run, data, ckpts, epoch, rec)
        else:
            p.history.append(rec)
        if info.is_main:
            ckpts.save(ckpts.last, run, epoch + 1 if end.finished else epoch, 0 if end.finished else end.position)
        D.barrier(info)
