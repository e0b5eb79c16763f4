"""Coronary hemodynamics from a centerline: transformer encoder + anisotropic RBF decoder.

After "From Centerlines to Hemodynamics: Anisotropic RBF Decoders for Coronary Arteries"
(Akbarian Bafghi, Thakur, Raissi): a transformer encodes the resampled 1D centerline together with
the inlet flow rate, and an anisotropic Gaussian RBF decoder whose centers sit along the vessel,
with covariances aligned to the local vessel frame, gives continuous fields (pressure, WSS) at any
wall point.

How the centerline travels in a graph
-------------------------------------
:func:`centerline_inputs` turns a centerline (points, radius, optional branches) into tensors that
:func:`attach_centerline` stores on a ``MeshGraph`` / ``torch_geometric.data.Data`` next to the wall
mesh (``pos`` are the wall points)::

    cl_pos       (M, 3)    float32  resampled centerline points (each branch contiguous, ordered)
    cl_frame     (M, 3, 3) float32  rotation-minimizing frames, rows (tangent, normal, binormal)
    cl_radius    (M,)      float32  lumen radius
    cl_arclength (M,)      float32  arc length from the start of the point's branch
    cl_branch    (M,)      int64    branch id within the case (0 = main vessel)
    cl_feat      (M, F)    float32  the invariant per-point features named in CL_FEATURES
    cl_batch     (M,)      int64    case of each point: 0 in a single graph; PyG's batching
                                    increments it by one per graph (the key contains "batch")
    cl_q         (1,)      float32  the raw inlet flow Q (the model reads it first)
    u            (1, G)    float32  global parameters; without ``cl_q`` the inlet flow Q is column
                                    ``q_index`` (set to [[Q]] by attach_centerline when absent)

Batching with ``torch_geometric.loader.DataLoader`` / ``Batch.from_data_list`` concatenates the
``cl_*`` tensors along dim 0, so every case's points stay contiguous. The model returns
``(N_wall, out_channels)`` at ``data.pos`` (or at ``data.query_pos`` / ``data.query_batch`` when
given, e.g. a finer wall).

Invariance: every encoder feature is intrinsic (radius, curvature, torsion, arc length, the
curvature vector in the local frame, pairwise distances); the frames start from a normal derived
from the curve itself, so rotating and translating a vessel rotates the frames with it, scalar
outputs do not change and vector channels (``vectors``) rotate with it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from meshops.geometry.centerline import curvature_torsion, resample, rotation_minimizing_frames, tangents
from meshops.geometry.vessel_tree import vessel_tree
from meshops.models import register
from meshops.models.coronary_prior import (
    HEAD_CHANNELS,
    healthy_radius,
    pressure_gradient,
    stenosis_gradient,
    wss_magnitude,
)
from meshops.models.coronary_tree import (
    RANGE_NAMES,
    TREE_FEATURES,
    PhysicalScales,
    group_starts,
    project_to_centerline,
    tree_pressure,
    tree_tensors,
)
from meshops.nn.centerline import CenterlineEncoder
from meshops.nn.rbf import AnisotropicRBFDecoder

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_TRAINING_RANGES", "input_ranges", "range_warnings", "detect_length_scale", "training_ranges", "CL_FEATURES", "N_FLOW_FEATURES", "CenterlineRBF", "point_features", "attach_case_centerline", "attach_centerline", "centerline_inputs", "validate_centerline"]

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


@register("centerline_rbf")
class CenterlineRBF(nn.Module):
    """Centerline transformer encoder + anisotropic RBF decoder (see the module docstring).

    Parameters
    ----------
    out_channels : fields predicted at the wall points (e.g. 2 for ``p``, ``wss_mag``).
    num_centers : ``K``, Gaussians per case.
    d_model, n_heads, n_layers, mlp_ratio : transformer size.
    vectors : ``[start, stop)`` ranges of 3 channels that are vectors (rotate with the vessel).
    q_index : column of ``data.u`` holding the inlet flow rate.
    q_scale : a typical inlet flow (in the data's unit); globals are ``Q / q_scale``, ``log(Q / q_scale)``.
    length_scale : a typical length (in the data's unit); features are made dimensionless with it.
    dist_max : range of the encoder's distance bias, in units of ``length_scale``.
    in_channels, global_channels : accepted for the trainer's common signature; wall input fields
        are not used (the model sees only the wall point positions) and the inlet flow comes from
        ``data.cl_q`` (raw) or column ``q_index`` of ``data.u``.
    chunk_size, max_elements : RBF evaluation chunking (see :func:`meshops.ops.rbf.rbf_eval`).
    physics : ``"none"`` (the decoder's sums are the outputs) or ``"tree"`` (Murray flow split, pressure
        as the tree integral of a positive gradient, positive |WSS|: :mod:`meshops.models.coronary_tree`;
        targets exactly ``[p, wss_mag]`` in Pa).
    mu, rho, length_unit_m, q_unit_m3s : tree mode: viscosity (Pa s), density (kg/m^3), metres per
        length unit, m^3/s per flow unit (defaults: blood, mm, mL/s).
    cl_spacing, cl_max_points : resample the centerline at this spacing (128 to ``cl_max_points``
        points; default: 128 points whatever the length).
    head_features : tree mode: the per-point input features also feed the pressure-gradient head.

    Shapes
    ------
    data.pos (N, 3), data.batch (N,), data.u (B, G), data.cl_* (see module) -> (N, out_channels)
    """

    def __init__(
        self,
        out_channels: int = 2,
        num_centers: int = 128,
        d_model: int = 128,
        n_heads: int = 4,
        n_layers: int = 4,
        mlp_ratio: float = 2.0,
        vectors: Sequence[Sequence[int]] = (),
        q_index: int = 0,
        q_scale: float = 1.0,
        length_scale: float = 10.0,
        dist_max: float = 8.0,
        in_channels: int | None = None,
        global_channels: int | None = None,
        chunk_size: int | None = None,
        max_elements: int = 1 << 18,
        physics: str = "none",
        mu: float = 3.5e-3,
        rho: float = 1060.0,
        length_unit_m: float = 1e-3,
        q_unit_m3s: float = 1e-6,
        cl_spacing: float | None = None,
        cl_max_points: int = 512,
        head_features: bool = False,
    ) -> None:
        super().__init__()
        if q_scale <= 0 or length_scale <= 0:
            raise ValueError(f"centerline_rbf: q_scale={q_scale} and length_scale={length_scale} must be > 0")
        if physics not in ("none", "tree"):
            raise ValueError(f"centerline_rbf: physics must be 'none' or 'tree', got '{physics}'")
        if physics == "tree" and (out_channels != 2 or vectors):
            raise ValueError(f"centerline_rbf: physics='tree' predicts exactly [p, wss_mag] (2 scalar channels), "
                             f"got out_channels={out_channels}, vectors={list(vectors)}")
        self.q_index, self.q_scale, self.length_scale = q_index, float(q_scale), float(length_scale)
        self.physics = physics
        if cl_spacing is not None and not cl_spacing > 0:
            raise ValueError(f"centerline_rbf: cl_spacing must be > 0, got {cl_spacing}")
        self.cl_spacing, self.cl_max_points = cl_spacing, int(cl_max_points)
        tree = physics == "tree"
        n_feat = len(CL_FEATURES) + N_FLOW_FEATURES + (len(TREE_FEATURES) if tree else 0)
        self.encoder = CenterlineEncoder(
            n_feat, n_globals=2, d_model=d_model, n_heads=n_heads, n_layers=n_layers, mlp_ratio=mlp_ratio, dist_max=dist_max
        )
        if tree:
            self.scales = PhysicalScales(mu, rho, length_unit_m, q_unit_m3s)
            # per centerline point: log Poiseuille correction, inertial coefficient, 4 ring Fourier amplitudes
            self.head_features = bool(head_features)  # the per-point features also feed the gradient head
            n_head = 2 * d_model + (n_feat if head_features else 0)
            self.tree_head = nn.Sequential(nn.Linear(n_head, d_model), nn.GELU(), nn.Linear(d_model, HEAD_CHANNELS))
            self.ref_head = nn.Linear(d_model, 1)
            for lin in (self.tree_head[-1], self.ref_head):
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)
            self.register_buffer("target_mean", torch.zeros(2))
            self.register_buffer("target_std", torch.ones(2))
            self.register_buffer("train_ranges", torch.full((len(RANGE_NAMES), 2), float("nan")))
        self.decoder = AnisotropicRBFDecoder(
            d_model,
            1 if tree else out_channels,
            num_centers,
            vectors=vectors,
            n_extra=N_FLOW_FEATURES,
            chunk_size=chunk_size,
            max_elements=max_elements,
        )

    def fit_training_data(self, samples: Sequence[Any], normalizer: Any) -> None:
        """Training hook (called by the trainer before the first step): target statistics and input ranges.

        Tree mode predicts in physical units and encodes with the training targets' mean and std
        (buffers ``target_mean``, ``target_std``); the ranges of radius, inlet and branch flow,
        branch length, curvature x radius and branch count over ``samples`` (prepared graphs) go to
        the buffer ``train_ranges`` (rows :data:`RANGE_NAMES`), saved with the weights.
        """
        if self.physics != "tree":
            return
        st = normalizer.targets
        self.target_mean.copy_(torch.as_tensor(np.asarray(st.mean[:2], dtype=np.float32)))
        self.target_std.copy_(torch.as_tensor(np.asarray(st.std[:2], dtype=np.float32)))
        vals = np.array([input_ranges(d) for d in samples])  # (n, R, 2)
        if len(vals):
            self.train_ranges.copy_(torch.as_tensor(np.stack([vals[:, :, 0].min(0), vals[:, :, 1].max(0)], 1)))

    def stored_ranges(self) -> dict[str, tuple[float, float]]:
        """The training ranges saved in a tree-mode checkpoint ({} for older ones)."""
        tr = getattr(self, "train_ranges", None)
        if tr is None or not bool(torch.isfinite(tr).all()):
            return {}
        return {k: (float(tr[i, 0]), float(tr[i, 1])) for i, k in enumerate(RANGE_NAMES)}

    def prepare_sample(self, data: Any, case: Any) -> Any:
        """The model hook of :mod:`meshops.models`: attach the case's centerline and inlet flow.

        The centerline is resampled at 128 points in all, or, with ``cl_spacing``, at that spacing
        (model length units) between 128 and ``cl_max_points`` points (long trees get more).
        """
        out = attach_case_centerline(data, case, n_points=self._n_points(case))
        if self.physics == "tree":
            known = wall_branch_of(case.mesh, out)
            if known is not None:
                out.wall_branch = known
        return out

    def _n_points(self, case: Any) -> int:
        if self.cl_spacing is None:
            return 128
        fd = getattr(case.mesh, "field_data", {}) or {}
        pts = np.asarray(fd.get("centerline_points", np.zeros((0, 3))), dtype=np.float64)
        paths = fd.get("centerline_branches") or [np.arange(len(pts))]
        total = sum(float(np.linalg.norm(np.diff(pts[np.asarray(b, dtype=np.int64)], axis=0), axis=1).sum())
                    for b in paths if len(b) > 1)
        return int(np.clip(round(total / self.cl_spacing), 128, max(128, self.cl_max_points)))

    def _flow(self, data: Any, num_cases: int) -> Tensor:
        cq = getattr(data, "cl_q", None)
        if cq is not None:
            u = cq.reshape(-1, 1)
            if u.shape[0] != num_cases:
                raise ValueError(f"centerline_rbf: 'cl_q' has {u.shape[0]} values for {num_cases} cases")
            q = u[:, 0]
            bad = ~(torch.isfinite(q) & (q > 0))
            if bool(bad.any()):
                i = int(torch.nonzero(bad)[0, 0])
                raise ValueError(f"centerline_rbf: case {i} has inlet flow Q = {float(q[i])}; it must be finite and > 0")
            return q
        u = getattr(data, "u", None)
        if u is None:
            raise ValueError("centerline_rbf: the graph has no global parameters 'u' (the inlet flow Q)")
        u = u.reshape(num_cases, -1) if u.dim() == 1 else u
        if u.shape[0] != num_cases or u.shape[1] <= self.q_index:
            raise ValueError(f"centerline_rbf: 'u' has shape {tuple(u.shape)}; expected ({num_cases}, >{self.q_index})")
        q = u[:, self.q_index]
        bad = ~(torch.isfinite(q) & (q > 0))
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0, 0])
            raise ValueError(f"centerline_rbf: case {i} has inlet flow Q = {float(q[i])}; it must be finite and > 0")
        return q

    def _checked(self, data: Any) -> tuple[Tensor, Tensor, Tensor, Tensor | None, int]:
        """Validate the graph; return (cl_batch, inlet flow per case, query points, query batch, cases)."""
        for key in ("cl_pos", "cl_feat", "cl_frame", "cl_radius", "cl_arclength", "cl_branch"):
            if getattr(data, key, None) is None:
                raise ValueError(
                    f"centerline_rbf: the graph has no '{key}'; attach the centerline with "
                    "meshops.models.coronary.attach_centerline"
                )
        cl_batch = getattr(data, "cl_batch", None)
        if cl_batch is None:
            cl_batch = torch.zeros(data.cl_pos.shape[0], dtype=torch.long, device=data.cl_pos.device)
        num_cases = int(cl_batch.max()) + 1 if cl_batch.numel() else 0
        q = self._flow(data, num_cases)
        query = getattr(data, "query_pos", None)
        qb = getattr(data, "query_batch", None) if query is not None else getattr(data, "batch", None)
        if query is None:
            query = data.pos
        if not bool(torch.isfinite(query).all()):
            i = int(torch.nonzero(~torch.isfinite(query).all(1))[0, 0])
            raise ValueError(f"centerline_rbf: wall point {i} has a non-finite coordinate {query[i].tolist()}")
        if not bool(torch.isfinite(data.cl_pos).all()):
            i = int(torch.nonzero(~torch.isfinite(data.cl_pos).all(1))[0, 0])
            raise ValueError(f"centerline_rbf: centerline point {i} has a non-finite coordinate {data.cl_pos[i].tolist()}")
        if bool((data.cl_radius <= 0).any()):
            i = int(torch.nonzero(data.cl_radius <= 0)[0, 0])
            raise ValueError(f"centerline_rbf: centerline radius at point {i} is {float(data.cl_radius[i])}; must be > 0")
        return cl_batch, q, query, qb, num_cases

    def forward(self, data: Any) -> Tensor:
        cl_batch, q, query, qb, num_cases = self._checked(data)
        if self.physics == "tree":
            return self._forward_tree(data, cl_batch, q, query, qb, num_cases)
        qn = q / self.q_scale
        feat = point_features(data.cl_feat, data.cl_radius, qn[cl_batch], self.length_scale)
        globals_ = torch.stack([qn, torch.log(qn)], 1)
        pos_scaled = data.cl_pos / self.length_scale
        tokens, gtok = self.encoder(feat, pos_scaled, cl_batch, globals_)
        return self.decoder(query, qb, tokens, gtok, feat[:, -N_FLOW_FEATURES:], data.cl_pos, data.cl_frame,
                            data.cl_radius, data.cl_arclength, data.cl_branch, cl_batch)

    def _tree_features(self, data: Any, qn_point: Tensor) -> Tensor:
        powers = torch.tensor([float(v) for v in TREE_FEATURES.values()], dtype=data.cl_tree.dtype,
                              device=data.cl_tree.device)
        flow = point_features(data.cl_feat, data.cl_radius, qn_point, self.length_scale)
        return torch.cat([flow, data.cl_tree * self.length_scale ** (-powers)], 1)

    def _forward_tree(self, data: Any, cl_batch: Tensor, q: Tensor, query: Tensor, qb: Tensor | None,
                      num_cases: int) -> Tensor:
        """Tree mode (see :mod:`meshops.models.coronary_tree`): outputs in the normalized target space."""
        if qb is None:
            if num_cases != 1:
                raise ValueError(f"centerline_rbf: {num_cases} cases but no batch vector for the wall points")
            qb = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
        for key in ("cl_qfrac", "cl_up", "cl_up_lam", "cl_gen", "cl_outlet", "cl_tree"):
            if getattr(data, key, None) is None:
                raise ValueError(f"centerline_rbf: the graph has no '{key}'; attach the centerline with "
                                 "meshops.models.coronary.attach_centerline")
        qb_flow = q[cl_batch] * data.cl_qfrac.clamp_min(1e-6)  # Murray share of the inlet flow
        qn = q / self.q_scale
        feat = self._tree_features(data, qb_flow / self.q_scale)
        tokens, gtok = self.encoder(feat, data.cl_pos / self.length_scale, cl_batch, torch.stack([qn, torch.log(qn)], 1))
        h = self.tree_head(torch.cat([tokens, gtok[cl_batch]] + ([feat] if self.head_features else []), 1))
        start, _ = group_starts(data.cl_branch, cl_batch)
        sc = self.scales(qb_flow, data.cl_radius, healthy_radius(data.cl_radius, start))
        sc["g_stenosis"] = stenosis_gradient(sc["stenosis_loss"], data.cl_arclength, start)
        g = pressure_gradient(h, sc)
        inside = getattr(data, "cl_inside", None)
        if inside is not None:  # a child's start inside its parent's lumen carries no drop of its own
            g = torch.where(inside, torch.zeros_like(g), g)
        p_rel = tree_pressure(g, data.cl_arclength, data.cl_branch, cl_batch, data.cl_up, data.cl_up_lam, data.cl_gen)
        out_w = data.cl_outlet.to(p_rel.dtype)
        n_out = torch.zeros(num_cases, dtype=p_rel.dtype, device=p_rel.device).index_add(0, cl_batch, out_w).clamp_min(1)
        p_outlet = torch.zeros_like(n_out).index_add(0, cl_batch, p_rel * out_w) / n_out  # mean outlet value (<= 0)
        ref = -p_outlet * (1.0 + 0.5 * torch.tanh(self.ref_head(gtok)[:, 0]))  # mean outlet p = bounded share of drop
        p_line = p_rel + ref[cl_batch]
        known = getattr(data, "wall_branch", None)  # the swept tubes' own branch of each wall point, when known
        if known is not None and (known.shape[0] != query.shape[0] or getattr(data, "query_pos", None) is not None):
            known = None
        i, lam, theta = project_to_centerline(query, qb, data.cl_pos, data.cl_frame, data.cl_radius, data.cl_branch,
                                              cl_batch, num_cases, query_branch=known)
        lw = lam.to(p_line.dtype)

        def at(v: Tensor) -> Tensor:
            w = lw if v.dim() == 1 else lw[:, None]
            return v[i] * (1 - w) + v[i + 1] * w

        # ring variation: zero mean over a ring, at most a quarter of the drop over one radius
        amps = 0.25 * at(g * data.cl_radius)[:, None] * torch.tanh(at(h[:, 3:7]))
        modes = torch.stack([torch.cos(theta), torch.sin(theta), torch.cos(2 * theta), torch.sin(2 * theta)], 1)
        p = at(p_line) + (amps * modes).sum(1)
        c = self.decoder(query, qb, tokens, gtok, feat[:, len(CL_FEATURES) : len(CL_FEATURES) + N_FLOW_FEATURES],
                         data.cl_pos, data.cl_frame, data.cl_radius, data.cl_arclength, data.cl_branch, cl_batch)[:, 0]
        wss = wss_magnitude(c, at(sc["tau"]))
        return (torch.stack([p, wss], 1) - self.target_mean) / self.target_std
