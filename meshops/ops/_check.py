"""Cheap input validation shared by the public ops (one ``aminmax`` per index)."""

from __future__ import annotations

import torch

from meshops.ops._config import checks_enabled

REDUCTIONS = ("sum", "mean", "max", "min")
INDEX_DTYPES = (torch.int32, torch.int64)
LOW_PRECISION = (torch.float16, torch.bfloat16)


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype: float32 for float16/bfloat16, the dtype itself otherwise."""
    return torch.float32 if dtype in LOW_PRECISION else dtype


def check_reduce(op: str, reduce: str, allowed: tuple[str, ...] = REDUCTIONS) -> str:
    if reduce not in allowed:
        raise ValueError(f"{op}: reduce={reduce!r} is not one of {', '.join(map(repr, allowed))}")
    return reduce


def check_index_tensor(op: str, name: str, index: torch.Tensor, length: int | None = None) -> None:
    """Type, dimension and length checks (no device sync)."""
    if not isinstance(index, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(index).__name__}")
    if index.dtype not in INDEX_DTYPES:
        raise TypeError(f"{op}: {name} has dtype {index.dtype}; expected torch.int64 or torch.int32")
    if index.dim() != 1:
        raise ValueError(f"{op}: {name} must be 1-D, got shape {tuple(index.shape)}")
    if length is not None and index.numel() != length:
        raise ValueError(
            f"{op}: {name} has {index.numel()} entries but the source has {length} rows (dim 0); "
            "they must match"
        )


def check_src(op: str, name: str, src: torch.Tensor, *, floating: bool = True) -> None:
    if not isinstance(src, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(src).__name__}")
    if src.dim() < 1:
        raise ValueError(f"{op}: {name} must have at least 1 dimension (rows along dim 0), got a scalar")
    if floating and not src.is_floating_point():
        raise TypeError(
            f"{op}: {name} has dtype {src.dtype}; expected a floating dtype "
            "(float16, bfloat16, float32 or float64)"
        )
    if src.dtype == torch.bool:
        raise TypeError(f"{op}: {name} has dtype torch.bool; expected a numeric dtype")


def check_same_device(op: str, **tensors: torch.Tensor | None) -> None:
    dev = None
    for t in tensors.values():
        if t is None:
            continue
        if dev is None:
            dev = t.device
        elif t.device != dev:
            break
    else:
        return
    devs = {k: t.device for k, t in tensors.items() if t is not None}
    if len(set(devs.values())) > 1:
        desc = ", ".join(f"{k} on {v}" for k, v in devs.items())
        raise ValueError(f"{op}: tensors are on different devices ({desc})")


def index_bound(op: str, name: str, index: torch.Tensor, dim_size: int | None) -> int:
    """Check ``0 <= index < dim_size`` with one ``aminmax`` and return ``dim_size``.

    With ``dim_size=None`` the size is ``index.max() + 1`` (0 for an empty index); that needs the
    max even with the checks switched off.
    """
    if dim_size is not None:
        if not isinstance(dim_size, int) or isinstance(dim_size, bool):
            try:
                dim_size = int(dim_size)
            except (TypeError, ValueError):
                raise TypeError(f"{op}: dim_size must be an int, got {dim_size!r}") from None
        if dim_size < 0:
            raise ValueError(f"{op}: dim_size must be >= 0, got {dim_size}")
    if index.numel() == 0:
        return 0 if dim_size is None else dim_size
    if dim_size is not None and not checks_enabled():
        return dim_size
    lo, hi = (int(v) for v in torch.aminmax(index))
    if lo < 0:
        raise IndexError(f"{op}: {name} contains the negative value {lo}; indices must be >= 0")
    if dim_size is None:
        return hi + 1
    if hi >= dim_size:
        raise IndexError(
            f"{op}: {name} contains the value {hi}, out of range for dim_size={dim_size} "
            f"(valid: 0..{dim_size - 1})"
        )
    return dim_size


def check_ptr(op: str, ptr: torch.Tensor, rows: int) -> int:
    """Validate a CSR ``ptr`` (non-decreasing, ``0 <= ptr[0]``, ``ptr[-1] <= rows``); return #segments."""
    check_index_tensor(op, "ptr", ptr)
    if ptr.numel() == 0:
        raise ValueError(f"{op}: ptr must have at least one entry (num_segments + 1), got an empty tensor")
    if checks_enabled():
        first, last = int(ptr[0]), int(ptr[-1])
        if first < 0:
            raise IndexError(f"{op}: ptr[0] = {first} is negative")
        if last > rows:
            raise IndexError(f"{op}: ptr[-1] = {last} exceeds the {rows} rows of src")
        if ptr.numel() > 1:
            d = ptr[1:] - ptr[:-1]
            dmin = int(d.min())
            if dmin < 0:
                at = int(torch.nonzero(d < 0)[0, 0])
                raise ValueError(
                    f"{op}: ptr must be non-decreasing; ptr[{at}] = {int(ptr[at])} > "
                    f"ptr[{at + 1}] = {int(ptr[at + 1])}"
                )
    return ptr.numel() - 1
