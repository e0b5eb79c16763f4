"""What a training run carries from step to step, and how it is saved and restored.

:class:`Run` holds the model, the optimizer, the schedule and the :class:`Progress` counters;
:class:`Checkpoints` writes ``last.pt`` (everything needed to resume exactly) and ``best.pt``
(weights only); :func:`read_resume_checkpoint` and :func:`restore` bring a run back from
``last.pt``. RNG states are stored as tensors and plain values so checkpoints load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meshops.data.graphs import Pipeline
from meshops.train.checkpoint import load_checkpoint, save_checkpoint
from meshops.train.config import TrainConfig
from meshops.train.validate_config import check_resume

log = logging.getLogger(__name__)

__all__ = ["Checkpoints", "Progress", "Run", "read_resume_checkpoint", "restore", "rng_state", "set_rng_state"]


@dataclass
class Progress:
    """Where a run stands: the epoch and step it (re)starts at, the step count, the best score."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best: float = math.inf
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Run:
    """The model being trained and everything that updates it.

    ``total`` is the number of steps the schedule spans (epochs x batches per epoch); ``total_run``
    is where this run stops (``max_steps`` when smaller).
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp: tuple[bool, torch.dtype]
    model_config: dict[str, Any]
    batches_per_epoch: int
    total: int
    total_run: int
    progress: Progress = field(default_factory=Progress)

    @property
    def bare_model(self) -> torch.nn.Module:
        """The model without its DDP wrapper."""
        m = self.model
        return m.module if hasattr(m, "module") else m


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors/plain values (weights_only-loadable)."""
    py = random.getstate()
    npk, npkeys, nppos, npg, npc = np.random.get_state()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {"keys": torch.from_numpy(npkeys.astype(np.int64)), "pos": int(nppos),
                  "has_gauss": int(npg), "cached": float(npc)},
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(s: dict[str, Any]) -> None:
    """Restore the states :func:`rng_state` recorded."""
    torch.set_rng_state(s["torch"])
    py = s["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = s["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def read_resume_checkpoint(config: TrainConfig, out: Path) -> dict[str, Any] | None:
    """``out/last.pt`` when the config asks to resume and it exists (refused if its config differs in anything but the epoch budget)."""
    last_path = out / "last.pt"
    if not (config.resume and last_path.is_file()):
        return None
    ckpt = load_checkpoint(last_path)
    check_resume(ckpt["config"].get("train", {}), config.to_dict(), str(last_path),  # only the budget may differ
                 defaults=TrainConfig().to_dict())
    log.info("resuming from %s (epoch %d, step %d)", last_path, ckpt["progress"]["epoch"],
             ckpt["progress"]["global_step"])
    return ckpt


def restore(run: Run, ckpt: dict[str, Any]) -> None:
    """Load weights, optimizer, schedule, scaler, progress and RNG states from ``last.pt``."""
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    if "scaler" in ckpt and run.scaler.is_enabled():
        run.scaler.load_state_dict(ckpt["scaler"])
    pr = ckpt["progress"]
    run.progress = Progress(epoch=int(pr["epoch"]), step_in_epoch=int(pr["step_in_epoch"]),
                            global_step=int(pr["global_step"]), best=float(pr["best"]),
                            history=json.loads(pr["history_json"]))
    set_rng_state(ckpt["rng"])


@dataclass
class Checkpoints:
    """Writes the run folder's ``last.pt`` and ``best.pt`` (self-contained, see :mod:`.checkpoint`)."""

    out: Path
    config: dict[str, Any]
    pipeline: Pipeline

    @property
    def last(self) -> Path:
        return self.out / "last.pt"

    @property
    def best(self) -> Path:
        return self.out / "best.pt"

    def save(self, path: Path, run: Run, epoch: int, step_in_epoch: int, with_state: bool = True) -> None:
        """Save the weights and progress (``epoch``, ``step_in_epoch``: where a resume starts);
        ``with_state`` adds the optimizer, schedule, scaler and RNG states."""
        p = run.progress
        extra: dict[str, Any] = {
            "progress": {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": p.global_step,
                         "best": p.best, "history_json": json.dumps(p.history)},
        }
        if with_state:
            extra.update(optimizer=run.optimizer.state_dict(), scheduler=run.scheduler.state_dict(),
                         rng=rng_state())
            if run.scaler.is_enabled():
                extra["scaler"] = run.scaler.state_dict()
        norm = self.pipeline.normalizer
        save_checkpoint(path, model_state=run.bare_model.state_dict(), config=self.config,
                        normalization=norm.to_dict() if norm else {}, extra=extra)
