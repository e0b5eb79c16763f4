"""The ``darcy_neuraloperator`` dataset: neuraloperator's own small Darcy-flow files as meshes.

neuraloperator ships the FNO Darcy benchmark for its examples as ``darcy_{train,test}_{16,32}.pt``
(see ``../shared/data/SOURCES.md``): torch-saved dicts with ``x`` -- the binary permeability,
bool, shape (samples, n, n) -- and ``y`` -- the pressure solution, float32, same shape. This file
turns each grid sample into a :class:`~meshops.data.Case` on a triangulated n x n grid mesh:

* points at the cell centres ``((i + 0.5) / n, (j + 0.5) / n, 0)`` of the unit square, row-major
  (point ``i * n + j`` holds ``x[s, i, j]``), so the 16 x 16 and 32 x 32 grids cover the same domain
  (zero-shot super-resolution compares like with like);
* cells: every grid square split into two triangles; one boundary region ``"boundary"`` (the
  outer ring of grid points, as line cells), so graphs flag boundary nodes;
* input point field ``permeability`` (0/1 as float32), target point field ``pressure``.

Files are loaded with ``torch.load(weights_only=True)``; missing keys, wrong shapes, sample counts
that differ between ``x`` and ``y`` and non-finite values are refused naming the file, the key and
the shape.

Options (``dataset_options``)::

    split: train            # train or test
    resolution: 16          # 16 or 32 (the file darcy_<split>_<resolution>.pt)
    n: null                 # use only the first n samples
    path: null              # an explicit .pt file (overrides split/resolution/root)
    root: null              # folder of the files (default: $MESHOPS_SHARED_DATA/neuraloperator or
                            # <checkout>/../shared/data/neuraloperator)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from meshops.data import Case, Dataset, DatasetError, register_dataset
from meshops.mesh import CellBlock, Mesh

log = logging.getLogger("meshops.datasets.darcy_neuraloperator")
HERE = Path(__file__).resolve().parent


def default_root() -> Path:
    """``$MESHOPS_SHARED_DATA/neuraloperator`` or ``<checkout>/../shared/data/neuraloperator``."""
    env = os.environ.get("MESHOPS_SHARED_DATA")
    base = Path(env) if env else HERE.parents[2] / "shared" / "data"
    return base / "neuraloperator"


def grid_mesh(n: int, m: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell-centre points, triangles and boundary edges of an ``n x m`` grid on the unit square.

    Shapes
    ------
    returns : points (n*m, 3) float64, triangles (2 (n-1)(m-1), 3) int64 (counter-clockwise),
    boundary edges (2 (n-1) + 2 (m-1), 2) int64
    """
    m = n if m is None else m
    if n < 2 or m < 2:
        raise DatasetError(f"darcy grid must be at least 2 x 2, got {n} x {m}")
    xi = (np.arange(n) + 0.5) / n
    yj = (np.arange(m) + 0.5) / m
    X, Y = np.meshgrid(xi, yj, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel(), np.zeros(n * m)], axis=1)
    idx = np.arange(n * m).reshape(n, m)
    a, b = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel()
    c, d = idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()
    tri = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)]).astype(np.int64)
    ring = np.concatenate([idx[0, :], idx[1:, -1], idx[-1, -2::-1], idx[-2:0:-1, 0]])
    edges = np.stack([ring, np.roll(ring, -1)], axis=1).astype(np.int64)
    return pts, tri, edges


def load_darcy_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one neuraloperator Darcy file.

    Shapes
    ------
    returns : permeability (S, n, m) float32, pressure (S, n, m) float32
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"darcy_neuraloperator: file {path} does not exist")
    try:
        d = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:
        raise DatasetError(f"darcy_neuraloperator: {path} cannot be read as a torch file ({type(e).__name__}: {e})") from e
    if not isinstance(d, dict):
        raise DatasetError(f"darcy_neuraloperator: {path} holds a {type(d).__name__}, expected a dict with keys 'x' and 'y'")
    missing = [k for k in ("x", "y") if k not in d]
    if missing:
        raise DatasetError(f"darcy_neuraloperator: {path} has no key(s) {missing} (keys: {sorted(map(str, d))}); "
                           "expected 'x' (permeability) and 'y' (pressure)")
    out = []
    for key in ("x", "y"):
        v = d[key]
        if not isinstance(v, torch.Tensor):
            raise DatasetError(f"darcy_neuraloperator: {path}: '{key}' is a {type(v).__name__}, expected a tensor")
        a = v.detach().cpu().to(torch.float32).numpy() if v.dtype != torch.bool else v.numpy().astype(np.float32)
        if a.ndim == 4 and a.shape[1] == 1:
            a = a[:, 0]
        if a.ndim != 3 or min(a.shape[1:]) < 2:
            raise DatasetError(f"darcy_neuraloperator: {path}: '{key}' has shape {tuple(v.shape)}, expected "
                               "(samples, n, m) or (samples, 1, n, m) with n, m >= 2")
        out.append(a)
    x, y = out
    if x.shape != y.shape:
        raise DatasetError(f"darcy_neuraloperator: {path}: 'x' has shape {x.shape} but 'y' has shape {y.shape}; "
                           "they must match (one permeability and one pressure grid per sample)")
    for key, a in (("x", x), ("y", y)):
        if not np.all(np.isfinite(a)):
            s = int(np.argwhere(~np.isfinite(a))[0, 0])
            raise DatasetError(f"darcy_neuraloperator: {path}: '{key}' has non-finite values (first in sample {s})")
    return x, y


@register_dataset("darcy_neuraloperator")
class DarcyNeuralOperator(Dataset):
    """neuraloperator's Darcy samples as grid meshes (see the module docstring)."""

    inputs: Sequence[str] = ["permeability", "wall_distance"]
    targets: Sequence[str] = ["pressure"]
    globals: Sequence[str] = ()

    def __init__(self, split: str = "train", resolution: int = 16, n: int | None = None,
                 path: str | os.PathLike[str] | None = None, root: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            if split not in ("train", "test"):
                raise DatasetError(f"darcy_neuraloperator: split must be 'train' or 'test', got {split!r}")
            path = Path(root if root is not None else default_root()) / f"darcy_{split}_{int(resolution)}.pt"
        self.path = Path(path)
        self.options = {"split": split, "resolution": resolution, "n": n, "path": os.fspath(self.path)}
        self.x, self.y = load_darcy_file(self.path)
        if n is not None:
            if n < 1:
                raise DatasetError(f"darcy_neuraloperator: n must be >= 1, got {n}")
            self.x, self.y = self.x[:n], self.y[:n]
        self.shape = tuple(self.x.shape[1:])
        self._pts, self._tri, self._bnd = grid_mesh(*self.shape)
        # distance to the square's walls (where u = 0), the same physical field on every grid
        xy = self._pts[:, :2]
        self._wall = np.minimum(xy, 1.0 - xy).min(1).astype(np.float32)
        self.tag = self.path.stem
        log.debug("%s: %d samples of %s", self.path, len(self.x), self.shape)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> Case:
        if not -len(self) <= i < len(self):
            raise IndexError(f"darcy_neuraloperator: sample {i} out of range ({len(self)} samples in {self.path})")
        i = i % len(self)
        mesh = Mesh(
            points=self._pts,
            cells=[CellBlock("triangle", self._tri)],
            point_data={"permeability": self.x[i].reshape(-1).copy(), "wall_distance": self._wall.copy(),
                        "pressure": self.y[i].reshape(-1).copy()},
            boundaries={"boundary": [CellBlock("line", self._bnd)]},
            dim=2,
            source=f"{self.path}[{i}]",
        )
        return Case(f"{self.tag}_{i:04d}", mesh, list(self.inputs), list(self.targets), {})

    def case_names(self) -> list[str]:
        return [f"{self.tag}_{i:04d}" for i in range(len(self))]

    def grid(self, values: Any) -> np.ndarray:
        """Point values (in this dataset's point order) back on the ``n x m`` grid.

        Shapes
        ------
        values : (n*m,) or (n*m, c) -> (n, m) or (n, m, c)
        """
        a = np.asarray(values)
        return a.reshape(self.shape + a.shape[1:])

    def __repr__(self) -> str:
        return f"DarcyNeuralOperator({len(self)} samples of {self.shape[0]}x{self.shape[1]} from {self.path})"
