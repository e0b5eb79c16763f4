"""The format registry: a name, file extensions, a reader, an optional writer and an optional probe.

Plugging in a format is one call::

    from meshops.io import register_format

    def read_foo(path, time=None, **kw):  # -> Mesh (or list[Mesh] for time="all")
        ...

    register_format("foo", [".foo"], read_foo, writer=write_foo)

A *reader* takes ``(path, time=None, **kw)`` and returns a :class:`~meshops.mesh.Mesh` (or a list
of them when ``time="all"``). A *writer* takes ``(mesh, path, **kw)`` and writes exactly that path
(the caller hands it a temporary path and renames it afterwards). A *probe* takes ``(path)`` and
returns a dict with at least ``times``, ``point_fields`` and ``cell_fields`` without loading the
arrays. ``detect(path) -> bool`` claims paths whose extension does not say the format (case
directories).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshops.mesh import MeshError

log = logging.getLogger(__name__)

Reader = Callable[..., Any]
Writer = Callable[..., None]
Probe = Callable[[Path], dict]


@dataclass
class Format:
    """One registered file format.

    Attributes
    ----------
    name : str
        Short name (``"vtu"``, ``"openfoam"``).
    extensions : tuple of str
        Lower-case extensions with the dot (``".vtu"``); compound ones like ``".nii.gz"`` work.
    reader, writer, probe, detect : callables or None
        See the module docstring.
    stores : set of str
        What the writer keeps: any of ``"point_data"``, ``"cell_data"``, ``"dtypes"``,
        ``"boundaries"``, ``"mixed"`` (several cell types), ``"volume"`` (3D cells).
        Used to warn before anything is dropped on write.
    cell_types : set of str or None
        Cell types the writer can store (None: any).
    """

    name: str
    extensions: tuple[str, ...]
    reader: Reader
    writer: Writer | None = None
    probe: Probe | None = None
    detect: Callable[[Path], bool] | None = None
    stores: set[str] = field(default_factory=set)
    cell_types: set[str] | None = None


_FORMATS: dict[str, Format] = {}


def register_format(
    name: str,
    extensions: Iterable[str],
    reader: Reader,
    writer: Writer | None = None,
    probe: Probe | None = None,
    *,
    detect: Callable[[Path], bool] | None = None,
    stores: Iterable[str] = ("point_data", "cell_data", "dtypes", "mixed", "volume"),
    cell_types: Iterable[str] | None = None,
    override: bool = True,
) -> Format:
    """Register (or replace) a file format.

    Parameters
    ----------
    name : str
        Unique short name.
    extensions : iterable of str
        File extensions, with or without the leading dot, matched case-insensitively.
    reader : callable
        ``reader(path, time=None, **kw) -> Mesh | list[Mesh]``.
    writer : callable, optional
        ``writer(mesh, path, **kw) -> None``; absent for read-only formats.
    probe : callable, optional
        ``probe(path) -> dict`` with ``times``, ``point_fields``, ``cell_fields`` without loading data.
    detect : callable, optional
        ``detect(path) -> bool`` for paths the extension does not identify (directories).
    stores : iterable of str
        What the writer keeps (see :class:`Format`).
    cell_types : iterable of str, optional
        Cell types the writer accepts (None: all).
    override : bool
        Replace an existing format of the same name (default) instead of raising.

    Returns
    -------
    Format
    """
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    if name in _FORMATS and not override:
        raise ValueError(f"format '{name}' is already registered")
    fmt = Format(name, exts, reader, writer, probe, detect, set(stores),
                 set(cell_types) if cell_types is not None else None)
    _FORMATS[name] = fmt
    return fmt


def formats() -> dict[str, Format]:
    """All registered formats by name (a copy)."""
    return dict(_FORMATS)


def _ext_matches(path: Path) -> list[Format]:
    low = path.name.lower()
    hits = [(max(len(e) for e in f.extensions if low.endswith(e)), f)
            for f in _FORMATS.values() if any(low.endswith(e) for e in f.extensions)]
    hits.sort(key=lambda t: -t[0])
    return [f for _, f in hits]


def known_extensions() -> list[str]:
    """Every registered extension, sorted."""
    return sorted({e for f in _FORMATS.values() for e in f.extensions})


def find_format(path: str | Path, fmt: str | None = None, *, for_writing: bool = False) -> Format:
    """The format for ``path``: by name if ``fmt`` is given, else by ``detect`` or extension.

    Raises
    ------
    MeshError
        Unknown extension or format name, or a read-only format when ``for_writing``.
    """
    path = Path(path)
    if fmt is not None:
        if fmt not in _FORMATS:
            raise MeshError(f"{path}: unknown format '{fmt}' (known: {', '.join(sorted(_FORMATS))})")
        f = _FORMATS[fmt]
    else:
        f = None
        if not for_writing:
            for cand in _FORMATS.values():
                if cand.detect is not None and path.exists():
                    try:
                        ok = cand.detect(path)
                    except OSError:
                        ok = False
                    if ok:
                        f = cand
                        break
        if f is None:
            hits = _ext_matches(path)
            if for_writing:
                hits = [h for h in hits if h.writer is not None] or hits
            if not hits:
                ext = "".join(path.suffixes[-1:]) or "(none)"
                what = "a directory that is not a known case" if path.is_dir() else f"extension '{ext}'"
                raise MeshError(
                    f"{path}: unknown mesh format, {what} (known extensions: {', '.join(known_extensions())})"
                )
            f = hits[0]
    if for_writing and f.writer is None:
        writable = sorted(e for g in _FORMATS.values() if g.writer for e in g.extensions)
        raise MeshError(f"{path}: format '{f.name}' is read-only (writable: {', '.join(writable)})")
    return f
