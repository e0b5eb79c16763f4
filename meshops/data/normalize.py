"""Normalization statistics (from the training split only), JSON-able for checkpoints."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Stats", "Normalizer"]


@dataclass
class Stats:
    """Per-channel mean and standard deviation.

    Shapes
    ------
    mean, std : (C,) float64
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, arrays: Iterable[np.ndarray], channels: int) -> Stats:
        """Mean and std over all rows of all arrays (float64 accumulation).

        Shapes
        ------
        arrays : each (n_i, channels)
        """
        s = np.zeros(channels)
        s2 = np.zeros(channels)
        n = 0
        if channels == 0:
            return cls(np.zeros(0), np.ones(0))
        for a in arrays:
            a = np.asarray(a, dtype=np.float64).reshape(-1, channels)
            s += a.sum(0)
            s2 += (a * a).sum(0)
            n += a.shape[0]
        if n == 0:
            return cls(np.zeros(channels), np.ones(channels))
        mean = s / n
        var = np.maximum(s2 / n - mean * mean, 0.0)
        std = np.sqrt(var)
        floor = 1e-6 * np.maximum(1.0, np.abs(mean))
        std = np.where(std > floor, std, 1.0)
        return cls(mean, std)

    def encode(self, a: Any) -> Any:
        return (a - _like(self.mean, a)) / _like(self.std, a)

    def decode(self, a: Any) -> Any:
        return a * _like(self.std, a) + _like(self.mean, a)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict[str, Sequence[float]]) -> Stats:
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))


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
