"""MeshGraphNet-style message passing: residual edge and node MLPs with LayerNorm.

Built on :mod:`meshops.ops` (``gather`` / ``scatter``), so the fast kernels are used when present.

Memory. The edge MLP's first layer acts on ``[e, x_src, x_dst]``; it is applied split,
``W_e e + (W_s x)[src] + (W_d x)[dst] + b``, so the (E, 3H) concatenation is never formed (the
weights keep the layout of one ``Linear(3H, H)``: checkpoints of the concatenating version load
unchanged). Without autograd the edges are processed in chunks and the edge latents are updated
in place, so a block holds one (E, H) edge latent plus (chunk, H) temporaries; with autograd an
optional per-block activation checkpointing keeps only each block's inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from meshops import ops
from meshops.nn.fused_edge import edge_update_inplace, fusable, fused_edge_update, fused_mlp
from meshops.nn.mlp import MLP

__all__ = ["EdgeNodeBlock", "MessagePassingProcessor", "EncodeProcessDecode", "edge_chunk", "fast_mlp", "mlp_chunked"]

_CHUNK_ELEMENTS = 1 << 22  # (chunk, H) temporaries of ~16 MB in float32


def edge_chunk(width: int, n: int) -> int:
    """Rows per chunk so that a (chunk, width) float32 temporary stays near 16 MB."""
    return max(1024, min(n, _CHUNK_ELEMENTS // max(width, 1)))


def fast_mlp(mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``mlp(x)``; in training through :func:`fused_mlp` when the MLP is the MeshGraphNet default
    (float32/64, no autocast), which gives the same values with fewer passes and buffers."""
    if (torch.is_grad_enabled() and x.dtype in (torch.float32, torch.float64)
            and not torch.is_autocast_enabled(x.device.type) and fusable(mlp)):
        return fused_mlp(mlp, x)
    return mlp(x)


def mlp_chunked(mlp: nn.Module, x: torch.Tensor, out_channels: int) -> torch.Tensor:
    """``mlp(x)`` row chunk by row chunk when autograd is off (peak = output + one chunk's temporaries).

    Shapes
    ------
    x : (E, C) -> (E, out_channels)
    """
    if torch.is_grad_enabled() or x.shape[0] <= edge_chunk(out_channels, x.shape[0]):
        return fast_mlp(mlp, x)
    n = x.shape[0]
    step = edge_chunk(out_channels, n)
    first = mlp(x[:step])
    out = first.new_empty(n, out_channels)
    out[:step] = first
    for a in range(step, n, step):
        out[a : a + step] = mlp(x[a : a + step])
    return out


class EdgeNodeBlock(nn.Module):
    """One round of message passing with residual updates.

    ``e' = e + MLP_e([e, x_src, x_dst])``, ``m_i = sum_{j -> i} e'_{ji}`` (or mean),
    ``x' = x + MLP_n([x, m])``. The first layer of ``MLP_e`` is applied split (no (E, 3H) tensor).

    Parameters
    ----------
    hidden : int
        Node and edge latent size.
    aggregate : str
        ``"sum"`` (MeshGraphNet) or ``"mean"``.
    mlp_layers : int
        Linear layers per MLP.

    Shapes
    ------
    x : (N, hidden); e : (E, hidden); edge_index : (2, E) [src, dst] -> ((N, hidden), (E, hidden))
    """

    def __init__(self, hidden: int, aggregate: str = "sum", mlp_layers: int = 2, fused: bool = True) -> None:
        super().__init__()
        if aggregate not in ("sum", "mean"):
            raise ValueError(f"EdgeNodeBlock: aggregate must be 'sum' or 'mean', got '{aggregate}'")
        self.aggregate = aggregate
        self.fused = fused
        self.edge_mlp = MLP(3 * hidden, hidden, hidden, mlp_layers)
        self.node_mlp = MLP(2 * hidden, hidden, hidden, mlp_layers)

    def _node_proj(self, x: torch.Tensor, h: int) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.edge_mlp.net[0].weight  # (H_out, 3H): columns [e | x_src | x_dst]
        xp = F.linear(x, torch.cat([w[:, h : 2 * h], w[:, 2 * h :]], dim=0))  # one matmul for both
        return xp[:, : w.shape[0]], xp[:, w.shape[0] :]

    def _edge_update(self, e: torch.Tensor, xs: torch.Tensor, xd: torch.Tensor, src: torch.Tensor,
                     dst: torch.Tensor) -> torch.Tensor:
        lin = self.edge_mlp.net[0]
        y = F.linear(e, lin.weight[:, : e.shape[-1]], lin.bias)
        y += ops.gather(xs, src).to(y.dtype)  # in place: addmm keeps no output for its backward
        y += ops.gather(xd, dst).to(y.dtype)
        return e + self.edge_mlp.net[1:](y)

    def _node_update(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return x + fast_mlp(self.node_mlp, torch.cat([x, m.to(x.dtype)], dim=-1))

    def forward(
        self, x: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor, inplace: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One round; ``inplace=True`` (only honoured without autograd) overwrites ``e``."""
        src, dst = edge_index[0], edge_index[1]
        if self._fuses(e):
            if torch.is_grad_enabled():
                return self._forward_fused(x, e, src, dst)
            return self._forward_inplace(x, e if inplace else e.clone(), src, dst)
        xs, xd = self._node_proj(x, e.shape[-1])
        if torch.is_grad_enabled():
            e = self._edge_update(e, xs, xd, src, dst)
            m = ops.scatter(e, dst, dim_size=x.shape[0], reduce=self.aggregate)
            return self._node_update(x, m), e
        return self._forward_chunked(x, e, xs, xd, src, dst, inplace)

    def _fuses(self, e: torch.Tensor) -> bool:
        """The fused kernels (same weights and arithmetic) serve float32/64 without autocast."""
        return (self.fused and e.dtype in (torch.float32, torch.float64) and not torch.is_autocast_enabled(e.device.type)
                and fusable(self.edge_mlp))

    def _fused_proj(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """``[W_s x + b, W_d x]`` (N, 2H): both node projections, the first layer's bias riding on the first."""
        h = e.shape[-1]
        lin = self.edge_mlp.net[0]
        w = torch.cat([lin.weight[:, h : 2 * h], lin.weight[:, 2 * h :]], dim=0)  # (2H, H): [W_s; W_d]
        return F.linear(x, w, torch.cat([lin.bias, torch.zeros_like(lin.bias)])).to(e.dtype)

    def _forward_fused(self, x: torch.Tensor, e: torch.Tensor, src: torch.Tensor,
                       dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e, m = fused_edge_update(self.edge_mlp, e, self._fused_proj(x, e), src, dst)
        if self.aggregate == "mean":
            m = m / torch.bincount(dst, minlength=x.shape[0]).clamp_min(1).to(m.dtype)[:, None]
        return self._node_update(x, m), e

    def _forward_inplace(self, x: torch.Tensor, e: torch.Tensor, src: torch.Tensor,
                         dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = edge_update_inplace(self.edge_mlp, e, self._fused_proj(x, e), src, dst)
        if self.aggregate == "mean":
            m /= torch.bincount(dst, minlength=x.shape[0]).clamp_min(1).to(m.dtype)[:, None]
        return self._node_update(x, m), e

    def _forward_chunked(self, x: torch.Tensor, e: torch.Tensor, xs: torch.Tensor, xd: torch.Tensor,
                         src: torch.Tensor, dst: torch.Tensor, inplace: bool) -> tuple[torch.Tensor, torch.Tensor]:
        n, n_e = x.shape[0], e.shape[0]
        step = edge_chunk(e.shape[-1], n_e)
        out = e if inplace else torch.empty_like(e)
        acc = torch.float64 if e.dtype == torch.float64 else torch.float32
        m = torch.zeros(n, e.shape[-1], dtype=acc, device=e.device)
        for a in range(0, n_e, step):
            d = dst[a : a + step]
            y = self._edge_update(e[a : a + step], xs, xd, src[a : a + step], d)
            out[a : a + step] = y
            m.index_add_(0, d, y.to(acc))
        if self.aggregate == "mean":
            m /= torch.bincount(dst, minlength=n).clamp_min(1).to(acc)[:, None]
        return self._node_update(x, m), out


class MessagePassingProcessor(nn.Module):
    """A stack of :class:`EdgeNodeBlock` (no weight sharing).

    Parameters
    ----------
    hidden, n_blocks, aggregate, mlp_layers : see :class:`EdgeNodeBlock`.
    checkpoint : bool
        Recompute each block's activations in the backward pass (activation checkpointing):
        a training step then keeps only the blocks' inputs alive.

    Shapes
    ------
    x : (N, hidden); e : (E, hidden); edge_index : (2, E) -> ((N, hidden), (E, hidden))
    """

    def __init__(self, hidden: int, n_blocks: int, aggregate: str = "sum", mlp_layers: int = 2,
                 checkpoint: bool = False) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.blocks = nn.ModuleList(EdgeNodeBlock(hidden, aggregate, mlp_layers) for _ in range(n_blocks))

    def forward(
        self, x: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor, inplace: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``inplace=True``: the caller gives up ``e`` (it may be overwritten when autograd is off)."""
        for i, block in enumerate(self.blocks):
            if self.checkpoint and torch.is_grad_enabled():
                x, e = _checkpoint(block, x, e, edge_index, use_reentrant=False)
            else:
                x, e = block(x, e, edge_index, inplace=inplace or i > 0)
        return x, e


class EncodeProcessDecode(nn.Module):
    """Encoder MLPs -> message passing processor -> decoder MLP (MeshGraphNet).

    Parameters
    ----------
    node_in, edge_in, out_channels : int
        Raw node feature, edge feature and output sizes.
    hidden : int
        Latent size.
    n_blocks : int
        Message passing rounds.
    checkpoint : bool
        Per-block activation checkpointing in training.
    precision : str
        ``"fp32"`` or ``"bf16"`` (autocast of encoders, processor and decoder; outputs float32).

    Shapes
    ------
    x : (N, node_in); edge_attr : (E, edge_in); edge_index : (2, E) -> (N, out_channels)
    """

    def __init__(
        self,
        node_in: int,
        edge_in: int,
        out_channels: int,
        hidden: int = 128,
        n_blocks: int = 8,
        aggregate: str = "sum",
        mlp_layers: int = 2,
        checkpoint: bool = False,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"EncodeProcessDecode: precision must be 'fp32' or 'bf16', got '{precision}'")
        self.precision, self.hidden = precision, hidden
        self.node_encoder = MLP(node_in, hidden, hidden, mlp_layers)
        self.edge_encoder = MLP(edge_in, hidden, hidden, mlp_layers)
        self.processor = MessagePassingProcessor(hidden, n_blocks, aggregate, mlp_layers, checkpoint)
        self.decoder = MLP(hidden, out_channels, hidden, mlp_layers, layer_norm=False)

    def forward(self, x: torch.Tensor, edge_attr: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            e = mlp_chunked(self.edge_encoder, edge_attr, self.hidden)
            h, _ = self.processor(fast_mlp(self.node_encoder, x), e, edge_index, inplace=True)
            out = self.decoder(h)
        return out.to(dtype)
