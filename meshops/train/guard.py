"""Trust checks on predictions: refuse non-finite results, warn about inputs outside the training range.

The rule: a prediction is either trustworthy or refused. Non-finite model outputs are an error
(:class:`PredictionError`); inputs outside the ranges stored in the checkpoint at training time
(input fields, globals, geometry extent) are a warning on the ``meshops.train.guard`` logger naming
the value and the range; a target channel that was never negative in the training data (a
magnitude such as ``|WSS|``) is clamped at 0 with a warning. Checkpoints written before the
ranges were stored have no ``min``/``max``: the range checks are skipped for them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from meshops.data.normalize import Normalizer, Stats, channel_name

log = logging.getLogger(__name__)

__all__ = ["PredictionError", "MARGIN", "check_finite_inputs", "check_finite_prediction", "range_messages",
           "warn_out_of_range", "clamp_nonnegative"]

#: A value counts as outside the training range when it lies beyond it by more than this fraction
#: of the range's width (or of its magnitude, for a constant channel).
MARGIN = 0.1
#: Geometry whose extent is outside [min / EXTENT_FACTOR, max * EXTENT_FACTOR] of the training cases.
EXTENT_FACTOR = 2.0


class PredictionError(ValueError):
    """A prediction cannot be trusted (non-finite values); the message names the mesh and the field."""


def check_finite_inputs(values: np.ndarray, names: Sequence[str], channels: Sequence[int], where: str,
                        what: str = "input field") -> None:
    """Raise :class:`PredictionError` if any value is NaN or infinite.

    Shapes
    ------
    values : (n, sum(channels))
    """
    a = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    bad = ~np.isfinite(a)
    if bad.any():
        c = int(np.nonzero(bad.any(0))[0][0])
        rows = np.nonzero(bad[:, c])[0]
        raise PredictionError(f"{where}: {what} {channel_name(c, channels, names)} has {len(rows)} non-finite "
                              f"value(s) (first at index {int(rows[0])}: {a[rows[0], c]}); refusing to predict")


def check_finite_prediction(pred: Any, names: Sequence[str], channels: Sequence[int], where: str) -> None:
    """Raise :class:`PredictionError` if the model output holds NaN or infinite values.

    Shapes
    ------
    pred : (N, sum(channels)) tensor or array at the graph nodes
    """
    a = pred.detach().cpu().numpy() if hasattr(pred, "detach") else np.asarray(pred)
    a = a.reshape(len(a), -1)
    bad = ~np.isfinite(a)
    if bad.any():
        c = int(np.nonzero(bad.any(0))[0][0])
        raise PredictionError(
            f"{where}: the model predicted {int(bad.any(1).sum())} of {len(a)} nodes non-finite (field "
            f"{channel_name(c, channels, names)}); nothing written. Check the inputs against the training "
            "range and the checkpoint's weights")


def range_messages(lo: np.ndarray, hi: np.ndarray, v_lo: np.ndarray, v_hi: np.ndarray, labels: Sequence[str],
                   where: str, what: str) -> list[str]:
    """One message per channel whose seen values ``v_lo .. v_hi`` leave the training range ``[lo, hi]`` by
    more than ``MARGIN`` of its width (of its magnitude, for a constant channel); ``labels`` name the channels.

    Shapes
    ------
    lo, hi, v_lo, v_hi : (C,); labels : C names
    """
    width = hi - lo
    tol = MARGIN * np.where(width > 0, width, np.maximum(np.abs(hi), np.abs(lo)))
    out = []
    for c in np.nonzero((v_lo < lo - tol) | (v_hi > hi + tol))[0]:
        seen = f"{v_lo[c]:.6g}" if v_lo[c] == v_hi[c] else f"{v_lo[c]:.6g} .. {v_hi[c]:.6g}"
        out.append(f"{where}: {what} {labels[c]} = {seen} is outside the training range [{lo[c]:.6g}, {hi[c]:.6g}]; "
                   "the prediction is an extrapolation")
    return out


def _warn_range(st: Stats, values: np.ndarray, names: Sequence[str], channels: Sequence[int], where: str,
                what: str) -> None:
    if st.lo is None or st.hi is None or not values.size or len(st.lo) != values.shape[1]:
        return
    labels = [channel_name(c, channels, names) for c in range(len(st.lo))]
    for msg in range_messages(st.lo, st.hi, values.min(0), values.max(0), labels, where, what):
        log.warning("%s", msg)


def warn_out_of_range(norm: Normalizer, features: Any, inputs: np.ndarray, globals_: np.ndarray,
                      points: np.ndarray, where: str) -> None:
    """Warn (logging) about inputs, globals and geometry outside the stored training ranges.

    Shapes
    ------
    inputs : (n, sum(input_channels)); globals_ : (n_globals,); points : (n, 3)
    """
    f = features
    _warn_range(norm.inputs, np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1), f.inputs,
                f.input_channels, where, "input field")
    _warn_range(norm.globals, np.asarray(globals_, dtype=np.float64).reshape(1, -1), f.globals,
                [1] * len(f.globals), where, "global")
    ext = norm.extra.get("extent") if isinstance(norm.extra, dict) else None
    pts = np.asarray(points, dtype=np.float64)
    if ext and len(pts):
        e = float(np.linalg.norm(np.ptp(pts, axis=0)))
        lo, hi = float(ext[0]), float(ext[1])
        if not (lo / EXTENT_FACTOR <= e <= hi * EXTENT_FACTOR):
            log.warning("%s: geometry extent (bounding-box diagonal) %.6g is outside the training range "
                        "[%.6g, %.6g] (x%g allowed); check the length units", where, e, lo, hi, EXTENT_FACTOR)


def clamp_nonnegative(norm: Normalizer, names: Sequence[str], channels: Sequence[int],
                      fields: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """Clamp at 0 the target channels never negative in training (magnitudes such as ``|WSS|``).

    Returns new arrays (the input dict is not modified); a warning names the field, how many values
    were negative and the most negative one.

    Shapes
    ------
    fields : {name: (n,) or (n, c)} -> same
    """
    lo = norm.targets.lo
    if lo is None:
        return dict(fields)
    out = dict(fields)
    c0 = 0
    for name, c in zip(names, channels, strict=True):
        sub = lo[c0 : c0 + c]
        c0 += c
        if name not in out or not (sub >= 0).all():
            continue
        a = np.asarray(out[name])
        neg = a < 0
        if neg.any():
            log.warning("%s: %d predicted value(s) of '%s' are negative (down to %.4g) but it was never negative "
                        "in training (a magnitude); clamped to 0", where, int(neg.sum()), name, float(np.nanmin(a)))
            out[name] = np.where(neg, np.zeros((), a.dtype), a)
    return out
