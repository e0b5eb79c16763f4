"""Random domains of the elliptic_boundary dataset and their meshes (gmsh).

2D shape families (all inside the unit square):

* ``cutout0`` .. ``cutout4``: the unit square with 0 to 4 of its corners cut out by random
  rectangles (the BENO paper's domains, which cut rectangles of random size from the corners);
* ``polygon``: a random star-shaped polygon with 5 to 10 vertices;
* ``holes``: the unit square with 1 or 2 circular holes (polygonised, 20 sides).

3D families (inside the unit cube, tetrahedra):

* ``cube_cutout0`` .. ``cube_cutout2``: the unit cube with 0 to 2 corner boxes removed;
* ``cube_hole``: the unit cube with a spherical hole.

Meshes come from gmsh's Python API (Frontal-Delaunay in 2D, Delaunay in 3D) with a target edge
length ``h``; nodes not used by any cell are dropped and the others renumbered in gmsh order.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger("meshops.datasets.elliptic_boundary.geometry")

FAMILIES_2D = ("cutout0", "cutout1", "cutout2", "cutout3", "cutout4", "polygon", "holes")
FAMILIES_3D = ("cube_cutout0", "cube_cutout1", "cube_cutout2", "cube_hole")

_GMSH_LOCK = threading.Lock()


@dataclass
class Domain2D:
    """A polygonal domain: an outer loop (counter-clockwise) and hole loops.

    Shapes
    ------
    outer : (v, 2) float64
    holes : list of (v_i, 2) float64
    """

    family: str
    outer: np.ndarray
    holes: list[np.ndarray] = field(default_factory=list)

    @property
    def area(self) -> float:
        return _shoelace(self.outer) - sum(_shoelace(h) for h in self.holes)


@dataclass
class Domain3D:
    """The unit cube minus corner boxes ``(lo, hi)`` and spheres ``(center, radius)``."""

    family: str
    boxes: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    spheres: list[tuple[np.ndarray, float]] = field(default_factory=list)


def _shoelace(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return float(abs(0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))))


# ----------------------------------------------------------------------------- 2D families
def square_with_cutouts(n_cut: int, rng: np.random.Generator, lo: float = 0.15, hi: float = 0.45) -> Domain2D:
    """Unit square with ``n_cut`` random corners replaced by rectangular notches.

    Shapes
    ------
    returns : Domain2D with ``outer`` (4 + 2 * n_cut, 2)
    """
    if not 0 <= n_cut <= 4:
        raise ValueError(f"n_cut must be in 0..4, got {n_cut}")
    corners = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]  # counter-clockwise
    chosen = set(rng.choice(4, size=n_cut, replace=False).tolist())
    pts: list[tuple[float, float]] = []
    for i, (cx, cy) in enumerate(corners):
        if i not in chosen:
            pts.append((cx, cy))
            continue
        w, h = rng.uniform(lo, hi, size=2)
        sx = 1.0 if cx == 0.0 else -1.0  # direction into the square
        sy = 1.0 if cy == 0.0 else -1.0
        a = (cx + sx * w, cy)        # on the horizontal side
        b = (cx + sx * w, cy + sy * h)  # the re-entrant corner
        c = (cx, cy + sy * h)        # on the vertical side
        # Counter-clockwise order: corners 0 and 2 come from a vertical side, 1 and 3 from a horizontal one.
        pts += [c, b, a] if i in (0, 2) else [a, b, c]
    outer = np.asarray(pts, dtype=np.float64)
    return Domain2D(f"cutout{n_cut}", _ccw(outer))


def random_polygon(rng: np.random.Generator) -> Domain2D:
    """A star-shaped polygon around (0.5, 0.5) with 5 to 10 vertices, radii in [0.35, 0.5]."""
    nv = int(rng.integers(5, 11))
    ang = np.linspace(0, 2 * np.pi, nv, endpoint=False) + rng.uniform(-0.25, 0.25, nv) * (2 * np.pi / nv)
    ang += rng.uniform(0, 2 * np.pi)
    r = rng.uniform(0.35, 0.5, nv)
    outer = 0.5 + np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)
    return Domain2D("polygon", _ccw(outer))


def square_with_holes(rng: np.random.Generator, n_holes: int | None = None, sides: int = 20) -> Domain2D:
    """Unit square with 1-2 non-overlapping circular holes (radius 0.08-0.18) away from the sides."""
    n_holes = int(rng.integers(1, 3)) if n_holes is None else n_holes
    holes: list[np.ndarray] = []
    centers: list[tuple[np.ndarray, float]] = []
    tries = 0
    while len(holes) < n_holes:
        tries += 1
        if tries > 1000:
            raise RuntimeError("could not place non-overlapping holes")
        r = float(rng.uniform(0.08, 0.18))
        c = rng.uniform(r + 0.1, 1 - r - 0.1, 2)
        if any(np.linalg.norm(c - c2) < r + r2 + 0.1 for c2, r2 in centers):
            continue
        centers.append((c, r))
        t = np.linspace(0, 2 * np.pi, sides, endpoint=False)
        holes.append(c + r * np.stack([np.cos(t), np.sin(t)], axis=1))
    outer = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64)
    return Domain2D("holes", outer, holes)


def random_domain_2d(family: str, rng: np.random.Generator) -> Domain2D:
    """A random domain of a 2D family (see the module docstring)."""
    if family.startswith("cutout") and family[6:].isdigit():
        return square_with_cutouts(int(family[6:]), rng)
    if family == "polygon":
        return random_polygon(rng)
    if family == "holes":
        return square_with_holes(rng)
    raise ValueError(f"unknown 2D shape family '{family}'; known: {', '.join(FAMILIES_2D)}")


def random_domain_3d(family: str, rng: np.random.Generator) -> Domain3D:
    """A random domain of a 3D family (see the module docstring)."""
    if family.startswith("cube_cutout") and family[11:].isdigit():
        n = int(family[11:])
        corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.float64)
        boxes = []
        for ci in rng.choice(8, size=n, replace=False):
            c = corners[ci]
            size = rng.uniform(0.2, 0.45, 3)
            lo = np.where(c == 0, -0.01, 1 - size)
            hi = np.where(c == 0, size, 1.01)
            boxes.append((lo, hi))
        return Domain3D(family, boxes=boxes)
    if family == "cube_hole":
        r = float(rng.uniform(0.15, 0.25))
        c = rng.uniform(r + 0.12, 1 - r - 0.12, 3)
        return Domain3D(family, spheres=[(c, r)])
    raise ValueError(f"unknown 3D shape family '{family}'; known: {', '.join(FAMILIES_3D)}")


def _ccw(p: np.ndarray) -> np.ndarray:
    x, y = p[:, 0], p[:, 1]
    signed = 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    return p if signed > 0 else p[::-1].copy()


# ----------------------------------------------------------------------------- meshing
@contextlib.contextmanager
def _gmsh_session(name: str) -> Iterator[object]:
    import gmsh

    with _GMSH_LOCK:
        started = False
        if not gmsh.isInitialized():
            gmsh.initialize(interruptible=False)
            started = True
        try:
            gmsh.option.setNumber("General.Terminal", 0)
            gmsh.option.setNumber("General.Verbosity", 0)
            gmsh.option.setNumber("General.NumThreads", 1)
            gmsh.model.add(name)
            yield gmsh
        finally:
            gmsh.clear()
            if started:
                gmsh.finalize()


def _extract(gmsh: object, dim: int) -> tuple[np.ndarray, np.ndarray]:
    tags, coords, _ = gmsh.model.mesh.getNodes()  # type: ignore[attr-defined]
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 3)
    etype = 2 if dim == 2 else 4  # 3-node triangle / 4-node tetrahedron
    etypes, _, enodes = gmsh.model.mesh.getElements(dim)  # type: ignore[attr-defined]
    conn = [np.asarray(n, dtype=np.int64) for t, n in zip(etypes, enodes, strict=False) if t == etype]
    if not conn:
        raise RuntimeError(f"gmsh produced no {'triangles' if dim == 2 else 'tetrahedra'}")
    cells_tags = np.concatenate(conn).reshape(-1, dim + 1)
    lut = np.full(int(np.max(tags)) + 1, -1, dtype=np.int64)
    lut[np.asarray(tags, dtype=np.int64)] = np.arange(len(tags))
    cells = lut[cells_tags]
    used = np.unique(cells)
    remap = np.full(len(tags), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return coords[used], remap[cells]


def mesh_2d(domain: Domain2D, h: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate a polygonal domain with target edge length ``h``.

    Shapes
    ------
    returns : points (n, 3) float64 with z = 0, triangles (m, 3) int64 (counter-clockwise)
    """
    with _gmsh_session("domain2d") as gmsh:
        geo = gmsh.model.geo  # type: ignore[attr-defined]
        loops = []
        for poly in [domain.outer] + list(domain.holes):
            pts = [geo.addPoint(float(x), float(y), 0.0, h) for x, y in poly]
            lines = [geo.addLine(pts[i], pts[(i + 1) % len(pts)]) for i in range(len(pts))]
            loops.append(geo.addCurveLoop(lines))
        geo.addPlaneSurface(loops)
        geo.synchronize()
        gmsh.option.setNumber("Mesh.Algorithm", 6)  # type: ignore[attr-defined]
        gmsh.option.setNumber("Mesh.MeshSizeMax", h)  # type: ignore[attr-defined]
        gmsh.model.mesh.generate(2)  # type: ignore[attr-defined]
        pts, tri = _extract(gmsh, 2)
    pts[:, 2] = 0.0
    # orient counter-clockwise
    a = pts[tri[:, 1], :2] - pts[tri[:, 0], :2]
    b = pts[tri[:, 2], :2] - pts[tri[:, 0], :2]
    neg = (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]) < 0
    tri[neg] = tri[neg][:, [0, 2, 1]]
    return pts, tri


def mesh_3d(domain: Domain3D, h: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Tetrahedralise the unit cube minus the domain's boxes and spheres (OpenCASCADE booleans).

    Shapes
    ------
    returns : points (n, 3) float64, tetrahedra (m, 4) int64
    """
    with _gmsh_session("domain3d") as gmsh:
        occ = gmsh.model.occ  # type: ignore[attr-defined]
        cube = occ.addBox(0, 0, 0, 1, 1, 1)
        tools = []
        for lo, hi in domain.boxes:
            tools.append((3, occ.addBox(*lo.tolist(), *(hi - lo).tolist())))
        for c, r in domain.spheres:
            tools.append((3, occ.addSphere(*c.tolist(), r)))
        if tools:
            occ.cut([(3, cube)], tools)
        occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMax", h)  # type: ignore[attr-defined]
        gmsh.option.setNumber("Mesh.MeshSizeMin", 0.5 * h)  # type: ignore[attr-defined]
        gmsh.model.mesh.generate(3)  # type: ignore[attr-defined]
        pts, tet = _extract(gmsh, 3)
    return pts, tet


def families(dim: int) -> Sequence[str]:
    """The shape family names for ``dim`` 2 or 3."""
    return FAMILIES_2D if dim == 2 else FAMILIES_3D
