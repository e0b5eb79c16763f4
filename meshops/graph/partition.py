"""Graph partitions with halos, for running a message-passing model part by part (X-MeshGraphNet style).

A model whose output at a node depends only on the nodes ``hops`` edges upstream (``hops`` rounds
of message passing, e.g. ``mgn``) gives the same output at a part's *owned* nodes whether it runs
on the whole graph or on the part's subgraph: the owned nodes plus every node within ``hops``
in-edges of them (the halo), with all edges among those nodes. So a graph too big for memory is
cut into parts, the parts run one after another (or on different ranks), and the owned rows are
stitched back. Training sums per-part losses weighted by owned-node counts, which gives exactly
the gradient of the whole-graph mean loss.

Parts come from METIS (``pymetis``, when installed and ``method`` allows) or from recursive
coordinate bisection of the node positions (always available, O(N log parts)).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

__all__ = ["GraphPart", "PartPlan", "assign_parts", "coordinate_bisection", "make_parts", "partition", "subgraph",
           "partitioned_forward", "partitioned_backward", "model_hops"]


def coordinate_bisection(pos: np.ndarray, n_parts: int) -> np.ndarray:
    """Recursive coordinate bisection: split along the widest axis at the size-proportional median.

    Shapes
    ------
    pos : (N, d) float -> (N,) int64 part id in ``[0, n_parts)``; part sizes differ by at most one
    """
    pos = np.asarray(pos)
    n = pos.shape[0]
    if n_parts < 1:
        raise ValueError(f"coordinate_bisection: n_parts must be >= 1, got {n_parts}")
    out = np.zeros(n, dtype=np.int64)
    stack = [(np.arange(n), 0, n_parts)]
    while stack:
        idx, first, k = stack.pop()
        if k == 1 or idx.size == 0:
            out[idx] = first
            continue
        k_left = k // 2
        p = pos[idx]
        axis = int(np.argmax(p.max(axis=0) - p.min(axis=0))) if idx.size else 0
        cut = int(round(idx.size * k_left / k))
        order = np.argpartition(p[:, axis], cut - 1) if 0 < cut < idx.size else np.argsort(p[:, axis])
        stack.append((idx[order[:cut]], first, k_left))
        stack.append((idx[order[cut:]], first + k_left, k - k_left))
    return out


def _metis(edge_index: np.ndarray, n: int, n_parts: int) -> np.ndarray:
    import pymetis

    src, dst = edge_index
    keep = src != dst
    a = np.concatenate([src[keep], dst[keep]])
    b = np.concatenate([dst[keep], src[keep]])
    key = np.unique(a.astype(np.int64) * n + b)
    a, b = key // n, key % n
    xadj = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(a, minlength=n), out=xadj[1:])
    _, parts = pymetis.part_graph(n_parts, xadj=xadj, adjncy=b)
    return np.asarray(parts, dtype=np.int64)


def assign_parts(num_nodes: int, n_parts: int, pos: np.ndarray | None = None,
                 edge_index: np.ndarray | None = None, method: str = "auto") -> np.ndarray:
    """Part id of every node: ``"metis"``, ``"rcb"`` (coordinate bisection) or ``"auto"``.

    ``"auto"`` uses METIS when ``pymetis`` imports and the edges are given, else bisection.

    Shapes
    ------
    pos : (N, d); edge_index : (2, E) -> (N,) int64
    """
    if method not in ("auto", "metis", "rcb"):
        raise ValueError(f"partition method must be 'auto', 'metis' or 'rcb', got '{method}'")
    if n_parts <= 1:
        return np.zeros(num_nodes, dtype=np.int64)
    if method in ("auto", "metis") and edge_index is not None:
        try:
            return _metis(np.asarray(edge_index), num_nodes, n_parts)
        except ImportError:
            if method == "metis":
                raise ImportError("partition method 'metis' needs pymetis (pip install pymetis)") from None
    if pos is None:
        raise ValueError("coordinate bisection needs node positions (pos)")
    return coordinate_bisection(pos, n_parts)


@dataclass
class GraphPart:
    """One part: ``nodes[:n_owned]`` are owned, the rest the halo; ``edges`` are global edge ids.

    Shapes
    ------
    nodes : (n,) int64 global node ids; edges : (m,) int64; edge_index : (2, m) int64 local ids
    """

    nodes: np.ndarray
    n_owned: int
    edges: np.ndarray
    edge_index: np.ndarray

    @property
    def owned(self) -> np.ndarray:
        return self.nodes[: self.n_owned]


def _csr_in(edge_index: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    dst = edge_index[1]
    order = np.argsort(dst, kind="stable")
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=n), out=ptr[1:])
    return ptr, order


def _rows(ptr: np.ndarray, order: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Edge ids (into the unsorted edge list) of the in-edges of ``nodes``."""
    start, cnt = ptr[nodes], ptr[nodes + 1] - ptr[nodes]
    total = int(cnt.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offs = np.repeat(start - np.cumsum(cnt) + cnt, cnt) + np.arange(total)
    return order[offs]


class _Upstream:
    """In-edge CSR of a graph, for growing halos and collecting a part's edges."""

    def __init__(self, edge_index: np.ndarray, num_nodes: int) -> None:
        self.edge_index = np.asarray(edge_index, dtype=np.int64)
        self.n = num_nodes
        self.ptr, self.order = _csr_in(self.edge_index, num_nodes)
        self.src = self.edge_index[0]

    def nodes(self, owned: np.ndarray, hops: int) -> tuple[np.ndarray, np.ndarray]:
        """``owned`` then the halo nodes (by hop), and the node mask."""
        mask = np.zeros(self.n, dtype=bool)
        mask[owned] = True
        frontier, halo = owned, []
        for _ in range(hops):
            nb = self.src[_rows(self.ptr, self.order, frontier)]
            nb = np.unique(nb[~mask[nb]])
            if nb.size == 0:
                break
            mask[nb] = True
            halo.append(nb)
            frontier = nb
        return np.concatenate([owned, *halo]), mask

    def part(self, owned: np.ndarray, hops: int) -> GraphPart:
        nodes, mask = self.nodes(owned, hops)
        eids = _rows(self.ptr, self.order, nodes)
        eids = np.sort(eids[mask[self.src[eids]]])
        local = np.full(self.n, -1, dtype=np.int64)
        local[nodes] = np.arange(nodes.size)
        return GraphPart(nodes, owned.size, eids, local[self.edge_index[:, eids]])


class PartPlan:
    """Parts built one at a time when iterated (only one part's index arrays alive at once).

    ``len(plan)`` is the part count; ``sizes()`` the (nodes, edges upper bound) of each part
    without building the edge lists.
    """

    def __init__(self, edge_index: np.ndarray, num_nodes: int, assign: np.ndarray, hops: int) -> None:
        assign = np.asarray(assign)
        if assign.shape != (num_nodes,):
            raise ValueError(f"make_parts: assign has shape {assign.shape}, expected ({num_nodes},)")
        self.up = _Upstream(edge_index, num_nodes)
        self.assign, self.hops = assign, int(hops)
        order = np.argsort(assign, kind="stable")
        bounds = np.searchsorted(assign[order], np.unique(assign))
        self._owned = np.split(order, bounds[1:])

    def __len__(self) -> int:
        return len(self._owned)

    def __iter__(self):
        for owned in self._owned:
            yield self.up.part(owned, self.hops)

    def sizes(self) -> list[tuple[int, int]]:
        deg = np.diff(self.up.ptr)
        out = []
        for owned in self._owned:
            nodes, _ = self.up.nodes(owned, self.hops)
            out.append((int(nodes.size), int(deg[nodes].sum())))
        return out


def make_parts(edge_index: np.ndarray, num_nodes: int, assign: np.ndarray, hops: int) -> list[GraphPart]:
    """Parts with ``hops``-hop upstream halos and every edge between their nodes.

    Shapes
    ------
    edge_index : (2, E) [src, dst]; assign : (N,) part ids -> list of :class:`GraphPart`
    """
    return list(PartPlan(edge_index, num_nodes, assign, hops))


def partition(data: Any, hops: int, n_parts: int | None = None, max_nodes_per_part: int | None = None,
              method: str = "auto", lazy: bool = False) -> list[GraphPart] | PartPlan:
    """Parts of a (PyG) graph: ``n_parts`` of them, or as many as keep owned nodes <= ``max_nodes_per_part``.

    ``lazy=True`` returns a :class:`PartPlan` that builds each part when iterated.
    """
    n = int(data.num_nodes)
    if n_parts is None:
        if not max_nodes_per_part or max_nodes_per_part < 1:
            raise ValueError("partition: give n_parts or a positive max_nodes_per_part")
        n_parts = max(1, -(-n // int(max_nodes_per_part)))
    ei = data.edge_index.cpu().numpy()
    pos = data.pos.detach().cpu().numpy() if getattr(data, "pos", None) is not None else None
    assign = assign_parts(n, n_parts, pos, ei, method)
    plan = PartPlan(ei, n, assign, hops)
    if lazy:
        log.info("partition: %d nodes -> %d parts, halo %d hops (built one at a time)", n, len(plan), hops)
        return plan
    parts = list(plan)
    log.info("partition: %d nodes -> %d parts, halo %d hops, up to %d nodes a part", n, len(parts), hops,
             max(p.nodes.size for p in parts))
    return parts


def subgraph(data: Any, part: GraphPart) -> Any:
    """The part's graph: node-level tensors (first dim N) indexed by the part's nodes, edge-level ones
    (first dim E) by its edges, ``edge_index`` relabelled; other attributes (``u``, ...) are shared."""
    from torch_geometric.data import Data

    n, n_e = int(data.num_nodes), int(data.edge_index.shape[1])
    dev = data.edge_index.device
    nodes = torch.from_numpy(part.nodes).to(dev)
    edges = torch.from_numpy(part.edges).to(dev)
    out = Data()
    for key, val in data.items():
        if key == "edge_index":
            out.edge_index = torch.from_numpy(part.edge_index).to(dev)
        elif key in ("num_nodes", "ptr") or (key[-2:-1] == "_" and key[-1:].isdigit()):
            continue  # hierarchy levels (pos_1, edge_index_1, ...) do not survive a cut
        elif torch.is_tensor(val) and val.dim() >= 1 and key.startswith("edge_") and val.shape[0] == n_e:
            out[key] = val[edges]
        elif torch.is_tensor(val) and val.dim() >= 1 and val.shape[0] == n and not key.startswith("edge_"):
            out[key] = val[nodes]
        else:
            out[key] = val
    out.num_nodes = int(part.nodes.size)
    return out


def model_hops(model: torch.nn.Module) -> int:
    """Message-passing rounds of a model that supports partitioning (its ``hops``), else ``ValueError``."""
    hops = getattr(model, "hops", None)
    if not isinstance(hops, int):
        name = getattr(model, "meshops_config", {}).get("name", type(model).__name__)
        reason = getattr(model, "partition_unsupported", "it does not declare a finite receptive field (hops)")
        raise ValueError(f"model '{name}' cannot run on graph parts: {reason}")
    return hops


def partitioned_forward(model: torch.nn.Module, data: Any, parts: Iterable[GraphPart]) -> torch.Tensor:
    """``model(data)`` computed part by part; the owned rows stitched back in node order.

    Shapes
    ------
    returns : (N, C), equal to ``model(data)`` up to float summation order
    """
    import time

    from tqdm.auto import tqdm

    out: torch.Tensor | None = None
    total = len(parts) if hasattr(parts, "__len__") else None
    for i, part in enumerate(tqdm(parts, total=total, desc="parts", disable=None, leave=False)):
        t0 = time.perf_counter()
        y = model(subgraph(data, part))[: part.n_owned]
        log.info("part %d/%s: %d nodes (%d owned), %d edges, %.1f s", i + 1, total, part.nodes.size, part.n_owned,
                 part.edges.size, time.perf_counter() - t0)
        if out is None:
            out = y.new_empty(int(data.num_nodes), *y.shape[1:])
        out[torch.from_numpy(part.owned).to(y.device)] = y
    assert out is not None
    return out


def partitioned_backward(model: torch.nn.Module, data: Any, parts: list[GraphPart],
                         loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                         target: torch.Tensor) -> float:
    """Accumulate into ``.grad`` the gradient of the whole-graph mean loss, one part at a time.

    ``loss_fn(pred, target)`` must be a mean over nodes; each part's loss over its owned nodes is
    weighted by ``n_owned / N``, so the sum equals the whole-graph loss. Returns that loss.

    Shapes
    ------
    target : (N, C)
    """
    n = int(data.num_nodes)
    total = 0.0
    for part in parts:
        owned = torch.from_numpy(part.owned).to(target.device)
        loss = loss_fn(model(subgraph(data, part))[: part.n_owned], target[owned]) * (part.n_owned / n)
        loss.backward()
        total += float(loss.detach())
    return total
