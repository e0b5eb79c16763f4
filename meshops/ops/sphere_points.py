"""Point sets on the unit sphere and their quadrature weights.

Latitude-longitude grids with exact latitude rules (Gauss-Legendre, Clenshaw-Curtis, Fejer),
quasi-uniform point sets (Fibonacci spiral, icosphere), weights from a triangulation (spherical
Voronoi cells or one-third triangle areas), and the validation of a point set for
spherical-harmonic work. Conventions as in :mod:`meshops.ops.sph_harm`.

Only torch is imported here (``meshops.ops`` layering rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from meshops.ops.sph_harm import num_coeffs

__all__ = [
    "SphereGrid",
    "check_sphere_points",
    "clenshaw_curtis_grid",
    "equiangular_grid",
    "fejer_grid",
    "fibonacci_sphere",
    "gauss_legendre_grid",
    "icosphere",
    "mesh_area_weights",
    "voronoi_weights",
]


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
