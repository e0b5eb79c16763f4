"""BENO against the other meshops operators on elliptic problems with boundary data.

``meshops bench elliptic`` (or ``python benchmarks/elliptic.py``) does, for each boundary kind
(default: Dirichlet and Neumann):

1. generates (or reuses) the ``elliptic_boundary`` data: training cases on squares with 4 corner
   cut-outs; test cases on 0..4 cut-outs (4 = in distribution, new seeds) and on the other shape
   families (random polygons, squares with holes);
2. builds the graphs with the data pipeline (``meshops.data.graphs.Pipeline``: the same inputs
   ``f, k, g, bc_onehot``, normalized positions and boundary flag, 3 hierarchy levels, the same
   normalization from the training split) for every model;
3. trains ``beno``, ``mgn``, ``ugraph`` and ``gino`` with the same budget (epochs, batch size,
   optimizer, schedule, seed);
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
block between ``<!-- bench:elliptic:begin -->`` and ``<!-- bench:elliptic:end -->`` in that file.
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
def train_model(name: str, cfg: dict[str, Any], samples: list[Any], epochs: int, batch_size: int, lr: float,
                seed: int, log_every: int = 0) -> tuple[Any, dict[str, Any]]:
    import torch

    from meshops.models import create
    from meshops.train.trainer import collate, cosine_warmup, per_graph_mse

    torch.manual_seed(seed)
    model = create(name, **cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    n = len(samples)
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_warmup(s, total, steps_per_epoch * 2, 0.02))
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    losses = []
    model.train()
    for ep in range(epochs):
        order = torch.randperm(n, generator=g).tolist()
        tot = 0.0
        for i in range(0, n, batch_size):
            b = collate([samples[j] for j in order[i : i + batch_size]])
            pred = model(b)
            loss = per_graph_mse(pred, b.y, b.batch, b.num_graphs).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += float(loss.detach()) * b.num_graphs
        losses.append(tot / n)
        if log_every and (ep % log_every == 0 or ep == epochs - 1):
            print(f"    {name} epoch {ep + 1}/{epochs} loss {losses[-1]:.4g} ({time.time() - t0:.0f}s)", flush=True)
    model.eval()
    info = {"train_seconds": time.time() - t0, "final_loss": losses[-1],
            "params": int(sum(p.numel() for p in model.parameters()))}
    return model, info


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


# ----------------------------------------------------------------------------- main
def run_bc(bc: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from meshops.data import load_dataset
    from meshops.data.graphs import FeatureSpec, GraphCache, Pipeline

    torch.set_num_threads(args.threads)
    ds_path = str(ROOT / "datasets" / "elliptic_boundary" / "dataset.py")
    t0 = time.time()
    train_ds = load_dataset(ds_path, families=["cutout4"], bcs=[bc], n=args.n_train, seed=args.seed)
    test_ds = {fam: load_dataset(ds_path, families=[fam], bcs=[bc], n=args.n_test, seed=args.seed + 1)
               for fam in FAMILIES}
    train_cases = list(train_ds)
    test_cases = {fam: list(ds) for fam, ds in test_ds.items()}
    print(f"[{bc}] data: {len(train_cases)} training cases, {sum(map(len, test_cases.values()))} test cases "
          f"({time.time() - t0:.0f}s)", flush=True)
    features = FeatureSpec.from_case(train_cases[0], pos=True, boundary=True)
    cache = GraphCache(root=ROOT / ".cache" / "graphs")
    pipeline = Pipeline(features, {"levels": 3, "ratio": 0.25}, cache=cache)
    pipeline.fit(train_cases)
    train_samples = [pipeline.sample(c) for c in train_cases]
    test_samples = {fam: [pipeline.sample(c) for c in cs] for fam, cs in test_cases.items()}
    print(f"[{bc}] graphs ready ({time.time() - t0:.0f}s); in_channels={features.in_channels}", flush=True)
    cfgs = model_configs(features.in_channels, args.hidden, args.beno_levels, args.beno_aggregate)
    result: dict[str, Any] = {"bc": bc, "models": {}, "n_train": len(train_cases), "n_test": args.n_test}
    trained = {}
    for name in args.models:
        print(f"[{bc}] training {name} ...", flush=True)
        model, info = train_model(name, cfgs[name], train_samples, args.epochs, args.batch_size, args.lr,
                                  args.seed, args.log_every)
        per_fam = {}
        for fam in FAMILIES:
            m = [case_metrics(predict(model, pipeline, c, s), c) for c, s in zip(test_cases[fam], test_samples[fam],
                                                                                   strict=True)]
            per_fam[fam] = {k: float(np.mean([x[k] for x in m])) for k in m[0]}
        info["families"] = per_fam
        for k in per_fam["cutout4"]:
            info[f"ood_{k}"] = float(np.mean([per_fam[f][k] for f in OOD]))
        info["config"] = cfgs[name]
        result["models"][name] = info
        trained[name] = model
        print(f"[{bc}] {name}: {info['params']} params, {info['train_seconds']:.0f}s, "
              f"ID rel L2 {per_fam['cutout4']['rel_l2']:.4f}, OOD rel L2 {info['ood_rel_l2']:.4f} "
              f"(modulo constants {info['ood_rel_l2_mf']:.4f})", flush=True)
    if bc == "dirichlet" and args.beno_data and Path(args.beno_data).is_dir():
        result["beno_data"], result["beno_resolution"] = beno_transfer(trained, pipeline, Path(args.beno_data),
                                                                       0.05)
    return result


def tables(results: list[dict[str, Any]], command: str) -> str:
    lines = [f"Command: `{command}`", ""]
    for r in results:
        names = list(r["models"])
        suffixes = [""] if r["bc"] == "dirichlet" else ["", "_mf"]
        for sfx in suffixes:
            what = "relative L2 / MAE of u on the nodes where u is unknown"
            if sfx:
                what += ", modulo constants (both fields with their volume-weighted means removed)"
            lines += [f"**{r['bc'].capitalize()}{' (modulo constants)' if sfx else ''}** (trained on {r['n_train']} "
                      f"cutout4 cases, {r['n_test']} test cases per family; {what})", ""]
            lines.append("| family | " + " | ".join(names) + " |")
            lines.append("|---|" + "---|" * len(names))
            for fam in FAMILIES:
                tag = " (ID)" if fam == "cutout4" else ""
                cells = [f"{r['models'][n]['families'][fam]['rel_l2' + sfx]:.4f} / "
                         f"{r['models'][n]['families'][fam]['mae' + sfx]:.4f}" for n in names]
                lines.append(f"| {fam}{tag} | " + " | ".join(cells) + " |")
            lines.append("| **OOD mean** | " + " | ".join(
                f"**{r['models'][n]['ood_rel_l2' + sfx]:.4f}** / {r['models'][n]['ood_mae' + sfx]:.4f}"
                for n in names) + " |")
            if not sfx:
                lines.append("| params | " + " | ".join(str(r["models"][n]["params"]) for n in names) + " |")
                lines.append("| train s | " + " | ".join(f"{r['models'][n]['train_seconds']:.0f}" for n in names)
                             + " |")
            base = [n for n in names if n != "beno"]
            if "beno" in names and base:
                best = min(base, key=lambda n: r["models"][n]["ood_rel_l2" + sfx])
                gain = 1 - r["models"]["beno"]["ood_rel_l2" + sfx] / r["models"][best]["ood_rel_l2" + sfx]
                lines += ["", f"BENO vs the best baseline ({best}) on the OOD mean relative L2"
                          f"{' modulo constants' if sfx else ''}: {100 * gain:+.1f}% "
                          "(positive = BENO better; target >= +40%)"]
            lines.append("")
        if "beno_data" in r:
            bd = r["beno_data"]
            lines += [f"BENO paper samples ({bd['fem_floor']['n']} samples, {r['beno_resolution']}x"
                      f"{r['beno_resolution']} grid), models trained on our Dirichlet data; relative L2 / MAE at "
                      "the paper's in-domain cell centres. Boundary values repaired to those the paper's solution "
                      "satisfies (`read_beno(boundary_values='solution')`); `fem_floor` = P1 FEM on our mesh of "
                      "the same interpolated problem, `fem_file_bc` = the same with the file's boundary values:",
                      "",
                      "| " + " | ".join(bd) + " |", "|" + "---|" * len(bd),
                      "| " + " | ".join(f"{v['rel_l2']:.4f} / {v['mae']:.4f}" for v in bd.values()) + " |", ""]
    lines += average_line(results)
    return "\n".join(lines)


def average_line(results: list[dict[str, Any]]) -> list[str]:
    """BENO against the best baseline on the OOD mean relative L2 averaged over the boundary kinds."""
    names = [n for n in results[0]["models"] if all(n in r["models"] for r in results)] if results else []
    base = [n for n in names if n != "beno"]
    if len(results) < 2 or "beno" not in names or not base:
        return []
    avg = {n: float(np.mean([r["models"][n]["ood_rel_l2"] for r in results])) for n in names}
    best = min(base, key=avg.__getitem__)
    margins = [1 - r["models"]["beno"]["ood_rel_l2"] / min(r["models"][n]["ood_rel_l2"] for n in base)
               for r in results]
    kinds = " and ".join(r["bc"] for r in results)
    return [f"**Average over {kinds}** (OOD mean relative L2): "
            + ", ".join(f"{n} {avg[n]:.4f}" for n in names)
            + f"; BENO vs the best baseline ({best}): {100 * (1 - avg['beno'] / avg[best]):+.1f}%; "
            f"mean of the per-kind margins: {100 * float(np.mean(margins)):+.1f}% (target >= +40%)", ""]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="meshops bench elliptic", description=__doc__.split("\n")[0])
    p.add_argument("--bcs", nargs="+", default=["dirichlet", "neumann"])
    p.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    p.add_argument("--n-train", type=int, default=60)
    p.add_argument("--n-test", type=int, default=10, help="test cases per shape family")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beno-levels", type=int, default=1,
                   help="hierarchy levels of each BENO branch (1: flat, 4 blocks, as in the paper; 3: U-shaped)")
    p.add_argument("--beno-aggregate", default="mean", choices=["mean", "sum"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--beno-data", default=str(ROOT.parent / "shared" / "data" / "beno"))
    p.add_argument("--out", default=str(ROOT / "out" / "bench_elliptic.json"))
    p.add_argument("--readme", default=None, help="Markdown file whose bench:elliptic block gets the tables")
    a = p.parse_args(argv)
    import logging

    logging.getLogger("skfem").setLevel(logging.WARNING)
    command = "meshops bench elliptic" + ("" if not argv else " " + " ".join(argv))
    results = [run_bc(bc, a) for bc in a.bcs]
    text = tables(results, command)
    print(text)
    from meshops.atomic import replace_block, write_text_atomic

    write_text_atomic(json.dumps({"command": command, "results": results}, indent=1), a.out)
    if a.readme:
        try:
            replace_block(a.readme, "<!-- bench:elliptic:begin -->", "<!-- bench:elliptic:end -->", f"\n{text}\n",
                          required=True)
        except ValueError as err:
            raise SystemExit(str(err)) from None
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
