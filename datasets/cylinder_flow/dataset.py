"""The ``cylinder_flow`` trajectory dataset: 2D vortex shedding past obstacles (icoFoam), see README.md.

Each item is a :class:`~meshops.data.trajectory.Trajectory`: the triangle mesh (points in D,
z = 0) with boundary regions ``inlet``, ``outlet``, ``walls``, ``obstacle`` (line cells), times
(in D/U) and point fields ``u``, ``v``, ``p`` per snapshot; globals ``Re`` and ``D``.

Sources: the shipped ``data/cylinder_flow_subset.npz`` (default; written by ``pack.py``) or
``root=DIR``, a folder written by ``meshops datasets generate cylinder-flow``.
Options: ``split`` (``train``, ``test`` or None; case index ``i % 5 == 4`` is test), ``kinds``
(e.g. ``["cylinder"]``), ``max_cases``, ``max_steps`` (first snapshots only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from meshops.data import DatasetError, register_dataset
from meshops.data.trajectory import Trajectory
from meshops.mesh import CellBlock, Mesh

HERE = Path(__file__).resolve().parent
DEFAULT_PATH = HERE / "data" / "cylinder_flow_subset.npz"
PATCHES = ("inlet", "outlet", "walls", "obstacle")
FIELDS = ("u", "v", "p")


def split_of(index: int) -> str:
    """``test`` for every fifth case (``index % 5 == 4``), else ``train``."""
    return "test" if index % 5 == 4 else "train"


def make_trajectory(name: str, arrays: dict[str, np.ndarray], card: dict[str, Any], source: str,
                    max_steps: int | None = None) -> Trajectory:
    """A trajectory from the arrays of a ``trajectory.npz`` (see ``generate.py``)."""
    pts = np.zeros((len(arrays["points"]), 3))
    pts[:, :2] = arrays["points"]
    bnd = {k: [CellBlock("line", arrays[f"edges_{k}"].astype(np.int64))] for k in PATCHES}
    mesh = Mesh(pts, [CellBlock("triangle", arrays["triangles"].astype(np.int64))], boundaries=bnd, dim=2,
                source=source)
    sl = slice(None, max_steps)
    fields = {k: np.asarray(arrays[k][sl], dtype=np.float32) for k in FIELDS}
    return Trajectory(name, mesh, np.asarray(arrays["t"][sl], dtype=np.float64), fields,
                      {"Re": float(card["Re"]), "D": float(card["D"])}, dim=2)


@register_dataset("cylinder_flow")
class CylinderFlow:
    """Trajectories of the cylinder-flow dataset (see the module docstring)."""

    fields = list(FIELDS)

    def __init__(self, path: str | None = None, root: str | None = None, split: str | None = None,
                 kinds: list[str] | None = None, max_cases: int | None = None,
                 max_steps: int | None = None) -> None:
        if split not in (None, "train", "test"):
            raise DatasetError(f"cylinder_flow: split '{split}' unknown; use 'train', 'test' or None")
        self.max_steps = max_steps
        self.root = Path(root) if root else None
        if self.root is not None:
            folders = sorted(d for d in self.root.glob("case_*") if (d / "case.json").is_file())
            if not folders:
                raise DatasetError(f"cylinder_flow: {self.root} has no finished cases (case_*/case.json)")
            self._cards = [json.loads((d / "case.json").read_text()) for d in folders]
            self._folders = folders
        else:
            self.path = Path(path) if path else DEFAULT_PATH
            if not self.path.is_file():
                raise DatasetError(f"cylinder_flow: {self.path} not found (generate with `meshops datasets "
                                   "generate cylinder-flow --out DIR` and pass root=DIR)")
            z = np.load(self.path, allow_pickle=False)
            self._z = {k: z[k] for k in z.files}
            self._cards = json.loads(str(self._z["cards"]))
        keep = [i for i, c in enumerate(self._cards)
                if (split is None or split_of(int(c["index"])) == split) and (not kinds or c["kind"] in kinds)]
        self._keep = keep[:max_cases] if max_cases is not None else keep

    def __len__(self) -> int:
        return len(self._keep)

    def card(self, i: int) -> dict[str, Any]:
        return self._cards[self._keep[i]]

    def case_names(self) -> list[str]:
        return [self._cards[k]["name"] for k in self._keep]

    def __getitem__(self, i: int) -> Trajectory:
        if not -len(self) <= i < len(self):
            raise IndexError(f"cylinder_flow: index {i} out of range for {len(self)} trajectories")
        k = self._keep[i]
        card = self._cards[k]
        if self.root is not None:
            f = self._folders[k] / "trajectory.npz"
            with np.load(f, allow_pickle=False) as z:
                arrays = {n: z[n] for n in z.files}
            return make_trajectory(card["name"], arrays, card, str(f), self.max_steps)
        z = self._z
        pre = f"c{k}_"
        arrays = {n[len(pre):]: z[n] for n in z if n.startswith(pre)}
        return make_trajectory(card["name"], arrays, card, f"{self.path}[{card['name']}]", self.max_steps)


DATASET = CylinderFlow
