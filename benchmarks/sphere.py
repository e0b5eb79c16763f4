"""Shallow water on the sphere: meshops' ``sfno_graph`` vs torch-harmonics' SFNO, same data and budget.

Run with ``meshops bench sphere [options]`` (or ``python benchmarks/sphere.py``). Data come from
``datasets/sphere_shallow_water/generator.py`` (generated into ``--data`` when missing). Three
models are trained with the same optimiser, steps, batch size, loss and width:

* ``ours / equiangular``: ``sfno_graph`` on the solver's 32x64 equiangular grid (exact
  Clenshaw-Curtis SHT, degree-only spectral weights);
* ``torch-harmonics SFNO / equiangular``: the peer on the same grid (``SphericalFourierNeuralOperator``
  from ``torch_harmonics.examples.models``);
* ``ours / icosphere``: ``sfno_graph`` on a level-4 icosphere (2,562 points; least-squares SHT),
  which the grid-based peer cannot run on; ``--local`` adds a run with the mesh message-passing branch.

Both models get ``z = sin(latitude)`` as an extra input channel (the Coriolis parameter) and
predict the state increment (residual). Loss: quadrature-weighted MSE of the standardised state.

Reported: one-step relative L2 (standardised fields, all test pairs), rollout relative L2 after
24 and 120 steps (1 and 5 days), the energy ratio to the solver's after ``--rollout`` steps and its
largest deviation along the way (quadratic shallow-water energy from the SH coefficients), time
per step (forward of one state, and one training step of a batch). ``--write-readme`` puts the
table into ``datasets/sphere_shallow_water/README.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATASET_DIR = ROOT / "datasets" / "sphere_shallow_water"
README = DATASET_DIR / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _generator() -> Any:
    from meshops.data import recipe_module

    return recipe_module(DATASET_DIR, "generator")


# ------------------------------------------------------------------------------------------ data
class PointSetData:
    """Standardised fields of one point set: train/test arrays (traj, time, N, 3) float32.

    The first ``spinup`` hours of every trajectory (the adjustment of the random initial state,
    whose divergence variance is ~100x that of the later flow) are left out of both splits.
    """

    def __init__(
        self, gen: Any, data_dir: Path, name: str, mean: np.ndarray | None, std: np.ndarray | None, spinup: int = 0
    ):
        tr, te = gen.load(data_dir / f"{name}_train.h5"), gen.load(data_dir / f"{name}_test.h5")
        self.attrs = tr["attrs"]
        self.points = torch.from_numpy(tr["points"])
        self.weights = torch.from_numpy(tr["weights"]) if "weights" in tr else None
        self.faces = torch.from_numpy(tr["faces"]) if "faces" in tr else None
        ftr, fte = tr["fields"][:, spinup:], te["fields"][:, spinup:]
        if mean is None or std is None:
            mean = ftr.mean(axis=(0, 1, 2))
            std = ftr.std(axis=(0, 1, 2))
        self.mean, self.std = mean, std
        self.train = torch.from_numpy((ftr - mean) / std).float()
        self.test = torch.from_numpy((fte - mean) / std).float()

    def denorm(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.as_tensor(self.std, dtype=x.dtype) + torch.as_tensor(self.mean, dtype=x.dtype)


def energy(coeffs: torch.Tensor, attrs: dict[str, Any]) -> torch.Tensor:
    """Quadratic shallow-water energy from real SH coefficients of (geopotential, vorticity, divergence).

    ``E = 1/(2 g) sum_{l>=1} [phi_lm^2 + phi_bar a^2 (zeta_lm^2 + delta_lm^2) / (l (l + 1))]``
    (available potential + kinetic energy, per unit area times a^2).

    Shapes
    ------
    coeffs : (..., K, 3); returns (...,).
    """
    from meshops.ops.sht import degree_order

    L = math.isqrt(coeffs.shape[-2]) - 1
    l_idx, _ = degree_order(L)
    l_idx = l_idx.to(coeffs.device)
    keep = l_idx >= 1
    ll = (l_idx * (l_idx + 1)).clamp_min(1).to(coeffs.dtype)
    g, a, phibar = float(attrs["gravity"]), float(attrs["radius"]), float(attrs["havg"]) * float(attrs["gravity"])
    c = coeffs[..., keep, :]
    ape = (c[..., 0] ** 2).sum(-1)
    ke = phibar * a * a * ((c[..., 1] ** 2 + c[..., 2] ** 2) / ll[keep]).sum(-1)
    return (ape + ke) / (2.0 * g)


# ------------------------------------------------------------------------------------------ models
class PeerSFNO(torch.nn.Module):
    """torch-harmonics SFNO on the grid with the same z channel and residual as ours."""

    def __init__(self, nlat: int, nlon: int, hidden: int, layers: int, scale_factor: int, z: torch.Tensor):
        super().__init__()
        from torch_harmonics.examples.models import SphericalFourierNeuralOperator

        self.net = SphericalFourierNeuralOperator(
            img_size=(nlat, nlon), grid="equiangular", grid_internal="legendre-gauss", scale_factor=scale_factor,
            in_chans=4, out_chans=3, embed_dim=hidden, num_layers=layers, pos_embed="none",
        )  # fmt: skip
        # like ours (zero_init=True): the untrained model predicts persistence
        torch.nn.init.zeros_(self.net.decoder[-1].weight)
        if self.net.decoder[-1].bias is not None:
            torch.nn.init.zeros_(self.net.decoder[-1].bias)
        self.nlat, self.nlon = nlat, nlon
        self.register_buffer("z", z.reshape(1, 1, nlat, nlon).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, 3) -> (B, N, 3)
        B = x.shape[0]
        img = x.transpose(1, 2).reshape(B, 3, self.nlat, self.nlon)
        out = self.net(torch.cat([img, self.z.expand(B, 1, -1, -1)], dim=1))
        return x + out.reshape(B, 3, -1).transpose(1, 2)


class Ours(torch.nn.Module):
    def __init__(self, model: Any, pos: torch.Tensor, sht: Any, edge_index: torch.Tensor | None):
        super().__init__()
        self.model, self.sht = model, sht
        self.register_buffer("pos", pos.float(), persistent=False)
        self.edge_index = edge_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_points(x, self.pos, self.sht, self.edge_index)


def _edges_from_faces(faces: torch.Tensor) -> torch.Tensor:
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).T
    return torch.cat([e, e.flip(0)], 1).unique(dim=1)


# ------------------------------------------------------------------------------------------ training
def train(
    net: torch.nn.Module, data: torch.Tensor, w: torch.Tensor, steps: int, batch: int, lr: float, seed: int,
    log: Callable[[str], None], unroll: int = 1,
) -> dict[str, float]:
    """Training on random start times with an ``unroll``-step autoregressive loss; returns timing."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    T, S = data.shape[:2]
    wn = (w / w.sum()).float()[None, :, None]
    t0 = time.perf_counter()
    net.train()
    for it in range(steps):
        i = torch.randint(0, T, (batch,), generator=g)
        t = torch.randint(0, S - unroll, (batch,), generator=g)
        x = data[i, t]
        opt.zero_grad(set_to_none=True)
        loss = x.new_zeros(())
        for k in range(1, unroll + 1):
            x = net(x)
            y = data[i, t + k]
            # per-channel relative squared error on the sphere (quadrature weights), as in
            # torch-harmonics' SFNO training example (relative loss)
            err = ((x - y) ** 2 * wn).sum(1) / ((y**2 * wn).sum(1) + 1e-12)
            loss = loss + err.mean() / unroll
        loss.backward()
        opt.step()
        sched.step()
        if it % max(1, steps // 5) == 0 or it == steps - 1:
            log(f"    step {it:5d}  loss {loss.item():.3e}")
    dt = time.perf_counter() - t0
    net.eval()
    return {"train_s": dt, "train_step_ms": 1e3 * dt / steps}


@torch.no_grad()
def evaluate(
    net: torch.nn.Module, ps: PointSetData, w: torch.Tensor, sht: Any, rollout: int, attrs: dict[str, Any]
) -> dict[str, Any]:
    test = ps.test  # (T, S, N, 3)
    T, S = test.shape[:2]
    wn = (w / w.sum()).float()[:, None]

    def rel(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(((p - t) ** 2 * wn).sum((-2, -1)) / (t**2 * wn).sum((-2, -1)))

    # one step over all pairs (every 4th start time)
    starts = torch.arange(0, S - 1, 4)
    errs = [rel(net(test[i, starts]), test[i, starts + 1]) for i in range(T)]
    one = float(torch.cat(errs).mean())
    # rollouts of every test trajectory from its first state after the spin-up
    n = min(rollout, S - 1)
    x = test[:, 0]
    r24, r120, ratios = [], [], []
    e_true = energy(sht(ps.denorm(test[:, : n + 1]).double()), attrs)  # (T, n+1)
    finite = True
    for k in range(1, n + 1):
        x = net(x)
        if not torch.isfinite(x).all():
            finite = False
            break
        if k == 24:
            r24 = rel(x, test[:, k]).tolist()
        if k == 120:
            r120 = rel(x, test[:, k]).tolist()
        e = energy(sht(ps.denorm(x).double()), attrs)
        ratios.append(e / e_true[:, k])
    ratio = torch.stack(ratios, 1) if ratios else torch.ones(T, 1)
    final = ratio[:, -1]
    return {
        "one_step": one,
        "rollout24": float(np.mean(r24)) if r24 else float("nan"),
        "rollout120": float(np.mean(r120)) if r120 else float("nan"),
        "rollout_steps": n if finite else len(ratios),
        "finite": finite,
        "energy_ratio_final": float(final.mean()),
        "energy_max_dev": float((ratio - 1).abs().max()),
        "stable": bool(finite and float((ratio[:, -1] - 1).abs().max()) <= 0.1),
    }


@torch.no_grad()
def time_forward(net: torch.nn.Module, x: torch.Tensor, reps: int = 20) -> float:
    for _ in range(3):
        net(x)
    t0 = time.perf_counter()
    for _ in range(reps):
        net(x)
    return 1e3 * (time.perf_counter() - t0) / reps


# ------------------------------------------------------------------------------------------ main
def _table(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> str:
    head = (
        "| model | point set | params | one-step rel L2 | rollout rel L2 @24 h | @120 h | "
        f"energy ratio @{cfg['rollout']} steps | max energy dev | forward ms/step | train ms/step |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['model']} | {r['point_set']} | {r['params']:,} | {r['one_step']:.2e} | {r['rollout24']:.2e} | "
        f"{r['rollout120']:.2e} | {r['energy_ratio_final']:.3g}{'' if r['finite'] else ' (blew up at ' + str(r['rollout_steps']) + ')'} | "
        f"{r['energy_max_dev']:.3g} | {r['forward_ms']:.1f} | {r['train_step_ms']:.1f} |\n"
        for r in rows
    )
    return head + body


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="meshops bench sphere", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--data", default=None,
                    help="data folder (default: $MESHOPS_CACHE or <checkout>/.cache, /sphere_shallow_water)")
    ap.add_argument("--steps", type=int, default=1500, help="training steps per model")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--spinup", type=int, default=20, help="hours dropped at the start of every trajectory")
    ap.add_argument("--unroll", type=int, default=1, help="autoregressive steps in the training loss (both models)")
    ap.add_argument("--band-limit", action=argparse.BooleanOptionalAction, default=True,
                    help="ours: project predictions onto degrees <= lmax")
    ap.add_argument("--linear", default="full", choices=["none", "degree", "lm", "rotating", "full"],
                    help="ours: linear spectral path from the input (see sfno_graph)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--lmax", type=int, default=10, help="degree of our spectral weights (the data's band: 10)")
    ap.add_argument("--internal", type=int, nargs=2, default=[11, 22], metavar=("NLAT", "NLON"),
                    help="our internal Gauss grid (0 0: stay on the data points)")
    ap.add_argument("--peer-scale-factor", type=int, default=3, help="SFNO's internal downsampling (its default: 3)")
    ap.add_argument("--rollout", type=int, default=500)
    ap.add_argument("--local", action="store_true", help="also run ours on the icosphere with the local branch")
    ap.add_argument("--models", nargs="+", default=["ours_grid", "ours_grid_plain", "peer_grid", "ours_ico"],
                    help="ours_grid, ours_grid_linear (closed-form linear path alone), ours_grid_plain (no linear path), "
                         "peer_grid, ours_ico, ours_ico_local")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (few steps, short rollout)")
    ap.add_argument("--json", default=None, help="write results as JSON here")
    ap.add_argument("--write-readme", action="store_true", help="put the table into the dataset README")
    a = ap.parse_args(argv)
    if a.quick:
        a.steps, a.rollout, a.spinup = 20, 10, 5
    torch.set_num_threads(a.threads)
    from meshops.models import create
    from meshops.ops.sht import SHT, clenshaw_curtis_grid

    gen = _generator()
    data_dir = Path(a.data) if a.data else Path(os.environ.get("MESHOPS_CACHE", ROOT / ".cache")) / "sphere_shallow_water"
    if not (data_dir / "icosphere4_test.h5").is_file():
        print(f"generating data into {data_dir} ...", flush=True)
        gen.generate(data_dir, point_sets=("equiangular", "icosphere4"))
    grid = PointSetData(gen, data_dir, "equiangular", None, None, a.spinup)
    ico = PointSetData(gen, data_dir, "icosphere4", grid.mean, grid.std, a.spinup)
    attrs = grid.attrs
    nlat, nlon = int(attrs["nlat"]), int(attrs["nlon"])
    Ld = int(attrs["lmax_solver"]) - 1
    cg = clenshaw_curtis_grid(nlat, nlon)
    sht_grid = SHT.from_grid(cg, a.lmax)
    sht_grid_e = SHT.from_grid(cg, Ld)  # energy diagnostics (exact for the solver's band)
    sht_ico = SHT(ico.points, a.lmax, method="lsq", name="icosphere4")
    sht_ico_e = SHT(ico.points, Ld, method="lsq", name="icosphere4")
    w_ico = torch.full((ico.points.shape[0],), 4 * math.pi / ico.points.shape[0], dtype=torch.float64)
    edges_ico = _edges_from_faces(ico.faces) if ico.faces is not None else None

    def ours(local: bool = False, linear: str | None = None, layers: int | None = None) -> Any:
        return create("sfno_graph", in_channels=3, out_channels=3, hidden=a.hidden, lmax=a.lmax,
                      layers=a.layers if layers is None else layers,
                      pos_features="z", residual=True, local=local, zero_init=True, band_limit=a.band_limit,
                      linear=a.linear if linear is None else linear,
                      internal=list(a.internal) if a.internal[0] > 0 else None)  # fmt: skip

    runs: dict[str, tuple[str, str, Callable[[], torch.nn.Module], PointSetData, torch.Tensor, Any]] = {
        "ours_grid": (f"meshops sfno_graph (linear={a.linear})", f"equiangular {nlat}x{nlon}",
                      lambda: Ours(ours(), grid.points, sht_grid, None), grid, cg.weights, sht_grid_e),
        "ours_grid_linear": (f"meshops closed-form linear path only (linear={a.linear}, no blocks, no SGD)",
                             f"equiangular {nlat}x{nlon}", lambda: Ours(ours(layers=0), grid.points, sht_grid, None),
                             grid, cg.weights, sht_grid_e),
        "ours_grid_plain": ("meshops sfno_graph, no linear path", f"equiangular {nlat}x{nlon}",
                            lambda: Ours(ours(linear="none"), grid.points, sht_grid, None), grid, cg.weights, sht_grid_e),
        "peer_grid": ("torch-harmonics SFNO", f"equiangular {nlat}x{nlon}",
                      lambda: PeerSFNO(nlat, nlon, a.hidden, a.layers, a.peer_scale_factor, grid.points[:, 2]),
                      grid, cg.weights, sht_grid_e),
        "ours_ico": (f"meshops sfno_graph (linear={a.linear})", f"icosphere L4 ({ico.points.shape[0]} pts, lsq)",
                     lambda: Ours(ours(), ico.points, sht_ico, None), ico, w_ico, sht_ico_e),
        "ours_ico_local": ("meshops sfno_graph + local MP", f"icosphere L4 ({ico.points.shape[0]} pts, lsq)",
                           lambda: Ours(ours(True), ico.points, sht_ico, edges_ico), ico, w_ico, sht_ico_e),
    }  # fmt: skip
    models = list(a.models) + (["ours_ico_local"] if a.local and "ours_ico_local" not in a.models else [])
    cfg = {k: getattr(a, k) for k in ("steps", "batch", "spinup", "unroll", "band_limit", "linear", "lr", "hidden", "layers", "lmax", "internal", "peer_scale_factor",
                                      "rollout", "threads", "seed")}  # fmt: skip
    print(f"sphere benchmark: {cfg}; data {data_dir} (train {tuple(grid.train.shape)}, test {tuple(grid.test.shape)})")
    rows = []
    for key in models:
        label, where, build, ps, w, sht_e = runs[key]
        torch.manual_seed(a.seed)
        net = build()
        params = sum(p.numel() for p in net.parameters())
        print(f"[{key}] {label} on {where}: {params:,} parameters", flush=True)
        fit_s = 0.0
        if isinstance(net, Ours) and net.model.linear_kind == "full":
            t_fit = time.perf_counter()
            xs, ys = ps.train[:, :-1].reshape(-1, *ps.train.shape[2:]), ps.train[:, 1:].reshape(-1, *ps.train.shape[2:])
            res = net.model.fit_linear(xs, ys, net.sht)
            net.model.linear.requires_grad_(False)  # keep the closed-form operator; train the rest
            fit_s = time.perf_counter() - t_fit
            print(f"    closed-form linear path on {xs.shape[0]} pairs: relative residual {res:.3e} ({fit_s:.1f}s)")
        if key == "ours_grid_linear":
            tm = {"train_s": 0.0, "train_step_ms": 0.0}
        else:
            tm = train(net, ps.train, w, a.steps, a.batch, a.lr, a.seed, lambda s: print(s, flush=True), a.unroll)
        tm["train_s"] += fit_s
        ev = evaluate(net, ps, w, sht_e, a.rollout, attrs)
        fwd = time_forward(net, ps.test[:1, 0])
        row = {"key": key, "model": label, "point_set": where, "params": params, **tm, **ev, "forward_ms": fwd}
        print("   ", json.dumps({k: row[k] for k in row if k not in ("model", "point_set")}), flush=True)
        rows.append(row)
    table = _table(rows, cfg)
    cmd = "meshops bench sphere " + " ".join(argv if argv is not None else sys.argv[1:])
    print()
    print(table)
    if a.json:
        Path(a.json).write_text(json.dumps({"config": cfg, "rows": rows}, indent=2))
    if a.write_readme:
        from meshops.atomic import replace_block

        replace_block(README, START, END,
                      f"\nCommand: `{cmd.strip()}` (CPU, {a.threads} thread(s); torch {torch.__version__}).\n\n{table}")
        print(f"table written to {README}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
