"""Global switches of :mod:`meshops.ops`: deterministic reductions and input checks."""

from __future__ import annotations

import os
from types import TracebackType

import torch

__all__ = ["deterministic", "is_deterministic", "checks", "checks_enabled", "triton_on_cpu"]

_STATE = {"deterministic": False, "checks": True}


class _Switch:
    """Setter that doubles as a context manager restoring the previous value on exit."""

    _key = ""

    def __init__(self, flag: bool = True) -> None:
        self.prev = _STATE[self._key]
        _STATE[self._key] = bool(flag)

    def __enter__(self) -> _Switch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _STATE[self._key] = self.prev

    def __bool__(self) -> bool:
        return _STATE[self._key]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_STATE[self._key]})"


class deterministic(_Switch):  # noqa: N801  (reads like torch.set_grad_enabled / torch.no_grad)
    """Select bit-deterministic reductions.

    ``deterministic(True)`` switches on the sorted-CSR segment path (no atomics: the sums are
    identical bit for bit from run to run); ``deterministic(False)`` selects the atomic path, the
    fast default on CUDA, whose float sums depend on the order threads arrive in. Used as a
    statement it sets the flag; used in a ``with`` block it restores the previous value on exit::

        with meshops.ops.deterministic(True):
            y = meshops.ops.scatter(x, index, n)

    ``torch.use_deterministic_algorithms(True)`` also selects the deterministic path. CPU routes
    are deterministic either way.
    """

    _key = "deterministic"


class checks(_Switch):  # noqa: N801
    """Enable (default) or disable the index range checks (one ``aminmax`` per call).

    The checks cost one pass over the index and, on CUDA, one device sync; switch them off in
    a hot loop whose indices are known good. Same setter / context-manager semantics as
    :class:`deterministic`. The checks are skipped automatically under ``torch.compile``.
    """

    _key = "checks"


def is_deterministic(flag: bool | None = None) -> bool:
    """Resolve a per-call ``deterministic`` argument against the global switches."""
    if flag is not None:
        return bool(flag)
    return _STATE["deterministic"] or torch.are_deterministic_algorithms_enabled()


def checks_enabled() -> bool:
    """True when index checks run (enabled and not tracing under ``torch.compile``)."""
    if not _STATE["checks"]:
        return False
    try:
        return not torch.compiler.is_compiling()
    except AttributeError:  # pragma: no cover - old torch
        return True


_TRITON_CPU = os.environ.get("TRITON_INTERPRET") == "1" and os.environ.get("MESHOPS_TRITON_CPU") == "1"


def triton_on_cpu() -> bool:
    """Run the Triton kernels on CPU tensors through the interpreter (tests and debugging only).

    True when both ``TRITON_INTERPRET=1`` and ``MESHOPS_TRITON_CPU=1`` were in the environment
    when meshops.ops was imported (``TRITON_INTERPRET`` must be set before triton is imported).
    """
    return _TRITON_CPU
