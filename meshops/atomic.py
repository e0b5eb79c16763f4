"""Atomic file output shared by every layer (standard library only, so ``io`` may use it too).

A writer gets a temporary path in the destination folder; the file is renamed onto the
destination with ``os.replace`` only when the writer succeeds, and removed when it fails, so a
crash never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "remove_stale", "replace_block", "write_json_atomic", "write_text_atomic"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, make_parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file keeps the extension (writers that look at it still work) and is removed
    on failure. The final file gets the mode a plain ``open()`` would give it (or keeps the mode
    of the file it replaces).

    Parameters
    ----------
    path : path-like
        Destination file.
    make_parents : bool
        Create the destination folder if needed; otherwise a missing folder is an error.

    Raises
    ------
    FileNotFoundError
        The destination folder does not exist (and ``make_parents`` is false).
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if make_parents:
        parent.mkdir(parents=True, exist_ok=True)
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


def remove_stale(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files a killed writer left in ``folder`` (not recursive); return them.

    Only names :func:`atomic_path` makes (``.<stem>.<random>.tmp<suffix>``) are touched. Call it
    when a process takes a folder over (a resumed run), never while another writer may be busy.
    """
    gone = []
    for p in Path(folder).glob(".*.*.tmp*"):
        if p.is_file() and not p.is_symlink():
            with contextlib.suppress(OSError):
                p.unlink()
                gone.append(p)
    return gone


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(obj: object, path: str | os.PathLike[str], indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON (plus a final newline) atomically, creating the folder if needed."""
    path = Path(path)
    with atomic_path(path, make_parents=True) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=indent, sort_keys=False)
        f.write("\n")
    return path


def write_text_atomic(text: str, path: str | os.PathLike[str]) -> Path:
    """Write ``text`` atomically, creating the folder if needed."""
    path = Path(path)
    with atomic_path(path, make_parents=True) as tmp:
        tmp.write_text(text)
    return path


def replace_block(path: str | os.PathLike[str], begin: str, end: str, inner: str, *, prefix: str = "",
                  required: bool = False) -> Path:
    """Rewrite the text between the markers ``begin`` and ``end`` of a text file atomically.

    The file gets ``begin + inner + end`` in place of its first ``begin ... end`` block. Without the
    block it is appended (after a blank line, preceded by ``prefix``), or, with ``required``, a
    ``ValueError`` names the file and the markers; a missing file counts as empty.
    """
    path = Path(path)
    old = path.read_text() if path.is_file() else ""
    block = f"{begin}{inner}{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
    elif required:
        raise ValueError(f"{path}: no '{begin}' ... '{end}' block to fill")
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + prefix + block + "\n"
    return write_text_atomic(new, path)
