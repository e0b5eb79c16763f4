"""Views that fit the case: camera from the geometry, slices and clips, engineering-notation colour bars.

* :func:`choose_view`: thin slabs and planar cases are seen top-down (along their thin axis),
  elongated shapes (vessels) from the side with their longest axis across the frame, the rest
  isometric. ``view="xy" | "xz" | "yz" | "iso"`` forces one.
* :func:`cut`: ``slice="z"`` / ``"z=0.3"`` / ``"0,0,1@0.2,0,0"`` cuts a plane, ``clip=...`` keeps one side.
* :func:`eng_scale`: the power of 1000 that makes colour-bar labels short (``"p [mPa]"`` when the
  unit is known, ``"p (x1e-3)"`` otherwise), so labels are never clipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Camera", "choose_view", "cut", "eng_scale", "parse_plane", "parse_camera"]

_AXES = {"x": 0, "y": 1, "z": 2}
_PREFIX = {-15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}


@dataclass
class Camera:
    """A camera as PyVista takes it: ``[position, focal_point, view_up]`` plus the view's name."""

    position: tuple[float, float, float]
    focal_point: tuple[float, float, float]
    up: tuple[float, float, float]
    name: str

    def as_pyvista(self) -> list[tuple[float, float, float]]:
        return [self.position, self.focal_point, self.up]


def _unit(i: int) -> np.ndarray:
    e = np.zeros(3)
    e[i] = 1.0
    return e


def choose_view(points: np.ndarray, view: str = "auto", *, thin: float = 0.05, elongated: float = 3.0) -> Camera:
    """The camera for ``points``: ``view`` one of ``auto``, ``xy``, ``xz``, ``yz``, ``iso``.

    ``auto``: smallest extent < ``thin`` x largest -> look along the thin axis (top-down); largest
    extent > ``elongated`` x the middle one -> look along the smallest axis with the longest axis
    horizontal; else isometric.

    Shapes
    ------
    points : (n, 3) float
    """
    p = np.asarray(points, dtype=np.float64)
    lo, hi = p.min(axis=0), p.max(axis=0)
    c = (lo + hi) / 2
    ext = hi - lo
    size = float(np.linalg.norm(ext)) or 1.0
    if view not in ("auto", "xy", "xz", "yz", "iso"):
        raise ValueError(f"view must be auto, xy, xz, yz or iso, got {view!r}")
    order = np.argsort(ext)                       # smallest, middle, largest
    if view == "auto":
        if ext[order[0]] < thin * ext[order[2]] or ext[order[2]] > elongated * max(ext[order[1]], 1e-300):
            normal, across = int(order[0]), int(order[2])
            up = int(order[1])
            name = "top-down" if ext[order[0]] < thin * ext[order[2]] else "side (longest axis across)"
            return Camera(tuple(c + 2 * size * _unit(normal)), tuple(c), tuple(_unit(up)), f"{name}: "
                          f"along {'xyz'[normal]}, {'xyz'[across]} across")
        view = "iso"
    if view == "iso":
        d = np.array([1.0, 1.0, 1.0]) / math.sqrt(3)
        return Camera(tuple(c + 2 * size * d), tuple(c), (0.0, 0.0, 1.0), "iso")
    normal = ({0, 1, 2} - {_AXES[view[0]], _AXES[view[1]]}).pop()
    return Camera(tuple(c + 2 * size * _unit(normal)), tuple(c), tuple(_unit(_AXES[view[1]])), view)


def parse_camera(text: str) -> Camera:
    """``"px,py,pz;fx,fy,fz;ux,uy,uz"`` (position; focal point; up) -> :class:`Camera`."""
    parts = [s for s in text.replace("|", ";").split(";") if s.strip()]
    try:
        vals = [tuple(float(v) for v in s.split(",")) for s in parts]
    except ValueError:
        raise ValueError(f"--camera {text!r}: expected 'px,py,pz;fx,fy,fz;ux,uy,uz'") from None
    if len(vals) != 3 or any(len(v) != 3 for v in vals):
        raise ValueError(f"--camera {text!r}: expected three x,y,z triples (position; focal point; up)")
    return Camera(vals[0], vals[1], vals[2], "camera")  # type: ignore[arg-type]


def parse_plane(text: str, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A plane from ``"z"`` (through the centre), ``"z=0.3"``, or ``"nx,ny,nz@ox,oy,oz"``: (normal, origin)."""
    p = np.asarray(points, dtype=np.float64)
    centre = (p.min(axis=0) + p.max(axis=0)) / 2
    t = text.strip().lower()
    if t in _AXES:
        return _unit(_AXES[t]), centre
    if len(t) > 2 and t[0] in _AXES and t[1] == "=":
        o = centre.copy()
        o[_AXES[t[0]]] = float(t[2:])
        return _unit(_AXES[t[0]]), o
    if "@" in t:
        n, o = t.split("@")
        nv, ov = np.array([float(v) for v in n.split(",")]), np.array([float(v) for v in o.split(",")])
        if nv.shape == (3,) and ov.shape == (3,) and np.linalg.norm(nv) > 0:
            return nv / np.linalg.norm(nv), ov
    raise ValueError(f"plane {text!r}: expected x|y|z, z=VALUE, or nx,ny,nz@ox,oy,oz")


def cut(grid: Any, slice: str | None = None, clip: str | None = None) -> tuple[Any, np.ndarray | None]:
    """Slice and/or clip a PyVista dataset; returns it and the slice normal (None without a slice).

    Raises
    ------
    ValueError
        The plane misses the geometry (nothing left to draw).
    """
    normal = None
    if clip:
        n, o = parse_plane(clip, grid.points)
        grid = grid.clip(normal=n, origin=o, invert=True)
        if grid.n_points == 0:
            raise ValueError(f"--clip {clip}: the plane leaves nothing of the mesh")
    if slice:
        n, o = parse_plane(slice, grid.points)
        grid = grid.slice(normal=n, origin=o)
        if grid.n_points == 0:
            raise ValueError(f"--slice {slice}: the plane misses the mesh")
        normal = n
    return grid, normal


def eng_scale(lo: float, hi: float, unit: str | None = None) -> tuple[float, str]:
    """(factor, suffix): labels are ``value / factor`` with ``%.3g``; the suffix goes in the title.

    The factor is a power of 1000 chosen so the largest magnitude lies in [1, 1000).
    """
    m = max(abs(lo), abs(hi))
    if not np.isfinite(m) or m == 0:
        return 1.0, f" [{unit}]" if unit else ""
    e = int(3 * math.floor(math.log10(m) / 3))
    e = max(-15, min(12, e))
    if unit:
        return 10.0 ** e, f" [{_PREFIX[e]}{unit}]"
    return 10.0 ** e, "" if e == 0 else f" (x1e{e})"


def tick_labels(lo: float, hi: float, factor: float, n: int = 3) -> list[str]:
    """The label strings the colour bar shows (``%.3g`` of the scaled values)."""
    return [f"{v / factor:.3g}" for v in np.linspace(lo, hi, n)]
