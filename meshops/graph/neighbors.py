"""Neighbor search: ``radius``, ``knn`` (bipartite) and ``radius_graph``, ``knn_graph`` (one set).

Two routes, same results:

* CPU (:mod:`meshops.graph._neighbors_kdtree`): scipy's ``cKDTree`` (``workers=-1`` uses every
  core, override with ``$MESHOPS_WORKERS``) over Morton-sorted points, queried in a spatially
  coherent order within guessed bounds; kNN as dense
  rows (only tied rows re-sorted or re-queried), radius pairs from one dual-tree pass sorted by a
  packed-key value sort. Faster than a bare ``cKDTree(x).query(x, k)`` / ``query_ball_point``
  with the same workers (``meshops bench scale``, ``neighbors`` row).
* CUDA (or ``backend="cell"`` anywhere; :mod:`meshops.graph._neighbors_cell`): a cell list in
  plain torch. Points are hashed into cubic cells of side ``r``; each query scans the 3^d
  surrounding cells found by ``searchsorted`` on the sorted cell keys. Queries are processed in
  chunks sized so that the number of candidate pairs stays under ``pair_budget``. kNN on this
  route runs radius searches with a radius that doubles, per query, until ``k`` neighbors are
  inside (exact, since the k nearest all lie within r then).

Conventions (the ``torch_cluster`` ones, so PyG code can swap them in):

* ``radius(x, y, r)`` / ``knn(x, y, k)`` return ``(2, E)`` int64 ``[index in y, index in x]``.
* ``radius_graph(x, r)`` / ``knn_graph(x, k)`` return ``edge_index = [source (neighbor), target
  (centre)]`` (``flow="source_to_target"``); ``flow="target_to_source"`` swaps the rows.
* Within radius means ``distance <= r``.
* Results are sorted by query index, then by distance, then by neighbor index.
* Ties and caps, exactly: when a query has more than ``max_num_neighbors`` points within ``r``,
  the ``max_num_neighbors`` *nearest* are kept (unlike ``torch_cluster``, which keeps whichever it
  met first); among points at equal distance the lower index wins. ``knn`` returns the ``k``
  nearest with the same tie rule; when ``x`` has fewer than ``k`` points (per batch example) all of
  them are returned (a warning is logged), never padding.
* ``batch_x`` / ``batch_y`` (sorted or not) restrict neighbors to the same example.
* ``loop=False`` (graph versions) removes each point from its own neighbor list *before* the cap
  and the ``k`` count, so a node still gets ``k`` neighbors other than itself.

Errors: NaN/Inf coordinates, ``r <= 0``, ``k < 1`` and mismatched dimensions raise ``ValueError``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import Tensor

from meshops.graph._neighbors_cell import _cap, _cell_knn, _cell_radius
from meshops.graph._neighbors_kdtree import CHUNK, kdtree_knn, kdtree_radius

log = logging.getLogger(__name__)

__all__ = ["CHUNK", "knn", "knn_graph", "radius", "radius_graph"]


def _check(x: Tensor, name: str) -> Tensor:
    if x.dim() == 1:
        x = x.unsqueeze(1)
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (n, d), got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    if x.numel() and not (np.isfinite(x.detach().numpy()).all() if x.device.type == "cpu" else bool(torch.isfinite(x).all())):
        bad = int(torch.nonzero(~torch.isfinite(x))[0, 0])
        raise ValueError(f"{name}: point {bad} has a non-finite coordinate {x[bad].tolist()}")
    return x


def _batch(b: Tensor | None, n: int, device: torch.device) -> Tensor | None:
    if b is None:
        return None
    b = torch.as_tensor(b, device=device).long().view(-1)
    if b.numel() != n:
        raise ValueError(f"batch vector has {b.numel()} entries but there are {n} points")
    return b


def _backend(x: Tensor, backend: str | None) -> str:
    if backend is None or backend == "auto":
        return "cell" if x.is_cuda else "kdtree"
    if backend not in ("kdtree", "cell", "brute"):
        raise ValueError(f"unknown neighbor-search backend '{backend}' (use 'kdtree', 'cell', 'brute' or 'auto')")
    return backend


# --------------------------------------------------------------------------- public API
def _prep(x: Tensor, y: Tensor, batch_x: Tensor | None, batch_y: Tensor | None):
    same = y is x
    x = _check(torch.as_tensor(x), "x")
    y = x if same else _check(torch.as_tensor(y), "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has dimension {x.shape[1]} but y has {y.shape[1]}")
    y = y.to(x.device, x.dtype)
    bx = _batch(batch_x, x.shape[0], x.device)
    by = _batch(batch_y, y.shape[0], x.device)
    if (bx is None) != (by is None):
        raise ValueError("give both batch_x and batch_y, or neither")
    return x, y, bx, by


def _gap(x: Tensor, y: Tensor, r: float) -> float:
    ext = torch.cat([x, y]).double()
    span = float((ext.max(0).values - ext.min(0).values).norm()) if ext.numel() else 1.0
    return 4.0 * (span + r) + 1.0


def _search(
    kind: str, x: Tensor, y: Tensor, param: float, cap: int | None, bx: Tensor | None, by: Tensor | None,
    exclude_self: bool, backend: str | None, pair_budget: int, same: bool = False, flip: bool = False,
) -> Tensor:
    """``(2, E)`` ``[query, neighbor]`` sorted by (query, distance, index), ``[neighbor, query]`` with
    ``flip``; ``same``: ``y`` is ``x``."""
    be = _backend(x, backend)
    dev = x.device
    if x.shape[0] == 0 or y.shape[0] == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=dev)
    if bx is not None:
        # separate examples along an extra axis so no pair crosses them
        gap = _gap(x, y, param if kind == "radius" else 0.0)
        if kind == "knn":
            gap = gap * 1e3
        x = torch.cat([x.double(), bx[:, None].double() * gap], 1)
        y = x if same else torch.cat([y.double(), by[:, None].double() * gap], 1)
    if be == "kdtree":
        return _search_kdtree(kind, x, y, param, cap, exclude_self, same, flip)
    if be == "cell":
        if kind == "radius":
            q, n, d = _cell_radius(x, y, param, exclude_self, pair_budget)
            q, n, d = _cap(q, n, d, cap)
        else:
            q, n, d = _cell_knn(x, y, int(param), exclude_self, pair_budget)
    else:
        q, n = _search_brute(kind, x, y, param, cap, exclude_self, pair_budget)
    return torch.stack([n, q] if flip else [q, n])


def _search_kdtree(kind, x, y, param, cap, exclude_self, same, flip) -> Tensor:
    xn = x.detach().cpu().double().numpy()
    yn = None if same else y.detach().cpu().double().numpy()
    if kind == "radius":
        q, n = kdtree_radius(xn, yn, param, cap, exclude_self)
        e = np.stack([n, q] if flip else [q, n])
    else:  # dense rows written straight into the (2, E) result
        m, k = len(xn if yn is None else yn), int(param)
        kc = max(0, min(k, len(xn) - (1 if exclude_self else 0)))
        e = np.empty((2, m, kc), dtype=np.int64)
        e[1 if flip else 0] = np.arange(m)[:, None]
        kdtree_knn(xn, yn, k, exclude_self, out=e[0 if flip else 1])
        e = e.reshape(2, -1)
    return torch.from_numpy(e).to(x.device)


def _search_brute(kind, x, y, param, cap, exclude_self, pair_budget) -> tuple[Tensor, Tensor]:
    """Brute force: the reference, O(n m) memory in chunks."""
    dev = x.device
    qs, ns, ds = [], [], []
    step = max(1, pair_budget // max(x.shape[0], 1))
    for s in range(0, y.shape[0], step):
        dd = torch.cdist(y[s : s + step].double(), x.double(), compute_mode="donot_use_mm_for_euclid_dist")
        qi = torch.arange(s, s + dd.shape[0], device=dev)
        if exclude_self:
            dd[torch.arange(dd.shape[0], device=dev), qi] = float("inf")
        if kind == "radius":
            qq, nn = torch.nonzero(dd <= param, as_tuple=True)
            qs.append(qq + s)
            ns.append(nn)
            ds.append(dd[qq, nn])
        else:
            kk = min(int(param), x.shape[0] - (1 if exclude_self else 0))
            # lower index among ties: sort by (distance, index) via a stable sort on distance
            o = torch.sort(dd, dim=1, stable=True).indices[:, :kk]
            qs.append(qi[:, None].expand_as(o).reshape(-1))
            ns.append(o.reshape(-1))
            ds.append(torch.gather(dd, 1, o).reshape(-1))
    q, n, d = _cap(torch.cat(qs), torch.cat(ns), torch.cat(ds), cap if kind == "radius" else None)
    return q, n


def radius(
    x: Tensor, y: Tensor, r: float, batch_x: Tensor | None = None, batch_y: Tensor | None = None,
    max_num_neighbors: int | None = 32, backend: str | None = None, pair_budget: int = 1 << 24,
) -> Tensor:
    """For each point of ``y``, the points of ``x`` within distance ``r`` (at most ``max_num_neighbors``, nearest first).

    Parameters
    ----------
    x : data points.
    y : query points.
    r : radius (> 0); ``distance <= r`` counts.
    batch_x, batch_y : example index of each point (neighbors only within the same example).
    max_num_neighbors : cap per query (the nearest are kept, ties to the lower index); ``None`` for no cap.
    backend : ``"kdtree"`` (CPU default), ``"cell"`` (CUDA default, works on CPU), ``"brute"`` (reference).
    pair_budget : candidate pairs per chunk on the cell and brute routes (bounds memory).

    Shapes
    ------
    x : (n, d) float
    y : (m, d) float
    returns : (2, E) int64 ``[index in y, index in x]``, sorted by query, distance, index.
    """
    if not (r > 0) or not math.isfinite(r):
        raise ValueError(f"radius: r must be a positive finite number, got {r}")
    if max_num_neighbors is not None and max_num_neighbors < 1:
        raise ValueError(f"radius: max_num_neighbors must be >= 1 or None, got {max_num_neighbors}")
    x, y, bx, by = _prep(x, y, batch_x, batch_y)
    return _search("radius", x, y, float(r), max_num_neighbors, bx, by, False, backend, pair_budget)


def knn(
    x: Tensor, y: Tensor, k: int, batch_x: Tensor | None = None, batch_y: Tensor | None = None,
    backend: str | None = None, pair_budget: int = 1 << 24,
) -> Tensor:
    """For each point of ``y``, its ``k`` nearest points in ``x`` (all of ``x`` if it has fewer).

    Shapes
    ------
    x : (n, d) float
    y : (m, d) float
    returns : (2, E) int64 ``[index in y, index in x]``, ``E = m * min(k, n)`` without batches.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"knn: k must be >= 1, got {k}")
    x, y, bx, by = _prep(x, y, batch_x, batch_y)
    if x.shape[0] < k:
        log.warning("knn: k=%d but x has only %d points; returning all of them", k, x.shape[0])
    if bx is not None:
        return _knn_batched(x, y, k, bx, by, False, backend, pair_budget)
    return _search("knn", x, y, k, None, None, None, False, backend, pair_budget)


def _knn_batched(x, y, k, bx, by, exclude_self, backend, pair_budget) -> Tensor:
    out = []
    for b in torch.unique(torch.cat([bx, by])).tolist():
        ix = torch.nonzero(bx == b).view(-1)
        iy = torch.nonzero(by == b).view(-1)
        if ix.numel() == 0 or iy.numel() == 0:
            continue
        if exclude_self:
            e = _search("knn", x[ix], x[ix], k, None, None, None, True, backend, pair_budget, same=True)
        else:
            e = _search("knn", x[ix], y[iy], k, None, None, None, False, backend, pair_budget)
        out.append(torch.stack([iy[e[0]] if not exclude_self else ix[e[0]], ix[e[1]]]))
    if not out:
        return torch.zeros(2, 0, dtype=torch.long, device=x.device)
    e = torch.cat(out, 1)
    o = torch.argsort(e[0], stable=True)
    return e[:, o]


def radius_graph(
    x: Tensor, r: float, batch: Tensor | None = None, loop: bool = False,
    max_num_neighbors: int | None = 32, flow: str = "source_to_target", backend: str | None = None,
    pair_budget: int = 1 << 24,
) -> Tensor:
    """Edges between points of one set closer than ``r`` (see :func:`radius` for caps and ties).

    Without a cap the result is symmetric (both directions of each pair); with a cap a node keeps
    its ``max_num_neighbors`` nearest *incoming* neighbors, so it may not be.

    Shapes
    ------
    x : (n, d) float
    returns : (2, E) int64 ``[source, target]`` (``flow="source_to_target"``).
    """
    if not (r > 0) or not math.isfinite(r):
        raise ValueError(f"radius_graph: r must be a positive finite number, got {r}")
    if flow not in ("source_to_target", "target_to_source"):
        raise ValueError(f"radius_graph: flow must be 'source_to_target' or 'target_to_source', got {flow!r}")
    x, _, bx, _ = _prep(x, x, batch, batch)
    return _search("radius", x, x, float(r), max_num_neighbors, bx, bx, not loop, backend, pair_budget, same=True,
                   flip=flow == "source_to_target")


def knn_graph(
    x: Tensor, k: int, batch: Tensor | None = None, loop: bool = False, flow: str = "source_to_target",
    backend: str | None = None, pair_budget: int = 1 << 24,
) -> Tensor:
    """Edges from each point's ``k`` nearest neighbors to the point (self excluded unless ``loop``).

    Shapes
    ------
    x : (n, d) float
    returns : (2, E) int64 ``[source, target]``, ``E = n * min(k, n - 1)`` without batches and loops.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"knn_graph: k must be >= 1, got {k}")
    if flow not in ("source_to_target", "target_to_source"):
        raise ValueError(f"knn_graph: flow must be 'source_to_target' or 'target_to_source', got {flow!r}")
    x, _, bx, _ = _prep(x, x, batch, batch)
    if x.shape[0] - (0 if loop else 1) < k:
        log.warning("knn_graph: k=%d but only %d other points; connecting all of them", k, x.shape[0])
    if bx is not None:
        e = _knn_batched(x, x, k, bx, bx, not loop, backend, pair_budget)
    else:
        return _search("knn", x, x, k, None, None, None, not loop, backend, pair_budget, same=True,
                       flip=flow == "source_to_target")
    return e.flip(0) if flow == "source_to_target" else e
