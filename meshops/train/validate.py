"""Validation: the validation cases' loss and per-field metrics in physical units, and the
best-checkpoint rule (the lowest mean relative L2 over the target fields)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from meshops.data.graphs import Pipeline
from meshops.train.metrics import field_metrics, mean_metrics

log = logging.getLogger(__name__)

__all__ = ["evaluate_samples", "score"]


@torch.no_grad()
def evaluate_samples(
    model: torch.nn.Module,
    pipeline: Pipeline,
    samples: Sequence[Any],
    names: Sequence[str],
    device: torch.device,
    amp: tuple[bool, torch.dtype] = (False, torch.float32),
    forward: Callable[[torch.nn.Module, Any, int], torch.Tensor] | None = None,
) -> tuple[float, dict[str, dict[str, dict[str, float]]]]:
    """Mean normalized MSE and per-case per-field metrics in physical units (at the graph nodes).

    ``forward(model, sample, i)`` replaces ``model(sample)`` (e.g. part by part).
    """
    assert pipeline.normalizer is not None
    model.eval()
    losses = []
    per_case: dict[str, dict[str, dict[str, float]]] = {}
    f = pipeline.features
    for i, (name, s) in enumerate(zip(names, samples, strict=True)):
        d = s.to(device)
        with torch.autocast(device_type=device.type, dtype=amp[1], enabled=amp[0]):
            pred = model(d) if forward is None else forward(model, d, i)
        pred = pred.float()
        losses.append(float((pred - d.y).pow(2).mean()))
        p = pipeline.normalizer.targets.decode(pred.cpu().double().numpy())
        t = pipeline.normalizer.targets.decode(d.y.cpu().double().numpy())
        per_case[name] = field_metrics(p, t, f.targets, f.target_channels)
    model.train()
    return (float(np.mean(losses)) if losses else float("nan")), per_case


def score(per_case: dict[str, dict[str, dict[str, float]]]) -> float:
    """The number the best checkpoint minimizes: the mean over target fields of the mean rel L2."""
    m = mean_metrics(per_case)
    rel = [v["rel_l2"] for v in m.values() if v["rel_l2"] is not None]
    return float(np.mean(rel)) if rel else float("inf")
