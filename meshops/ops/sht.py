# ruff: noqa: E741  (l is the spherical-harmonic degree, as in the literature)
"""Real spherical harmonics and spherical-harmonic transforms on any point set of the unit sphere.

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

Only torch is imported here (``meshops.ops`` layering rule).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

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


# ----------------------------------------------------------------------------------------------
# point sets and quadrature
# ----------------------------------------------------------------------------------------------
@dataclass
class SphereGrid:
    """A latitude-longitude grid with quadrature weights.

    Attributes
    ----------
    points : (nlat * nlon, 3) float64, row-major (latitude rows from north to south).
    weights : (nlat * nlon,) float64, summing to ``4 pi``.
    theta, phi : (nlat * nlon,) float64 colatitude and longitude of every point (the pole rows
        keep their own longitudes, which fix the local frame of vector components there).
    shape : (nlat, nlon).
    kind : "legendre-gauss", "equiangular" (Clenshaw-Curtis, poles included) or "fejer"
        (equiangular without poles).
    max_exact_degree : largest polynomial degree in ``cos(theta)`` the latitude rule integrates
        exactly.
    """

    points: Tensor
    weights: Tensor
    theta: Tensor
    phi: Tensor
    shape: tuple[int, int]
    kind: str
    max_exact_degree: int

    @property
    def lmax_exact(self) -> int:
        """Largest ``L`` for which the transform of a degree-``L`` field is exact (products of degree 2L)."""
        nlat, nlon = self.shape
        return min(self.max_exact_degree // 2, (nlon - 1) // 2)


def _grid(
    cost: Tensor, wlat: Tensor, nlon: int, kind: str, exact: int, theta: Tensor | None = None
) -> SphereGrid:
    nlat = cost.numel()
    th = torch.acos(cost) if theta is None else theta
    ph = torch.arange(nlon, dtype=torch.float64) * (2.0 * math.pi / nlon)
    T, P = torch.meshgrid(th, ph, indexing="ij")
    pts = torch.stack(
        [torch.sin(T) * torch.cos(P), torch.sin(T) * torch.sin(P), torch.cos(T).expand_as(P)], dim=-1
    )
    w = (wlat[:, None] * (2.0 * math.pi / nlon)).expand(nlat, nlon)
    return SphereGrid(
        points=pts.reshape(-1, 3).contiguous(),
        weights=w.reshape(-1).contiguous(),
        theta=T.reshape(-1).contiguous(),
        phi=P.reshape(-1).contiguous(),
        shape=(nlat, nlon),
        kind=kind,
        max_exact_degree=exact,
    )


def _check_grid_size(nlat: int, nlon: int, minlat: int, kind: str) -> None:
    if nlat < minlat or nlon < 1:
        raise ValueError(f"{kind} grid: need nlat >= {minlat} and nlon >= 1, got nlat={nlat}, nlon={nlon}")


def gauss_legendre_grid(nlat: int, nlon: int) -> SphereGrid:
    """Gauss-Legendre latitudes (Golub-Welsch) times equally spaced longitudes.

    Exact for polynomials of degree ``2 nlat - 1`` in ``cos(theta)``, so harmonics up to
    ``L = nlat - 1`` are orthonormal under it when ``nlon >= 2 L + 1``.

    Shapes
    ------
    returns a :class:`SphereGrid` with ``nlat * nlon`` points.
    """
    _check_grid_size(nlat, nlon, 1, "legendre-gauss")
    k = torch.arange(1, nlat, dtype=torch.float64)
    off = k / torch.sqrt(4.0 * k * k - 1.0)
    J = torch.diag(off, 1) + torch.diag(off, -1)
    x, V = torch.linalg.eigh(J)
    w = 2.0 * V[0, :] ** 2
    # north to south: cos(theta) decreasing
    x, w = x.flip(0), w.flip(0)
    return _grid(x, w, nlon, "legendre-gauss", 2 * nlat - 1)


def clenshaw_curtis_grid(nlat: int, nlon: int) -> SphereGrid:
    """Equiangular latitudes including both poles with Clenshaw-Curtis weights.

    ``theta_j = pi j / (nlat - 1)``; exact for polynomials of degree ``nlat - 1`` in ``cos(theta)``.
    The pole rows hold ``nlon`` copies of the same point, each with its own longitude.

    Shapes
    ------
    returns a :class:`SphereGrid` with ``nlat * nlon`` points.
    """
    _check_grid_size(nlat, nlon, 2, "equiangular")
    n = nlat - 1
    theta = torch.arange(nlat, dtype=torch.float64) * (math.pi / n)
    w = torch.ones(nlat, dtype=torch.float64)
    for k in range(1, n // 2 + 1):
        b = 1.0 if 2 * k == n else 2.0
        w = w - b * torch.cos(2 * k * theta) / (4 * k * k - 1)
    c = torch.full((nlat,), 2.0, dtype=torch.float64)
    c[0] = c[-1] = 1.0
    w = c * w / n
    return _grid(torch.cos(theta), w, nlon, "equiangular", n, theta=theta)


def fejer_grid(nlat: int, nlon: int) -> SphereGrid:
    """Equiangular latitudes without poles (``theta_j = pi (j + 1/2) / nlat``), Fejer's first rule.

    Exact for polynomials of degree ``nlat - 1`` in ``cos(theta)``.

    Shapes
    ------
    returns a :class:`SphereGrid` with ``nlat * nlon`` points.
    """
    _check_grid_size(nlat, nlon, 1, "fejer")
    theta = (torch.arange(nlat, dtype=torch.float64) + 0.5) * (math.pi / nlat)
    w = torch.ones(nlat, dtype=torch.float64)
    for k in range(1, nlat // 2 + 1):
        w = w - 2.0 * torch.cos(2 * k * theta) / (4 * k * k - 1)
    w = 2.0 * w / nlat
    return _grid(torch.cos(theta), w, nlon, "fejer", nlat - 1, theta=theta)


def equiangular_grid(nlat: int, nlon: int, poles: bool = True) -> SphereGrid:
    """Equiangular grid: Clenshaw-Curtis with poles (torch-harmonics' "equiangular") or Fejer without."""
    return clenshaw_curtis_grid(nlat, nlon) if poles else fejer_grid(nlat, nlon)


def fibonacci_sphere(n: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """``n`` quasi-uniform points on the unit sphere (golden-angle spiral).

    Shapes
    ------
    returns ``(n, 3)``.
    """
    if n < 1:
        raise ValueError(f"fibonacci_sphere: n must be >= 1, got {n}")
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    r = torch.sqrt(torch.clamp(1.0 - z * z, min=0.0))
    ang = i * (math.pi * (3.0 - math.sqrt(5.0)))
    return torch.stack([r * torch.cos(ang), r * torch.sin(ang), z], dim=-1).to(dtype)


def icosphere(level: int, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """Icosahedron subdivided ``level`` times, vertices projected on the unit sphere.

    Shapes
    ------
    returns points ``(10 * 4**level + 2, 3)`` and faces ``(20 * 4**level, 3)`` int64
    (counter-clockwise seen from outside).
    """
    if level < 0:
        raise ValueError(f"icosphere: level must be >= 0, got {level}")
    t = (1.0 + math.sqrt(5.0)) / 2.0
    v = torch.tensor(
        [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
         [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]],
        dtype=torch.float64,
    )  # fmt: skip
    f = torch.tensor(
        [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
         [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
         [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]],
        dtype=torch.int64,
    )  # fmt: skip
    v = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    for _ in range(level):
        nv = v.shape[0]
        e = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], dim=0)
        key = torch.minimum(e[:, 0], e[:, 1]) * nv + torch.maximum(e[:, 0], e[:, 1])
        uniq, inv = torch.unique(key, return_inverse=True)
        a, b = uniq // nv, uniq % nv
        mid = v[a] + v[b]
        mid = mid / torch.linalg.vector_norm(mid, dim=-1, keepdim=True)
        nf = f.shape[0]
        m01, m12, m20 = (inv[:nf] + nv), (inv[nf : 2 * nf] + nv), (inv[2 * nf :] + nv)
        f = torch.cat(
            [
                torch.stack([f[:, 0], m01, m20], 1),
                torch.stack([f[:, 1], m12, m01], 1),
                torch.stack([f[:, 2], m20, m12], 1),
                torch.stack([m01, m12, m20], 1),
            ],
            dim=0,
        )
        v = torch.cat([v, mid], dim=0)
    return v.to(dtype), f


def _spherical_triangle_area(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Signed solid angle of spherical triangles (Van Oosterom-Strackee), unit vectors ``(..., 3)``."""
    num = (a * torch.linalg.cross(b, c)).sum(-1)
    den = 1.0 + (a * b).sum(-1) + (b * c).sum(-1) + (c * a).sum(-1)
    return 2.0 * torch.atan2(num, den)


def _check_faces(points: Tensor, faces: Tensor, name: str) -> Tensor:
    faces = torch.as_tensor(faces, dtype=torch.int64, device=points.device)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"{name}: faces must have shape (F, 3), got {tuple(faces.shape)}")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= points.shape[0]):
        raise ValueError(
            f"{name}: face indices span [{int(faces.min())}, {int(faces.max())}] "
            f"but there are {points.shape[0]} points"
        )
    return faces


def mesh_area_weights(points: Tensor, faces: Tensor, name: str = "points") -> Tensor:
    """Quadrature weights: one third of the spherical area of every triangle touching a vertex.

    Shapes
    ------
    points : ``(N, 3)`` on the unit sphere; faces : ``(F, 3)`` int; returns ``(N,)`` float64
    summing to ``4 pi`` for a closed triangulation of the sphere.
    """
    p = points.to(torch.float64)
    p = p / torch.linalg.vector_norm(p, dim=-1, keepdim=True)
    faces = _check_faces(p, faces, name)
    a, b, c = p[faces[:, 0]], p[faces[:, 1]], p[faces[:, 2]]
    area = _spherical_triangle_area(a, b, c).abs()
    w = torch.zeros(p.shape[0], dtype=torch.float64, device=p.device)
    for j in range(3):
        w = w.index_add(0, faces[:, j], area / 3.0)
    return w


def voronoi_weights(points: Tensor, faces: Tensor, name: str = "points") -> Tensor:
    """Quadrature weights: spherical Voronoi cell areas from a Delaunay triangulation.

    The cell of a vertex is assembled from the triangles around it, split at the edge midpoints
    and the triangle circumcentres (signed areas, so obtuse triangles are handled). For points
    without a triangulation use the convex hull (it is the spherical Delaunay triangulation).

    Shapes
    ------
    points : ``(N, 3)`` on the unit sphere; faces : ``(F, 3)`` int; returns ``(N,)`` float64.
    """
    p = points.to(torch.float64)
    p = p / torch.linalg.vector_norm(p, dim=-1, keepdim=True)
    faces = _check_faces(p, faces, name)
    a, b, c = p[faces[:, 0]], p[faces[:, 1]], p[faces[:, 2]]
    # orient every triangle counter-clockwise seen from outside
    flip = ((a * torch.linalg.cross(b, c)).sum(-1) < 0)[:, None]
    b, c = torch.where(flip, c, b), torch.where(flip, b, c)
    f1 = torch.where(flip[:, 0], faces[:, 2], faces[:, 1])
    f2 = torch.where(flip[:, 0], faces[:, 1], faces[:, 2])
    idx = [faces[:, 0], f1, f2]
    cc = torch.linalg.cross(b - a, c - a)
    cc = cc / torch.linalg.vector_norm(cc, dim=-1, keepdim=True)

    def unit(v: Tensor) -> Tensor:
        return v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)

    verts = [a, b, c]
    w = torch.zeros(p.shape[0], dtype=torch.float64, device=p.device)
    for j in range(3):
        v0, v1, v2 = verts[j], verts[(j + 1) % 3], verts[(j + 2) % 3]
        m01, m20 = unit(v0 + v1), unit(v2 + v0)
        part = _spherical_triangle_area(v0, m01, cc) + _spherical_triangle_area(v0, cc, m20)
        w = w.index_add(0, idx[j], part)
    return w


def check_sphere_points(
    points: Tensor,
    lmax: int | None = None,
    *,
    name: str = "points",
    tol: float = 1e-6,
    allow_duplicates: bool = False,
    dup_tol: float = 1e-9,
) -> Tensor:
    """Validate a point set for spherical-harmonic work and return it as float64.

    Raises ``ValueError`` naming ``name`` and the offending value when points are not on the
    unit sphere (the measured radius range is reported), when the set is too small for degree
    ``lmax`` (``N < (lmax + 1) ** 2``), or when two points coincide (``allow_duplicates=False``).

    Shapes
    ------
    points : ``(N, 3)``; returns ``(N, 3)`` float64.
    """
    if points.ndim != 2 or points.shape[-1] != 3:
        raise ValueError(f"{name}: expected shape (N, 3), got {tuple(points.shape)}")
    p = points.detach().to(torch.float64)
    if not torch.isfinite(p).all():
        bad = int((~torch.isfinite(p).all(-1)).nonzero()[0])
        raise ValueError(f"{name}: point {bad} is not finite: {p[bad].tolist()}")
    r = torch.linalg.vector_norm(p, dim=-1)
    rmin, rmax = float(r.min()), float(r.max())
    if abs(rmin - 1.0) > tol or abs(rmax - 1.0) > tol:
        worst = int((r - 1.0).abs().argmax())
        raise ValueError(
            f"{name}: points are not on the unit sphere: measured radius in [{rmin:.6g}, {rmax:.6g}] "
            f"(point {worst} has radius {float(r[worst]):.6g}); divide by the radius first"
        )
    n = p.shape[0]
    if lmax is not None:
        need = num_coeffs(lmax)
        if n < need:
            raise ValueError(
                f"{name}: L={lmax} is too large for {n} points: degree {lmax} has {need} harmonics, "
                f"which needs at least {need} points (largest possible L is {math.isqrt(n) - 1})"
            )
    if not allow_duplicates and n > 1:
        q = torch.round(p / dup_tol).to(torch.int64)
        uniq, inv, counts = torch.unique(q, dim=0, return_inverse=True, return_counts=True)
        if uniq.shape[0] < n:
            grp = int(counts.argmax())
            which = (inv == grp).nonzero().flatten()[:2].tolist()
            raise ValueError(
                f"{name}: duplicate points: {n - uniq.shape[0]} of {n} points repeat another "
                f"(e.g. points {which[0]} and {which[1]} at {p[which[0]].tolist()})"
            )
    return p


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
