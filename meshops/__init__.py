"""meshops: neural operators on arbitrary geometry.

``meshops.read`` / ``meshops.write`` load and save meshes losslessly; ``meshops.Mesh`` is the
container. Subpackages (``graph``, ``ops``, ``nn``, ``models``, ``data``, ``train``, ``viz``) are
imported on first use so that ``import meshops`` stays light (no torch).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from meshops.mesh import CellBlock, Mesh, MeshError

__version__ = "0.1.0"
__all__ = ["CellBlock", "Mesh", "MeshError", "read", "write", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())

_SUBPACKAGES = {"io", "geometry", "graph", "ops", "nn", "models", "data", "train", "viz"}


def read(path: Any, **kwargs: Any) -> Any:
    """Read a mesh (see :func:`meshops.io.read`)."""
    from meshops.io import read as _read

    return _read(path, **kwargs)


def write(mesh: Mesh, path: Any, **kwargs: Any) -> Any:
    """Write a mesh atomically (see :func:`meshops.io.write`)."""
    from meshops.io import write as _write

    return _write(mesh, path, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"meshops.{name}")
    raise AttributeError(f"module 'meshops' has no attribute {name!r}")
