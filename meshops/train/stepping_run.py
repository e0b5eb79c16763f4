"""``meshops train`` on a trajectory dataset: a :class:`~meshops.train.config.TrainConfig` with a
``stepping`` section trains a step model (:func:`meshops.train.stepping.train_stepper`).

The config's ``dataset`` / ``dataset_options`` name a trajectory dataset (``ds[i]`` is a
:class:`~meshops.data.trajectory.Trajectory`, e.g. ``cylinder_flow``); ``model``,
``model_options``, ``graph``, ``lr``, ``min_lr_ratio``, ``clip``, ``seed`` and ``batch_size`` carry
over; ``stepping`` holds the keys of :class:`~meshops.train.stepping.StepConfig` that are about time
stepping (``fields``, ``noise``, ``noise_ref``, ``unroll``, ``history``, ``val_every``, ``val_rollout``,
``globals``, ``diagnosed``, ``zero_mean``). The number
of optimizer steps is ``max_steps`` or ``epochs`` passes over every (trajectory, time) pair.
Trajectories are split by ``split_fractions`` (train / val / test, shuffled by ``split_seed`` or
``seed``; written to ``OUT/splits.json``); the validation trajectories choose the kept weights.
Writes ``OUT/best.pt`` (a ``kind: stepping`` checkpoint), ``OUT/metrics.json`` and
``OUT/config.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from meshops.data import DatasetError
from meshops.train.config import ConfigError, TrainConfig

log = logging.getLogger(__name__)

__all__ = ["STEPPING_KEYS", "step_config", "split_trajectories", "train_from_config"]

#: Keys of the ``stepping`` section (the rest of StepConfig comes from the TrainConfig).
STEPPING_KEYS = ("fields", "noise", "noise_ref", "noise_shared", "base", "unroll", "history", "val_every", "globals",
                 "val_rollout", "diagnosed", "zero_mean", "patience")


def step_config(config: TrainConfig, n_samples: int) -> Any:
    """The :class:`StepConfig` of ``config`` (``n_samples`` (trajectory, time) pairs size an epoch)."""
    from meshops.train.stepping import StepConfig

    sec = dict(config.stepping or {})
    bad = sorted(set(sec) - set(STEPPING_KEYS))
    if bad:
        raise ConfigError(f"training config: stepping.{bad[0]} is not a stepping key; known: {', '.join(STEPPING_KEYS)}")
    steps = config.max_steps or config.epochs * max(1, math.ceil(n_samples / config.batch_size))
    try:
        return StepConfig(model=config.model, model_options=dict(config.model_options), graph=dict(config.graph),
                          steps=int(steps), batch_size=config.batch_size, lr=float(config.lr),
                          min_lr_ratio=float(config.min_lr_ratio), clip=float(config.clip), seed=config.seed, **sec)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"training config: stepping: {e}") from e


def split_trajectories(names: list[str], fractions: list[float], seed: int) -> dict[str, list[str]]:
    """Train / val / test case names by ``fractions`` (at least one training case; val and test get
    one case each when their fraction is positive and three or more cases exist)."""
    n = len(names)
    order = [names[i] for i in np.random.default_rng(seed).permutation(n)]
    fr = list(fractions) + [0.0] * (3 - len(fractions))
    n_val = max(1 if fr[1] > 0 and n >= 3 else 0, int(round(fr[1] * n)))
    n_test = max(1 if fr[2] > 0 and n >= 3 else 0, int(round(fr[2] * n)))
    if n - n_val - n_test < 1:
        raise DatasetError(f"stepping: {n} trajectories cannot give {n_val} validation and {n_test} test cases "
                           "and at least one for training")
    return {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}


def train_from_config(config: TrainConfig) -> Any:
    """Train a step model as ``config`` says; return a :class:`~meshops.train.trainer.TrainResult`."""
    from meshops.atomic import write_text_atomic
    from meshops.data import load_dataset
    from meshops.data.trajectory import Trajectory
    from meshops.train.stepping import train_stepper
    from meshops.train.trainer import TrainResult

    ds = load_dataset(config.dataset, **dict(config.dataset_options))
    trajs = [ds[i] for i in range(len(ds))]
    if not trajs or not all(isinstance(t, Trajectory) for t in trajs):
        raise DatasetError(f"{config.dataset}: 'stepping' needs a trajectory dataset (items of type Trajectory), "
                           f"got {type(trajs[0]).__name__ if trajs else 'no items'}")
    by_name = {t.name: t for t in trajs}
    if len(by_name) != len(trajs):
        raise DatasetError(f"{config.dataset}: trajectory names are not unique")
    seed = config.split_seed if config.split_seed is not None else config.seed
    splits = split_trajectories(list(by_name), config.split_fractions, seed)
    train = [by_name[n] for n in splits["train"]]
    val = [by_name[n] for n in splits["val"]]
    cfg = step_config(config, sum(t.n_steps - 1 for t in train))
    if val and not cfg.val_every:
        cfg = dataclasses.replace(cfg, val_every=max(1, cfg.steps // 10))
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(splits, indent=1), out / "splits.json")
    write_text_atomic(json.dumps({"train": config.to_dict(), "step": dataclasses.asdict(cfg)}, indent=1,
                                 default=str), out / "config.json")
    log.info("stepping: %d train, %d val trajectories, %d steps", len(train), len(val), cfg.steps)
    st, info = train_stepper(train, cfg, out=out, progress=config.progress, val=val or None)
    write_text_atomic(json.dumps(info, indent=1, default=float), out / "metrics.json")
    best = out / "best.pt"
    v = info.get("best_val")
    return TrainResult(out=out, best_checkpoint=best, last_checkpoint=best, steps=cfg.steps,
                       best_val_rel_l2=float("nan") if v is None else float(v), history=info["history"])
