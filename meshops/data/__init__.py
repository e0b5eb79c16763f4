"""Datasets: the contract, a registry and plug-in discovery.

A dataset yields :class:`Case` objects: one mesh, the names of its input fields, the names of its
target fields and a dict of global parameters (scalars such as an inflow rate or a time step).
Training, caching, splits and normalization only ever see cases, never files.

Writing a dataset is one file. Subclass :class:`Dataset` (or just provide ``__len__`` and
``__getitem__`` returning :class:`Case`) and register it::

    # my_dataset.py
    import numpy as np
    from meshops import Mesh
    from meshops.data import Case, Dataset, register_dataset

    @register_dataset("my_pipes")
    class MyPipes(Dataset):
        inputs = ["inlet_speed_field"]        # point fields the model reads
        targets = ["pressure"]                # point fields the model predicts
        globals = ["viscosity"]               # scalar parameters per case (optional)

        def __init__(self, n=10, **options):
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            mesh = ...                        # meshops.read(path) or a Mesh built in memory
            return Case(f"pipe{i}", mesh, self.inputs, self.targets, {"viscosity": 1e-3})

Then ``meshops train --dataset my_dataset.py ...`` (a path to the file), or put it at
``datasets/<name>/dataset.py`` (found by :func:`load_dataset("<name>")`), or expose it from an
installed package through the ``meshops.datasets`` entry point group
(``[project.entry-points."meshops.datasets"] my_pipes = "mypkg.data:MyPipes"``).
Keyword options from the config (``dataset_options``) are passed to the constructor.

The built-in ``folder`` dataset (:class:`meshops.data.folder.FolderDataset`) needs no code: a folder
or glob of mesh files plus the names of the input, target and global fields.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from meshops.mesh import Mesh, MeshError

log = logging.getLogger(__name__)

__all__ = [
    "Case",
    "Dataset",
    "DatasetError",
    "register_dataset",
    "load_dataset",
    "available_datasets",
    "dataset_search_paths",
]


class DatasetError(ValueError):
    """A dataset could not be found, loaded or yields an invalid case (the message names it)."""


@dataclass
class Case:
    """One training/prediction sample: a mesh with named input and target point fields.

    Attributes
    ----------
    name : str
        A unique, file-name-safe name within the dataset (used for caching, splits and reports).
    mesh : Mesh
        The geometry; ``mesh.point_data`` holds the input fields and (when known) the target fields.
        A PyVista dataset, a meshio or a trimesh object is converted to a Mesh.
    inputs : list of str
        Names of point fields fed to the model (may be empty: geometry-only operators).
    targets : list of str
        Names of point fields the model predicts. At prediction time they may be absent.
    globals : dict of str -> float
        Global scalar parameters of the case (inflow rate, Reynolds number, time step, ...).
    """

    name: str
    mesh: Mesh
    inputs: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    globals: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.mesh, Mesh) and type(self.mesh).__module__.split(".")[0] in (
                "pyvista", "vtkmodules", "meshio", "trimesh"):
            from meshops.graph.build import as_mesh  # a PyVista/meshio/trimesh object: convert it

            self.mesh = as_mesh(self.mesh, f"case '{self.name}'")
        self.inputs = list(self.inputs)
        self.targets = list(self.targets)
        self.globals = {str(k): float(v) for k, v in dict(self.globals).items()}

    @property
    def has_targets(self) -> bool:
        """Whether every target field is present on the mesh."""
        return all(t in self.mesh.point_data for t in self.targets)

    def field_array(self, name: str) -> np.ndarray:
        """A point field as ``(n_points, c)`` float32; raises naming the case and the field.

        Shapes
        ------
        returns : (n_points, c) float32 (scalar fields get ``c = 1``)
        """
        pd = self.mesh.point_data
        if name not in pd:
            raise DatasetError(
                f"case '{self.name}' ({self.mesh.source or 'in memory'}): point field '{name}' is missing; "
                f"available point fields: {sorted(pd)}"
            )
        a = np.asarray(pd[name])
        if a.shape[:1] != (self.mesh.n_points,):
            raise DatasetError(
                f"case '{self.name}': point field '{name}' has {a.shape[0] if a.ndim else 0} values "
                f"but the mesh has {self.mesh.n_points} points"
            )
        return a.reshape(a.shape[0], -1).astype(np.float32)

    def stack(self, names: Sequence[str]) -> np.ndarray:
        """The named point fields concatenated along channels.

        Shapes
        ------
        returns : (n_points, sum of channels) float32
        """
        if not names:
            return np.zeros((self.mesh.n_points, 0), dtype=np.float32)
        return np.concatenate([self.field_array(n) for n in names], axis=1)

    def global_vector(self, names: Sequence[str]) -> np.ndarray:
        """The named global parameters as a vector (raises naming a missing one).

        Shapes
        ------
        returns : (len(names),) float32
        """
        missing = [n for n in names if n not in self.globals]
        if missing:
            raise DatasetError(
                f"case '{self.name}': global parameter(s) {missing} missing; it has {sorted(self.globals)}"
            )
        return np.asarray([self.globals[n] for n in names], dtype=np.float32)

    def fingerprint(self) -> str:
        """A hash of the geometry, the used fields and the globals (the cache key's data half)."""
        h = hashlib.sha1()
        m = self.mesh
        h.update(np.ascontiguousarray(m.points).tobytes())
        for b in m.cells:
            h.update(b.type.encode())
            h.update(np.ascontiguousarray(b.data).tobytes())
        for name in sorted(m.boundaries):
            h.update(name.encode())
            for b in m.boundaries[name]:
                h.update(np.ascontiguousarray(b.data).tobytes())
        for name in list(self.inputs) + list(self.targets):
            h.update(name.encode())
            if name in m.point_data:
                h.update(np.ascontiguousarray(m.point_data[name]).tobytes())
        h.update(repr(sorted(self.globals.items())).encode())
        return h.hexdigest()


class Dataset:
    """Base class of datasets: ``len(ds)`` cases, ``ds[i] -> Case``.

    Class attributes ``inputs``, ``targets`` and ``globals`` name the fields every case carries
    (a subclass may set them per instance instead). ``options`` holds the constructor keywords so a
    checkpoint can rebuild the dataset.
    """

    name: str = ""
    inputs: Sequence[str] = ()
    targets: Sequence[str] = ()
    globals: Sequence[str] = ()

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, i: int) -> Case:  # pragma: no cover - abstract
        raise NotImplementedError

    def __iter__(self) -> Iterator[Case]:
        for i in range(len(self)):
            yield self[i]

    def case_names(self) -> list[str]:
        """Names of all cases (loads each case unless a subclass overrides this)."""
        return [self[i].name for i in range(len(self))]


_REGISTRY: dict[str, Callable[..., Any]] = {}
_BUILTINS_LOADED = False


def register_dataset(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Class decorator registering a dataset constructor under ``name``.

    Registering the same name again replaces the earlier entry only if it comes from a re-import of
    the same file (same qualified name); otherwise it is an error.
    """

    def deco(ctor: Callable[..., Any]) -> Callable[..., Any]:
        old = _REGISTRY.get(name)
        if old is not None and old is not ctor and getattr(old, "__qualname__", None) != getattr(
            ctor, "__qualname__", None
        ):
            raise DatasetError(f"dataset name '{name}' is already registered by {old!r}")
        _REGISTRY[name] = ctor
        if isinstance(ctor, type) and not getattr(ctor, "name", ""):
            ctor.name = name  # type: ignore[attr-defined]
        return ctor

    return deco


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        importlib.import_module("meshops.data.folder")


def dataset_search_paths() -> list[Path]:
    """Folders searched for ``<name>/dataset.py``: ``$MESHOPS_DATASETS`` (os.pathsep-separated),
    ``./datasets`` and the ``datasets/`` folder of the meshops source checkout."""
    paths: list[Path] = []
    env = os.environ.get("MESHOPS_DATASETS")
    if env:
        paths += [Path(p) for p in env.split(os.pathsep) if p]
    paths.append(Path.cwd() / "datasets")
    paths.append(Path(__file__).resolve().parents[2] / "datasets")
    out: list[Path] = []
    for p in paths:
        if p not in out:
            out.append(p)
    return out


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    try:
        eps = entry_points(group="meshops.datasets")
    except TypeError:  # pragma: no cover - python < 3.10
        eps = entry_points().get("meshops.datasets", [])  # type: ignore[attr-defined]
    return {ep.name: ep for ep in eps}


def recipe_module(folder: str | os.PathLike[str], name: str) -> Any:
    """Import ``<folder>/<name>.py`` of a dataset recipe folder once (recipe folders are not packages).

    The module is cached in ``sys.modules`` as ``meshops_<folder name>_<name>``, so every importer
    (the recipe itself, its dataset, benchmarks, tests) shares one copy.

    Raises
    ------
    DatasetError
        The file does not exist or cannot be imported as Python.
    """
    folder = Path(folder)
    modname = f"meshops_{folder.name}_{name}"
    if modname in sys.modules:
        return sys.modules[modname]
    return _exec_file(modname, folder / f"{name}.py", "recipe file")


def _exec_file(modname: str, path: Path, what: str) -> Any:
    """Import the Python file ``path`` as module ``modname`` (kept in ``sys.modules`` unless it fails)."""
    if not path.is_file():
        raise DatasetError(f"{what} {path} does not exist")
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise DatasetError(f"{what} {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


def cache_root(name: str) -> Path:
    """Where a recipe keeps generated data: ``$MESHOPS_CACHE/<name>`` or ``<checkout>/.cache/<name>``."""
    base = os.environ.get("MESHOPS_CACHE")
    return (Path(base) if base else Path(__file__).resolve().parents[2] / ".cache") / name


def _import_file(path: Path) -> Any:
    """Import a dataset file as a module and return the dataset constructor it defines."""
    path = path.resolve()
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    modname = "meshops_user_dataset_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    before = dict(_REGISTRY)
    try:
        module = _exec_file(modname, path, "dataset file")
    except Exception as e:
        raise DatasetError(f"dataset file {path} failed to import: {type(e).__name__}: {e}") from e
    # 1) classes registered by this file
    new = [c for k, c in _REGISTRY.items() if getattr(c, "__module__", None) == modname]
    new += [c for k, c in _REGISTRY.items() if k not in before and c not in new]
    if len(new) == 1:
        return new[0]
    # 2) an explicit DATASET attribute
    if hasattr(module, "DATASET"):
        return module.DATASET
    # 3) exactly one Dataset subclass defined in the file
    classes = [
        v for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Dataset) and v is not Dataset and v.__module__ == modname
    ]
    if len(classes) == 1:
        return classes[0]
    what = f"{len(new)} registered datasets" if new else f"{len(classes)} Dataset subclasses"
    raise DatasetError(
        f"dataset file {path} defines {what}; define exactly one (use @register_dataset or DATASET = MyClass)"
    )


def resolve_dataset(spec: str | os.PathLike[str]) -> Callable[..., Any]:
    """The dataset constructor for ``spec``.

    ``spec`` is, in this order: a path to a ``.py`` file; a folder holding ``dataset.py``; a
    registered name (``folder`` is built in); ``<name>`` of a folder ``<search path>/<name>/dataset.py``
    (see :func:`dataset_search_paths`); or an entry point in group ``meshops.datasets``.
    """
    _load_builtins()
    s = os.fspath(spec)
    p = Path(s)
    if s.endswith(".py"):
        return _import_file(p)
    if p.is_dir() and (p / "dataset.py").is_file():
        return _import_file(p / "dataset.py")
    if s in _REGISTRY:
        return _REGISTRY[s]
    for root in dataset_search_paths():
        f = root / s / "dataset.py"
        if f.is_file():
            return _import_file(f)
    eps = _entry_points()
    if s in eps:
        try:
            return eps[s].load()
        except Exception as e:
            raise DatasetError(f"dataset entry point '{s}' ({eps[s].value}) failed to load: {e}") from e
    known = sorted(set(_REGISTRY) | set(eps) | set(_folder_names()))
    raise DatasetError(
        f"unknown dataset '{s}': not a .py file, not a folder with dataset.py, not registered; "
        f"known datasets: {', '.join(known) or '(none)'}"
    )


def _folder_names() -> list[str]:
    out = []
    for root in dataset_search_paths():
        if root.is_dir():
            out += [d.name for d in root.iterdir() if (d / "dataset.py").is_file()]
    return out


def available_datasets() -> list[str]:
    """Names of registered, folder (``datasets/<name>/dataset.py``) and entry-point datasets."""
    _load_builtins()
    return sorted(set(_REGISTRY) | set(_folder_names()) | set(_entry_points()))


def load_dataset(spec: str | os.PathLike[str] | Dataset, **options: Any) -> Any:
    """Build a dataset from a name, a file or a folder (see :func:`resolve_dataset`).

    ``options`` are passed to the dataset's constructor. An already-built dataset is returned as is.
    The returned object gets ``meshops_spec = {"dataset": spec, "options": options}`` so a
    checkpoint can record where its data came from.
    """
    if not isinstance(spec, (str, os.PathLike)):
        return spec
    ctor = resolve_dataset(spec)
    try:
        ds = ctor(**options)
    except TypeError as e:
        raise DatasetError(f"dataset '{os.fspath(spec)}': bad options {sorted(options)}: {e}") from e
    try:
        ds.meshops_spec = {"dataset": os.fspath(spec), "options": dict(options)}
    except AttributeError:  # pragma: no cover - slotted classes
        pass
    return ds


def check_case(case: Any, where: str = "dataset") -> Case:
    """Validate that ``case`` is a :class:`Case` whose inputs exist on its mesh (targets may be absent)."""
    if not isinstance(case, Case):
        raise DatasetError(f"{where} returned {type(case).__name__}, expected meshops.data.Case")
    if not isinstance(case.mesh, Mesh):
        raise DatasetError(f"{where}: case '{case.name}' has mesh of type {type(case.mesh).__name__}")
    for n in case.inputs:
        case.field_array(n)
    return case


__all__ += ["resolve_dataset", "check_case", "recipe_module", "cache_root", "MeshError"]
