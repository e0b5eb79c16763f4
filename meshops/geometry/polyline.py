"""Polyline geometry: arc length, resampling, tangents, rotation-minimizing frames, curvature.

Pure numpy functions on one polyline, an ordered ``(n, 3)`` array of points (the conventions are
those of :mod:`meshops.geometry.centerline`, which re-exports these functions).

Conventions
-----------
* Arc length ``s`` starts at 0 at the first point of each polyline.
* Frames are ``(T, N, B)``: unit tangent, normal and binormal, right-handed (``B = T x N``).
  :func:`rotation_minimizing_frames` computes them with the double reflection method of
  Wang, Juttler, Zheng and Liu (ACM TOG 27(1), 2008), which is fourth-order accurate in the segment
  length and has no torsion-driven twist (unlike the Frenet frame, it is defined on straight pieces).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "arc_length",
    "curvature_torsion",
    "resample",
    "rotation_minimizing_frames",
    "tangents",
]


def _as_polyline(points: np.ndarray, name: str = "points", min_points: int = 2) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] not in (2, 3):
        raise ValueError(f"{name} must have shape (n, 3) or (n, 2), got {p.shape}")
    if p.shape[1] == 2:
        p = np.hstack([p, np.zeros((len(p), 1))])
    if len(p) < min_points:
        raise ValueError(f"{name}: a polyline needs at least {min_points} points, got {len(p)}")
    bad = ~np.isfinite(p)
    if bad.any():
        i = int(np.argwhere(bad)[0, 0])
        raise ValueError(f"{name}: point {i} has a non-finite coordinate {p[i].tolist()}")
    return p


def arc_length(points: np.ndarray) -> np.ndarray:
    """Cumulative arc length along a polyline.

    Shapes
    ------
    points : (n, 3) float64
    returns : (n,) float64, ``s[0] = 0``, non-decreasing.
    """
    p = _as_polyline(points, min_points=1)
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def resample(
    points: np.ndarray,
    spacing: float | None = None,
    n: int | None = None,
    values: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Resample a polyline at uniform arc length (piecewise linear interpolation).

    Give exactly one of ``spacing`` (the number of points is ``ceil(L / spacing) + 1``, so the
    actual spacing is ``<= spacing`` and the end points are kept) or ``n``. Duplicate consecutive
    points (zero-length segments) are skipped.

    Parameters
    ----------
    points : polyline.
    spacing : target arc-length spacing (> 0).
    n : number of output points (>= 2).
    values : per-point values to interpolate along (e.g. a radius), any trailing shape.

    Shapes
    ------
    points : (n_in, 3) float64
    values : (n_in, ...) or None
    returns : (new_points (n, 3), s (n,), new_values (n, ...) or None)

    Raises
    ------
    ValueError
        for zero total length, a non-positive spacing, ``n < 2``, or both/neither of spacing and n.
    """
    p = _as_polyline(points)
    if (spacing is None) == (n is None):
        raise ValueError("resample: give exactly one of spacing= or n=")
    s = arc_length(p)
    keep = np.concatenate([[True], np.diff(s) > 0])
    p, s = p[keep], s[keep]
    vals = None if values is None else np.asarray(values)[keep]
    total = float(s[-1])
    if total <= 0:
        raise ValueError(f"resample: the polyline has zero length ({len(keep)} coincident points)")
    if spacing is not None:
        if not spacing > 0:
            raise ValueError(f"resample: spacing must be > 0, got {spacing}")
        n = int(np.ceil(total / spacing - 1e-9)) + 1
    assert n is not None
    if n < 2:
        raise ValueError(f"resample: n must be >= 2, got {n}")
    s_new = np.linspace(0.0, total, int(n))
    out = np.stack([np.interp(s_new, s, p[:, d]) for d in range(3)], axis=1)
    new_vals = None
    if vals is not None:
        flat = vals.reshape(len(vals), -1).astype(np.float64)
        new_vals = np.stack([np.interp(s_new, s, flat[:, j]) for j in range(flat.shape[1])], axis=1)
        new_vals = new_vals.reshape((len(s_new),) + vals.shape[1:])
    return out, s_new, new_vals


def tangents(points: np.ndarray) -> np.ndarray:
    """Unit tangents of a polyline: arc-length central differences (one-sided at the ends).

    Shapes
    ------
    points : (n, 3) float64, n >= 2, no coincident consecutive points
    returns : (n, 3) float64 unit vectors
    """
    p = _as_polyline(points)
    s = arc_length(p)
    if np.any(np.diff(s) <= 0):
        i = int(np.argmax(np.diff(s) <= 0))
        raise ValueError(f"tangents: points {i} and {i + 1} coincide; resample the polyline first")
    if len(p) == 2:
        t = np.repeat((p[1] - p[0])[None], 2, axis=0)
    else:
        t = np.gradient(p, s, axis=0, edge_order=2)
    nrm = np.linalg.norm(t, axis=1, keepdims=True)
    # edge_order=2 can give a zero vector on a sharp U-turn; fall back to the segment direction.
    zero = nrm[:, 0] < 1e-14
    if zero.any():
        seg = np.diff(p, axis=0)
        fb = np.vstack([seg, seg[-1:]])
        t[zero] = fb[zero]
        nrm = np.linalg.norm(t, axis=1, keepdims=True)
    return t / nrm


def _perpendicular(t: np.ndarray) -> np.ndarray:
    axis = np.zeros(3)
    axis[int(np.argmin(np.abs(t)))] = 1.0
    v = axis - np.dot(axis, t) * t
    return v / np.linalg.norm(v)


def rotation_minimizing_frames(
    points: np.ndarray,
    tangent: np.ndarray | None = None,
    normal0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotation-minimizing frames along a polyline by the double reflection method.

    Each step reflects the previous frame in the bisector plane of the chord, then in the plane
    that maps the reflected tangent onto the next tangent (Wang et al., 2008). The result is
    orthonormal to machine precision, continuous, and free of twist about the tangent.

    Parameters
    ----------
    points : polyline.
    tangent : unit tangents; computed by :func:`tangents` when omitted.
    normal0 : initial normal; projected to be perpendicular to ``tangent[0]``. Default: the unit
        vector perpendicular to the tangent built from the coordinate axis least aligned with it.

    Shapes
    ------
    points : (n, 3) float64
    tangent : (n, 3) float64 or None
    normal0 : (3,) or None
    returns : T, N, B each (n, 3) float64, ``B = T x N``.
    """
    p = _as_polyline(points)
    t = tangents(p) if tangent is None else np.asarray(tangent, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"rotation_minimizing_frames: tangent has shape {t.shape}, points {p.shape}")
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    if normal0 is None:
        r = _perpendicular(t[0])
    else:
        r = np.asarray(normal0, dtype=np.float64).reshape(3)
        r = r - np.dot(r, t[0]) * t[0]
        nr = np.linalg.norm(r)
        if nr < 1e-12:
            raise ValueError(f"rotation_minimizing_frames: normal0 {normal0} is parallel to the first tangent")
        r = r / nr
    n = len(p)
    N = np.empty_like(p)
    N[0] = r
    v1s = np.diff(p, axis=0)
    c1s = np.einsum("ij,ij->i", v1s, v1s)
    for i in range(n - 1):
        v1, c1 = v1s[i], c1s[i]
        if c1 > 0:
            rL = r - (2.0 / c1) * np.dot(v1, r) * v1
            tL = t[i] - (2.0 / c1) * np.dot(v1, t[i]) * v1
        else:
            rL, tL = r, t[i]
        v2 = t[i + 1] - tL
        c2 = np.dot(v2, v2)
        r = rL - (2.0 / c2) * np.dot(v2, rL) * v2 if c2 > 1e-30 else rL
        # Re-orthonormalize against round-off accumulation over long lines.
        r = r - np.dot(r, t[i + 1]) * t[i + 1]
        r = r / np.linalg.norm(r)
        N[i + 1] = r
    B = np.cross(t, N)
    return t, N, B


def curvature_torsion(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Curvature and torsion of a polyline from arc-length finite differences.

    ``kappa = |r' x r''| / |r'|^3`` and ``tau = (r' x r'') . r''' / |r' x r''|^2`` with derivatives
    by second-order differences in arc length (``np.gradient``). Accuracy is O(h^2) in the point
    spacing ``h`` (resample first for noisy, uneven input). Torsion is 0 where the curvature
    vanishes (straight pieces, where it is undefined).

    Shapes
    ------
    points : (n, 3) float64, n >= 3
    returns : kappa (n,), tau (n,) float64
    """
    p = _as_polyline(points, min_points=3)
    s = arc_length(p)
    if np.any(np.diff(s) <= 0):
        i = int(np.argmax(np.diff(s) <= 0))
        raise ValueError(f"curvature_torsion: points {i} and {i + 1} coincide; resample the polyline first")
    d1 = np.gradient(p, s, axis=0, edge_order=2)
    d2 = np.gradient(d1, s, axis=0, edge_order=2)
    d3 = np.gradient(d2, s, axis=0, edge_order=2)
    c = np.cross(d1, d2)
    cn = np.linalg.norm(c, axis=1)
    speed = np.linalg.norm(d1, axis=1)
    kappa = cn / speed**3
    denom = cn**2
    tiny = denom <= 1e-24 * np.maximum(speed, 1.0) ** 6
    tau = np.where(tiny, 0.0, np.einsum("ij,ij->i", c, d3) / np.where(tiny, 1.0, denom))
    return kappa, tau
