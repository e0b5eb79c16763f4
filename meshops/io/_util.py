"""Small helpers shared by the readers and writers: atomic output, time selection, lazy imports."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from meshops.mesh import MeshError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file keeps the extension (writers that look at it still work) and is removed
    on failure, so a crash never leaves a half-written ``path`` behind.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"{path}: the output folder {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp" + "".join(path.suffixes[-1:]), dir=parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600): give it the mode a plain open() would have.
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
