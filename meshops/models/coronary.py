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
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from meshops.models import register
from meshops.models.coronary_inputs import (
    CL_FEATURES,
    DEFAULT_TRAINING_RANGES,
    N_FLOW_FEATURES,
    attach_case_centerline,
    attach_centerline,
    centerline_inputs,
    detect_length_scale,
    input_ranges,
    point_features,
    range_warnings,
    training_ranges,
    validate_centerline,
    wall_branch_of,
)
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
)
from meshops.nn.centerline import CenterlineEncoder
from meshops.nn.rbf import AnisotropicRBFDecoder

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_TRAINING_RANGES", "input_ranges", "range_warnings", "detect_length_scale", "training_ranges", "CL_FEATURES", "N_FLOW_FEATURES", "CenterlineRBF", "point_features", "attach_case_centerline", "attach_centerline", "centerline_inputs", "validate_centerline"]


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
