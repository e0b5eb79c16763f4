"""Small helpers shared by the readers and writers: atomic output, time selection, lazy imports.

``atomic_path`` lives in :mod:`meshops.atomic` (shared with the other layers) and is re-exported here.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from meshops.atomic import atomic_path
from meshops.mesh import MeshError

__all__ = ["atomic_path", "dtype_name", "exact_text", "lazy_import", "select_times", "write_rows"]

log = logging.getLogger(__name__)


def exact_text(a: np.ndarray) -> np.ndarray:
    """Shortest of ``%.15g`` / ``%.17g`` per value that reads back to the same float64 (strings)."""
    a = np.asarray(a, dtype=np.float64)
    short = np.char.mod("%.15g", a)
    same = short.astype(np.float64) == a
    if np.all(same | np.isnan(a)):
        return short
    return np.where(same | np.isnan(a), short, np.char.mod("%.17g", a))


def write_rows(f: Any, *cols: np.ndarray) -> None:
    """Write columns (int arrays as-is, float arrays exactly) space-separated, one row per line."""
    parts = []
    for c in cols:
        c = np.asarray(c)
        c = c.reshape(len(c), -1)
        if c.dtype.kind == "f":
            parts.append(exact_text(c))
        else:
            parts.append(c.astype(np.int64).astype(str))
    table = np.concatenate(parts, axis=1) if parts else np.zeros((0, 0), dtype=str)
    f.write("".join(" ".join(row) + "\n" for row in table.tolist()))


def lazy_import(name: str, feature: str) -> Any:
    """Import an optional dependency, with an error that says what needs it."""
    try:
        return importlib.import_module(name)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"{feature} needs the package '{name.split('.')[0]}' ({e})") from e


def select_times(path: Path | str, available: Sequence[float], time: Any) -> list[int]:
    """Indices into ``available`` for ``time``: None -> the last, "all" -> every one, a number -> the match.

    Raises
    ------
    MeshError
        When the requested time is not among the available ones (the message lists them).
    """
    if not len(available):
        if time is None or time == "all":
            return []
        raise MeshError(f"{path}: has no time steps, cannot select time={time!r}")
    if time is None:
        return [len(available) - 1]
    if isinstance(time, str):
        if time == "all":
            return list(range(len(available)))
        if time in ("latest", "last"):
            return [len(available) - 1]
        if time in ("first",):
            return [0]
        try:
            time = float(time)
        except ValueError:
            raise MeshError(f"{path}: time={time!r} is not a number, 'all', 'first' or 'latest'") from None
    arr = np.asarray(available, dtype=float)
    hit = np.flatnonzero(np.isclose(arr, float(time), rtol=1e-9, atol=1e-12))
    if not len(hit):
        shown = ", ".join(f"{t:g}" for t in arr[:20]) + (" ..." if len(arr) > 20 else "")
        raise MeshError(f"{path}: no time step {float(time):g} (available times: {shown})")
    return [int(hit[0])]


def dtype_name(a: np.ndarray) -> str:
    return str(np.asarray(a).dtype)


def first_non_number(raw: bytes) -> str:
    """The first whitespace-separated token of ``raw`` that is not a number (for error messages), or '?'."""
    for token in raw.split():
        try:
            float(token)
        except ValueError:
            return token.decode("utf-8", "replace")
    return "?"
