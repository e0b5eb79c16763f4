"""Inputs of the centerline model (:mod:`meshops.models.coronary`): the centerline resampled with its
frames and invariant features (``centerline_inputs``), attached to a wall graph, the checks of a
user's centerline (units, radii, inlet flow) and the training ranges a checkpoint stores.

The tensors and their shapes are described in :mod:`meshops.models.coronary`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from meshops.geometry.centerline import curvature_torsion, resample, rotation_minimizing_frames, tangents
from meshops.geometry.vessel_tree import vessel_tree
from meshops.models.coronary_tree import (
    RANGE_NAMES,
    tree_tensors,
)

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_TRAINING_RANGES", "input_ranges", "range_warnings", "detect_length_scale", "training_ranges", "CL_FEATURES", "N_FLOW_FEATURES", "point_features", "attach_case_centerline", "attach_centerline", "centerline_inputs", "validate_centerline"]

#: Geometry and flow ranges of the coronary_synthetic training draw (``datasets/coronary_synthetic/
#: vessel.py`` RANGES: inlet radius 1.5-2.0 mm tapering to >= 1 mm, stenosis throats down to
#: sqrt(0.2) of that, length 30-50 mm, Q 0.5-2.5 mL/s), used when a checkpoint stores none
#: (``config["training_ranges"]``). Units: mm, mL/s.
DEFAULT_TRAINING_RANGES: dict[str, tuple[float, float]] = {
    "radius": (0.45, 2.0),
    "length": (30.0, 50.0),
    "Q": (0.5, 2.5),
}


def training_ranges(config: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """The training ranges stored in a checkpoint config, else :data:`DEFAULT_TRAINING_RANGES`."""
    stored = config.get("training_ranges") or {}
    out = dict(DEFAULT_TRAINING_RANGES)
    for k, v in stored.items():
        try:
            lo, hi = (float(v[0]), float(v[1])) if not isinstance(v, dict) else (float(v["min"]), float(v["max"]))
        except (TypeError, KeyError, IndexError, ValueError):
            continue
        out[k] = (lo, hi)
    return out


def detect_length_scale(radius: np.ndarray, model_range: tuple[float, float] = (1.0, 2.0)) -> tuple[float, str]:
    """Model length units (mm) per file unit, guessed from the vessel radii: m, cm or mm.

    The unit that brings the median radius closest (in log) to the middle of ``model_range``
    (a radius range in mm) wins. An aorta in cm (r ~ 1) and a coronary in mm (r ~ 1.5) look alike:
    the guess is printed and ``--scale`` overrides it.

    Shapes
    ------
    radius (m,) -> (factor, unit name)
    """
    r = float(np.median(np.asarray(radius, dtype=np.float64)))
    if not (np.isfinite(r) and r > 0):
        raise ValueError(f"detect_length_scale: median radius {r} is not finite and > 0")
    mid = np.sqrt(model_range[0] * model_range[1])
    units = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
    name = min(units, key=lambda u: abs(np.log(units[u] * r / mid)))
    return units[name], name


#: Per-point centerline features: name -> (power of length in its unit, log1p-transformed).
CL_FEATURES: dict[str, tuple[int, bool]] = {
    "radius": (1, False),
    "curvature": (-1, False),
    "torsion": (-1, False),
    "s_norm": (0, False),  # arc length / branch length
    "s": (1, False),  # arc length from the branch start
    "s_to_end": (1, False),  # arc length left to the branch end
    "side_branch": (0, False),  # 0 on the main vessel, 1 on side branches
    "dr_ds": (0, False),  # radius slope
    "kappa_n": (-1, False),  # curvature vector dT/ds along the frame normal
    "kappa_b": (-1, False),  # ... and binormal (tells the decoder where the inner wall is)
    "r_rel": (0, False),  # radius / largest radius of the case (stenosis severity)
    "resistance_to_end": (-3, True),  # int_s^L ds / r^4: Poiseuille resistance left to the outlet
}


def validate_centerline(points: Any, radius: Any, Q: float | None = None, where: str = "centerline") -> tuple[np.ndarray, np.ndarray]:
    """Check centerline points, radii and the inlet flow; return float64 arrays.

    Raises ``ValueError`` naming ``where``, the field and the offending value for fewer than two
    points, non-finite coordinates, a radius count mismatch, non-positive or non-finite radii,
    and a non-positive or non-finite inlet flow.

    Shapes
    ------
    points (m, 3), radius (m,) -> the same as float64
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"{where}: centerline points must have shape (m, 3), got {p.shape}")
    if len(p) < 2:
        raise ValueError(f"{where}: the centerline has {len(p)} point(s); at least 2 are needed")
    bad = ~np.isfinite(p).all(1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: centerline point {i} has a non-finite coordinate {p[i].tolist()}")
    r = np.asarray(radius, dtype=np.float64).reshape(-1)
    if len(r) != len(p):
        raise ValueError(f"{where}: radius has {len(r)} values but the centerline has {len(p)} points")
    bad = ~(np.isfinite(r) & (r > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: radius at centerline point {i} is {r[i]}; radii must be finite and > 0")
    if Q is not None and not (math.isfinite(float(Q)) and float(Q) > 0):
        raise ValueError(f"{where}: inlet flow Q = {Q}; it must be finite and > 0")
    return p, r


def _normal0(t: np.ndarray, p: np.ndarray, anchor: np.ndarray) -> np.ndarray | None:
    """An initial normal built from the curve itself (rotates with it), or None when straight."""
    t0 = t[0]
    for v in (t[-1] - t[0], anchor - p[len(p) // 2]):
        perp = v - np.dot(v, t0) * t0
        n = np.linalg.norm(perp)
        if n > 1e-3 * max(1.0, np.linalg.norm(v)):
            return perp / n
    return None


def centerline_inputs(
    points: Any,
    radius: Any,
    Q: float | None = None,
    branches: Sequence[Any] | None = None,
    n_points: int = 128,
    where: str = "centerline",
) -> dict[str, Tensor]:
    """Resample a (branched) centerline and compute its frames and features for the model.

    Parameters
    ----------
    points, radius : centerline points and lumen radii.
    Q : inlet flow rate (checked > 0 when given).
    branches : ordered point-index paths, one per branch, the main vessel first (default: the
        points in order form one branch).
    n_points : total number of resampled points, shared among branches by length (>= 3 each).
    where : the name used in error messages (a file or a case).

    Returns
    -------
    dict with ``cl_pos``, ``cl_frame``, ``cl_radius``, ``cl_arclength``, ``cl_branch``, ``cl_feat``,
    ``cl_batch`` (see the module docstring).

    Shapes
    ------
    points (m, 3), radius (m,) -> cl_pos (M, 3), cl_frame (M, 3, 3), cl_feat (M, len(CL_FEATURES)), ...
    """
    p, r = validate_centerline(points, radius, Q, where)
    paths, lengths = _branch_paths(p, branches, where)
    total = sum(lengths)
    anchor = p.mean(0)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("pos", "frame", "radius", "s", "branch", "feat")}
    tree = vessel_tree(p, r, paths)
    r_max = float(r.max())
    for bi, (b, length) in enumerate(zip(paths, lengths, strict=False)):
        nb = max(3, int(round(n_points * length / total)))
        pts, frame, rad, s, feat = _branch_stations(p[b], r[b], nb, length, bi > 0, anchor, r_max)
        out["pos"].append(pts)
        out["frame"].append(frame)
        out["radius"].append(rad)
        out["s"].append(s)
        out["branch"].append(np.full(nb, bi, dtype=np.int64))
        out["feat"].append(feat)
    m = sum(len(x) for x in out["pos"])
    return tree_tensors(tree, out["s"], out["radius"], out["pos"]) | {
        "cl_pos": torch.from_numpy(np.concatenate(out["pos"])).float(),
        "cl_frame": torch.from_numpy(np.concatenate(out["frame"])).float(),
        "cl_radius": torch.from_numpy(np.concatenate(out["radius"])).float(),
        "cl_arclength": torch.from_numpy(np.concatenate(out["s"])).float(),
        "cl_branch": torch.from_numpy(np.concatenate(out["branch"])),
        "cl_feat": torch.from_numpy(np.concatenate(out["feat"])).float(),
        "cl_batch": torch.zeros(m, dtype=torch.long),
    }


def _branch_paths(p: np.ndarray, branches: Sequence[Any] | None, where: str) -> tuple[list[np.ndarray], list[float]]:
    """The branches as point-index paths (default: one, the points in order) and their lengths, checked."""
    if branches is None:
        branches = [np.arange(len(p))]
    paths = [np.asarray(b, dtype=np.int64).ravel() for b in branches]
    for i, b in enumerate(paths):
        if len(b) < 2:
            raise ValueError(f"{where}: branch {i} has {len(b)} point(s); at least 2 are needed")
        if b.min() < 0 or b.max() >= len(p):
            raise ValueError(f"{where}: branch {i} indexes point {int(b.max())} but there are {len(p)} points")
    lengths = [float(np.linalg.norm(np.diff(p[b], axis=0), axis=1).sum()) for b in paths]
    for i, length in enumerate(lengths):
        if length <= 0:
            raise ValueError(f"{where}: branch {i} has zero length")
    return paths, lengths


def _branch_stations(points: np.ndarray, radius: np.ndarray, nb: int, length: float, side: bool,
                     anchor: np.ndarray, r_max: float) -> tuple[np.ndarray, ...]:
    """One branch resampled at ``nb`` stations: points, frames (nb, 3, 3), radius, arc length, features."""
    pts, s, rad = resample(points, n=nb, values=radius)
    assert rad is not None
    t = tangents(pts)
    T, N, B = rotation_minimizing_frames(pts, t, _normal0(t, pts, anchor))
    kappa, tau = curvature_torsion(pts)
    dt = np.gradient(T, s, axis=0, edge_order=2)
    inv_r4 = rad**-4.0
    seg = 0.5 * (inv_r4[1:] + inv_r4[:-1]) * np.diff(s)
    r_min = max(rad.min(), 1e-12)
    feats = {
        "radius": rad,
        "curvature": kappa,
        "torsion": np.clip(tau, -1.0 / r_min, 1.0 / r_min),
        "s_norm": s / length,
        "s": s,
        "s_to_end": length - s,
        "side_branch": np.full(nb, float(side)),
        "dr_ds": np.gradient(rad, s, edge_order=2),
        "kappa_n": np.einsum("ij,ij->i", dt, N),
        "kappa_b": np.einsum("ij,ij->i", dt, B),
        "r_rel": rad / r_max,
        "resistance_to_end": np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]]),
    }
    return pts, np.stack([T, N, B], 1), rad, s, np.stack([feats[k] for k in CL_FEATURES], 1)


def attach_centerline(
    data: Any,
    points: Any,
    radius: Any,
    Q: float,
    branches: Sequence[Any] | None = None,
    n_points: int = 128,
    where: str = "centerline",
) -> Any:
    """A copy of ``data`` (a graph of the wall) with the centerline tensors and ``u = [[Q]]`` attached.

    The input graph is not modified. See :func:`centerline_inputs` for the arguments.
    """
    out = data.clone()
    for k, v in centerline_inputs(points, radius, Q, branches, n_points, where).items():
        setattr(out, k, v)
    out.cl_q = torch.tensor([float(Q)], dtype=torch.float32)
    if getattr(out, "u", None) is None:
        out.u = torch.tensor([[float(Q)]], dtype=torch.float32)
    return out


def attach_case_centerline(data: Any, case: Any, n_points: int = 128, q_name: str = "Q") -> Any:
    """:func:`attach_centerline` with the centerline a dataset stores on its case.

    Reads ``case.mesh.field_data["centerline_points"]`` and ``["centerline_radius"]`` (the layout
    of the coronary_synthetic dataset; optional ``["centerline_branches"]``: a list of point-index
    paths) and the inlet flow ``case.globals[q_name]``. The raw flow also goes to ``cl_q``, which
    the model prefers over ``u`` (a training pipeline may have normalized ``u``).
    """
    fd = getattr(case.mesh, "field_data", {}) or {}
    missing = [k for k in ("centerline_points", "centerline_radius") if k not in fd]
    if missing:
        raise ValueError(f"case '{case.name}': field_data has no {missing} (needed for the centerline model)")
    if q_name not in case.globals:
        raise ValueError(f"case '{case.name}': no global '{q_name}' (the inlet flow); it has {sorted(case.globals)}")
    return attach_centerline(
        data,
        fd["centerline_points"],
        fd["centerline_radius"],
        case.globals[q_name],
        branches=fd.get("centerline_branches"),
        n_points=n_points,
        where=f"case '{case.name}'",
    )


def input_ranges(data: Any) -> np.ndarray:
    """(min, max) of the quantities in :data:`RANGE_NAMES` on one attached graph (model units).

    Shapes
    ------
    -> (len(RANGE_NAMES), 2)
    """
    r = data.cl_radius.double().numpy()
    q = float(data.cl_q.reshape(-1)[0])
    qb = q * data.cl_qfrac.double().numpy() if getattr(data, "cl_qfrac", None) is not None else np.array([q])
    br = data.cl_branch.numpy()
    s = data.cl_arclength.double().numpy()
    lengths = np.array([s[br == b].max() for b in np.unique(br)])
    kr = data.cl_feat[:, list(CL_FEATURES).index("curvature")].double().numpy() * r
    nb = float(len(lengths))
    return np.array([[r.min(), r.max()], [q, q], [qb.min(), qb.max()], [lengths.min(), lengths.max()],
                     [0.0, float(np.abs(kr).max())], [nb, nb]])


def wall_branch_of(mesh: Any, data: Any) -> Tensor | None:
    """The branch of each wall point of a swept tube wall (``field_data["wall_branch_field"]`` names it), else None.

    :func:`meshops.geometry.tube.tube_wall` marks its walls so: every ring belongs to one branch, and
    the model then projects a point only onto its own branch (no ambiguity where tubes overlap).
    Used only when the graph's nodes are the mesh's points in order.
    """
    fd = getattr(mesh, "field_data", {}) or {}
    name = fd.get("wall_branch_field")
    name = str(np.asarray(name).reshape(-1)[0]) if name is not None else None
    if not name or name not in mesh.point_data:
        return None
    pos = getattr(data, "pos", None)
    pts = np.asarray(mesh.points, dtype=np.float64)
    if pos is None or pos.shape[0] != len(pts) or not np.allclose(pos.double().numpy(), pts, rtol=1e-5, atol=1e-6):
        return None
    return torch.as_tensor(np.asarray(mesh.point_data[name]).astype(np.int64).reshape(-1))


def range_warnings(model: Any, data: Any) -> list[str]:
    """Lines naming each input of ``data`` (an attached graph) outside the model's stored training ranges."""
    stored = model.stored_ranges() if hasattr(model, "stored_ranges") else {}
    if not stored:
        return []
    units = {"radius": " mm", "Q": " mL/s", "Q_branch": " mL/s", "length": " mm", "curvature_r": "", "branches": ""}
    what = {"radius": "radius", "Q": "inlet flow Q", "Q_branch": "branch flow (Murray split)",
            "length": "branch length", "curvature_r": "curvature x radius", "branches": "branch count"}
    got = input_ranges(data)
    out = []
    for i, k in enumerate(RANGE_NAMES):
        lo, hi = stored[k]
        tol = 0.05 * (hi - lo) if hi > lo else 0.05 * abs(hi)
        a, b = float(got[i, 0]), float(got[i, 1])
        if a < lo - tol or b > hi + tol:
            seen = f"{a:.4g}" if a == b else f"{a:.4g}-{b:.4g}"
            out.append(f"{what[k]} {seen}{units[k]} is outside the training range {lo:.4g}-{hi:.4g}{units[k]}; "
                       "the prediction is an extrapolation")
    return out


#: Number of flow-dependent per-point features appended by :func:`point_features`.
N_FLOW_FEATURES = 4


def point_features(cl_feat: Tensor, cl_radius: Tensor, qn: Tensor, length_scale: float) -> Tensor:
    """Dimensionless per-point inputs: the scaled :data:`CL_FEATURES` plus four flow features.

    The flow features use the normalized inlet flow ``qn`` of each point's case: ``log`` of the
    Poiseuille WSS and pressure-gradient scales (``Q / r^3``, ``Q / r^4``) and, linearly, the same
    WSS scale and the Poiseuille pressure left to the outlet (``Q * int_s^L ds / r^4``), each with a
    fixed scale that makes typical coronary values O(1). The baselines of ``benchmarks/coronary.py``
    get the same features on the wall.

    Shapes
    ------
    cl_feat (M, len(CL_FEATURES)), cl_radius (M,), qn (M,) -> (M, len(CL_FEATURES) + 4)
    """
    powers = torch.tensor([float(v[0]) for v in CL_FEATURES.values()], dtype=cl_feat.dtype, device=cl_feat.device)
    logs = torch.tensor([v[1] for v in CL_FEATURES.values()], device=cl_feat.device)
    f = cl_feat * length_scale ** (-powers)
    res = f[:, list(CL_FEATURES).index("resistance_to_end")]
    f = torch.where(logs, torch.log1p(f.clamp_min(0)), f)
    rr = cl_radius / length_scale
    lq, lr = torch.log(qn), torch.log(rr)
    flow = torch.stack([(lq - 3 * lr) / 10.0, (lq - 4 * lr) / 10.0, qn / rr**3 / 1e3, qn * res / 1e4], 1)
    return torch.cat([f, flow], 1)
