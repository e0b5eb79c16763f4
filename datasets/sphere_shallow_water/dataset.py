"""The ``sphere_shallow_water`` dataset: one-step pairs of shallow-water states on a spherical point set.

Trajectories come from ``generator.py`` (torch-harmonics' spectral solver, random initial states,
hourly snapshots; see README.md), generated on first use into ``root``. A case is one pair
``(t, t + stride)`` of one trajectory on the chosen point set, as a :class:`~meshops.Mesh` on the
unit sphere with point fields

* inputs ``geopotential``, ``vorticity``, ``divergence`` at time t (physical units),
* targets ``geopotential_next``, ``vorticity_next``, ``divergence_next`` at time ``t + stride``,

and the globals ``time`` (hours since the initial state) and ``dt`` (hours between input and target).
Cells: triangles for ``icosphere<level>``, quads for ``equiangular`` (rows wrap in longitude),
none for ``fibonacci<n>``.

Options (``dataset_options``)::

    point_set: icosphere4   # equiangular, icosphere<level>, fibonacci<n>
    split: train            # or test
    stride: 1               # hours between input and target
    every: 1                # keep every k-th start time
    root: null              # data folder (default: $MESHOPS_CACHE or <checkout>/.cache, /sphere_shallow_water)
    generate: {}            # keyword arguments for generator.generate when the files are missing
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from meshops.data import Case, Dataset, DatasetError, cache_root, recipe_module, register_dataset
from meshops.mesh import CellBlock, Mesh

HERE = Path(__file__).resolve().parent
FIELDS = ("geopotential", "vorticity", "divergence")


def _generator() -> Any:
    return recipe_module(HERE, "generator")


def default_root() -> Path:
    """``$MESHOPS_CACHE/sphere_shallow_water`` or ``<checkout>/.cache/sphere_shallow_water``."""
    return cache_root("sphere_shallow_water")


def _grid_quads(nlat: int, nlon: int) -> np.ndarray:
    j, i = np.meshgrid(np.arange(nlat - 1), np.arange(nlon), indexing="ij")
    a = j * nlon + i
    b = j * nlon + (i + 1) % nlon
    return np.stack([a, b, b + nlon, a + nlon], -1).reshape(-1, 4).astype(np.int64)


@register_dataset("sphere_shallow_water")
class SphereShallowWater(Dataset):
    """One-step shallow-water pairs on a spherical point set (see the module docstring)."""

    inputs = list(FIELDS)
    targets = [f + "_next" for f in FIELDS]
    globals = ["time", "dt"]

    def __init__(
        self,
        point_set: str = "icosphere4",
        split: str = "train",
        stride: int = 1,
        every: int = 1,
        root: str | os.PathLike[str] | None = None,
        generate: dict[str, Any] | None = None,
    ) -> None:
        if split not in ("train", "test"):
            raise DatasetError(f"sphere_shallow_water: split must be 'train' or 'test', got {split!r}")
        if stride < 1 or every < 1:
            raise DatasetError(f"sphere_shallow_water: stride ({stride}) and every ({every}) must be >= 1")
        gen = _generator()
        self.root = Path(root) if root is not None else default_root()
        path = self.root / f"{point_set}_{split}.h5"
        if not path.is_file():
            opts = dict(generate or {})
            opts.setdefault("point_sets", (point_set,))
            gen.generate(self.root, **opts)
        if not path.is_file():
            raise DatasetError(f"{path}: missing after generation (point_sets={opts['point_sets']})")
        d = gen.load(path)
        self.point_set, self.split, self.stride = point_set, split, stride
        self.fields: np.ndarray = d["fields"]  # (traj, time, N, 3)
        self.points: np.ndarray = d["points"]
        self.attrs = d["attrs"]
        self.cells: list[CellBlock] = []
        if "faces" in d:
            self.cells = [CellBlock("triangle", d["faces"].astype(np.int64))]
        elif point_set == "equiangular":
            self.cells = [CellBlock("quad", _grid_quads(int(self.attrs["nlat"]), int(self.attrs["nlon"])))]
        T, S = self.fields.shape[:2]
        if stride >= S:
            raise DatasetError(f"{path}: stride {stride} is not shorter than the {S} saved steps")
        self.index = [(i, t) for i in range(T) for t in range(0, S - stride, every)]
        self.dt_hours = float(self.attrs["dt"]) / 3600.0

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> Case:
        i, t = self.index[k]
        a, b = self.fields[i, t], self.fields[i, t + self.stride]
        pd = {f: a[:, c].astype(np.float64) for c, f in enumerate(FIELDS)}
        pd.update({f + "_next": b[:, c].astype(np.float64) for c, f in enumerate(FIELDS)})
        mesh = Mesh(self.points, self.cells, point_data=pd, source=f"sphere_shallow_water/{self.point_set}_{self.split}.h5")
        g = {"time": t * self.dt_hours, "dt": self.stride * self.dt_hours}
        return Case(f"{self.point_set}_{self.split}_traj{i}_t{t}", mesh, self.inputs, self.targets, g)
