"""Generator of the sphere_shallow_water dataset: spectral shallow-water solver, random initial states.

The solver is torch-harmonics' ``ShallowWaterSolver`` (pseudo-spectral, third-order
Adams-Bashforth, implicit hyperdiffusion; install ``torch-harmonics>=0.7,<0.9``). Initial states are
random as in the SFNO paper's example (``random_initial_condition(mach=0.2)``: white spectra up to
the solver's truncation for geopotential, vorticity and divergence around a 10 km layer).
Each trajectory is integrated with ``dt_solver`` and saved every ``dt`` seconds (default: one hour)
for ``steps`` saved steps.

State channels (physical units): ``geopotential`` (m^2/s^2), ``vorticity`` (1/s),
``divergence`` (1/s) -- three smooth scalar fields, so resampling is exact: the solver's spectral
coefficients (degree <= lmax - 1) are converted to meshops' real orthonormal coefficients and
evaluated at any point set.

Files written into OUT_DIR (each through a temporary file and ``os.replace``):

* ``spectral_{split}.h5``: ``coeffs`` (traj, time, K, 3) float64 real SH coefficients
  (``K = lmax ** 2``, meshops ordering ``k = l * l + l + m``), attributes with all solver settings;
* ``{pointset}_{split}.h5`` for each requested point set: ``fields`` (traj, time, N, 3) float32,
  ``points`` (N, 3), and ``weights`` (grid quadrature, equiangular only), ``faces`` (icosphere).

Point sets: ``equiangular`` (the solver's nlat x nlon grid with poles, Clenshaw-Curtis weights),
``icosphere{level}`` (e.g. ``icosphere4``: 2,562 points), ``fibonacci{n}`` (e.g. ``fibonacci2048``).

Command line::

    python datasets/sphere_shallow_water/generator.py OUT_DIR --n-train 24 --n-test 2 --steps 520 \
        --nlat 32 --nlon 64 --point-sets equiangular icosphere4 fibonacci2048
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meshops.ops.sht import clenshaw_curtis_grid, degree_order, fibonacci_sphere, icosphere, real_sph_harm

log = logging.getLogger("meshops.datasets.sphere_shallow_water")

CHANNELS = ("geopotential", "vorticity", "divergence")


def solver_coeffs_to_real(uspec: torch.Tensor) -> torch.Tensor:
    """torch-harmonics complex coefficients (csphase=False, ortho) -> meshops real coefficients.

    Shapes
    ------
    uspec : (..., lmax, mmax) complex; returns (..., lmax ** 2) float64 (degrees < lmax).
    """
    lmax = uspec.shape[-2]
    l_idx, m_idx = degree_order(lmax - 1)
    a = uspec[..., l_idx, m_idx.abs()]
    s2 = math.sqrt(2.0)
    real = torch.where(m_idx == 0, a.real, torch.where(m_idx > 0, s2 * a.real, -s2 * a.imag))
    return real.to(torch.float64)


def point_set(name: str, nlat: int, nlon: int) -> dict[str, np.ndarray]:
    """Points (and weights/faces) of a named point set."""
    if name == "equiangular":
        g = clenshaw_curtis_grid(nlat, nlon)
        return {"points": g.points.numpy(), "weights": g.weights.numpy()}
    m = re.fullmatch(r"icosphere(\d)", name)
    if m:
        p, f = icosphere(int(m.group(1)))
        return {"points": p.numpy(), "faces": f.numpy()}
    m = re.fullmatch(r"fibonacci(\d+)", name)
    if m:
        return {"points": fibonacci_sphere(int(m.group(1))).numpy()}
    raise ValueError(f"unknown point set {name!r}: use equiangular, icosphere<level> or fibonacci<n>")


def _atomic_h5(path: Path, write: Any) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".h5.tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def simulate(
    n_traj: int,
    steps: int,
    nlat: int = 32,
    nlon: int = 64,
    dt: float = 3600.0,
    dt_solver: float = 600.0,
    mach: float = 0.2,
    seed: int = 0,
    hamp: float | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Integrate ``n_traj`` random initial states; returns real coefficients (traj, steps+1, K, 3).

    ``mach`` scales the random vorticity and divergence (relative to the gravity-wave speed),
    ``hamp`` the geopotential anomaly (m; the solver's default 120 m when None): larger values give
    a more nonlinear flow (advection and the ``phi * div`` term grow against the linear terms).
    """
    from torch_harmonics.examples import ShallowWaterSolver

    nsub = int(round(dt / dt_solver))
    if nsub < 1 or abs(nsub * dt_solver - dt) > 1e-9 * dt:
        raise ValueError(f"dt ({dt}) must be a multiple of dt_solver ({dt_solver})")
    lmax = math.ceil(nlat / 3)
    solver = ShallowWaterSolver(nlat, nlon, dt_solver, lmax=lmax, mmax=lmax, grid="equiangular").double()
    if hamp is not None:
        if not hamp > 0:
            raise ValueError(f"hamp must be > 0 m, got {hamp}")
        solver.hamp = torch.as_tensor(float(hamp), dtype=solver.hamp.dtype)
    if not mach > 0:
        raise ValueError(f"mach must be > 0, got {mach}")
    torch.manual_seed(seed)
    out = torch.empty(n_traj, steps + 1, lmax * lmax, 3, dtype=torch.float64)
    grid = clenshaw_curtis_grid(nlat, nlon)
    Y = real_sph_harm(lmax - 1, grid.points)
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(n_traj):
            u = solver.random_initial_condition(mach=mach)
            # the conversion is exact: check it once per trajectory against the solver's own synthesis
            ref = solver.spec2grid(u).reshape(3, -1).T
            got = Y @ solver_coeffs_to_real(u).T
            err = float((got - ref).abs().max() / ref.abs().max())
            if err > 1e-10:
                raise RuntimeError(f"coefficient conversion check failed: relative error {err:.3e}")
            out[i, 0] = solver_coeffs_to_real(u).T
            for t in range(steps):
                u = solver.timestep(u, nsub)
                out[i, t + 1] = solver_coeffs_to_real(u).T
            if not torch.isfinite(out[i]).all():
                raise RuntimeError(f"trajectory {i} (seed {seed}) blew up in the solver")
            log.info("trajectory %d/%d done (%.1fs)", i + 1, n_traj, time.perf_counter() - t0)
    meta = {
        "nlat": nlat, "nlon": nlon, "grid": "equiangular", "lmax_solver": lmax, "dt": dt,
        "dt_solver": dt_solver, "mach": mach, "seed": seed, "steps": steps,
        "radius": float(solver.radius), "omega": float(solver.omega), "gravity": float(solver.gravity),
        "havg": float(solver.havg), "hamp": float(solver.hamp), "channels": list(CHANNELS),
        "solver": "torch_harmonics.examples.ShallowWaterSolver",
    }  # fmt: skip
    return out, meta


def generate(
    out_dir: str | os.PathLike[str],
    n_train: int = 24,
    n_test: int = 2,
    steps: int = 520,
    nlat: int = 32,
    nlon: int = 64,
    dt: float = 3600.0,
    dt_solver: float = 600.0,
    point_sets: Sequence[str] = ("equiangular", "icosphere4", "fibonacci2048"),
    seed: int = 0,
    mach: float = 0.2,
    hamp: float | None = None,
) -> dict[str, Path]:
    """Write the dataset files into ``out_dir``; returns ``{"spectral_train": path, ...}``.

    ``mach`` and ``hamp``: amplitudes of the random initial states (see :func:`simulate`)."""
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1000)):
        if n <= 0:
            continue
        coeffs, meta = simulate(n, steps, nlat, nlon, dt, dt_solver, mach=mach, seed=s, hamp=hamp)
        meta["split"] = split

        def write_spec(f: Any, coeffs: torch.Tensor = coeffs, meta: dict = meta) -> None:
            f.create_dataset("coeffs", data=coeffs.numpy())
            for k, v in meta.items():
                f.attrs[k] = v if not isinstance(v, list) else np.array(v, dtype="S")

        p = out / f"spectral_{split}.h5"
        _atomic_h5(p, write_spec)
        paths[f"spectral_{split}"] = p
        L = meta["lmax_solver"] - 1
        for name in point_sets:
            ps = point_set(name, nlat, nlon)
            Y = real_sph_harm(L, torch.from_numpy(ps["points"]))
            fields = torch.einsum("nk,tskc->tsnc", Y, coeffs).to(torch.float32).numpy()

            def write_ps(f: Any, fields: np.ndarray = fields, ps: dict = ps, meta: dict = meta, name: str = name) -> None:
                f.create_dataset("fields", data=fields, chunks=(1, 1, fields.shape[2], 3))
                for k, v in ps.items():
                    f.create_dataset(k, data=v)
                for k, v in meta.items():
                    f.attrs[k] = v if not isinstance(v, list) else np.array(v, dtype="S")
                f.attrs["point_set"] = name

            p = out / f"{name}_{split}.h5"
            _atomic_h5(p, write_ps)
            paths[f"{name}_{split}"] = p
            log.info("wrote %s (%s)", p, fields.shape)
    return paths


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read one file written by :func:`generate` into numpy arrays plus ``attrs``."""
    import h5py

    with h5py.File(path, "r") as f:
        d: dict[str, Any] = {k: f[k][...] for k in f.keys()}
        d["attrs"] = {k: (v.astype(str).tolist() if isinstance(v, np.ndarray) and v.dtype.kind == "S" else v)
                      for k, v in f.attrs.items()}  # fmt: skip
    return d


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--n-train", type=int, default=24)
    ap.add_argument("--n-test", type=int, default=2)
    ap.add_argument("--steps", type=int, default=520)
    ap.add_argument("--nlat", type=int, default=32)
    ap.add_argument("--nlon", type=int, default=64)
    ap.add_argument("--dt", type=float, default=3600.0)
    ap.add_argument("--dt-solver", type=float, default=600.0)
    ap.add_argument("--point-sets", nargs="+", default=["equiangular", "icosphere4", "fibonacci2048"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mach", type=float, default=0.2, help="amplitude of the random vorticity/divergence")
    ap.add_argument("--hamp", type=float, default=None, help="geopotential anomaly amplitude, m (solver default 120)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = generate(a.out_dir, a.n_train, a.n_test, a.steps, a.nlat, a.nlon, a.dt, a.dt_solver, a.point_sets, a.seed,
                     a.mach, a.hamp)
    for k, p in paths.items():
        print(f"{k}: {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
