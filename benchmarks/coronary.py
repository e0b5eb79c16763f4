"""Coronary benchmark: the centerline RBF model against operators on the wall mesh, under the protocol.

``meshops bench coronary [--dataset coronary_synthetic|coronary_trees] ...`` (or ``python benchmarks/coronary.py``)
trains and evaluates, on single vessels (``coronary_synthetic``) or trees (``coronary_trees``; the shipped npz, or
``--data`` a generated folder / another pack):

* ``centerline_rbf`` at K = 128 and K = 1024 centers (input: the centerline tree and Q only);
* ``transolver``, ``gnot``, ``mgn`` and ``ugraph`` on the wall mesh; these baselines get, per wall node, its
  position and the centerline features of its nearest centerline point (radius, curvature, arc length, Murray
  flow, tree features, ...) plus Q-derived features, and Q as a global parameter: everything the RBF model sees,
  on the wall.

The protocol is :mod:`benchmarks.protocol`'s: fixed splits (the dataset's hash split, or ``--tree-split`` a
seeded permutation of the trees), a validation search (``--lrs`` x ``--widths``, seed 0) per model, the kept
candidate trained with every ``--seeds``, each run stopped early on the validation mean rel. L2 of p and |WSS|
(``--patience``) under the same maximum budget (``--epochs``), the best validation weights evaluated on test.
Same target normalization (training split statistics), optimizer (AdamW, warm-up + cosine over the budget)
and batch size for every model. The RBF decoder is continuous, so its training steps use a random subset of
``--rbf-points`` wall points per case (evaluation always uses every wall point); the mesh operators see the
whole wall. Reported: mean ± std [min, max] over seeds of the test rel. L2 of ``p`` and ``wss_mag``
(``|pred - true| / |true|`` per case, mean over cases), parameters, FLOPs per case
(``torch.utils.flop_counter.FlopCounterMode``: matmuls, convolutions and attention; element-wise ops such as
the Gaussians' ``exp`` are not counted, for any model) and the median inference time per case.

Models can run in separate processes (``--models``, ``--out``) and be merged with ``--merge A.json B.json``
(no training; same splits and budget, checked). ``--readme FILE`` replaces the dataset's block in FILE
(:data:`BLOCKS`). ``--coherence`` and ``--compare-cfd`` are the tree model's physical checks.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["p", "wss_mag"]
# the card block each dataset's table goes to: (begin marker, end marker, heading when the block is new)
BLOCKS = {"coronary_synthetic": ("<!-- coronary-benchmark:begin -->", "<!-- coronary-benchmark:end -->",
                                 "## Benchmark results (single vessels)"),
          "coronary_trees": ("<!-- coronary-trees-benchmark:begin -->", "<!-- coronary-trees-benchmark:end -->",
                             "## Benchmark on trees (the paper's protocol)")}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="meshops bench coronary", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None,
                   help="a generated folder of case_*/ or a packed .npz (default: the shipped npz of the dataset)")
    p.add_argument("--models", default="rbf128,rbf1024,transolver,gnot,mgn,ugraph", help="comma-separated subset")
    p.add_argument("--epochs", type=int, default=12, help="the maximum budget: epochs per training run")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--rbf-points", type=int, default=2048,
                   help="wall points per case sampled at each training step of centerline_rbf (0: all)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-cases", type=int, default=0,
                   help="about N cases in all, 80/10/10 of the hash split; with --tree-split, a fixed seeded subset "
                        "of N trees (0: all)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="tiny models (a smoke run)")
    p.add_argument("--out", default=None, help="write the raw numbers as JSON here")
    p.add_argument("--readme", default=None, help="update the results section of this Markdown file")
    p.add_argument("--dataset", default="coronary_synthetic", choices=sorted(BLOCKS),
                   help="coronary_synthetic (single vessels) or coronary_trees")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--lrs", default=None,
                   help="learning rates of the validation search (comma-separated; default: --lr)")
    p.add_argument("--widths", default=None,
                   help="widths of the validation search (hidden / d_model; default: the sizes of "
                        "protocol_configs)")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="no training: merge the --out files of earlier runs (other models or seeds, "
                        "same split and budget) and report")
    p.add_argument("--patience", type=int, default=3, help="early stopping: validations without improvement")
    p.add_argument("--tree-split", default=None, metavar="VAL,TEST",
                   help="fractions of the trees for validation and test (a fixed seeded permutation, "
                        "benchmarks/protocol.fixed_split) instead of the dataset's 80/10/10 hash split")
    p.add_argument("--add-vessels", type=int, default=0,
                   help="also train (and validate) on this many single vessels of coronary_synthetic's "
                        "train (val) split; the test split stays the trees'")
    p.add_argument("--compare-cfd", metavar="WALL", default=None,
                   help="a wall written by `meshops predict` on a `meshops cfd` wall (fields p, wss_mag and "
                        "p_pred, wss_mag_pred on the same points): print the rel. L2 of p and |WSS| and, with "
                        "--readme, write it to the card")
    p.add_argument("--coherence", metavar="CHECKPOINT", default=None,
                   help="physical coherence of CHECKPOINT on the held-out trees of its split (swept tube walls): "
                        "monotone ring-pair share, junction jumps, min |WSS|; with --readme, into the card")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------- data
def load_splits(data: str | None, max_cases: int = 0, dataset: str = "coronary_synthetic") -> dict[str, list[Any]]:
    """The dataset's own train/val/test split (a fixed hash of the case name), as graphs."""
    from meshops.data import load_dataset

    out: dict[str, list[Any]] = {}
    for split in ("train", "val", "test"):
        opts: dict[str, Any] = {"split": split, "targets": ["p", "wss_mag"]}
        if data:
            opts["root" if Path(data).is_dir() else "path"] = data
        ds = load_dataset(dataset, **opts)
        n = len(ds) if not max_cases else min(len(ds), max(1, int(max_cases * {"train": 0.8}.get(split, 0.1))))
        out[split] = []
        for i in range(n):
            case = ds[i]
            try:
                out[split].append(case_graph(with_centerline(ds, i, case)))
            except Exception as e:  # a broken case is reported and skipped, the rest runs
                print(f"skipping {case.name}: {e}", file=sys.stderr)
    return out


def with_centerline(ds: Any, i: int, case: Any) -> Any:
    """``case`` with the centerline tree in its field data (from ``ds.centerline(i)`` when the mesh has none)."""
    fd = dict(case.mesh.field_data or {})
    if "centerline_points" in fd or not hasattr(ds, "centerline"):
        return case
    cl = ds.centerline(i)
    fd["centerline_points"], fd["centerline_radius"] = cl["points"], cl["radius"]
    if "branches" in cl:
        fd["centerline_branches"] = [np.asarray(b, dtype=np.int64) for b in cl["branches"]]
    case.mesh.field_data = fd
    return case


def case_graph(case: Any, n_cl: int = 128) -> Any:
    """Wall graph (3 hierarchy levels) with targets ``y``, Q in ``u`` and the centerline tensors of
    :func:`meshops.models.coronary.attach_centerline`; ``cl_nearest`` maps wall nodes to the
    nearest centerline point (for the baselines' features)."""
    import torch
    from scipy.spatial import cKDTree

    from meshops.graph import build
    from meshops.models.coronary import attach_case_centerline

    g = build(case.mesh, {"levels": 3})
    g.y = torch.from_numpy(case.stack(TARGETS))
    from meshops.models.coronary import CenterlineRBF

    n = CenterlineRBF(d_model=8, n_heads=1, n_layers=1, num_centers=1, cl_spacing=0.5, cl_max_points=384)._n_points(case)
    g = attach_case_centerline(g, case, n_points=max(n_cl, n))
    g.name = case.name
    g.cl_nearest = torch.from_numpy(cKDTree(g.cl_pos.numpy()).query(g.pos.numpy())[1])
    return g


def baseline_features(g: Any, length_scale: float = 10.0, q_scale: float = 1.0) -> Any:
    """Per-node inputs ``x`` and globals ``u`` for the graph baselines: the wall position and the
    centerline model's own per-point features (:func:`meshops.models.coronary.point_features` with
    the branch's Murray flow, and the tree features of :mod:`meshops.models.coronary_tree`) at the
    nearest centerline point."""
    import torch

    from meshops.models.coronary import point_features
    from meshops.models.coronary_tree import TREE_FEATURES

    qn = float(g.cl_q.reshape(-1)[0]) / q_scale
    f = point_features(g.cl_feat, g.cl_radius, qn * g.cl_qfrac.clamp_min(1e-6), length_scale)
    powers = torch.tensor([float(v) for v in TREE_FEATURES.values()])
    f = torch.cat([f, g.cl_tree * length_scale ** (-powers)], 1)[g.cl_nearest]
    x = torch.cat([g.pos / length_scale, f], 1)
    return x.float(), torch.tensor([[qn, math.log(qn)]], dtype=torch.float32)


# --------------------------------------------------------------------------------------- evaluation
def rel_l2(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-channel ``|pred - true| / |true|`` over the points of one case."""
    return np.linalg.norm(pred - true, axis=0) / np.maximum(np.linalg.norm(true, axis=0), 1e-12)


def evaluate(model: Any, graphs: list[Any], stats: Any, device: str) -> tuple[np.ndarray, list[float]]:
    import torch

    model.eval()
    errs, times = [], []
    with torch.no_grad():
        for g in graphs:
            d = g.to(device)
            t0 = time.perf_counter()
            out = model(d)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            pred = stats.decode(out.double().cpu().numpy())
            errs.append(rel_l2(pred, g.y.double().cpu().numpy()))
    return np.array(errs), times


def count_flops(model: Any, g: Any, device: str) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(g.to(device))
    return int(fc.get_total_flops())


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.compare_cfd:
        return compare_cfd(args, argv)
    if args.coherence:
        return coherence(args, argv)
    return main_protocol(args, argv)


# ------------------------------------------------------------------------- physical coherence on trees
COH_BEGIN, COH_END = "<!-- coronary-coherence:begin -->", "<!-- coronary-coherence:end -->"


def coherence(args: argparse.Namespace, argv: list[str] | None) -> int:
    """The Done-when checks of the tree model on every held-out tree of the checkpoint's split."""
    import torch
    from torch_geometric.data import Data

    from meshops.data import load_dataset
    from meshops.geometry.centerline import Centerline
    from meshops.geometry.tube import tube_wall
    from meshops.models.coronary import attach_centerline
    from meshops.models.coronary_tree import ring_coherence
    from meshops.train.inference import load_trained

    ckpt = Path(args.coherence)
    trained = load_trained(ckpt)
    model = trained.model
    splits = json.loads((ckpt.parent / "splits.json").read_text())
    seen = set(splits.get("train", [])) | set(splits.get("val", []))
    ds = load_dataset("coronary_mixed", trees_path=args.data)  # --data: a packed tree npz (e.g. a fresher pack)
    index = {n: i for i, n in enumerate(ds.case_names())}
    test = [n for n in (index if args.data else splits["test"]) if n.startswith("tree_") and n not in seen]
    rows = []
    for name in test:
        case = ds[index[name]]
        fd = case.mesh.field_data
        paths = [np.asarray(b, dtype=np.int64) for b in fd["centerline_branches"]]
        parent = [(-1, -1)] + [(0, int(b[0])) for b in paths[1:]]  # tube_wall only needs the junction point
        cl = Centerline(np.asarray(fd["centerline_points"]), paths, np.asarray(fd["centerline_radius"]), parent)
        wall = tube_wall(cl, n_around=16)
        d = attach_centerline(Data(pos=torch.tensor(wall.points, dtype=torch.float32)), wall.field_data["centerline_points"],
                              wall.field_data["centerline_radius"], float(case.globals["Q"]),
                              branches=wall.field_data["centerline_branches"], n_points=model._n_points(case))
        d.wall_branch = torch.as_tensor(wall.point_data["branch"]).long()  # as prepare_sample does for tube walls
        with torch.no_grad():
            out = (model(d) * model.target_std + model.target_mean).numpy()
        rows.append({"case": name, "branches": len(paths), **ring_coherence(wall, out[:, 0], out[:, 1], 16)})
    if not rows:
        raise SystemExit(f"{ckpt.parent / 'splits.json'}: no held-out tree (names tree_*, not in train/val)")
    ok = [r["monotone_fraction"] >= 0.95 and r["junction_jump_rel"] < 0.02 and r["wss_min"] >= 0 for r in rows]
    where = f"the trees of {args.data} not in its train/val split" if args.data else f"the test split of `{ckpt}`"
    lines = [f"Held-out trees: {len(rows)} ({where}), swept tube walls of their centerlines "
             "(16 points a ring, one ring per centerline station), the inflow Q of each case.", "",
             "| check (per case) | required | worst case | cases passing |", "|---|---|---:|---:|",
             f"| ring pairs with non-increasing ring-mean p along root-to-outlet paths | >= 95% | "
             f"{100 * min(r['monotone_fraction'] for r in rows):.1f}% | "
             f"{sum(r['monotone_fraction'] >= 0.95 for r in rows)}/{len(rows)} |",
             f"| largest junction jump of ring-mean p / case pressure drop | < 2% | "
             f"{100 * max(r['junction_jump_rel'] for r in rows):.2f}% | "
             f"{sum(r['junction_jump_rel'] < 0.02 for r in rows)}/{len(rows)} |",
             f"| min WSS magnitude (Pa) | >= 0 | {min(r['wss_min'] for r in rows):.4g} | {sum(r['wss_min'] >= 0 for r in rows)}/{len(rows)} |",
             "", f"All three on {sum(ok)}/{len(rows)} cases. Command: "
             f"`{command_line(argv)}`"]
    text = "\n".join(lines)
    print(text)
    if args.readme:
        from meshops.atomic import replace_block

        replace_block(args.readme, COH_BEGIN, COH_END, f"\n{text}\n",
                      prefix="## Physical coherence on held-out trees\n\n")
    return 0 if all(ok) else 1


# ------------------------------------------------------------------------- model against meshops cfd
CFD_BEGIN, CFD_END = "<!-- coronary-cfd-compare:begin -->", "<!-- coronary-cfd-compare:end -->"


def compare_cfd(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Rel. L2 of ``p_pred`` / ``wss_mag_pred`` against the CFD's ``p`` / ``wss_mag`` on one wall."""
    import meshops
    from meshops.atomic import replace_block

    m = meshops.read(args.compare_cfd)
    rows = []
    for t in TARGETS:
        for k in (t, f"{t}_pred"):
            if k not in m.point_data:
                raise SystemExit(f"{args.compare_cfd}: no point field '{k}' (fields: {sorted(m.point_data)})")
        truth = np.asarray(m.point_data[t], dtype=np.float64).reshape(-1)
        pred = np.asarray(m.point_data[f"{t}_pred"], dtype=np.float64).reshape(-1)
        ok = np.isfinite(truth) & np.isfinite(pred)
        if not ok.any():
            raise SystemExit(f"{args.compare_cfd}: '{t}' has no finite value pairs")
        rel = float(np.linalg.norm(pred[ok] - truth[ok]) / max(np.linalg.norm(truth[ok]), 1e-30))
        shifted = float(np.linalg.norm((pred[ok] - pred[ok].mean()) - (truth[ok] - truth[ok].mean()))
                        / max(np.linalg.norm(truth[ok] - truth[ok].mean()), 1e-30))
        rows.append((t, rel, shifted, truth[ok].min(), truth[ok].max(), pred[ok].min(), pred[ok].max(), int(ok.sum())))
    lines = ["| field | rel. L2 | rel. L2 of the mean-free fields | CFD min..max | model min..max | points |",
             "|---|---:|---:|---|---|---:|"]
    lines += [f"| {t} | {a:.3f} | {b:.3f} | {c:.4g}..{d:.4g} | {e:.4g}..{f:.4g} | {n} |" for t, a, b, c, d, e, f, n in rows]
    text = "\n".join(lines + ["", f"Command: `{command_line(argv)}`"])
    print(text)
    if args.readme:
        replace_block(args.readme, CFD_BEGIN, CFD_END, f"\n{text}\n",
                      prefix="## `meshops predict` against `meshops cfd` on the SimVascular demo aorta\n\n")
    return 0


# ------------------------------------------------------------------------- the protocol run


def protocol_configs(n_x: int, quick: bool) -> dict[str, tuple[str, dict[str, Any]]]:
    """Small models for the CPU budget: the tree-mode RBF model at K = 128 / 1024 and four baselines."""
    h = 16 if quick else 48
    rbf = dict(out_channels=2, d_model=h, n_heads=4, n_layers=2, physics="tree", q_scale=1.0, length_scale=10.0)
    base = dict(in_channels=n_x, out_channels=2, global_channels=2)
    return {
        "rbf128": ("centerline_rbf", {**rbf, "num_centers": 128}),
        "rbf1024": ("centerline_rbf", {**rbf, "num_centers": 1024}),
        "transolver": ("transolver", {**base, "hidden": h, "n_layers": 2 if quick else 3, "heads": 4, "slices": 32}),
        "gnot": ("gnot", {**base, "hidden": h, "n_layers": 2 if quick else 3, "heads": 4, "experts": 3}),
        "mgn": ("mgn", {**base, "hidden": h, "n_blocks": 2 if quick else 4}),
        "ugraph": ("ugraph", {**base, "hidden": h, "levels": 3, "blocks_per_level": 1 if quick else 2}),
    }


def _train_epoch(model: Any, name: str, loader: Any, opt: Any, sched: Any, args: argparse.Namespace) -> None:
    import torch

    model.train()
    for b in loader:
        b = b.to(args.device)
        target = b.y_n
        if name == "centerline_rbf" and args.rbf_points > 0:  # a continuous decoder: a random subset of points
            keep = torch.rand(b.num_nodes, device=b.pos.device) < min(1.0, args.rbf_points * b.num_graphs / b.num_nodes)
            b.query_pos, b.query_batch, target = b.pos[keep], b.batch[keep], b.y_n[keep]
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((model(b) - target) ** 2)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()


def protocol_fit(key: str, name: str, cfg: dict[str, Any], data: dict[str, list[Any]], stats: Any,
                 args: argparse.Namespace) -> Any:
    """``fit(candidate, seed, budget) -> protocol.Run`` for one model (AdamW, warm-up + cosine over the max budget)."""
    import types

    import torch
    from torch_geometric.loader import DataLoader

    from meshops.models import create

    P = _protocol()

    def fit(cand: dict[str, Any], seed: int, budget: Any) -> Any:
        torch.manual_seed(seed)
        width_key = "d_model" if name == "centerline_rbf" else "hidden"
        model = create(name, **{**cfg, width_key: cand.get("width", cfg[width_key])}).to(args.device)
        if hasattr(model, "fit_training_data"):
            model.fit_training_data(data["train"], types.SimpleNamespace(targets=stats))
        loader = DataLoader(data["train"], batch_size=args.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
        opt = torch.optim.AdamW(model.parameters(), lr=cand["lr"], weight_decay=1e-4)
        total = budget.max_epochs * len(loader)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / max(1, 0.05 * total)) * 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0))))
        t = {"train": 0.0}

        def train_units(n: int) -> None:
            t0 = time.perf_counter()
            for _ in range(n):
                _train_epoch(model, name, loader, opt, sched, args)
            t["train"] += time.perf_counter() - t0

        def validate() -> float:
            errs, _ = evaluate(model, data["val"], stats, args.device)
            return float(errs.mean())

        fitted = P.fit_early_stopping(train_units, validate, budget, module=model)
        print(f"  [{key} seed {seed}] val {fitted.best_val:.4f} after {fitted.epochs_used} epochs "
              f"(best {fitted.best_epoch}, {t['train']:.0f} s)", flush=True)

        def test() -> dict[str, float]:
            errs, times = evaluate(model, data["test"], stats, args.device)
            return {"rel_l2_p": float(errs[:, 0].mean()), "rel_l2_wss_mag": float(errs[:, 1].mean()),
                    "rel_l2_mean": float(errs.mean()), "infer_ms": 1000 * statistics.median(times)}

        info = {"params": int(sum(p.numel() for p in model.parameters())), "train_s": t["train"],
                "flops_per_case": count_flops(model, data["test"][0], args.device)}
        return P.Run(fitted.best_val, fitted.epochs_used, fitted.best_epoch, test, info)

    return fit


def _protocol() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import protocol

    return protocol


def protocol_table(res: dict[str, Any], meta: dict[str, Any]) -> str:
    P = _protocol()
    rows = [("rel_l2_p", "test rel. L2 p"), ("rel_l2_wss_mag", "test rel. L2 WSS mag."), ("rel_l2_mean", "mean of both")]
    text = [P.statement(res, task=f"{meta['dataset']} ({meta['n_train']} train / {meta['n_val']} val / "
                                  f"{meta['n_test']} test cases; {meta['split']})",
                        val_metric="validation mean rel. L2 of p and |WSS|",
                        search=meta.get("search", f"one candidate per model: lr {meta['lr']} and the sizes below (no grid: CPU budget)")),
            "", P.results_table(res, rows, config_keys=["lr", "width"]), "",
            "| model | GFLOPs / case | inference ms / case (median) | train s (mean over seeds) |", "|---|---:|---:|---:|"]
    for k, m in res["models"].items():
        r0 = m["runs"][0]
        text.append(f"| {k} | {r0['flops_per_case'] / 1e9:.3f} | {m['summary']['infer_ms']['mean']:.1f} | "
                    f"{np.mean([r['train_s'] for r in m['runs']]):.0f} |")
    peers = [k for k, m in res["models"].items() if not k.startswith("rbf")]
    best = min(peers, key=lambda k: res["models"][k]["summary"]["rel_l2_mean"]["mean"]) if peers else None
    pairs = [(k, best) for k in res["models"] if k.startswith("rbf") and best]
    text += ["", P.conclusion(res, "rel_l2_mean", "mean rel. L2 of p and |WSS|", pairs=pairs),
             "", P.conclusion(res, "rel_l2_p", "p", pairs=pairs), "", P.conclusion(res, "rel_l2_wss_mag", "|WSS|", pairs=pairs), "",
             f"Models: {meta['configs']} (hidden / d_model replaced by the selected width where the table names one). FLOPs: `torch.utils.flop_counter` on one test case (matmul/attention only). "
             f"Device {meta['device']}, {meta['threads']} thread(s).", "", f"Command: `{meta['command']}`"]
    return "\n".join(text)


def protocol_splits(args: argparse.Namespace) -> dict[str, list[Any]]:
    """The protocol's graphs: the dataset's split (or ``--tree-split``), plus ``--add-vessels`` single vessels."""
    if args.tree_split:
        fv, ft = (float(x) for x in args.tree_split.split(","))
        every = load_splits(args.data, 0, args.dataset)
        cases = sorted((g for v in every.values() for g in v), key=lambda g: g.name)
        if args.max_cases and args.max_cases < len(cases):  # a fixed seeded subset of the trees
            keep = np.random.default_rng(0).permutation(len(cases))[: args.max_cases]
            cases = [cases[i] for i in sorted(keep)]
        n = len(cases)
        ids = _protocol().fixed_split(n, max(1, round(fv * n)), max(1, round(ft * n)), seed=0)
        data = {k: [cases[i] for i in v] for k, v in ids.items()}
    else:
        data = load_splits(args.data, args.max_cases, args.dataset)
    if args.add_vessels:
        sv = load_splits(None, int(args.add_vessels / 0.8), "coronary_synthetic")
        data["train"] = sv["train"][: args.add_vessels] + data["train"]
        data["val"] = sv["val"][: max(1, args.add_vessels // 8)] + data["val"]
    return data


def protocol_candidates(args: argparse.Namespace, key: str) -> list[dict[str, Any]]:
    """The validation search of one model: every ``--lrs`` x ``--widths`` pair (one candidate when neither is given)."""
    lrs = [float(x) for x in (args.lrs or str(args.lr)).split(",")]
    if not args.widths:
        return [{"lr": lr, "label": key} for lr in lrs]
    return _protocol().candidates(lrs, [int(w) for w in args.widths.split(",")])


def search_text(args: argparse.Namespace) -> str:
    lrs, widths = args.lrs or str(args.lr), args.widths
    n = len(lrs.split(",")) * (len(widths.split(",")) if widths else 1)
    grid = f"lr in {{{lrs}}}" + (f" x width in {{{widths}}}" if widths else ", the sizes below")
    return (f"{grid} ({n} candidate(s) per model); the papers' published sizes (hidden 128-256) are not candidates: "
            f"CPU budget")


def merged_search_text(parts: list[dict[str, Any]]) -> str:
    """The first part's search, then every other search and the models it was run for."""
    first, others = parts[0]["meta"]["search"], {}
    for q in parts[1:]:
        if q["meta"]["search"] != first:
            others.setdefault(q["meta"]["search"].split("; ")[0], []).extend(q["results"]["models"])
    # the caveat after the first "; " is the first part's
    return first + "".join(f"; in a separate run, for {', '.join(dict.fromkeys(m))}: {g}" for g, m in others.items())


def command_line(argv: list[str] | None) -> str:
    return "meshops bench coronary " + " ".join(argv if argv is not None else sys.argv[1:])


def main_protocol(args: argparse.Namespace, argv: list[str] | None) -> int:
    if args.merge:
        parts = [json.loads(Path(f).read_text()) for f in args.merge]
        res = _protocol().merge_results([q["results"] for q in parts])
        meta = {**parts[0]["meta"], "configs": "; ".join(dict.fromkeys(
            c for q in parts for c in q["meta"]["configs"].split("; ")))}
        meta["search"] = merged_search_text(parts)
        meta["command"] = command_line(argv)
        return protocol_report(res, meta, args)
    res, meta = protocol_train(args, argv)
    return protocol_report(res, meta, args)


def protocol_train(args: argparse.Namespace, argv: list[str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    import torch

    from meshops.data.normalize import Stats

    if args.threads:
        torch.set_num_threads(args.threads)
    P = _protocol()
    data = protocol_splits(args)
    if not data["train"] or not data["val"] or not data["test"]:
        raise SystemExit(f"{args.dataset}: needs training, validation and test cases, got "
                         f"{ {k: len(v) for k, v in data.items()} }")
    stats = Stats.fit((g.y.numpy() for g in data["train"]), len(TARGETS))
    for g in (g for v in data.values() for g in v):
        g.x, g.u = baseline_features(g)
        g.y_n = torch.as_tensor(stats.encode(g.y.double().numpy()), dtype=torch.float32)
    configs = protocol_configs(int(data["train"][0].x.shape[1]), args.quick)
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(wanted) - set(configs))
    if unknown:
        raise SystemExit(f"--models: unknown model(s) {unknown}; choose from {sorted(configs)}")
    specs = {k: P.ModelSpec(protocol_candidates(args, k), protocol_fit(k, configs[k][0], configs[k][1], data, stats, args),
                            label=k, peer=not k.startswith("rbf")) for k in wanted}
    budget = P.Budget(max_epochs=args.epochs, patience=args.patience)
    seeds = [int(x) for x in args.seeds.split(",")]
    split = (f"trees split {args.tree_split} (val, test fractions) by a fixed seeded permutation" if args.tree_split
             else "the dataset's own hash split")
    if args.tree_split and args.max_cases:
        split += f" of a fixed seeded subset of {args.max_cases} trees"
    if args.add_vessels:
        split += f"; train and val also hold {args.add_vessels} / {max(1, args.add_vessels // 8)} single vessels, test trees only"
    splits = P.split_record({k: [g.name for g in v] for k, v in data.items()}, note=split)
    res = P.run_protocol(specs, seeds, budget, splits=splits, min_seeds=2)
    meta = {"dataset": args.dataset, "split": split, "n_train": len(data["train"]), "n_val": len(data["val"]),
            "n_test": len(data["test"]), "search": search_text(args),
            "lr": args.lr, "device": args.device, "threads": torch.get_num_threads(),
            "configs": "; ".join(f"{k}: {configs[k][0]} {configs[k][1]}" for k in wanted),
            "command": command_line(argv)}
    return res, meta


def protocol_report(res: dict[str, Any], meta: dict[str, Any], args: argparse.Namespace) -> int:
    from meshops.atomic import replace_block, write_text_atomic

    text = protocol_table(res, meta)
    print(text)
    if args.out:
        write_text_atomic(json.dumps({"meta": meta, "results": res}, indent=1, default=str), args.out)
    if args.readme:
        begin, end, heading = BLOCKS[meta["dataset"]]
        replace_block(args.readme, begin, end, f"\n{text}\n", prefix=f"{heading}\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
