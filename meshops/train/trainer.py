"""The trainer: AdamW, warm-up + cosine schedule, clipping, AMP on GPU, best/last checkpoints,
exact resume, DDP through ``torchrun``.

:func:`train` is a few named steps, each in a module of its own:

1. :func:`~meshops.train.state.read_resume_checkpoint`: ``last.pt`` of an interrupted run, if any;
2. :func:`~meshops.train.setup.prepare_data`: cases, splits, normalization, graphs;
3. :func:`~meshops.train.setup.build_model_and_optimizer`: model, AdamW, schedule, AMP scaler;
4. :func:`~meshops.train.state.restore`: weights, optimizer and RNG states of the resumed run;
5. :func:`~meshops.train.loop.fit_loop`: the epochs (train, validate, save ``last.pt``/``best.pt``);
6. :func:`finish`: ``metrics.json`` and the training curves.

Determinism and resume: the order of the training cases in epoch ``e`` is a permutation drawn
from a generator seeded with ``(seed, e)``, so it needs no saved state; ``last.pt`` records the
epoch and the step within it, the optimizer, scheduler and RNG states. Resuming skips the steps
already done and ends with the same weights as an uninterrupted run.

DDP: ``batch_size`` is the global batch. Each global batch is split over the processes and every
process scales its loss so that the averaged gradient equals that of the global batch's mean
per-case loss, the same as one process with the same global batch.
"""

from __future__ import annotations

import logging
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meshops.atomic import remove_stale
from meshops.data.splits import write_json_atomic
from meshops.train import distributed as D
from meshops.train.config import TrainConfig
from meshops.train.loop import collate, epoch_order, fit_loop, per_graph_mse
from meshops.train.setup import (
    TrainData,
    build_model_and_optimizer,
    cosine_warmup,
    global_batches,
    prepare_data,
    run_config,
    wrap_ddp,
)
from meshops.train.state import Checkpoints, Run, read_resume_checkpoint, restore, rng_state, set_rng_state
from meshops.train.validate import evaluate_samples

log = logging.getLogger(__name__)

__all__ = ["train", "TrainResult", "cosine_warmup", "per_graph_mse", "collate", "rng_state", "set_rng_state",
           "evaluate_samples"]

# The names the loop helpers had when they lived here (kept for importers and tests).
_epoch_order = epoch_order
_global_batches = global_batches


@dataclass
class TrainResult:
    """Where a run went and how it ended."""

    out: Path
    best_checkpoint: Path
    last_checkpoint: Path
    steps: int
    best_val_rel_l2: float
    history: list[dict[str, Any]]


def train(config: TrainConfig | dict[str, Any]) -> TrainResult:
    """Train a model as ``config`` says; return where the checkpoints are.

    Launched by ``torchrun --nproc_per_node=K``, every process calls this and the run is DDP.
    """
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    info = D.setup(config.device)
    try:
        return _train(config, info)
    finally:
        D.teardown(info)


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))


def _train(config: TrainConfig, info: D.DistInfo) -> TrainResult:
    out = Path(config.out)
    fresh = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        run, data, full_config = _set_up(config, info, out)
    except BaseException:
        if fresh and info.is_main:  # a run that never started leaves no folder behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    ckpts = Checkpoints(out, full_config, data.pipeline)
    fit_loop(config, info, run, data, ckpts)
    finish(info, run, out)
    return TrainResult(out, ckpts.best, ckpts.last, run.progress.global_step, run.progress.best,
                       run.progress.history)


def _set_up(config: TrainConfig, info: D.DistInfo, out: Path) -> tuple[Run, TrainData, dict[str, Any]]:
    """Data, model and optimizer (resumed from ``out/last.pt`` when asked); writes ``config.json``."""
    if info.is_main:
        for stale in remove_stale(out):
            log.info("removed %s left by an interrupted run", stale)
    _seed_everything(config.seed)
    ckpt = read_resume_checkpoint(config, out)
    data = prepare_data(config, info, out, normalization=ckpt["normalization"] if ckpt is not None else None)
    run = build_model_and_optimizer(config, info, data)
    if ckpt is not None:
        restore(run, ckpt)
    wrap_ddp(run, info, data.parts)
    full_config = run_config(config, run, data)
    if info.is_main:
        write_json_atomic(full_config, out / "config.json")
    return run, data, full_config


def finish(info: D.DistInfo, run: Run, out: Path) -> None:
    """Write ``metrics.json`` and ``curves.png`` (main process), then wait for the others."""
    p = run.progress
    if info.is_main:
        write_json_atomic({"history": p.history, "best_val_rel_l2": p.best, "steps": p.global_step},
                          out / "metrics.json")
        try:
            from meshops.viz.curves import plot_history

            plot_history(p.history, out / "curves.png")
        except Exception as e:  # a missing matplotlib must not lose a finished run
            log.warning("could not draw the training curves: %s", e)
    D.barrier(info)
