"""``meshops compare CHECKPOINT RESULT --truth p=pressure --truth wss=vWSS --units cgs --out DIR``.

Compares the coronary model with a CFD result from another solver (SimVascular, OpenFOAM,
Fluent exports ...), on the result's own wall points:

1. the wall is the boundary of the result's volume mesh (or the result's surface itself), less
   the flat caps (inlet/outlet faces, where WSS means nothing); the inlet is the cap the flow
   enters through when a velocity field is there, else the largest opening;
2. the truth fields are converted to the model's units (``--units``: ``cgs`` = cm, dyn/cm^2,
   mL/s; ``si`` = m, Pa, m^3/s; ``mmHg`` = mm, pressure in mmHg, WSS in Pa, mL/s); a vector
   WSS becomes its magnitude; a name like ``pressure`` picks ``pressure_<TIME>`` with ``--time``;
3. the model predicts on the same points (centerline extracted from the wall, or ``--centerline``)
   with the inlet flow ``--global Q=`` (in the result's units), or the flux of the velocity
   through the inlet cap when Q is not given;
4. pressure is taken relative to a reference (``--p-ref``): the mean over the outlet rims
   (default), the inlet rim, or absolute; the same reference is applied to truth and prediction;
5. per field: rel L2 = ||pred - truth|| / ||truth||, max |pred - truth|, Pearson correlation,
   over the wall points; and the geometry/flow against the model's training ranges.

Writes ``DIR/<stem>_compare.vtp`` (truth ``p``, ``wss_mag`` in Pa, ``*_pred``, ``*_error``),
``DIR/<stem>_compare.json`` (the numbers printed) and ``DIR/<stem>_<field>.png`` (truth |
prediction | error on the wall).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

HELP = "compare the coronary model with another solver's CFD result on its wall (rel L2, max error, correlation)"

#: unit system -> (model mm per file length unit, Pa per file pressure unit, Pa per file WSS unit, mL/s per file Q unit)
UNITS: dict[str, tuple[float, float, float, float]] = {
    "cgs": (10.0, 0.1, 0.1, 1.0),
    "si": (1000.0, 1.0, 1.0, 1e6),
    "mmHg": (1.0, 133.322387415, 1.0, 1.0),
}
#: model target name for each accepted --truth key
TARGETS = {"p": "p", "pressure": "p", "wss": "wss_mag", "wss_mag": "wss_mag"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a coronary model checkpoint (.pt)")
    p.add_argument("result", help="the other solver's result (.vtu volume or .vtp wall, any format meshops reads)")
    p.add_argument("--truth", action="append", required=True, metavar="MODEL=FILEFIELD",
                   help="field mapping, e.g. p=pressure, wss=vWSS (repeat)")
    p.add_argument("--units", choices=sorted(UNITS), required=True, help="the result's unit system")
    p.add_argument("--time", help="time step suffix: 'pressure' with --time 00200 reads 'pressure_00200'")
    p.add_argument("--p-ref", choices=("outlet-mean", "inlet", "absolute"), default="outlet-mean",
                   help="pressure reference for truth and prediction (default: mean over the outlet rims)")
    p.add_argument("--global", dest="globals", action="append", default=[], metavar="NAME=VALUE",
                   help="model globals in the result's units (Q; default: velocity flux through the inlet)")
    p.add_argument("--velocity", default="velocity", help="velocity field for the inlet flux and inlet detection")
    p.add_argument("--centerline", help="a centerline file (default: extracted from the wall)")
    p.add_argument("--radius-field", help="the centerline's radius point array (default: detected)")
    p.add_argument("--scale", type=float, help="override the length factor of --units (model mm per file unit)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-png", action="store_true", help="skip the pictures")


def resolve_field(point_data: dict[str, Any], name: str, time: str | None, where: str) -> str:
    """``name`` itself, or ``name_<time>``; the error lists what exists."""
    if time is not None and f"{name}_{time}" in point_data:
        return f"{name}_{time}"
    if name in point_data:
        return name
    steps = sorted(k[len(name) + 1 :] for k in point_data if re.fullmatch(re.escape(name) + r"_\d+", k))
    if steps and time is None:
        raise ValueError(f"{where}: '{name}' is stored per time step ({', '.join(steps[:6])}"
                         f"{' ...' if len(steps) > 6 else ''}); give --time")
    raise ValueError(f"{where}: no point field '{name}'{f' at time {time}' if time else ''}; point fields: "
                     f"{sorted(point_data)[:20]}")


def wall_of(mesh: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surface of the result: (point ids into the result, triangles over those ids, True per wall face)."""
    from meshops.geometry.wall import boundary_loops, find_caps
    from meshops.graph.centerline import wall_triangles

    _, tris = wall_triangles(mesh)
    ids, local = np.unique(tris, return_inverse=True)
    f = local.reshape(-1, 3)
    pts = mesh.points[ids]
    is_wall = np.ones(len(f), bool)
    if not boundary_loops(f, len(ids)):
        for cap in find_caps(pts, f):
            is_wall[cap.faces] = False  # type: ignore[attr-defined]
    return ids, f, is_wall


def metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """rel L2, max |error|, Pearson correlation, and the truth's scale (float64)."""
    pred = np.asarray(pred, np.float64)
    truth = np.asarray(truth, np.float64)
    err = pred - truth
    nt = float(np.linalg.norm(truth))
    if not (np.isfinite(err).all() and nt > 0):
        raise ValueError(f"compare: the truth is zero or non-finite (norm {nt}); no relative error")
    corr = float(np.corrcoef(pred, truth)[0, 1]) if pred.std() > 0 and truth.std() > 0 else float("nan")
    return {"rel_l2": float(np.linalg.norm(err) / nt), "max_abs_error": float(np.abs(err).max()),
            "correlation": corr, "truth_mean": float(truth.mean()), "pred_mean": float(pred.mean()),
            "n_points": int(len(truth))}


def _rims(pts: np.ndarray, f: np.ndarray, is_wall: np.ndarray, inlet_center: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Wall vertices on the rim of each opening: (inlet rim, [outlet rims])."""
    from meshops.geometry.wall import boundary_loops

    loops = boundary_loops(f[is_wall], len(pts))
    loops = [lp for lp in loops if len(lp) >= 5]
    if not loops:
        return np.zeros(0, np.int64), []
    d = [np.linalg.norm(pts[lp].mean(0) - inlet_center) for lp in loops]
    i = int(np.argmin(d))
    return loops[i], [lp for k, lp in enumerate(loops) if k != i]


def _inflow(mesh: Any, ids: np.ndarray, pts: np.ndarray, f: np.ndarray, is_wall: np.ndarray, vel: np.ndarray | None
            ) -> tuple[np.ndarray | None, float | None]:
    """Center of the cap the flow enters through and the inflow there (file units), when a velocity is given."""
    from meshops.geometry.surface import face_areas
    from meshops.geometry.wall import find_caps

    if vel is None or is_wall.all():
        return None, None
    caps = find_caps(pts, f)
    if not caps:
        return None, None
    v = vel[ids]
    flux = []
    for cap in caps:
        fc = f[cap.faces]  # type: ignore[attr-defined]
        vn = v[fc].mean(1) @ cap.normal  # the cap's outward normal (face windings may disagree)
        flux.append(float((vn * face_areas(pts, fc)).sum()))
    i = int(np.argmin(flux))  # most negative: inflow through an outward-oriented cap
    if flux[i] >= 0:
        return None, None
    return caps[i].center, -flux[i]


def run(args: argparse.Namespace) -> int:
    import meshops
    from meshops.cli import _wall_predict as wp
    from meshops.mesh import CellBlock, Mesh
    from meshops.models.coronary import training_ranges
    from meshops.train.inference import load_trained

    where = str(args.result)
    res_mesh = meshops.read(args.result)
    L, P, S, Qf = UNITS[args.units]
    L = args.scale if args.scale is not None else L
    mapping = _mapping(args.truth, res_mesh.point_data, args.time, where)
    glob = _globals(args.globals, Qf)
    ids, f, is_wall = wall_of(res_mesh)
    pts = res_mesh.points[ids]
    vname = _maybe(res_mesh.point_data, args.velocity, args.time)
    vel = np.asarray(res_mesh.point_data[vname], np.float64) if vname else None
    inlet_c, q_in = _inflow(res_mesh, ids, pts, f, is_wall, vel)
    if "Q" not in glob and q_in is not None:
        glob["Q"] = q_in * Qf
        print(f"{where}: Q = {q_in:.5g} (flux of '{vname}' through the inlet) = {glob['Q']:.5g} mL/s")
    trained = load_trained(args.checkpoint)
    wall = Mesh(points=pts, cells=[CellBlock("triangle", f)], source=where)
    if inlet_c is not None and not args.centerline:
        from meshops.geometry.centerline_extract import extract_centerlines

        cl = extract_centerlines(pts, f, inlet=inlet_c, where=where).centerline
        cl_file = Path(args.out) / f"{Path(where).stem}_centerline.vtp"
        Path(args.out).mkdir(parents=True, exist_ok=True)
        from meshops.graph.centerline import centerline_mesh

        meshops.write(centerline_mesh(cl), cl_file)
        centerline = str(cl_file)
    else:
        centerline = args.centerline
    pred = wp.predict_wall(trained, wall, where, glob, centerline, args.radius_field, L)
    keep = np.unique(f[is_wall])
    in_rim, out_rims = _rims(pts, f, is_wall, inlet_c if inlet_c is not None else pred.centerline.points[0])
    report = {"result": where, "units": args.units, "length_scale": L, "p_ref": args.p_ref,
              "globals_model_units": glob, "fields": {}, "training_ranges": {}}
    fields: dict[str, np.ndarray] = {}
    for target, src in mapping.items():
        truth = np.asarray(res_mesh.point_data[src], np.float64)[ids]
        truth = np.linalg.norm(truth.reshape(len(truth), -1), axis=1) if truth.ndim > 1 else truth
        truth = truth * (P if target == "p" else S)
        pr = np.asarray(pred.mesh.point_data[f"{target}_pred"], np.float64)
        if target == "p":
            truth, pr = _reference(truth, pr, args.p_ref, in_rim, out_rims, where)
        report["fields"][target] = metrics(pr[keep], truth[keep]) | {"truth_field": src}
        fields[target], fields[f"{target}_pred"], fields[f"{target}_error"] = truth, pr, pr - truth
    report["training_ranges"] = _ranges(pred, glob, training_ranges(trained.config))
    _write(args, where, wall, fields, keep, report)
    return 0


def _mapping(items: list[str], point_data: dict[str, Any], time: str | None, where: str) -> dict[str, str]:
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or k not in TARGETS:
            raise ValueError(f"--truth expects MODEL=FIELD with MODEL one of {sorted(TARGETS)}, got '{item}'")
        out[TARGETS[k]] = resolve_field(point_data, v, time, where)
    return out


def _maybe(point_data: dict[str, Any], name: str, time: str | None) -> str | None:
    for k in ((f"{name}_{time}" if time else None), name):
        if k and k in point_data and np.asarray(point_data[k]).ndim == 2:
            return k
    return None


def _globals(items: list[str], q_factor: float) -> dict[str, float]:
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep:
            raise ValueError(f"--global expects NAME=VALUE, got '{item}'")
        out[k] = float(v) * (q_factor if k == "Q" else 1.0)
    return out


def _reference(truth: np.ndarray, pred: np.ndarray, how: str, in_rim: np.ndarray, out_rims: list[np.ndarray],
               where: str) -> tuple[np.ndarray, np.ndarray]:
    if how == "absolute":
        return truth, pred
    rim = in_rim if how == "inlet" else (np.concatenate(out_rims) if out_rims else np.zeros(0, np.int64))
    if len(rim) == 0:
        raise ValueError(f"{where}: no {how} rim found on the wall for the pressure reference; use --p-ref absolute")
    return truth - truth[rim].mean(), pred - pred[rim].mean()


def _ranges(pred: Any, glob: dict[str, float], ranges: dict[str, tuple[float, float]]) -> dict[str, Any]:
    from meshops.geometry.polyline import arc_length

    cl = pred.centerline
    used = np.unique(np.concatenate(cl.branches))
    r = cl.radius[used] * pred.scale
    lengths = [float(arc_length(cl.points[b])[-1]) * pred.scale for b in cl.branches if len(b) > 1]
    have = {"radius": (float(r.min()), float(r.max())), "length": (min(lengths), max(lengths)),
            "Q": (glob.get("Q", float("nan")),) * 2}
    out = {}
    for k, (lo, hi) in have.items():
        tlo, thi = ranges[k]
        out[k] = {"value": [lo, hi], "training": [tlo, thi], "inside": bool(tlo <= lo and hi <= thi),
                  "factor_outside": float(max(hi / thi, tlo / lo, 1.0)) if lo > 0 else float("inf")}
    return out


def _write(args: argparse.Namespace, where: str, wall: Any, fields: dict[str, np.ndarray], keep: np.ndarray,
           report: dict[str, Any]) -> None:
    import meshops
    from meshops.atomic import write_text_atomic

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(where).stem
    sub = _submesh(wall, keep).with_fields({k: v[keep].astype(np.float64) for k, v in fields.items()})
    meshops.write(sub, out / f"{stem}_compare.vtp")
    write_text_atomic(json.dumps(report, indent=2) + "\n", out / f"{stem}_compare.json")
    print(f"{where}: {len(keep)} wall points; units {args.units} (length x{report['length_scale']:g} to mm), "
          f"pressure reference: {args.p_ref}")
    print(f"{'field':8s} {'rel L2':>8s} {'max err (Pa)':>13s} {'corr':>6s} {'truth mean':>11s} {'pred mean':>10s}")
    for k, m in report["fields"].items():
        print(f"{k:8s} {m['rel_l2']:8.4f} {m['max_abs_error']:13.5g} {m['correlation']:6.3f} "
              f"{m['truth_mean']:11.5g} {m['pred_mean']:10.5g}")
    for k, r in report["training_ranges"].items():
        state = "inside" if r["inside"] else f"OUTSIDE (x{r['factor_outside']:.3g})"
        print(f"  {k}: {r['value'][0]:.4g}-{r['value'][1]:.4g} vs training {r['training'][0]:g}-{r['training'][1]:g}: {state}")
    if not args.no_png:
        from meshops.viz.render import render_comparison

        for k in report["fields"]:
            info = render_comparison(sub, k, out / f"{stem}_{k}.png")
            print(info.path)
    print(out / f"{stem}_compare.json")


def _submesh(wall: Any, keep: np.ndarray) -> Any:
    """The wall faces over the kept points (faces touching a dropped point are dropped)."""
    from meshops.mesh import CellBlock, Mesh

    f = wall.cells[0].data
    remap = np.full(wall.n_points, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    g = remap[f]
    g = g[(g >= 0).all(1)]
    return Mesh(points=wall.points[keep], cells=[CellBlock("triangle", g)], source=wall.source)
