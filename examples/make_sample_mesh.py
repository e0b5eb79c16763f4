"""Generate the small mesh meshops ships: ``examples/data/sample_mixed.vtu`` and ``.msh``.

A box channel [0, 4] x [0, 1] x [0, 1] on a 12 x 6 x 6 grid, cut along x into four slabs, each
meshed with one cell type: hexahedra, wedges (each hex split in two), pyramids (each hex split
into six around its centre) and tetrahedra (each hex split into six, Kuhn). Every cell is
positively oriented in VTK's convention. Fields are analytic, for display and I/O tests (not a
flow solution): ``pressure`` (linear drop along x), ``velocity`` (a duct-like profile along x),
``wall_distance`` (float32), and per cell ``region`` (int32 slab id) and ``volume`` (exact).
The ``.msh`` copy also holds the boundary regions ``inlet`` (x = 0), ``outlet`` (x = 4) and
``wall`` as Gmsh physical groups.

Run ``python examples/make_sample_mesh.py [OUTDIR]``; the output is deterministic.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from meshops.io import write
from meshops.mesh import CellBlock, Mesh

NX, NY, NZ = 12, 6, 6
LX = 4.0

# Faces of each cell type (VTK node order), used to find the boundary faces.
FACES = {
    "tetra": [(0, 1, 2), (0, 1, 3), (1, 2, 3), (0, 2, 3)],
    "hexahedron": [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)],
    "wedge": [(0, 1, 2), (3, 4, 5), (0, 1, 4, 3), (1, 2, 5, 4), (2, 0, 3, 5)],
    "pyramid": [(0, 1, 2, 3), (0, 1, 4), (1, 2, 4), (2, 3, 4), (3, 0, 4)],
}


def _tet_volume(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    a, b, c, d = (p[t[:, i]] for i in range(4))
    return np.einsum("ij,ij->i", np.cross(b - a, c - a), d - a) / 6.0


def build() -> Mesh:
    """The sample mesh (deterministic)."""
    xs, ys, zs = np.linspace(0, LX, NX + 1), np.linspace(0, 1, NY + 1), np.linspace(0, 1, NZ + 1)
    X, Y, Z = np.meshgrid(xs, ys, zs, indexing="ij")
    grid = np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1)

    def vid(i: int, j: int, k: int) -> int:
        return (i * (NY + 1) + j) * (NZ + 1) + k

    points = [grid]
    n_pts = len(grid)
    blocks: dict[str, list[list[int]]] = {"hexahedron": [], "wedge": [], "pyramid": [], "tetra": []}
    slab = NX // 4
    for i in range(NX):
        for j in range(NY):
            for k in range(NZ):
                v = [vid(i, j, k), vid(i + 1, j, k), vid(i + 1, j + 1, k), vid(i, j + 1, k),
                     vid(i, j, k + 1), vid(i + 1, j, k + 1), vid(i + 1, j + 1, k + 1), vid(i, j + 1, k + 1)]
                kind = i // slab
                if kind == 0:
                    blocks["hexahedron"].append(v)
                elif kind == 1:  # bottom triangles wound so their normal points toward the top (VTK)
                    blocks["wedge"] += [[v[0], v[1], v[2], v[4], v[5], v[6]], [v[0], v[2], v[3], v[4], v[6], v[7]]]
                elif kind == 2:
                    c = n_pts
                    points.append(grid[v].mean(0, keepdims=True))
                    n_pts += 1
                    for f in FACES["hexahedron"]:
                        blocks["pyramid"].append([v[f[0]], v[f[3]], v[f[2]], v[f[1]], c])  # base normal toward apex
                else:
                    for t in ((0, 1, 2, 6), (0, 2, 3, 6), (0, 3, 7, 6), (0, 7, 4, 6), (0, 4, 5, 6), (0, 5, 1, 6)):
                        blocks["tetra"].append([v[q] for q in t])
    pts = np.concatenate(points)
    tet = np.array(blocks["tetra"], dtype=np.int64)
    neg = _tet_volume(pts, tet) < 0
    tet[neg] = tet[neg][:, [0, 2, 1, 3]]
    blocks["tetra"] = tet.tolist()
    cells = [CellBlock(t, np.array(c, dtype=np.int64)) for t, c in blocks.items()]

    h3 = (LX / NX) * (1 / NY) * (1 / NZ)
    vol = {"hexahedron": h3, "wedge": h3 / 2, "pyramid": h3 / 6, "tetra": h3 / 6}
    volume = np.concatenate([np.full(len(b), vol[b.type]) for b in cells])
    region = np.concatenate([np.full(len(b), r, dtype=np.int32) for r, b in enumerate(cells)])
    x, y, z = pts.T
    velocity = np.stack([16 * y * (1 - y) * z * (1 - z), np.zeros_like(x), np.zeros_like(x)], axis=1)
    wall = np.minimum.reduce([y, 1 - y, z, 1 - z]).astype(np.float32)
    mesh = Mesh(pts, cells,
                point_data={"pressure": 1.0 - x / LX, "velocity": velocity, "wall_distance": wall},
                cell_data={"region": region, "volume": volume})
    mesh.boundaries = boundary_regions(mesh)
    return mesh


def boundary_regions(mesh: Mesh) -> dict[str, list[CellBlock]]:
    """Faces on the box's outer planes, by region: inlet (x=0), outlet (x=LX), wall (the rest)."""
    seen: dict[tuple[int, ...], tuple[int, ...]] = {}
    count: dict[tuple[int, ...], int] = {}
    for b in mesh.cells:
        for cell in b.data:
            for f in FACES[b.type]:
                face = tuple(int(cell[q]) for q in f)
                key = tuple(sorted(face))
                seen.setdefault(key, face)
                count[key] = count.get(key, 0) + 1
    out: dict[str, dict[int, list[tuple[int, ...]]]] = {"inlet": {}, "outlet": {}, "wall": {}}
    for key, n in count.items():
        face = seen[key]
        c = mesh.points[list(face)]
        if n != 1:
            continue
        if np.allclose(c[:, 0], 0):
            name = "inlet"
        elif np.allclose(c[:, 0], LX):
            name = "outlet"
        elif any(np.allclose(c[:, a], v) for a in (1, 2) for v in (0.0, 1.0)):
            name = "wall"
        else:
            continue  # the pyramid/tetra interface is non-conforming (quad vs two triangles), not a boundary
        out[name].setdefault(len(face), []).append(face)
    return {name: [CellBlock("triangle" if k == 3 else "quad", np.array(sorted(f), dtype=np.int64))
                   for k, f in sorted(by_k.items())] for name, by_k in out.items()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent / "data"
    out.mkdir(parents=True, exist_ok=True)
    mesh = build()
    for ext in ("vtu", "msh"):
        path = write(mesh, out / f"sample_mixed.{ext}")
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB): {mesh}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
