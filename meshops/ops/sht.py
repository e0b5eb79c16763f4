"""Spherical-harmonic transforms (analysis and synthesis) on any point set of the unit sphere.

Conventions (real orthonormal ``Y_lm`` in the flat index ``k = l * l + l + m``, no Condon-Shortley
phase, colatitude/longitude, tangent vectors as (east, north) components) are those of
:mod:`meshops.ops.sph_harm`, which computes the harmonics; the point sets and quadrature weights
live in :mod:`meshops.ops.sphere_points`. Both are re-exported here, so every
``meshops.ops.sht.X`` import keeps working. Only torch is imported here (``meshops.ops`` layering rule).
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import torch
from torch import Tensor

from meshops.ops.sph_harm import degree_order, num_coeffs, real_sph_harm, real_sph_harm_grad, to_angles
from meshops.ops.sphere_points import (
    SphereGrid,
    check_sphere_points,
    clenshaw_curtis_grid,
    equiangular_grid,
    fejer_grid,
    fibonacci_sphere,
    gauss_legendre_grid,
    icosphere,
    mesh_area_weights,
    voronoi_weights,
)

log = logging.getLogger(__name__)

__all__ = [
    "SphereGrid",
    "SHT",
    "SphericalHarmonicTransform",
    "check_sphere_points",
    "clenshaw_curtis_grid",
    "degree_order",
    "equiangular_grid",
    "fejer_grid",
    "fibonacci_sphere",
    "gauss_legendre_grid",
    "icosphere",
    "mesh_area_weights",
    "num_coeffs",
    "real_sph_harm",
    "real_sph_harm_grad",
    "to_angles",
    "voronoi_weights",
]


# ----------------------------------------------------------------------------------------------
# the transform
# ----------------------------------------------------------------------------------------------
Method = Literal["quadrature", "lsq"]


def _apply(M: Tensor, x: Tensor) -> Tensor:
    """``M @ x`` over dim -2 of ``x`` with any leading dims folded into the columns (one GEMM)."""
    if x.ndim == 2:
        return M @ x
    lead, n, c = x.shape[:-2], x.shape[-2], x.shape[-1]
    cols = x.movedim(-2, 0).reshape(n, -1)
    return (M @ cols).reshape(M.shape[0], *lead, c).movedim(0, -2)


class SphericalHarmonicTransform(torch.nn.Module):
    """Forward (analysis) and inverse (synthesis) real SHT on a fixed point set.

    ``forward(f)`` gives the coefficients ``c_k = sum_i w_i f_i Y_k(x_i)`` (quadrature) or the
    least-squares fit ``argmin_c ||Y c - f||`` (``method="lsq"``), and ``inverse(c)`` evaluates
    ``sum_k c_k Y_k(x_i)``. The bases are computed once in float64 and kept as non-persistent
    buffers (they are rebuilt from the points, never saved in a checkpoint); calls in another
    dtype use a cached cast.

    Parameters
    ----------
    points : Tensor
        ``(N, 3)`` points on the unit sphere (radius checked to ``tol``).
    lmax : int
        Largest degree ``L``; needs ``N >= (L + 1) ** 2``.
    weights : Tensor, optional
        ``(N,)`` quadrature weights (summing to about ``4 pi``). Required for
        ``method="quadrature"`` unless ``faces`` is given.
    faces : Tensor, optional
        ``(F, 3)`` triangulation; gives Voronoi weights (``area="voronoi"``) or one-third
        triangle areas (``area="mesh"``) when ``weights`` is not given.
    method : "quadrature" or "lsq"
    rcond : float
        Cut-off of the least-squares pseudo-inverse relative to the largest singular value.
    allow_duplicates : bool
        Accept coincident points (the pole rows of an equiangular grid).
    theta, phi : Tensor, optional
        Angles defining each point's (east, north) frame for :meth:`vorticity_divergence`
        (default: computed from the points).

    Shapes
    ------
    forward : ``(..., N, C) -> (..., K, C)``; inverse : ``(..., K, C) -> (..., N, C)``,
    ``K = (lmax + 1) ** 2``.
    """

    basis: Tensor
    analysis: Tensor
    weights: Tensor

    def __init__(
        self,
        points: Tensor,
        lmax: int,
        weights: Tensor | None = None,
        *,
        faces: Tensor | None = None,
        area: Literal["voronoi", "mesh"] = "voronoi",
        method: Method = "quadrature",
        rcond: float = 1e-10,
        allow_duplicates: bool = False,
        tol: float = 1e-6,
        theta: Tensor | None = None,
        phi: Tensor | None = None,
        name: str = "points",
    ) -> None:
        super().__init__()
        p = check_sphere_points(points, lmax, name=name, tol=tol, allow_duplicates=allow_duplicates)
        p = p / torch.linalg.vector_norm(p, dim=-1, keepdim=True)
        self.lmax = int(lmax)
        self.num_points = p.shape[0]
        self.method = method
        Y = real_sph_harm(lmax, p, normalize=False)  # (N, K) float64
        if method == "quadrature":
            if weights is None:
                if faces is None:
                    raise ValueError(
                        f"{name}: method='quadrature' needs weights or faces (or use method='lsq')"
                    )
                weights = voronoi_weights(p, faces, name) if area == "voronoi" else mesh_area_weights(
                    p, faces, name
                )
            w = torch.as_tensor(weights, dtype=torch.float64, device=p.device).reshape(-1)
            if w.numel() != p.shape[0]:
                raise ValueError(f"{name}: {w.numel()} quadrature weights for {p.shape[0]} points")
            tot = float(w.sum())
            if abs(tot - 4.0 * math.pi) > 0.05 * 4.0 * math.pi:
                log.warning("%s: quadrature weights sum to %.6g, not 4*pi=%.6g", name, tot, 4 * math.pi)
            A = (Y * w[:, None]).T.contiguous()
        elif method == "lsq":
            w = torch.full((p.shape[0],), 4.0 * math.pi / p.shape[0], dtype=torch.float64)
            U, S, Vh = torch.linalg.svd(Y, full_matrices=False)
            keep = S > rcond * S[0]
            if not bool(keep.all()):
                log.warning(
                    "%s: least-squares basis is rank deficient at L=%d (%d of %d singular values kept)",
                    name, lmax, int(keep.sum()), S.numel(),
                )  # fmt: skip
            A = (Vh[keep].T / S[keep]) @ U[:, keep].T
            self.condition_number = float(S[0] / S[keep][-1])
        else:
            raise ValueError(f"{name}: unknown SHT method {method!r} (use 'quadrature' or 'lsq')")
        if theta is None or phi is None:
            theta, phi = to_angles(p)
        self.register_buffer("basis", Y.contiguous(), persistent=False)
        self.register_buffer("analysis", A.contiguous(), persistent=False)
        self.register_buffer("weights", w, persistent=False)
        self.register_buffer("points", p, persistent=False)
        self.register_buffer("theta", torch.as_tensor(theta, dtype=torch.float64).reshape(-1), persistent=False)
        self.register_buffer("phi", torch.as_tensor(phi, dtype=torch.float64).reshape(-1), persistent=False)
        l_idx, m_idx = degree_order(lmax)
        self.register_buffer("degree", l_idx, persistent=False)
        self.register_buffer("order", m_idx, persistent=False)
        self._cache: dict[tuple[str, torch.dtype, torch.device], tuple[int, Tensor]] = {}

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def from_grid(cls, grid: SphereGrid, lmax: int | None = None) -> SphericalHarmonicTransform:
        """Transform on a latitude-longitude grid with its exact weights.

        ``lmax`` defaults to the largest degree for which the round trip is exact
        (:attr:`SphereGrid.lmax_exact`). Larger values are accepted as long as
        ``(lmax + 1) ** 2 <= nlat * nlon``, but the transform is then no longer exact.
        """
        lmax = grid.lmax_exact if lmax is None else lmax
        if lmax > grid.lmax_exact:
            log.info(
                "%s grid %s: L=%d exceeds the exactly integrated degree %d",
                grid.kind, grid.shape, lmax, grid.lmax_exact,
            )  # fmt: skip
        return cls(
            grid.points,
            lmax,
            grid.weights,
            allow_duplicates=grid.kind == "equiangular",
            theta=grid.theta,
            phi=grid.phi,
            name=f"{grid.kind} grid {grid.shape[0]}x{grid.shape[1]}",
        )

    # -- application ---------------------------------------------------------------------------
    def _mat(self, which: str, like: Tensor) -> Tensor:
        src: Tensor = getattr(self, which)
        if src.dtype == like.dtype and src.device == like.device:
            return src
        key = (which, like.dtype, like.device)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == src.data_ptr():
            return hit[1]
        out = src.to(device=like.device, dtype=like.dtype)
        self._cache[key] = (src.data_ptr(), out)
        return out

    def forward(self, f: Tensor) -> Tensor:
        """Coefficients of ``f`` (values at the points, channels last).

        Shapes
        ------
        f : ``(..., N, C)``; returns ``(..., K, C)``.
        """
        if f.shape[-2] != self.num_points:
            raise ValueError(f"SHT forward: input has {f.shape[-2]} points (dim -2), transform has {self.num_points}")
        return _apply(self._mat("analysis", f), f)

    def inverse(self, coeffs: Tensor) -> Tensor:
        """Values at the points of the expansion with coefficients ``coeffs``.

        Shapes
        ------
        coeffs : ``(..., K, C)``; returns ``(..., N, C)``.
        """
        K = num_coeffs(self.lmax)
        if coeffs.shape[-2] != K:
            raise ValueError(f"SHT inverse: input has {coeffs.shape[-2]} coefficients (dim -2), L={self.lmax} needs {K}")
        return _apply(self._mat("basis", coeffs), coeffs)

    def integrate(self, f: Tensor) -> Tensor:
        """Quadrature of ``f`` over the sphere: ``sum_i w_i f_i``. Shapes: ``(..., N, C) -> (..., C)``."""
        return (self._mat("weights", f)[:, None] * f).sum(-2)

    def vorticity_divergence(self, u: Tensor, v: Tensor, radius: float = 1.0) -> tuple[Tensor, Tensor]:
        """Coefficients of the relative vorticity and the divergence of a tangent vector field.

        Uses integration by parts, ``int Y (curl V) = int (u dY_north - v dY_east) / a`` and
        ``int Y (div V) = -int (u dY_east + v dY_north) / a``, with the quadrature weights of this
        transform (so it needs ``method="quadrature"``). ``u`` is the eastward and ``v`` the
        northward component in each point's frame (set by ``theta``/``phi``).

        Shapes
        ------
        u, v : ``(..., N)``; returns two ``(..., K)`` float64 tensors.
        """
        if self.method != "quadrature":
            raise ValueError("vorticity_divergence needs a quadrature transform (method='quadrature')")
        east, north = real_sph_harm_grad(self.lmax, self.theta, self.phi)
        w = self.weights[:, None]
        u = u.to(torch.float64)
        v = v.to(torch.float64)
        vrt = (u @ (w * north) - v @ (w * east)) / radius
        div = -(u @ (w * east) + v @ (w * north)) / radius
        return vrt, div

    def extra_repr(self) -> str:
        return f"lmax={self.lmax}, num_points={self.num_points}, method={self.method!r}"


SHT = SphericalHarmonicTransform
