"""``meshops centerline WALL --out cl.vtp``: the centerline tree of a vessel wall (VMTK's method).

Openings are found as boundary loops (open walls) or flat caps (closed walls); the inlet is the
largest unless ``--inlet`` is given. The tree is written as VMTK/SimVascular write centerlines
(``MaximumInscribedSphereRadius``, ``CenterlineIds``, ``TractIds``, ``GroupIds``, ``Blanking``,
plus ``BranchId``, ``BifurcationId``, ``Path``), in the wall's own units.
"""

from __future__ import annotations

import argparse

HELP = "extract the centerline tree (with inscribed-sphere radius) of a vessel wall surface"


def parse_point(text: str, what: str) -> list[float]:
    """``X,Y,Z`` -> three floats (error naming the option otherwise)."""
    parts = text.replace(" ", "").split(",")
    try:
        v = [float(x) for x in parts]
    except ValueError:
        v = []
    if len(v) != 3:
        raise ValueError(f"{what} expects X,Y,Z, got '{text}'")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("wall", help="the lumen surface (.vtp .stl .obj .ply .vtk ...; a volume mesh gives its boundary)")
    p.add_argument("--out", required=True, help="output centerline file (.vtp; .vtk and .csv also work)")
    p.add_argument("--inlet", metavar="X,Y,Z", help="a point near the inlet (default: the largest opening)")
    p.add_argument("--outlets", nargs="+", metavar="X,Y,Z", help="points near the outlets to use (default: all)")
    p.add_argument("--largest", action="store_true", help="use the largest connected piece of the wall")
    p.add_argument("--spacing", type=float, help="centerline point spacing (wall units)")
    p.add_argument("--smooth", type=float, default=0.5, help="smoothing length / inscribed radius (default 0.5)")


def extract_from_file(path: str, inlet: str | None = None, outlets: list[str] | None = None,
                      largest: bool = False, spacing: float | None = None, smooth: float = 0.5):
    """Read a wall file and extract its centerlines; errors name the file."""
    import numpy as np

    import meshops
    from meshops.geometry.centerline_extract import extract_centerlines
    from meshops.graph.centerline import wall_triangles

    try:
        mesh = meshops.read(path)
    except FileNotFoundError:
        raise
    except Exception as e:  # any reader failure: one line naming the file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{path}: cannot read the wall ({msg})") from e
    pts, faces = wall_triangles(mesh)
    return extract_centerlines(
        pts, faces,
        inlet=None if inlet is None else np.array(parse_point(inlet, "--inlet")),
        outlets=None if not outlets else np.array([parse_point(o, "--outlets") for o in outlets]),
        largest=largest, spacing=spacing, smooth=smooth, where=str(path),
    )


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    import meshops
    from meshops.geometry.polyline import arc_length
    from meshops.graph.centerline import centerline_mesh

    t0 = time.perf_counter()
    res = extract_from_file(args.wall, args.inlet, args.outlets, args.largest, args.spacing, args.smooth)
    cl = res.centerline
    meshops.write(centerline_mesh(cl, where=str(args.out)), args.out)
    dt = time.perf_counter() - t0
    print(f"{args.wall}: inlet ({res.inlet.kind}) at {np.round(res.inlet.center, 4).tolist()} radius "
          f"{res.inlet.radius:.4g}; {len(res.outlets)} outlets; {res.holes} small holes filled")
    for i, b in enumerate(cl.branches):
        r = cl.radius[b]
        length = float(arc_length(cl.points[b])[-1]) if len(b) > 1 else 0.0
        print(f"  branch {i}: parent {cl.parent[i][0]}, {len(b)} points, length {length:.4g}, "
              f"radius {r.min():.4g}-{r.max():.4g} (mean {r.mean():.4g})")
    print(f"{args.out}: {cl.n_branches} branches, {len(cl.bifurcations())} bifurcations "
          f"(from {res.n_voronoi} internal Voronoi vertices, {dt:.1f} s)")
    return 0
