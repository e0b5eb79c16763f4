"""Training on graph parts: one case split into parts (``max_nodes_per_part`` or ``partitions`` in the
config), gradients accumulated part by part over the owned nodes.

Each case's loss is its mean squared error over nodes and channels; part ``p`` contributes the
error over its owned nodes weighted by ``n_owned / N``, so the accumulated gradient is exactly the
whole-graph gradient (:func:`meshops.graph.partition.partitioned_backward`), while only one part's
activations are alive at a time. Under DDP the model is not wrapped: every rank runs the parts of
its cases and the gradients are summed over the ranks (each case's loss scaled by ``1 / batch``).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from meshops.train import distributed as D
from meshops.train.config import TrainConfig

log = logging.getLogger(__name__)

__all__ = ["PartCache", "parts_requested", "parts_step"]


def parts_requested(config: TrainConfig) -> bool:
    """Whether the config asks for training on parts."""
    return bool(config.max_nodes_per_part or config.partitions)


class PartCache:
    """The parts of each case (by sample id), planned once and built lazily on every pass."""

    def __init__(self, config: TrainConfig, model: torch.nn.Module) -> None:
        from meshops.graph.partition import model_hops

        self.hops = model_hops(model)  # a ValueError naming the model when it cannot run on parts
        self.n_parts, self.max_nodes = config.partitions, config.max_nodes_per_part
        self.method = config.partition_method
        self._plans: dict[int, Any] = {}

    def get(self, key: int, data: Any) -> Any:
        if key not in self._plans:
            from meshops.graph.partition import partition

            self._plans[key] = partition(data, self.hops, n_parts=self.n_parts, max_nodes_per_part=self.max_nodes,
                                         method=self.method, lazy=True)
        return self._plans[key]

    def forward(self, model: torch.nn.Module, data: Any, key: int) -> torch.Tensor:
        """``model(data)`` computed part by part (validation)."""
        from meshops.graph.partition import partitioned_forward

        return partitioned_forward(model, data, self.get(key, data))


def _case_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred.float() - target.float()).pow(2).mean()


def parts_step(config: TrainConfig, info: D.DistInfo, run: Any, samples: list[Any], keys: list[int],
               n_global: int, cache: PartCache) -> float:
    """One optimizer update over this rank's cases of a global batch, each case part by part.

    Returns the mean per-case loss of this rank's cases (like :func:`meshops.train.loop.training_step`).
    """
    from meshops.graph.partition import partitioned_backward

    model = run.bare_model
    run.optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for key, d in zip(keys, samples, strict=True):
        d = d.to(info.device)

        def loss_fn(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return _case_mse(pred, target) / n_global

        total += partitioned_backward(model, d, cache.get(key, d), loss_fn, d.y) * n_global
    D.allreduce_grads(model, info)
    if config.clip and config.clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
    run.optimizer.step()
    run.scheduler.step()
    return total / max(len(samples), 1)
