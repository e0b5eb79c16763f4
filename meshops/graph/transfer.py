"""Moving node values between hierarchy levels: restriction (fine -> coarse) and prolongation.

Both read only the graph's ``down_{l}``/``up_{l}`` maps and weights, so every module that works on
levels (the graph builder, the PyG export, the layers) can use them without importing the builder.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from meshops.ops import scatter

__all__ = ["prolong", "restrict"]


def _scatter_sum(src: Tensor, index: Tensor, n: int) -> Tensor:
    return scatter(src, index, dim_size=n, reduce="sum")


def restrict(x: Tensor, data: Any, level: int) -> Tensor:
    """Level ``level-1`` values -> level ``level`` (weighted mean over the down map).

    Shapes
    ------
    x : (N_{l-1}, ...) float
    returns : (N_l, ...) float
    """
    e, w = data[f"down_{level}"], data[f"down_w_{level}"].to(x.dtype)
    src = x[e[0]] * w.view(-1, *([1] * (x.dim() - 1)))
    return _scatter_sum(src, e[1], data.level_size(level))


def prolong(x: Tensor, data: Any, level: int) -> Tensor:
    """Level ``level`` values -> level ``level-1`` (weighted sum over the up map; constants kept).

    Shapes
    ------
    x : (N_l, ...) float
    returns : (N_{l-1}, ...) float
    """
    e, w = data[f"up_{level}"], data[f"up_w_{level}"].to(x.dtype)
    src = x[e[0]] * w.view(-1, *([1] * (x.dim() - 1)))
    return _scatter_sum(src, e[1], data.level_size(level - 1))
