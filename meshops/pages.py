"""Ordinary 4 KiB pages for numpy's large arrays while a memory-heavy step runs.

numpy asks the kernel for transparent huge pages on every array above 4 MiB
(``madvise(MADV_HUGEPAGE)``). On virtual machines whose free memory goes back to the host (virtio
free page reporting hands back free 2 MiB blocks, exactly what a huge page needs), the first touch
of such an array waits for the host to map each block again: measured on the 2-core VM this
project runs on, 2 GB of fresh huge pages took 12-18 s to touch, the same 2 GB of 4 KiB pages
0.8-0.9 s (``python -c "import numpy as np; a = np.empty(250_000_000); a.fill(1)"`` with
``NUMPY_MADVISE_HUGEPAGE=1`` / ``0``). On bare metal huge pages save ~0.2 s per GB of first touch;
graph building touches a few GB once and reads it in cache-sized blocks, so it gives those up.
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
