"""The error every mesh reader, writer and check raises (imported by :mod:`meshops.mesh`)."""

from __future__ import annotations


class MeshError(ValueError):
    """A mesh or one of its fields is invalid. The message names the source, the field and the value."""
