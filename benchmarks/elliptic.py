"""BENO against the other meshops operators on elliptic problems with boundary data.

``meshops bench elliptic`` (or ``python benchmarks/elliptic.py``) does, for each boundary kind
(default: Dirichlet and Neumann):

1. generates (or reuses) the ``elliptic_boundary`` data: training and validation cases on squares
   with 4 corner cut-outs; test cases on 0..4 cut-outs (4 = in distribution, new seeds) and on the other shape
   families (random polygons, squares with holes);
2. builds the graphs with the data pipeline (``meshops.data.graphs.Pipeline``: the same inputs
   ``f, k, g, bc_onehot``, normalized positions and boundary flag, 3 hierarchy levels, the same
   normalization from the training split) for every model;
3. trains ``beno``, ``mgn``, ``ugraph`` and ``gino`` under the protocol of ``benchmarks/protocol.py``:
   the same search (``--lrs`` x ``--widths``) judged on held-out ``cutout4`` validation cases (data
   seed + 2), the same loss, optimizer and schedule, early stopping on validation under
   ``--max-epochs``, the kept candidate trained with every ``--seeds`` (mean ± std [min, max]);
4. reports the relative L2 error (per case, then averaged) and the MAE of ``u`` per shape
   family, on the nodes where ``u`` is unknown (all but the Dirichlet nodes), and the average over
   the out-of-distribution families;
5. evaluates the Dirichlet-trained models on the BENO paper's samples (``--beno-data``): each
   sample's domain is re-meshed like the training data, ``f`` and ``g`` are interpolated from the
   paper's grid (piecewise linear on the sample's triangulation), the prediction is interpolated
   back (piecewise linear on our mesh) to the paper's in-domain cell centres and compared with the
   paper's solution there. The P1 FEM solution of the same interpolated problem is reported as the
   floor that the interpolation and discretization alone leave.

Results are printed as Markdown tables and written to ``--out`` (JSON); ``--readme`` replaces the
block between ``<!-- bench:elliptic-KIND:begin -->`` and ``<!-- bench:elliptic-KIND:end -->`` of
each boundary kind in that file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ["cutout4", "cutout0", "cutout1", "cutout2", "cutout3", "polygon", "holes"]
OOD = [f for f in FAMILIES if f != "cutout4"]
MODELS = ["beno", "mgn", "ugraph", "gino"]
# BENO's own options searched on validation besides lr and width: the grid's (potential scale, pooling)
# and the second stage's (single-layer scale, processor levels: 1 flat, 3 U-shaped)
BENO_SEARCH = ("newton_scale", "global_pool", "single_scale", "levels")


def model_configs(in_channels: int, hidden: int, beno_levels: int = 1,
                  beno_aggregate: str = "mean") -> dict[str, dict[str, Any]]:
    """Model configs of comparable size (parameter counts are printed with the results).

    BENO: channels 0 (f), 2 (g) and the Dirichlet and Robin columns 3, 5 of ``bc_onehot`` (graphs
    without such nodes are pure Neumann problems: zero-mean output) of the pipeline's inputs
    ``f, k, g, bc_onehot``; Green's function potentials and global pooling on.
    """
    return {
        "beno": dict(in_channels=in_channels, out_channels=1, source_channels=[0], boundary_value_channels=[2],
                     boundary_channel=in_channels - 1, hidden=hidden * 3 // 4, latent=hidden * 3 // 4,
                     levels=beno_levels, blocks_per_level=2, n_blocks=4, heads=4, transformer_layers=2,
                     aggregate=beno_aggregate, global_pool=True, potentials=True, anchor_channels=[3, 5]),
        "mgn": dict(in_channels=in_channels, out_channels=1, hidden=hidden, n_blocks=8),
        "ugraph": dict(in_channels=in_channels, out_channels=1, hidden=hidden, levels=3, blocks_per_level=2),
        "gino": dict(in_channels=in_channels, out_channels=1, hidden=hidden // 2, grid=12, radius=1.5,
                     latent_blocks=2),
    }


def unknown_mask(case: Any) -> np.ndarray:
    """Nodes where ``u`` is not given by the data (everything but Dirichlet nodes)."""
    return np.asarray(case.mesh.point_data["bc_type"]) != 1


# ----------------------------------------------------------------------------- training
class Epochs:
    """One model trained an epoch at a time (``__call__(n)``), for early stopping: AdamW, warm-up +
    cosine schedule over ``max_epochs`` (the budget), clipping, per-graph MSE of the normalized target."""

    def __init__(self, model: Any, samples: list[Any], batch_size: int, lr: float, seed: int, max_epochs: int):
        import torch

        from meshops.train.trainer import cosine_warmup

        self.model, self.samples, self.batch_size = model, samples, batch_size
        self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        steps_per_epoch = math.ceil(len(samples) / batch_size)
        total = max_epochs * steps_per_epoch
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: cosine_warmup(s, total, steps_per_epoch * 2, 0.02))
        self.g = torch.Generator().manual_seed(seed)
        self.seconds = 0.0

    def __call__(self, epochs: int) -> None:
        import torch

        from meshops.train.trainer import collate, per_graph_mse

        t0 = time.time()
        n = len(self.samples)
        self.model.train()
        for _ in range(epochs):
            order = torch.randperm(n, generator=self.g).tolist()
            for i in range(0, n, self.batch_size):
                b = collate([self.samples[j] for j in order[i : i + self.batch_size]])
                loss = per_graph_mse(self.model(b), b.y, b.batch, b.num_graphs).mean()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.opt.step()
                self.sched.step()
        self.model.eval()
        self.seconds += time.time() - t0


def predict(model: Any, pipeline: Any, case: Any, sample: Any | None = None) -> np.ndarray:
    import torch

    with torch.no_grad():
        s = sample if sample is not None else pipeline.sample(case, targets=False)
        out = model(s)
    return np.asarray(pipeline.decode(case, s, out)["u"], dtype=np.float64)


def node_volumes(case: Any) -> np.ndarray:
    """Lumped P1 mass per node (cell volume shared equally by its vertices)."""
    cells = case.mesh.cells[0].data
    p = case.mesh.points[:, : cells.shape[1] - 1]
    e = p[cells[:, 1:]] - p[cells[:, :1]]
    vol = np.abs(np.linalg.det(e)) / math.factorial(cells.shape[1] - 1)
    return np.bincount(cells.ravel(), weights=np.repeat(vol / cells.shape[1], cells.shape[1]),
                       minlength=case.mesh.n_points)


def case_metrics(pred: np.ndarray, case: Any) -> dict[str, float]:
    """Relative L2 and MAE on the unknown nodes; also modulo constants (``*_mf``: both fields with
    their volume-weighted means removed), the natural error of a pure Neumann problem."""
    u = np.asarray(case.mesh.point_data["u"], dtype=np.float64)
    m = unknown_mask(case)
    w = node_volumes(case)
    out = {}
    for tag, a, b in (("", pred, u), ("_mf", pred - (w * pred).sum() / w.sum(), u - (w * u).sum() / w.sum())):
        d = a[m] - b[m]
        nu = float(np.linalg.norm(b[m]))
        out["rel_l2" + tag] = float(np.linalg.norm(d) / nu) if nu > 0 else float("nan")
        out["mae" + tag] = float(np.abs(d).mean())
    return out


# ----------------------------------------------------------------------------- BENO-format data
def boundary_interp(src: np.ndarray, values: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Values at boundary points ``dst`` from the two nearest boundary points ``src``.

    Shapes
    ------
    src : (m, 2); values : (m,); dst : (k, 2) -> (k,)
    """
    from scipy.spatial import cKDTree

    d, idx = cKDTree(src).query(dst, k=2)
    w = 1.0 / np.maximum(d, 1e-12)
    return (w * values[idx]).sum(1) / w.sum(1)


def beno_transfer(models: dict[str, Any], pipeline: Any, folder: Path, h: float) -> tuple[dict[str, Any], int]:
    """Evaluate Dirichlet-trained models on the BENO paper's samples (see the module docstring)."""
    from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

    from meshops.data import recipe_module
    from meshops.data.beno_format import beno_domain_polygon, elliptic_case, find_beno_files, read_beno
    from meshops.mesh import CellBlock, Mesh

    gen = recipe_module(ROOT / "datasets" / "elliptic_boundary", "generator")
    geometry, fem = gen.geometry, gen.fem
    files = find_beno_files(folder)
    rhs_all = np.load(files["RHS"])
    sol_all = np.load(files["SOL"])
    beno_meshes = read_beno(folder, boundary_values="solution")
    as_filed = read_beno(folder, boundary_values="file")
    res = int(round(math.sqrt(rhs_all.shape[1])))
    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in list(models) + ["fem_floor", "fem_file_bc"]}
    for i, bm in enumerate(beno_meshes):
        rhs = rhs_all[i]
        inside = np.flatnonzero(rhs[:, 3] == 0)
        centres = rhs[inside, :2]
        truth = sol_all[i, inside, 0]
        dom = geometry.Domain2D("beno", beno_domain_polygon(rhs))
        pts, tri = geometry.mesh_2d(dom, h)
        bp = bm.points[:, :2]

        def interp(values: np.ndarray, where: np.ndarray, bp: np.ndarray = bp, bm: Mesh = bm) -> np.ndarray:
            lin = LinearNDInterpolator(bp, values)(where)  # Delaunay of the sample's nodes
            near = NearestNDInterpolator(bp, values)(where)
            return np.where(np.isfinite(lin), lin, near)

        bf = fem.check_manifold(tri, len(pts), f"beno[{i}] remeshed")
        bct = fem.node_bc_type(len(pts), bf, np.full(len(bf), fem.DIRICHLET))
        on_b = bct > 0
        f = interp(bm.point_data["f"], pts[:, :2])
        # boundary values: linear along the boundary between the two nearest boundary points of the
        # sample (inverse-distance weights of the two = linear interpolation on a straight side)
        bmask = bm.point_data["bc_type"] > 0
        g = np.zeros(len(pts))
        g[on_b] = boundary_interp(bp[bmask], bm.point_data["g"][bmask], pts[on_b, :2])
        sol = fem.solve(pts, tri, f=f, g=g, facet_type=np.full(len(bf), fem.DIRICHLET), facets=bf)
        mesh = Mesh(points=pts, cells=[CellBlock("triangle", tri)],
                    point_data={"f": f, "k": np.ones(len(pts)), "g": g, "bc_type": bct.astype(np.int32),
                                "alpha": np.zeros(len(pts)), "u": sol.u}, source=f"beno[{i}]")
        case = elliptic_case(mesh, f"beno_{i}")

        def back(values: np.ndarray, pts: np.ndarray = pts, centres: np.ndarray = centres) -> np.ndarray:
            out = LinearNDInterpolator(pts[:, :2], values)(centres)
            return np.where(np.isfinite(out), out, NearestNDInterpolator(pts[:, :2], values)(centres))

        def score(p: np.ndarray, truth: np.ndarray = truth) -> tuple[float, float]:
            return float(np.linalg.norm(p - truth) / np.linalg.norm(truth)), float(np.abs(p - truth).mean())

        rows["fem_floor"].append(score(back(sol.u)))
        g_file = np.zeros(len(pts))
        fb = as_filed[i].point_data["bc_type"] > 0
        g_file[on_b] = boundary_interp(bp[fb], as_filed[i].point_data["g"][fb], pts[on_b, :2])
        sol_file = fem.solve(pts, tri, f=f, g=g_file, facet_type=np.full(len(bf), fem.DIRICHLET), facets=bf)
        rows["fem_file_bc"].append(score(back(sol_file.u)))
        sample = pipeline.sample(case, targets=False) if models else None
        for name, model in models.items():
            rows[name].append(score(back(predict(model, pipeline, case, sample))))
    return {k: {"rel_l2": float(np.mean([r[0] for r in v])), "mae": float(np.mean([r[1] for r in v])),
                "n": len(v)} for k, v in rows.items()}, res


# ----------------------------------------------------------------------------- the protocol
def protocol() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import protocol as P

    return P




def scores(model: Any, pipeline: Any, cases: list[Any], samples: list[Any], key: str = "rel_l2") -> float:
    m = [case_metrics(predict(model, pipeline, c, s), c)[key] for c, s in zip(cases, samples, strict=True)]
    return float(np.mean(m))


def make_fit(name: str, bc: str, data: dict[str, Any], args: argparse.Namespace) -> Any:
    """``fit(candidate, seed, budget) -> Run``: train on cutout4, early-stop on the cutout4 validation
    cases (relative L2 on the unknown nodes); the test callable scores every family (and, for
    Dirichlet, the BENO paper's samples)."""
    P = protocol()

    def fit(cand: dict[str, Any], seed: int, budget: Any) -> Any:
        import torch

        from meshops.models import create

        cfg = model_configs(data["in_channels"], int(cand["width"]), args.beno_levels, args.beno_aggregate)[name]
        cfg.update({k: cand[k] for k in BENO_SEARCH if k in cand})
        torch.manual_seed(seed)
        model = create(name, **cfg)
        tr = Epochs(model, data["train"], args.batch_size, cand["lr"], seed, budget.max_epochs)
        pipe = data["pipeline"]
        f = P.fit_early_stopping(tr, lambda: scores(model, pipe, data["val_cases"], data["val"]), budget,
                                 module=model)
        extra = "".join(f" {k} {cand[k]}" for k in BENO_SEARCH if k in cand)
        print(f"    [{bc}] {name} lr {cand['lr']:g} width {cand['width']}{extra} seed {seed}: val {f.best_val:.4f} at "
              f"epoch {f.best_epoch}/{f.epochs_used} [{tr.seconds:.0f} s]", flush=True)

        def test() -> dict[str, float]:
            out = {}
            for fam in FAMILIES:
                m = [case_metrics(predict(model, pipe, c, s), c)
                     for c, s in zip(data["test_cases"][fam], data["test"][fam], strict=True)]
                for k in m[0]:
                    out[f"{fam}_{k}"] = float(np.mean([x[k] for x in m]))
            for k in ("rel_l2", "mae", "rel_l2_mf", "mae_mf"):
                out[f"ood_{k}"] = float(np.mean([out[f"{f}_{k}"] for f in OOD]))
            if bc == "dirichlet" and args.beno_data and Path(args.beno_data).is_dir():
                bd, _ = beno_transfer({name: model}, pipe, Path(args.beno_data), 0.05)
                out["paper_rel_l2"] = bd[name]["rel_l2"]
            return out

        return P.Run(f.best_val, f.epochs_used, f.best_epoch, test,
                     {"params": int(sum(p.numel() for p in model.parameters())), "train_seconds": tr.seconds})

    return fit


def search(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The validation candidates of one model: lr x width (the earlier card's lr 1e-3 / width 64 among them);
    for BENO also its potential scale and global pooling (``--beno-scales`` x pooling on / off)."""
    P, default = protocol(), {"lr": 1e-3, "width": 64}
    if name != "beno":
        return P.candidates(args.lrs, args.widths, default=default)
    out = []
    for scale in args.beno_scales:
        for pool in (True, False):
            earlier = scale == 40.0 and pool  # the earlier card's BENO
            out += P.candidates(args.lrs, args.widths, default=default if earlier else None,
                                base={"newton_scale": float(scale), "global_pool": pool})
    return out


def refine(args: argparse.Namespace):
    """BENO's second search stage: the first stage's winner with every other single-layer scale
    (``--beno-single-scales``) x processor (``--beno-processors`` levels) pair."""
    from meshops.models.beno import SINGLE_SCALE

    def variants(win: dict[str, Any]) -> list[dict[str, Any]]:
        now = (float(win.get("single_scale", SINGLE_SCALE)), int(win.get("levels", args.beno_levels)))
        return [{**win, "single_scale": float(s), "levels": int(L), "label": "stage 2"}
                for s in args.beno_single_scales for L in args.beno_processors if (float(s), int(L)) != now]

    return variants


def run_bc(bc: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from meshops.data import load_dataset
    from meshops.data.graphs import FeatureSpec, GraphCache, Pipeline

    P = protocol()
    torch.set_num_threads(args.threads)
    ds_path = str(ROOT / "datasets" / "elliptic_boundary" / "dataset.py")
    t0 = time.time()
    train_cases = list(load_dataset(ds_path, families=["cutout4"], bcs=[bc], n=args.n_train, seed=args.seed))
    val_cases = list(load_dataset(ds_path, families=["cutout4"], bcs=[bc], n=args.n_val, seed=args.seed + 2))
    test_cases = {fam: list(load_dataset(ds_path, families=[fam], bcs=[bc], n=args.n_test, seed=args.seed + 1))
                  for fam in FAMILIES}
    print(f"[{bc}] data: {len(train_cases)} training, {len(val_cases)} validation, "
          f"{sum(map(len, test_cases.values()))} test cases ({time.time() - t0:.0f}s)", flush=True)
    features = FeatureSpec.from_case(train_cases[0], pos=True, boundary=True)
    pipeline = Pipeline(features, {"levels": 3, "ratio": 0.25}, cache=GraphCache(root=ROOT / ".cache" / "graphs"))
    pipeline.fit(train_cases)
    data = {"pipeline": pipeline, "in_channels": features.in_channels, "val_cases": val_cases,
            "train": [pipeline.sample(c) for c in train_cases], "val": [pipeline.sample(c) for c in val_cases],
            "test_cases": test_cases, "test": {fam: [pipeline.sample(c) for c in cs] for fam, cs in test_cases.items()}}
    splits = P.split_record({"train": [c.name for c in train_cases], "val": [c.name for c in val_cases]}
                            | {f"test_{fam}": [c.name for c in cs] for fam, cs in test_cases.items()},
                            note=f"elliptic_boundary {bc}: train = cutout4 seed {args.seed}, val = cutout4 seed "
                                 f"{args.seed + 2}, test = every family seed {args.seed + 1}")
    specs = {name: P.ModelSpec(search(name, args), make_fit(name, bc, data, args), label=name,
                               refine=refine(args) if name == "beno" else None) for name in args.models}
    res = P.run_protocol(specs, args.seeds, P.Budget(args.max_epochs, args.patience), splits=splits)
    res.update(bc=bc, n_train=len(train_cases), n_val=len(val_cases), n_test=args.n_test, batch_size=args.batch_size)
    if bc == "dirichlet" and args.beno_data and Path(args.beno_data).is_dir():
        res["beno_floor"], res["beno_resolution"] = beno_transfer({}, pipeline, Path(args.beno_data), 0.05)
    return res


def tables(results: list[dict[str, Any]], command: str) -> str:
    P = protocol()
    lines = [f"Command: `{command}`", ""]
    for r in results:
        mf = r["bc"] != "dirichlet"
        lines += [f"### {r['bc'].capitalize()}", "",
                  P.statement(r, f"elliptic_boundary, {r['bc']} boundaries; trained on cutout4 squares, tested on "
                              "every shape family (cutout0-4, random polygons, squares with holes); same graphs, "
                              "inputs, normalization, loss (per-graph MSE of the normalized u), AdamW (weight decay "
                              "1e-4), warm-up + cosine schedule over the maximum budget, clipping, batch "
                              f"{r.get('batch_size', 4)}, CPU, one thread",
                              "validation relative L2 of u on the unknown nodes (held-out cutout4 cases, in "
                              "distribution: no choice sees an out-of-distribution family)",
                              "lr x width over the grid in the table's JSON, the earlier card's configuration (lr "
                              "1e-3, width 64) among them; for BENO also the scale of its Newtonian potentials x "
                              "global pooling on / off, then a second stage at the first stage's winner over the "
                              "scale of its single-layer potentials x its processor (flat or a 3-level U) (the "
                              "four choices the earlier card had made on the test families)"), "",
                  P.results_table(r, [("cutout4_rel_l2", "ID (cutout4) rel. L2"), ("ood_rel_l2", "OOD mean rel. L2")]
                                  + ([("ood_rel_l2_mf", "OOD mean, modulo constants")] if mf else [])
                                  + ([("paper_rel_l2", "BENO paper samples")] if r["bc"] == "dirichlet" else []),
                                  config_keys=["lr", "width", *BENO_SEARCH]), ""]
        names = list(r["models"])
        lines += ["Per family (test relative L2, mean ± std over the seeds):", "",
                  "| family | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for fam in FAMILIES:
            lines.append(f"| {fam}{' (ID)' if fam == 'cutout4' else ''} | " + " | ".join(
                P.fmt(r["models"][n]["summary"][f"{fam}_rel_l2"]).split(" [")[0] for n in names) + " |")
        base = [n for n in names if n != "beno"]
        pairs = [("beno", min(base, key=lambda n: r["models"][n]["summary"]["ood_rel_l2"]["mean"]))] if base and \
            "beno" in names else []
        lines += ["", P.conclusion(r, "ood_rel_l2", f"{r['bc']}, OOD mean", pairs=pairs), ""]
        if "beno_floor" in r:
            fl = r["beno_floor"]
            lines += [f"BENO paper samples ({fl['fem_floor']['n']} samples, {r['beno_resolution']}x"
                      f"{r['beno_resolution']} grid): P1 FEM floor on our re-mesh {fl['fem_floor']['rel_l2']:.4f}, "
                      f"with the file's boundary values {fl['fem_file_bc']['rel_l2']:.4f} (see the card).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="meshops bench elliptic", description=__doc__.split("\n")[0])
    p.add_argument("--bcs", nargs="+", default=["dirichlet", "neumann"])
    p.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    p.add_argument("--n-train", type=int, default=60)
    p.add_argument("--n-test", type=int, default=10, help="test cases per shape family")
    p.add_argument("--n-val", type=int, default=12, help="held-out cutout4 validation cases")
    p.add_argument("--max-epochs", type=int, default=30, help="budget: the most epochs a run may train")
    p.add_argument("--patience", type=int, default=5, help="validations without improvement before stopping")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3], help="learning rates of the search")
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64], help="widths (hidden) of the search")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds of the final runs")
    p.add_argument("--seed", type=int, default=0, help="data seed (train; val = seed + 2, test = seed + 1)")
    p.add_argument("--tiny", action="store_true", help="smoke size: 2 models, 6/3/2 cases, 2 epochs, 2 seeds")
    p.add_argument("--beno-levels", type=int, default=1,
                   help="hierarchy levels of each BENO branch (1: flat, 4 blocks, as in the paper; 3: U-shaped)")
    p.add_argument("--beno-aggregate", default="mean", choices=["mean", "sum"])
    p.add_argument("--beno-scales", type=float, nargs="+", default=[10.0, 40.0],
                   help="scales of BENO's Newtonian potentials in its validation search")
    p.add_argument("--beno-single-scales", type=float, nargs="+", default=[1.0, 4.0, 16.0],
                   help="scales of BENO's single-layer potentials in its second search stage")
    p.add_argument("--beno-processors", type=int, nargs="+", default=[1, 3],
                   help="BENO processor levels in its second search stage (1: flat, 3: U-shaped)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--beno-data", default=str(ROOT.parent / "shared" / "data" / "beno"))
    p.add_argument("--out", default=str(ROOT / "out" / "bench_elliptic.json"))
    p.add_argument("--readme", default=None, help="Markdown file whose bench:elliptic block gets the tables")
    a = p.parse_args(argv)
    if a.tiny:
        a.models = [m for m in a.models if m in ("beno", "ugraph")] or a.models[:1]
        a.n_train, a.n_val, a.n_test, a.max_epochs, a.patience = 6, 3, 2, 2, 1
        a.lrs, a.widths, a.seeds, a.bcs, a.beno_data, a.beno_scales = [1e-3], [16], [0, 1], a.bcs[:1], "", [40.0]
        a.beno_single_scales, a.beno_processors = [1.0, 4.0], [1]  # one stage-2 variant (4 is BENO's default)
    import logging

    logging.getLogger("skfem").setLevel(logging.WARNING)
    command = "meshops bench elliptic" + ("" if not argv else " " + " ".join(argv))
    from meshops.atomic import replace_block, write_text_atomic

    results = []
    for bc in a.bcs:  # written after each boundary kind, each into its own card block
        results.append(run_bc(bc, a))
        text = tables(results[-1:], command)
        print(text, flush=True)
        write_text_atomic(json.dumps({"command": command, "results": results}, indent=1), a.out)
        if a.readme:
            try:
                replace_block(a.readme, f"<!-- bench:elliptic-{bc}:begin -->", f"<!-- bench:elliptic-{bc}:end -->",
                              f"\n{text}\n", required=True)
            except ValueError as err:
                raise SystemExit(str(err)) from None
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
