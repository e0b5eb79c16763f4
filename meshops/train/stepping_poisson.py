"""The pressure split of a step model (``StepConfig.poisson``): the model steps ``q = p - alpha S(u, v)``.

In incompressible flow the pressure has no dynamics of its own: it is what the velocity implies
through a Poisson equation (:class:`meshops.geometry.pressure.PressurePoisson`, ``S``). A step model
that integrates a learned pressure increment accumulates its bias in a rollout; one that predicts the
pressure from the velocity alone has to learn a global elliptic solve. Here the model reads and
steps ``q = p - alpha S(u, v)`` in place of ``p``, and the pressure of a predicted state is
``q + alpha S(u, v)`` of its own velocity. ``q`` holds what the discrete solve misses (the viscous
boundary term, the mesh's discretization error); it changes about ten times less per snapshot than
``p`` on the cylinder-flow cases, so a rollout's pressure follows its velocity instead of drifting.

``alpha`` is fitted on the training increments (least squares of the ``p`` increments on the ``S``
increments over the free nodes): 1 for a kinematic pressure ``p / rho``, ``rho`` for one in Pa, so
the units of the data do not matter. The Dirichlet nodes of the solve are those whose node type holds
``p`` fixed in every training trajectory (an outlet at zero pressure).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from meshops.data import DatasetError
from meshops.data.trajectory import Trajectory, node_type_onehot, planar_axes

log = logging.getLogger(__name__)

__all__ = ["PressureSplit"]


def _planar_points(traj: Trajectory) -> np.ndarray:
    P = np.asarray(traj.mesh.points, dtype=np.float64)
    axes = planar_axes(P) if P.shape[1] == 3 else (0, 1)
    if axes is None:
        raise DatasetError(f"trajectory '{traj.name}': poisson needs a planar mesh; its points span 3 dimensions")
    return P[:, list(axes)]


class PressureSplit:
    """Maps states between the physical channels (``..., p``) and the model's (``..., q``).

    ``channels`` are the state's channel names; ``pressure`` names the pressure channel; the two other
    channels are the in-plane velocity, in the order of the plane's axes.
    """

    def __init__(self, channels: Sequence[str], pressure: str, alpha: float = 1.0) -> None:
        chans = list(channels)
        if pressure not in chans:
            raise ValueError(f"StepConfig: poisson channel '{pressure}' is not one of the channels {chans}")
        if len(chans) != 3:
            raise ValueError(f"StepConfig: poisson needs exactly two velocity channels and the pressure, got {chans}")
        self.name, self.p = pressure, chans.index(pressure)
        self.vel = [i for i in range(3) if i != self.p]
        self.alpha = float(alpha)
        self._solvers: dict[tuple[str, int], Any] = {}

    def solver(self, traj: Trajectory, node_types: Sequence[str], fixed: np.ndarray) -> Any:
        """The (cached) Poisson solve of ``traj``'s mesh; ``fixed`` is the (node type, channel) Dirichlet mask."""
        key = (traj.name, traj.mesh.n_points)
        if key not in self._solvers:
            from meshops.geometry.pressure import PressurePoisson, triangulate

            if traj.dim != 2:
                raise DatasetError(f"trajectory '{traj.name}': poisson is for 2D cases, this one is {traj.dim}D")
            blocks = [triangulate(b.data) for b in traj.mesh.cells if b.type in ("triangle", "quad")]
            if not blocks:
                raise DatasetError(f"trajectory '{traj.name}': poisson needs triangle or quad cells, the mesh has "
                                   f"{sorted({b.type for b in traj.mesh.cells}) or 'none'}")
            oh, _ = node_type_onehot(traj.mesh, list(node_types))
            held = np.asarray(fixed, dtype=bool)[:, self.p][oh.argmax(1)]
            if not held.any():
                log.warning("trajectory '%s': no node holds '%s' fixed; the Poisson pressure is pinned at node 0",
                            traj.name, self.name)
            self._solvers[key] = PressurePoisson(_planar_points(traj), np.concatenate(blocks), np.nonzero(held)[0])
        return self._solvers[key]

    def cached(self, name: str, n_points: int) -> Any:
        """The solve built by :meth:`solver` for trajectory ``name`` (raises when it was not built)."""
        try:
            return self._solvers[(name, int(n_points))]
        except KeyError:
            raise DatasetError(f"trajectory '{name}': no Poisson solve for its mesh; build its graph with "
                               "Stepper.graph first") from None

    def implied(self, solver: Any, X: np.ndarray) -> np.ndarray:
        """``S(u, v)`` of every state of ``X`` ((T, n, C) -> (T, n), float64)."""
        S = solver.solve(X[..., self.vel[0]].T, X[..., self.vel[1]].T)
        return np.asarray(S).T

    def to_model(self, solver: Any, X: np.ndarray) -> np.ndarray:
        """States with ``p`` replaced by ``q = p - alpha S(u, v)`` (same shape and dtype)."""
        out = np.array(X, copy=True)
        out[..., self.p] = X[..., self.p] - self.alpha * self.implied(solver, X.reshape(-1, *X.shape[-2:])).reshape(
            X.shape[:-1])
        return out

    def to_physical(self, solver: Any, X: np.ndarray) -> np.ndarray:
        """States with ``q`` replaced by ``p = q + alpha S(u, v)``."""
        out = np.array(X, copy=True)
        out[..., self.p] = X[..., self.p] + self.alpha * self.implied(solver, X.reshape(-1, *X.shape[-2:])).reshape(
            X.shape[:-1])
        return out

    def fit_alpha(self, trajs: Sequence[Trajectory], fields: Sequence[str], node_types: Sequence[str],
                  fixed: np.ndarray) -> float:
        """Least-squares ``alpha`` of the ``p`` increments on the ``S`` increments (free nodes, all steps)."""
        num = den = 0.0
        for t in trajs:
            sol = self.solver(t, node_types, fixed)
            X = t.states(fields).astype(np.float64)
            dS = np.diff(self.implied(sol, X), axis=0)[:, sol.free]
            dP = np.diff(X[..., self.p], axis=0)[:, sol.free]
            num, den = num + float((dS * dP).sum()), den + float((dS * dS).sum())
        if not den > 0:
            raise DatasetError("stepping: poisson: the implied pressure never changes in the training trajectories")
        self.alpha = num / den
        log.info("stepping: pressure split p = q + %.4g S(u, v) (least squares on the training increments)", self.alpha)
        return self.alpha

    def split(self, traj: Trajectory, fields: Sequence[str], node_types: Sequence[str], fixed: np.ndarray) -> Trajectory:
        """``traj`` with its pressure field replaced by ``q`` (the model's training data)."""
        if np.asarray(traj.fields.get(self.name, np.zeros((0, 0, 0)))).ndim != 2:
            raise DatasetError(f"trajectory '{traj.name}': poisson needs '{self.name}' as a scalar point field")
        X = self.to_model(self.solver(traj, node_types, fixed), traj.states(list(fields)))
        return Trajectory(traj.name, traj.mesh, traj.times, {**traj.fields, self.name: X[..., self.p].astype(np.float32)},
                          traj.globals, traj.dim)
