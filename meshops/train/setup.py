"""The set-up steps of a training run: the data (cases, splits, graphs, normalization) and the
model with its optimizer, learning-rate schedule and mixed precision."""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from meshops.data import Case, DatasetError, check_case, load_dataset
from meshops.data.graphs import FeatureSpec, GraphCache, Pipeline
from meshops.data.normalize import Normalizer
from meshops.data.splits import load_or_make_splits
from meshops.train import distributed as D
from meshops.train.config import ConfigError, TrainConfig
from meshops.train.parts import PartCache, parts_requested
from meshops.train.state import Run

log = logging.getLogger(__name__)

__all__ = ["TrainData", "build_model_and_optimizer", "cosine_warmup", "global_batches", "prepare_data",
           "run_config"]


@dataclass
class TrainData:
    """The cases of a run and the model-ready samples made from them."""

    dataset: Any
    features: FeatureSpec
    pipeline: Pipeline
    cache: GraphCache
    train_cases: LazyCases
    val_cases: LazyCases
    val_names: list[str]
    train_samples: Samples
    val_samples: Samples
    parts: Any = None  # a meshops.train.parts.PartCache when the config trains on graph parts


def cosine_warmup(step: int, total: int, warmup_steps: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up to 1 over ``warmup_steps``, then cosine decay to ``min_ratio``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def global_batches(order: list[int], batch_size: int, world: int) -> list[list[int]]:
    """``order`` cut into global batches; a last batch smaller than the process count is dropped."""
    out = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [b for b in out if len(b) >= world]


class LazyCases(Sequence):
    """The named cases of a dataset, loaded (and checked) when indexed: none is kept."""

    def __init__(self, ds: Any, names: Sequence[str], index: dict[str, int]) -> None:
        self.ds, self.names, self.index = ds, list(names), index

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> Case:  # type: ignore[override]
        n = self.names[i]
        return check_case(self.ds[self.index[n]], where=f"dataset case '{n}'")


class Samples(Sequence):
    """Model-ready samples of lazy cases, made when indexed and kept in a byte-bounded LRU.

    The bound is the graph cache's (``$MESHOPS_GRAPH_MEMO_MB``, 1024 MB by default); 0 keeps
    nothing, so a dataset bigger than memory streams: each batch's cases are read, their graphs
    come from the on-disk cache, and everything is dropped after the step.
    """

    def __init__(self, cases: LazyCases, pipeline: Pipeline, memo_bytes: int) -> None:
        self.cases, self.pipeline, self.memo_bytes = cases, pipeline, int(memo_bytes)
        self.prepare: Any = None  # a model's prepare_sample(data, case), set once the model exists
        self._memo: OrderedDict[int, tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        if i in self._memo:
            self._memo.move_to_end(i)
            return self._memo[i][0]
        case = self.cases[i]
        d = self.pipeline.sample(case, targets=True)
        if self.prepare is not None:
            d = self.prepare(d, case)
        size = sum(int(v.nbytes) for _, v in d.items() if torch.is_tensor(v))
        if size <= self.memo_bytes:
            self._memo[i] = (d, size)
            total = sum(sz for _, sz in self._memo.values())
            while total > self.memo_bytes:
                _, (_, sz) = self._memo.popitem(last=False)
                total -= sz
        return d


def _splits(config: TrainConfig, info: D.DistInfo, out: Path, names: list[str]) -> dict[str, list[str]]:
    """The run's train/val/test names: read or written by the main process first, then read by the rest."""
    split_path = Path(config.splits) if config.splits else out / "splits.json"
    split_seed = config.seed if config.split_seed is None else config.split_seed
    if info.is_main:
        splits = load_or_make_splits(split_path, names, config.split_fractions, split_seed)
    D.barrier(info)
    if not info.is_main:
        splits = load_or_make_splits(split_path, names, config.split_fractions, split_seed)
    return splits


def prepare_data(config: TrainConfig, info: D.DistInfo, out: Path, normalization: dict[str, Any] | None) -> TrainData:
    """Load the dataset, split it, fit the normalization (or take the resumed run's) and build samples."""
    ds = load_dataset(config.dataset, **config.dataset_options)
    names = list(ds.case_names())
    index = {n: i for i, n in enumerate(names)}
    splits = _splits(config, info, out, names)
    train_cases = LazyCases(ds, splits["train"], index)
    val_names = splits["val"] or splits["train"]
    if not splits["val"]:
        log.warning("the validation split is empty; validating on the training cases")
    val_cases = LazyCases(ds, val_names, index)
    feats = FeatureSpec.from_case(
        train_cases[0], pos=bool(config.features.get("pos", True)), boundary=bool(config.features.get("boundary", True))
    )
    cache = GraphCache(config.cache)
    pipeline = Pipeline(feats, config.graph, cache=cache)
    if normalization is not None:
        pipeline.normalizer = Normalizer.from_dict(normalization)
    else:
        pipeline.fit(iter(train_cases))  # one streaming pass
    memo = cache.memo_bytes if cache.enabled else 0
    train_samples, val_samples = Samples(train_cases, pipeline, memo), Samples(val_cases, pipeline, memo)
    log.info("graph cache %s: %d built, %d reused", cache.root, cache.builds, cache.hits)
    return TrainData(ds, feats, pipeline, cache, train_cases, val_cases, list(val_names), train_samples, val_samples)


def _amp(config: TrainConfig, device: torch.device) -> tuple[bool, torch.dtype]:
    if config.amp == "off" or device.type != "cuda":
        if config.amp == "on" and device.type != "cuda":
            log.warning("amp: 'on' ignored on %s (mixed precision is used on CUDA only)", device)
        return False, torch.float32
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return True, dtype


def _model_inputs(model: torch.nn.Module, data: TrainData) -> None:
    """Models that need more than the mesh graph (a centerline, a boundary encoding) take it from the case."""
    prepare = getattr(model, "prepare_sample", None)
    data.train_samples.prepare = data.val_samples.prepare = prepare
    fit = getattr(model, "fit_training_data", None)  # models that store training statistics / ranges
    if fit is not None:
        fit(data.train_samples, data.pipeline.normalizer)  # a lazy sequence: one pass over the samples


def build_model_and_optimizer(config: TrainConfig, info: D.DistInfo, data: TrainData) -> Run:
    """The model (seeded), AdamW, the warm-up + cosine schedule and the AMP scaler."""
    from meshops import models

    torch.manual_seed(config.seed)
    feats = data.features
    model_cfg = dict(config.model_options)
    model_cfg.update(in_channels=feats.in_channels, out_channels=feats.out_channels,
                     global_channels=feats.global_channels)
    model = models.create(config.model, **model_cfg).to(info.device)
    _model_inputs(model, data)
    if parts_requested(config):
        try:
            data.parts = PartCache(config, model)
        except ValueError as e:
            raise ConfigError(f"training config: max_nodes_per_part / partitions: {e}") from None
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n_train = len(data.train_samples)
    batches_per_epoch = len(global_batches(list(range(n_train)), config.batch_size, info.world))
    if batches_per_epoch == 0:
        raise DatasetError(
            f"{n_train} training cases make no batch of at least {info.world} cases for "
            f"{info.world} processes; lower the process count or add cases"
        )
    total = config.epochs * batches_per_epoch
    total_run = min(total, config.max_steps) if config.max_steps else total
    warm = int(round(config.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_warmup(s, total, warm, config.min_lr_ratio))
    amp = _amp(config, info.device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp[0] and amp[1] == torch.float16)
    return Run(model, opt, sched, scaler, amp, dict(model.meshops_config), batches_per_epoch, total, total_run)


def wrap_ddp(run: Run, info: D.DistInfo, data_parts: Any = None) -> None:
    """Under ``torchrun`` (more than one process) the model becomes a ``DistributedDataParallel``
    (not when training on parts: :func:`meshops.train.parts.parts_step` sums the gradients itself)."""
    if info.world > 1 and data_parts is None:
        from torch.nn.parallel import DistributedDataParallel as DDP

        dev = info.device
        run.model = DDP(run.model, device_ids=[dev.index] if dev.type == "cuda" else None)


def run_config(config: TrainConfig, run: Run, data: TrainData) -> dict[str, Any]:
    """The JSON config stored in every checkpoint and in ``config.json``."""
    return {
        "train": config.to_dict(),
        "model": run.model_config,
        "features": data.features.to_dict(),
        "graph": dict(config.graph),
        "dataset": getattr(data.dataset, "meshops_spec",
                           {"dataset": config.dataset, "options": config.dataset_options}),
    }
