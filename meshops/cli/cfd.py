"""``meshops cfd --centerline FILE --global Q=... --out DIR``: OpenFOAM ground truth on any centerline tree.

The pipeline of the ``coronary_trees`` dataset (:mod:`meshops.cfd`) on a user centerline (each
branch resampled and lightly smoothed over about one radius, :func:`meshops.cfd.tree.smooth_tree`,
since segmented centerlines are noisy at the point scale): the wall
is the union of the branch tubes lofted along the centerline (gmsh OpenCASCADE), meshed with
tetrahedra sized by the local radius, solved with steady laminar simpleFoam (blood: mu 0.0035 Pa s,
rho 1060 kg/m^3; parabolic inlet at the root, Murray-law outlet flows, the largest outlet is the
pressure reference). Writes ``DIR/<stem>_cfd.vtp`` (the wall in the file's length units, point and
face fields ``p`` in Pa relative to the reference outlet, ``wss`` and ``wss_mag`` in Pa) and
``DIR/<stem>_cfd.json`` (mesh size, iterations, residuals, timings, per-outlet flow and pressure,
mass balance). A run that diverges or does not meet the residual targets is an error (exit 1)
and nothing is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run OpenFOAM (simpleFoam) on the wall of a centerline tree; writes the wall with p and WSS"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--centerline", required=True, metavar="FILE",
                   help="a centerline file (.vtp/.vtk/.csv/.dat with a radius array), as for meshops predict")
    p.add_argument("--radius-field", help="the centerline's radius point array (default: detected)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="millimetres per file length unit (10: file in cm, 1: file in mm, 1000: file in m); default 1")
    p.add_argument("--global", dest="globals", action="append", default=[], metavar="NAME=VALUE",
                   help="Q=<inlet flow in mL/s> (required)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--wall-size", type=float, default=None, help="tet size at the wall / local radius (default 0.22)")
    p.add_argument("--core-size", type=float, default=None, help="tet size on the axis / local radius (default 0.44)")
    p.add_argument("--layers", type=int, default=None, help="prism layers at the wall (default 3; 0: none)")
    p.add_argument("--max-iter", type=int, default=None, help="simpleFoam iteration limit (default 1000)")
    p.add_argument("--keep-case", action="store_true", help="also keep the OpenFOAM case as DIR/<stem>_foam/")


def _tree(args: argparse.Namespace):
    import numpy as np

    from meshops.cfd.tree import Tree, clearance, smooth_tree, tree_from_centerline, validate_tree
    from meshops.graph.centerline import read_centerline

    s = args.scale
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"--scale must be finite and > 0, got {s}")
    cl = read_centerline(args.centerline, radius_field=args.radius_field, require_radius=True)
    t = smooth_tree(tree_from_centerline(cl, where=str(args.centerline)))
    tree = Tree([p * s for p in t.points], [r * s for r in t.radius], t.parent, t.attach)
    validate_tree(tree, where=str(args.centerline))
    c, pair = clearance(tree)
    if c < 1.0:
        import logging

        logging.getLogger("meshops.cfd").warning(
            "%s: branches %d and %d come within %.2f x the sum of their radii away from a junction: "
            "their tubes merge there", args.centerline, pair[0], pair[1], c)
    return tree


def run(args: argparse.Namespace) -> int:
    import json
    import shutil
    import tempfile
    import time
    from dataclasses import asdict

    import numpy as np

    import meshops
    from meshops.cfd.foam import SolverSettings, openfoam_available
    from meshops.cfd.tree_mesh import TreeMeshSettings
    from meshops.cfd.tree_solve import DEFAULT_SOLVER, solve_tree
    from meshops.cli._errors import UsageError, parse_assignments
    from meshops.cli._outputs import Staged
    from meshops.mesh import CellBlock, Mesh

    glob = parse_assignments("--global", args.globals)
    if set(glob) != {"Q"}:
        raise UsageError(f"--global: give exactly Q=<inlet flow, mL/s>, got {sorted(glob) or 'nothing'}")
    Q = float(glob["Q"])
    if not (np.isfinite(Q) and Q > 0):
        raise ValueError(f"--global Q must be finite and > 0 (mL/s), got {Q}")
    if not openfoam_available() or shutil.which("gmshToFoam") is None:
        raise RuntimeError("OpenFOAM (simpleFoam, gmshToFoam) is not installed (Debian: apt install openfoam)")
    tree = _tree(args)
    ms = TreeMeshSettings(**{k: v for k, v in (("wall_size", args.wall_size), ("core_size", args.core_size),
                                               ("layers", args.layers)) if v is not None})
    ss = SolverSettings(**{**DEFAULT_SOLVER, **({"max_iter": args.max_iter} if args.max_iter else {})})
    out, stem = Path(args.out), Path(args.centerline).stem
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="meshops_cfd_") as tmp:
        res = solve_tree(tree, Q, Path(tmp) / "foam", ms, ss, where=str(args.centerline))
        elapsed = time.perf_counter() - t0
        f32 = np.float32
        wall = Mesh(res["wall_points"] / args.scale, [CellBlock("triangle", res["wall_tris"])],
                    point_data={"p": res["p"].astype(f32), "wss": res["wss"].astype(f32),
                                "wss_mag": res["wss_mag"].astype(f32)},
                    cell_data={"p": res["p_face"].astype(f32), "wss": res["wss_face"].astype(f32),
                               "wss_mag": np.linalg.norm(res["wss_face"], axis=1).astype(f32)})
        card = {"centerline": str(args.centerline), "scale_mm_per_file_unit": args.scale, "Q_mL_s": Q,
                "units": {"length": "file units (mm / scale)", "p": "Pa, relative to the reference outlet",
                          "wss": "Pa (blood's traction on the wall)"},
                "topology": {"parent": tree.parent, "attach": tree.attach, "outlets": tree.outlets()},
                "outlets": res["outlets"], "mass_balance": res["mass_balance"], **res["info"],
                "total_time_s": round(elapsed, 2), "mesh_settings": asdict(ms)}
        with Staged(out) as staged:
            meshops.write(wall, staged.path(out / f"{stem}_cfd.vtp"))
            jp = staged.path(out / f"{stem}_cfd.json")
            jp.write_text(json.dumps(card, indent=1, default=float))
            written = staged.commit()
        if args.keep_case:
            shutil.copytree(Path(tmp) / "foam", out / f"{stem}_foam", dirs_exist_ok=True)
    _report(args.centerline, tree, res, elapsed)
    for d in written:
        print(d)
    return 0


def _report(path: str, tree, res: dict, elapsed: float) -> None:
    i = res["info"]
    m, s, mb = i["mesh"], i["solver"], res["mass_balance"]
    lay = m.get("layers") or {}
    layers = (f", {lay['layers']} wall layers on {100 * lay['coverage']:.1f} % of the wall" if lay else "")
    t_mesh = m["geometry_time_s"] + m["meshing_time_s"] + lay.get("time_s", 0.0)
    print(f"{path}: {tree.n_branches} branches, {len(res['outlets'])} outlets; {m['cells']} cells (polyhedral dual "
          f"of {m['tetrahedra']} tetrahedra{layers}), "
          f"{m['wall_points']} wall points; {s['iterations']} simpleFoam iterations (converged), "
          f"total {elapsed:.1f} s (mesh {t_mesh:.1f} s, solver {s['solver_wall_time_s']:.1f} s)")
    print("  final initial residuals: " + ", ".join(f"{k} {v:.2e}" for k, v in s["final_initial_residuals"].items()))
    print(f"  Re_inlet {i['flow']['Re_inlet']:.0f}; inlet p {i['flow']['inlet_p_mean_Pa']:.4g} Pa; "
          f"mass imbalance {mb['imbalance_rel']:.1e}")
    for b, o in res["outlets"].items():
        ref = " (reference, p = 0)" if o["reference"] else ""
        print(f"  outlet of branch {b}: flow {o['flow_mL_s']:.4g} mL/s (Murray target {o['target_flow_mL_s']:.4g}), "
              f"mean p {o['p_mean_Pa']:.4g} Pa{ref}")
    print(f"  wall p {res['p'].min():.4g} .. {res['p'].max():.4g} Pa; |WSS| mean {res['wss_mag'].mean():.4g}, "
          f"max {res['wss_mag'].max():.4g} Pa")
