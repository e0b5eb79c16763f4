"""Route each public op to its fast path (filled in below) or the reference."""

from __future__ import annotations

import torch

from meshops.ops import reference as ref
from meshops.ops.csr import CSR


def gather(x: torch.Tensor, index: torch.Tensor, det: bool) -> torch.Tensor:
    return ref.gather(x, index)


def scatter(src: torch.Tensor, index: torch.Tensor, n: int, reduce: str, csr: CSR | None, det: bool):
    return ref.scatter(src, index, n, reduce)


def segment(src: torch.Tensor, ptr: torch.Tensor, reduce: str) -> torch.Tensor:
    return ref.segment(src, ptr, reduce)


def softmax(src: torch.Tensor, index: torch.Tensor, n: int, csr: CSR | None, det: bool) -> torch.Tensor:
    return ref.softmax(src, index, n)


def gather_scatter(x_src, x_dst, edge_index, weight, edge_attr, bias, edge_weight, n, reduce, csr, det):
    return ref.gather_scatter(x_src, x_dst, edge_index, weight, edge_attr, bias, edge_weight, n, reduce)
