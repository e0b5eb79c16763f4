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

__all__ = ["StepEnsemble", "load_ensemble"]


class Graphs(list):
    """One graph per member; ``to`` moves them all."""

    def to(self, device: Any) -> Graphs:
        return Graphs(g.to(device) for g in self)


class StepEnsemble(torch.nn.Module):
    """The mean next state of ``members`` (steppers with the same channels, history and node types)."""

    def __init__(self, members: Sequence[Stepper]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"StepEnsemble: needs two or more step models, got {len(members)}")
        first = members[0]
        for k, m in enumerate(members[1:], start=1):
            for what, a, b in (("channels", first.stats["channels"], m.stats["channels"]),
                               ("history", first.history, m.history), ("node types", first.node_types, m.node_types),
                               ("dimension", first.dim, m.dim), ("dt", first.stats.get("dt"), m.stats.get("dt"))):
                if list(np.atleast_1d(a)) != list(np.atleast_1d(b)):
                    raise ValueError(f"StepEnsemble: member {k} has {what} {b}, member 0 has {a}")
        self.members = torch.nn.ModuleList(members)
        self.cfg, self.stats, self.history = first.cfg, first.stats, first.history

    @property
    def x_mean(self) -> torch.Tensor:  # where the members' tensors are (the rollout's device)
        return self.members[0].x_mean

    def graph(self, traj: Trajectory) -> Graphs:
        return Graphs(m.graph(traj) for m in self.members)

    def step_window(self, graphs: Graphs, window: torch.Tensor) -> torch.Tensor:
        """Mean of the members' next states after ``window`` ((H + 1, N, C), oldest first)."""
        return torch.stack([m.step_window(g, window) for m, g in zip(self.members, graphs, strict=True)]).mean(0)

    def rollout(self, traj: Trajectory, n_steps: int | None = None, start: int | None = None) -> np.ndarray:
        """Autoregressive rollout of the ensemble (see :meth:`Stepper.rollout`)."""
        return rollout_states(self, traj, n_steps, start)


def load_ensemble(paths: Sequence[str], device: str | torch.device = "cpu") -> Stepper | StepEnsemble:
    """One checkpoint: its step model; several: their ensemble."""
    members = [load_stepper(p, device) for p in paths]
    return members[0] if len(members) == 1 else StepEnsemble(members).eval()
