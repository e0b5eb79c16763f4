"""torch.distributed helpers for runs launched by ``torchrun`` (gloo on CPU, NCCL on GPU)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

__all__ = ["DistInfo", "setup", "teardown", "barrier", "rank_share", "allreduce_grads", "partitioned_backward_ddp"]


@dataclass
class DistInfo:
    """Rank, world size, local rank and the device this process uses."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1), pick the device.

    ``device="auto"`` uses ``cuda:<LOCAL_RANK>`` when CUDA is available, else the CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        dev = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device(f"cuda:{local}")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    info = DistInfo(rank, world, local, dev)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        info.initialized_here = True
        log.info("joined process group: rank %d of %d (%s) on %s", rank, world, backend, dev)
    return info


def barrier(info: DistInfo) -> None:
    if info.world > 1 and dist.is_initialized():
        dist.barrier()


def teardown(info: DistInfo) -> None:
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def rank_share(items: list, info: DistInfo) -> list:
    """This rank's items, round robin (``items[rank::world]``)."""
    return list(items[info.rank :: info.world])


def allreduce_grads(model: torch.nn.Module, info: DistInfo) -> None:
    """Sum every parameter's ``.grad`` over the ranks (a missing grad counts as zero)."""
    if info.world <= 1 or not dist.is_initialized():
        return
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)


def partitioned_backward_ddp(model: torch.nn.Module, data, parts: list, loss_fn, target: torch.Tensor,
                             info: DistInfo) -> float:
    """One case too big for one process: the ranks share its parts, gradients are summed.

    Each rank runs :func:`meshops.graph.partition.partitioned_backward` on its share of ``parts``;
    the summed gradient (and the returned loss) equal a single process running every part, which
    equals the whole-graph loss gradient. ``model`` is a plain module (not DDP-wrapped).
    """
    from meshops.graph.partition import partitioned_backward

    loss = partitioned_backward(model, data, rank_share(parts, info), loss_fn, target)
    allreduce_grads(model, info)
    if info.world > 1 and dist.is_initialized():
        t = torch.tensor([loss], dtype=torch.float64)
        dist.all_reduce(t)
        loss = float(t)
    return loss
