"""Training curves as a PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshops.atomic import atomic_path

__all__ = ["plot_history"]


def plot_history(history: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Plot train/val loss and the validation relative L2 per epoch; write ``path`` atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    ax = axes[0]
    ax.plot(ep, [float("nan") if h.get("train_loss") is None else h["train_loss"] for h in history], "o-", label="train")
    vals = [(h["epoch"], h["val_loss"]) for h in history if "val_loss" in h]
    if vals:
        ax.plot(*zip(*vals, strict=True), "s-", label="validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("normalized MSE")
    ax.legend()
    ax.grid(alpha=0.3)
    ax = axes[1]
    rel = [(h["epoch"], h["val_rel_l2"]) for h in history if "val_rel_l2" in h]
    if rel:
        ax.plot(*zip(*rel, strict=True), "s-", color="C1")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation relative L2 (mean over fields)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_path(path, make_parents=True) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return path
