"""The built-in ``folder`` dataset: any folder or glob of mesh files, no code.

Options (all JSON-able, so they live in a training YAML)::

    dataset: folder
    dataset_options:
      path: results/*.vtu          # a folder, a glob, or a list of them
      inputs: [inlet_velocity]     # point fields the model reads
      targets: [pressure, wss]     # point fields the model predicts
      globals: [reynolds]          # optional scalar parameters per file
      time: null                   # passed to meshops.io.read; "all" makes one case per time step

Global parameters are looked up, per file, in the mesh's ``field_data``, then in a sidecar JSON
``<file stem>.json`` next to it, then in ``globals.json`` of the file's folder (a mapping from file
name or stem to a dict of parameters).
"""

from __future__ import annotations

import glob as _glob
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from meshops.data import Case, Dataset, DatasetError, register_dataset
from meshops.mesh import Mesh

log = logging.getLogger(__name__)

#: File extensions picked up when ``path`` is a folder.
MESH_EXTENSIONS = (
    ".vtu", ".vtp", ".vtk", ".vtm", ".msh", ".su2", ".stl", ".obj", ".ply", ".xdmf", ".case", ".foam",
)


def _expand(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    items = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    files: list[Path] = []
    for item in items:
        s = os.path.expanduser(os.fspath(item))
        p = Path(s)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in MESH_EXTENSIONS and f.is_file())
            if not found:
                raise DatasetError(f"folder dataset: {p} holds no mesh files ({', '.join(MESH_EXTENSIONS)})")
            files += found
        elif any(ch in s for ch in "*?["):
            found = sorted(Path(f) for f in _glob.glob(s, recursive=True))
            if not found:
                raise DatasetError(f"folder dataset: the glob '{s}' matches no files")
            files += found
        elif p.exists():
            files.append(p)
        else:
            raise DatasetError(f"folder dataset: {p} does not exist")
    seen: set[Path] = set()
    out = []
    for f in files:
        if f.resolve() not in seen:
            seen.add(f.resolve())
            out.append(f)
    return out


@register_dataset("folder")
class FolderDataset(Dataset):
    """Mesh files from a folder or glob, with named input, target and global fields.

    Parameters
    ----------
    path : str or list of str
        A folder (all mesh files in it), a glob (``results/**/*.vtu``) or a list of them.
    inputs, targets : list of str
        Point field names. Targets may be missing at prediction time.
    globals : list of str, optional
        Global scalar parameter names (see the module docstring for where they are looked up).
    time : float, int, str or None
        Passed to :func:`meshops.io.read`; ``"all"`` makes one case per time step.
    read_options : dict, optional
        Extra keywords for :func:`meshops.io.read`.
    """

    def __init__(
        self,
        path: str | Sequence[str],
        inputs: Sequence[str] = (),
        targets: Sequence[str] = (),
        globals: Sequence[str] = (),
        time: Any = None,
        read_options: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.inputs = list(inputs)
        self.targets = list(targets)
        self.globals = list(globals)
        self.time = time
        self.read_options = dict(read_options or {})
        self.files = _expand(path)
        self._index: list[tuple[Path, int | None]] = []
        if time == "all":
            from meshops.io import probe

            for f in self.files:
                times = probe(f).get("times") or [None]
                self._index += [(f, k) for k in range(len(times))] if times != [None] else [(f, None)]
        else:
            self._index = [(f, None) for f in self.files]

    def __len__(self) -> int:
        return len(self._index)

    def case_names(self) -> list[str]:
        return [self._name(i) for i in range(len(self))]

    def _name(self, i: int) -> str:
        f, k = self._index[i]
        stems = [p.stem for p in self.files]
        base = f.stem if stems.count(f.stem) == 1 else f"{f.parent.name}_{f.stem}"
        return base if k is None else f"{base}_t{k:04d}"

    def _globals_for(self, f: Path, mesh: Mesh) -> dict[str, float]:
        found, missing, looked = lookup_globals(mesh, self.globals, f)
        if missing:
            what = f"global parameter '{missing[0]}'" if len(missing) == 1 else \
                "global parameters " + ", ".join(f"'{m}'" for m in missing)
            raise DatasetError(f"{f}: {what} not found in its field data, in " + " or in ".join(looked[1:]))
        return found

    def __getitem__(self, i: int) -> Case:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"folder dataset has {len(self)} cases, asked for {i}")
        from meshops.io import read

        f, k = self._index[i]
        if k is not None:
            meshes = read(f, time="all", **self.read_options)
            mesh = meshes[k]
        else:
            mesh = read(f, time=self.time, **self.read_options) if self.time is not None else read(
                f, **self.read_options
            )
        case = Case(self._name(i), mesh, self.inputs, self.targets, self._globals_for(f, mesh))
        for n in self.inputs:
            case.field_array(n)
        return case


def lookup_globals(mesh: Mesh, names: list[str], path: str | os.PathLike[str] | None = None,
                   tables: Sequence[str | os.PathLike[str]] = ()) -> tuple[dict[str, float], list[str], list[str]]:
    """Global parameters of the file ``path`` (default ``mesh.source``), looked up as training does.

    In order: the mesh's field data, the sidecar ``<stem>.json``, the folder's ``globals.json``
    (keyed by file name or stem), then each extra ``globals.json`` in ``tables`` (e.g. the one the
    training run used). Returns ``(found, missing, where looked)``; every missing name is reported
    at once.
    """
    src = path if path is not None else mesh.source
    f = Path(src) if src else None
    extra_tables = list(tables)
    tables: list[tuple[str, dict[str, Any]]] = [("field data", dict(mesh.field_data))]
    if f is not None:
        sidecar, table_file = f.with_suffix(".json"), f.parent / "globals.json"
        side = _read_json(sidecar) if sidecar.is_file() else {}
        table = _read_json(table_file) if table_file.is_file() else {}
        row = table.get(f.name, table.get(f.stem, {}))
        tables += [(sidecar.name, side), (str(table_file), row if isinstance(row, dict) else {})]
        for extra in tables_extra(tables_arg=extra_tables, skip=table_file):
            t = _read_json(extra)
            row = t.get(f.name, t.get(f.stem, {}))
            tables.append((str(extra), row if isinstance(row, dict) else {}))
    found: dict[str, float] = {}
    for g in names:
        for where, tab in tables:
            if g in tab:
                found[g] = _scalar(tab[g], f"{where}: global '{g}'")
                break
    return found, [g for g in names if g not in found], [w for w, _ in tables]


def tables_extra(tables_arg: list[Any], skip: Path) -> list[Path]:
    """The existing ``globals.json`` files of ``tables_arg`` other than ``skip``."""
    out = []
    for t in tables_arg:
        p = Path(t)
        if p.is_file() and (not skip.exists() or not os.path.samefile(p, skip)) and p not in out:
            out.append(p)
    return out


def training_tables(dataset_path: Any) -> list[Path]:
    """The ``globals.json`` beside the files of a folder dataset's ``path`` (folder, glob or list)."""
    paths = dataset_path if isinstance(dataset_path, list) else [dataset_path]
    out: list[Path] = []
    for p in paths:
        if not isinstance(p, str):
            continue
        q = Path(os.path.expanduser(p))
        folder = q if q.is_dir() else q.parent
        while any(c in str(folder) for c in "*?[") and folder != folder.parent:
            folder = folder.parent  # a glob's fixed leading folder
        if (folder / "globals.json").is_file() and folder / "globals.json" not in out:
            out.append(folder / "globals.json")
    return out


def _read_json(p: Path) -> dict[str, Any]:
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(f"{p}: not readable JSON ({e})") from e
    if not isinstance(d, dict):
        raise DatasetError(f"{p}: expected a JSON object, got {type(d).__name__}")
    return d


def _scalar(v: Any, where: str) -> float:
    try:
        a = np.asarray(v, dtype=np.float64).ravel()
        return float(a[0])
    except (TypeError, ValueError, IndexError):
        raise DatasetError(f"{where}: expected a number, got {v!r}") from None
