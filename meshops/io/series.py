"""A list of files as a time series: ``read([f0, f1, ...], time=...)``.

Step ``i`` has time ``times[i]`` when given (``read(files, times=[...])``), else its index. Each
file is read with its own format; ``probe`` looks at the last file only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshops.io._util import select_times
from meshops.mesh import Mesh, MeshError


def _times(paths: list[Path], times: Any) -> list[float]:
    if times is None:
        return [float(i) for i in range(len(paths))]
    times = [float(t) for t in times]
    if len(times) != len(paths):
        raise MeshError(f"{paths[0]}: {len(paths)} files but {len(times)} times")
    return times


def read_file_list(paths: list[Path], read: Callable[..., Any], time: Any = None, *, format: str | None = None, validate: bool = True,
                   times: Any = None, **kw: Any) -> Mesh | list[Mesh]:
    """Read the selected step(s) of a series given as a list of files.

    Parameters
    ----------
    paths : list of Path
    read : callable
        :func:`meshops.io.read` (passed in so this module does not import the package).
    time : None (the last step), a time value, "first", "latest" or "all"
    times : sequence of float, optional
        The time of each file (default: 0, 1, 2, ...).

    Returns
    -------
    Mesh, or list of Mesh for ``time="all"``
    """
    if not paths:
        raise MeshError("read(): the list of files is empty")
    tv = _times(paths, times)
    out = []
    for i in select_times(paths[0].parent, tv, time):
        m = read(paths[i], format=format, validate=validate, **kw)
        if isinstance(m, list):
            raise MeshError(f"{paths[i]}: holds several time steps; a file list needs one step per file")
        m.time = tv[i]
        out.append(m)
    return out if time == "all" else out[0]


def probe_file_list(paths: list[Path], probe: Callable[..., Any], *, format: str | None = None, times: Any = None) -> dict[str, Any]:
    """Probe of the last file, with the series' times and files."""
    if not paths:
        raise MeshError("probe(): the list of files is empty")
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or directory")
    info = probe(paths[-1], format=format)
    info["times"] = _times(paths, times)
    info["files"] = [str(p) for p in paths]
    return info
