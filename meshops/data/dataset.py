"""The dataset contract: ``len(ds)`` cases, ``ds[i] -> Case``, and the check every case passes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from meshops.data.case import Case, DatasetError
from meshops.mesh import Mesh

__all__ = ["CardDataset", "Dataset", "check_case"]


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


class CardDataset(Dataset):
    """A dataset whose cases are rows of a pack (or folders), each with a card, kept by index.

    A subclass sets ``label`` (its name in messages), ``_cards`` (one dict per stored case) and
    ``_keep`` (the stored indices this instance serves, after split and ``max_cases``).
    """

    label: str = "dataset"
    _cards: list[dict[str, Any]]
    _keep: Any

    def _set_fields(self, inputs: Sequence[str] | None, targets: Sequence[str] | None,
                    derived: Sequence[str], all_targets: Sequence[str]) -> None:
        """``self.inputs`` / ``self.targets`` (default: no inputs, every target), each name checked."""
        self.inputs = list(inputs or [])
        self.targets = list(targets or all_targets)
        for kind, names, known in (("input", self.inputs, derived), ("target", self.targets, all_targets)):
            for f in names:
                if f not in known:
                    raise DatasetError(f"{self.label}: {kind} field '{f}' unknown; available: {list(known)}")

    def _check_split(self, split: str | None, splits: dict[str, int]) -> None:
        if split is not None and split not in splits:
            raise DatasetError(f"{self.label}: split '{split}' unknown; use one of {list(splits)} or None")
        self.split = split

    def __len__(self) -> int:
        return len(self._keep)

    def _check(self, i: int) -> int:
        """The stored index of case ``i`` (negative ``i`` counts from the end)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.label}: case index {i} out of range for {len(self)} cases")
        return int(self._keep[i])

    def card(self, i: int) -> dict[str, Any]:
        """The CFD card of case ``i`` (parameters, mesh size, solver iterations/time/residuals)."""
        return self._cards[self._check(i)]

    def centerline(self, i: int) -> dict[str, Any]:
        """The centerline of case ``i``: its mesh's ``centerline_*`` field data, without the prefix."""
        fd = self[i].mesh.field_data
        return {k[len("centerline_"):]: v for k, v in fd.items() if k.startswith("centerline_")}


def check_case(case: Any, where: str = "dataset") -> Case:
    """Validate that ``case`` is a :class:`Case` whose inputs exist on its mesh (targets may be absent)."""
    if not isinstance(case, Case):
        raise DatasetError(f"{where} returned {type(case).__name__}, expected meshops.data.Case")
    if not isinstance(case.mesh, Mesh):
        raise DatasetError(f"{where}: case '{case.name}' has mesh of type {type(case.mesh).__name__}")
    for n in case.inputs:
        case.field_array(n)
    return case
