"""Imports the modules of the built-in formats, each of which registers itself."""

from __future__ import annotations

from meshops.io import meshio_formats  # noqa: F401
