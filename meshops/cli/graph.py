"""``meshops graph PATH``: build a (multi-scale) graph from a mesh, point cloud or centerline and save it."""

from __future__ import annotations

import argparse
import json
import logging

HELP = "build a multi-scale graph from a mesh / point cloud / centerline and save it (graph.pt)"

log = logging.getLogger("meshops.cli.graph")


def _floats(s: str, option: str = "--ratio") -> list[float | None]:
    from meshops.cli._errors import parse_number

    return [None if v.strip().lower() in ("", "none", "auto") else parse_number(option, v, positive=True)
            for v in s.split(",")]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="mesh file (any format meshops reads), or a centerline .vtp with --centerline")
    p.add_argument("--out", default="graph.pt", help="output file (default graph.pt); load with meshops.graph.load_graph")
    p.add_argument("--levels", type=int, default=1, help="number of levels (1 = no hierarchy)")
    p.add_argument("--ratio", default="0.25", help="size ratio per coarse level: one value or a comma list")
    p.add_argument("--radius", default=None, help="radius per level (comma list, 'auto' for automatic)")
    p.add_argument("--k", default=None, help="kNN per level (comma list, 'none' for radius edges)")
    p.add_argument("--edges", default="auto", choices=["auto", "mesh", "knn", "radius"], help="level-0 edges")
    p.add_argument("--sampling", default="auto", choices=["auto", "fps", "grid", "voxel"],
                   help="coarse-level sampling (auto: exact FPS up to 20,000 coarse nodes, linear-time grid above)")
    p.add_argument("--fields", default="", help="point fields for x, comma separated")
    p.add_argument("--time", default=None, help="time step to read (for time series)")
    p.add_argument("--centerline", action="store_true", help="read PATH as a branched centerline")
    p.add_argument("--radius-field", help="--centerline: the radius point array (default: detected)")


def run(args: argparse.Namespace) -> int:
    import time

    from meshops.cli._errors import UsageError, parse_number
    from meshops.graph import GraphSpec, build, centerline_graph, read_centerline, save_graph

    if args.levels < 1:
        raise UsageError(f"--levels: expected an integer >= 1, got {args.levels}")
    ratio = _floats(args.ratio, "--ratio")
    spec_d: dict = {
        "levels": args.levels,
        "ratio": ratio[0] if len(ratio) == 1 else ratio,
        "edges": args.edges,
        "sampling": args.sampling,
        "node_fields": [f for f in args.fields.split(",") if f],
    }
    if args.radius:
        r = _floats(args.radius, "--radius")
        spec_d["radius"] = r[0] if len(r) == 1 else r
    if args.k:
        k = [None if v.strip().lower() in ("", "none") else parse_number("--k", v, int, positive=True)
             for v in args.k.split(",")]
        spec_d["k"] = k[0] if len(k) == 1 else k
    spec = GraphSpec.coerce(spec_d)
    t0 = time.perf_counter()
    if args.centerline:
        cl = read_centerline(args.path, radius_field=args.radius_field)
        data = centerline_graph(cl, spec)
    else:
        from meshops.io import read

        mesh = read(args.path, time=None if args.time is None else args.time if args.time in ("first", "latest")
                    else parse_number("--time", args.time))
        _check_node_fields(mesh, spec_d["node_fields"], args.path)
        _warn_degenerate(mesh, args.path)
        data = build(mesh, spec)
    dt = time.perf_counter() - t0
    out = save_graph(data, args.out, spec)
    sizes = [data.level_size(lv) for lv in range(spec.levels)]
    edges = [int(data.edge_index.shape[1])] + [int(data[f"edge_index_{lv}"].shape[1]) for lv in range(1, spec.levels)]
    print(json.dumps({"out": str(out), "nodes": sizes, "edges": edges, "seconds": round(dt, 3)}))
    return 0


def _check_node_fields(mesh, names: list[str], where: str) -> None:
    """Refuse node fields with NaN/inf values: the saved graph would carry them silently."""
    import numpy as np

    for n in names:
        if n in mesh.point_data:
            bad = int((~np.isfinite(np.asarray(mesh.point_data[n], dtype=np.float64))).sum())
            if bad:
                raise ValueError(f"{where}: point field '{n}' has {bad} non-finite value(s); refusing to build "
                                 "a graph with them")


def _warn_degenerate(mesh, where: str) -> None:
    """Warn about cells with a repeated node or zero length/area/volume (their edges mislead a graph)."""
    from meshops.mesh import count_degenerate

    deg = count_degenerate(mesh)
    if any(deg.values()):
        log.warning("%s: %d cell(s) with a repeated node and %d of zero length/area/volume; the graph keeps "
                    "their non-degenerate edges only", where, deg["repeated_ids"], deg["zero_measure"])
