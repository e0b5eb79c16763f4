"""Helpers shared by the model families: node inputs, the batch vector, hierarchy levels.

Not a model module (the leading underscore keeps it out of the registry's discovery).
"""

from __future__ import annotations

from typing import Any

import torch

from meshops.nn.ugraph import Level

__all__ = ["batch_vector", "graph_levels", "node_features"]


def batch_vector(data: Any, device: torch.device | None = None) -> torch.Tensor:
    """``data.batch``, or all zeros (one graph) when the graph is not batched.

    Shapes
    ------
    returns : (N,) int64
    """
    batch = getattr(data, "batch", None)
    if batch is None:
        device = data.pos.device if device is None else device
        batch = torch.zeros(int(data.num_nodes), dtype=torch.long, device=device)
    return batch


def node_features(data: Any, in_channels: int, global_channels: int = 0) -> torch.Tensor:
    """``data.x`` with the global parameters ``data.u`` of each node's sample appended.

    Shapes
    ------
    data.x : (N, in_channels); data.u : (B, global_channels); data.batch : (N,)
    returns : (N, in_channels + global_channels)
    """
    x = getattr(data, "x", None)
    n = int(data.num_nodes)
    if x is None:
        if in_channels:
            raise ValueError(f"model expects {in_channels} node input channels but the graph has no 'x'")
        x = torch.zeros(n, 0, device=data.pos.device, dtype=data.pos.dtype)
    if x.shape[-1] != in_channels:
        raise ValueError(f"model expects {in_channels} node input channels, the graph's x has {x.shape[-1]}")
    if global_channels:
        u = getattr(data, "u", None)
        if u is None or u.shape[-1] != global_channels:
            got = None if u is None else tuple(u.shape)
            raise ValueError(f"model expects {global_channels} global parameters in data.u, got shape {got}")
        u = u.reshape(-1, global_channels)
        x = torch.cat([x, u[batch_vector(data, x.device)].to(x.dtype)], dim=-1)
    return x


def graph_levels(data: Any, n_levels: int) -> list[Level]:
    """The first ``n_levels`` hierarchy levels of a (batched) MeshGraph as :class:`Level` objects.

    Raises ``ValueError`` naming the missing attribute when the graph has fewer levels.
    """
    levels = [Level(data.edge_index, data.edge_attr, int(data.num_nodes))]
    for lvl in range(1, n_levels):
        need = [f"pos_{lvl}", f"edge_index_{lvl}", f"edge_attr_{lvl}", f"down_{lvl}", f"up_{lvl}"]
        missing = [k for k in need if getattr(data, k, None) is None]
        if missing:
            raise ValueError(
                f"the graph has no hierarchy level {lvl} (missing {missing}); build it with at least "
                f"{n_levels} levels or lower the model's 'levels'"
            )
        levels.append(
            Level(
                edge_index=getattr(data, f"edge_index_{lvl}"),
                edge_attr=getattr(data, f"edge_attr_{lvl}"),
                num_nodes=int(getattr(data, f"pos_{lvl}").shape[0]),
                down=getattr(data, f"down_{lvl}"),
                down_w=getattr(data, f"down_w_{lvl}", None),
                up=getattr(data, f"up_{lvl}"),
                up_w=getattr(data, f"up_w_{lvl}", None),
            )
        )
    return levels
