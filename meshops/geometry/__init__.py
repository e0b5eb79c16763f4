"""Pure array geometry (numpy/scipy only): centerlines, boundaries, surfaces, signed distance.

Every function takes and returns numpy arrays and documents their shapes; nothing here imports
torch or reads files.
"""

from __future__ import annotations

from meshops.geometry import boundary, centerline, centerline_extract, polyline, sampling, surface, topology
from meshops.geometry.centerline import (
    Centerline,
    CenterlineProjection,
    arc_length,
    curvature_torsion,
    project_points,
    resample,
    rotation_minimizing_frames,
    tangents,
)
from meshops.geometry.centerline_extract import centerlines_from_wall, extract_centerlines

__all__ = [
    "boundary",
    "centerline_extract",
    "centerlines_from_wall",
    "extract_centerlines",
    "centerline",
    "polyline",
    "sampling",
    "surface",
    "topology",
    "Centerline",
    "CenterlineProjection",
    "arc_length",
    "curvature_torsion",
    "project_points",
    "resample",
    "rotation_minimizing_frames",
    "tangents",
]
