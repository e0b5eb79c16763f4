"""Mesh, point cloud or centerline -> graph (``torch_geometric.data.Data``), with multi-scale levels.

* :func:`build` / :class:`GraphSpec` / :class:`MeshGraph`: mesh edges, node features and types,
  hierarchy (see :mod:`meshops.graph.build` for the contract);
* :func:`radius`, :func:`knn`, :func:`radius_graph`, :func:`knn_graph`: neighbor search
  (cKDTree on CPU, a torch cell list on CUDA; see :mod:`meshops.graph.neighbors`);
* :func:`restrict`, :func:`prolong`: move fields between levels.
"""

from __future__ import annotations

from meshops.graph.build import GraphSpec, MeshGraph, build, edge_features, node_types, prolong, restrict
from meshops.graph.neighbors import knn, knn_graph, radius, radius_graph

__all__ = [
    "GraphSpec",
    "MeshGraph",
    "build",
    "edge_features",
    "knn",
    "knn_graph",
    "node_types",
    "prolong",
    "radius",
    "radius_graph",
    "restrict",
]
