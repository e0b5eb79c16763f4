"""The Triton kernels of meshops.ops, against the plain-torch reference.

Without a GPU they run on CPU tensors through Triton's interpreter: ``TRITON_INTERPRET=1`` must be
set before triton is first imported, so ``test_triton_kernels_in_interpreter`` runs the
``check_*`` functions of this file in a fresh subprocess (with ``MESHOPS_TRITON_CPU=1`` routing
CPU tensors to the kernels); the rest of the suite never sees the variables. With CUDA the same
checks run on the GPU at larger sizes (``gpu`` marker).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import meshops.ops as ops
from meshops.ops import _ops
from meshops.ops import reference as ref

HAS_TRITON = importlib.util.find_spec("triton") is not None
IN_INTERPRETER = os.environ.get("TRITON_INTERPRET") == "1" and os.environ.get("MESHOPS_TRITON_CPU") == "1"
REDUCES = ["sum", "mean", "max", "min"]
TOL = {
    torch.float64: dict(rtol=1e-9, atol=1e-9),
    torch.float32: dict(rtol=1e-4, atol=1e-4),
    torch.float16: dict(rtol=2e-2, atol=2e-2),
    torch.bfloat16: dict(rtol=5e-2, atol=8e-2),
}


def _gen(device: str) -> tuple[torch.Generator, int]:
    seed = int.from_bytes(os.urandom(4), "little")
    return torch.Generator().manual_seed(seed), seed


def _rand(g, *shape, dtype=torch.float32, device="cpu"):
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).to(device)


def _index(g, e, n, device, dtype=torch.int64, hole=True):
    lo, hi = (1, n - 1) if hole else (0, n)
    return torch.randint(lo, hi, (e,), generator=g).to(dtype).to(device)


# ------------------------------------------------------------------ shared suites (cpu/cuda)
def suite_scatter_segment(device: str, e: int, n: int, f: int) -> None:
    g, seed = _gen(device)
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        src = _rand(g, e, f, dtype=dtype, device=device)
        assert _ops.use_triton(src), "the Triton path must be the one under test"
        for idx_dtype in (torch.int64, torch.int32):
            index = _index(g, e, n, device, idx_dtype)
            for reduce in REDUCES:
                exp = ref.scatter(src.double(), index, n, reduce).to(dtype)
                for det in (False, True):
                    out = ops.scatter(src, index, n, reduce, deterministic=det)
                    assert out.dtype == dtype
                    torch.testing.assert_close(
                        out, exp, **TOL[dtype], msg=lambda m, c=f"seed {seed} {dtype} {reduce} det={det}": f"{c}: {m}"
                    )
                    assert torch.all(out[0] == 0) and torch.all(out[-1] == 0)
    src = _rand(g, e, 3, 2, device=device)
    ptr = torch.tensor([0, 0, e // 3, e // 3, e // 2, e], device=device)
    for reduce in REDUCES:
        torch.testing.assert_close(ops.segment(src, ptr, reduce), ref.segment(src, ptr, reduce))
        torch.testing.assert_close(ops.segment(src, ptr.int(), reduce), ref.segment(src, ptr, reduce))
    empty = ops.scatter(src[:0], torch.zeros(0, dtype=torch.long, device=device), 5)
    assert empty.shape == (5, 3, 2) and torch.all(empty == 0)


def suite_softmax_gather(device: str, e: int, n: int, f: int) -> None:
    g, seed = _gen(device)
    src = _rand(g, e, f, device=device) * 4
    index = _index(g, e, n, device)
    for det in (False, True):
        out = ops.softmax(src, index, n, deterministic=det)
        torch.testing.assert_close(out, ref.softmax(src, index, n), msg=lambda m: f"seed {seed}: {m}")
    x = _rand(g, n, f, device=device).requires_grad_()
    w = _rand(g, e, f, device=device)
    for det in (False, True):
        (gx,) = torch.autograd.grad((ops.gather(x, index, deterministic=det) * w).sum(), x)
        torch.testing.assert_close(gx, ref.scatter(w.double(), index, n).float(), rtol=1e-4, atol=1e-4)


def suite_gather_scatter(device: str, n: int, e: int, f: int, f_out: int) -> None:
    g, seed = _gen(device)
    x = _rand(g, n, f, device=device)
    ei = torch.stack([_index(g, e, n, device, hole=False), _index(g, e, n, device)])
    ea = _rand(g, e, 3, device=device)
    w = _rand(g, f_out, 2 * f + 3, device=device)
    b = _rand(g, f_out, device=device)
    ew = _rand(g, e, device=device).abs() + 0.1
    c = ops.CSR.from_edge_index(ei, n)
    for reduce in ("sum", "mean"):
        exp = ref.gather_scatter(x.double(), x.double(), ei, w.double(), ea.double(), b.double(), ew.double(), n, reduce)
        for kw in (dict(deterministic=False), dict(deterministic=True), dict(csr=c)):
            out = ops.gather_scatter(x, ei.int(), w, ea, b, edge_weight=ew, reduce=reduce, **kw)
            torch.testing.assert_close(out.double(), exp, rtol=1e-4, atol=1e-3, msg=lambda m, c=f"seed {seed} {kw}": f"{c}: {m}")
        exp0 = ref.gather_scatter(x, None, ei, None, None, None, None, n, reduce)
        for det in (False, True):
            torch.testing.assert_close(ops.gather_scatter(x, ei, reduce=reduce, deterministic=det), exp0, rtol=1e-4, atol=1e-4)
    xh = x.half()
    out = ops.gather_scatter(xh, ei, w.half(), ea.half(), b.half(), deterministic=True)
    exp = ref.gather_scatter(x.double(), x.double(), ei, w.double(), ea.double(), b.double(), None, n)
    assert out.dtype == torch.float16
    assert (out.double() - exp).abs().max() < 2e-2 * exp.abs().max()


def _gc(fn, inputs) -> bool:
    # fast mode (random projections): a handful of kernel launches instead of one per element
    return torch.autograd.gradcheck(fn, inputs, fast_mode=True)


def suite_gradcheck(device: str) -> None:
    g, _ = _gen(device)
    src = _rand(g, 30, 3, dtype=torch.float64, device=device).requires_grad_()
    index = _index(g, 30, 7, device)
    for det in (False, True):
        for reduce in REDUCES:
            assert _gc(lambda s, r=reduce, d=det: ops.scatter(s, index, 7, r, deterministic=d), (src,))
        assert _gc(lambda s, d=det: ops.softmax(s, index, 7, deterministic=d), (src,))
        x = _rand(g, 9, 3, dtype=torch.float64, device=device).requires_grad_()
        ei = torch.stack([_index(g, 30, 9, device, hole=False), _index(g, 30, 9, device)])
        w = _rand(g, 4, 6 + 2, dtype=torch.float64, device=device).requires_grad_()
        ea = _rand(g, 30, 2, dtype=torch.float64, device=device).requires_grad_()
        ew = (_rand(g, 30, dtype=torch.float64, device=device).abs() + 0.1).requires_grad_()
        assert _gc(
            lambda x, w, ea, ew, ei=ei, d=det: ops.gather_scatter(x, ei, w, ea, edge_weight=ew, deterministic=d),
            (x, w, ea, ew),
        )
    ptr = torch.tensor([0, 4, 4, 30], device=device)
    for reduce in REDUCES:
        assert _gc(lambda s, r=reduce: ops.segment(s, ptr, r), (src,))


def suite_opcheck(device: str) -> None:
    g, _ = _gen(device)
    src = _rand(g, 20, 3, dtype=torch.float32, device=device).requires_grad_()
    index = _index(g, 20, 6, device)
    c = ops.CSR.from_index(index, 6)
    ei = torch.stack([_index(g, 20, 8, device, hole=False), index])
    cc = ops.CSR.from_edge_index(ei, 6, 8)
    t = cc.transpose()
    x = _rand(g, 8, 3, device=device).requires_grad_()
    ew = (_rand(g, 20, device=device).abs() + 0.1).requires_grad_()
    cases = [(torch.ops.meshops.csr_reduce, (src, c.ptr, c.perm, r)) for r in ("sum", "max")]
    cases += [
        (torch.ops.meshops.spmm, (x, cc.ptr, cc.col, ew[cc.perm], t.ptr, t.col, ew[t.perm])),
        (torch.ops.meshops.scatter_atomic, (src, index, None, None, 6, "mean")),
        (torch.ops.meshops.scatter_atomic, (x, ei[1], ei[0], ew, 6, "sum")),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


def suite_deterministic_bits(device: str, n: int, e: int, f: int) -> None:
    g, _ = _gen(device)
    x0 = _rand(g, n, f, device=device)
    ei = torch.stack([_index(g, e, n, device, hole=False), _index(g, e, n, device)])
    w = _rand(g, f, 2 * f, device=device)
    src = _rand(g, e, f, device=device)

    def run():
        x = x0.clone().requires_grad_()
        with ops.deterministic(True):
            y = ops.gather_scatter(x, ei, w)
            (gx,) = torch.autograd.grad(y.square().sum(), x)
            return y, gx, ops.scatter(src, ei[1], n), ops.softmax(src, ei[1], n)

    first = run()
    for _ in range(3):
        for a, b in zip(first, run(), strict=True):
            assert torch.equal(a, b)


# ------------------------------------------------------------- interpreter (CPU, subprocess)
def check_scatter_segment():
    suite_scatter_segment("cpu", e=120, n=13, f=5)


def check_softmax_gather():
    suite_softmax_gather("cpu", e=90, n=11, f=3)


def check_gather_scatter():
    suite_gather_scatter("cpu", n=20, e=100, f=4, f_out=6)


def check_gradcheck():
    suite_gradcheck("cpu")


def check_opcheck():
    suite_opcheck("cpu")


def check_deterministic_bits():
    suite_deterministic_bits("cpu", n=20, e=150, f=4)


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
@pytest.mark.skipif(IN_INTERPRETER, reason="already running inside the interpreter subprocess")
def test_triton_kernels_in_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", MESHOPS_TRITON_CPU="1", OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
        "-o", "python_functions=check_*", str(Path(__file__).resolve()),
    ]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400, cwd=Path(__file__).parents[1])
    assert r.returncode == 0, f"interpreter run failed:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    assert "6 passed" in r.stdout, r.stdout[-2000:]


# --------------------------------------------------------------------------------- real GPU
@pytest.mark.gpu
def test_gpu_scatter_segment():
    suite_scatter_segment("cuda", e=200_000, n=20_000, f=37)


@pytest.mark.gpu
def test_gpu_softmax_gather():
    suite_softmax_gather("cuda", e=100_000, n=5_000, f=8)


@pytest.mark.gpu
def test_gpu_gather_scatter():
    suite_gather_scatter("cuda", n=20_000, e=200_000, f=64, f_out=96)


@pytest.mark.gpu
def test_gpu_gradcheck_and_opcheck():
    suite_gradcheck("cuda")
    suite_opcheck("cuda")


@pytest.mark.gpu
def test_gpu_deterministic_bits():
    suite_deterministic_bits("cuda", n=50_000, e=1_000_000, f=64)


@pytest.mark.gpu
def test_gpu_large_offsets():
    """E * F > 2**31: the kernels compute offsets in int64."""
    e, f, n = 9_000_000, 256, 1000
    src = torch.ones(e, f, device="cuda", dtype=torch.float16)
    index = torch.arange(e, device="cuda") % n
    out = ops.scatter(src, index, n, deterministic=True)
    assert torch.all(out[:, -1].float() == torch.bincount(index, minlength=n).float().half().float())
