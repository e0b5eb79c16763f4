"""The public entry points of :mod:`meshops.io`: ``read``, ``write``, ``probe`` (re-exported there).

This module knows the registry but none of the formats; the format modules import it (for nested
reads such as PVD series) and :mod:`meshops.io` imports the built-in formats after it, so there is
no import circle.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from meshops.io._util import atomic_path
from meshops.io.registry import Format, find_format
from meshops.mesh import Mesh, MeshError
from meshops.pages import small_pages

log = logging.getLogger(__name__)


PathLike = str | os.PathLike


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if not path.is_dir() and not path.is_file():  # a device or a pipe could be endless
        raise MeshError(f"{path}: not a regular file or a directory (a device, pipe or socket); "
                        "copy the data to a file first")


def _from_object(obj: Any) -> Mesh | None:
    """A Mesh from an in-memory object (pyvista/vtk dataset, meshio or trimesh mesh), else None."""
    if isinstance(obj, Mesh):
        return obj
    mod = type(obj).__module__.split(".")[0]
    if mod in ("pyvista", "vtkmodules", "vtk"):
        return Mesh.from_pyvista(obj)
    if mod == "meshio":
        return Mesh.from_meshio(obj)
    if mod == "trimesh":
        return Mesh.from_trimesh(obj)
    return None


def _is_series(path: Any) -> bool:
    return isinstance(path, Sequence) and not isinstance(path, (str, bytes))


@small_pages()  # large files: fresh arrays touched once (see meshops.pages)
def read(path: PathLike | Sequence[PathLike], time: Any = None, *, format: str | None = None,
         validate: bool = True, **kw: Any) -> Mesh | list[Mesh]:
    """Read a mesh file, a case directory, or a list of files forming a time series.

    Parameters
    ----------
    path : path, list of paths, or an in-memory mesh
        A file, an OpenFOAM case directory, a sequence of files (one time step each), or a
        pyvista/vtk dataset (PolyData, UnstructuredGrid, ImageData, RectilinearGrid, StructuredGrid,
        MultiBlock combined without merging points), a ``meshio.Mesh`` or a ``trimesh.Trimesh``.
    time : None, float, "all", "first" or "latest"
        For sources with several time steps: None picks the latest, a number picks that time,
        ``"all"`` returns a list with every step. Single-time files ignore ``None``/``"all"``.
    format : str, optional
        Registered format name, when the extension does not say it.
    validate : bool
        Check sizes and indices (:meth:`Mesh.validate`); NaN or Inf in a field only warns.
    **kw
        Passed to the format's reader.

    Returns
    -------
    Mesh, or list of Mesh when ``time="all"``

    Shapes
    ------
    ``points`` (n, 3) float64; ``cells`` blocks (m, k) int64; ``point_data[f]`` (n, ...);
    ``cell_data[f]`` (n_cells, ...) in block order.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    MeshError
        Unknown format, unreadable or corrupt file, inconsistent sizes, indices past the points.
    """
    obj = _from_object(path)
    if obj is not None:
        if validate:
            obj.validate()
        return obj
    if _is_series(path):
        from meshops.io.series import read_file_list

        out = read_file_list([Path(p) for p in path], read, time=time, format=format, validate=validate, **kw)
        return out
    path = Path(path)
    _check_exists(path)
    fmt = find_format(path, format)
    try:
        out = fmt.reader(path, time=time, **kw)
    except (MeshError, FileNotFoundError, ImportError, KeyboardInterrupt):
        raise
    except Exception as e:  # a reader's own parse error: say which file and format
        raise MeshError(f"{path}: cannot read as {fmt.name} ({type(e).__name__}: {e})") from e
    meshes = out if isinstance(out, list) else [out]
    for m in meshes:
        if m.source is None:
            m.source = str(path)
        if validate:
            m.validate()
    if time == "all" and not isinstance(out, list):
        return [out]
    return out


def _check_writable(mesh: Mesh, fmt: Format, path: Path) -> None:
    if fmt.cell_types is not None:
        bad = sorted({b.type for b in mesh.cells if len(b)} - fmt.cell_types)
        if bad:
            raise MeshError(
                f"{path}: format '{fmt.name}' cannot store cells of type {', '.join(bad)} "
                f"(it stores {', '.join(sorted(fmt.cell_types))}); write .vtu to keep them"
            )
    if "volume" not in fmt.stores and mesh.topological_dim == 3:
        raise MeshError(f"{path}: format '{fmt.name}' stores surfaces only, the mesh has 3D cells")
    if "mixed" not in fmt.stores and len({b.type for b in mesh.cells if len(b)}) > 1:
        raise MeshError(
            f"{path}: format '{fmt.name}' stores one cell type, the mesh has {sorted(mesh.cell_types)}"
        )
    for loc in ("point_data", "cell_data"):
        names = sorted(getattr(mesh, loc))
        if names and loc not in fmt.stores:
            log.warning("%s: format '%s' cannot store %s fields, dropping %s", path, fmt.name,
                        loc.split("_")[0], names)
    if mesh.boundaries and "boundaries" not in fmt.stores:
        log.info("%s: format '%s' has no named boundary regions, not writing %s", path, fmt.name,
                 sorted(mesh.boundaries))


@small_pages()
def write(mesh: Mesh, path: PathLike, *, format: str | None = None, **kw: Any) -> Path:
    """Write ``mesh`` to ``path`` atomically, the format chosen by extension (or ``format``).

    The data go to a temporary file in the same folder which is renamed onto ``path`` only when
    the writer succeeded: a failure never leaves a partial file. ``mesh`` is not modified.

    Parameters
    ----------
    mesh : Mesh
    path : path
    format : str, optional
        Registered format name.
    **kw
        Passed to the format's writer.

    Returns
    -------
    Path
        The written path.

    Shapes
    ------
    Writes ``mesh.points`` (n, 3) and every cell block (m, k) in order.

    Raises
    ------
    MeshError
        Unknown or read-only format, an invalid mesh, cells the format cannot hold.
    """
    path = Path(path)
    if not isinstance(mesh, Mesh):
        raise MeshError(f"{path}: write() needs a meshops.Mesh, got {type(mesh).__name__}")
    fmt = find_format(path, format, for_writing=True)
    mesh.validate(check_finite=False)
    _check_writable(mesh, fmt, path)
    assert fmt.writer is not None
    with atomic_path(path) as tmp:
        try:
            fmt.writer(mesh, tmp, **kw)
        except KeyboardInterrupt:
            raise
        except MeshError as e:
            msg = str(e).replace(str(tmp), str(path))
            if str(path) not in msg:
                msg = f"{path}: " + (msg.split(": ", 1)[1] if msg.startswith("<mesh>: ") else msg)
            raise MeshError(msg) from e
        except Exception as e:
            raise MeshError(f"{path}: cannot write as {fmt.name} ({type(e).__name__}: {e})") from e
    log.debug("wrote %s (%s)", path, fmt.name)
    return path


def _describe_fields(data: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {k: {"shape": list(v.shape[1:]), "dtype": str(v.dtype)} for k, v in data.items()}


def describe_loaded(mesh: Mesh, times: list[float] | None = None) -> dict[str, Any]:
    """A probe-style dict built from a loaded mesh (formats without a lazy probe use this)."""
    return {
        "times": list(times or ([] if mesh.time is None else [mesh.time])),
        "n_points": mesh.n_points,
        "n_cells": mesh.n_cells,
        "cell_types": mesh.cell_types,
        "point_fields": _describe_fields(mesh.point_data),
        "cell_fields": _describe_fields(mesh.cell_data),
        "boundaries": sorted(mesh.boundaries),
        "loaded": True,
    }


def probe(path: PathLike | Sequence[PathLike], *, format: str | None = None) -> dict[str, Any]:
    """Times, fields and sizes of a mesh source, without loading the arrays where the format allows.

    Parameters
    ----------
    path : path or list of paths
    format : str, optional

    Returns
    -------
    dict
        ``format``, ``times`` (list of float, empty for a single state), ``point_fields`` and
        ``cell_fields`` (name -> {"shape": per-item shape, "dtype"}), ``n_points``/``n_cells``
        when known, ``boundaries`` when known, and ``loaded`` (True when the format had to be read
        in full to answer).
    """
    if _is_series(path):
        from meshops.io.series import probe_file_list

        return probe_file_list([Path(p) for p in path], probe, format=format)
    path = Path(path)
    _check_exists(path)
    fmt = find_format(path, format)
    if fmt.probe is not None:
        try:
            info = fmt.probe(path)
        except (MeshError, FileNotFoundError):
            raise
        except Exception as e:
            raise MeshError(f"{path}: cannot probe as {fmt.name} ({type(e).__name__}: {e})") from e
        info.setdefault("loaded", False)
    else:
        m = read(path, format=format, validate=False)
        assert isinstance(m, Mesh)
        info = describe_loaded(m)
    info["format"] = fmt.name
    info.setdefault("times", [])
    return info


def list_times(path: PathLike | Sequence[PathLike], *, format: str | None = None) -> list[float]:
    """The time steps a source holds (empty for a single-state file)."""
    return list(probe(path, format=format)["times"])


def summarize(mesh: Mesh) -> dict[str, Any]:
    """What ``meshops info`` prints, as a JSON-able dict (see :func:`meshops.io.summary.summarize`)."""
    from meshops.io.summary import summarize as _s

    return _s(mesh)
