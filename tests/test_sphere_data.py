"""sphere_shallow_water: solver data, exact resampling to other point sets, the dataset contract."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from meshops.data import recipe_module
from meshops.ops.sht import SHT, clenshaw_curtis_grid, icosphere

ROOT = Path(__file__).resolve().parents[1]
DS = ROOT / "datasets" / "sphere_shallow_water"

pytest.importorskip("torch_harmonics", reason="the shallow-water solver comes from torch-harmonics")
torch.set_num_threads(1)


def _load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, DS / file)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    gen = recipe_module(DS, "generator")
    out = tmp_path_factory.mktemp("sw")
    paths = gen.generate(out, n_train=1, n_test=1, steps=4, nlat=16, nlon=32, dt=1200.0, dt_solver=600.0,
                         point_sets=("equiangular", "icosphere2", "fibonacci300"))  # fmt: skip
    return gen, out, paths


def test_files_and_exact_resampling(small):
    gen, out, paths = small
    spec = gen.load(paths["spectral_train"])
    grid = gen.load(paths["equiangular_train"])
    ico = gen.load(paths["icosphere2_train"])
    fib = gen.load(paths["fibonacci300_train"])
    assert spec["coeffs"].shape == (1, 5, 36, 3)  # lmax_solver = ceil(16/3) = 6 -> degrees 0..5
    assert grid["fields"].shape == (1, 5, 16 * 32, 3) and ico["fields"].shape == (1, 5, 162, 3)
    assert fib["fields"].shape == (1, 5, 300, 3)
    assert list(grid["attrs"]["channels"]) == ["geopotential", "vorticity", "divergence"]
    # grid -> coefficients (exact Clenshaw-Curtis SHT) -> icosphere equals the stored icosphere fields
    s_grid = SHT.from_grid(clenshaw_curtis_grid(16, 32), 5)
    p, _ = icosphere(2)
    s_ico = SHT(p, 5, method="lsq")
    c = s_grid(torch.from_numpy(grid["fields"][0]).double())
    resampled = s_ico.inverse(c).numpy()
    scale = np.abs(ico["fields"][0]).max(axis=(0, 1))
    assert (np.abs(resampled - ico["fields"][0]).max(axis=(0, 1)) / scale).max() < 1e-5  # float32 storage
    np.testing.assert_allclose(c.numpy(), spec["coeffs"][0], rtol=1e-5, atol=1e-6 * np.abs(spec["coeffs"]).max())


def test_solver_conserves_mass_and_evolves(small):
    gen, out, paths = small
    co = gen.load(paths["spectral_test"])["coeffs"][0]  # (time, K, 3)
    phi00 = co[:, 0, 0]  # mean geopotential * sqrt(4 pi)
    assert np.abs(phi00 / phi00[0] - 1).max() < 1e-10
    assert abs(phi00[0] / math.sqrt(4 * math.pi) / 9.80616 - 1e4) < 200  # 10 km mean depth
    # the state changes between snapshots (not a stored constant)
    assert np.linalg.norm(co[1, 1:, 1] - co[0, 1:, 1]) > 1e-3 * np.linalg.norm(co[0, 1:, 1])


def test_dataset_contract(small):
    gen, out, paths = small
    dsmod = _load("sphere_shallow_water_dataset_test", "dataset.py")
    ds = dsmod.SphereShallowWater(point_set="icosphere2", split="train", root=out)
    assert len(ds) == 4
    case = ds[3]
    assert case.mesh.n_points == 162 and case.mesh.cells[0].type == "triangle"
    assert case.globals == {"time": 3 * 1200.0 / 3600.0, "dt": 1200.0 / 3600.0}
    np.testing.assert_allclose(case.mesh.point_data["vorticity_next"], ds.fields[0, 4, :, 1], rtol=1e-6)
    g = dsmod.SphereShallowWater(point_set="equiangular", split="test", root=out, stride=2)
    assert len(g) == 3 and g[0].mesh.cells[0].type == "quad"
    with pytest.raises(ValueError, match=r"stride 5 is not shorter than the 5 saved steps"):
        dsmod.SphereShallowWater(point_set="icosphere2", root=out, stride=5)
    with pytest.raises(ValueError, match=r"unknown point set 'hexgrid'"):
        gen.point_set("hexgrid", 16, 32)


@pytest.mark.slow
def test_benchmark_smoke(tmp_path):
    """`meshops bench sphere --tiny` end to end on a small generated dataset, under the protocol."""
    bench = _load("meshops_bench_sphere_test", "../../benchmarks/sphere.py")
    out = tmp_path / "res.json"
    assert bench.main(["--data", str(tmp_path), "--tiny", "--json", str(out)]) == 0
    import json

    res = json.loads(out.read_text())["results"][0]
    assert res["regime"] == "nonlinear" and list(res["models"]) == ["linear", "ours_grid", "peer_grid"]
    for m in res["models"].values():
        assert len(m["runs"]) == 2 and all(math.isfinite(r["test"]["one_step"]) and r["forward_ms"] > 0
                                           for r in m["runs"])
        assert m["summary"]["one_step"]["n"] == 2
