"""Coronary-model prediction on a user's own wall surface (used by ``meshops predict``/``compare``).

The model's RBF decoder is evaluated at the user's wall points: the centerline (extracted from the
wall, or read from ``--centerline``) is attached to the wall in the model's length unit, and the
result carries ``p_pred``, ``wss_mag_pred`` (the model's field units: Pa) plus where each point
sits on the centerline (``cl_s`` arc length along its branch, ``cl_angle``, ``cl_branch``,
``cl_distance``, in the file's length unit) on the user's points, in the user's order. Where the
output goes (STL/OBJ -> .vtp, staging, no overwriting) is ``meshops.cli._outputs``' rule.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Wall formats that cannot store point fields: their predictions go to a .vtp beside them.
FIELDLESS = (".stl", ".obj", ".ply", ".off")


def is_centerline_model(trained: Any) -> bool:
    from meshops.models.coronary import CenterlineRBF

    return isinstance(trained.model, CenterlineRBF)


def needs_wall_path(trained: Any, mesh: Any) -> bool:
    """A coronary model given a mesh without a stored centerline: predict on it as a wall."""
    return is_centerline_model(trained) and "centerline_points" not in (mesh.field_data or {})


@dataclass
class WallPrediction:
    mesh: Any  # the user's mesh with the predicted and projection fields
    centerline: Any  # Centerline in file units
    scale: float  # model length units per file unit
    unit: str  # "given" or the detected unit name
    warnings: list[str]


def wall_centerline(mesh: Any, path: str, centerline: str | None, radius_field: str | None) -> Any:
    """The centerline for a wall: read from ``centerline`` (radius required) or extracted from the wall."""
    from meshops.graph.centerline import read_centerline, wall_triangles

    if centerline:
        return read_centerline(centerline, radius_field=radius_field, require_radius=True)
    from meshops.geometry.centerline_extract import extract_centerlines

    pts, faces = wall_triangles(mesh)
    return extract_centerlines(pts, faces, where=str(path)).centerline


def predict_wall(trained: Any, mesh: Any, path: str, glob: dict[str, float], centerline: str | None = None,
                 radius_field: str | None = None, scale: float | None = None) -> WallPrediction:
    """Predict the coronary model's fields on the points of ``mesh`` (a wall surface).

    Shapes
    ------
    mesh.points (n, 3) -> result mesh with (n,) fields ``p_pred``, ``wss_mag_pred``, ``cl_*``.
    """
    from meshops.geometry.centerline import project_points
    from meshops.geometry.tube import branch_paths
    from meshops.models.coronary import detect_length_scale, training_ranges
    from meshops.train.inference import predict_mesh

    cl = wall_centerline(mesh, path, centerline, radius_field)
    ranges = training_ranges(trained.config)
    paths = branch_paths(cl)
    if not paths:
        raise ValueError(f"{path}: the centerline has no branch with length")
    used = np.unique(np.concatenate(paths))
    if scale is None:
        scale, unit = detect_length_scale(cl.radius[used])
    else:
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"--scale must be finite and > 0, got {scale}")
        unit = "given"
    fd = dict(mesh.field_data or {})
    fd["centerline_points"] = cl.points * scale
    fd["centerline_radius"] = cl.radius * scale
    fd["centerline_branches"] = paths
    scaled = type(mesh)(points=mesh.points * scale, cells=mesh.cells, point_data=mesh.point_data,
                        cell_data=mesh.cell_data, source=mesh.source, field_data=fd)
    pred = predict_mesh(trained, scaled, globals=glob)
    fields = {k: v for k, v in pred.point_data.items() if k.endswith("_pred")}
    proj = project_points(mesh.points, cl)
    fields.update(cl_s=proj.s, cl_angle=proj.angle, cl_branch=proj.branch.astype(np.int32), cl_distance=proj.distance)
    warnings = _range_warnings(cl, used, scale, glob, ranges, proj, path, stored_range_warnings(trained, fd, glob))
    out = mesh.with_fields(fields)
    out.field_data = {k: v for k, v in (mesh.field_data or {}).items()}
    out.field_data["length_scale_to_model"] = np.array([scale])
    return WallPrediction(out, cl, scale, unit, warnings)


def stored_range_warnings(trained: Any, field_data: dict[str, Any], glob: dict[str, float]) -> list[str] | None:
    """Warnings from the training ranges stored in a tree-mode checkpoint (None for older checkpoints).

    ``field_data`` holds the centerline in model units (``centerline_points``, ``_radius``, ``_branches``).
    """
    from meshops.models.coronary import range_warnings

    model = trained.model
    if not (hasattr(model, "stored_ranges") and model.stored_ranges()) or "Q" not in glob:
        return None
    import torch

    from meshops.models.coronary import centerline_inputs

    d = type("Attached", (), {})()
    for k, v in centerline_inputs(field_data["centerline_points"], field_data["centerline_radius"], glob["Q"],
                                  branches=field_data.get("centerline_branches")).items():
        setattr(d, k, v)
    d.cl_q = torch.tensor([float(glob["Q"])])
    return range_warnings(model, d)


def _range_warnings(cl: Any, used: np.ndarray, scale: float, glob: dict[str, float],
                    ranges: dict[str, tuple[float, float]], proj: Any, path: str,
                    stored: list[str] | None = None) -> list[str]:
    """Lines naming each input outside the model's training ranges, and a badly fitting centerline."""
    from meshops.geometry.polyline import arc_length

    far = proj.distance > 3.0 * float(np.max(cl.radius[used]))
    fit = [f"{int(far.sum())} wall points lie more than 3 radii from the centerline (first: point "
           f"{int(np.flatnonzero(far)[0])}); is it the centerline of this wall?"] if far.any() else []
    if stored is not None:
        return stored + fit
    out = []
    r = cl.radius[used] * scale
    lo, hi = ranges["radius"]
    if r.min() < lo or r.max() > hi:
        out.append(f"radius {r.min():.3g}-{r.max():.3g} mm is outside the training range {lo:g}-{hi:g} mm")
    q = glob.get("Q")
    if q is not None and not (ranges["Q"][0] <= q <= ranges["Q"][1]):
        out.append(f"Q = {q:g} mL/s is outside the training range {ranges['Q'][0]:g}-{ranges['Q'][1]:g} mL/s")
    lengths = [float(arc_length(cl.points[b])[-1]) * scale for b in cl.branches if len(b) > 1]
    if len(cl.branches) > 1:
        out.append(f"the centerline has {len(cl.branches)} branches; the model was trained on single vessels")
    elif lengths and not (ranges["length"][0] <= lengths[0] <= ranges["length"][1]):
        out.append(f"vessel length {lengths[0]:.3g} mm is outside the training range "
                   f"{ranges['length'][0]:g}-{ranges['length'][1]:g} mm")
    return out + fit


def check_unique_outputs(paths: list[str], dests: list[Path]) -> None:
    """Refuse a run where two inputs would write the same file (``a.vtp`` and ``a.stl``: both ``a.vtp``)."""
    seen: dict[Path, str] = {}
    for p, d in zip(paths, dests, strict=True):
        final = d.with_suffix(".vtp") if d.suffix.lower() in FIELDLESS else d
        if final in seen:
            raise ValueError(f"{p} and {seen[final]} would both be written to {final}; rename one or run them apart")
        seen[final] = p


def report(res: WallPrediction, path: str) -> None:
    """Print what was done (units, sizes, field ranges) and warn on stderr."""
    unit = "given by --scale" if res.unit == "given" else f"detected: the file is in {res.unit}"
    cl = res.centerline
    print(f"{path}: {res.mesh.n_points} wall points, centerline with {cl.n_branches} branches; length scale "
          f"{res.scale:g} model mm per file unit ({unit}); p in Pa, WSS in Pa")
    for k, v in res.mesh.point_data.items():
        if k.endswith("_pred"):
            print(f"  {k}: min {float(np.min(v)):.4g} mean {float(np.mean(v)):.4g} max {float(np.max(v)):.4g}")
    for w in res.warnings:
        print(f"warning: {path}: {w}", file=sys.stderr)


def centerline_warnings(trained: Any, field_data: dict[str, Any], glob: dict[str, float]) -> list[str]:
    """Range warnings for a centerline given in model units (``meshops predict --centerline``).

    The stored training ranges of a tree-mode checkpoint when present, else the default ranges of
    :data:`meshops.models.coronary.DEFAULT_TRAINING_RANGES` (radius, inlet flow, single-vessel length).
    """
    from meshops.geometry.polyline import arc_length
    from meshops.models.coronary import training_ranges

    stored = stored_range_warnings(trained, field_data, glob)
    if stored is not None:
        return stored
    ranges = training_ranges(trained.config)
    r = np.asarray(field_data["centerline_radius"], dtype=np.float64)
    out = []
    if r.min() < ranges["radius"][0] or r.max() > ranges["radius"][1]:
        out.append(f"radius {r.min():.3g}-{r.max():.3g} mm is outside the training range "
                   f"{ranges['radius'][0]:g}-{ranges['radius'][1]:g} mm")
    q = glob.get("Q")
    if q is not None and not (ranges["Q"][0] <= q <= ranges["Q"][1]):
        out.append(f"Q = {q:g} mL/s is outside the training range {ranges['Q'][0]:g}-{ranges['Q'][1]:g} mL/s")
    paths = field_data.get("centerline_branches") or []
    if len(paths) > 1:
        out.append(f"the centerline has {len(paths)} branches; the model was trained on single vessels")
    elif paths:
        length = float(arc_length(np.asarray(field_data["centerline_points"])[paths[0]])[-1])
        if not (ranges["length"][0] <= length <= ranges["length"][1]):
            out.append(f"vessel length {length:.3g} mm is outside the training range "
                       f"{ranges['length'][0]:g}-{ranges['length'][1]:g} mm")
    return out
