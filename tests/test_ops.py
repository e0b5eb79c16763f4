"""meshops.ops: every op against its plain-torch reference, autograd, opcheck, determinism, errors.

Random inputs are fresh draws on every run (the seed is in each failure message); values are
normal draws, never zeros. The Triton kernels are exercised in ``test_ops_triton.py``.
"""

from __future__ import annotations

import os

import pytest
import torch

import meshops.ops as ops
from meshops.ops import reference as ref

REDUCES = ["sum", "mean", "max", "min"]


def fresh_seed() -> int:
    return int.from_bytes(os.urandom(4), "little")


def rand_index(gen: torch.Generator, e: int, n: int, dtype=torch.int64, hole: bool = True) -> torch.Tensor:
    """Indices with repeats and, when ``hole``, rows 0 and n-1 that receive nothing."""
    lo, hi = (1, n - 1) if hole and n > 2 else (0, n)
    return torch.randint(lo, hi, (e,), generator=gen).to(dtype)


def rand(gen: torch.Generator, *shape, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)


def tol(dtype: torch.dtype) -> dict:
    return {
        torch.float64: dict(rtol=1e-10, atol=1e-10),
        torch.float32: dict(rtol=1e-4, atol=1e-4),
        torch.float16: dict(rtol=2e-2, atol=2e-2),
        torch.bfloat16: dict(rtol=5e-2, atol=5e-2),
    }[dtype]


# ---------------------------------------------------------------------------------- scatter
@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("idx_dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize(
    "e,n,feat",
    [(60, 9, (5,)), (40, 7, ()), (50, 6, (3, 4)), (4000, 300, (32,)), (3000, 200, (2, 16))],
)
def test_scatter_matches_reference(reduce, idx_dtype, e, n, feat):
    seed = fresh_seed()
    g = torch.Generator().manual_seed(seed)
    src = rand(g, e, *feat)
    index = rand_index(g, e, n, idx_dtype)
    out = ops.scatter(src, index, n, reduce)
    exp = ref.scatter(src.double(), index, n, reduce).float()
    assert out.shape == (n, *feat) and out.dtype == src.dtype
    torch.testing.assert_close(out, exp, **tol(torch.float32), msg=lambda m: f"seed {seed}: {m}")
    assert torch.all(out[0] == 0) and torch.all(out[-1] == 0), "rows with no entries must be 0"
    # the same through a cached CSR and through the deterministic route
    c = ops.CSR.from_index(index, n)
    torch.testing.assert_close(ops.scatter(src, index, n, reduce, csr=c), exp, **tol(torch.float32))
    torch.testing.assert_close(ops.scatter(src, index, n, reduce, deterministic=True), exp, **tol(torch.float32))


def test_scatter_default_dim_size_and_empty_index():
    g = torch.Generator().manual_seed(fresh_seed())
    src = rand(g, 10, 3)
    index = torch.tensor([0, 4, 4, 2, 0, 1, 4, 2, 2, 3])
    assert ops.scatter(src, index).shape == (5, 3)
    empty = ops.scatter(src[:0], index[:0], 6, "max")
    assert empty.shape == (6, 3) and torch.all(empty == 0)
    assert ops.scatter(src[:0], index[:0]).shape == (0, 3)
    for reduce in REDUCES:
        assert torch.all(ops.scatter(src[:0].requires_grad_(), index[:0], 4, reduce) == 0)


def test_scatter_integer_src_sums():
    index = torch.tensor([1, 1, 3])
    out = ops.scatter(torch.tensor([[2], [5], [7]]), index, 4, "sum")
    assert out.dtype == torch.int64 and out[:, 0].tolist() == [0, 7, 0, 7]
    assert ops.scatter(torch.tensor([2, 5, 7]), index, 4, "max").tolist() == [0, 5, 0, 7]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_dtypes(dtype, reduce):
    seed = fresh_seed()
    g = torch.Generator().manual_seed(seed)
    src = rand(g, 3000, 24, dtype=dtype)
    index = rand_index(g, 3000, 100)
    out = ops.scatter(src, index, 100, reduce)
    assert out.dtype == dtype
    exp = ref.scatter(src.double(), index, 100, reduce)
    torch.testing.assert_close(out.double(), exp, **tol(dtype), msg=lambda m: f"seed {seed}: {m}")


def test_noncontiguous_inputs():
    g = torch.Generator().manual_seed(fresh_seed())
    base = rand(g, 40, 3000)
    src = base.t()[:, ::2]  # (3000, 20), non-contiguous
    idx_base = rand_index(g, 6000, 50)
    index = idx_base[::2]
    assert not src.is_contiguous() and not index.is_contiguous()
    for reduce in REDUCES:
        exp = ref.scatter(src.contiguous(), index.contiguous(), 50, reduce)
        torch.testing.assert_close(ops.scatter(src, index, 50, reduce), exp)
    x = rand(g, 80, 50).t()  # (50, 80)
    torch.testing.assert_close(ops.gather(x, index), x.contiguous()[index])
    ei = torch.stack([rand_index(g, 6000, 50, hole=False), idx_base])[:, ::2]
    torch.testing.assert_close(
        ops.gather_scatter(x, ei), ref.gather_scatter(x, None, ei, None, None, None, None, 50), rtol=1e-4, atol=1e-4
    )


# ---------------------------------------------------------------------------------- segment
@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("ptr_dtype", [torch.int64, torch.int32])
def test_segment_matches_reference(reduce, ptr_dtype):
    seed = fresh_seed()
    g = torch.Generator().manual_seed(seed)
    src = rand(g, 200, 6, 2)
    ptr = torch.tensor([0, 3, 3, 50, 51, 120, 120, 200], dtype=ptr_dtype)
    out = ops.segment(src, ptr, reduce)
    exp = ref.segment(src, ptr, reduce)
    assert out.shape == (7, 6, 2)
    torch.testing.assert_close(out, exp, msg=lambda m: f"seed {seed}: {m}")
    assert torch.all(out[1] == 0) and torch.all(out[5] == 0)
    # a ptr that covers only part of src
    part = torch.tensor([10, 15, 15, 90], dtype=ptr_dtype)
    torch.testing.assert_close(ops.segment(src, part, reduce), ref.segment(src, part, reduce))
    torch.testing.assert_close(
        ops.segment(src, ptr, reduce), ops.scatter(src, torch.repeat_interleave(torch.arange(7), ptr.diff().long()), 7, reduce)
    )


# ---------------------------------------------------------------------------------- softmax
@pytest.mark.parametrize("e,n,f", [(300, 40, 4), (5000, 200, 16), (50, 10, 1)])
@pytest.mark.parametrize("idx_dtype", [torch.int64, torch.int32])
def test_softmax_matches_reference(e, n, f, idx_dtype):
    seed = fresh_seed()
    g = torch.Generator().manual_seed(seed)
    src = rand(g, e, f) * 5
    index = rand_index(g, e, n, idx_dtype)
    out = ops.softmax(src, index, n)
    torch.testing.assert_close(out, ref.softmax(src, index, n), msg=lambda m: f"seed {seed}: {m}")
    # Each group sums to one; groups that receive nothing (always rows 0 and n-1, and by chance any
    # other row when e is small) sum to zero.
    filled = (torch.bincount(index.long(), minlength=n) > 0).to(out.dtype)[:, None].expand(n, f)
    torch.testing.assert_close(ops.scatter(out, index, n), filled, msg=lambda m: f"seed {seed}: {m}")
    assert ops.softmax(src[:0], index[:0], n).shape == (0, f)
    big = torch.full((4, 2), 1000.0)  # stable: no overflow
    assert torch.isfinite(ops.softmax(big, torch.tensor([0, 0, 1, 1]))).all()


# -------------------------------------------------------------------------- gather (+ grad)
@pytest.mark.parametrize("idx_dtype", [torch.int64, torch.int32])
def test_gather_and_its_backward(idx_dtype):
    g = torch.Generator().manual_seed(fresh_seed())
    x = rand(g, 300, 20).requires_grad_()
    index = rand_index(g, 5000, 300, idx_dtype)
    y = ops.gather(x, index)
    torch.testing.assert_close(y, x.detach()[index.long()])
    w = rand(g, 5000, 20)
    (gx,) = torch.autograd.grad((y * w).sum(), x)
    exp = torch.zeros(300, 20, dtype=torch.float64).index_add_(0, index.long(), w.double()).float()
    torch.testing.assert_close(gx, exp)
    assert ops.gather(torch.arange(5) * 3, torch.tensor([4, 0])).tolist() == [12, 0]


# ------------------------------------------------------------------------------ gather_scatter
def _mp_case(g, n_src=60, n_dst=None, e=500, f_src=8, f_dst=8, d=3, f_out=5, dtype=torch.float64):
    n_dst = n_dst or n_src
    ei = torch.stack([rand_index(g, e, n_src, hole=False), rand_index(g, e, n_dst)])
    return dict(
        x_src=rand(g, n_src, f_src, dtype=dtype),
        x_dst=rand(g, n_dst, f_dst, dtype=dtype),
        edge_index=ei,
        weight=rand(g, f_out, f_src + f_dst + d, dtype=dtype),
        edge_attr=rand(g, e, d, dtype=dtype),
        bias=rand(g, f_out, dtype=dtype),
        edge_weight=rand(g, e, dtype=dtype).abs() + 0.1,
    )


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize(
    "variant", ["full", "no_dst", "no_attr", "no_bias", "plain", "plain_weighted", "bipartite", "narrow_out", "int32"]
)
def test_gather_scatter_matches_reference(reduce, variant):
    seed = fresh_seed()
    g = torch.Generator().manual_seed(seed)
    kw = dict(f_out=20) if variant != "narrow_out" else dict(f_out=3, f_src=16, f_dst=16)
    if variant == "bipartite":
        kw.update(n_src=70, n_dst=25)
    c = _mp_case(g, **kw)
    x_src, x_dst, ei = c["x_src"], c["x_dst"], c["edge_index"]
    w, ea, b, ew = c["weight"], c["edge_attr"], c["bias"], c["edge_weight"]
    include_dst = True
    if variant == "no_dst":
        include_dst, w = False, torch.cat([w[:, :8], w[:, 16:]], 1)  # drop the F_dst block
    if variant == "no_attr":
        ea, w = None, w[:, :16]
    if variant == "no_bias":
        b = None
    if variant in ("plain", "plain_weighted"):
        w = ea = b = None
        ew = ew if variant == "plain_weighted" else None
    if variant == "int32":
        ei = ei.int()
    x = (x_src, x_dst) if variant == "bipartite" else x_src
    if variant != "bipartite":
        x_dst = x_src
    n_dst = x_dst.size(0) if variant == "bipartite" else x_src.size(0)
    out = ops.gather_scatter(x, ei, w, ea, b, edge_weight=ew, include_dst=include_dst, reduce=reduce)
    exp = ref.gather_scatter(
        x_src, x_dst if (include_dst and w is not None) else None, ei, w, ea, b, ew, n_dst, reduce
    )
    torch.testing.assert_close(out, exp, msg=lambda m: f"seed {seed} ({variant}): {m}")
    c2 = ops.CSR.from_edge_index(ei, n_dst, x_src.size(0))
    out_csr = ops.gather_scatter(x, ei, w, ea, b, edge_weight=ew, include_dst=include_dst, reduce=reduce, csr=c2)
    torch.testing.assert_close(out_csr, exp)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_gather_scatter_low_precision(dtype):
    g = torch.Generator().manual_seed(fresh_seed())
    c = _mp_case(g, e=2000, dtype=dtype)
    out = ops.gather_scatter(c["x_src"], c["edge_index"], c["weight"][:, :19].contiguous(), c["edge_attr"], c["bias"])
    assert out.dtype == dtype
    exp = ref.gather_scatter(
        c["x_src"].double(), c["x_src"].double(), c["edge_index"], c["weight"][:, :19].double(),
        c["edge_attr"].double(), c["bias"].double(), None, 60,
    )
    scale = exp.abs().max().item()
    assert (out.double() - exp).abs().max().item() < 2e-2 * scale


def test_gather_scatter_empty_graph_and_isolated_nodes():
    g = torch.Generator().manual_seed(fresh_seed())
    x = rand(g, 10, 4)
    w = rand(g, 6, 8)
    ei = torch.zeros(2, 0, dtype=torch.long)
    out = ops.gather_scatter(x, ei, w, bias=rand(g, 6))
    assert out.shape == (10, 6) and torch.all(out == 0)
    ei = torch.tensor([[1, 2, 3], [5, 5, 6]])
    out = ops.gather_scatter(x, ei, w, bias=rand(g, 6), reduce="mean")
    assert torch.all(out[:5] == 0) and torch.all(out[7:] == 0) and torch.all(out[5] != 0)


# ----------------------------------------------------------------------------------- autograd
def _gc(fn, *inputs, fast: bool = False):
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=fast)


@pytest.mark.parametrize("det", [False, True])
@pytest.mark.parametrize("reduce", REDUCES)
def test_gradcheck_scatter_segment(reduce, det):
    g = torch.Generator().manual_seed(fresh_seed())
    src = rand(g, 40, 3, dtype=torch.float64).requires_grad_()
    index = rand_index(g, 40, 9)
    _gc(lambda s: ops.scatter(s, index, 9, reduce, deterministic=det), src)
    big = rand(g, 1200, 16, dtype=torch.float64).requires_grad_()  # the sorted CSR route
    bidx = rand_index(g, 1200, 50)
    bc = ops.CSR.from_index(bidx, 50)
    _gc(lambda s: ops.scatter(s, bidx, 50, reduce, csr=bc), big, fast=True)
    ptr = torch.tensor([0, 5, 5, 22, 40])
    _gc(lambda s: ops.segment(s, ptr, reduce), src)


@pytest.mark.parametrize("det", [False, True])
def test_gradcheck_softmax_gather(det):
    g = torch.Generator().manual_seed(fresh_seed())
    src = rand(g, 50, 2, dtype=torch.float64).requires_grad_()
    index = rand_index(g, 50, 8)
    _gc(lambda s: ops.softmax(s, index, 8, deterministic=det), src)
    big = rand(g, 1100, 16, dtype=torch.float64).requires_grad_()
    bidx = rand_index(g, 1100, 40)
    _gc(lambda s: ops.softmax(s, bidx, 40, csr=ops.CSR.from_index(bidx, 40)), big, fast=True)
    x = rand(g, 12, 3, dtype=torch.float64).requires_grad_()
    _gc(lambda x: ops.gather(x, index % 12, deterministic=det), x)


@pytest.mark.parametrize("det", [False, True])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_gradcheck_gather_scatter(reduce, det):
    g = torch.Generator().manual_seed(fresh_seed())
    c = _mp_case(g, n_src=15, e=60, f_src=3, f_dst=3, d=2, f_out=4)
    ins = [c["x_src"], c["weight"], c["edge_attr"], c["bias"], c["edge_weight"]]
    for t in ins:
        t.requires_grad_()
    ei = c["edge_index"]
    _gc(lambda x, w, a, b, ew: ops.gather_scatter(x, ei, w, a, b, edge_weight=ew, reduce=reduce, deterministic=det), *ins)
    _gc(lambda x, ew: ops.gather_scatter(x, ei, edge_weight=ew, reduce=reduce, deterministic=det), ins[0], ins[4])
    narrow = rand(g, 4, 3 + 3 + 2, dtype=torch.float64).requires_grad_()  # F_out < F_src: W_src applied before aggregating
    _gc(lambda x, w: ops.gather_scatter(x, ei, w[:2], c["edge_attr"], reduce=reduce), ins[0], narrow)


# --------------------------------------------------------------------------- custom op checks
def _opcheck_samples():
    g = torch.Generator().manual_seed(fresh_seed())
    src = rand(g, 30, 4, dtype=torch.float64).requires_grad_()
    index = rand_index(g, 30, 7)
    c = ops.CSR.from_index(index, 7)
    ei = torch.stack([rand_index(g, 30, 12, hole=False), index])
    cc = ops.CSR.from_edge_index(ei, 7, 12)
    t = cc.transpose()
    x = rand(g, 12, 4, dtype=torch.float64).requires_grad_()
    ew = (rand(g, 30, dtype=torch.float64).abs() + 0.1).requires_grad_()
    return [
        (torch.ops.meshops.csr_reduce, (src, c.ptr, c.perm, r)) for r in REDUCES
    ] + [
        (torch.ops.meshops.csr_reduce, (src, torch.tensor([0, 4, 4, 30]), None, "sum")),
        (torch.ops.meshops.spmm, (x, cc.ptr, cc.col, ew[cc.perm], t.ptr, t.col, ew[t.perm])),
        (torch.ops.meshops.spmm, (x, cc.ptr, cc.col, None, None, None, None)),
    ] + [
        (torch.ops.meshops.scatter_atomic, (src, index, None, None, 7, r)) for r in REDUCES
    ] + [
        (torch.ops.meshops.scatter_atomic, (x, ei[1], ei[0], ew, 7, "sum")),
    ]


def test_opcheck_custom_ops():
    for op, args in _opcheck_samples():
        torch.library.opcheck(op, args)


# ------------------------------------------------------------------------------- determinism
def test_deterministic_bits_identical():
    g = torch.Generator().manual_seed(fresh_seed())
    c = _mp_case(g, n_src=400, e=6000, f_src=32, f_dst=32, d=4, f_out=48, dtype=torch.float32)
    src = rand(g, 6000, 32)
    index = c["edge_index"][1]

    def run():
        x = c["x_src"].clone().requires_grad_()
        with ops.deterministic(True):
            y = ops.gather_scatter(x, c["edge_index"], c["weight"], c["edge_attr"], c["bias"], edge_weight=c["edge_weight"])
            (gx,) = torch.autograd.grad(y.square().sum(), x)
            s = ops.scatter(src, index, 400)
            sm = ops.softmax(src, index, 400)
        return y, gx, s, sm

    first = run()
    for _ in range(2):
        for a, b in zip(first, run(), strict=True):
            assert torch.equal(a, b)


def test_deterministic_switch_semantics():
    assert not ops.is_deterministic()
    with ops.deterministic(True):
        assert ops.is_deterministic()
        with ops.deterministic(False):
            assert not ops.is_deterministic()
        assert ops.is_deterministic()
    assert not ops.is_deterministic()
    ops.deterministic(True)
    try:
        assert ops.is_deterministic() and ops.is_deterministic(False) is False
    finally:
        ops.deterministic(False)
    assert not ops.is_deterministic()


# ------------------------------------------------------------------------------- bad inputs
def test_errors_name_the_offending_value():
    src = torch.randn(5, 3) + 3
    with pytest.raises(IndexError, match=r"contains the value 7, out of range for dim_size=5"):
        ops.scatter(src, torch.tensor([0, 1, 7, 2, 3]), 5)
    with pytest.raises(IndexError, match=r"negative value -2"):
        ops.scatter(src, torch.tensor([0, 1, -2, 2, 3]), 5)
    with pytest.raises(ValueError, match=r"index has 4 entries but the source has 5 rows"):
        ops.scatter(src, torch.tensor([0, 1, 2, 3]), 5)
    with pytest.raises(TypeError, match=r"index has dtype torch.float32; expected torch.int64 or torch.int32"):
        ops.scatter(src, torch.tensor([0.0, 1, 2, 3, 4]), 5)
    with pytest.raises(TypeError, match=r"src has dtype torch.int64; expected a floating dtype"):
        ops.scatter(torch.arange(5), torch.arange(5), 5, "mean")
    with pytest.raises(ValueError, match=r"reduce='prod' is not one of"):
        ops.scatter(src, torch.arange(5), 5, "prod")
    with pytest.raises(IndexError, match=r"gather: index contains the value 9, out of range for dim_size=5"):
        ops.gather(src, torch.tensor([9]))
    with pytest.raises(IndexError, match=r"softmax: index contains the negative value -1"):
        ops.softmax(src, torch.tensor([0, -1, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"ptr must be non-decreasing; ptr\[1\] = 4 > ptr\[2\] = 2"):
        ops.segment(src, torch.tensor([0, 4, 2, 5]))
    with pytest.raises(IndexError, match=r"ptr\[-1\] = 6 exceeds the 5 rows of src"):
        ops.segment(src, torch.tensor([0, 2, 6]))
    ei = torch.tensor([[0, 1, 4], [1, 2, 3]])
    with pytest.raises(IndexError, match=r"edge_index\[1\] \(destination\) contains the value 3, out of range for dim_size=3"):
        ops.gather_scatter(src, ei, dim_size=3)
    with pytest.raises(IndexError, match=r"edge_index\[0\] \(source\) contains the value 4, out of range for dim_size=2"):
        ops.gather_scatter((src[:2], src), ei)
    with pytest.raises(ValueError, match=r"weight has shape \(4, 7\); expected \(4, 6\) with F_src=3 \+ F_dst=3"):
        ops.gather_scatter(src, ei, torch.randn(4, 7))
    with pytest.raises(ValueError, match=r"edge_attr must have shape \(3, D\), got \(2, 1\)"):
        ops.gather_scatter(src, ei, torch.randn(4, 7), edge_attr=torch.randn(2, 1))
    with pytest.raises(ValueError, match=r"edge_attr and bias need a weight"):
        ops.gather_scatter(src, ei, edge_attr=torch.randn(3, 1))
    with pytest.raises(ValueError, match=r"edge_weight must have shape \(3,\), got \(4,\)"):
        ops.gather_scatter(src, ei, edge_weight=torch.rand(4))
    with pytest.raises(ValueError, match=r"edge_index must have shape \(2, E\), got \(3, 3\)"):
        ops.gather_scatter(src, torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"csr has 5 rows and 5 entries, but dim_size=6"):
        ops.scatter(src, torch.arange(5), 6, csr=ops.CSR.from_index(torch.arange(5), 5))


def test_checks_switch_skips_the_range_check():
    src = torch.randn(4, 2) + 1
    index = torch.tensor([0, 1, 2, 3])
    with ops.checks(False):
        assert ops.scatter(src, index, 4).shape == (4, 2)
    with pytest.raises(IndexError):
        ops.scatter(src, index, 3)


# ------------------------------------------------------------------------------------- CSR
def test_csr_from_edge_index_and_transpose():
    g = torch.Generator().manual_seed(fresh_seed())
    ei = torch.stack([rand_index(g, 200, 30, hole=False), rand_index(g, 200, 20)])
    c = ops.CSR.from_edge_index(ei, 20, 30)
    assert c.ptr.shape == (21,) and c.ptr[0] == 0 and c.ptr[-1] == 200
    assert torch.equal(ei[1][c.perm], c.row) and torch.equal(ei[0][c.perm], c.col)
    assert torch.all(c.row.diff() >= 0)
    for r in range(20):  # stable: entries of one row keep their edge order
        assert torch.all(c.perm[c.ptr[r] : c.ptr[r + 1]].diff() > 0)
    t = c.transpose()
    assert (t.num_rows, t.num_cols) == (30, 20)
    assert torch.equal(ei[0][t.perm], t.row) and torch.equal(ei[1][t.perm], t.col)
    assert t.transpose() is c
    assert torch.equal(torch.sort(t.perm).values, torch.arange(200))


def test_csr_cached_on_pyg_data():
    from torch_geometric.data import Batch, Data

    g = torch.Generator().manual_seed(fresh_seed())
    ei = torch.stack([rand_index(g, 50, 10, hole=False), rand_index(g, 50, 10)])
    data = Data(x=rand(g, 10, 2), edge_index=ei)
    c1 = ops.csr(data)
    assert ops.csr(data) is c1 and c1.num_rows == 10
    assert "_meshops_csr_cache" not in data.keys()
    batch = Batch.from_data_list([data, data])
    assert ops.csr(batch).num_rows == 20 and ops.csr(batch).num_entries == 100
    data.edge_index[1, 0] = 9 if int(data.edge_index[1, 0]) != 9 else 8  # in-place change -> rebuilt
    c2 = ops.csr(data)
    assert c2 is not c1 and torch.equal(ei[1][c2.perm], c2.row)
    data.edge_index = ei[:, :20].clone()
    assert ops.csr(data).num_entries == 20
    with pytest.raises(KeyError, match=r"no attribute 'edge_index_3'"):
        ops.csr(data, "edge_index_3")
    data.pos_1 = rand(g, 7, 3)
    data.edge_index_1 = torch.tensor([[0, 1, 2], [1, 2, 3]])
    assert ops.csr(data, "edge_index_1").num_rows == 7  # from pos_1, not max + 1
    data.down_1 = torch.tensor([[0, 5, 9], [0, 0, 6]])
    assert (ops.csr(data, "down_1", 7, 10).num_rows, ops.csr(data, "down_1", 7, 10).num_cols) == (7, 10)
    y = ops.gather_scatter(data.x, data.edge_index, csr=ops.csr(data))
    torch.testing.assert_close(y, ops.gather_scatter(data.x, data.edge_index))


@pytest.mark.slow
def test_torch_compile_composes():
    g = torch.Generator().manual_seed(fresh_seed())
    x = rand(g, 50, 8)
    ei = torch.stack([rand_index(g, 300, 50, hole=False), rand_index(g, 300, 50)])
    w = rand(g, 4, 16)
    c = ops.CSR.from_edge_index(ei, 50)

    def f(x):
        with ops.checks(False):
            return ops.gather_scatter(x, ei, w, csr=c).relu().sum()

    torch.testing.assert_close(torch.compile(f)(x), f(x))


def test_kernels_benchmark_runs_and_agrees(tmp_path):
    """``meshops bench kernels`` on a tiny graph: every row timed, ours == the peers (checked inside)."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "kernels.py"
    spec = importlib.util.spec_from_file_location("meshops_bench_kernels_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "rows.json"
    argv = ["--sizes", "3000:8:5", "--no-mesh", "--repeat", "1", "--min-time", "0", "--json", str(out)]
    assert mod.main(argv) == 0
    rows = json.loads(out.read_text())
    ops_run = {r["op"] for r in rows}
    assert {"scatter_sum", "segment_sum", "softmax", "gather_scatter(linear)", "gather_scatter(linear) fwd+bwd"} <= ops_run
    assert all(r["ours_ms"] > 0 and r["ratio"] > 0 for r in rows)
