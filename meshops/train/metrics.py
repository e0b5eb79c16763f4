"""Per-field error metrics: relative L2 and maximum absolute error."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

__all__ = ["MetricError", "field_metrics", "mean_metrics"]

log = logging.getLogger(__name__)


class MetricError(ValueError):
    """A metric would be computed over nothing or over non-finite values (never a silent score)."""


def field_metrics(
    pred: np.ndarray, true: np.ndarray, names: Sequence[str], channels: Sequence[int], where: str = "metrics"
) -> dict[str, dict[str, float]]:
    """Relative L2 ``||p - t|| / ||t||``, ``max |p - t|`` and RMSE per named field (over all channels).

    A metric over nothing (no points) or over non-finite values is refused: non-finite predictions
    are never dropped silently. The caller selects the points to score (e.g. those the graph covers).
    A field whose truth is zero everywhere has no relative error: its ``rel_l2`` is ``None`` (JSON
    ``null``; ``max_abs`` and ``rmse`` still score it) and a warning names the field.

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
            "rel_l2": nd / nt if nt > 0 else _undefined_rel_l2(where, name),
            "max_abs": float(np.abs(d).max()),
            "rmse": float(np.sqrt((d * d).mean())),
        }
        c0 += c
    return out


def _undefined_rel_l2(where: str, name: str) -> None:
    log.warning("%s: the truth of '%s' is zero everywhere: its relative L2 is undefined (reported as null)",
                where, name)
    return None


def mean_metrics(per_case: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Average of each field's metrics over cases; ``max_abs`` is the maximum over cases.

    The mean ``rel_l2`` is over the cases where it is defined (``rel_l2_cases`` says how many);
    ``None`` when it is defined in none.
    """
    out: dict[str, dict[str, float]] = {}
    cases = list(per_case.values())
    if not cases:
        raise MetricError("no cases: a mean metric over nothing is not a result")
    for name in cases[0]:
        rel = [c[name]["rel_l2"] for c in cases if c[name]["rel_l2"] is not None]
        out[name] = {
            "rel_l2": float(np.mean(rel)) if rel else None,
            "rel_l2_cases": len(rel),
            "rmse": float(np.mean([c[name]["rmse"] for c in cases])),
            "max_abs": float(np.max([c[name]["max_abs"] for c in cases])),
        }
    return out
