"""The physics prior of the tree-mode coronary model: pressure gradient and |WSS| from flow scales.

The tree mode of :class:`meshops.models.coronary.CenterlineRBF` integrates a positive pressure
gradient along the tree (:func:`meshops.models.coronary_tree.tree_pressure`). Here that gradient is
the sum of three positive terms, each a physical scale of the branch flow ``Q_b`` (its Murray share)
and the local radius ``r`` times a positive factor the network predicts per centerline point:

* **Poiseuille** ``8 mu Q_b / (pi r^4)``, factor ``exp(a)`` (``|a| <= 4``, 1 at initialization);
* **stenosis** (Borda-Carnot): with the healthy radius ``r_h`` (the largest radius downstream on
  the branch: a healthy vessel only narrows downstream, by taper and Murray steps, a stenosis
  narrows it locally), the area ratio ``x = (r / r_h)^2`` and the healthy velocity
  ``u_h = Q_b / (pi r_h^2)``, the unrecovered loss of an expansion from the throat is
  ``L = rho/2 u_h^2 (1/x - 1)^2``; its rise toward the throat (``max(dL/ds, 0)``) is the gradient,
  so a stenosis costs ``L`` at its throat in all; factor :data:`STENOSIS_INIT` ``exp(b)``,
  ``|b| <= 2`` (Borda-Carnot times 0.14-7.4; measured stenosis loss coefficients are ~1-1.5). A monotone pressure cannot follow the partial recovery behind the throat;
* **inertial** ``rho Q_b^2 / (pi^2 r^5)`` (developing flow, curvature, junction losses), factor
  ``softplus(b')``, starting small (:data:`INERTIAL_INIT`).

At initialization the pressure is thus the Poiseuille drop along the tree with the Murray branch
flows plus the Borda-Carnot losses of the stenoses, and ``|WSS| = 4 mu Q_b / (pi r^3) exp(c)`` starts at
:data:`WSS_GAIN_INIT` times Poiseuille (the developing flow of short coronary branches has a
higher wall shear than the developed profile); training corrects both by positive factors, which
keeps the pressure monotone and ``|WSS|`` positive whatever the weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["HEAD_CHANNELS", "INERTIAL_INIT", "STENOSIS_INIT", "WSS_GAIN_INIT", "healthy_radius", "pressure_gradient",
           "stenosis_gradient", "wss_magnitude"]

#: Per-point outputs of the tree head: log Poiseuille factor, stenosis and inertial factors
#: (before softplus), 4 ring Fourier amplitudes.
HEAD_CHANNELS = 7
#: Initial factors of the stenosis and inertial terms, and of |WSS| over Poiseuille.
STENOSIS_INIT, INERTIAL_INIT, WSS_GAIN_INIT = 1.0, 1e-3, 1.0


def _softplus_inverse(y: float) -> float:
    return math.log(math.expm1(y))


def healthy_radius(r: Tensor, start: Tensor) -> Tensor:
    """The largest radius from each point to the end of its branch (runs of ``start``-delimited points).

    Shapes
    ------
    r (M,) > 0, start (M,) bool (first point of every branch run) -> (M,)
    """
    gid = torch.cumsum(start.long(), 0) - 1
    big = 2.0 * float(r.max()) + 1.0  # later runs (in reversed order) sit above every earlier one
    shifted = (r + (gid.max() - gid).to(r.dtype) * big).flip(0)
    return torch.cummax(shifted, 0).values.flip(0) - (gid.max() - gid).to(r.dtype) * big


def stenosis_gradient(loss: Tensor, arclength: Tensor, start: Tensor) -> Tensor:
    """``max(dL/ds, 0)`` of the Borda-Carnot loss ``L`` along each branch run (per length unit; 0 at run starts).

    Shapes
    ------
    loss, arclength (M,), start (M,) bool -> (M,)
    """
    rise = torch.zeros_like(loss)
    rise[1:] = (loss[1:] - loss[:-1]).clamp_min(0) / (arclength[1:] - arclength[:-1]).clamp_min(1e-6)
    return torch.where(start, torch.zeros_like(rise), rise)


def pressure_gradient(h: Tensor, sc: dict[str, Tensor]) -> Tensor:
    """The positive pressure gradient (Pa per length unit) from head outputs ``h[:, :3]`` and scales ``sc``.

    Shapes
    ------
    h (M, HEAD_CHANNELS); sc: ``g_poiseuille``, ``g_stenosis``, ``g_inertial`` (M,) -> (M,)
    """
    a = torch.exp(4.0 * torch.tanh(h[:, 0] / 4.0))
    b = STENOSIS_INIT * torch.exp(2.0 * torch.tanh(h[:, 1] / 2.0))
    c = F.softplus(h[:, 2] + _softplus_inverse(INERTIAL_INIT))
    return sc["g_poiseuille"] * a + sc["g_stenosis"] * b + sc["g_inertial"] * c


def wss_magnitude(c: Tensor, tau: Tensor) -> Tensor:
    """``|WSS| = tau exp(c')`` with ``c' = 4 tanh((c + log WSS_GAIN_INIT) / 4)``: positive, within e^+-4 of ``tau``.

    Shapes
    ------
    c, tau (N,) -> (N,)
    """
    return tau * torch.exp(4.0 * torch.tanh((c + math.log(WSS_GAIN_INIT)) / 4.0))
