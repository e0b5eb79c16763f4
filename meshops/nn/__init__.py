"""Neural network layers on :mod:`meshops.ops`: MLPs, message passing, graph kernel integrals, U-graph.

Layers take tensors (positions, features, index pairs), never files or meshes. Each family lives
in its own module; import what you need from the module or from here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from meshops.nn.gno import GNOKernelIntegral, radius_pairs
from meshops.nn.message_passing import EdgeNodeBlock, EncodeProcessDecode, MessagePassingProcessor
from meshops.nn.mlp import MLP
from meshops.nn.ugraph import Level, UGraphProcessor, prolong, restrict

if TYPE_CHECKING:
    from meshops.nn.amg import AMGBlock, GraphAttention, knn_dense
    from meshops.nn.attention import PhysicsAttention, Transolver, TransolverBlock, dense_slots, slice_weights
    from meshops.nn.beno import (
        BENOBranch,
        BoundaryEncoder,
        ConditionedBlock,
        ConditionedUGraph,
        boundary_features,
        coarse_batch,
        pad_by_graph,
    )
    from meshops.nn.centerline import CenterlineEncoder, dense_index
    from meshops.nn.multigrid import (
        CycleOps,
        LevelOperator,
        LinearMultigrid,
        MultigridLayer,
        check_levels,
        galerkin,
        jacobi_omega,
        level_geometry,
        multigrid_cycle,
        prolongation_matrix,
    )
    from meshops.nn.potentials import green, layer_potentials, newtonian_potential, node_geometry, spatial_dim
    from meshops.nn.rbf import AnisotropicRBFDecoder, place_centers
    from meshops.nn.spherical import (
        SFNOBlock,
        SHEdgeEncoding,
        SpectralConvS2,
        SphereMessagePassing,
        SphericalConv,
    )

__all__ = [
    "MLP",
    "EdgeNodeBlock",
    "MessagePassingProcessor",
    "EncodeProcessDecode",
    "GNOKernelIntegral",
    "radius_pairs",
    "Level",
    "UGraphProcessor",
    "restrict",
    "prolong",
    "SFNOBlock",
    "SHEdgeEncoding",
    "SpectralConvS2",
    "SphereMessagePassing",
    "SphericalConv",
    "AnisotropicRBFDecoder",
    "place_centers",
    "CenterlineEncoder",
    "dense_index",
    "CycleOps",
    "LevelOperator",
    "LinearMultigrid",
    "MultigridLayer",
    "check_levels",
    "galerkin",
    "jacobi_omega",
    "level_geometry",
    "multigrid_cycle",
    "prolongation_matrix",
    "PhysicsAttention",
    "Transolver",
    "TransolverBlock",
    "dense_slots",
    "slice_weights",
    "AMGBlock",
    "GraphAttention",
    "knn_dense",
    "BENOBranch",
    "BoundaryEncoder",
    "ConditionedBlock",
    "ConditionedUGraph",
    "boundary_features",
    "coarse_batch",
    "pad_by_graph",
    "green",
    "layer_potentials",
    "newtonian_potential",
    "node_geometry",
    "spatial_dim",
]

# Imported on first use (importing them all eagerly adds ~0.7 s to ``import meshops.nn``).
_LAZY: dict[str, str] = {
    "SFNOBlock": "spherical",
    "SHEdgeEncoding": "spherical",
    "SpectralConvS2": "spherical",
    "SphereMessagePassing": "spherical",
    "SphericalConv": "spherical",
    "AnisotropicRBFDecoder": "rbf",
    "place_centers": "rbf",
    "CenterlineEncoder": "centerline",
    "dense_index": "centerline",
    "CycleOps": "multigrid",
    "LevelOperator": "multigrid",
    "LinearMultigrid": "multigrid",
    "MultigridLayer": "multigrid",
    "check_levels": "multigrid",
    "galerkin": "multigrid",
    "jacobi_omega": "multigrid",
    "level_geometry": "multigrid",
    "multigrid_cycle": "multigrid",
    "prolongation_matrix": "multigrid",
    "PhysicsAttention": "attention",
    "Transolver": "attention",
    "TransolverBlock": "attention",
    "dense_slots": "attention",
    "slice_weights": "attention",
    "AMGBlock": "amg",
    "GraphAttention": "amg",
    "knn_dense": "amg",
    "BENOBranch": "beno",
    "BoundaryEncoder": "beno",
    "ConditionedBlock": "beno",
    "ConditionedUGraph": "beno",
    "boundary_features": "beno",
    "coarse_batch": "beno",
    "pad_by_graph": "beno",
    "green": "potentials",
    "layer_potentials": "potentials",
    "newtonian_potential": "potentials",
    "node_geometry": "potentials",
    "spatial_dim": "potentials",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
