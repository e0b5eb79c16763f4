"""Imports the modules of the built-in formats, each of which registers itself."""

from __future__ import annotations

from meshops.io import meshio_formats  # noqa: F401
from meshops.io import vtkconv  # noqa: F401
from meshops.io import su2  # noqa: F401
from meshops.io import gmsh  # noqa: F401
from meshops.io import openfoam  # noqa: F401
from meshops.io import ensight  # noqa: F401
from meshops.io import csv_points  # noqa: F401
