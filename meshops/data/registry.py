"""Finding datasets: registration by name, discovery by path, folder or entry point, file execution.

:func:`load_dataset` turns a spec (a ``.py`` file, a folder holding ``dataset.py``, a registered
name, ``<search path>/<name>/dataset.py`` or an entry point of group ``meshops.datasets``) into a
built dataset. Recipe folders are not packages: :func:`recipe_module` imports one of their files
once; :func:`cache_root` is where a recipe keeps the data it generates.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshops.data.case import DatasetError
from meshops.data.dataset import Dataset

__all__ = [
    "available_datasets",
    "cache_root",
    "dataset_search_paths",
    "load_dataset",
    "recipe_module",
    "register_dataset",
    "resolve_dataset",
]


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
        for builtin in ("meshops.data.folder", "meshops.data.trajectory"):
            importlib.import_module(builtin)


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
