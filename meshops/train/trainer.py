"""The trainer: AdamW, warm-up + cosine schedule, clipping, AMP on GPU, best/last checkpoints,
exact resume, DDP through ``torchrun``.

Determinism and resume: the order of the training cases in epoch ``e`` is a permutation drawn
from a generator seeded with ``(seed, e)``, so it needs no saved state; ``last.pt`` records the
epoch and the step within it, the optimizer, scheduler and RNG states. Resuming skips the steps
already done and ends with the same weights as an uninterrupted run.

DDP: ``batch_size`` is the global batch. Each global batch is split over the processes and every
process scales its loss so that the averaged gradient equals that of the global batch's mean
per-case loss, the same as one process with the same global batch.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meshops.data import Case, DatasetError, load_dataset
from meshops.data.graphs import FeatureSpec, GraphCache, Pipeline
from meshops.data.normalize import Normalizer
from meshops.data.splits import load_or_make_splits, write_json_atomic
from meshops.train import distributed as D
from meshops.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from meshops.train.config import TrainConfig
from meshops.train.metrics import field_metrics, mean_metrics

log = logging.getLogger(__name__)

__all__ = ["train", "TrainResult", "cosine_warmup", "per_graph_mse", "collate", "rng_state", "set_rng_state"]


@dataclass
class TrainResult:
    """Where a run went and how it ended."""

    out: Path
    best_checkpoint: Path
    last_checkpoint: Path
    steps: int
    best_val_rel_l2: float
    history: list[dict[str, Any]]


def cosine_warmup(step: int, total: int, warmup_steps: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up to 1 over ``warmup_steps``, then cosine decay to ``min_ratio``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


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
    from meshops import ops

    err = (pred.float() - y.float()).pow(2).mean(dim=-1, keepdim=True)
    if batch is None:
        return err.mean().reshape(1)
    return ops.scatter(err, batch, dim_size=n_graphs, reduce="mean").reshape(-1)


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
    torch.set_rng_state(s["torch"])
    py = s["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = s["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g).tolist()


def _global_batches(order: list[int], batch_size: int, world: int) -> list[list[int]]:
    out = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [b for b in out if len(b) >= world]


def _amp(config: TrainConfig, device: torch.device) -> tuple[bool, torch.dtype]:
    if config.amp == "off" or device.type != "cuda":
        if config.amp == "on" and device.type != "cuda":
            log.warning("amp: 'on' ignored on %s (mixed precision is used on CUDA only)", device)
        return False, torch.float32
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return True, dtype


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


@torch.no_grad()
def evaluate_samples(
    model: torch.nn.Module,
    pipeline: Pipeline,
    samples: Sequence[Any],
    names: Sequence[str],
    device: torch.device,
    amp: tuple[bool, torch.dtype] = (False, torch.float32),
) -> tuple[float, dict[str, dict[str, dict[str, float]]]]:
    """Mean normalized MSE and per-case per-field metrics in physical units (at the graph nodes)."""
    assert pipeline.normalizer is not None
    model.eval()
    losses = []
    per_case: dict[str, dict[str, dict[str, float]]] = {}
    f = pipeline.features
    for name, s in zip(names, samples, strict=True):
        d = s.to(device)
        with torch.autocast(device_type=device.type, dtype=amp[1], enabled=amp[0]):
            pred = model(d)
        pred = pred.float()
        losses.append(float((pred - d.y).pow(2).mean()))
        p = pipeline.normalizer.targets.decode(pred.cpu().double().numpy())
        t = pipeline.normalizer.targets.decode(d.y.cpu().double().numpy())
        per_case[name] = field_metrics(p, t, f.targets, f.target_channels)
    model.train()
    return (float(np.mean(losses)) if losses else float("nan")), per_case


def _score(per_case: dict[str, dict[str, dict[str, float]]]) -> float:
    m = mean_metrics(per_case)
    return float(np.mean([v["rel_l2"] for v in m.values()])) if m else float("inf")


def _load_cases(ds: Any, names: Sequence[str], index: dict[str, int]) -> list[Case]:
    from meshops.data import check_case

    return [check_case(ds[index[n]], where=f"dataset case '{n}'") for n in names]


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


def _train(config: TrainConfig, info: D.DistInfo) -> TrainResult:
    from meshops import models

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = info.device
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed % (2**32))

    # ------------------------------------------------------------------ data
    ds = load_dataset(config.dataset, **config.dataset_options)
    names = list(ds.case_names())
    index = {n: i for i, n in enumerate(names)}
    split_path = Path(config.splits) if config.splits else out / "splits.json"
    split_seed = config.seed if config.split_seed is None else config.split_seed
    if info.is_main:
        splits = load_or_make_splits(split_path, names, config.split_fractions, split_seed)
    D.barrier(info)
    if not info.is_main:
        splits = load_or_make_splits(split_path, names, config.split_fractions, split_seed)
    train_cases = _load_cases(ds, splits["train"], index)
    val_names = splits["val"] or splits["train"]
    if not splits["val"]:
        log.warning("the validation split is empty; validating on the training cases")
    val_cases = _load_cases(ds, val_names, index)
    feats = FeatureSpec.from_case(
        train_cases[0], pos=bool(config.features.get("pos", True)), boundary=bool(config.features.get("boundary", True))
    )
    cache = GraphCache(config.cache)
    pipeline = Pipeline(feats, config.graph, cache=cache)

    # ------------------------------------------------------------------ resume?
    last_path, best_path = out / "last.pt", out / "best.pt"
    ckpt = None
    if config.resume and last_path.is_file():
        ckpt = load_checkpoint(last_path)
        if ckpt["config"].get("train", {}).get("seed") != config.seed:
            raise CheckpointError(
                f"{last_path}: was written with seed {ckpt['config'].get('train', {}).get('seed')}, "
                f"the config says {config.seed}; use another 'out' folder or resume: false"
            )
        pipeline.normalizer = Normalizer.from_dict(ckpt["normalization"])
        log.info("resuming from %s (epoch %d, step %d)", last_path, ckpt["progress"]["epoch"],
                 ckpt["progress"]["global_step"])
    else:
        pipeline.fit(train_cases)
    assert pipeline.normalizer is not None
    train_samples = [pipeline.sample(c, targets=True) for c in train_cases]
    val_samples = [pipeline.sample(c, targets=True) for c in val_cases]
    log.info("graph cache %s: %d built, %d reused", cache.root, cache.builds, cache.hits)

    # ------------------------------------------------------------------ model and optimizer
    torch.manual_seed(config.seed)
    model_cfg = dict(config.model_options)
    model_cfg.update(in_channels=feats.in_channels, out_channels=feats.out_channels,
                     global_channels=feats.global_channels)
    model = models.create(config.model, **model_cfg).to(dev)
    meshops_config = dict(model.meshops_config)
    # Models that need more than the mesh graph (a centerline, a boundary encoding) take it from the case.
    prepare = getattr(model, "prepare_sample", None)
    if prepare is not None:
        train_samples = [prepare(d, c) for d, c in zip(train_samples, train_cases, strict=True)]
        val_samples = [prepare(d, c) for d, c in zip(val_samples, val_cases, strict=True)]
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    batches_per_epoch = len(_global_batches(list(range(len(train_samples))), config.batch_size, info.world))
    if batches_per_epoch == 0:
        raise DatasetError(
            f"{len(train_samples)} training cases make no batch of at least {info.world} cases for "
            f"{info.world} processes; lower the process count or add cases"
        )
    total = config.epochs * batches_per_epoch
    if config.max_steps:
        total_run = min(total, config.max_steps)
    else:
        total_run = total
    warm = int(round(config.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cosine_warmup(s, total, warm, config.min_lr_ratio)
    )
    amp = _amp(config, dev)
    scaler = torch.amp.GradScaler("cuda", enabled=amp[0] and amp[1] == torch.float16)
    history: list[dict[str, Any]] = []
    start_epoch, start_step, global_step, best = 0, 0, 0, float("inf")
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        if "scaler" in ckpt and scaler.is_enabled():
            scaler.load_state_dict(ckpt["scaler"])
        pr = ckpt["progress"]
        start_epoch, start_step, global_step = int(pr["epoch"]), int(pr["step_in_epoch"]), int(pr["global_step"])
        best = float(pr["best"])
        history = json.loads(pr["history_json"])
        set_rng_state(ckpt["rng"])
    if info.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    full_config = {
        "train": config.to_dict(),
        "model": meshops_config,
        "features": feats.to_dict(),
        "graph": dict(config.graph),
        "dataset": getattr(ds, "meshops_spec", {"dataset": config.dataset, "options": config.dataset_options}),
    }
    if info.is_main:
        write_json_atomic(full_config, out / "config.json")

    def save(path: Path, epoch: int, step_in_epoch: int, with_state: bool = True) -> None:
        extra: dict[str, Any] = {
            "progress": {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step,
                         "best": best, "history_json": json.dumps(history)},
        }
        if with_state:
            extra.update(optimizer=opt.state_dict(), scheduler=sched.state_dict(), rng=rng_state())
            if scaler.is_enabled():
                extra["scaler"] = scaler.state_dict()
        save_checkpoint(path, model_state=_unwrap(model).state_dict(), config=full_config,
                        normalization=pipeline.normalizer.to_dict() if pipeline.normalizer else {},
                        extra=extra)

    # ------------------------------------------------------------------ loop
    from tqdm.auto import tqdm

    model.train()
    t0 = time.perf_counter()
    stop = global_step >= total_run
    epoch = start_epoch
    for epoch in range(start_epoch, config.epochs):
        if stop:
            break
        batches = _global_batches(_epoch_order(len(train_samples), config.seed, epoch), config.batch_size, info.world)
        bar = tqdm(total=len(batches), initial=start_step if epoch == start_epoch else 0,
                   desc=f"epoch {epoch + 1}/{config.epochs}", disable=not (config.progress and info.is_main),
                   leave=False, dynamic_ncols=True)
        losses: list[float] = []
        for k, gb in enumerate(batches):
            if epoch == start_epoch and k < start_step:
                continue
            local = gb[info.rank :: info.world]
            data = collate([train_samples[i] for i in local]).to(dev)
            with torch.autocast(device_type=dev.type, dtype=amp[1], enabled=amp[0]):
                pred = model(data)
            ell = per_graph_mse(pred, data.y, getattr(data, "batch", None), len(local))
            loss = ell.sum() * (info.world / len(gb))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.clip and config.clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            global_step += 1
            lv = float(loss.detach()) / info.world * len(gb) / max(len(local), 1)
            losses.append(lv)
            bar.update(1)
            bar.set_postfix(loss=f"{lv:.4g}", lr=f"{sched.get_last_lr()[0]:.2e}")
            if not np.isfinite(lv):
                raise RuntimeError(f"training diverged: loss is {lv} at step {global_step} (epoch {epoch + 1})")
            if config.checkpoint_every and global_step % config.checkpoint_every == 0 and info.is_main:
                save(last_path, epoch, k + 1)
            if global_step >= total_run:
                stop = True
                break
        bar.close()
        epoch_done = not stop or k == len(batches) - 1
        rec: dict[str, Any] = {"epoch": epoch + 1, "step": global_step, "lr": sched.get_last_lr()[0],
                               "train_loss": float(np.mean(losses)) if losses else float("nan"),
                               "time_s": time.perf_counter() - t0}
        if info.is_main and ((epoch + 1) % config.val_every == 0 or stop or epoch + 1 == config.epochs):
            vloss, per_case = evaluate_samples(_unwrap(model), pipeline, val_samples, val_names, dev, amp)
            score = _score(per_case)
            rec.update(val_loss=vloss, val_rel_l2=score, val_fields=mean_metrics(per_case))
            if score < best or not best_path.is_file():
                best = min(best, score)
                history.append(rec)
                save(best_path, epoch + 1, 0, with_state=False)
            else:
                history.append(rec)
            log.info("epoch %d: train loss %.4g, val loss %.4g, val rel L2 %.4g", epoch + 1,
                     rec["train_loss"], vloss, score)
        else:
            history.append(rec)
        if info.is_main:
            save(last_path, epoch + 1 if epoch_done else epoch, 0 if epoch_done else k + 1)
        D.barrier(info)

    if info.is_main:
        write_json_atomic({"history": history, "best_val_rel_l2": best, "steps": global_step}, out / "metrics.json")
        try:
            from meshops.viz.curves import plot_history

            plot_history(history, out / "curves.png")
        except Exception as e:  # a missing matplotlib must not lose a finished run
            log.warning("could not draw the training curves: %s", e)
    D.barrier(info)
    return TrainResult(out, best_path, last_path, global_step, best, history)
