"""Mesh, point cloud or centerline -> graph (``torch_geometric.data.Data``), with multi-scale levels.

* :func:`build` / :class:`GraphSpec` / :class:`MeshGraph`: mesh edges, node features and types,
  hierarchy (see :mod:`meshops.graph.build` for the contract);
* :func:`radius`, :func:`knn`, :func:`radius_graph`, :func:`knn_graph`: neighbor search
  (cKDTree on CPU, a torch cell list on CUDA; see :mod:`meshops.graph.neighbors`);
* :func:`restrict`, :func:`prolong`: move fields between levels.
"""

from __future__ import annotations

from meshops.graph.boundary import Boundary, extract_boundary
from meshops.graph.build import (
    GraphSpec,
    MeshGraph,
    build,
    edge_features,
    load_graph,
    node_types,
    prolong,
    restrict,
    save_graph,
)
from meshops.graph.centerline import centerline_graph, read_centerline
from meshops.graph.neighbors import knn, knn_graph, radius, radius_graph

__all__ = [
    "Boundary",
    "GraphSpec",
    "MeshGraph",
    "build",
    "centerline_graph",
    "extract_boundary",
    "load_graph",
    "edge_features",
    "knn",
    "knn_graph",
    "node_types",
    "prolong",
    "radius",
    "radius_graph",
    "read_centerline",
    "restrict",
    "save_graph",
]
