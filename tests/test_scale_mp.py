"""Memory-lean message passing: the split edge MLP equals the concatenating one, old weights load."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from meshops import models
from meshops.nn import message_passing as mp
from meshops.nn.mlp import MLP

torch.set_num_threads(1)


class _OldBlock(nn.Module):
    """The block as it was before the split: one Linear over the (E, 3H) concatenation."""

    def __init__(self, hidden: int, aggregate: str = "sum", mlp_layers: int = 2) -> None:
        super().__init__()
        self.aggregate = aggregate
        self.edge_mlp = MLP(3 * hidden, hidden, hidden, mlp_layers)
        self.node_mlp = MLP(2 * hidden, hidden, hidden, mlp_layers)

    def forward(self, x, e, ei):
        src, dst = ei
        e = e + self.edge_mlp(torch.cat([e, x[src], x[dst]], dim=-1))
        m = torch.zeros_like(x).index_add_(0, dst, e)
        if self.aggregate == "mean":
            m = m / torch.bincount(dst, minlength=x.shape[0]).clamp_min(1)[:, None]
        return x + self.node_mlp(torch.cat([x, m], dim=-1)), e


class _OldMGN(nn.Module):
    def __init__(self, node_in, edge_in, out, hidden, n_blocks, aggregate="sum", mlp_layers=2):
        super().__init__()
        self.net = nn.Module()
        self.net.node_encoder = MLP(node_in, hidden, hidden, mlp_layers)
        self.net.edge_encoder = MLP(edge_in, hidden, hidden, mlp_layers)
        self.net.processor = nn.Module()
        self.net.processor.blocks = nn.ModuleList(_OldBlock(hidden, aggregate, mlp_layers) for _ in range(n_blocks))
        self.net.decoder = MLP(hidden, out, hidden, mlp_layers, layer_norm=False)

    def forward(self, data):
        h, e = self.net.node_encoder(data.x), self.net.edge_encoder(data.edge_attr)
        for b in self.net.processor.blocks:
            h, e = b(h, e, data.edge_index)
        return self.net.decoder(h)


def _graph(n=60, n_e=400, seed=0):
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    return Data(x=torch.randn(n, 3, generator=g), edge_attr=torch.randn(n_e, 4, generator=g),
                edge_index=torch.randint(0, n, (2, n_e), generator=g), pos=torch.randn(n, 3, generator=g))


@pytest.mark.parametrize("aggregate,mlp_layers", [("sum", 2), ("mean", 2), ("sum", 1), ("sum", 3)])
def test_old_checkpoint_loads_and_gives_the_same_output(aggregate, mlp_layers, monkeypatch):
    torch.manual_seed(0)
    old = _OldMGN(3, 4, 2, 16, 3, aggregate, mlp_layers)
    buf = io.BytesIO()
    torch.save(old.state_dict(), buf)
    buf.seek(0)
    new = models.create("mgn", in_channels=3, out_channels=2, hidden=16, n_blocks=3, aggregate=aggregate,
                        mlp_layers=mlp_layers)
    new.load_state_dict(torch.load(buf, weights_only=True))
    g = _graph()
    ref = old(g)
    out = new(g)  # autograd path
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()
    monkeypatch.setattr(mp, "_CHUNK_ELEMENTS", 16 * 50)  # chunks of 1024 rows minimum: force several
    monkeypatch.setattr(mp, "edge_chunk", lambda width, n: 37)
    with torch.no_grad():
        chunked = new(g)
    assert torch.allclose(chunked, ref, atol=1e-5), (chunked - ref).abs().max()
    # gradients agree too
    ref.pow(2).sum().backward()
    out.pow(2).sum().backward()
    for (name, p_old), p_new in zip(old.named_parameters(), new.parameters(), strict=True):
        assert torch.allclose(p_old.grad, p_new.grad, atol=1e-4), name


def test_chunked_inference_keeps_the_caller_edge_latents(monkeypatch):
    torch.manual_seed(1)
    blk = mp.EdgeNodeBlock(8)
    x, e = torch.randn(30, 8), torch.randn(200, 8)
    ei = torch.randint(0, 30, (2, 200))
    keep = e.clone()
    monkeypatch.setattr(mp, "edge_chunk", lambda width, n: 23)
    with torch.no_grad():
        x1, e1 = blk(x, e, ei)
        proc = mp.MessagePassingProcessor(8, 3)
        proc(x, e, ei)
    assert torch.equal(e, keep)
    x2, e2 = blk(x, e, ei)
    assert torch.allclose(x1, x2, atol=1e-5) and torch.allclose(e1, e2, atol=1e-5)


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(2)
    g = _graph(seed=2)
    a = models.create("mgn", in_channels=3, out_channels=2, hidden=16, n_blocks=3)
    b = models.create("mgn", in_channels=3, out_channels=2, hidden=16, n_blocks=3, checkpoint=True)
    b.load_state_dict(a.state_dict())
    a(g).pow(2).sum().backward()
    b(g).pow(2).sum().backward()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-5)


def test_bf16_autocast_is_close_and_float32_out():
    torch.manual_seed(3)
    g = _graph(seed=3)
    a = models.create("mgn", in_channels=3, out_channels=2, hidden=16, n_blocks=2).eval()
    b = models.create("mgn", in_channels=3, out_channels=2, hidden=16, n_blocks=2, precision="bf16").eval()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        ya, yb = a(g), b(g)
    assert yb.dtype == torch.float32
    assert (ya - yb).abs().max() < 0.1 * ya.abs().max()
    with pytest.raises(ValueError, match="precision must be 'fp32' or 'bf16', got 'fp8'"):
        models.create("mgn", in_channels=3, out_channels=2, precision="fp8")
