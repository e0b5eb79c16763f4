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

from meshops.data.case import Case, DatasetError
from meshops.data.dataset import CardDataset, Dataset, check_case
from meshops.data.registry import (
    available_datasets,
    cache_root,
    dataset_search_paths,
    load_dataset,
    recipe_module,
    register_dataset,
    resolve_dataset,
)
from meshops.mesh import MeshError

__all__ = [
    "Case",
    "CardDataset",
    "Dataset",
    "DatasetError",
    "register_dataset",
    "load_dataset",
    "available_datasets",
    "dataset_search_paths",
    "resolve_dataset",
    "check_case",
    "recipe_module",
    "cache_root",
    "MeshError",
]
