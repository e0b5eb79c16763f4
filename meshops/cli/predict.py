"""``meshops predict CHECKPOINT MESH... --out DIR``: predicted fields written back on each mesh.

Each mesh is written to ``DIR`` under its own file name and format, in its own point order, with
``<field>_pred`` fields and, when the mesh carries the true field, ``<field>_error = pred - truth``.
Several inputs mirror their paths relative to their common folder; a format that cannot hold
point fields (STL, OBJ, SU2, an OpenFOAM case) is written as ``.vtu`` / ``.vtp`` instead; an
output that would overwrite an input is refused. Outputs appear only when every mesh succeeded.
Non-finite predictions are an error; inputs outside the training ranges are warned about; target
channels never negative in training (magnitudes such as ``|WSS|``) are clamped at 0 with a warning.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "predict fields on meshes with a trained checkpoint; writes <field>_pred and <field>_error"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .pt written by meshops train (best.pt / last.pt)")
    p.add_argument("meshes", nargs="*", help="mesh files (any format meshops reads)")
    p.add_argument("--centerline", action="append", default=[], metavar="FILE",
                   help="a centerline file (.vtp/.vtk/.csv/.dat with a radius array): without meshes, predict "
                        "on the wall swept around it; with wall meshes, the centerline of each wall (else extracted)")
    p.add_argument("--radius-field", help="the centerline's radius point array (default: detected)")
    p.add_argument("--scale", type=float, default=None,
                   help="model length units per file length unit (10: file in cm, model in mm); "
                        "walls: default detected from the radii, swept centerlines: default 1")
    p.add_argument("--n-around", type=int, default=32, help="--centerline: wall points per ring")
    p.add_argument("--spacing", type=float, default=None,
                   help="--centerline: ring spacing in file units (default: one ring per centerline point)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--global", dest="globals", action="append", default=[], metavar="NAME=VALUE",
                   help="a global parameter the model needs (else read from the file's field data)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache", help="graph cache folder (default: no cache)")


def run(args: argparse.Namespace) -> int:
    import meshops
    from meshops.cli._errors import UsageError, parse_assignments
    from meshops.cli._outputs import Staged, field_format, mirror_destinations
    from meshops.data.graphs import GraphCache
    from meshops.train.inference import load_trained, predict_mesh

    glob: dict[str, float] = parse_assignments("--global", args.globals)
    if not args.meshes and not args.centerline:
        raise UsageError("give mesh files and/or --centerline FILE")
    if args.meshes and len(args.centerline) not in (0, 1, len(args.meshes)):
        raise UsageError(f"give one --centerline for all walls or one per wall ({len(args.meshes)}), "
                         f"got {len(args.centerline)}")
    out = Path(args.out)
    dests = mirror_destinations(list(args.meshes), out) if args.meshes else []
    from meshops.cli import _wall_predict as wp

    wp.check_unique_outputs(args.meshes, dests)
    trained = load_trained(args.checkpoint, args.device,
                           cache=GraphCache(args.cache) if args.cache else None)
    with Staged(out) as staged:  # nothing lands in --out unless every mesh succeeds
        for path in [] if args.meshes else args.centerline:
            result = _predict_centerline(trained, path, glob, 1.0 if args.scale is None else args.scale,
                                         args.n_around, args.spacing, args.radius_field)
            meshops.write(result, staged.path(out / f"{Path(path).stem}_wall.vtp"))
        for i, (path, dest) in enumerate(zip(args.meshes, dests, strict=True)):
            mesh = meshops.read(path)
            if wp.needs_wall_path(trained, mesh):  # a coronary model on a wall: the user's own points
                cl = args.centerline[min(i, len(args.centerline) - 1)] if args.centerline else None
                res = wp.predict_wall(trained, mesh, path, glob, cl, args.radius_field, args.scale)
                meshops.write(res.mesh, staged.path(field_format(res.mesh, dest)))
                wp.report(res, path)
                continue
            result = predict_mesh(trained, mesh, globals=glob)
            meshops.write(result, staged.path(field_format(mesh, dest)))
        for dest in staged.commit():
            print(dest)
    return 0


def _predict_centerline(trained, path: str, glob: dict[str, float], scale: float, n_around: int,
                        spacing: float | None, radius_field: str | None = None):
    """The wall swept around the centerline in ``path`` (file units) with ``<target>_pred`` fields.

    The model sees the wall and centerline multiplied by ``scale`` (its own length units).
    """
    import sys
    import time

    import numpy as np

    from meshops.geometry.tube import tube_wall
    from meshops.graph.centerline import read_centerline
    from meshops.train.inference import predict_mesh

    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"--scale must be finite and > 0, got {scale}")
    cl = read_centerline(path, radius_field=radius_field, require_radius=True)
    wall = tube_wall(cl, n_around=n_around, spacing=spacing, where=str(path))
    fd = dict(wall.field_data)
    fd["centerline_points"] = fd["centerline_points"] * scale
    fd["centerline_radius"] = fd["centerline_radius"] * scale
    scaled = type(wall)(points=wall.points * scale, cells=wall.cells, point_data=wall.point_data,
                        cell_data=wall.cell_data, source=str(path), field_data=fd)
    t0 = time.perf_counter()
    pred = predict_mesh(trained, scaled, globals=glob)
    dt = time.perf_counter() - t0
    fields = {k: v for k, v in pred.point_data.items() if k.endswith("_pred")}
    r = wall.point_data["radius"] * scale
    print(f"{path}: {len(cl.branches)} branches, {wall.n_points} wall points, radius {r.min():.3g}-{r.max():.3g} "
          f"model units (scale {scale:g}), predicted in {dt:.2f} s")
    for k, v in fields.items():
        print(f"  {k}: min {float(np.min(v)):.4g} mean {float(np.mean(v)):.4g} max {float(np.max(v)):.4g}")
    from meshops.cli._wall_predict import centerline_warnings

    for w in centerline_warnings(trained, fd, glob):
        print(f"warning: {path}: {w}", file=sys.stderr)
    return wall.with_fields(fields)
