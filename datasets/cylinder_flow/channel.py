"""Channel geometry with one or two obstacles, meshed by gmsh (triangles, extruded one cell thick).

Lengths are in units of the reference diameter ``D = 1`` of the sampled obstacle scale; the free
stream speed is 1, so time is in ``D / U`` and ``Re = U D / nu``. The channel spans
``x in [X0, X1]``, ``y in [-H/2, H/2]``; its side walls are free-slip (they bound the domain, the
blockage ``D / H`` is kept at about 6 % so the shedding frequency is close to that of a cylinder in
free stream).

A :class:`Geometry` is written as a gmsh ``.geo`` file (OpenCASCADE kernel) whose physical groups
are the OpenFOAM patches ``inlet``, ``outlet``, ``walls``, ``obstacle`` and ``frontAndBack``
(the two faces of the one-cell extrusion), and the volume ``fluid``.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

X0, X1, H = -5.0, 15.0, 16.0


class MeshingError(RuntimeError):
    """gmsh failed or produced an unusable mesh (the message names the case)."""


@dataclass
class Obstacle:
    """An ellipse (a circle when ``a == b``) centred at ``(x, y)``, semi-axes ``a >= b``, rotated by ``angle`` (rad)."""

    x: float
    y: float
    a: float
    b: float
    angle: float = 0.0

    @property
    def is_circle(self) -> bool:
        return abs(self.a - self.b) < 1e-12

    def bbox(self) -> tuple[float, float, float, float]:
        r = max(self.a, self.b)
        return self.x - r, self.y - r, self.x + r, self.y + r


@dataclass
class MeshSize:
    """Target edge lengths (in D): on the obstacle, in the wake box, far away; ``scale`` multiplies all."""

    surface: float = 0.075
    wake: float = 0.22
    far: float = 1.6
    wake_halfwidth: float = 1.6
    scale: float = 1.0


@dataclass
class Geometry:
    """The obstacles of one case (the channel is fixed) and the mesh sizes."""

    obstacles: list[Obstacle]
    mesh: MeshSize = field(default_factory=MeshSize)
    kind: str = "cylinder"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "obstacles": [asdict(o) for o in self.obstacles], "mesh": asdict(self.mesh),
                "channel": {"x0": X0, "x1": X1, "height": H}}

    @property
    def diameter(self) -> float:
        """Reference length: the cross-stream extent of the first obstacle (its diameter for a circle)."""
        o = self.obstacles[0]
        c, s = np.cos(o.angle), np.sin(o.angle)
        return float(2 * np.sqrt((o.a * s) ** 2 + (o.b * c) ** 2))


def geo_text(g: Geometry) -> str:
    """The gmsh ``.geo`` script of ``g`` (see the module docstring for the physical groups)."""
    m = g.mesh
    hs, hw, hf = m.surface * m.scale, m.wake * m.scale, m.far * m.scale
    lines = ['SetFactory("OpenCASCADE");', f"Rectangle(1) = {{{X0}, {-H / 2}, 0, {X1 - X0}, {H}}};"]
    tags = []
    for k, o in enumerate(g.obstacles):
        t = 10 + k
        lines.append(f"Disk({t}) = {{{o.x}, {o.y}, 0, {o.a}, {o.b}}};")
        if o.angle:
            lines.append(f"Rotate {{{{0, 0, 1}}, {{{o.x}, {o.y}, 0}}, {o.angle}}} {{ Surface{{{t}}}; }}")
        tags.append(str(t))
    lines.append(f"BooleanDifference(100) = {{ Surface{{1}}; Delete; }}{{ Surface{{{','.join(tags)}}}; Delete; }};")
    bx = np.array([o.bbox() for o in g.obstacles])
    e = 1e-4
    ox0, oy0, ox1, oy1 = bx[:, 0].min() - e, bx[:, 1].min() - e, bx[:, 2].max() + e, bx[:, 3].max() + e
    lines += [
        f"obst[] = Curve In BoundingBox{{{ox0}, {oy0}, -{e}, {ox1}, {oy1}, {e}}};",
        "Field[1] = Distance; Field[1].CurvesList = {obst[]}; Field[1].NumPointsPerCurve = 200;",
        f"Field[2] = Threshold; Field[2].InField = 1; Field[2].SizeMin = {hs}; Field[2].SizeMax = {hf};",
        "Field[2].DistMin = 0.15; Field[2].DistMax = 8;",
        f"Field[3] = Box; Field[3].VIn = {hw}; Field[3].VOut = {hf};",
        f"Field[3].XMin = {ox0 - 0.5}; Field[3].XMax = {X1}; Field[3].YMin = {oy0 - m.wake_halfwidth + 0.5};",
        f"Field[3].YMax = {oy1 + m.wake_halfwidth - 0.5}; Field[3].Thickness = 3;",
        "Field[5] = Min; Field[5].FieldsList = {2, 3};",
        "Background Field = 5;",
        "Mesh.MeshSizeExtendFromBoundary = 0; Mesh.MeshSizeFromPoints = 0; Mesh.MeshSizeFromCurvature = 0;",
        "Mesh.Algorithm = 6; Mesh.RandomSeed = 1;",
        "out[] = Extrude {0, 0, 1} { Surface{100}; Layers{1}; Recombine; };",
        'Physical Volume("fluid") = {out[1]};',
        f'Physical Surface("inlet") = Surface In BoundingBox{{{X0 - e}, {-H / 2 - e}, -{e}, {X0 + e}, {H / 2 + e}, {1 + e}}};',
        f'Physical Surface("outlet") = Surface In BoundingBox{{{X1 - e}, {-H / 2 - e}, -{e}, {X1 + e}, {H / 2 + e}, {1 + e}}};',
        f'bot[] = Surface In BoundingBox{{{X0 - e}, {-H / 2 - e}, -{e}, {X1 + e}, {-H / 2 + e}, {1 + e}}};',
        f'top[] = Surface In BoundingBox{{{X0 - e}, {H / 2 - e}, -{e}, {X1 + e}, {H / 2 + e}, {1 + e}}};',
        'Physical Surface("walls") = {bot[], top[]};',
        f'Physical Surface("obstacle") = Surface In BoundingBox{{{ox0}, {oy0}, -{e}, {ox1}, {oy1}, {1 + e}}};',
        'Physical Surface("frontAndBack") = {100, out[0]};',
    ]
    return "\n".join(lines) + "\n"


def mesh_geometry(g: Geometry, folder: Path, name: str = "case", timeout: float = 300.0) -> Path:
    """Write ``folder/mesh.geo`` and run ``gmsh -3`` to ``folder/mesh.msh`` (MSH 2.2 for gmshToFoam)."""
    if shutil.which("gmsh") is None:
        raise MeshingError("gmsh is not on PATH (Debian: apt install gmsh)")
    folder.mkdir(parents=True, exist_ok=True)
    geo = folder / "mesh.geo"
    geo.write_text(geo_text(g))
    msh = folder / "mesh.msh"
    r = subprocess.run(["gmsh", str(geo), "-3", "-format", "msh22", "-nt", "1", "-o", str(msh)],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 or not msh.is_file():
        raise MeshingError(f"{name}: gmsh failed (exit {r.returncode}): {(r.stdout + r.stderr)[-500:]}")
    return msh


def read_plane(msh: Path) -> dict[str, Any]:
    """The z = 0 triangle mesh of an extruded gmsh mesh and its boundary edges by patch.

    Shapes
    ------
    returns : ``points`` (n, 2) float64, ``triangles`` (m, 3) int64 (counter-clockwise), ``edges``
    {patch: (k, 2) int64} for ``inlet``, ``outlet``, ``walls``, ``obstacle``
    """
    import meshio

    m = meshio.read(msh)
    names = {v[0]: k for k, v in m.field_data.items()}
    tri, quads = [], {}
    for blk, phys in zip(m.cells, m.cell_data["gmsh:physical"], strict=True):
        if blk.type == "triangle":
            tri.append(blk.data[np.isin(phys, [k for k, v in names.items() if v == "frontAndBack"])])
        elif blk.type == "quad":
            for tag in np.unique(phys):
                quads.setdefault(names[int(tag)], []).append(blk.data[phys == tag])
    P = m.points
    T = np.concatenate(tri)
    T = T[np.abs(P[T, 2]).max(axis=1) < 1e-9]  # the z = 0 face
    used = np.unique(T)
    inv = np.full(len(P), -1, dtype=np.int64)
    inv[used] = np.arange(len(used))
    pts = P[used, :2]
    T = inv[T]
    a = pts[T[:, 1]] - pts[T[:, 0]]
    b = pts[T[:, 2]] - pts[T[:, 0]]
    cw = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0] < 0
    T[cw] = T[cw][:, [0, 2, 1]]
    edges = {}
    for name in ("inlet", "outlet", "walls", "obstacle"):
        if name not in quads:
            raise MeshingError(f"{msh}: physical group '{name}' has no faces")
        Q = np.concatenate(quads[name])
        e = [q[np.abs(P[q, 2]) < 1e-9] for q in Q]
        E = inv[np.array([x for x in e if len(x) == 2])]
        if (E < 0).any() or len(E) != len(Q):
            raise MeshingError(f"{msh}: patch '{name}' faces do not map to z = 0 edges")
        edges[name] = E
    return {"points": pts, "triangles": T, "edges": edges}
