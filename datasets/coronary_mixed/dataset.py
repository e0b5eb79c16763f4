"""Single vessels and trees together: the cases of ``coronary_synthetic`` followed by ``coronary_trees``
(whose names get the prefix ``tree_``: both recipes number their cases ``case_00000``, ...).

The training set of the shipped coronary model (``datasets/coronary_synthetic/train.yaml``). Both
recipes keep their own files and splits; ``split="train"|"val"|"test"`` takes that split of each.
A tree case whose mesh carries no centerline in its field data gets it from its dataset's
``centerline(i)`` (``centerline_points``, ``centerline_radius``, ``centerline_branches``), the
layout :func:`meshops.models.coronary.attach_case_centerline` reads. When the tree dataset is
not there (not generated yet), the single vessels alone are served, with a warning.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from meshops.data import Case, Dataset, DatasetError, load_dataset, register_dataset

log = logging.getLogger(__name__)

PARTS = ("coronary_synthetic", "coronary_trees")
#: Prefix of the tree cases' names (both recipes number their cases case_00000, ...).
TREE_PREFIX = "tree_"


@register_dataset("coronary_mixed")
class CoronaryMixed(Dataset):
    """The concatenation of the single-vessel and the tree datasets (see the module docstring)."""

    inputs: list[str] = []
    targets: list[str] = ["p", "wss_mag"]
    globals: list[str] = ["Q"]

    def __init__(self, split: str | None = None, targets: list[str] | None = None, max_trees: int | None = None,
                 trees_path: str | None = None) -> None:
        self.targets = list(targets or ["p", "wss_mag"])
        self.options = {"split": split, "targets": self.targets, "max_trees": max_trees, "trees_path": trees_path}
        self.parts: list[Any] = []
        for name in PARTS:
            extra = {"path": trees_path} if (name == PARTS[1] and trees_path) else {}
            try:
                self.parts.append(load_dataset(name, split=split, targets=self.targets, **extra))
            except DatasetError as e:
                if name == PARTS[0]:
                    raise
                log.warning("coronary_mixed: %s unavailable (%s); single vessels only", name, e)
        self._index = [(k, i) for k, ds in enumerate(self.parts)
                       for i in range(len(ds) if (k == 0 or max_trees is None) else min(len(ds), max_trees))]

    def __len__(self) -> int:
        return len(self._index)

    def case_names(self) -> list[str]:
        names = [ds.case_names() for ds in self.parts]
        return [_name(k, names[k][i]) for k, i in self._index]

    def part_of(self, i: int) -> tuple[Any, int]:
        """(dataset, index in it) of case ``i``."""
        k, j = self._index[i]
        return self.parts[k], j

    def card(self, i: int) -> dict[str, Any]:
        ds, j = self.part_of(i)
        return ds.card(j) if hasattr(ds, "card") else {}

    def __getitem__(self, i: int) -> Case:
        if not -len(self) <= i < len(self):
            raise IndexError(f"coronary_mixed: case index {i} out of range for {len(self)} cases")
        ds, j = self.part_of(i)
        case = ds[j]
        case.name = _name(self._index[i][0], case.name)
        fd = dict(case.mesh.field_data or {})
        if "centerline_points" not in fd and hasattr(ds, "centerline"):
            cl = ds.centerline(j)
            fd["centerline_points"] = np.asarray(cl["points"], dtype=np.float64)
            fd["centerline_radius"] = np.asarray(cl["radius"], dtype=np.float64)
            if "branches" in cl:
                fd["centerline_branches"] = [np.asarray(b, dtype=np.int64) for b in cl["branches"]]
            case.mesh.field_data = fd
        return case


def _name(part: int, name: str) -> str:
    return name if part == 0 or name.startswith(TREE_PREFIX) else TREE_PREFIX + name
