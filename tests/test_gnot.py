"""GNOT: registered, batching-consistent, permutation-equivariant, normalized attention exact, learns."""

from __future__ import annotations

import torch
from torch_geometric.data import Batch, Data

from meshops import models
from meshops.nn.gnot import normalized_attention


def _graph(n: int, seed: int) -> Data:
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(n, 3, generator=g) * 10
    return Data(pos=pos, x=torch.cat([pos / 10, torch.rand(n, 2, generator=g)], 1), u=torch.rand(1, 2, generator=g))


def test_normalized_attention_matches_the_dense_formula():
    torch.manual_seed(0)
    q, k, v = torch.randn(7, 2, 4), torch.randn(5, 2, 4), torch.randn(5, 2, 3)
    out = normalized_attention(q, k, v, torch.zeros(7, dtype=torch.long), torch.zeros(5, dtype=torch.long), 1)
    qs, ks = q.softmax(-1), k.softmax(-1)
    ref = torch.einsum("nhd,mhd,mhe->nhe", qs, ks, v) / torch.einsum("nhd,mhd->nh", qs, ks)[..., None]
    assert torch.allclose(out, ref, atol=1e-6)


def test_gnot_batches_and_permutes_consistently():
    torch.manual_seed(0)
    m = models.create("gnot", in_channels=5, out_channels=2, global_channels=2, hidden=32, n_layers=2).eval()
    a, b = _graph(40, 1), _graph(30, 2)
    with torch.no_grad():
        ya, yb = m(a), m(b)
        yab = m(Batch.from_data_list([a, b]))
        perm = torch.randperm(40)
        yp = m(Data(pos=a.pos[perm], x=a.x[perm], u=a.u))
    assert ya.shape == (40, 2)
    assert torch.allclose(torch.cat([ya, yb]), yab, atol=1e-5)
    assert torch.allclose(ya[perm], yp, atol=1e-5)


def test_gnot_fits_a_smooth_field():
    torch.manual_seed(0)
    g = _graph(200, 3)
    y = torch.sin(g.pos[:, :1] / 3) + g.u[0, 0]
    m = models.create("gnot", in_channels=5, out_channels=1, global_channels=2, hidden=32, n_layers=2)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = ((m(g) - y) ** 2).mean()
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.05 * first
