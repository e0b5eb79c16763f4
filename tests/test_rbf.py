"""meshops.ops.rbf: anisotropic Gaussian RBF evaluation against brute force, gradients, chunking."""

from __future__ import annotations

import math
import os

import pytest
import torch

from meshops.ops.rbf import group_ptr, rbf_eval, rbf_eval_dense


def _random_problem(q=37, m=11, c=3, d=3, dtype=torch.float64, seed=0, groups=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(q, d, generator=g, dtype=dtype) * 2.0
    centers = torch.randn(m, d, generator=g, dtype=dtype) * 2.0
    # well-conditioned precision factors: scaled rotations plus a little shear
    prec = torch.randn(m, d, d, generator=g, dtype=dtype) * 0.3 + torch.eye(d, dtype=dtype) * 0.8
    weights = torch.randn(m, c, generator=g, dtype=dtype)
    if groups is None:
        return x, centers, prec, weights, None, None
    xb = torch.sort(torch.randint(0, groups, (q,), generator=g)).values
    cb = torch.sort(torch.randint(0, groups, (m,), generator=g)).values
    return x, centers, prec, weights, group_ptr(xb, q, groups), group_ptr(cb, m, groups)


def _brute(x, centers, prec, weights, xp=None, cp=None):
    """The formula written out point by point."""
    q, m = x.shape[0], centers.shape[0]
    xg = [0] * q
    cg = [0] * m
    if xp is not None:
        for gi in range(len(xp) - 1):
            for i in range(int(xp[gi]), int(xp[gi + 1])):
                xg[i] = gi
            for k in range(int(cp[gi]), int(cp[gi + 1])):
                cg[k] = gi
    out = torch.zeros(q, weights.shape[1], dtype=x.dtype)
    for i in range(q):
        for k in range(m):
            if xg[i] != cg[k]:
                continue
            v = prec[k] @ (x[i] - centers[k])
            out[i] += weights[k] * math.exp(-0.5 * float(v @ v))
    return out


@pytest.mark.parametrize("groups", [None, 3])
def test_matches_brute_force(groups):
    x, c, a, w, xp, cp = _random_problem(groups=groups, seed=1 if groups else 2)
    ref = _brute(x, c, a, w, xp, cp)
    assert ref.abs().max() > 1e-3  # the draw actually overlaps
    torch.testing.assert_close(rbf_eval(x, c, a, w, xp, cp), ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(rbf_eval_dense(x, c, a, w, xp, cp), ref, rtol=1e-10, atol=1e-12)


def test_chunked_equals_unchunked_and_far_from_origin():
    x, c, a, w, xp, cp = _random_problem(q=501, m=40, c=4, dtype=torch.float32, groups=4, seed=3)
    # far from the origin: the per-group shift keeps float32 accurate
    x, c = x + 1000.0, c + 1000.0
    ref = rbf_eval_dense(x.double(), c.double(), a.double(), w.double(), xp, cp)
    full = rbf_eval(x, c, a, w, xp, cp, chunk_size=10_000)
    for chunk in (1, 7, 64):
        torch.testing.assert_close(rbf_eval(x, c, a, w, xp, cp, chunk_size=chunk), full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(full.double(), ref, rtol=1e-4, atol=1e-4)
    # the element bound picks small chunks by itself
    torch.testing.assert_close(rbf_eval(x, c, a, w, xp, cp, max_elements=100), full, rtol=1e-5, atol=1e-5)


def test_gradcheck_float64_grouped_and_chunked():
    x, c, a, w, xp, cp = _random_problem(q=13, m=7, c=2, groups=2, seed=4)
    args = [t.clone().requires_grad_(True) for t in (x, c, a, w)]
    assert torch.autograd.gradcheck(lambda *t: rbf_eval(*t, xp, cp, chunk_size=4), args)


def test_gradients_match_dense_autograd():
    x, c, a, w, xp, cp = _random_problem(q=60, m=9, c=3, groups=3, seed=5)
    g = torch.randn(60, 3, dtype=torch.float64)
    t1 = [t.clone().requires_grad_(True) for t in (x, c, a, w)]
    t2 = [t.clone().requires_grad_(True) for t in (x, c, a, w)]
    (rbf_eval(*t1, xp, cp, chunk_size=5) * g).sum().backward()
    (rbf_eval_dense(*t2, xp, cp) * g).sum().backward()
    for u, v in zip(t1, t2, strict=False):
        torch.testing.assert_close(u.grad, v.grad, rtol=1e-10, atol=1e-12)


def test_anisotropy_long_tangent_scale_decays_slower_along_tangent():
    tangent = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64) / 3.0
    normal = torch.tensor([2.0, -2.0, 1.0], dtype=torch.float64) / 3.0  # orthogonal to tangent
    binormal = torch.linalg.cross(tangent, normal)
    frame = torch.stack([tangent, normal, binormal], 1)  # columns t, n, b
    sigma = torch.tensor([3.0, 0.5, 0.5], dtype=torch.float64)
    prec = (torch.diag(1.0 / sigma) @ frame.T)[None]
    center = torch.tensor([[0.3, -0.2, 0.1]], dtype=torch.float64)
    w = torch.ones(1, 1, dtype=torch.float64)
    for dist in (0.25, 0.5, 1.0, 2.0):
        along = rbf_eval(center + dist * tangent, center, prec, w)
        across_n = rbf_eval(center + dist * normal, center, prec, w)
        across_b = rbf_eval(center + dist * binormal, center, prec, w)
        assert along.item() > across_n.item() and along.item() > across_b.item()
        torch.testing.assert_close(along.item(), math.exp(-0.5 * (dist / 3.0) ** 2))
        torch.testing.assert_close(across_n.item(), math.exp(-0.5 * (dist / 0.5) ** 2))
    assert rbf_eval(center, center, prec, w).item() == pytest.approx(1.0)


def test_rigid_motion_invariance():
    x, c, a, w, _, _ = _random_problem(q=50, m=8, seed=6)
    rot, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(7)))
    shift = torch.tensor([5.0, -3.0, 2.0], dtype=torch.float64)
    # rotating the points, the centers and the frames inside the precision factors: same values
    out = rbf_eval(x @ rot.T + shift, c @ rot.T + shift, a @ rot.T, w)
    torch.testing.assert_close(out, rbf_eval(x, c, a, w))


def test_half_precision_and_empty_groups():
    x, c, a, w, _, _ = _random_problem(q=20, m=5, dtype=torch.float32, seed=8)
    xp = torch.tensor([0, 0, 20, 20])  # groups 0 and 2 have no queries
    cp = torch.tensor([0, 2, 5, 5])  # group 2 has no centers
    ref = rbf_eval(x, c[2:], a[2:], w[2:])
    out = rbf_eval(x, c, a, w, xp, cp)
    torch.testing.assert_close(out, ref)
    out16 = rbf_eval(x.bfloat16(), c.bfloat16(), a.bfloat16(), w.bfloat16(), xp, cp)
    assert out16.dtype == torch.bfloat16
    torch.testing.assert_close(out16.float(), ref, rtol=0.1, atol=0.1)


def test_large_wall_is_chunked():
    # 200k query points x 64 centers: the chunk bound keeps every temporary at 2**16 elements
    g = torch.Generator().manual_seed(9)
    x = torch.rand(200_000, 3, generator=g)
    c = torch.rand(64, 3, generator=g)
    a = torch.eye(3).expand(64, 3, 3) * 4.0
    w = torch.randn(64, 2, generator=g)
    out = rbf_eval(x, c, a, w, max_elements=1 << 16)
    idx = torch.randint(0, 200_000, (50,), generator=g)
    torch.testing.assert_close(out[idx], rbf_eval_dense(x[idx], c, a, w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda t: dict(t, centers=t["centers"][:, :2]), r"centers has shape \(11, 2\), expected \(M, 3\)"),
        (lambda t: dict(t, precision=t["precision"][:5]), r"precision has shape \(5, 3, 3\)"),
        (lambda t: dict(t, weights=t["weights"][:4]), r"weights has shape \(4, 3\)"),
        (lambda t: dict(t, x=t["x"].float()), r"share one dtype"),
        (lambda t: dict(t, x=t["x"].long()), r"x must be floating point, got dtype torch.int64"),
        (lambda t: dict(t, x_ptr=torch.tensor([0, 37])), r"give both x_ptr and c_ptr"),
        (lambda t: dict(t, x_ptr=torch.tensor([0, 30]), c_ptr=torch.tensor([0, 11])), r"x_ptr must start at 0 and end at 37"),
        (lambda t: dict(t, x_ptr=torch.tensor([0, 37]), c_ptr=torch.tensor([0, 5, 11])), r"x_ptr has 2 entries and c_ptr 3"),
        (lambda t: dict(t, chunk_size=0), r"chunk_size must be >= 1, got 0"),
    ],
)
def test_bad_input(mutate, match):
    x, c, a, w, _, _ = _random_problem()
    kw = mutate(dict(x=x, centers=c, precision=a, weights=w))
    with pytest.raises((ValueError, TypeError), match=match):
        rbf_eval(**kw)


def test_group_ptr_rejects_unsorted():
    with pytest.raises(ValueError, match="must be sorted"):
        group_ptr(torch.tensor([0, 1, 0]), 3)
    assert group_ptr(torch.tensor([0, 0, 2]), 3).tolist() == [0, 2, 2, 3]


def test_far_pairs_contribute_exactly_zero():
    c = torch.zeros(1, 3)
    a = torch.eye(3)[None]
    w = torch.ones(1, 1)
    x = torch.tensor([[9.0, 0.0, 0.0], [11.0, 0.0, 0.0]])  # squared distances 81 and 121
    out = rbf_eval(x, c, a, w)
    assert out[0, 0] == pytest.approx(math.exp(-40.5), rel=1e-5)
    assert out[1, 0] == 0.0


@pytest.mark.slow
def test_million_point_wall_runs_in_bounded_memory():
    """1e6 wall points x 1024 centers, forward and backward, in a fresh process: the peak resident
    memory stays far below the 12 GB that the unchunked (Q, K, 3) temporaries alone would need."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import resource, torch
        from meshops.ops.rbf import rbf_eval
        torch.manual_seed(0)
        x = torch.rand(1_000_000, 3) * 40
        c = (torch.rand(1024, 3) * 40).requires_grad_(True)
        a = (torch.eye(3) * 2.0).repeat(1024, 1, 1).requires_grad_(True)
        w = torch.randn(1024, 2, requires_grad=True)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = rbf_eval(x, c, a, w)
        out.square().mean().backward()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert torch.isfinite(c.grad).all() and float(out.abs().sum()) > 0
        print((after - before) / 1024)
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    assert float(res.stdout.strip().splitlines()[-1]) < 500.0  # MB above the inputs


_TRITON_SCRIPT = r"""
import os, sys, torch
assert os.environ.get("TRITON_INTERPRET") == "1"
from meshops.ops.rbf import rbf_eval, rbf_eval_dense, group_ptr
torch.manual_seed(0)
q, m, c = 70, 45, 3
x = torch.randn(q, 3) * 2 + 50.0
cen = torch.randn(m, 3) * 2 + 50.0
a = torch.randn(m, 3, 3) * 0.3 + torch.eye(3) * 0.8
w = torch.randn(m, c)
xp = group_ptr(torch.sort(torch.randint(0, 3, (q,))).values, q, 3)
cp = group_ptr(torch.sort(torch.randint(0, 3, (m,))).values, m, 3)
ref = rbf_eval_dense(x.double(), cen.double(), a.double(), w.double(), xp, cp)
out = rbf_eval(x, cen, a, w, xp, cp, impl="triton")
torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-5)
# gradients through the registered autograd formula equal the torch path
t1 = [t.clone().requires_grad_(True) for t in (x, cen, a, w)]
t2 = [t.clone().requires_grad_(True) for t in (x, cen, a, w)]
g = torch.randn(q, c)
(rbf_eval(*t1, xp, cp, impl="triton") * g).sum().backward()
(rbf_eval(*t2, xp, cp, impl="torch") * g).sum().backward()
for u, v in zip(t1, t2):
    torch.testing.assert_close(u.grad, v.grad, rtol=1e-4, atol=1e-4)
from meshops.ops._rbf_triton import rbf_eval_op
torch.library.opcheck(rbf_eval_op, (x[:20].contiguous(), cen[:9].contiguous(), a[:9].contiguous(), w[:9].contiguous(),
                      torch.tensor([0, 20]), torch.tensor([0, 9])),
                      test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
print("ok")
"""


def test_triton_kernel_under_interpreter():
    pytest.importorskip("triton")
    import subprocess
    import sys

    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", _TRITON_SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]


@pytest.mark.gpu
def test_triton_kernel_on_cuda_matches_torch():
    x, c, a, w, xp, cp = _random_problem(q=5000, m=300, c=4, dtype=torch.float32, groups=3, seed=11)
    dev = "cuda"
    out = rbf_eval(x.to(dev), c.to(dev), a.to(dev), w.to(dev), xp, cp, impl="triton")
    ref = rbf_eval(x, c, a, w, xp, cp, impl="torch")
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-4, atol=1e-4)
