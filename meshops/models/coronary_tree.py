"""Physically coherent coronary fields on a vessel tree: flow split, tree pressure integral, ranges.

The tree mode of :class:`meshops.models.coronary.CenterlineRBF` (``physics="tree"``) builds its
outputs so that, on any tree, whatever the weights:

* every branch carries its Murray share of the inlet flow (:mod:`meshops.geometry.vessel_tree`),
  fed to the encoder and to the physical scales below;
* the pressure along the centerline is ``p(s) = p_ref - int g ds`` integrated from the inlet along
  the tree with a positive gradient ``g`` (Poiseuille, Borda-Carnot stenosis and inertial terms,
  each times a learned positive factor: :mod:`meshops.models.coronary_prior`), so it is
  non-increasing along every root-to-outlet path and a child starts at its parent's pressure at
  the junction (continuous); ``p_ref`` makes the reference outlet's pressure a learned, bounded
  fraction of the case's pressure drop;
* the wall pressure adds a ring-wise variation made of the first two angular Fourier modes
  (zero mean over a ring), with an amplitude of at most a quarter of the drop over one radius;
* ``|WSS| = tau_P exp(c)`` with ``tau_P = 4 mu Q_b / (pi r^3)`` and ``c`` the bounded RBF output:
  positive everywhere.

The centerline tensors it needs next to those of :func:`meshops.models.coronary.centerline_inputs`
(all (M,), relative offsets so that batching by concatenation keeps them valid)::

    cl_qfrac   float32  fraction of the inlet flow through the point's branch at that arc length
    cl_up      int64    offset to the point before the upstream position of a branch start
                        (child start: on the parent at the junction; 0 elsewhere)
    cl_up_lam  float32  interpolation weight toward the point after it
    cl_gen     int64    branch generation (0 = the main vessel)
    cl_outlet  bool     the last point of the reference outlet: the outlet with the largest Murray
                        flow (the pressure reference of the coronary tree dataset)
    cl_tree    (M, T)   the features named in TREE_FEATURES
    cl_inside  bool     the leading points of a child inside its parent's lumen (no pressure drop there:
                        the child's flow begins at the parent's wall; keeps the wall pressure continuous
                        where the parent's and the child's walls meet)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from meshops.geometry.vessel_tree import VesselTree

__all__ = ["RANGE_NAMES", "TREE_FEATURES", "group_starts", "project_to_centerline", "ring_coherence", "tree_pressure",
           "tree_tensors", "PhysicalScales"]

#: Per-point tree features: name -> power of length in its unit.
TREE_FEATURES: dict[str, int] = {
    "q_frac": 0,  # share of the inlet flow through the branch here
    "generation": 0,  # 0 main vessel, 1 its side branches, ...
    "d_inlet": 1,  # distance from the inlet along the tree
    "junction_near": 0,  # exp(-distance to the nearest junction / (2 r))
    "terminal": 0,  # 1 on branches without children
    "n_children": 0,  # side branches leaving this branch
}

#: Training ranges stored in a tree-mode checkpoint (buffer ``train_ranges``, rows in this order).
#: Units: the model's (mm, mL/s).
RANGE_NAMES = ("radius", "Q", "Q_branch", "length", "curvature_r", "branches")


def _inside_parent(p_child: np.ndarray, p_parent: np.ndarray, r_parent: np.ndarray) -> np.ndarray:
    """The leading run of a child's points that lie inside its parent's lumen (mask over the child's points)."""
    d = np.linalg.norm(p_child[:, None, :] - p_parent[None, :, :], axis=2)
    k = d.argmin(1)
    inside = d[np.arange(len(p_child)), k] < r_parent[k]
    first_out = int(np.argmin(inside)) if not inside.all() else len(inside)
    out = np.zeros(len(p_child), dtype=bool)
    out[:first_out] = True
    return out


def tree_tensors(tree: VesselTree, s_list: list[np.ndarray], r_list: list[np.ndarray],
                 p_list: list[np.ndarray] | None = None) -> dict[str, Tensor]:
    """The tree tensors of the module docstring for resampled branches (arc lengths ``s_list``).

    With the resampled points ``p_list``, ``cl_inside`` marks the start of each child that runs
    inside its parent's lumen (the child's flow begins at the parent's wall: no pressure drop there).

    Shapes
    ------
    s_list, r_list, p_list : per branch (n_b,) / (n_b, 3) -> dict of (M,) tensors (``cl_tree``: (M, len(TREE_FEATURES)))
    """
    offsets = np.cumsum([0] + [len(s) for s in s_list])
    outlets = [b for b in range(len(s_list))
               if not any(sj >= tree.length[b] - 1e-6 * max(tree.length[b], 1.0) for sj, _, _ in tree.children[b])]
    ref_outlet = max(outlets, key=lambda b: float(tree.flow_fraction(b, np.array([tree.length[b]]))[0])) \
        if outlets else len(s_list) - 1
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("q", "up", "lam", "gen", "out", "feat", "inside")}
    for b, (s, r) in enumerate(zip(s_list, r_list, strict=True)):
        n = len(s)
        up, lam = np.zeros(n, dtype=np.int64), np.zeros(n)
        a = int(tree.parent[b])
        if a >= 0:
            sa = s_list[a]
            k = int(np.clip(np.searchsorted(sa, tree.s_junction[b], side="right") - 1, 0, len(sa) - 2))
            lam[0] = float(np.clip((tree.s_junction[b] - sa[k]) / max(sa[k + 1] - sa[k], 1e-12), 0.0, 1.0))
            up[0] = offsets[a] + k - offsets[b]
        out = np.zeros(n, dtype=bool)
        out[-1] = b == ref_outlet
        inside = (_inside_parent(p_list[b], p_list[a], r_list[a]) if (p_list is not None and a >= 0)
                  else np.zeros(n, dtype=bool))
        q = tree.flow_fraction(b, s)
        feats = {
            "q_frac": q,
            "generation": np.full(n, float(tree.generation[b])),
            "d_inlet": tree.d_inlet[b] + s,
            "junction_near": np.exp(-np.minimum(tree.junction_distance(b, s) / (2.0 * r), 50.0)),
            "terminal": np.full(n, float(not tree.children[b])),
            "n_children": np.full(n, float(len(tree.children[b]))),
        }
        for k_, v in (("q", q), ("up", up), ("lam", lam), ("gen", np.full(n, tree.generation[b])), ("out", out),
                      ("feat", np.stack([feats[f] for f in TREE_FEATURES], 1)), ("inside", inside)):
            cols[k_].append(v)
    cat = {k: np.concatenate(v) for k, v in cols.items()}
    return {
        "cl_qfrac": torch.from_numpy(cat["q"]).float(),
        "cl_up": torch.from_numpy(cat["up"].astype(np.int64)),
        "cl_up_lam": torch.from_numpy(cat["lam"]).float(),
        "cl_gen": torch.from_numpy(cat["gen"].astype(np.int64)),
        "cl_outlet": torch.from_numpy(cat["out"]),
        "cl_tree": torch.from_numpy(cat["feat"]).float(),
        "cl_inside": torch.from_numpy(cat["inside"]),
    }


def group_starts(cl_branch: Tensor, cl_batch: Tensor) -> tuple[Tensor, Tensor]:
    """Mask of the first point of every (case, branch) run and each point's run start index."""
    m = cl_branch.shape[0]
    start = torch.ones(m, dtype=torch.bool, device=cl_branch.device)
    start[1:] = (cl_batch[1:] != cl_batch[:-1]) | (cl_branch[1:] != cl_branch[:-1])
    idx = torch.arange(m, device=cl_branch.device)
    gs = torch.cummax(torch.where(start, idx, torch.zeros_like(idx)), 0).values
    return start, gs


def tree_pressure(g: Tensor, cl_arclength: Tensor, cl_branch: Tensor, cl_batch: Tensor, cl_up: Tensor,
                  cl_up_lam: Tensor, cl_gen: Tensor) -> Tensor:
    """Pressure relative to the inlet, ``-int g ds`` along the tree (trapezoids; 0 at the inlet).

    Each branch starts at its parent's value at the junction (interpolated), so the result is
    continuous across junctions and non-increasing from the inlet wherever ``g >= 0``.

    Shapes
    ------
    g, cl_arclength, cl_branch, cl_batch, cl_up, cl_up_lam, cl_gen : (M,) -> (M,)
    """
    start, gs = group_starts(cl_branch, cl_batch)
    ds = torch.zeros_like(g)
    ds[1:] = (cl_arclength[1:] - cl_arclength[:-1]).clamp_min(0)
    drop = torch.zeros_like(g)
    drop[1:] = 0.5 * (g[1:] + g[:-1]) * ds[1:]
    drop = torch.where(start, torch.zeros_like(drop), drop)
    cs = torch.cumsum(drop, 0)
    c = cs - cs[gs]
    idx = torch.arange(g.shape[0], device=g.device)
    up = (idx + cl_up).clamp(0, g.shape[0] - 2)
    has_parent = start & (cl_gen > 0)
    p_start = torch.zeros_like(g)
    for _ in range(int(cl_gen.max()) + 1 if cl_gen.numel() else 1):
        p = p_start[gs] - c
        at_junction = p[up] * (1 - cl_up_lam) + p[(up + 1).clamp_max(g.shape[0] - 1)] * cl_up_lam
        p_start = torch.where(has_parent, at_junction, torch.zeros_like(g))
    return p_start[gs] - c


def _nearest_segments(x: Tensor, c: Tensor, r: Tensor, branch: Tensor, max_elements: int,
                      k: int = 6, x_branch: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per point of ``x``: the segment (first index, weight) of polyline ``c`` whose tube it lies on.

    Candidates are the segments next to the ``k`` centerline points nearest in distance / radius;
    among them the one minimizing ``|d - r| + 0.2 d`` (distance ``d`` to the segment, tube radius
    ``r`` there) wins. With ``x_branch`` (the known branch of each point, e.g. the tubes swept by
    :func:`meshops.geometry.tube.tube_wall`), only that branch's segments are candidates.
    """
    m = c.shape[0]
    valid = torch.zeros(m + 1, dtype=torch.bool, device=c.device)  # valid[j]: segment j -> j+1 exists
    valid[: m - 1] = branch[1:] == branch[:-1]
    k = min(k, m)
    i_all, lam_all = [], []
    step = max(1, max_elements // max(1, m))
    for j in range(0, x.shape[0], step):
        xx = x[j : j + step]
        dist = torch.cdist(xx, c) / r[None]
        if x_branch is not None:
            dist = torch.where(branch[None] == x_branch[j : j + step, None], dist, torch.full_like(dist, math.inf))
        near = dist.topk(k, dim=1, largest=False).indices  # (n, k)
        seg = torch.cat([near - 1, near], 1).clamp(0, max(m - 2, 0))  # (n, 2k) segment starts
        ok = valid[seg]
        if x_branch is not None:
            ok = ok & (branch[seg] == x_branch[j : j + step, None])
        a, e = c[seg], c[seg + 1]
        ab = e - a
        t = (((xx[:, None] - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-20)).clamp(0, 1)
        d = (xx[:, None] - (a + t[..., None] * ab)).norm(dim=-1)
        rad = r[seg] + t * (r[seg + 1] - r[seg])
        # the tube whose surface the point lies on (|d - r| small), the nearest (d) breaking the ties that
        # |d - r| alone has in stenoses and tapers; where tubes overlap at a junction, a child keeps its points
        score = torch.where(ok, (d - rad).abs() + 0.2 * d, torch.full_like(d, math.inf))
        best = score.argmin(1, keepdim=True)
        i_all.append(seg.gather(1, best)[:, 0])
        lam_all.append(t.gather(1, best)[:, 0])
    return torch.cat(i_all), torch.cat(lam_all)


def project_to_centerline(query: Tensor, query_batch: Tensor, cl_pos: Tensor, cl_frame: Tensor, cl_radius: Tensor,
                          cl_branch: Tensor, cl_batch: Tensor, num_cases: int,
                          max_elements: int = 1 << 21, query_branch: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Each query point's centerline segment of its own case (the tube it lies on, see :func:`_nearest_segments`).

    ``query_branch`` (optional, (Q,)): the known branch of each query point (restricts the search).
    Returns the segment's first point index ``i`` (global), the weight ``lam`` of point ``i + 1``
    and the angle around the centerline in the interpolated frame (from the normal toward the
    binormal). No gradient flows through it (geometry only).

    Shapes
    ------
    query (Q, 3), query_batch (Q,) sorted, cl_* (M, ...) -> i (Q,) int64, lam (Q,), theta (Q,)
    """
    with torch.no_grad():
        i_out = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
        lam_out = torch.zeros(query.shape[0], dtype=query.dtype, device=query.device)
        cptr = torch.searchsorted(cl_batch, torch.arange(num_cases + 1, device=cl_batch.device))
        qptr = torch.searchsorted(query_batch, torch.arange(num_cases + 1, device=query_batch.device))
        for b in range(num_cases):
            c0, c1, q0, q1 = int(cptr[b]), int(cptr[b + 1]), int(qptr[b]), int(qptr[b + 1])
            if q1 > q0:
                i, lam = _nearest_segments(query[q0:q1], cl_pos[c0:c1], cl_radius[c0:c1], cl_branch[c0:c1],
                                           max_elements, x_branch=None if query_branch is None else query_branch[q0:q1])
                i_out[q0:q1], lam_out[q0:q1] = c0 + i, lam
        lw = lam_out[:, None]
        fr = cl_frame[i_out] * (1 - lw[..., None]) + cl_frame[i_out + 1] * lw[..., None]
        c = cl_pos[i_out] * (1 - lw) + cl_pos[i_out + 1] * lw
        v = query - c
        theta = torch.atan2((v * fr[:, 2]).sum(-1), (v * fr[:, 1]).sum(-1))
    return i_out, lam_out, theta


class PhysicalScales(nn.Module):
    """Poiseuille, stenosis and inertial scales of a branch flow in SI, per model length unit.

    Parameters
    ----------
    mu : dynamic viscosity (Pa s); rho : density (kg/m^3).
    length_unit_m : metres per model length unit (1e-3: mm); q_unit_m3s : m^3/s per flow unit (1e-6: mL/s).
    """

    def __init__(self, mu: float, rho: float, length_unit_m: float, q_unit_m3s: float) -> None:
        super().__init__()
        self.mu, self.rho, self.lu, self.qu = float(mu), float(rho), float(length_unit_m), float(q_unit_m3s)

    def forward(self, q: Tensor, r: Tensor, r_healthy: Tensor | None = None) -> dict[str, Tensor]:
        """Flow ``q`` (flow units), radius ``r`` and healthy radius ``r_healthy`` (length units) -> scales in Pa.

        ``stenosis_loss`` (Pa; 0 without ``r_healthy``) is the Borda-Carnot loss of an expansion from ``r``
        to ``r_healthy``; gradients are in Pa per length unit.
        """
        qs, rs = q * self.qu, r * self.lu
        rh = r if r_healthy is None else torch.maximum(r_healthy, r)
        u_h = qs / (math.pi * (rh * self.lu) ** 2)
        return {
            "g_poiseuille": 8 * self.mu * qs / (math.pi * rs**4) * self.lu,
            "g_inertial": self.rho * qs**2 / (math.pi**2 * rs**5) * self.lu,
            "stenosis_loss": 0.5 * self.rho * u_h**2 * ((rh / r) ** 2 - 1) ** 2,
            "tau": 4 * self.mu * qs / (math.pi * rs**3),
            "dynamic": self.rho * (qs / (math.pi * rs**2)) ** 2,
        }


def ring_coherence(wall: Any, p: np.ndarray, wss: np.ndarray, n_around: int) -> dict[str, Any]:
    """Coherence of fields on a swept tube wall (:func:`meshops.geometry.tube.tube_wall` layout).

    Ring means of ``p`` along every branch (rings of ``n_around`` consecutive points), the share of
    consecutive ring pairs along branches and across junctions (parent ring nearest the junction
    -> first child ring) where the ring-mean pressure does not increase (beyond float32 rounding:
    1e-4 of the drop), the largest junction jump
    as a fraction of the case's pressure drop (first ring minus the lowest ring mean), and the
    smallest ``|WSS|``.

    Shapes
    ------
    wall.points (n, 3) with point fields ``branch``, ``s``; p (n,), wss (n,) -> dict of floats
    """
    branch = np.asarray(wall.point_data["branch"]).reshape(-1, n_around)[:, 0]
    pm = np.asarray(p, dtype=np.float64).reshape(-1, n_around).mean(1)
    centers = np.asarray(wall.points).reshape(-1, n_around, 3).mean(1)
    pairs_ok, pairs, jumps = 0, 0, []
    runs = {int(b): np.flatnonzero(branch == b) for b in np.unique(branch)}
    drop = float(pm[runs[min(runs)]][0] - pm.min())
    tol = 1e-4 * max(drop, 0.0) + 1e-6 * float(np.abs(pm).max())  # float32 rounding, not physics
    for rings in runs.values():
        d = np.diff(pm[rings])
        pairs += len(d)
        pairs_ok += int((d <= tol).sum())
    for b, rings in runs.items():
        if b == min(runs):
            continue
        others = np.concatenate([r for k, r in runs.items() if k < b])
        j = others[np.argmin(np.linalg.norm(centers[others] - centers[rings[0]], axis=1))]
        jumps.append(abs(pm[rings[0]] - pm[j]))
        pairs += 1
        pairs_ok += int(pm[rings[0]] <= pm[j] + tol)
    return {
        "monotone_fraction": pairs_ok / max(pairs, 1),
        "pairs": pairs,
        "junction_jump_rel": (max(jumps) / drop) if jumps and drop > 0 else 0.0,
        "pressure_drop": drop,
        "wss_min": float(np.min(wss)),
    }
