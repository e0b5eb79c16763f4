"""Per-field error metrics: relative L2 and maximum absolute error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["field_metrics", "mean_metrics"]


def field_metrics(
    pred: np.ndarray, true: np.ndarray, names: Sequence[str], channels: Sequence[int]
) -> dict[str, dict[str, float]]:
    """Relative L2 ``||p - t|| / ||t||`` and ``max |p - t|`` per named field (over all channels).

    Non-finite entries (points the graph does not cover) are ignored.

    Shapes
    ------
    pred, true : (n, sum(channels)) -> {name: {"rel_l2": float, "max_abs": float, "rmse": float}}
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    true = np.asarray(true, dtype=np.float64).reshape(len(true), -1)
    out: dict[str, dict[str, float]] = {}
    c0 = 0
    for name, c in zip(names, channels, strict=True):
        p, t = pred[:, c0 : c0 + c], true[:, c0 : c0 + c]
        ok = np.isfinite(p).all(1) & np.isfinite(t).all(1)
        d = p[ok] - t[ok]
        nt = float(np.linalg.norm(t[ok]))
        nd = float(np.linalg.norm(d))
        out[name] = {
            "rel_l2": nd / nt if nt > 0 else (0.0 if nd == 0 else float("inf")),
            "max_abs": float(np.abs(d).max()) if d.size else 0.0,
            "rmse": float(np.sqrt((d * d).mean())) if d.size else 0.0,
        }
        c0 += c
    return out


def mean_metrics(per_case: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Average of each field's metrics over cases; ``max_abs`` is the maximum over cases."""
    out: dict[str, dict[str, float]] = {}
    cases = list(per_case.values())
    if not cases:
        return out
    for name in cases[0]:
        out[name] = {
            "rel_l2": float(np.mean([c[name]["rel_l2"] for c in cases])),
            "rmse": float(np.mean([c[name]["rmse"] for c in cases])),
            "max_abs": float(np.max([c[name]["max_abs"] for c in cases])),
        }
    return out
