"""Make the README's `meshops show` pictures (docs/show_*.png) from three synthetic cases.

    python docs/make_pictures.py            # writes docs/show_slab.png, show_vessel.png, show_volume_slice.png

The cases (also used by tests/test_viz_views.py): a one-cell-thick 2D OpenFOAM-like slab of hexahedra,
a bent vessel wall, and a 3D tetrahedral volume with a rotating velocity field, drawn with ``--slice z``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.spatial import Delaunay

from meshops import CellBlock, Mesh

HERE = Path(__file__).resolve().parent


def slab(nx: int = 48, ny: int = 24, thickness: float = 0.01) -> Mesh:
    """One cell thick in z (how OpenFOAM stores 2D cases): hexahedra on a 2 x 1 x ``thickness`` box."""
    xs, ys, zs = np.linspace(0, 2, nx + 1), np.linspace(0, 1, ny + 1), np.array([0.0, thickness])
    X, Y, Z = np.meshgrid(xs, ys, zs, indexing="ij")
    pts = np.c_[X.ravel(), Y.ravel(), Z.ravel()]
    idx = np.arange(len(pts)).reshape(nx + 1, ny + 1, 2)
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    i, j = i.ravel(), j.ravel()
    hexes = np.stack([idx[i, j, 0], idx[i + 1, j, 0], idx[i + 1, j + 1, 0], idx[i, j + 1, 0],
                      idx[i, j, 1], idx[i + 1, j, 1], idx[i + 1, j + 1, 1], idx[i, j + 1, 1]], axis=1)
    x, y = pts[:, 0], pts[:, 1]
    p = 2e-3 * (np.sin(np.pi * x) * np.cos(np.pi * y) + 1.5)
    return Mesh(pts, [CellBlock("hexahedron", hexes)], point_data={"p": p, "p_pred": p + 2e-4 * x * y}, dim=3)


def vessel(n_along: int = 120, n_around: int = 24, length: float = 10.0, radius: float = 0.4) -> Mesh:
    """A gently bent tube wall (triangles) along x, with a pressure drop and a bump in the prediction."""
    s = np.linspace(0, 1, n_along)
    a = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    S, A = np.meshgrid(s, a, indexing="ij")
    cx, cy = length * S, 0.8 * np.sin(np.pi * S)
    pts = np.c_[(cx).ravel(), (cy + radius * np.cos(A)).ravel(), (radius * np.sin(A)).ravel()]
    idx = np.arange(len(pts)).reshape(n_along, n_around)
    i, j = np.meshgrid(np.arange(n_along - 1), np.arange(n_around), indexing="ij")
    i, j = i.ravel(), j.ravel()
    jn = (j + 1) % n_around
    tri = np.r_[np.c_[idx[i, j], idx[i + 1, j], idx[i + 1, jn]], np.c_[idx[i, j], idx[i + 1, jn], idx[i, jn]]]
    p = 1.2e4 * (1 - 0.6 * S.ravel()) + 300 * np.cos(A.ravel())
    bump = 400 * np.exp(-((S.ravel() - 0.6) / 0.08) ** 2)
    return Mesh(pts, [CellBlock("triangle", tri)], point_data={"p": p, "p_pred": p + bump})


def volume(n: int = 1500, seed: int = 0) -> Mesh:
    """Tetrahedra on random points in the unit cube, a rotating velocity and a prediction with an error."""
    rng = np.random.default_rng(seed)
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=float)
    pts = np.r_[corners, rng.uniform(size=(n, 3))]
    tets = Delaunay(pts).simplices.astype(np.int64)
    x, y, z = (pts - 0.5).T
    u = np.c_[-y, x, 0.3 * z]
    u_pred = u + 0.08 * np.c_[np.sin(6 * z), np.cos(5 * x), 0 * z]
    return Mesh(pts, [CellBlock("tetra", tets)], point_data={"u": u, "u_pred": u_pred})


CASES = {
    "slab": (slab, {"field": "p", "units": {"p": "Pa"}}),
    "vessel": (vessel, {"field": "p", "units": {"p": "Pa"}}),
    "volume_slice": (volume, {"field": "u", "slice": "z", "vectors": True, "units": {"u": "m/s"}}),
}


def render(name: str, out: Path | None, window_size: tuple[int, int] = (1200, 380)):
    """Draw case ``name`` as `meshops show` does; returns the RenderInfo."""
    from meshops.viz import render_comparison

    make, opts = CASES[name]
    opts = dict(opts)
    field = opts.pop("field")
    return render_comparison(make(), field, out, window_size=window_size, show=False, **opts)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args(argv)
    for name in CASES:
        info = render(name, Path(args.out) / f"show_{name}.png")
        print(info.path, info.view)


if __name__ == "__main__":
    main()
