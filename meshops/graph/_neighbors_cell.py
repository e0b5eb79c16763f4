"""Device route of :mod:`meshops.graph.neighbors`: a cell list in plain torch (CUDA or anywhere).

Points are hashed into cubic cells of side ``r``; each query scans the 3^d surrounding cells found
by ``searchsorted`` on the sorted cell keys, in chunks keeping the candidate pairs under
``pair_budget``. kNN runs radius searches whose radius doubles per query until ``k`` neighbors are
inside. Also the pair sorting and capping shared with the brute-force reference.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _sort_pairs(q: Tensor, n: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Sort pairs by (query, distance, neighbor) with stable sorts."""
    o = torch.argsort(n, stable=True)
    q, n, d = q[o], n[o], d[o]
    o = torch.argsort(d, stable=True)
    q, n, d = q[o], n[o], d[o]
    o = torch.argsort(q, stable=True)
    return q[o], n[o], d[o]


def _rank_in_group(q: Tensor) -> Tensor:
    """Position of each element within its run of equal (sorted) ``q`` values."""
    if q.numel() == 0:
        return q.clone()
    start = torch.ones_like(q, dtype=torch.bool)
    start[1:] = q[1:] != q[:-1]
    idx = torch.arange(q.numel(), device=q.device)
    first = torch.cummax(torch.where(start, idx, torch.zeros_like(idx)), 0).values
    return idx - first


def _cell_radius(
    x: Tensor, y: Tensor, r: float, exclude_self: bool, pair_budget: int
) -> tuple[Tensor, Tensor, Tensor]:
    """All pairs (query in y, point in x) with distance <= r, by a cell list (any device)."""
    dev = x.device
    d = x.shape[1]
    if x.shape[0] == 0 or y.shape[0] == 0:
        e = torch.zeros(0, dtype=torch.long, device=dev)
        return e, e, torch.zeros(0, dtype=x.dtype, device=dev)
    lo = torch.minimum(x.min(0).values, y.min(0).values)
    cx = torch.floor((x - lo) / r).long()
    cy = torch.floor((y - lo) / r).long()
    dims = torch.maximum(cx.max(0).values, cy.max(0).values) + 3  # room for the -1/+1 offsets
    mult = torch.ones(d, dtype=torch.long, device=dev)
    for i in range(d - 2, -1, -1):
        mult[i] = mult[i + 1] * dims[i + 1]
    if float(dims.double().prod()) > 2**62:
        raise ValueError(f"radius search: r={r} is too small for the extent of the points (cell grid overflows)")
    key_x = ((cx + 1) * mult).sum(1)
    order = torch.argsort(key_x)
    skey = key_x[order]
    offsets = torch.cartesian_prod(*[torch.tensor([-1, 0, 1], device=dev)] * d).view(-1, d)
    off_key = (offsets * mult).sum(1)
    key_y = ((cy + 1) * mult).sum(1)
    # candidate counts per query over the 3^d cells
    nk = key_y[:, None] + off_key[None, :]
    start = torch.searchsorted(skey, nk)
    end = torch.searchsorted(skey, nk, right=True)
    cnt = (end - start).sum(1)
    csum = torch.cumsum(cnt, 0)
    qs, ns, ds = [], [], []
    q0 = 0
    ny = y.shape[0]
    while q0 < ny:
        base = int(csum[q0 - 1]) if q0 > 0 else 0
        q1 = int(torch.searchsorted(csum, torch.tensor(base + pair_budget, device=dev), right=True))
        q1 = max(q1, q0 + 1)
        q1 = min(q1, ny)
        st, en = start[q0:q1].reshape(-1), end[q0:q1].reshape(-1)
        lens = en - st
        qid = torch.arange(q0, q1, device=dev).repeat_interleave(start.shape[1])
        qrep = qid.repeat_interleave(lens)
        # position within each cell range
        tot = int(lens.sum())
        if tot:
            first = torch.repeat_interleave(st - torch.cumsum(lens, 0) + lens, lens)
            pos = first + torch.arange(tot, device=dev)
            nb = order[pos]
            dist = torch.linalg.vector_norm(x[nb] - y[qrep], dim=1)
            keep = dist <= r
            if exclude_self:
                keep &= nb != qrep
            qs.append(qrep[keep])
            ns.append(nb[keep])
            ds.append(dist[keep])
        q0 = q1
    if not qs:
        e = torch.zeros(0, dtype=torch.long, device=dev)
        return e, e, torch.zeros(0, dtype=x.dtype, device=dev)
    return torch.cat(qs), torch.cat(ns), torch.cat(ds)


def _cap(q: Tensor, n: Tensor, d: Tensor, cap: int | None) -> tuple[Tensor, Tensor, Tensor]:
    q, n, d = _sort_pairs(q, n, d)
    if cap is not None:
        keep = _rank_in_group(q) < cap
        q, n, d = q[keep], n[keep], d[keep]
    return q, n, d


def _cell_knn(x: Tensor, y: Tensor, k: int, exclude_self: bool, pair_budget: int) -> tuple[Tensor, Tensor, Tensor]:
    dev = x.device
    n_x, d = x.shape
    ext = (x.max(0).values - x.min(0).values).clamp_min(1e-12)
    vol = float(ext.double().prod())
    # radius holding about 2k points at the mean density, then doubled per query until k are found
    unit = math.pi ** (d / 2) / math.gamma(d / 2 + 1)
    r = max((2.0 * (k + 1) * vol / (max(n_x, 1) * unit)) ** (1.0 / d), 1e-9 * float(ext.max()))
    todo = torch.arange(y.shape[0], device=dev)
    qs, ns, ds = [], [], []
    rmax = float(torch.linalg.vector_norm(
        torch.maximum(x.max(0).values, y.max(0).values) - torch.minimum(x.min(0).values, y.min(0).values)))
    while todo.numel():
        q, nb, dist = _cell_radius(x, y[todo], r, False, pair_budget)
        q = todo[q]
        if exclude_self:
            keep = nb != q
            q, nb, dist = q[keep], nb[keep], dist[keep]
        cnt = torch.bincount(q, minlength=y.shape[0])[todo]
        have = cnt >= min(k, n_x - (1 if exclude_self else 0))
        if r >= rmax:
            have = torch.ones_like(have)
        done = todo[have]
        mask = torch.zeros(y.shape[0], dtype=torch.bool, device=dev)
        mask[done] = True
        sel = mask[q]
        qs.append(q[sel])
        ns.append(nb[sel])
        ds.append(dist[sel])
        todo = todo[~have]
        r *= 2.0
    q, n, dd = _sort_pairs(torch.cat(qs), torch.cat(ns), torch.cat(ds))
    keep = _rank_in_group(q) < k
    return q[keep], n[keep], dd[keep]
