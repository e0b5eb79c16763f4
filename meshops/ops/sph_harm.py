# ruff: noqa: E741  (l is the spherical-harmonic degree, as in the literature)
"""Real orthonormal spherical harmonics and their surface gradients (Legendre recurrence).

Conventions
-----------
* Real, orthonormal spherical harmonics ``Y_lm`` for ``0 <= l <= L`` and ``-l <= m <= l``, stored
  in the flat index ``k = l * l + l + m`` (``K = (L + 1) ** 2`` functions), with
  ``\\int_{S^2} Y_lm Y_l'm' dOmega = delta_ll' delta_mm'``.
* No Condon-Shortley phase in the real functions: ``Y_1,-1 = c y``, ``Y_1,0 = c z``,
  ``Y_1,1 = c x`` with ``c = sqrt(3 / (4 pi))``. In terms of scipy's complex ``Y_l^m`` (which
  carries the phase ``(-1)^m``): ``Y_lm = sqrt(2) (-1)^m Re Y_l^m`` for ``m > 0`` and
  ``Y_l,-m = sqrt(2) (-1)^m Im Y_l^m``.
* Spherical coordinates: colatitude ``theta`` in [0, pi] from +z, longitude ``phi`` from +x
  towards +y. Tangent vectors are given as (east, north) components.
* Every basis is computed in float64 by the stable three-term recurrence of the fully
  normalised associated Legendre functions, written as polynomials in ``(x, y, z)``
  (``P_l^m(cos theta) cos(m phi) = Q_l^m(z) Re (x + i y)^m``), so it has no division by
  ``sin(theta)`` and is differentiable everywhere.

The transforms built on these live in :mod:`meshops.ops.sht`, the point sets and quadrature
weights in :mod:`meshops.ops.sphere_points`. Only torch is imported here (``meshops.ops`` layering rule).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["degree_order", "num_coeffs", "real_sph_harm", "real_sph_harm_grad", "to_angles"]


# ----------------------------------------------------------------------------------------------
# indexing
# ----------------------------------------------------------------------------------------------
def num_coeffs(lmax: int) -> int:
    """Number of real spherical harmonics up to degree ``lmax``: ``(lmax + 1) ** 2``."""
    return (lmax + 1) ** 2


def degree_order(lmax: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Degree ``l`` and order ``m`` of every flat index ``k = l * l + l + m``.

    Shapes
    ------
    returns two int64 tensors of shape ``(K,)`` with ``K = (lmax + 1) ** 2``.
    """
    l_idx = torch.cat([torch.full((2 * l + 1,), l, dtype=torch.int64) for l in range(lmax + 1)])
    m_idx = torch.cat([torch.arange(-l, l + 1, dtype=torch.int64) for l in range(lmax + 1)])
    return l_idx.to(device), m_idx.to(device)


# ----------------------------------------------------------------------------------------------
# Legendre recurrence and the real harmonics
# ----------------------------------------------------------------------------------------------
def _legendre_q(lmax: int, z: Tensor) -> list[list[Tensor]]:
    """``Q[m][l - m]`` with ``P_l^m(theta) = sin(theta)^m Q_l^m(cos theta)`` fully normalised.

    The normalisation makes ``P_l^0`` orthonormal on the sphere; ``sqrt(2) P_l^m cos(m phi)``
    and ``sqrt(2) P_l^m sin(m phi)`` are orthonormal for ``m > 0``. No Condon-Shortley phase.
    Out-of-place only, so autograd flows through ``z``.
    """
    out: list[list[Tensor]] = []
    c = 1.0 / math.sqrt(4.0 * math.pi)
    for m in range(lmax + 1):
        if m > 0:
            c = c * math.sqrt((2 * m + 1) / (2 * m))
        qmm = torch.full_like(z, c)
        col = [qmm]
        if m + 1 <= lmax:
            col.append(math.sqrt(2 * m + 3) * z * qmm)
        for l in range(m + 2, lmax + 1):
            a = math.sqrt((4 * l * l - 1) / (l * l - m * m))
            b = math.sqrt(((l - 1) ** 2 - m * m) / (4 * (l - 1) ** 2 - 1))
            col.append(a * (z * col[-1] - b * col[-2]))
        out.append(col)
    return out


def real_sph_harm(lmax: int, points: Tensor, normalize: bool = True) -> Tensor:
    """Real orthonormal spherical harmonics up to degree ``lmax`` at points of the unit sphere.

    Parameters
    ----------
    lmax : int
        Largest degree ``L`` (>= 0).
    points : Tensor
        Cartesian points; they are scaled to unit length first when ``normalize`` is true
        (use :func:`check_sphere_points` to reject points off the sphere instead).
    normalize : bool
        Divide by the norm of each point (the harmonics of the direction). Zero vectors give NaN.

    Returns
    -------
    Tensor
        ``Y[..., k]`` with ``k = l * l + l + m``, in the dtype of ``points`` (differentiable).

    Shapes
    ------
    points : ``(..., 3)``; returns ``(..., (lmax + 1) ** 2)``.
    """
    if lmax < 0:
        raise ValueError(f"real_sph_harm: lmax must be >= 0, got {lmax}")
    if points.shape[-1] != 3:
        raise ValueError(f"real_sph_harm: points must have shape (..., 3), got {tuple(points.shape)}")
    if normalize:
        points = points / torch.linalg.vector_norm(points, dim=-1, keepdim=True)
    x, y, z = points.unbind(-1)
    q = _legendre_q(lmax, z)
    # Re/Im of (x + i y)^m by the complex-multiplication recurrence
    cos_m = [torch.ones_like(x)]
    sin_m = [torch.zeros_like(x)]
    for _ in range(1, lmax + 1):
        cr, ci = cos_m[-1], sin_m[-1]
        cos_m.append(cr * x - ci * y)
        sin_m.append(cr * y + ci * x)
    sqrt2 = math.sqrt(2.0)
    cols: list[Tensor] = []
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            if m < 0:
                cols.append(sqrt2 * q[-m][l + m] * sin_m[-m])
            elif m == 0:
                cols.append(q[0][l])
            else:
                cols.append(sqrt2 * q[m][l - m] * cos_m[m])
    return torch.stack(cols, dim=-1)


def to_angles(points: Tensor) -> tuple[Tensor, Tensor]:
    """Colatitude ``theta`` in [0, pi] and longitude ``phi`` in (-pi, pi] of Cartesian points.

    Shapes
    ------
    points : ``(..., 3)``; returns two tensors of shape ``(...)``.
    """
    x, y, z = points.unbind(-1)
    r = torch.linalg.vector_norm(points, dim=-1)
    theta = torch.acos(torch.clamp(z / r, -1.0, 1.0))
    phi = torch.atan2(y, x)
    return theta, phi


def real_sph_harm_grad(lmax: int, theta: Tensor, phi: Tensor) -> tuple[Tensor, Tensor]:
    """Surface gradient of every real harmonic as (east, north) components.

    ``east = (1 / sin theta) dY/dphi`` and ``north = -dY/dtheta`` (the local frame at
    longitude ``phi``; at a pole the frame is the limit along the meridian ``phi``). Computed
    without dividing by ``sin(theta)``: ``P_l^m / sin(theta)`` runs the same recurrence with
    the seed ``sin(theta)^(m-1)``, and ``dP_l^m/dtheta`` combines orders ``m - 1`` and ``m + 1``.

    Shapes
    ------
    theta, phi : ``(N,)``; returns two tensors ``(N, (lmax + 1) ** 2)``.
    """
    st, ct = torch.sin(theta), torch.cos(theta)
    q = _legendre_q(lmax + 1, ct)

    def pbar(l: int, m: int) -> Tensor:  # fully normalised P_l^m (no sqrt 2)
        if m < 0 or m > l:
            return torch.zeros_like(theta)
        return q[m][l - m] * st**m

    def pbar_over_sin(l: int, m: int) -> Tensor:  # P_l^m / sin(theta), m >= 1
        return q[m][l - m] * st ** (m - 1)

    sqrt2 = math.sqrt(2.0)
    east: list[Tensor] = []
    north: list[Tensor] = []
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            am = abs(m)
            if am == 0:
                dp = -math.sqrt(l * (l + 1)) * pbar(l, 1)
            else:
                dp = 0.5 * (
                    math.sqrt((l + am) * (l - am + 1)) * pbar(l, am - 1)
                    - math.sqrt((l + am + 1) * (l - am)) * pbar(l, am + 1)
                )
            if m == 0:
                east.append(torch.zeros_like(theta))
                north.append(-dp)
            elif m > 0:
                c, s = torch.cos(m * phi), torch.sin(m * phi)
                east.append(sqrt2 * pbar_over_sin(l, am) * (-m * s))
                north.append(-sqrt2 * dp * c)
            else:
                c, s = torch.cos(am * phi), torch.sin(am * phi)
                east.append(sqrt2 * pbar_over_sin(l, am) * (am * c))
                north.append(-sqrt2 * dp * s)
    return torch.stack(east, dim=-1), torch.stack(north, dim=-1)
