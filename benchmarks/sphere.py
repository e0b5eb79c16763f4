"""Shallow water on the sphere: meshops' ``sfno_graph`` vs torch-harmonics' SFNO, linear and nonlinear regimes.

Run with ``meshops bench sphere [options]`` (or ``python benchmarks/sphere.py``). Data come from
``datasets/sphere_shallow_water/generator.py`` (generated per regime into ``--data`` when missing;
``REGIMES`` gives the initial-state amplitudes). Every model runs under the protocol of
``benchmarks/protocol.py``: the training file's trajectories split once into train / validation,
the test file untouched; the same search (``--lrs`` x ``--widths`` plus the published default);
early stopping on a validation rollout score every ``--eval-every`` steps under ``--max-steps``;
the kept candidate trained with every ``--seeds``. Models:

* ``linear``: the closed-form linear path alone (ridge on the SH coefficients, ``--ridges``), no SGD;
* ``ours_grid``: ``sfno_graph`` + that frozen linear path on the solver's 32x64 equiangular grid;
* ``ours_grid_plain``: ``sfno_graph`` without the linear path (the like-for-like peer of SFNO);
* ``peer_grid``: torch-harmonics' ``SphericalFourierNeuralOperator`` on the same grid;
* ``ours_ico`` / ``ours_ico_plain``: ``sfno_graph`` with / without the linear path on a level-4
  icosphere (2,562 points; least-squares SHT), which the grid-based peer cannot run on.

All get ``z = sin(latitude)`` as an extra input channel and predict the increment; loss:
quadrature-weighted per-channel relative squared error. Reported (mean ± std [min, max] over the
seeds): one-step relative L2, rollout relative L2 at 24 h, 120 h and ``--rollout`` steps, energy and
enstrophy ratios to the solver's after ``--rollout`` steps, the rollout steps before non-finite
values, time per step. ``--write-readme`` puts each regime run's tables into its block of
``datasets/sphere_shallow_water/README.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
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
log = logging.getLogger("meshops.bench.sphere")


def _generator() -> Any:
    from meshops.data import recipe_module

    return recipe_module(DATASET_DIR, "generator")


# ------------------------------------------------------------------------------------------ data
class PointSetData:
    """Standardised fields of one point set: train / val / test arrays (traj, time, N, 3) float32.

    ``train_ids`` / ``val_ids``: trajectories of the training file (the fixed split); the test
    file's trajectories are the test split. Statistics come from the training trajectories only.
    The first ``spinup`` hours of every trajectory (the adjustment of the random initial state,
    whose divergence variance is ~100x that of the later flow) are left out of every split.
    """

    def __init__(self, gen: Any, data_dir: Path, name: str, mean: np.ndarray | None, std: np.ndarray | None,
                 spinup: int = 0, train_ids: Sequence[int] | None = None, val_ids: Sequence[int] = ()):
        tr, te = gen.load(data_dir / f"{name}_train.h5"), gen.load(data_dir / f"{name}_test.h5")
        self.attrs = tr["attrs"]
        self.points = torch.from_numpy(tr["points"])
        self.weights = torch.from_numpy(tr["weights"]) if "weights" in tr else None
        self.faces = torch.from_numpy(tr["faces"]) if "faces" in tr else None
        ids = list(range(tr["fields"].shape[0])) if train_ids is None else list(train_ids)
        ftr, fva, fte = tr["fields"][ids, spinup:], tr["fields"][list(val_ids), spinup:], te["fields"][:, spinup:]
        if spinup >= tr["fields"].shape[1] - 1:
            raise ValueError(f"{data_dir / (name + '_train.h5')}: spinup {spinup} leaves no time steps "
                             f"(trajectories have {tr['fields'].shape[1]})")
        if mean is None or std is None:
            mean = ftr.mean(axis=(0, 1, 2))
            std = ftr.std(axis=(0, 1, 2))
        self.mean, self.std = mean, std
        self.train = torch.from_numpy((ftr - mean) / std).float()
        self.val = torch.from_numpy((fva - mean) / std).float()
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


def enstrophy(coeffs: torch.Tensor) -> torch.Tensor:
    """Enstrophy ``1/2 int zeta^2 dA / a^2`` from the real orthonormal SH coefficients of the vorticity.

    Shapes
    ------
    coeffs : (..., K, 3); returns (...,).
    """
    return 0.5 * (coeffs[..., 1] ** 2).sum(-1)


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
        self.hidden, self.layers = hidden, layers
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
class Steps:
    """Training on random start times with an ``unroll``-step autoregressive loss, ``__call__(n)``
    steps at a time (for early stopping): Adam, cosine schedule over ``max_steps`` (the budget)."""

    def __init__(self, net: torch.nn.Module, data: torch.Tensor, w: torch.Tensor, max_steps: int, batch: int,
                 lr: float, seed: int, unroll: int = 1):
        self.net, self.data, self.batch, self.unroll = net, data, batch, unroll
        self.g = torch.Generator().manual_seed(seed)
        params = [p for p in net.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(params, lr=lr)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, max_steps)
        self.wn = (w / w.sum()).float()[None, :, None]
        self.seconds, self.steps = 0.0, 0

    def __call__(self, n: int) -> None:
        T, S = self.data.shape[:2]
        t0 = time.perf_counter()
        self.net.train()
        for _ in range(n):
            i = torch.randint(0, T, (self.batch,), generator=self.g)
            t = torch.randint(0, S - self.unroll, (self.batch,), generator=self.g)
            x = self.data[i, t]
            self.opt.zero_grad(set_to_none=True)
            loss = x.new_zeros(())
            for k in range(1, self.unroll + 1):
                x = self.net(x)
                y = self.data[i, t + k]
                # per-channel relative squared error on the sphere (quadrature weights), as in
                # torch-harmonics' SFNO training example (relative loss)
                err = ((x - y) ** 2 * self.wn).sum(1) / ((y**2 * self.wn).sum(1) + 1e-12)
                loss = loss + err.mean() / self.unroll
            loss.backward()
            self.opt.step()
            self.sched.step()
        self.net.eval()
        self.steps += n
        self.seconds += time.perf_counter() - t0


def _rel(w: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    wn = (w / w.sum()).float()[:, None]

    def rel(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(((p - t) ** 2 * wn).sum((-2, -1)) / (t**2 * wn).sum((-2, -1)))

    return rel


VAL_HORIZONS = (1, 6, 24)
VAL_CAP = 2.0


@torch.no_grad()
def validate(net: torch.nn.Module, val: torch.Tensor, w: torch.Tensor, every: int = 24) -> float:
    """Validation score: the mean over horizons 1, 6 and 24 h of the relative L2 of rollouts started
    every ``every`` hours of the validation trajectories, each capped at 2 (a blown-up rollout
    scores 2, so the score stays finite and still ranks candidates)."""
    rel = _rel(w)
    T, S = val.shape[:2]
    starts = torch.arange(0, S - max(VAL_HORIZONS), every)
    if T == 0 or len(starts) == 0:
        raise ValueError(f"validate: no validation rollouts ({T} trajectories of {S} steps)")
    x = val[:, starts].reshape(-1, *val.shape[2:])
    scores = []
    for k in range(1, max(VAL_HORIZONS) + 1):
        x = net(x)
        if k in VAL_HORIZONS:
            tgt = val[:, starts + k].reshape(-1, *val.shape[2:])
            e = torch.nan_to_num(rel(x, tgt), nan=VAL_CAP, posinf=VAL_CAP).clamp(max=VAL_CAP)
            scores.append(float(e.mean()))
        x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).clamp(-1e3, 1e3)
    return float(np.mean(scores))


@torch.no_grad()
def evaluate(
    net: torch.nn.Module, ps: PointSetData, w: torch.Tensor, sht: Any, rollout: int, attrs: dict[str, Any]
) -> dict[str, float]:
    """Test metrics: one-step relative L2 (every 4th start), rollouts from the first state after the
    spin-up of every test trajectory (relative L2 at 24, 120 and ``rollout`` h; energy and enstrophy
    ratios to the solver's at the last step, largest energy deviation along the way)."""
    test = ps.test  # (T, S, N, 3)
    T, S = test.shape[:2]
    rel = _rel(w)
    starts = torch.arange(0, S - 1, 4)
    one = float(torch.cat([rel(net(test[i, starts]), test[i, starts + 1]) for i in range(T)]).mean())
    n = min(rollout, S - 1)
    if n < rollout:
        log.warning("test trajectories have %d steps after the spin-up: rollouts of %d, not %d", S - 1, n, rollout)
    c_true = sht(ps.denorm(test[:, : n + 1]).double())
    e_true, z_true = energy(c_true, attrs), enstrophy(c_true)
    x = test[:, 0]
    at: dict[int, float] = {}
    ratios, zratios = [], []
    steps = 0
    for k in range(1, n + 1):
        x = net(x)
        if not torch.isfinite(x).all():
            break
        steps = k
        if k in (24, 120, n):
            at[k] = float(rel(x, test[:, k]).mean())
        c = sht(ps.denorm(x).double())
        ratios.append(energy(c, attrs) / e_true[:, k])
        zratios.append(enstrophy(c) / z_true[:, k])
    finite = steps == n
    ratio = torch.stack(ratios, 1) if ratios else torch.full((T, 1), float("nan"))
    zr = torch.stack(zratios, 1) if zratios else torch.full((T, 1), float("nan"))
    big = float("inf")
    return {
        "one_step": one,
        **{f"rollout{h}": at.get(h, big) for h in (24, 120) if h <= n}, "rollout_final": at.get(n, big),
        "rollout_steps": float(steps),
        "energy_ratio": float(ratio[:, -1].mean()) if finite else big,
        "enstrophy_ratio": float(zr[:, -1].mean()) if finite else big,
        "energy_max_dev": float((ratio - 1).abs().max()) if finite else big,
    }  # fmt: skip


@torch.no_grad()
def time_forward(net: torch.nn.Module, x: torch.Tensor, reps: int = 20) -> float:
    for _ in range(3):
        net(x)
    t0 = time.perf_counter()
    for _ in range(reps):
        net(x)
    return 1e3 * (time.perf_counter() - t0) / reps


# ------------------------------------------------------------------------------------------ the protocol
def protocol() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import protocol as P

    return P


#: amplitudes of the random initial states of each regime (mach: vorticity / divergence relative to
#: the gravity-wave speed; hamp: geopotential anomaly in m). "linear" is the SFNO example's regime.
REGIMES = {"linear": {"mach": 0.2, "hamp": 120.0}, "nonlinear": {"mach": 10.0, "hamp": 1500.0}}
#: torch-harmonics' SFNO as its training example configures it (examples/train_sfno.py:
#: scale_factor 3, 4 layers, Adam lr 1e-3); its embed_dim (128 there, 256 in the model's name) is
#: cut to --peer-default-width on this CPU (the table's notes give the cost of the full widths).
PEER_DEFAULT = {"lr": 1e-3, "layers": 4, "scale_factor": 3}


def regime_data(regime: str, a: argparse.Namespace) -> dict[str, Any]:
    """Generate (or reuse) the regime's trajectories; the fixed split; the point sets and transforms."""
    from meshops.ops.sht import SHT, clenshaw_curtis_grid

    P = protocol()
    gen = _generator()
    base = Path(a.data) if a.data else Path(os.environ.get("MESHOPS_CACHE", ROOT / ".cache"))
    amp = REGIMES[regime]
    data_dir = base / f"sphere_shallow_water_mach{amp['mach']:g}_h{amp['hamp']:g}_{a.n_traj}+{a.n_test}x{a.traj_steps}"
    if not (data_dir / "icosphere4_test.h5").is_file():
        print(f"generating the {regime} data ({amp}) into {data_dir} ...", flush=True)
        gen.generate(data_dir, n_train=a.n_traj, n_test=a.n_test, steps=a.traj_steps,
                     point_sets=("equiangular", "icosphere4"), mach=amp["mach"], hamp=amp["hamp"])
    split = P.fixed_split(a.n_traj, a.n_val, 0, seed=0)
    grid = PointSetData(gen, data_dir, "equiangular", None, None, a.spinup, split["train"], split["val"])
    ico = PointSetData(gen, data_dir, "icosphere4", grid.mean, grid.std, a.spinup, split["train"], split["val"])
    attrs = grid.attrs
    nlat, nlon = int(attrs["nlat"]), int(attrs["nlon"])
    Ld = int(attrs["lmax_solver"]) - 1
    cg = clenshaw_curtis_grid(nlat, nlon)
    record = P.split_record({"train": [f"train traj {i}" for i in split["train"]],
                             "val": [f"train traj {i}" for i in split["val"]],
                             "test": [f"test traj {i}" for i in range(grid.test.shape[0])]},
                            note=f"{regime}: trajectories of {data_dir.name}; seeds 0 (train file) and 1000 (test)")
    return {"regime": regime, "dir": data_dir, "grid": grid, "ico": ico, "attrs": attrs, "nlat": nlat, "nlon": nlon,
            "cg": cg, "sht_grid": SHT.from_grid(cg, a.lmax), "sht_grid_e": SHT.from_grid(cg, Ld),
            "sht_ico": SHT(ico.points, a.lmax, method="lsq", name="icosphere4"),
            "sht_ico_e": SHT(ico.points, Ld, method="lsq", name="icosphere4"),
            "w_ico": torch.full((ico.points.shape[0],), 4 * math.pi / ico.points.shape[0], dtype=torch.float64),
            "edges_ico": _edges_from_faces(ico.faces) if ico.faces is not None else None, "split": record}


MODEL_LABELS = {
    "linear": "closed-form linear path alone (ridge on SH coefficients, no SGD)",
    "ours_grid": "meshops sfno_graph + linear path",
    "ours_grid_plain": "meshops sfno_graph, no linear path",
    "peer_grid": "torch-harmonics SFNO",
    "ours_ico": "meshops sfno_graph + linear path, icosphere",
    "ours_ico_plain": "meshops sfno_graph, no linear path, icosphere",
}


def build(key: str, cand: dict[str, Any], d: dict[str, Any], a: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """(net, point-set data, quadrature weights, energy transform) of one model and candidate."""
    from meshops.models import create

    on_ico = key.startswith("ours_ico")
    if key == "peer_grid":
        net = PeerSFNO(d["nlat"], d["nlon"], int(cand["width"]), int(cand.get("layers", a.layers)),
                       int(cand.get("scale_factor", a.peer_scale_factor)), d["grid"].points[:, 2])
        return net, d["grid"], d["cg"].weights, d["sht_grid_e"]
    linear = "none" if key.endswith("plain") else "full"
    model = create("sfno_graph", in_channels=3, out_channels=3, hidden=int(cand.get("width", a.hidden)),
                   lmax=a.lmax, layers=0 if key == "linear" else a.layers, pos_features="z", residual=True,
                   local=False, zero_init=True, band_limit=True, linear=linear,
                   internal=list(a.internal) if a.internal[0] > 0 else None)
    ps, sht = (d["ico"], d["sht_ico"]) if on_ico else (d["grid"], d["sht_grid"])
    net = Ours(model, ps.points, sht, None)
    if linear == "full":  # the closed-form operator from the training pairs, then frozen
        xs = ps.train[:, :-1].reshape(-1, *ps.train.shape[2:])
        ys = ps.train[:, 1:].reshape(-1, *ps.train.shape[2:])
        model.fit_linear(xs, ys, sht, ridge=float(cand.get("ridge", a.ridge)))
        model.linear.requires_grad_(False)
    return net, ps, (d["w_ico"] if on_ico else d["cg"].weights), (d["sht_ico_e"] if on_ico else d["sht_grid_e"])


def make_fit(key: str, d: dict[str, Any], a: argparse.Namespace) -> Any:
    P = protocol()

    def fit(cand: dict[str, Any], seed: int, budget: Any) -> Any:
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        net, ps, w, sht_e = build(key, cand, d, a)
        params = int(sum(p.numel() for p in net.parameters()))
        if key == "linear":  # no SGD: the validation score of the closed-form fit, no steps
            f_val, used, best, train_ms = validate(net, ps.val, w), 0, 0, 0.0
        else:
            tr = Steps(net, ps.train, w, budget.max_epochs, a.batch, float(cand["lr"]), seed, a.unroll)
            f = P.fit_early_stopping(tr, lambda: validate(net, ps.val, w), budget, module=net)
            f_val, used, best, train_ms = f.best_val, f.epochs_used, f.best_epoch, 1e3 * tr.seconds / max(1, tr.steps)
        print(f"    [{d['regime']}] {key} {cand} seed {seed}: val {f_val:.4f}, best at step {best}/{used} "
              f"[{time.perf_counter() - t0:.0f} s]", flush=True)

        def test() -> dict[str, float]:
            return evaluate(net, ps, w, sht_e, a.rollout, d["attrs"])

        return P.Run(f_val, used, best, test, {"params": params, "train_step_ms": train_ms,
                                              "forward_ms": time_forward(net, ps.test[:1, 0], reps=5)})

    return fit


def candidates_for(key: str, a: argparse.Namespace) -> list[dict[str, Any]]:
    P = protocol()
    if a.no_search:  # the published default alone (when the CPU does not allow the search)
        if key == "linear":
            return [{"ridge": a.ridge, "label": "published default"}]
        if key == "peer_grid":
            return [{**PEER_DEFAULT, "width": a.peer_default_width, "label": "published default"}]
        return [{"lr": 1e-3, "width": 32, "label": "published default"}]
    if key == "linear":
        return [{"ridge": r, "label": "grid"} for r in a.ridges]
    if key == "peer_grid":
        return P.candidates(a.lrs, a.widths, default={**PEER_DEFAULT, "width": a.peer_default_width})
    return P.candidates(a.lrs, a.widths, default={"lr": 1e-3, "width": 32})


def run_regime(regime: str, a: argparse.Namespace, on_model: Any = None) -> dict[str, Any]:
    P = protocol()
    d = regime_data(regime, a)
    print(f"[{regime}] data {d['dir']}: train {tuple(d['grid'].train.shape)}, val {tuple(d['grid'].val.shape)}, "
          f"test {tuple(d['grid'].test.shape)}", flush=True)
    specs = {k: P.ModelSpec(candidates_for(k, a), make_fit(k, d, a), label=MODEL_LABELS[k], peer=k == "peer_grid")
             for k in a.models}
    extra = dict(regime=regime, amplitudes=REGIMES[regime], data=str(d["dir"]))
    res = P.run_protocol(specs, a.seeds, P.Budget(a.max_steps, a.patience, eval_every=a.eval_every, unit="steps"),
                         splits=d["split"], on_model=None if on_model is None else lambda r: on_model(r | extra))
    res.update(extra)
    return res


def merge(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Results of several runs (model subsets, or seeds, run as separate processes) merged per regime
    with :func:`protocol.merge_results` (budgets and splits must agree; amplitudes are checked here)."""
    P = protocol()
    by: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        for r in json.loads(Path(path).read_text())["results"]:
            by.setdefault(r["regime"], []).append(r)
    out = []
    for regime, parts in by.items():
        if any(p["amplitudes"] != parts[0]["amplitudes"] for p in parts):
            raise SystemExit(f"--merge: the {regime} runs have different amplitudes")
        try:
            m = P.merge_results(parts)
        except ValueError as err:
            raise SystemExit(f"--merge: {err}") from None
        m["models"] = {k: m["models"][k] for k in MODEL_LABELS if k in m["models"]}
        out.append(m)
    return out


METRICS = [("one_step", "one-step rel L2"), ("rollout24", "rollout @24 h"), ("rollout120", "@120 h"),
           ("rollout_final", "@final"), ("energy_ratio", "energy ratio @final"),
           ("enstrophy_ratio", "enstrophy ratio @final"), ("rollout_steps", "finite steps")]


def report(results: list[dict[str, Any]], a: argparse.Namespace, command: str) -> str:
    P = protocol()
    lines = [f"Command: `{command}` (CPU, {a.threads} thread(s); torch {torch.__version__}).", ""]
    for r in results:
        amp = r["amplitudes"]
        lines += [f"#### {r['regime'].capitalize()} regime (random initial states, mach {amp['mach']}, geopotential "
                  f"amplitude {amp['hamp']:g} m)", "",
                  P.statement(r, f"shallow water on the sphere, {r['regime']} regime, one-hour steps, rollouts of "
                              f"{a.rollout} steps from the first state after the {a.spinup}-hour spin-up of each test "
                              "trajectory; every model predicts the increment with z = sin(lat) as an extra input; "
                              "loss: per-channel relative squared error with the quadrature weights; Adam, cosine "
                              f"schedule over the maximum budget, batch {a.batch}",
                              "validation score (mean relative L2 of rollouts at 1, 6 and 24 h from every 24th hour of "
                              "the validation trajectories, each capped at 2)",
                              "lr in {" + ", ".join(f"{x:g}" for x in a.lrs) + "} x width in {"
                              + ", ".join(map(str, a.widths)) + "}, plus the published default (ours: lr 1e-3, "
                              "width 32, the earlier card's; SFNO: torch-harmonics' example, scale factor 3, 4 "
                              f"layers, lr 1e-3, embed_dim {a.peer_default_width}); the linear path alone: ridge in "
                              "{" + ", ".join(f"{x:g}" for x in a.ridges) + "}, closed form (no seeds: its three "
                              "runs are identical)"), "",
                  P.results_table(r, METRICS, config_keys=["lr", "width", "ridge"], digits=3), "",
                  P.conclusion(r, "rollout24", f"{r['regime']}, rollout @24 h",
                               pairs=[("ours_grid", "linear"), ("ours_grid_plain", "peer_grid"),
                                      ("ours_grid", "peer_grid")]), "",
                  P.conclusion(r, "one_step", f"{r['regime']}, one step",
                               pairs=[("ours_grid", "linear"), ("ours_grid_plain", "peer_grid")]), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="meshops bench sphere", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--data", default=None,
                    help="data folder (default: $MESHOPS_CACHE or <checkout>/.cache); one subfolder per regime")
    ap.add_argument("--regimes", nargs="+", default=["nonlinear", "linear"], choices=sorted(REGIMES))
    ap.add_argument("--n-traj", type=int, default=14, help="trajectories of the training file (train + val)")
    ap.add_argument("--n-val", type=int, default=2, help="of them, validation trajectories")
    ap.add_argument("--n-test", type=int, default=2, help="test trajectories (their own file, other seeds)")
    ap.add_argument("--traj-steps", type=int, default=230, help="hours per generated trajectory")
    ap.add_argument("--max-steps", type=int, default=500, help="budget: the most training steps per run")
    ap.add_argument("--eval-every", type=int, default=100, help="training steps between validations")
    ap.add_argument("--patience", type=int, default=2, help="validations without improvement before stopping")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--spinup", type=int, default=20, help="hours dropped at the start of every trajectory")
    ap.add_argument("--unroll", type=int, default=1, help="autoregressive steps in the training loss (every model)")
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3])
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--ridges", type=float, nargs="+", default=[1e-8, 1e-5, 1e-3])
    ap.add_argument("--ridge", type=float, default=1e-8, help="ridge of the linear path inside ours_grid / ours_ico")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--lmax", type=int, default=10, help="degree of our spectral weights (the data's band: 10)")
    ap.add_argument("--internal", type=int, nargs=2, default=[11, 22], metavar=("NLAT", "NLON"),
                    help="our internal Gauss grid (0 0: stay on the data points)")
    ap.add_argument("--peer-scale-factor", type=int, default=3, help="SFNO's internal downsampling (its default: 3)")
    ap.add_argument("--peer-default-width", type=int, default=64,
                    help="embed_dim of SFNO's published-default candidate (the example's 128 is ~5x slower here)")
    ap.add_argument("--rollout", type=int, default=200)
    ap.add_argument("--models", nargs="+", default=["linear", "ours_grid", "ours_grid_plain", "peer_grid", "ours_ico"],
                    choices=sorted(MODEL_LABELS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tiny", action="store_true", help="smoke size: 3+1+1 short trajectories, 4 steps, 2 seeds")
    ap.add_argument("--json", default=None, help="write results as JSON here (after every model)")
    ap.add_argument("--no-search", action="store_true",
                    help="no validation search: each model's published default only (early stopping and seeds stay)")
    ap.add_argument("--tag", default=None, help="README block name (default: the regimes joined by '-')")
    ap.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                    help="no training: merge the results of earlier runs (model subsets) and report them")
    ap.add_argument("--write-readme", action="store_true",
                    help="put the tables into the dataset README (the block of each regime run)")
    a = ap.parse_args(argv)
    if a.tiny:
        a.n_traj, a.n_val, a.n_test, a.traj_steps, a.spinup, a.rollout = 3, 1, 1, 40, 2, 30
        a.max_steps, a.eval_every, a.patience, a.lrs, a.widths, a.seeds = 4, 2, 1, [1e-3], [8], [0, 1]
        a.ridges, a.peer_default_width, a.regimes = [1e-5], 8, a.regimes[:1]
        a.models = [m for m in a.models if m in ("linear", "ours_grid", "peer_grid")]
    torch.set_num_threads(a.threads)
    from meshops.atomic import replace_block, write_text_atomic

    cmd = ("meshops bench sphere " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    tag = a.tag or "-".join(sorted({r for r in a.regimes}, key=a.regimes.index))

    def save(results: list[dict[str, Any]], partial: str = "") -> None:
        if a.json:
            write_text_atomic(json.dumps({"config": vars(a), "results": results}, indent=1), a.json)
        if a.write_readme:
            replace_block(README, f"<!-- results:{tag}:start -->", f"<!-- results:{tag}:end -->",
                          f"\n{partial}{report(results, a, cmd)}\n")

    if a.merge:
        results = merge(a.merge)
        a.regimes = [r["regime"] for r in results]
        tag = a.tag or "-".join(a.regimes)
    else:
        results = []
        for regime in a.regimes:
            def progress(r: dict[str, Any]) -> None:  # results holds the finished regimes only
                save(results + [r], f"(partial: {len(r['models'])} of {len(a.models)} models done)\n\n")

            results.append(run_regime(regime, a, progress))
    text = report(results, a, cmd)
    print("\n" + text)
    save(results)
    if a.write_readme:
        print(f"tables written to {README}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
