"""A :class:`~meshops.graph.build.MeshGraph` as stock PyTorch Geometric objects.

* :func:`to_pyg` (``graph.to_pyg(level=l)``): one level as a plain ``torch_geometric.data.Data``
  (``x``, ``pos``, ``edge_index``, ``edge_attr``; at level 0 also ``y``, ``node_type`` and every
  other per-node tensor). Any PyG layer, model or loader takes it as is.
* :func:`to_pyg_hetero` (``graph.to_pyg_hetero()``): the whole hierarchy as a ``HeteroData``. Node
  types ``level_0 .. level_{L-1}``; edge types ``(level_l, "to", level_l)`` (the level's graph, with
  ``edge_attr``), ``(level_{l-1}, "down", level_l)`` (restriction, ``edge_weight`` summing to 1 per
  coarse node) and ``(level_l, "up", level_{l-1})`` (prolongation, ``edge_weight`` summing to 1 per
  fine node). Coarse levels carry ``x`` restricted from level 0 (weighted means through the down
  maps), so every node type has features and ``torch_geometric.nn.to_hetero`` models accept it.

Batching hierarchies (the recipe)
---------------------------------
Three ways, all with correct node offsets at every level:

1. ``HeteroData``: ``DataLoader([g.to_pyg_hetero() for g in graphs], batch_size=B)``. PyG offsets
   each edge type by its own source/target node type, and ``batch[f"level_{l}"].batch`` says which
   graph each node of level ``l`` came from.
2. ``MeshGraph`` itself (what the meshops models use): ``hierarchy_loader(graphs, batch_size=B)``,
   a ``DataLoader`` with ``follow_batch`` set to every ``pos_l``, so ``batch.pos_{l}_batch`` holds
   the graph id of each level-``l`` node (``MeshGraph.__inc__`` already offsets ``edge_index_l``,
   ``down_l`` and ``up_l`` by the level sizes).
3. One level only: ``DataLoader([g.to_pyg(level=l) for g in graphs], batch_size=B)``.

Never build ``Data(**dict(graph.items()))``: a plain ``Data`` offsets the hierarchy keys by the
level-0 node count and concatenates them along the wrong dimension.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor
from torch_geometric.data import Data, HeteroData

__all__ = ["follow_batch_keys", "hierarchy_loader", "level_name", "to_pyg", "to_pyg_hetero"]

_HIERARCHY_PREFIXES = ("pos_", "edge_index_", "edge_attr_", "down_", "up_")


def level_name(level: int) -> str:
    """The ``HeteroData`` node type of hierarchy level ``level`` (``"level_0"``, ...)."""
    return f"level_{int(level)}"


def _num_levels(graph: Any) -> int:
    n = 1
    while f"pos_{n}" in graph:
        n += 1
    return n


def _is_hierarchy_key(key: str) -> bool:
    return any(key.startswith(p) and key[len(p):].split("_")[-1].isdigit() for p in _HIERARCHY_PREFIXES) \
        or key in ("num_levels", "level_radius")


def _restricted_x(graph: Any, levels: int) -> list[Tensor | None]:
    """``x`` at every level: level 0's own, coarse levels by repeated restriction."""
    from meshops.graph.transfer import restrict

    xs: list[Tensor | None] = [graph.x if "x" in graph else None]
    for lv in range(1, levels):
        prev = xs[-1]
        xs.append(None if prev is None else restrict(prev, graph, lv))
    return xs


def to_pyg(graph: Any, level: int = 0) -> Data:
    """One level of ``graph`` as a plain ``torch_geometric.data.Data``.

    Parameters
    ----------
    graph : MeshGraph
    level : int
        0 is the graph itself; ``l >= 1`` a coarse level (its ``x`` restricted from level 0).

    Shapes
    ------
    returns : ``pos`` (N_l, 3), ``edge_index`` (2, E_l), ``edge_attr`` (E_l, 4), ``x`` (N_l, F) when
        level 0 has ``x``; at level 0 also every other (N, ...) node tensor (``y``, ``node_type``,
        ``point_index``) and graph-level attributes that are not hierarchy keys.

    Raises
    ------
    ValueError
        ``level`` is not a level of ``graph``.
    """
    levels = _num_levels(graph)
    if not 0 <= int(level) < levels:
        raise ValueError(f"to_pyg: level {level} does not exist; the graph has levels 0..{levels - 1}")
    level = int(level)
    if level == 0:
        out = Data()
        for key, value in graph.items():
            if not _is_hierarchy_key(key):
                out[key] = value
        out.num_nodes = graph.level_size(0)
        return out
    x = _restricted_x(graph, level + 1)[level]
    out = Data(pos=graph[f"pos_{level}"], edge_index=graph[f"edge_index_{level}"],
               edge_attr=graph[f"edge_attr_{level}"])
    if x is not None:
        out.x = x
    out.num_nodes = graph.level_size(level)
    return out


def to_pyg_hetero(graph: Any) -> HeteroData:
    """The hierarchy of ``graph`` as a ``HeteroData``: levels are node types, maps are edge types.

    Shapes
    ------
    returns : ``h[level_l].pos`` (N_l, 3), ``h[level_l].x`` (N_l, F) when level 0 has ``x``;
        ``h[level_l, "to", level_l].edge_index`` (2, E_l) with ``edge_attr`` (E_l, 4);
        ``h[level_{l-1}, "down", level_l].edge_index`` (2, M_l) with ``edge_weight`` (M_l,);
        ``h[level_l, "up", level_{l-1}].edge_index`` (2, M'_l) with ``edge_weight`` (M'_l,);
        level 0 also keeps ``y``, ``node_type`` and ``point_index`` when present.
    """
    levels = _num_levels(graph)
    xs = _restricted_x(graph, levels)
    h = HeteroData()
    n0 = graph.level_size(0)
    l0 = h[level_name(0)]
    for key, value in graph.items():
        if _is_hierarchy_key(key) or key in ("edge_index", "edge_attr"):
            continue
        if isinstance(value, Tensor) and value.dim() >= 1 and value.size(0) == n0:
            l0[key] = value
    l0.num_nodes = n0
    _add_level_edges(h, 0, graph.edge_index, graph.edge_attr if "edge_attr" in graph else None)
    for lv in range(1, levels):
        node = h[level_name(lv)]
        node.pos = graph[f"pos_{lv}"]
        if xs[lv] is not None:
            node.x = xs[lv]
        node.num_nodes = graph.level_size(lv)
        _add_level_edges(h, lv, graph[f"edge_index_{lv}"], graph[f"edge_attr_{lv}"])
        down = h[level_name(lv - 1), "down", level_name(lv)]
        down.edge_index = graph[f"down_{lv}"]
        down.edge_weight = graph[f"down_w_{lv}"]
        up = h[level_name(lv), "up", level_name(lv - 1)]
        up.edge_index = graph[f"up_{lv}"]
        up.edge_weight = graph[f"up_w_{lv}"]
    return h


def _add_level_edges(h: HeteroData, level: int, edge_index: Tensor, edge_attr: Tensor | None) -> None:
    store = h[level_name(level), "to", level_name(level)]
    store.edge_index = edge_index
    if edge_attr is not None:
        store.edge_attr = edge_attr


def follow_batch_keys(graph: Any) -> list[str]:
    """``["pos_1", ..., "pos_{L-1}"]``: the ``follow_batch`` that gives each coarse level a batch vector."""
    return [f"pos_{lv}" for lv in range(1, _num_levels(graph))]


def hierarchy_loader(graphs: Sequence[Any], batch_size: int = 1, **kw: Any) -> Any:
    """A PyG ``DataLoader`` over MeshGraphs that also makes ``pos_{l}_batch`` for every coarse level.

    Parameters
    ----------
    graphs : sequence of MeshGraph (all with the same number of levels)
    batch_size : int
    **kw : passed to ``torch_geometric.loader.DataLoader`` (``shuffle``, ``num_workers``, ...)

    Shapes
    ------
    each batch : a MeshGraph; ``batch.batch`` (sum N_0,), ``batch.pos_{l}_batch`` (sum N_l,)
    """
    from torch_geometric.loader import DataLoader

    if not len(graphs):
        raise ValueError("hierarchy_loader: no graphs")
    levels = {_num_levels(g) for g in graphs}
    if len(levels) != 1:
        raise ValueError(f"hierarchy_loader: graphs have different numbers of levels {sorted(levels)}")
    follow = sorted(set(kw.pop("follow_batch", None) or []) | set(follow_batch_keys(graphs[0])))
    return DataLoader(list(graphs), batch_size=batch_size, follow_batch=follow, **kw)

