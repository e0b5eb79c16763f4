"""``sfno_graph``: a spherical Fourier neural operator on any point set of the sphere.

Encoder MLP -> ``layers`` x :class:`meshops.nn.spherical.SFNOBlock` (spectral convolution with
per-degree weights, optional local message passing on the mesh graph) -> decoder MLP. The
spherical-harmonic transform is built from the graph's own points (``data.pos`` on the unit
sphere), so the same trained weights run on a lat-lon grid, an icosphere or scattered points.

Quadrature for the transform, in order of preference:
``data.sht_weights`` (N,) given by the dataset (exact grid weights; duplicates such as the pole
rows of an equiangular grid are then accepted), ``data.face`` (3, F) -> spherical Voronoi
weights, otherwise least squares (needs ``N >= (sht_lmax + 1) ** 2``). Transforms are cached per
point set (non-persistent: never saved in checkpoints).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

from meshops.models import register
from meshops.nn.spherical import SFNOBlock, SpectralConvS2, SphereMessagePassing, _act
from meshops.ops.sht import SphericalHarmonicTransform, gauss_legendre_grid

log = logging.getLogger(__name__)

__all__ = ["FullSpectralLinear", "RotatingLinear", "SphericalGraphOperator", "sht_for"]


def sht_for(
    pos: Tensor,
    lmax: int,
    weights: Tensor | None = None,
    faces: Tensor | None = None,
    quadrature: str = "auto",
) -> SphericalHarmonicTransform:
    """Build the transform for one point set following the preference order of this module.

    Shapes
    ------
    pos : (N, 3); weights : (N,); faces : (F, 3) or (3, F) int; returns a transform of degree lmax.
    """
    if faces is not None and faces.shape[0] == 3 and faces.shape[1] != 3:
        faces = faces.T
    if quadrature == "lsq" or (quadrature == "auto" and weights is None and faces is None):
        return SphericalHarmonicTransform(pos, lmax, method="lsq", name="data.pos")
    if weights is not None and quadrature in ("auto", "weights"):
        return SphericalHarmonicTransform(pos, lmax, weights, allow_duplicates=True, name="data.pos")
    if faces is not None and quadrature in ("auto", "voronoi", "mesh"):
        area = "mesh" if quadrature == "mesh" else "voronoi"
        return SphericalHarmonicTransform(pos, lmax, faces=faces, area=area, name="data.pos")  # type: ignore[arg-type]
    raise ValueError(
        f"sfno_graph: quadrature={quadrature!r} needs "
        + ("data.sht_weights" if quadrature == "weights" else "data.face")
    )


def _synth(c: Tensor, sht: SphericalHarmonicTransform) -> Tensor:
    """Inverse transform of coefficients up to some degree <= sht.lmax (zero-padded)."""
    return sht.inverse(torch.nn.functional.pad(c, (0, 0, 0, (sht.lmax + 1) ** 2 - c.shape[-2])))


class RotatingLinear(nn.Module):
    """Linear operator ``sum_{k<=order} z^k A_k(x) + sum_{1<=k<=order} B_k(z^k x)`` on a point set.

    ``A_k``, ``B_k`` are :class:`SpectralConvS2` in ``"lm"`` mode (complex weight per (l, |m|)),
    ``z`` the coordinate along the rotation axis. Multiplication by ``z`` couples degrees l and
    l +- 1 at the same order, as the Coriolis term does; the per-order operators carry the
    longitude derivatives and the per-degree (Laplacian) terms. Starts at zero.

    Shapes
    ------
    x : (..., N, in_channels); z : (N, 1); returns (..., N, out_channels).
    """

    def __init__(self, in_channels: int, out_channels: int, lmax: int, order: int = 2) -> None:
        super().__init__()
        self.a = nn.ModuleList(SpectralConvS2(in_channels, out_channels, lmax, "lm") for _ in range(order + 1))
        self.b = nn.ModuleList(SpectralConvS2(in_channels, out_channels, lmax, "lm") for _ in range(order))
        for prm in self.parameters():
            nn.init.zeros_(prm)

    def forward(self, x: Tensor, z: Tensor, sht: SphericalHarmonicTransform) -> Tensor:
        cx = sht(x)
        out = _synth(self.a[0](cx), sht)
        zk = torch.ones_like(z)
        for k in range(1, len(self.a)):
            zk = zk * z
            out = out + zk * _synth(self.a[k](cx), sht) + _synth(self.b[k - 1](sht(zk * x)), sht)
        return out


class FullSpectralLinear(nn.Module):
    """Dense linear map of all SH coefficients and channels up to ``lmax`` (starts at zero).

    ``((lmax + 1)^2 C)^2`` weights: meant for modest degrees (lmax = 10, 3 channels: 132k).

    Shapes
    ------
    coeffs : (..., K' >= K, in_channels); returns (..., K, out_channels), ``K = (lmax + 1) ** 2``.
    """

    def __init__(self, in_channels: int, out_channels: int, lmax: int) -> None:
        super().__init__()
        self.K, self.cin, self.cout = (lmax + 1) ** 2, in_channels, out_channels
        self.weight = nn.Parameter(torch.zeros(self.K * in_channels, self.K * out_channels))

    def forward(self, coeffs: Tensor) -> Tensor:
        c = coeffs[..., : self.K, :].reshape(*coeffs.shape[:-2], self.K * self.cin)
        return (c @ self.weight.to(c.dtype)).reshape(*coeffs.shape[:-2], self.K, self.cout)


@register("sfno_graph")
class SphericalGraphOperator(nn.Module):
    """SFNO on any spherical point set, with an optional local message-passing branch.

    Parameters
    ----------
    in_channels, out_channels : int
    hidden : int
        Latent channels.
    layers : int
        Number of :class:`SFNOBlock`.
    lmax : int
        Degree of the spectral weights (and of the transform unless ``sht_lmax`` is given).
    sht_lmax : int, optional
        Degree of the transform built from the points (>= ``lmax``; default ``lmax``).
    mode : "degree" (rotation equivariant) or "lm".
    mlp_ratio : float
    local : bool
        Add message passing on ``data.edge_index`` with SH encodings of edge directions.
    sh_lmax : int
        Degree of the edge-direction encoding.
    pos_features : "none", "z" or "xyz"
        Append the point's z (sine of latitude: the Coriolis parameter up to a constant) or its
        full position to the inputs. ``"none"`` keeps the model rotation equivariant.
    residual : bool
        Predict ``x[:, :out_channels] + model(x)`` (time stepping).
    quadrature : "auto", "weights", "voronoi", "mesh" or "lsq"
    activation : str
    internal : [nlat, nlon], optional
        Run the blocks on an internal Gauss-Legendre grid (as SFNO's ``scale_factor`` does): the
        first block maps the data points onto it, the last block maps back (skips resampled through
        the transforms), the others stay on it. Needs ``nlat > lmax`` and ``nlon > 2 lmax``. With
        ``local=True`` the message passing then runs at the data points, once after the encoder
        and once before the decoder.
    zero_init : bool
        Start the decoder's last layer at zero (the untrained model predicts 0, or persistence
        with ``residual=True``).
    linear : "none", "degree", "lm", "rotating" or "full"
        A linear spectral path from the raw inputs to the output, next to the nonlinear blocks.
        ``"degree"``/``"lm"``: one :class:`SpectralConvS2` (per-degree or per-(l, |m|) weights).
        ``"rotating"``: :class:`RotatingLinear`, ``sum_k z^k A_k(x) + B_k(z^k x)`` for ``k <= 2``,
        the structure of the shallow-water equations linearised on a sphere rotating about z
        (per-order operators coupled across degrees by the Coriolis parameter ``2 Omega z``).
        ``"full"``: :class:`FullSpectralLinear`, a dense matrix on all coefficients and channels
        (a Koopman/DMD-style operator), which :meth:`fit_linear` can solve in closed form.
    band_limit : bool
        Project the decoder's output onto degrees ``<= lmax`` through the point set's transform
        (the prediction stays band-limited, like a spectral solver's state).

    Shapes
    ------
    data.x : (N, in_channels); data.pos : (N, 3) on the unit sphere; optional data.edge_index
    (2, E), data.face (3, F), data.sht_weights (N,), data.batch (N,) / data.ptr (B + 1,);
    returns (N, out_channels).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int = 32,
        layers: int = 4,
        lmax: int = 16,
        sht_lmax: int | None = None,
        mode: str = "degree",
        mlp_ratio: float = 2.0,
        local: bool = False,
        sh_lmax: int = 2,
        pos_features: str = "z",
        residual: bool = False,
        quadrature: str = "auto",
        activation: str = "gelu",
        internal: list[int] | None = None,
        zero_init: bool = False,
        band_limit: bool = False,
        linear: str = "none",
    ) -> None:
        super().__init__()
        if pos_features not in ("none", "z", "xyz"):
            raise ValueError(f"sfno_graph: pos_features must be 'none', 'z' or 'xyz', got {pos_features!r}")
        if residual and out_channels > in_channels:
            raise ValueError(f"sfno_graph: residual=True needs out_channels ({out_channels}) <= in_channels ({in_channels})")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lmax = lmax
        self.sht_lmax = lmax if sht_lmax is None else sht_lmax
        if self.sht_lmax < lmax:
            raise ValueError(f"sfno_graph: sht_lmax ({self.sht_lmax}) must be >= lmax ({lmax})")
        self.pos_features, self.residual, self.local, self.quadrature = pos_features, residual, local, quadrature
        self.band_limit = band_limit
        n_pos = {"none": 0, "z": 1, "xyz": 3}[pos_features]
        self.encoder = nn.Sequential(
            nn.Linear(in_channels + n_pos, hidden * 2), _act(activation), nn.Linear(hidden * 2, hidden)
        )
        self.internal: SphericalHarmonicTransform | None = None
        if internal is not None:
            nlat, nlon = (int(v) for v in internal)
            if nlat <= lmax or nlon <= 2 * lmax:
                raise ValueError(f"sfno_graph: internal grid {nlat}x{nlon} is too coarse for lmax={lmax} "
                                 f"(needs nlat > {lmax} and nlon > {2 * lmax})")  # fmt: skip
            self.internal = SphericalHarmonicTransform.from_grid(gauss_legendre_grid(nlat, nlon), lmax)
        block_local = local and internal is None
        self.blocks = nn.ModuleList(
            SFNOBlock(hidden, lmax, mode, mlp_ratio, local=block_local, sh_lmax=sh_lmax, activation=activation)  # type: ignore[arg-type]
            for _ in range(layers)
        )
        self.local_in = self.local_out = None
        if local and internal is not None:
            self.local_in = SphereMessagePassing(hidden, sh_lmax, activation=activation)
            self.local_out = SphereMessagePassing(hidden, sh_lmax, activation=activation)
        self.decoder = nn.Sequential(
            nn.Linear(hidden, hidden * 2), _act(activation), nn.Linear(hidden * 2, out_channels)
        )
        if zero_init:
            nn.init.zeros_(self.decoder[-1].weight)
            nn.init.zeros_(self.decoder[-1].bias)
        if linear not in ("none", "degree", "lm", "rotating", "full"):
            raise ValueError(
                f"sfno_graph: linear must be 'none', 'degree', 'lm', 'rotating' or 'full', got {linear!r}"
            )
        self.linear: nn.Module | None = None
        self.linear_kind = linear
        if linear == "full":
            self.linear = FullSpectralLinear(in_channels, out_channels, lmax)
        elif linear == "rotating":
            self.linear = RotatingLinear(in_channels, out_channels, lmax)
        elif linear != "none":
            self.linear = SpectralConvS2(in_channels, out_channels, lmax, linear)  # type: ignore[arg-type]
            for prm in self.linear.parameters():
                nn.init.zeros_(prm)
        self._sht_cache: dict[tuple, SphericalHarmonicTransform] = {}

    # -- transforms -----------------------------------------------------------------------------
    def transform_for(
        self, pos: Tensor, weights: Tensor | None = None, faces: Tensor | None = None
    ) -> SphericalHarmonicTransform:
        """The (cached) transform of degree ``sht_lmax`` for a point set."""
        p = pos.detach()
        key = (
            p.shape[0],
            str(p.device),
            float(p.double().sum()),
            float((p.double() ** 2 * torch.arange(1, 4, device=p.device, dtype=torch.float64)).sum()),
            float(p[0, 0]),
            float(p[-1, 2]),
            None if weights is None else float(weights.detach().double().sum()),
            None if faces is None else int(faces.numel()),
        )
        hit = self._sht_cache.get(key)
        if hit is None:
            if len(self._sht_cache) > 32:
                self._sht_cache.clear()
            hit = sht_for(p.cpu(), self.sht_lmax, None if weights is None else weights.detach().cpu(),
                          None if faces is None else faces.detach().cpu(), self.quadrature).to(p.device)  # fmt: skip
            self._sht_cache[key] = hit
        return hit

    @torch.no_grad()
    def fit_linear(self, x: Tensor, y: Tensor, sht: SphericalHarmonicTransform, ridge: float = 1e-8) -> float:
        """Solve the ``"full"`` linear path in closed form (ridge least squares on SH coefficients).

        Fits ``sht(y - x) ~ sht(x) W`` (``residual=True``) or ``sht(y) ~ sht(x) W`` over the
        given pairs, i.e. the best linear one-step operator on the resolved degrees (a
        Koopman/DMD fit); the nonlinear blocks then learn what it misses. Returns the relative
        residual of the fit.

        Shapes
        ------
        x : (S, N, in_channels); y : (S, N, out_channels).
        """
        if not isinstance(self.linear, FullSpectralLinear):
            raise ValueError("sfno_graph: fit_linear needs linear='full'")
        if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
            raise ValueError(f"sfno_graph.fit_linear: need matching, non-empty pairs, got {x.shape[0]} and {y.shape[0]}")
        lin = self.linear
        target = y - x[..., : self.out_channels] if self.residual else y
        A = sht(x.double())[..., : lin.K, :].reshape(x.shape[0], -1)
        B = sht(target.double())[..., : lin.K, :].reshape(x.shape[0], -1)
        G = A.T @ A
        G = G + ridge * torch.trace(G) / G.shape[0] * torch.eye(G.shape[0], dtype=G.dtype)
        W = torch.linalg.solve(G, A.T @ B)
        lin.weight.copy_(W.to(lin.weight.dtype))
        return float((A @ W - B).norm() / B.norm().clamp_min(1e-300))

    # -- forward -----------------------------------------------------------------------------
    def forward_points(
        self,
        x: Tensor,
        pos: Tensor,
        sht: SphericalHarmonicTransform,
        edge_index: Tensor | None = None,
    ) -> Tensor:
        """Apply the operator to values on one point set (leading batch dims allowed).

        Shapes
        ------
        x : (..., N, in_channels); pos : (N, 3); edge_index : (2, E); returns (..., N, out_channels).
        """
        if x.shape[-1] != self.in_channels:
            raise ValueError(f"sfno_graph: expected {self.in_channels} input channels, got {x.shape[-1]}")
        h = x
        if self.pos_features != "none":
            pf = pos[:, 2:3] if self.pos_features == "z" else pos
            h = torch.cat([h, pf.to(x.dtype).expand(*x.shape[:-1], pf.shape[-1])], dim=-1)
        h = self.encoder(h)
        if self.internal is None:
            for blk in self.blocks:
                h = blk(h, sht, edge_index if self.local else None, pos if self.local else None)
        else:
            if self.local_in is not None:
                assert edge_index is not None, "sfno_graph(local=True) needs edge_index"
                h = h + self.local_in(h, edge_index, pos)
            n = len(self.blocks)
            for i, blk in enumerate(self.blocks):
                s_in = sht if i == 0 else self.internal
                s_out = sht if i == n - 1 else self.internal
                h = blk(h, s_in, sht_out=s_out)
            if self.local_out is not None:
                assert edge_index is not None
                h = h + self.local_out(h, edge_index, pos)
        out = self.decoder(h)
        if isinstance(self.linear, FullSpectralLinear):
            out = out + _synth(self.linear(sht(x)), sht)
        elif isinstance(self.linear, RotatingLinear):
            out = out + self.linear(x, pos[:, 2:3].to(x.dtype), sht)
        elif self.linear is not None:
            out = out + _synth(self.linear(sht(x)), sht)
        if self.band_limit:
            keep = (sht.degree <= self.lmax).to(out.dtype)[:, None]
            out = sht.inverse(sht(out) * keep)
        if self.residual:
            out = out + x[..., : self.out_channels]
        return out

    def forward(self, data: Any) -> Tensor:
        x, pos = data.x, data.pos
        if pos is None or pos.shape[-1] != 3:
            raise ValueError("sfno_graph: data.pos must hold (N, 3) points on the unit sphere")
        ptr = getattr(data, "ptr", None)
        bounds = [0, x.shape[0]] if ptr is None else [int(v) for v in ptr]
        weights = getattr(data, "sht_weights", None)
        face = getattr(data, "face", None)
        edge_index = getattr(data, "edge_index", None)
        if self.local and edge_index is None:
            raise ValueError("sfno_graph(local=True) needs data.edge_index")
        outs = []
        for g in range(len(bounds) - 1):
            a, b = bounds[g], bounds[g + 1]
            ei = None
            if edge_index is not None and self.local:
                keep = (edge_index[1] >= a) & (edge_index[1] < b)
                ei = edge_index[:, keep] - a
            fg = None
            if face is not None:
                if len(bounds) > 2:
                    f = face if face.shape[0] == 3 else face.T
                    fg = f[:, (f[0] >= a) & (f[0] < b)] - a
                else:
                    fg = face
            wg = None if weights is None else weights[a:b]
            sht = self.transform_for(pos[a:b], wg, fg)
            outs.append(self.forward_points(x[a:b], pos[a:b], sht, ei))
        return torch.cat(outs, dim=0)
