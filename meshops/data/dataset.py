"""The dataset contract: ``len(ds)`` cases, ``ds[i] -> Case``, and the check every case passes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from meshops.data.case import Case, DatasetError
from meshops.mesh import Mesh

__all__ = ["Dataset", "check_case"]


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


def check_case(case: Any, where: str = "dataset") -> Case:
    """Validate that ``case`` is a :class:`Case` whose inputs exist on its mesh (targets may be absent)."""
    if not isinstance(case, Case):
        raise DatasetError(f"{where} returned {type(case).__name__}, expected meshops.data.Case")
    if not isinstance(case.mesh, Mesh):
        raise DatasetError(f"{where}: case '{case.name}' has mesh of type {type(case.mesh).__name__}")
    for n in case.inputs:
        case.field_array(n)
    return case
