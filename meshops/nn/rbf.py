"""The anisotropic RBF decoder: Gaussians along the vessel, shaped in the local vessel frame.

``K`` centers per case are spread at uniform arc length over the whole centerline (all branches
together, each branch getting its share of ``K`` by length). At each center the encoder's tokens
are interpolated from the two neighbouring centerline points and a small MLP head predicts

* an offset of the center from the centerline, in the local frame (tangent, normal, binormal),
  in units of the local radius;
* three scales: along the tangent (in units of the larger of the center spacing ``L / K`` and
  half the local radius) and two across (in units of the local radius), and a rotation of the two cross-section axes about the tangent;
* the amplitudes of every output channel. Channels grouped as vectors (``vectors=[[a, a+3]]``,
  e.g. the WSS vector) get their three amplitudes in the local frame and are rotated to world
  coordinates with it, so vector outputs rotate with the vessel and scalar outputs do not change.

The field at any wall point ``x`` is ``sum_k w_k exp(-0.5 |A_k (x - c_k)|^2) + b`` with the
precision factor ``A_k = diag(1/sigma) R(theta) F_k`` (``F_k``: the frame as rows), evaluated by
:func:`meshops.ops.rbf.rbf_eval` (chunked over the query points, bounded memory), plus a per-case
bias ``b`` from the global token.

Inputs are the tensors of :mod:`meshops.nn.centerline`'s encoder plus the centerline geometry;
the layout (points of a case contiguous, each branch contiguous and ordered by arc length) is the
one :func:`meshops.models.coronary.centerline_inputs` produces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from meshops.ops.rbf import DEFAULT_MAX_ELEMENTS, group_ptr, rbf_eval

__all__ = ["AnisotropicRBFDecoder", "place_centers"]


def _orthonormal_rows(frame: Tensor) -> Tensor:
    """Gram-Schmidt on interpolated frames (rows t, n, b), right-handed."""
    t = nn.functional.normalize(frame[:, 0], dim=-1)
    n = frame[:, 1] - (frame[:, 1] * t).sum(-1, keepdim=True) * t
    n = nn.functional.normalize(n, dim=-1)
    return torch.stack([t, n, torch.linalg.cross(t, n)], 1)


def place_centers(
    num_centers: int,
    cl_pos: Tensor,
    cl_frame: Tensor,
    cl_radius: Tensor,
    cl_arclength: Tensor,
    cl_branch: Tensor,
    cl_batch: Tensor,
    num_cases: int,
) -> dict[str, Tensor]:
    """Spread ``num_centers`` points per case at uniform arc length over all its branches.

    Returns the index ``i`` of the centerline point before each center and the weight ``lam`` of
    the point after it (linear interpolation), the interpolated position, frame (re-orthonormalized)
    and radius, the case of each center, the normalized arc-length coordinate ``u`` in [0, 1) over
    the case's concatenated branches and the center spacing ``L / K`` of its case.

    Shapes
    ------
    cl_pos (M, 3), cl_frame (M, 3, 3) rows (tangent, normal, binormal), cl_radius (M,),
    cl_arclength (M,) (restarting at 0 on each branch), cl_branch (M,) int, cl_batch (M,) int sorted
    -> every output has B * num_centers rows: i, lam, pos (., 3), frame (., 3, 3), radius, case, u,
    spacing.
    """
    m = cl_pos.shape[0]
    dev = cl_pos.device
    if num_centers < 1:
        raise ValueError(f"place_centers: num_centers must be >= 1, got {num_centers}")
    if m < 2:
        raise ValueError(f"place_centers: the centerline has {m} point(s); at least 2 are needed")
    # groups = (case, branch) runs of contiguous points
    start = torch.ones(m, dtype=torch.bool, device=dev)
    start[1:] = (cl_batch[1:] != cl_batch[:-1]) | (cl_branch[1:] != cl_branch[:-1])
    gid = torch.cumsum(start.long(), 0) - 1
    ng = int(gid[-1]) + 1
    s = cl_arclength.detach()
    glen = torch.zeros(ng, dtype=s.dtype, device=dev).scatter_reduce(0, gid, s, "amax", include_self=False)
    goff = torch.cumsum(glen, 0) - glen  # exclusive cumsum: global, monotone across cases
    u = goff[gid] + s
    gcase = torch.zeros(ng, dtype=torch.long, device=dev).scatter_reduce(0, gid, cl_batch, "amax", include_self=False)
    case_len = torch.zeros(num_cases, dtype=s.dtype, device=dev).index_add(0, gcase, glen)
    case_start = torch.full((num_cases,), float("inf"), dtype=s.dtype, device=dev).scatter_reduce(
        0, gcase, goff, "amin", include_self=True
    )
    if bool((case_len <= 0).any()):
        bad = int(torch.nonzero(case_len <= 0)[0, 0])
        raise ValueError(f"place_centers: case {bad} has a centerline of zero length")
    k = num_centers
    frac = (torch.arange(k, device=dev, dtype=s.dtype) + 0.5) / k
    target = (case_start[:, None] + frac[None] * case_len[:, None]).reshape(-1)
    case = torch.arange(num_cases, device=dev).repeat_interleave(k)
    idx = torch.searchsorted(u.contiguous(), target, right=True) - 1
    # stay inside the case: [first point, last point - 1]
    ptr = group_ptr(cl_batch, m, num_cases).to(dev)
    idx = torch.minimum(torch.maximum(idx, ptr[case]), ptr[case + 1] - 2)
    du = (u[idx + 1] - u[idx]).clamp_min(1e-12)
    lam = ((target - u[idx]) / du).clamp(0.0, 1.0).to(cl_pos.dtype)
    lw = lam[:, None]
    pos = cl_pos[idx] * (1 - lw) + cl_pos[idx + 1] * lw
    frame = _orthonormal_rows(cl_frame[idx] * (1 - lw[..., None]) + cl_frame[idx + 1] * lw[..., None])
    radius = cl_radius[idx] * (1 - lam) + cl_radius[idx + 1] * lam
    return {
        "i": idx,
        "lam": lam,
        "pos": pos,
        "frame": frame,
        "radius": radius,
        "case": case,
        "u": frac.repeat(num_cases).to(cl_pos.dtype),
        "spacing": (case_len / k).to(cl_pos.dtype)[case],
    }


class AnisotropicRBFDecoder(nn.Module):
    """Continuous wall fields from centerline tokens through anisotropic Gaussians.

    Parameters
    ----------
    d_model : width of the encoder tokens.
    out_channels : number of output channels.
    num_centers : ``K``, Gaussians per case.
    vectors : ``[start, stop)`` channel ranges of length 3 that are vectors (rotated with the frame).
    hidden : width of the head MLP (default ``d_model``).
    n_fourier : Fourier features of the arc-length coordinate fed to the head.
    n_extra : per-point centerline features passed as ``cl_extra`` and interpolated to the centers
        as extra head inputs (e.g. flow scales that amplitudes should follow linearly).
    tangent_scale, tangent_radius : the initial Gaussian scale along the tangent is the larger of
        ``tangent_scale`` center spacings and ``tangent_radius`` local radii (so that with many
        centers each wall point still sees several of them, whatever the wall mesh spacing).
    normal_scale : initial scale across, in local radii.
    offset_scale : the offset output is multiplied by this many local radii.
    max_log_scale : learned log-scale corrections are softly bounded to +-this.
    chunk_size, max_elements : passed to :func:`meshops.ops.rbf.rbf_eval`.

    Shapes
    ------
    query (Q, 3), query_batch (Q,) sorted, tokens (M, d_model), global_tokens (B, d_model),
    cl_extra (M, n_extra) or None, centerline tensors as in :func:`place_centers` -> (Q, out_channels)
    """

    def __init__(
        self,
        d_model: int,
        out_channels: int,
        num_centers: int = 128,
        vectors: Sequence[Sequence[int]] = (),
        hidden: int | None = None,
        n_fourier: int = 8,
        n_extra: int = 0,
        tangent_scale: float = 1.5,
        tangent_radius: float = 0.5,
        normal_scale: float = 1.0,
        offset_scale: float = 0.5,
        max_log_scale: float = 3.0,
        chunk_size: int | None = None,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> None:
        super().__init__()
        if num_centers < 1:
            raise ValueError(f"AnisotropicRBFDecoder: num_centers must be >= 1, got {num_centers}")
        if out_channels < 1:
            raise ValueError(f"AnisotropicRBFDecoder: out_channels must be >= 1, got {out_channels}")
        self.vectors = [tuple(int(v) for v in r) for r in vectors]
        for a, b in self.vectors:
            if b - a != 3 or a < 0 or b > out_channels:
                raise ValueError(f"AnisotropicRBFDecoder: vector channels [{a}, {b}) must be 3 channels within {out_channels}")
        self.num_centers, self.out_channels = num_centers, out_channels
        self.n_fourier = n_fourier
        self.tangent_scale, self.tangent_radius, self.normal_scale = tangent_scale, tangent_radius, normal_scale
        self.offset_scale, self.max_log_scale = offset_scale, max_log_scale
        self.chunk_size, self.max_elements = chunk_size, max_elements
        hidden = hidden or d_model
        self.n_extra = n_extra
        n_in = 2 * d_model + 2 * n_fourier + 1 + n_extra
        # outputs: offset (3), log-scales (3), rotation (2: cos/sin), amplitudes (C)
        self.head = nn.Sequential(
            nn.Linear(n_in, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 8 + out_channels)
        )
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.bias = nn.Linear(d_model, out_channels)
        # a per-case constant is not a rotation-equivariant vector: no bias on vector channels
        mask = torch.ones(out_channels)
        for a, b in self.vectors:
            mask[a:b] = 0.0
        self.register_buffer("bias_mask", mask, persistent=False)

    def centers(
        self,
        tokens: Tensor,
        global_tokens: Tensor,
        cl_extra: Tensor | None,
        cl_pos: Tensor,
        cl_frame: Tensor,
        cl_radius: Tensor,
        cl_arclength: Tensor,
        cl_branch: Tensor,
        cl_batch: Tensor,
    ) -> dict[str, Tensor]:
        """Centers, precision factors and world-frame amplitudes of every Gaussian.

        Shapes
        ------
        -> centers (B*K, 3), precision (B*K, 3, 3), weights (B*K, C), case (B*K,)
        """
        num_cases = global_tokens.shape[0]
        pc = place_centers(self.num_centers, cl_pos, cl_frame, cl_radius, cl_arclength, cl_branch, cl_batch, num_cases)
        i, lam = pc["i"], pc["lam"][:, None]
        tok = tokens[i] * (1 - lam) + tokens[i + 1] * lam
        freq = math.pi * (2.0 ** torch.arange(self.n_fourier, device=tok.device, dtype=tok.dtype))
        ang = pc["u"][:, None] * freq
        parts = [tok, global_tokens[pc["case"]], torch.sin(ang), torch.cos(ang), pc["radius"].log()[:, None]]
        if self.n_extra:
            if cl_extra is None or cl_extra.shape != (cl_pos.shape[0], self.n_extra):
                got = None if cl_extra is None else tuple(cl_extra.shape)
                raise ValueError(f"AnisotropicRBFDecoder: cl_extra must have shape ({cl_pos.shape[0]}, {self.n_extra}), got {got}")
            parts.append(cl_extra[i] * (1 - lam) + cl_extra[i + 1] * lam)
        z = torch.cat(parts, 1)
        o = self.head(z)
        frame, r = pc["frame"], pc["radius"]
        centers = pc["pos"] + torch.einsum("ki,kij->kj", o[:, 0:3] * (self.offset_scale * r[:, None]), frame)
        lim = self.max_log_scale
        ls = lim * torch.tanh(o[:, 3:6] / lim)
        sig_t = torch.maximum(self.tangent_scale * pc["spacing"], self.tangent_radius * r) * torch.exp(ls[:, 0])
        sig_n = self.normal_scale * r * torch.exp(ls[:, 1])
        sig_b = self.normal_scale * r * torch.exp(ls[:, 2])
        cs = nn.functional.normalize(torch.stack([1.0 + o[:, 6], o[:, 7]], 1), dim=1, eps=1e-6)
        cos, sin = cs[:, 0:1], cs[:, 1:2]
        t, n, b = frame[:, 0], frame[:, 1], frame[:, 2]
        e_n = cos * n + sin * b
        e_b = -sin * n + cos * b
        precision = torch.stack([t / sig_t[:, None], e_n / sig_n[:, None], e_b / sig_b[:, None]], 1)
        amp = o[:, 8:]
        if self.vectors:
            parts, last = [], 0
            for a, bnd in self.vectors:
                parts.append(amp[:, last:a])
                parts.append(torch.einsum("ki,kij->kj", amp[:, a:bnd], frame))
                last = bnd
            parts.append(amp[:, last:])
            amp = torch.cat(parts, 1)
        return {"centers": centers, "precision": precision, "weights": amp, "case": pc["case"], "sigma": torch.stack([sig_t, sig_n, sig_b], 1)}

    def forward(
        self,
        query: Tensor,
        query_batch: Tensor | None,
        tokens: Tensor,
        global_tokens: Tensor,
        cl_extra: Tensor | None,
        cl_pos: Tensor,
        cl_frame: Tensor,
        cl_radius: Tensor,
        cl_arclength: Tensor,
        cl_branch: Tensor,
        cl_batch: Tensor,
    ) -> Tensor:
        num_cases = global_tokens.shape[0]
        g = self.centers(tokens, global_tokens, cl_extra, cl_pos, cl_frame, cl_radius, cl_arclength, cl_branch, cl_batch)
        if query_batch is None:
            if num_cases != 1:
                raise ValueError(f"AnisotropicRBFDecoder: {num_cases} cases but no query_batch to split the queries")
            query_batch = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
        x_ptr = group_ptr(query_batch, query.shape[0], num_cases)
        c_ptr = torch.arange(num_cases + 1, dtype=torch.long) * self.num_centers
        out = rbf_eval(
            query,
            g["centers"],
            g["precision"],
            g["weights"],
            x_ptr,
            c_ptr,
            chunk_size=self.chunk_size,
            max_elements=self.max_elements,
        )
        return out + (self.bias(global_tokens) * self.bias_mask)[query_batch]
