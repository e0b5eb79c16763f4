"""Train/validation/test splits fixed by a seed and saved as JSON."""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path

from meshops.atomic import write_json_atomic
from meshops.data import DatasetError

log = logging.getLogger(__name__)

__all__ = ["make_splits", "load_or_make_splits", "write_json_atomic"]


def make_splits(
    names: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, list[str]]:
    """Shuffle ``names`` with ``seed`` and cut them into train / val / test by ``fractions``.

    Every split with a positive fraction gets at least one case when there are enough cases
    (train first); the training split is never empty.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise DatasetError(f"split fractions must be three non-negative numbers, got {list(fractions)}")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if list(names).count(n) > 1})
        raise DatasetError(f"case names must be unique to split them; duplicated: {dup[:5]}")
    if not names:
        raise DatasetError("cannot split an empty dataset (0 cases)")
    order = sorted(names)
    random.Random(seed).shuffle(order)
    n = len(order)
    tot = float(sum(fractions))
    n_val = int(round(fractions[1] / tot * n))
    n_test = int(round(fractions[2] / tot * n))
    if fractions[1] > 0 and n_val == 0 and n >= 3:
        n_val = 1
    if fractions[2] > 0 and n_test == 0 and n >= 3:
        n_test = 1
    while n - n_val - n_test < 1:
        if n_test > 0:
            n_test -= 1
        else:
            n_val -= 1
    n_train = n - n_val - n_test
    return {
        "train": order[:n_train],
        "val": order[n_train : n_train + n_val],
        "test": order[n_train + n_val :],
    }


def load_or_make_splits(
    path: str | os.PathLike[str],
    names: Sequence[str],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, list[str]]:
    """Reuse the splits saved at ``path`` when they cover exactly ``names``; else make and save them.

    The file holds ``{"seed", "fractions", "train", "val", "test"}``.
    """
    path = Path(path)
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            parts = {k: list(saved[k]) for k in ("train", "val", "test")}
        except (ValueError, KeyError, TypeError) as e:
            raise DatasetError(f"{path}: not a meshops splits file ({e})") from e
        if sorted(sum(parts.values(), [])) == sorted(names):
            return parts
        log.warning("%s: saved splits do not match the dataset's %d cases; making new ones", path, len(names))
    parts = make_splits(names, fractions, seed)
    write_json_atomic({"seed": seed, "fractions": list(fractions), **parts}, path)
    return parts
