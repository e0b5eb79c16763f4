"""Normalization statistics (from the training split only), JSON-able for checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["Stats", "Normalizer", "REL_FLOOR", "RunningStats", "channel_name"]


#: A channel whose std is below this fraction of its field's scale counts as constant.
REL_FLOOR = 1e-6


@dataclass
class Stats:
    """Per-channel mean and standard deviation, and the range seen in the data.

    Shapes
    ------
    mean, std : (C,) float64
    lo, hi : (C,) float64 or None (checkpoints written before ranges were stored)
    """

    mean: np.ndarray
    std: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    constant: list[int] = field(default_factory=list)

    @classmethod
    def fit(cls, arrays: Iterable[np.ndarray], channels: int, *, groups: Sequence[int] | None = None,
            names: Sequence[str] | None = None, what: str = "data", constant_std: str = "scale") -> Stats:
        """Mean, std and range over all rows of all arrays, in one streaming pass (:class:`RunningStats`).

        The std floor is relative to the scale of the data: a channel whose std is below
        ``REL_FLOOR`` times its field's scale (the largest RMS over the field's channels, ``groups``
        giving each field's channel count) is constant and logged. Its std is never an absolute 1.0
        (which would blow an identically zero ``U_z`` up to the size of the flow when decoding):
        ``constant_std="floor"`` (targets) gives it the floor, so decoded predictions stay at the
        constant; ``"scale"`` (inputs, globals, positions) gives it the field's scale, so a value
        seen at prediction time encodes relative to the field's size. A field that is zero everywhere
        gets std 1.

        Shapes
        ------
        arrays : each (n_i, channels)
        """
        acc = RunningStats(channels, groups=groups, names=names, what=what)
        for a in arrays:
            acc.update(a)
        return acc.stats(constant_std)

    @classmethod
    def _finish(cls, acc: RunningStats, constant_std: str) -> Stats:
        channels, groups, names, what = acc.channels, acc.groups, acc.names, acc.what
        if constant_std not in ("floor", "scale"):
            raise ValueError(f"constant_std must be 'floor' or 'scale', got {constant_std!r}")
        if channels == 0:
            return cls(np.zeros(0), np.ones(0), np.zeros(0), np.zeros(0))
        n = acc.count
        if n == 0:
            return cls(np.zeros(channels), np.ones(channels))
        mean = acc.mean.copy()
        raw_std = np.sqrt(np.maximum(acc.m2 / n, 0.0))
        rms = np.sqrt(mean * mean + raw_std * raw_std)
        scale = np.zeros(channels)
        for c0, c1 in _group_bounds(channels, groups):
            scale[c0:c1] = rms[c0:c1].max()
        floor = REL_FLOOR * scale
        const = [int(c) for c in np.nonzero(raw_std <= floor)[0]]
        fill = floor if constant_std == "floor" else scale
        std = np.where(raw_std > floor, raw_std, np.where(scale > 0, fill, 1.0))
        for c in const:
            log.warning("normalization: %s %s is constant in the training data (value %.6g, std %.3g, its "
                        "field's scale %.3g); normalized with std %.3g", what, channel_name(c, groups, names),
                        mean[c], raw_std[c], scale[c], std[c])
        return cls(mean, std, acc.lo.copy(), acc.hi.copy(), const)

    def encode(self, a: Any) -> Any:
        return (a - _like(self.mean, a)) / _like(self.std, a)

    def decode(self, a: Any) -> Any:
        return a * _like(self.std, a) + _like(self.mean, a)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}
        if self.lo is not None and self.hi is not None:
            d.update(min=[float(v) for v in self.lo], max=[float(v) for v in self.hi])
        if self.constant:
            d["constant"] = [int(c) for c in self.constant]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stats:
        rng = {k: np.asarray(d[k], dtype=np.float64) if k in d else None for k in ("min", "max")}
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64),
                   rng["min"], rng["max"], [int(c) for c in d.get("constant", [])])


class RunningStats:
    """Per-channel count, mean, sum of squared deviations (M2) and range, merged batch by batch.

    Each batch's own mean and M2 come from two passes over the batch; batches merge with the
    parallel formula of Chan, Golub and LeVeque (``delta = mean_b - mean_a``,
    ``M2 = M2_a + M2_b + delta^2 n_a n_b / n``), which stays accurate where the sum of squares
    cancels (a large offset, a small spread). Nothing of a batch is kept after :meth:`update`.

    Shapes
    ------
    mean, m2, lo, hi : (channels,) float64
    """

    def __init__(self, channels: int, *, groups: Sequence[int] | None = None, names: Sequence[str] | None = None,
                 what: str = "data") -> None:
        self.channels, self.groups, self.names, self.what = channels, groups, names, what
        self.count = 0
        self.mean, self.m2 = np.zeros(channels), np.zeros(channels)
        self.lo, self.hi = np.full(channels, np.inf), np.full(channels, -np.inf)

    def update(self, a: np.ndarray) -> RunningStats:
        """Add the rows of ``a`` (n, channels); non-finite values are an error naming the channel."""
        if self.channels == 0:
            return self
        a = np.asarray(a, dtype=np.float64).reshape(-1, self.channels)
        nb = a.shape[0]
        if not nb:
            return self
        bad = ~np.isfinite(a)
        if bad.any():
            c = int(np.nonzero(bad.any(0))[0][0])
            raise ValueError(f"normalization: {self.what} {channel_name(c, self.groups, self.names)} has "
                             f"{int(bad[:, c].sum())} non-finite value(s) in the training data")
        mb = a.mean(0)
        m2b = ((a - mb) ** 2).sum(0)
        self.lo, self.hi = np.minimum(self.lo, a.min(0)), np.maximum(self.hi, a.max(0))
        return self.merge_moments(nb, mb, m2b)

    def merge_moments(self, nb: int, mb: np.ndarray, m2b: np.ndarray) -> RunningStats:
        """Merge another batch's count, mean and M2 (Chan et al.)."""
        na, n = self.count, self.count + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2b + delta * delta * (na * nb / n)
        self.count = n
        return self

    def merge(self, other: RunningStats) -> RunningStats:
        """Merge another accumulator (e.g. of another process or shard)."""
        if other.count:
            self.lo, self.hi = np.minimum(self.lo, other.lo), np.maximum(self.hi, other.hi)
            self.merge_moments(other.count, other.mean, other.m2)
        return self

    def stats(self, constant_std: str = "scale") -> Stats:
        """The :class:`Stats` (std floors as in :meth:`Stats.fit`)."""
        return Stats._finish(self, constant_std)


def _group_bounds(channels: int, groups: Sequence[int] | None) -> list[tuple[int, int]]:
    if not groups or sum(groups) != channels:
        return [(c, c + 1) for c in range(channels)]
    edges = np.concatenate([[0], np.cumsum(groups)]).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def channel_name(c: int, groups: Sequence[int] | None, names: Sequence[str] | None) -> str:
    """``"'U'[2]"`` for channel 2 of field U, ``"'p'"`` for a scalar, ``"channel 5"`` without names."""
    if not names or not groups or len(names) != len(groups):
        return f"channel {c}"
    c0 = 0
    for name, g in zip(names, groups, strict=True):
        if c < c0 + g:
            return f"'{name}'" if g == 1 else f"'{name}'[{c - c0}]"
        c0 += g
    return f"channel {c}"


def _like(v: np.ndarray, a: Any) -> Any:
    if hasattr(a, "new_tensor"):
        return a.new_tensor(v)
    return v.astype(np.asarray(a).dtype, copy=False)


@dataclass
class Normalizer:
    """Statistics of inputs, targets, globals and positions, plus the mean edge length.

    Attributes
    ----------
    inputs, targets, globals, pos : Stats
    edge_scale : float
        Mean level-0 edge length of the training graphs (edge features are divided by it).
    """

    inputs: Stats
    targets: Stats
    globals: Stats
    pos: Stats
    edge_scale: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs.to_dict(),
            "targets": self.targets.to_dict(),
            "globals": self.globals.to_dict(),
            "pos": self.pos.to_dict(),
            "edge_scale": float(self.edge_scale),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalizer:
        return cls(
            Stats.from_dict(d["inputs"]),
            Stats.from_dict(d["targets"]),
            Stats.from_dict(d["globals"]),
            Stats.from_dict(d["pos"]),
            float(d.get("edge_scale", 1.0)),
            dict(d.get("extra", {})),
        )
