"""The :class:`Case` record: one mesh with named input and target point fields and its globals.

Training, caching, splits and normalization only ever see cases, never files. :class:`DatasetError`
is the one error class of the data layer (a dataset not found, a case with a missing field, ...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from meshops.mesh import Mesh

__all__ = ["Case", "DatasetError"]


class DatasetError(ValueError):
    """A dataset could not be found, loaded or yields an invalid case (the message names it)."""


@dataclass
class Case:
    """One training/prediction sample: a mesh with named input and target point fields.

    Attributes
    ----------
    name : str
        A unique, file-name-safe name within the dataset (used for caching, splits and reports).
    mesh : Mesh
        The geometry; ``mesh.point_data`` holds the input fields and (when known) the target fields.
        A PyVista dataset, a meshio or a trimesh object is converted to a Mesh.
    inputs : list of str
        Names of point fields fed to the model (may be empty: geometry-only operators).
    targets : list of str
        Names of point fields the model predicts. At prediction time they may be absent.
    globals : dict of str -> float
        Global scalar parameters of the case (inflow rate, Reynolds number, time step, ...).
    """

    name: str
    mesh: Mesh
    inputs: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    globals: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.mesh, Mesh) and type(self.mesh).__module__.split(".")[0] in (
                "pyvista", "vtkmodules", "meshio", "trimesh"):
            from meshops.graph.build import as_mesh  # a PyVista/meshio/trimesh object: convert it

            self.mesh = as_mesh(self.mesh, f"case '{self.name}'")
        self.inputs = list(self.inputs)
        self.targets = list(self.targets)
        self.globals = {str(k): float(v) for k, v in dict(self.globals).items()}

    @property
    def has_targets(self) -> bool:
        """Whether every target field is present on the mesh."""
        return all(t in self.mesh.point_data for t in self.targets)

    def field_array(self, name: str) -> np.ndarray:
        """A point field as ``(n_points, c)`` float32; raises naming the case and the field.

        Shapes
        ------
        returns : (n_points, c) float32 (scalar fields get ``c = 1``)
        """
        pd = self.mesh.point_data
        if name not in pd:
            raise DatasetError(
                f"case '{self.name}' ({self.mesh.source or 'in memory'}): point field '{name}' is missing; "
                f"available point fields: {sorted(pd)}"
            )
        a = np.asarray(pd[name])
        if a.shape[:1] != (self.mesh.n_points,):
            raise DatasetError(
                f"case '{self.name}': point field '{name}' has {a.shape[0] if a.ndim else 0} values "
                f"but the mesh has {self.mesh.n_points} points"
            )
        return a.reshape(a.shape[0], -1).astype(np.float32)

    def stack(self, names: Sequence[str]) -> np.ndarray:
        """The named point fields concatenated along channels.

        Shapes
        ------
        returns : (n_points, sum of channels) float32
        """
        if not names:
            return np.zeros((self.mesh.n_points, 0), dtype=np.float32)
        return np.concatenate([self.field_array(n) for n in names], axis=1)

    def global_vector(self, names: Sequence[str]) -> np.ndarray:
        """The named global parameters as a vector (raises naming a missing one).

        Shapes
        ------
        returns : (len(names),) float32
        """
        missing = [n for n in names if n not in self.globals]
        if missing:
            raise DatasetError(
                f"case '{self.name}': global parameter(s) {missing} missing; it has {sorted(self.globals)}"
            )
        return np.asarray([self.globals[n] for n in names], dtype=np.float32)

    def fingerprint(self) -> str:
        """A hash of the geometry, the used fields and the globals (the cache key's data half)."""
        h = hashlib.sha1()
        m = self.mesh
        h.update(np.ascontiguousarray(m.points).tobytes())
        for b in m.cells:
            h.update(b.type.encode())
            h.update(np.ascontiguousarray(b.data).tobytes())
        for name in sorted(m.boundaries):
            h.update(name.encode())
            for b in m.boundaries[name]:
                h.update(np.ascontiguousarray(b.data).tobytes())
        for name in list(self.inputs) + list(self.targets):
            h.update(name.encode())
            if name in m.point_data:
                h.update(np.ascontiguousarray(m.point_data[name]).tobytes())
        h.update(repr(sorted(self.globals.items())).encode())
        return h.hexdigest()
