"""Spherical-harmonic operator layers on any spherical point set (SFNO-style, plus mesh message passing).

The layers take values at the points of a sphere (channels last) and a
:class:`meshops.ops.sht.SphericalHarmonicTransform` for that point set, passed at call time: the
learned weights depend on the degree ``l`` (and optionally the order ``m``) only, so one trained
layer runs on a Gauss grid, an equiangular grid, an icosphere or a Fibonacci point set alike.

* :class:`SpectralConvS2` -- multiplies SH coefficients by per-degree channel-mixing matrices
  (``mode="degree"``, the Driscoll-Healy convolution: exactly rotation equivariant) or by
  per-(l, |m|) matrices acting on the (m, -m) pair as a complex number (``mode="lm"``: equivariant
  only to rotations about the polar axis).
* :class:`SphericalConv` -- SHT -> :class:`SpectralConvS2` -> inverse SHT (optionally onto another
  point set).
* :class:`SFNOBlock` -- spectral convolution (+ optional local message passing on the mesh graph)
  -> activation -> pointwise MLP -> skip.
* :class:`SHEdgeEncoding` / :class:`SphereMessagePassing` -- real spherical harmonics of edge
  directions, and a message-passing branch using them.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from meshops.ops.sht import SphericalHarmonicTransform, degree_order, num_coeffs, real_sph_harm

__all__ = [
    "SFNOBlock",
    "SHEdgeEncoding",
    "SpectralConvS2",
    "SphereMessagePassing",
    "SphericalConv",
]

Mode = Literal["degree", "lm"]

_ACTS = {"gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU, "identity": nn.Identity}


def _act(name: str) -> nn.Module:
    if name not in _ACTS:
        raise ValueError(f"activation '{name}' is not one of {sorted(_ACTS)}")
    return _ACTS[name]()


def _resample(x: Tensor, sht: SphericalHarmonicTransform, sht_out: SphericalHarmonicTransform) -> Tensor:
    """Values on ``sht_out``'s points of the expansion of ``x`` (truncated or zero-padded in degree)."""
    c = sht(x)
    K_out = num_coeffs(sht_out.lmax)
    if c.shape[-2] < K_out:
        c = torch.cat([c, c.new_zeros(*c.shape[:-2], K_out - c.shape[-2], c.shape[-1])], dim=-2)
    return sht_out.inverse(c[..., :K_out, :])


class SpectralConvS2(nn.Module):
    """Channel mixing of real SH coefficients with weights depending on the degree (and order).

    Parameters
    ----------
    in_channels, out_channels : int
    lmax : int
        Largest degree the layer acts on; coefficients above it are dropped.
    mode : "degree" or "lm"
        ``"degree"``: ``out_lm = W_l^T c_lm`` (rotation equivariant). ``"lm"``:
        ``out_{l,m} = A_{l|m|}^T c_{l,m} + s(m) B_{l|m|}^T c_{l,-m}`` with ``s(m) = sign(m)``, i.e.
        a complex weight on ``c_{l,|m|} - i c_{l,-|m|}`` as in SFNO's diagonal operator.
    gain : float
        Weight initialisation variance factor (``std = sqrt(gain / in_channels)``).

    Shapes
    ------
    coeffs : ``(..., K, in_channels)`` with ``K >= (lmax + 1) ** 2``; returns
    ``(..., (lmax + 1) ** 2, out_channels)``.
    """

    l_index: Tensor
    half_index: Tensor
    partner: Tensor
    sign: Tensor

    def __init__(self, in_channels: int, out_channels: int, lmax: int, mode: Mode = "degree", gain: float = 1.0):
        super().__init__()
        if mode not in ("degree", "lm"):
            raise ValueError(f"SpectralConvS2: mode must be 'degree' or 'lm', got {mode!r}")
        if lmax < 0:
            raise ValueError(f"SpectralConvS2: lmax must be >= 0, got {lmax}")
        self.in_channels, self.out_channels, self.lmax, self.mode = in_channels, out_channels, lmax, mode
        std = math.sqrt(gain / in_channels)
        l_idx, m_idx = degree_order(lmax)
        self.register_buffer("l_index", l_idx, persistent=False)
        if mode == "degree":
            self.weight = nn.Parameter(std * torch.randn(lmax + 1, in_channels, out_channels))
        else:
            n_half = (lmax + 1) * (lmax + 2) // 2
            self.weight = nn.Parameter(std * torch.randn(n_half, in_channels, out_channels))
            # B acts on the partner (l, -m); zero for m = 0
            self.weight_b = nn.Parameter(std * torch.randn(n_half, in_channels, out_channels))
            half = l_idx * (l_idx + 1) // 2 + m_idx.abs()
            self.register_buffer("half_index", half, persistent=False)
            self.register_buffer("partner", l_idx * l_idx + l_idx - m_idx, persistent=False)
            self.register_buffer("sign", torch.sign(m_idx).to(torch.float32), persistent=False)

    def forward(self, coeffs: Tensor) -> Tensor:
        K = num_coeffs(self.lmax)
        if coeffs.shape[-2] < K:
            pad = coeffs.new_zeros(*coeffs.shape[:-2], K - coeffs.shape[-2], coeffs.shape[-1])
            coeffs = torch.cat([coeffs, pad], dim=-2)
        c = coeffs[..., :K, :]
        if c.shape[-1] != self.in_channels:
            raise ValueError(f"SpectralConvS2: expected {self.in_channels} channels, got {c.shape[-1]}")
        if self.mode == "degree":
            return torch.einsum("...ki,kio->...ko", c, self.weight[self.l_index])
        a = self.weight[self.half_index]
        b = self.weight_b[self.half_index] * self.sign.to(c.dtype)[:, None, None]
        return torch.einsum("...ki,kio->...ko", c, a) + torch.einsum(
            "...ki,kio->...ko", c[..., self.partner, :], b
        )

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, lmax={self.lmax}, mode={self.mode!r}"


class SphericalConv(nn.Module):
    """Spectral convolution on a point set: forward SHT, :class:`SpectralConvS2`, inverse SHT.

    Shapes
    ------
    x : ``(..., N_in, in_channels)``; returns ``(..., N_out, out_channels)`` where ``N_out`` is the
    point count of ``sht_out`` (default ``sht``).
    """

    def __init__(self, in_channels: int, out_channels: int, lmax: int, mode: Mode = "degree", gain: float = 1.0):
        super().__init__()
        self.conv = SpectralConvS2(in_channels, out_channels, lmax, mode, gain)

    def forward(
        self, x: Tensor, sht: SphericalHarmonicTransform, sht_out: SphericalHarmonicTransform | None = None
    ) -> Tensor:
        sht_out = sht if sht_out is None else sht_out
        c = self.conv(sht(x))
        K_out = num_coeffs(sht_out.lmax)
        if c.shape[-2] < K_out:
            c = torch.cat([c, c.new_zeros(*c.shape[:-2], K_out - c.shape[-2], c.shape[-1])], dim=-2)
        return sht_out.inverse(c[..., :K_out, :])


class SHEdgeEncoding(nn.Module):
    """Real spherical harmonics of edge directions (and optionally the edge length).

    Shapes
    ------
    vec : ``(E, 3)`` edge vectors (``pos[dst] - pos[src]``); returns
    ``(E, (lmax + 1) ** 2 [+ 1])``. Zero-length edges give the l = 0 component only.
    """

    def __init__(self, lmax: int = 2, with_length: bool = True):
        super().__init__()
        self.lmax, self.with_length = lmax, with_length
        self.out_channels = num_coeffs(lmax) + int(with_length)

    def forward(self, vec: Tensor) -> Tensor:
        r = torch.linalg.vector_norm(vec, dim=-1, keepdim=True)
        unit = vec / r.clamp_min(torch.finfo(vec.dtype).tiny)
        Y = real_sph_harm(self.lmax, unit, normalize=False) * math.sqrt(4.0 * math.pi)
        Y = torch.where(r > 0, Y, torch.nn.functional.one_hot(torch.zeros_like(r[..., 0], dtype=torch.long), Y.shape[-1]).to(Y.dtype))
        return torch.cat([Y, r], dim=-1) if self.with_length else Y


class SphereMessagePassing(nn.Module):
    """Local branch: messages ``MLP([x_src, x_dst, SH(edge direction), |edge|])`` averaged at ``dst``.

    Shapes
    ------
    x : ``(..., N, C)``; edge_index : ``(2, E)`` int64 (src, dst); pos : ``(N, 3)``;
    returns ``(..., N, C)``.
    """

    def __init__(self, channels: int, sh_lmax: int = 2, hidden: int | None = None, activation: str = "gelu"):
        super().__init__()
        self.enc = SHEdgeEncoding(sh_lmax, with_length=True)
        hidden = hidden or channels
        self.msg = nn.Sequential(
            nn.Linear(2 * channels + self.enc.out_channels, hidden), _act(activation), nn.Linear(hidden, channels)
        )

    def forward(self, x: Tensor, edge_index: Tensor, pos: Tensor) -> Tensor:
        src, dst = edge_index[0], edge_index[1]
        e = self.enc((pos[dst] - pos[src]).to(x.dtype))
        e = e.expand(*x.shape[:-2], *e.shape)
        m = self.msg(torch.cat([x.index_select(-2, src), x.index_select(-2, dst), e], dim=-1))
        n = x.shape[-2]
        out = x.new_zeros(*x.shape[:-2], n, m.shape[-1]).index_add(-2, dst, m)
        deg = torch.zeros(n, dtype=x.dtype, device=x.device).index_add(
            0, dst, torch.ones_like(dst, dtype=x.dtype)
        )
        return out / deg.clamp_min(1.0)[:, None]


class SFNOBlock(nn.Module):
    """SFNO block on any point set: ``x + MLP(act(SpectralConv(x) [+ local(x)] [+ W x]))``.

    Parameters
    ----------
    channels : int
    lmax : int
        Degree of the spectral weights.
    mode : "degree" or "lm"
    mlp_ratio : float
        Hidden width of the pointwise MLP relative to ``channels``.
    local : bool
        Add a :class:`SphereMessagePassing` branch (needs ``edge_index`` and ``pos`` at call time).
    inner_skip : bool
        Add a pointwise linear map of the input next to the spectral convolution.
    sh_lmax : int
        Degree of the edge-direction encoding of the local branch.

    Shapes
    ------
    x : ``(..., N, channels)``; returns ``(..., N_out, channels)`` (``N_out`` of ``sht_out``; with
    another ``sht_out`` the outer skip is the input resampled through the two transforms, and the
    inner skip and the local branch are not used).
    """

    def __init__(
        self,
        channels: int,
        lmax: int,
        mode: Mode = "degree",
        mlp_ratio: float = 2.0,
        local: bool = False,
        inner_skip: bool = False,
        sh_lmax: int = 2,
        activation: str = "gelu",
    ):
        super().__init__()
        gain = 2.0 if activation != "identity" else 1.0
        if inner_skip or local:
            gain /= 2.0
        self.spectral = SphericalConv(channels, channels, lmax, mode, gain)
        self.inner = nn.Linear(channels, channels) if inner_skip else None
        self.local = SphereMessagePassing(channels, sh_lmax, activation=activation) if local else None
        self.act = _act(activation)
        hidden = max(1, int(round(channels * mlp_ratio)))
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), _act(activation), nn.Linear(hidden, channels))

    def forward(
        self,
        x: Tensor,
        sht: SphericalHarmonicTransform,
        edge_index: Tensor | None = None,
        pos: Tensor | None = None,
        sht_out: SphericalHarmonicTransform | None = None,
    ) -> Tensor:
        y = self.spectral(x, sht, sht_out)
        same = sht_out is None or sht_out is sht
        if self.inner is not None and same:
            y = y + self.inner(x)
        if self.local is not None:
            if edge_index is None or pos is None:
                raise ValueError("SFNOBlock(local=True) needs edge_index and pos")
            if not same:
                raise ValueError("SFNOBlock: the local branch needs the same input and output point set")
            y = y + self.local(x, edge_index, pos)
        y = self.mlp(self.act(y))
        if same:
            return y + x
        # resolution change: the skip is the input resampled through the two transforms
        assert sht_out is not None
        return y + _resample(x, sht, sht_out)
