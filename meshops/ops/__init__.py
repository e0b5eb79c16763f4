"""The performance core: gather / scatter / segment reductions and fused message passing.

Every op has a plain-torch reference (:mod:`meshops.ops.reference`, always there, always right)
and a fast path: Triton kernels on CUDA registered as ``torch.library`` custom ops (so they
compose with ``torch.compile`` and autograd), and on CPU the fastest torch-native route per op
(measured in ``benchmarks/kernels.py``). Conventions:

- index tensors are 1-D ``int64`` or ``int32`` over dim 0; trailing feature dims are arbitrary;
- float16/bfloat16 accumulate in float32; float64 stays float64;
- rows that receive nothing are 0 for every reduction;
- ``deterministic(True)`` (or ``deterministic=True`` per call) selects the sorted-CSR path on
  CUDA, identical bits from run to run; atomics are the documented order-dependent default.

This package imports only torch (and triton, lazily, on CUDA).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from meshops.ops._config import checks, deterministic, is_deterministic
from meshops.ops.core import gather, gather_scatter, scatter, segment, softmax
from meshops.ops.csr import CSR, csr

if TYPE_CHECKING:
    from meshops.ops import sht
    from meshops.ops.rbf import rbf_eval

__all__ = [
    "CSR",
    "checks",
    "csr",
    "deterministic",
    "gather",
    "gather_scatter",
    "is_deterministic",
    "rbf_eval",
    "scatter",
    "segment",
    "sht",
    "softmax",
]

# Imported on first use, so ``import meshops.ops`` stays as light as the core ops.
_LAZY_MODULES = {"sht": "meshops.ops.sht"}
_LAZY_ATTRS = {"rbf_eval": "meshops.ops.rbf"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(_LAZY_MODULES[name])
    if name in _LAZY_ATTRS:
        value = getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_MODULES) | set(_LAZY_ATTRS))
