"""Errors of a time-stepping model (:mod:`meshops.train.stepping`): one step, rollouts, stability.

Per-channel relative L2 over the nodes; a rollout's error per step; the steps a rollout stays
below an error; the 1-step / k-step / full-rollout report of ``meshops evaluate`` and the bench.
``st`` is a :class:`meshops.train.stepping.Stepper` (not imported here: stepping imports this module).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from meshops.data import DatasetError
from meshops.data.trajectory import Trajectory

log = logging.getLogger(__name__)

__all__ = ["evaluate_trajectories", "first_nonfinite", "one_step_error", "rel_l2", "rollout_errors", "rollout_score", "stability_steps"]


def rel_l2(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-channel relative L2 error over the nodes, ``||pred - true|| / ||true||``.

    Shapes
    ------
    pred, true : (..., n, C) -> returns (..., C)
    """
    num = np.sqrt(((pred - true) ** 2).sum(axis=-2))
    den = np.sqrt((true**2).sum(axis=-2))
    return num / np.maximum(den, 1e-12)


def one_step_error(st: Any, trajs: Sequence[Trajectory], n_states: int = 12) -> float:
    """Mean one-step rel L2 (over channels, ``n_states`` evenly spaced states, trajectories)."""
    errs = []
    with torch.no_grad():
        for t in trajs:
            X = torch.from_numpy(t.states(st.cfg.fields))
            g = st.graph(t)
            for k in np.unique(np.linspace(st.history, len(X) - 2, n_states).astype(int)):
                p = st.step_window(g, X[k - st.history : k + 1])
                errs.append(rel_l2(p.numpy()[None], X[k + 1].numpy()[None]).mean())
    return float(np.mean(errs))


def rollout_score(st: Any, trajs: Sequence[Trajectory], n_steps: int) -> float:
    """Mean rel L2 (over channels, the first ``n_steps`` rollout steps, trajectories) of rollouts from
    state ``history``; a blown-up rollout scores infinity."""
    errs = []
    for t in trajs:
        X = t.states(st.cfg.fields)
        n = min(n_steps, len(X) - 1 - st.history)
        e = rollout_errors(st.rollout(t, n), X[st.history : st.history + n + 1])[1:]
        errs.append(float(e.mean()) if np.isfinite(e).all() else math.inf)
    return float(np.mean(errs))


def rollout_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Rel L2 per step and channel of a rollout (NaN after a blow-up).

    Shapes
    ------
    pred, true : (S, n, C) -> returns (S, C)
    """
    return rel_l2(pred.astype(np.float64), true.astype(np.float64))


def first_nonfinite(a: np.ndarray) -> int | None:
    """The first index along axis 0 whose entry holds a non-finite value (a rollout's blow-up); None if none.

    Shapes
    ------
    a : (S, ...) -> returns an index < S or None
    """
    bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def stability_steps(err: np.ndarray, threshold: float = 1.0) -> int:
    """Steps until any channel's rollout error passes ``threshold`` or is non-finite (all steps if never).

    Shapes
    ------
    err : (S, C)
    """
    bad = ~np.isfinite(err).all(axis=1) | (np.nan_to_num(err, nan=np.inf).max(axis=1) > threshold)
    k = np.nonzero(bad)[0]
    return int(k[0]) if len(k) else int(len(err) - 1)


def steps_below(err: np.ndarray, ref: np.ndarray) -> list[int]:
    """Per channel, the rollout steps (from step 1) before ``err`` first exceeds ``ref`` (or is non-finite);
    all steps if it never does. ``ref`` is e.g. persistence's error curve on the same trajectory.

    Shapes
    ------
    err, ref : (S, C), row 0 the start state -> returns C ints
    """
    worse = ~np.isfinite(err[1:]) | (np.nan_to_num(err[1:], nan=np.inf) > ref[1:])
    return [int(np.argmax(w)) if w.any() else int(len(w)) for w in worse.T]


def evaluate_trajectories(st: Any, trajs: Sequence[Trajectory], horizons: Sequence[int] = (1, 50)) -> dict[str, Any]:
    """1-step, ``horizons``-step and full-rollout rel L2 per trajectory and channel, and their means.

    The ``k``-step error is the mean rel L2 over the first ``k`` steps of the rollout from the first
    snapshot a model can start from (``history``; ``1``: every true state stepped once, mean over
    the states); ``full`` over the whole trajectory. Persistence (the initial state held) is
    reported beside each. A rollout that blows up (a non-finite state at step ``k``, in
    ``blew_up_at_step``) has no error over a horizon that reaches ``k``: null there and in the mean
    over the cases, with a warning, never a mean over the steps before the blow-up only.
    """
    channels = list(st.stats["channels"])
    per: dict[str, Any] = {}
    H = st.history
    for t in trajs:
        X = t.states(st.cfg.fields)
        g = st.graph(t)
        Xt = torch.from_numpy(X)
        with torch.no_grad():
            one = np.stack([st.step_window(g, Xt[k - H : k + 1]).double().numpy() for k in range(H, len(X) - 1)])
        R = st.rollout(t)
        X = X[H:]
        er = rollout_errors(R, X)
        pr = rollout_errors(np.repeat(X[:1], len(X), 0), X)
        blew = first_nonfinite(er)
        if blew is not None:
            log.warning("evaluate: the rollout of '%s' blew up (non-finite state) at step %d; its errors over "
                        "horizons that reach it are null", t.name, blew)
        rec = {"one_step": dict(zip(channels, rel_l2(one, X[1:]).mean(0).tolist(), strict=True)),
               "one_step_persistence": dict(zip(channels, rel_l2(X[:-1], X[1:]).mean(0).tolist(), strict=True))}
        for h in [h for h in horizons if h > 1] + [len(X) - 1]:
            key = "full" if h == len(X) - 1 else f"rollout_{h}"
            e = er[1 : h + 1].mean(0).tolist() if blew is None or blew > h else [None] * len(channels)
            rec[key] = dict(zip(channels, e, strict=True))
            rec[key + "_persistence"] = dict(zip(channels, pr[1 : h + 1].mean(0).tolist(), strict=True))
        rec["steps"] = len(X) - 1
        rec["steps_until_error_above_1"] = stability_steps(er[1:].mean(axis=1, keepdims=True))
        rec["blew_up_at_step"] = blew
        per[t.name] = rec
    if not per:
        raise DatasetError("evaluate: the dataset has no trajectories")
    keys = [k for k in next(iter(per.values())) if isinstance(next(iter(per.values()))[k], dict)]
    mean = {k: {c: _mean_or_none([r[k][c] for r in per.values()]) for c in channels} for k in keys}
    return {"cases": per, "mean": mean, "channels": channels}


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean, or None when any value is None (a case whose rollout did not get that far)."""
    return None if any(v is None for v in values) else float(np.mean(values))
