"""Ordinary 4 KiB pages for numpy's large arrays while a memory-heavy step runs.

numpy asks the kernel for transparent huge pages on every array above 4 MiB
(``madvise(MADV_HUGEPAGE)``). On the 2-core VM this project runs on, the first touch of fresh
huge pages is very slow, most likely because the host takes back free 2 MiB blocks (virtio free
page reporting) and has to map each one again: 2 GB of fresh huge pages took 12-18 s to touch,
the same 2 GB of 4 KiB pages 0.8-0.9 s (``python -c "import numpy as np; a =
np.empty(250_000_000); a.fill(1)"`` with ``NUMPY_MADVISE_HUGEPAGE=1`` / ``0``, interleaved runs).
A graph build allocates a few GB of fresh arrays and touches each about once; small pages cost it
more TLB misses on its random reads, and still took the 4e6-point build from 26-28 s to 20-22 s
there, and reading a 4e6-point ``.vtu`` from 12.3-13.2 s to 10.3-11.0 s (``benchmarks/README.md``).
On bare metal, where huge pages fault in fast, the loss is small.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

try:
    from numpy._core.multiarray import _set_madvise_hugepage
except ImportError:  # pragma: no cover - numpy < 2
    try:
        from numpy.core.multiarray import _set_madvise_hugepage
    except ImportError:
        _set_madvise_hugepage = None

__all__ = ["small_pages"]


@contextlib.contextmanager
def small_pages() -> Iterator[None]:
    """numpy allocates without the huge-page hint inside the block; the previous setting after it."""
    if _set_madvise_hugepage is None:
        yield
        return
    prev = _set_madvise_hugepage(False)
    try:
        yield
    finally:
        _set_madvise_hugepage(prev)
