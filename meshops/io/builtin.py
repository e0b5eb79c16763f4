"""Imports the modules of the built-in formats, each of which registers itself."""

from __future__ import annotations

from meshops.io import (
    csv_points,  # noqa: F401
    dolfin,  # noqa: F401
    ensight,  # noqa: F401
    gmsh,  # noqa: F401
    meshio_formats,  # noqa: F401
    openfoam,  # noqa: F401
    su2,  # noqa: F401
    vtkconv,  # noqa: F401
)
