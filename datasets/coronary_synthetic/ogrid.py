"""A swept structured O-grid for a tube, written directly as an OpenFOAM polyMesh.

The cross-section template is a unit disc split into a square-ish core (``nc x nc`` cells) and four
ring blocks (``nc`` cells around, ``nr`` cells radially, graded towards the wall), so there is no
singular axis. The template is placed at each station of the centerline with the local
rotation-minimizing frame and scaled by the local radius; consecutive sections are joined by hexahedra.

Patches: ``inlet`` (first section), ``outlet`` (last section), ``wall`` (the swept circle).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Outward faces of a hexahedron in VTK node order.
HEX_FACES = np.array([[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]])


@dataclass
class Template:
    """The 2D unit-disc O-grid.

    Attributes
    ----------
    xy : (n2, 2) float64 points
    quads : (q, 4) int64, counter-clockwise
    wall : (nw,) int64 indices of the points on the unit circle, ordered by angle (nw = 4 nc)
    """

    xy: np.ndarray
    quads: np.ndarray
    wall: np.ndarray


def disc_template(nc: int = 8, nr: int = 6, core: float = 0.55, grading: float = 0.75, bulge: float = 0.35) -> Template:
    """Build the O-grid of the unit disc.

    Parameters
    ----------
    nc : cells along each core side (and per quarter of the circle: ``4 nc`` wall faces around)
    nr : radial cells in the ring
    core : half-width of the core square relative to the radius
    grading : ratio of consecutive radial cell sizes in the ring (< 1 refines towards the wall)
    bulge : 0 keeps the core square, 1 maps it onto a circle of radius ``core * sqrt(2)``

    Shapes
    ------
    returns a :class:`Template` with ``(nc + 1)^2 + 4 nc nr`` points.
    """
    if nc < 2 or nr < 1:
        raise ValueError(f"disc_template: need nc >= 2 and nr >= 1, got nc={nc}, nr={nr}")
    u = np.linspace(-1.0, 1.0, nc + 1)
    U, V = np.meshgrid(u, u, indexing="ij")

    def core_map(U: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # blend of the square and the elliptical square-to-disc map (keeps cells near-orthogonal)
        xd = U * np.sqrt(1 - V**2 / 2) * np.sqrt(2)
        yd = V * np.sqrt(1 - U**2 / 2) * np.sqrt(2)
        return core * ((1 - bulge) * U + bulge * xd), core * ((1 - bulge) * V + bulge * yd)

    X, Y = core_map(U, V)
    pts: list[np.ndarray] = [np.stack([X.ravel(), Y.ravel()], 1)]
    idx_core = np.arange((nc + 1) ** 2).reshape(nc + 1, nc + 1)
    quads = []
    for i in range(nc):
        for j in range(nc):
            quads.append([idx_core[i, j], idx_core[i + 1, j], idx_core[i + 1, j + 1], idx_core[i, j + 1]])
    # radial distribution in the ring: sizes g^0, g^1, ... (wall cell smallest when g < 1)
    sizes = grading ** np.arange(nr)
    f = np.concatenate([[0.0], np.cumsum(sizes) / sizes.sum()])
    # the core boundary walked counter-clockwise, as (i, j) index pairs, starting at angle -45 deg
    ring_ij: list[tuple[int, int]] = []
    for j in range(nc):  # right side, i = nc, j up
        ring_ij.append((nc, j))
    for i in range(nc, 0, -1):  # top side, j = nc, i down
        ring_ij.append((i, nc))
    for j in range(nc, 0, -1):  # left side
        ring_ij.append((0, j))
    for i in range(nc):  # bottom side
        ring_ij.append((i, 0))
    nring = len(ring_ij)  # 4 nc
    inner = np.array([idx_core[i, j] for i, j in ring_ij])
    theta = -np.pi / 4 + 2 * np.pi * np.arange(nring) / nring
    p_in = pts[0][inner]
    p_out = np.stack([np.cos(theta), np.sin(theta)], 1)
    nxt = len(pts[0])
    layer_ids = [inner]
    for m in range(1, nr + 1):
        lp = p_in + f[m] * (p_out - p_in)
        pts.append(lp)
        layer_ids.append(np.arange(nxt, nxt + nring))
        nxt += nring
    for m in range(nr):
        a, b = layer_ids[m], layer_ids[m + 1]
        for k in range(nring):
            k1 = (k + 1) % nring
            quads.append([a[k], a[k1], b[k1], b[k]])
    xy = np.concatenate(pts)
    quads_a = np.asarray(quads, dtype=np.int64)
    # orient counter-clockwise
    P = xy[quads_a]
    area = 0.5 * np.sum(P[:, :, 0] * np.roll(P[:, :, 1], -1, 1) - np.roll(P[:, :, 0], -1, 1) * P[:, :, 1], axis=1)
    quads_a[area < 0] = quads_a[area < 0][:, ::-1]
    wall = layer_ids[-1]
    order = np.argsort(np.mod(theta, 2 * np.pi))
    return Template(xy, quads_a, wall[order])


@dataclass
class TubeMesh:
    """A swept hexahedral tube mesh.

    Attributes
    ----------
    points : (ns * n2, 3) float64, section-major (point ``k`` of section ``i`` is ``i * n2 + k``)
    hexes : ((ns - 1) * q, 8) int64, VTK order
    n_sections, n2 : ints
    wall_grid : (ns, nw) int64 point ids of the wall, ordered by section then angle
    """

    points: np.ndarray
    hexes: np.ndarray
    n_sections: int
    n2: int
    wall_grid: np.ndarray

    @property
    def wall_quads(self) -> np.ndarray:
        """Wall faces as quads over ``wall_grid`` (outward normals), section-major.

        Shapes
        ------
        returns : ((ns - 1) * nw, 4) int64 point ids of ``points``
        """
        W = self.wall_grid
        nw = W.shape[1]
        j1 = (np.arange(nw) + 1) % nw
        q = np.stack([W[:-1, :], W[:-1, j1], W[1:, j1], W[1:, :]], axis=2)
        return q.reshape(-1, 4)


def sweep(centers: np.ndarray, radius: np.ndarray, normals: np.ndarray, binormals: np.ndarray,
          tpl: Template) -> TubeMesh:
    """Place the template at each station and join consecutive sections by hexahedra.

    Shapes
    ------
    centers : (ns, 3), radius : (ns,), normals, binormals : (ns, 3) -> :class:`TubeMesh`
    """
    ns = len(centers)
    n2 = len(tpl.xy)
    P = (centers[:, None, :] + radius[:, None, None]
         * (tpl.xy[None, :, 0:1] * normals[:, None, :] + tpl.xy[None, :, 1:2] * binormals[:, None, :]))
    q = tpl.quads
    hexes = []
    for i in range(ns - 1):
        hexes.append(np.concatenate([q + i * n2, q + (i + 1) * n2], axis=1))
    wall_grid = tpl.wall[None, :] + n2 * np.arange(ns)[:, None]
    return TubeMesh(P.reshape(-1, 3), np.concatenate(hexes), ns, n2, wall_grid)


def hex_volumes(points: np.ndarray, hexes: np.ndarray) -> np.ndarray:
    """Signed hexahedron volumes (sum of 5-tet decomposition, VTK order).

    Shapes
    ------
    points : (n, 3), hexes : (c, 8) -> (c,)
    """
    P = points[hexes]
    tets = [(0, 1, 3, 4), (1, 2, 3, 6), (1, 4, 5, 6), (3, 4, 6, 7), (1, 3, 4, 6)]
    v = np.zeros(len(hexes))
    for a, b, c, d in tets:
        v += np.einsum("ij,ij->i", P[:, b] - P[:, a], np.cross(P[:, c] - P[:, a], P[:, d] - P[:, a])) / 6.0
    return v


@dataclass
class PolyMesh:
    """OpenFOAM polyMesh arrays (faces already in OpenFOAM order)."""

    points: np.ndarray  # (n, 3)
    faces: np.ndarray  # (f, 4)
    owner: np.ndarray  # (f,)
    neighbour: np.ndarray  # (n_internal,)
    patches: list[tuple[str, str, int, int]]  # (name, type, nFaces, startFace)

    def patch_slice(self, name: str) -> slice:
        for n, _t, nf, st in self.patches:
            if n == name:
                return slice(st, st + nf)
        raise KeyError(f"polyMesh has no patch '{name}'; patches: {[p[0] for p in self.patches]}")


def to_polymesh(tube: TubeMesh, scale: float = 1.0) -> PolyMesh:
    """Convert a :class:`TubeMesh` to polyMesh faces with upper-triangular internal-face order.

    ``scale`` multiplies the coordinates (1e-3 turns mm into m).
    """
    hexes = tube.hexes
    nc = len(hexes)
    vol = hex_volumes(tube.points, hexes)
    if (vol <= 0).any():
        bad = int(np.flatnonzero(vol <= 0)[0])
        raise ValueError(f"O-grid sweep: hexahedron {bad} has non-positive volume {vol[bad]:.3e} "
                         "(radius too large for the centerline curvature?)")
    F = hexes[:, HEX_FACES].reshape(-1, 4)
    cell = np.repeat(np.arange(nc), 6)
    key = np.sort(F, axis=1)
    _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    order = np.argsort(inv, kind="stable")  # occurrences of the same face are adjacent, lower cell first
    inv_s = inv[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = inv_s[1:] != inv_s[:-1]
    fi = order[first]  # first occurrence (lowest cell index, since cell ids increase with row index)
    uc = counts[inv_s[first]]
    internal = fi[uc == 2]
    second = order[np.flatnonzero(first)[uc == 2] + 1]
    own_i, nei_i = cell[internal], cell[second]
    srt = np.lexsort((nei_i, own_i))
    int_faces, own_i, nei_i = F[internal[srt]], own_i[srt], nei_i[srt]
    bnd = fi[uc == 1]
    if np.any(uc > 2):
        raise ValueError("O-grid sweep: a face is shared by more than two cells")
    bsec = F[bnd] // tube.n2
    ns = tube.n_sections
    is_in = (bsec == 0).all(1)
    is_out = (bsec == ns - 1).all(1)
    is_wall = ~(is_in | is_out)
    faces = [int_faces]
    owner = [own_i]
    patches = []
    start = len(int_faces)
    for name, typ, m in (("inlet", "patch", is_in), ("outlet", "patch", is_out), ("wall", "wall", is_wall)):
        b = bnd[m]
        b = b[np.argsort(cell[b], kind="stable")]
        faces.append(F[b])
        owner.append(cell[b])
        patches.append((name, typ, len(b), start))
        start += len(b)
    return PolyMesh(tube.points * scale, np.concatenate(faces), np.concatenate(owner), nei_i, patches)


def _header(cls: str, obj: str, note: str = "") -> str:
    n = f'    note        "{note}";\n' if note else ""
    return ("FoamFile\n{\n    version     2.0;\n    format      ascii;\n"
            f"    class       {cls};\n{n}    location    \"constant/polyMesh\";\n    object      {obj};\n}}\n\n")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_polymesh(pm: PolyMesh, case_dir: str | os.PathLike[str]) -> None:
    """Write ``constant/polyMesh/{points,faces,owner,neighbour,boundary}`` (ASCII)."""
    d = Path(case_dir) / "constant" / "polyMesh"
    d.mkdir(parents=True, exist_ok=True)
    np_, nf = len(pm.points), len(pm.faces)
    nc = int(max(pm.owner.max(), pm.neighbour.max() if len(pm.neighbour) else 0)) + 1
    note = f"nPoints:{np_}  nCells:{nc}  nFaces:{nf}  nInternalFaces:{len(pm.neighbour)}"
    pts = "\n".join(f"({x:.10g} {y:.10g} {z:.10g})" for x, y, z in pm.points)
    _write(d / "points", _header("vectorField", "points") + f"{np_}\n(\n{pts}\n)\n")
    fcs = "\n".join(f"4({a} {b} {c} {e})" for a, b, c, e in pm.faces.tolist())
    _write(d / "faces", _header("faceList", "faces") + f"{nf}\n(\n{fcs}\n)\n")
    own = "\n".join(map(str, pm.owner.tolist()))
    _write(d / "owner", _header("labelList", "owner", note) + f"{nf}\n(\n{own}\n)\n")
    nei = "\n".join(map(str, pm.neighbour.tolist()))
    _write(d / "neighbour", _header("labelList", "neighbour", note) + f"{len(pm.neighbour)}\n(\n{nei}\n)\n")
    b = [f"    {n}\n    {{\n        type            {t};\n        nFaces          {k};\n        startFace       {s};\n    }}"
         for n, t, k, s in pm.patches]
    _write(d / "boundary", _header("polyBoundaryMesh", "boundary") + f"{len(b)}\n(\n" + "\n".join(b) + "\n)\n")
