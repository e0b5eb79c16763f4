"""Neural network layers on :mod:`meshops.ops`: MLPs, message passing, graph kernel integrals, U-graph.

Layers take tensors (positions, features, index pairs), never files or meshes. Each family lives
in its own module; import what you need from the module or from here.
"""

from __future__ import annotations

from meshops.nn.gno import GNOKernelIntegral, radius_pairs
from meshops.nn.message_passing import EdgeNodeBlock, EncodeProcessDecode, MessagePassingProcessor
from meshops.nn.mlp import MLP
from meshops.nn.ugraph import Level, UGraphProcessor, prolong, restrict

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
]
