"""Lossless mesh readers and writers behind one registry.

``read(path)`` returns a :class:`~meshops.mesh.Mesh` with points in file order, cells in file
order, every field with its dtype, and named boundary regions where the format has them
(OpenFOAM patches, Gmsh physical groups, SU2 markers, VTP face ids, EnSight boundary parts).
``write(mesh, path)`` picks the format from the extension and writes atomically (temporary file,
then ``os.replace``). ``probe(path)`` lists times and fields without loading the arrays.

Built-in formats (``formats()`` lists them): VTK XML ``.vtu`` ``.vtp`` ``.pvtu`` and ``.pvd`` time
series, legacy ``.vtk``, Gmsh ``.msh`` (v2 and v4), SU2 ``.su2``, ``.stl`` ``.obj`` ``.ply``, XDMF
``.xdmf``, OpenFOAM case directories (or their ``.foam`` file), EnSight Gold ``.case``, and a list
of files as a time series. This package never imports torch; meshio, pyvista and vtk are imported
inside the readers that need them.
"""

from __future__ import annotations

from meshops.io._util import select_times
from meshops.io.api import describe_loaded, list_times, probe, read, summarize, write
from meshops.io.registry import Format, find_format, formats, known_extensions, register_format
from meshops.mesh import CellBlock, Mesh, MeshError

__all__ = [
    "CellBlock",
    "Format",
    "Mesh",
    "MeshError",
    "describe_loaded",
    "find_format",
    "formats",
    "known_extensions",
    "list_times",
    "probe",
    "read",
    "register_format",
    "select_times",
    "summarize",
    "write",
    "write_series",
]

# Built-in formats register themselves on import (they import meshio/pyvista lazily).
from meshops.io import builtin as _builtin  # noqa: E402,F401
from meshops.io.vtkconv import write_series  # noqa: E402
