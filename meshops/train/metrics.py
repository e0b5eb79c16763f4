"""Per-field error metrics: relative L2 and maximum absolute error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MetricError", "field_metrics", "mean_metrics"]


class MetricError(ValueError):
    """A metric would be computed over nothing or over non-finite values (never a silent score)."""


def field_metrics(
    pred: np.ndarray, true: np.ndarray, names: Sequence[str], channels: Sequence[int], where: str = "metrics"
) -> dict[str, dict[str, float]]:
    """Relative L2 ``||p - t|| / ||t||``, ``max |p - t|`` and RMSE per named field (over all channels).

    A metric over nothing (no points) or over non-finite values is refused: non-finite predictions
    are never dropped silently. The caller selects the points to score (e.g. those the graph covers).
    A field whose truth is zero everywhere has rel_l2 0 when the prediction is exact, else inf.

    Shapes
    ------
    pred, true : (n, sum(channels)) -> {name: {"rel_l2": float, "max_abs": float, "rmse": float}}

    Raises
    ------
    MetricError
        No points, mismatched shapes, or a NaN / infinite value (the message names the field).
    """
    if not len(pred) or not len(true):
        raise MetricError(f"{where}: no points to score; a metric over nothing is not a result")
    pred = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    true = np.asarray(true, dtype=np.float64).reshape(len(true), -1)
    if pred.shape != true.shape or pred.shape[1] != sum(channels):
        raise MetricError(f"{where}: prediction {pred.shape} and truth {true.shape} do not match "
                          f"{sum(channels)} channels")
    if not len(pred):
        raise MetricError(f"{where}: no points to score; a metric over nothing is not a result")
    out: dict[str, dict[str, float]] = {}
    c0 = 0
    for name, c in zip(names, channels, strict=True):
        p, t = pred[:, c0 : c0 + c], true[:, c0 : c0 + c]
        for what, a in (("prediction", p), ("truth", t)):
            bad = int((~np.isfinite(a)).any(1).sum())
            if bad:
                raise MetricError(f"{where}: {what} of '{name}' is non-finite at {bad} of {len(a)} points; "
                                  "refusing to score it")
        d = p - t
        nt, nd = float(np.linalg.norm(t)), float(np.linalg.norm(d))
        out[name] = {
            "rel_l2": nd / nt if nt > 0 else (0.0 if nd == 0 else float("inf")),
            "max_abs": float(np.abs(d).max()),
            "rmse": float(np.sqrt((d * d).mean())),
        }
        c0 += c
    return out


def mean_metrics(per_case: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Average of each field's metrics over cases; ``max_abs`` is the maximum over cases."""
    out: dict[str, dict[str, float]] = {}
    cases = list(per_case.values())
    if not cases:
        raise MetricError("no cases: a mean metric over nothing is not a result")
    for name in cases[0]:
        out[name] = {
            "rel_l2": float(np.mean([c[name]["rel_l2"] for c in cases])),
            "rmse": float(np.mean([c[name]["rmse"] for c in cases])),
            "max_abs": float(np.max([c[name]["max_abs"] for c in cases])),
        }
    return out
