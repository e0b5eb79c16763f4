"""Synthetic coronary vessel geometry: centerlines, radius profiles, frames, input validation.

Everything here is plain numpy. Lengths are in millimetres, flow rates in mL/s (= 1e-6 m^3/s);
the OpenFOAM case is written in SI units by :mod:`foamcase`.

A vessel is a :class:`Vessel`: centerline stations ``points`` (m, 3), a radius per station
``radius`` (m,), rotation-minimizing frames (tangent, normal, binormal) and the inlet flow ``Q``.
:func:`sample_vessel` draws one from the parameter ranges documented in the dataset card.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from meshops.geometry.centerline import arc_length, curvature_torsion, rotation_minimizing_frames

__all__ = ["Vessel", "VesselError", "VesselParams", "arc_length", "curvature_torsion", "frames",
           "sample_params", "sample_vessel", "validate_centerline", "vessel_from_centerline"]

log = logging.getLogger(__name__)

#: Blood, Newtonian (SI units).
MU = 0.0035  # dynamic viscosity, Pa s
RHO = 1060.0  # density, kg/m^3
NU = MU / RHO  # kinematic viscosity, m^2/s


class VesselError(ValueError):
    """Bad vessel input (the message names the field and the offending value)."""


def validate_centerline(points: Any, radius: Any, Q: float, where: str = "vessel") -> tuple[np.ndarray, np.ndarray]:
    """Check a centerline, its radii and the inlet flow; return them as float64 arrays.

    Parameters
    ----------
    points : (m, 3) array_like
        Centerline points, m >= 2, finite, consecutive points distinct.
    radius : (m,) array_like
        Radius at each point, finite and > 0.
    Q : float
        Inlet flow rate, > 0.
    where : str
        Name used in error messages (a file name or a case name).

    Shapes
    ------
    points : (m, 3) float64, radius : (m,) float64 on return.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise VesselError(f"{where}: centerline 'points' must have shape (m, 3), got {p.shape}")
    if p.shape[0] < 2:
        raise VesselError(f"{where}: centerline 'points' has {p.shape[0]} point(s); at least 2 are needed")
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise VesselError(f"{where}: centerline 'points' has non-finite coordinates at point {i}: {p[i].tolist()}")
    r = np.asarray(radius, dtype=np.float64).reshape(-1)
    if r.shape[0] != p.shape[0]:
        raise VesselError(f"{where}: 'radius' has {r.shape[0]} values but the centerline has {p.shape[0]} points")
    badr = ~(np.isfinite(r) & (r > 0))
    if badr.any():
        i = int(np.flatnonzero(badr)[0])
        raise VesselError(f"{where}: 'radius' must be finite and > 0; radius[{i}] = {r[i]}")
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    if (seg <= 0).any():
        i = int(np.flatnonzero(seg <= 0)[0])
        raise VesselError(f"{where}: centerline 'points' {i} and {i + 1} coincide: {p[i].tolist()}")
    if not (isinstance(Q, (int, float, np.floating, np.integer)) and math.isfinite(float(Q)) and float(Q) > 0):
        raise VesselError(f"{where}: inlet flow 'Q' must be a finite number > 0, got {Q!r}")
    return p, r


def frames(points: np.ndarray) -> np.ndarray:
    """Rotation-minimizing frames of a polyline (:func:`meshops.geometry.centerline.rotation_minimizing_frames`).

    Shapes
    ------
    points : (m, 3) -> returns (m, 3, 3) with ``F[i] = [t_i, n_i, b_i]`` (rows), ``b = t x n``.
    """
    T, N, B = rotation_minimizing_frames(points)
    return np.stack([T, N, B], axis=1)


# ----------------------------------------------------------------------------- random vessels


@dataclass
class VesselParams:
    """The random draw behind one synthetic vessel (all lengths in mm, flow in mL/s)."""

    length: float
    r_in: float
    r_out: float
    kappa_modes: list[list[float]]  # rows [amplitude, wavenumber (1/mm), phase]
    kappa_mean: float
    tau_modes: list[list[float]]
    stenoses: list[dict[str, float]] = field(default_factory=list)  # center (mm), length (mm), area_reduction
    Q: float = 1.0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Parameter ranges of the shipped dataset (see the card).
RANGES: dict[str, tuple[float, float]] = {
    "length": (30.0, 50.0),  # mm
    "r_in": (1.5, 2.0),  # mm
    "taper": (0.1, 0.35),  # r_out = r_in (1 - taper), clipped to >= 1 mm
    "kappa": (0.0, 0.12),  # 1/mm (radius of curvature >= 8.3 mm)
    "tau": (-0.15, 0.15),  # 1/mm
    "stenosis_area_reduction": (0.2, 0.8),
    "stenosis_length": (3.0, 10.0),  # mm
    "stenosis_center": (0.2, 0.65),  # fraction of the length
    "Q": (0.5, 2.5),  # mL/s
}


def _smooth_random(rng: np.random.Generator, n_modes: int, amp: float, length: float) -> list[list[float]]:
    out = []
    for k in range(n_modes):
        wav = 2 * np.pi * rng.uniform(0.5, 2.0 + k) / length
        out.append([float(amp * rng.uniform(-1, 1) / (k + 1)), float(wav), float(rng.uniform(0, 2 * np.pi))])
    return out


def _modes(s: np.ndarray, modes: list[list[float]]) -> np.ndarray:
    out = np.zeros_like(s)
    for a, w, ph in modes:
        out += a * np.sin(w * s + ph)
    return out


def sample_params(seed: int, n_stenoses: int | None = None) -> VesselParams:
    """Draw the parameters of one vessel from :data:`RANGES` (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    R = RANGES
    length = rng.uniform(*R["length"])
    r_in = rng.uniform(*R["r_in"])
    r_out = max(1.0, r_in * (1 - rng.uniform(*R["taper"])))
    kmax = R["kappa"][1]
    kappa_mean = rng.uniform(0.0, 0.6 * kmax)
    kappa_modes = _smooth_random(rng, 3, 0.5 * kmax, length)
    tau_modes = _smooth_random(rng, 2, R["tau"][1], length)
    ns = int(rng.integers(0, 3)) if n_stenoses is None else int(n_stenoses)
    sten: list[dict[str, float]] = []
    tries = 0
    while len(sten) < ns and tries < 100:
        tries += 1
        c = rng.uniform(*R["stenosis_center"]) * length
        ln = rng.uniform(*R["stenosis_length"])
        if all(abs(c - s["center"]) > 0.5 * (ln + s["length"]) + 1.0 for s in sten):
            sten.append({"center": float(c), "length": float(ln),
                         "area_reduction": float(rng.uniform(*R["stenosis_area_reduction"]))})
    Q = rng.uniform(*R["Q"])
    return VesselParams(float(length), float(r_in), float(r_out), kappa_modes, float(kappa_mean), tau_modes,
                        sten, float(Q), int(seed))


def radius_profile(s: np.ndarray, p: VesselParams) -> np.ndarray:
    """Radius along arc length: linear taper times cosine-shaped stenoses.

    A stenosis of area reduction ``a`` narrows the radius by the factor ``sqrt(1 - a)`` at its
    centre, with a smooth ``(1 + cos)/2`` shape over its length.

    Shapes
    ------
    s : (m,) mm -> returns (m,) mm.
    """
    r = p.r_in + (p.r_out - p.r_in) * s / p.length
    for st in p.stenoses:
        d = 1.0 - math.sqrt(1.0 - st["area_reduction"])
        x = (s - st["center"]) / (0.5 * st["length"])
        bump = np.where(np.abs(x) < 1, 0.5 * (1 + np.cos(np.pi * np.clip(x, -1, 1))), 0.0)
        r = r * (1.0 - d * bump)
    return r


def centerline_from_params(p: VesselParams, n: int = 401) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrate the Frenet-Serret equations with the drawn curvature and torsion.

    Curvature ``kappa(s) = |kappa_mean + sum of sine modes|`` clipped to the range maximum, torsion
    a sum of sine modes. The curve starts at the origin heading +z.

    Shapes
    ------
    returns : points (n, 3) mm, kappa (n,) 1/mm, tau (n,) 1/mm.
    """
    s = np.linspace(0.0, p.length, n)
    kappa = np.clip(np.abs(p.kappa_mean + _modes(s, p.kappa_modes)), 0.0, RANGES["kappa"][1])
    tau = np.clip(_modes(s, p.tau_modes), *RANGES["tau"])
    F = np.eye(3)[[2, 0, 1]].astype(np.float64)  # rows: T=z, N=x, B=y
    x = np.zeros(3)
    pts = [x.copy()]
    for i in range(n - 1):
        h = s[i + 1] - s[i]
        k = 0.5 * (kappa[i] + kappa[i + 1])
        t = 0.5 * (tau[i] + tau[i + 1])
        # Darboux rotation over the step: omega = t*T + k*B, applied to the frame (exact for constant k, t)
        w = t * F[0] + k * F[2]
        th = np.linalg.norm(w) * h
        # position: integrate T over the step (midpoint of the rotated tangent)
        if th > 1e-12:
            a = w / np.linalg.norm(w)
            Kx = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
            Rh = np.eye(3) + math.sin(th / 2) * Kx + (1 - math.cos(th / 2)) * Kx @ Kx
            Rf = np.eye(3) + math.sin(th) * Kx + (1 - math.cos(th)) * Kx @ Kx
        else:
            Rh = Rf = np.eye(3)
        x = x + h * (Rh @ F[0])
        F = (Rf @ F.T).T
        F /= np.linalg.norm(F, axis=1, keepdims=True)
        pts.append(x.copy())
    return np.asarray(pts), kappa, tau


def self_clearance(points: np.ndarray, radius: np.ndarray) -> float:
    """Smallest ratio ``distance / (r_i + r_j)`` over point pairs more than ``pi (r_i + r_j)`` apart
    in arc length (values > 1 mean the tube does not touch itself).

    Shapes
    ------
    points : (m, 3), radius : (m,) -> float
    """
    s = arc_length(points)
    d = np.linalg.norm(points[:, None] - points[None], axis=2)
    rr = radius[:, None] + radius[None]
    far = np.abs(s[:, None] - s[None]) > np.pi * rr
    if not far.any():
        return float("inf")
    return float((d[far] / rr[far]).min())


@dataclass
class Vessel:
    """A vessel ready for meshing: dense centerline, radii, frames and inlet flow (mm, mL/s)."""

    points: np.ndarray  # (m, 3)
    radius: np.ndarray  # (m,)
    Q: float
    frames: np.ndarray  # (m, 3, 3) rows [t, n, b]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def s(self) -> np.ndarray:
        return arc_length(self.points)


def vessel_from_centerline(points: Any, radius: Any, Q: float, where: str = "vessel",
                           params: dict[str, Any] | None = None) -> Vessel:
    """Validate a user centerline and build its frames.

    Shapes
    ------
    points : (m, 3) mm, radius : (m,) mm.
    """
    p, r = validate_centerline(points, radius, Q, where)
    return Vessel(p, r, float(Q), frames(p), dict(params or {}))


def sample_vessel(seed: int, n_stenoses: int | None = None, max_tries: int = 50) -> Vessel:
    """Draw a random vessel whose tube does not intersect itself (resamples on failure)."""
    for k in range(max_tries):
        p = sample_params(seed * 1000 + k if k else seed, n_stenoses)
        p.seed = int(seed)
        pts, kappa, tau = centerline_from_params(p)
        r = radius_profile(arc_length(pts), p)
        if self_clearance(pts[::4], r[::4]) > 1.5:
            d = p.to_dict()
            d["draw"] = k
            d["kappa_max"] = float(kappa.max())
            d["tau_absmax"] = float(np.abs(tau).max())
            return vessel_from_centerline(pts, r, p.Q, f"case seed {seed}", d)
        log.debug("seed %d draw %d self-intersects; redrawing", seed, k)
    raise VesselError(f"seed {seed}: no self-avoiding vessel in {max_tries} draws")
