"""Darcy flow: neuraloperator's FNO next to meshops' mgno, amg, transolver, mgn and ugraph; physics loss.

``meshops bench darcy`` (or ``python benchmarks/darcy.py``) does, in one process:

1. **Darcy** (neuraloperator's own files ``darcy_train_16.pt``, ``darcy_test_16.pt``,
   ``darcy_test_32.pt``, through the ``darcy_neuraloperator`` dataset): every model trains on the
   same training samples at 16 x 16, with the same epochs, batch size, optimizer (AdamW), cosine
   schedule, learning rate, seed and loss (MSE of the normalized pressure; inputs and targets
   normalized with the same training statistics). Every model gets the permeability and the
   distance to the square's walls (where the pressure is 0). neuraloperator's ``FNO`` runs on the
   (B, 2, n, n) grids, ours on the grid points through ``meshops.data.graphs.Pipeline`` (plus
   positions) with the graphs of :func:`graph_spec`: level-0 edges of one physical radius and coarse
   levels of fixed sizes, so a 32 x 32 graph describes the same square as a 16 x 16 one. Reported:
   relative L2 error of the pressure per test sample (then averaged) at 16 x 16 and zero-shot at
   32 x 32 (no retraining), parameters, seconds per epoch. Parameter counts are required to be
   within 2x of FNO's (a warning otherwise).
2. **Labels plus physics** (``elliptic_boundary`` cases on squares with 4 corner cut-outs,
   Dirichlet and mixed by default, ``--phys-bc`` picks the kinds; P1 FEM ground truth and the
   solver's own system from the recipe's ``fem.case_system``): ``mgno`` trained with 10% of the labels plus a physics loss of
   the finite element system (:mod:`meshops.train.physics`: the relative squared residual, or the
   Ritz energy whose gradient is the residual) on all training cases, next to 10% of the labels
   alone and 100% of the labels, with the same number of optimizer steps.

Results are printed as Markdown, written to ``--out`` (JSON) and, with ``--readme``, put between
``<!-- bench:darcy:begin -->`` and ``<!-- bench:darcy:end -->`` of that file.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["fno", "mgno", "amg", "transolver", "mgn", "ugraph"]
log = logging.getLogger("meshops.bench.darcy")


def model_configs(in_channels: int) -> dict[str, dict[str, Any]]:
    """Configs of comparable size (the parameter counts are printed and checked)."""
    return {
        "fno": dict(n_modes=(8, 8), in_channels=2, out_channels=1, hidden_channels=24, n_layers=4),
        "mgno": dict(in_channels=in_channels, out_channels=1, hidden=48, n_layers=4, levels=None, cycle="V",
                     pre=1, post=0, coarse=1, kernel_hidden=32),
        "amg": dict(in_channels=in_channels, out_channels=1, hidden=48, n_layers=3, heads=4, k_local=8, k_global=8,
                    slices=16),
        "transolver": dict(in_channels=in_channels, out_channels=1, hidden=64, n_layers=4, heads=4, slices=16),
        "mgn": dict(in_channels=in_channels, out_channels=1, hidden=48, n_blocks=6),
        "ugraph": dict(in_channels=in_channels, out_channels=1, hidden=48, levels=3, blocks_per_level=1),
    }


def n_params(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def graph_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The graphs every graph model gets, the same at 16 x 16 and 32 x 32 in physical terms.

    Level 0: the grid points with radius edges of a fixed physical radius (``--radius``, in units
    of the unit square; 1.5 / 16 by default, about the 8 nearest points at 16 x 16 and 28 at
    32 x 32), so a mean over a node's neighbours approximates the same integral on both grids.
    Coarse levels: fixed sizes (``--sizes``, 64, 16, 4 by default), farthest-point samples of
    level 0, so they cover the square at the same spacing whatever the grid.
    """
    return {"levels": 1 + len(args.sizes), "sizes": list(args.sizes), "edges": "radius",
            "radius": [args.radius] + [None] * len(args.sizes), "max_num_neighbors": 64,
            "interpolation": "linear"}


def rel_l2(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.linalg.norm(pred - true) / max(np.linalg.norm(true), 1e-30))


# ----------------------------------------------------------------------------- training
def train_graph_model(model: Any, samples: list[Any], epochs: int, batch_size: int, lr: float, seed: int,
                      physics: list[Any] | None = None, labelled: set[int] | None = None,
                      physics_weight: float = 1.0, target_stats: tuple[float, float] | None = None,
                      physics_loss: str = "residual") -> list[float]:
    """Train on graphs; returns seconds per epoch. With ``physics`` (one LinearSystem per sample),
    the physics loss (``"residual"`` or ``"energy"``, :mod:`meshops.train.physics`) is added for every
    sample and the data loss only for ``labelled`` ones."""
    import torch

    from meshops.train.physics import batch_systems, energy_loss, residual_loss

    phys_fn = {"residual": residual_loss, "energy": energy_loss}[physics_loss]
    from meshops.train.trainer import collate, cosine_warmup

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(samples) / batch_size)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_warmup(s, total, min(50, total // 10), 0.02))
    times = []
    model.train()
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(samples), generator=g).tolist()
        for i in range(0, len(order), batch_size):
            ids = order[i : i + batch_size]
            b = collate([samples[j] for j in ids])
            pred = model(b)
            batch = b.batch
            err = (pred - b.y).square().mean(-1)
            per_graph = torch.zeros(len(ids)).index_add_(0, batch, err) / torch.bincount(batch, minlength=len(ids))
            if labelled is not None:
                mask = torch.tensor([j in labelled for j in ids], dtype=torch.float32)
                data_loss = (per_graph * mask).sum() / mask.sum().clamp_min(1.0)
            else:
                data_loss = per_graph.mean()
            loss = data_loss
            if physics is not None:
                assert target_stats is not None
                mean, std = target_stats
                u = pred[:, 0].double() * std + mean
                loss = loss + physics_weight * phys_fn(u, batch_systems([physics[j] for j in ids]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        times.append(time.perf_counter() - t0)
    model.eval()
    return times


def eval_graph_model(model: Any, pipeline: Any, cases: list[Any], samples: list[Any], batch_size: int = 16,
                     mask_fn: Any = None) -> float:
    import torch

    from meshops.train.trainer import collate

    errs = []
    with torch.no_grad():
        for i in range(0, len(samples), batch_size):
            b = collate(samples[i : i + batch_size])
            pred = model(b)
            for k, j in enumerate(range(i, min(i + batch_size, len(samples)))):
                p = pred[b.batch == k]
                out = pipeline.decode(cases[j], samples[j], p)
                name = pipeline.features.targets[0]
                truth = cases[j].field_array(name)[:, 0]
                est = np.asarray(out[name], dtype=np.float64).reshape(-1)
                m = mask_fn(cases[j]) if mask_fn is not None else slice(None)
                errs.append(rel_l2(est[m], truth[m]))
    return float(np.mean(errs))


def run_fno(cfg: dict[str, Any], grids: dict[str, tuple[np.ndarray, np.ndarray]], stats: Any, epochs: int,
            batch_size: int, lr: float, seed: int) -> dict[str, Any]:
    """neuraloperator's FNO on the grids with the same normalization, loss, optimizer and schedule."""
    import torch
    from neuralop.models import FNO

    from meshops.train.trainer import cosine_warmup

    torch.manual_seed(seed)
    model = FNO(**cfg)
    xm = np.asarray(stats.inputs.mean, dtype=np.float64)[:2].reshape(1, 2, 1, 1)
    xs = np.asarray(stats.inputs.std, dtype=np.float64)[:2].reshape(1, 2, 1, 1)
    ym, ys = float(stats.targets.mean[0]), float(stats.targets.std[0])

    def enc(x: np.ndarray) -> torch.Tensor:
        """(B, n, n) permeability -> (B, 2, n, n) normalized [permeability, wall distance], as the graphs get."""
        n = x.shape[-1]
        c = (np.arange(n) + 0.5) / n
        wall = np.minimum(np.minimum(c, 1 - c)[:, None], np.minimum(c, 1 - c)[None, :])
        both = np.stack([x, np.broadcast_to(wall, x.shape)], axis=1)
        return torch.from_numpy((both - xm) / xs).float()

    xtr, ytr = enc(grids["train16"][0]), torch.from_numpy((grids["train16"][1] - ym) / ys).float()[:, None]
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    total = epochs * math.ceil(len(xtr) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_warmup(s, total, min(50, total // 10), 0.02))
    times = []
    model.train()
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(order), batch_size):
            ids = order[i : i + batch_size]
            loss = (model(xtr[ids]) - ytr[ids]).square().mean(dim=(1, 2, 3)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        times.append(time.perf_counter() - t0)
    model.eval()
    res: dict[str, Any] = {"params": n_params(model), "sec_per_epoch": float(np.mean(times))}
    with torch.no_grad():
        for key in ("test16", "test32"):
            x, y = grids[key]
            pred = model(enc(x))[:, 0].double().numpy() * ys + ym
            res[key] = float(np.mean([rel_l2(pred[i], y[i]) for i in range(len(y))]))
    return res


# ----------------------------------------------------------------------------- experiments
def run_darcy(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from meshops.data import load_dataset
    from meshops.data.graphs import FeatureSpec, GraphCache, Pipeline
    from meshops.models import create

    root = Path(args.data)
    ds = {
        "train16": load_dataset(str(ROOT / "datasets" / "darcy_neuraloperator"), path=str(root / "darcy_train_16.pt"),
                                n=args.n_train),
        "test16": load_dataset(str(ROOT / "datasets" / "darcy_neuraloperator"), path=str(root / "darcy_test_16.pt"),
                               n=args.n_test),
        "test32": load_dataset(str(ROOT / "datasets" / "darcy_neuraloperator"), path=str(root / "darcy_test_32.pt"),
                               n=args.n_test),
    }
    cases = {k: [d[i] for i in range(len(d))] for k, d in ds.items()}
    grids = {k: (d.x.astype(np.float64), d.y.astype(np.float64)) for k, d in ds.items()}
    # no boundary flag: the ring of outermost grid points lies 1/32 from the wall at 16 x 16 and
    # 1/64 at 32 x 32, so a flag means different things on the two grids; wall_distance does not
    features = FeatureSpec.from_case(cases["train16"][0], boundary=False)
    cache = GraphCache(enabled=False)
    pipes = {}
    for key in ("16", "32"):
        pipes[key] = Pipeline(features, graph_spec(args), cache=cache)
    pipes["16"].fit(cases["train16"])
    pipes["32"].normalizer = pipes["16"].normalizer
    samples = {k: [pipes[k[-2:]].sample(c) for c in cases[k]] for k in cases}
    results: dict[str, Any] = {}
    cfgs = model_configs(features.in_channels)
    for item in args.set or []:
        key, _, value = item.partition("=")
        model_name, _, option = key.partition(".")
        if model_name not in cfgs or not option or not value:
            raise SystemExit(f"--set {item!r}: expected MODEL.OPTION=JSON with MODEL one of {sorted(cfgs)}")
        cfgs[model_name][option] = json.loads(value)
    for name in args.models:
        t0 = time.perf_counter()
        if name == "fno":
            results[name] = run_fno(cfgs["fno"], grids, pipes["16"].normalizer, args.epochs, args.batch_size,
                                    args.lr, args.seed)
        else:
            torch.manual_seed(args.seed)
            model = create(name, **cfgs[name])
            times = train_graph_model(model, samples["train16"], args.epochs, args.batch_size, args.lr, args.seed)
            results[name] = {
                "params": n_params(model),
                "sec_per_epoch": float(np.mean(times)),
                "test16": eval_graph_model(model, pipes["16"], cases["test16"], samples["test16"]),
                "test32": eval_graph_model(model, pipes["32"], cases["test32"], samples["test32"], batch_size=4),
            }
        r = results[name]
        print(f"  {name:11s} params {r['params']:7d}  {r['sec_per_epoch']:6.2f} s/epoch  rel L2 16: {r['test16']:.4f}"
              f"  32 (zero-shot): {r['test32']:.4f}  [{time.perf_counter() - t0:.0f} s]", flush=True)
    if "fno" in results:
        p0 = results["fno"]["params"]
        for name, r in results.items():
            if not 0.5 <= r["params"] / p0 <= 2.0:
                log.warning("%s has %d parameters, not within 2x of FNO's %d", name, r["params"], p0)
    return {"results": results, "n_train": len(cases["train16"]), "n_test16": len(cases["test16"]),
            "n_test32": len(cases["test32"]), "configs": {k: cfgs[k] for k in args.models}}


def run_physics(args: argparse.Namespace, bc: str) -> dict[str, Any]:
    import torch

    from meshops.data import load_dataset, recipe_module
    from meshops.data.graphs import FeatureSpec, GraphCache, Pipeline
    from meshops.models import create
    from meshops.train.physics import LinearSystem, to_torch_sparse

    fem = recipe_module(ROOT / "datasets" / "elliptic_boundary", "fem")
    gen = recipe_module(ROOT / "datasets" / "elliptic_boundary", "generator")
    ds = load_dataset("elliptic_boundary", families=["cutout4"], bcs=[bc], n=args.phys_n, seed=0,
                      coefficient="poisson")
    cases = [ds[i] for i in range(len(ds))]
    n_train = int(round(0.8 * len(cases)))
    train, test = cases[:n_train], cases[n_train:]
    features = FeatureSpec.from_case(train[0])
    pipe = Pipeline(features, {"levels": 4, "ratio": 0.25}, cache=GraphCache(enabled=False))
    pipe.fit(train)
    tr_s = [pipe.sample(c) for c in train]
    te_s = [pipe.sample(c) for c in test]
    systems = []
    for i in range(n_train):  # the solver's own system (stiffness, load, Neumann fluxes, Robin terms)
        A, b, dirichlet, g = fem.case_system(gen.read_case(ds.root / ds.meta(i)["file"]))
        c = train[i]
        systems.append(LinearSystem(to_torch_sparse(A), torch.from_numpy(b), None, torch.from_numpy(dirichlet),
                                    torch.from_numpy(g), name=c.name))
    stats = (float(pipe.normalizer.targets.mean[0]), float(pipe.normalizer.targets.std[0]))
    n_lab = max(1, int(round(0.1 * n_train)))
    lab = set(range(n_lab))

    def unknown(case: Any) -> np.ndarray:
        return np.asarray(case.mesh.point_data["bc_type"]) != 1

    out: dict[str, Any] = {"bc": bc, "n_train": n_train, "n_test": len(test), "n_labelled": n_lab, "epochs": args.phys_epochs}
    runs = {
        "10% labels + residual": dict(samples=tr_s, physics=systems, labelled=lab, loss="residual",
                                      weight=args.physics_weight),
        "10% labels + energy": dict(samples=tr_s, physics=systems, labelled=lab, loss="energy",
                                    weight=args.energy_weight),
        "10% labels": dict(samples=[tr_s[i] for i in sorted(lab)], physics=None, labelled=None),
        "100% labels": dict(samples=tr_s, physics=None, labelled=None),
    }
    for key, run in runs.items():
        torch.manual_seed(args.seed)
        model = create("mgno", in_channels=features.in_channels, out_channels=1, hidden=24, n_layers=3, levels=None)
        # the same number of optimizer steps for every run: the 10%-only run repeats its epochs
        steps = args.phys_epochs * math.ceil(n_train / args.batch_size)
        epochs = max(1, round(steps / math.ceil(len(run["samples"]) / args.batch_size)))
        t0 = time.perf_counter()
        train_graph_model(model, run["samples"], epochs, args.batch_size, args.lr, args.seed, physics=run["physics"],
                          labelled=run["labelled"], physics_weight=run.get("weight", 0.0), target_stats=stats,
                          physics_loss=run.get("loss", "residual"))
        err = eval_graph_model(model, pipe, test, te_s, mask_fn=unknown)
        out[key] = err
        print(f"  {key:24s} rel L2 (unknown nodes) {err:.4f}  [{time.perf_counter() - t0:.0f} s]", flush=True)
    return out


# ----------------------------------------------------------------------------- report
def tables(res: dict[str, Any], command: str) -> str:
    lines = [f"Command: `{command}`", ""]
    if "darcy" in res:
        d = res["darcy"]
        lines += [f"Darcy (neuraloperator files): {d['n_train']} training samples at 16x16, {d['n_test16']} test at "
                  f"16x16, {d['n_test32']} at 32x32 (zero-shot); {res['epochs']} epochs, batch {res['batch_size']}, "
                  "AdamW, cosine schedule, seed 0, CPU.", "",
                  "| model | params | s/epoch | rel. L2 16x16 | rel. L2 32x32 (zero-shot) | 32/16 |",
                  "|---|---|---|---|---|---|"]
        for name, r in d["results"].items():
            label = "FNO (neuraloperator)" if name == "fno" else f"`{name}`"
            lines.append(f"| {label} | {r['params']:,} | {r['sec_per_epoch']:.1f} | {r['test16']:.4f} | "
                         f"{r['test32']:.4f} | {r['test32'] / r['test16']:.2f} |")
        lines.append("")
    if "physics" in res:
        per_bc = res["physics"]
        p = next(iter(per_bc.values()))
        lines += ["Labels plus physics (`mgno`, elliptic_boundary cases on squares with 4 cut-outs per boundary kind "
                  "(mixed: Dirichlet, Neumann and Robin sectors), the solver's own P1 system (`fem.case_system`: "
                  f"stiffness, load, Neumann fluxes, Robin terms), {p['n_train']} training / {p['n_test']} test cases, "
                  f"{p['n_labelled']} labelled = 10%, {p['epochs']} epochs of the full set, the same number of "
                  "optimizer steps for each run; physics losses on all training cases: `residual_loss` (relative "
                  "squared FEM residual) or `energy_loss` (Ritz energy, gradient = residual), weight 1; relative L2 "
                  "of u on the non-Dirichlet nodes):", "",
                  "| training data | " + " | ".join(per_bc) + " |", "|---|" + "---|" * len(per_bc)]
        for key in ("10% labels + residual", "10% labels + energy", "10% labels", "100% labels"):
            lines.append(f"| {key} | " + " | ".join(f"{r[key]:.4f}" for r in per_bc.values()) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="meshops bench darcy", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "neuraloperator"),
                   help="folder with darcy_train_16.pt, darcy_test_16.pt, darcy_test_32.pt")
    p.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--n-train", type=int, default=500)
    p.add_argument("--n-test", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", metavar="MODEL.OPTION=JSON",
                   help="override a model option, e.g. --set mgno.n_kernels=2 (repeatable)")
    p.add_argument("--radius", type=float, default=1.5 / 16,
                   help="level-0 edge radius of the graph models (unit square), the same at 16x16 and 32x32")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 16, 4], help="coarse level sizes")
    p.add_argument("--skip-darcy", action="store_true")
    p.add_argument("--skip-physics", action="store_true")
    p.add_argument("--phys-n", type=int, default=100, help="elliptic cases (80%% train, 20%% test)")
    p.add_argument("--phys-bc", nargs="+", default=["dirichlet", "mixed"], choices=["dirichlet", "mixed", "robin"],
                   help="boundary kinds of the elliptic cases of the physics experiment (one run each)")
    p.add_argument("--phys-epochs", type=int, default=25)
    p.add_argument("--physics-weight", type=float, default=1.0, help="weight of the residual loss")
    p.add_argument("--energy-weight", type=float, default=1.0, help="weight of the energy (Ritz) loss")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 by default: on a shared machine more threads can be far slower)")
    p.add_argument("--out", default=None, help="JSON results")
    p.add_argument("--readme", default=None, help="Markdown file whose bench:darcy block is replaced")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("skfem").setLevel(logging.WARNING)  # one INFO line per assembled form otherwise
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    res: dict[str, Any] = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                           "graph": graph_spec(args)}
    if not args.skip_darcy:
        print("Darcy (16x16 training, 32x32 zero-shot):", flush=True)
        res["darcy"] = run_darcy(args)
    if not args.skip_physics:
        res["physics"] = {}
        for bc in args.phys_bc:
            print(f"Labels plus physics (elliptic_boundary {bc}, mgno):", flush=True)
            res["physics"][bc] = run_physics(args, bc)
    command = "meshops bench darcy " + " ".join(argv if argv is not None else sys.argv[1:])
    text = tables(res, command.strip())
    print("\n" + text)
    from meshops.atomic import replace_block, write_text_atomic

    if args.out:
        write_text_atomic(json.dumps(res, indent=1), args.out)
    if args.readme:
        replace_block(args.readme, "<!-- bench:darcy:begin -->", "<!-- bench:darcy:end -->", f"\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
