"""An ensemble of step models: the mean of their next states, stepped and rolled out as one model.

Deep ensembles of independently trained networks (here: the same recipe with different seeds) have a
lower one-step error than their members, because the members' errors are partly independent; in a
rollout every member steps from the ensemble's mean state, so they cannot drift apart. The members
must read the same channels, history and node types (checked when the ensemble is built); each
builds its own graph of a trajectory (coarse levels may differ between models).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from meshops.data.trajectory import Trajectory
from meshops.train.stepping import Stepper, load_stepper, rollout_states
from meshops.train.stepping_stats import DT_RTOL

__all__ = ["StepEnsemble", "load_ensemble"]


class Graphs(list):
    """One graph per member; ``to`` moves them all."""

    def to(self, device: Any) -> Graphs:
        return Graphs(g.to(device) for g in self)


class StepEnsemble(torch.nn.Module):
    """The mean next state of ``members`` (steppers with the same channels, history and node types).

    ``weights`` (members x channels, non-negative, each channel's column summing to 1) make it a
    weighted mean per channel, e.g. a pressure mostly from a model that integrates it and a little from
    one that predicts it from the velocity (a complementary filter: the first is accurate over one step,
    the second cannot drift); default: equal weights.
    """

    def __init__(self, members: Sequence[Stepper], weights: Sequence[Sequence[float]] | None = None) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"StepEnsemble: needs two or more step models, got {len(members)}")
        first = members[0]
        for k, m in enumerate(members[1:], start=1):
            for what, a, b in (("channels", first.stats["channels"], m.stats["channels"]),
                               ("history", first.history, m.history), ("node types", first.node_types, m.node_types),
                               ("dimension", first.dim, m.dim)):
                if list(np.atleast_1d(a)) != list(np.atleast_1d(b)):
                    raise ValueError(f"StepEnsemble: member {k} has {what} {b}, member 0 has {a}")
            dt0, dt = first.stats.get("dt"), m.stats.get("dt")
            if (dt0 is None) != (dt is None) or (dt0 is not None and abs(dt / dt0 - 1) > DT_RTOL):
                raise ValueError(f"StepEnsemble: member {k} steps dt {dt}, member 0 {dt0}")
        self.members = torch.nn.ModuleList(members)
        self.cfg, self.stats, self.history = first.cfg, first.stats, first.history
        C = len(first.stats["channels"])
        w = np.full((len(members), C), 1.0 / len(members)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(members), C) or not np.isfinite(w).all() or (w < 0).any() or \
                not np.allclose(w.sum(0), 1.0, atol=1e-6):
            raise ValueError(f"StepEnsemble: weights must be {len(members)} x {C} non-negative numbers whose columns "
                             f"(channels {list(first.stats['channels'])}) sum to 1, got {w.tolist()}")
        self.register_buffer("weights", torch.tensor(w, dtype=torch.float32)[:, None, :])  # (M, 1, C)

    @property
    def x_mean(self) -> torch.Tensor:  # where the members' tensors are (the rollout's device)
        return self.members[0].x_mean

    def graph(self, traj: Trajectory) -> Graphs:
        return Graphs(m.graph(traj) for m in self.members)

    def step_window(self, graphs: Graphs, window: torch.Tensor) -> torch.Tensor:
        """(Weighted) mean of the members' next states after ``window`` ((H + 1, N, C), oldest first)."""
        nxt = torch.stack([m.step_window(g, window) for m, g in zip(self.members, graphs, strict=True)])
        return (nxt * self.weights.to(nxt)).sum(0)

    def rollout(self, traj: Trajectory, n_steps: int | None = None, start: int | None = None) -> np.ndarray:
        """Autoregressive rollout of the ensemble (see :meth:`Stepper.rollout`)."""
        return rollout_states(self, traj, n_steps, start)


def load_ensemble(paths: Sequence[str], device: str | torch.device = "cpu") -> Stepper | StepEnsemble:
    """One checkpoint: its step model; several: their ensemble."""
    members = [load_stepper(p, device) for p in paths]
    return members[0] if len(members) == 1 else StepEnsemble(members).eval()
