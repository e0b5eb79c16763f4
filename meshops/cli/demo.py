"""``meshops demo``: the shipped coronary model on shipped vessels and trees it never trained on.

Loads ``datasets/coronary_synthetic/model/best.pt`` (made by ``make train-coronary``), takes the
test cases of the split saved next to it (``splits.json``) from the dataset it was trained on
(``coronary_mixed``: single vessels and trees), predicts wall pressure and WSS magnitude, prints
the relative L2 error against the OpenFOAM truth and the time per case next to the solver's own
time, with the held-out vessels and trees summarized apart, and writes each predicted wall (VTP,
with ``<field>_pred`` and ``<field>_error``) and a truth | prediction | error PNG per field into
``--out`` for the first ``--renders`` cases and for the first held-out tree.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HELP = "predict p and WSS on shipped test vessels with the shipped model; print errors and timings"

log = logging.getLogger("meshops.demo")
ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "datasets" / "coronary_synthetic"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=str(RECIPE / "model" / "best.pt"), help="trained model")
    p.add_argument("--out", default="demo_out", help="folder for the predicted VTP files and PNG renders")
    p.add_argument("--cases", type=int, default=0, help="at most this many test cases (0: all)")
    p.add_argument("--renders", type=int, default=3, help="cases to render as PNG (0: none)")
    p.add_argument("--trees-path", default=None,
                   help="a packed coronary_trees npz to read the held-out trees from (default: the shipped one)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    import meshops
    from meshops.atomic import write_json_atomic
    from meshops.data import load_dataset
    from meshops.train import load_trained, predict_mesh
    from meshops.viz.render import render_comparison

    ckpt = Path(args.checkpoint)
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: no trained model; `make train-coronary` makes it")
    splits_path = ckpt.parent / "splits.json"
    if not splits_path.is_file():
        raise FileNotFoundError(f"{splits_path}: the split the model was trained with is missing")
    test_names = json.loads(splits_path.read_text())["test"]
    trained = load_trained(ckpt)
    spec = trained.config.get("dataset", {}) or {}
    ds_name = spec.get("dataset", "coronary_synthetic") if isinstance(spec, dict) else "coronary_synthetic"
    extra = {"trees_path": args.trees_path} if (args.trees_path and ds_name == "coronary_mixed") else {}
    ds = load_dataset(ds_name, targets=list(trained.features.targets), **extra)
    index = {n: i for i, n in enumerate(ds.case_names())}
    test_names = _held_out(test_names, index, splits_path, args.cases)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    targets = trained.features.targets

    # One warm-up prediction so the first timed case does not pay for lazy initialisation.
    first = ds[index[test_names[0]]]
    predict_mesh(trained, first.mesh, globals=first.globals)

    rows = []
    header = f"{'case':<16} {'branches':>8} {'Q mL/s':>7} " + " ".join(f"{'relL2 ' + t:>13}" for t in targets)
    header += f" {'model ms':>9} {'OpenFOAM s':>11} {'speed-up':>9}"
    print(f"meshops demo: {trained.config['model']['name']} on {len(test_names)} held-out vessels and trees "
          f"({ckpt}, dataset {ds_name})")
    tree_rendered = False
    print(header)
    for k, name in enumerate(test_names):
        i = index[name]
        case = ds[i]
        t0 = time.perf_counter()
        pred = predict_mesh(trained, case.mesh, globals=case.globals)
        dt = time.perf_counter() - t0
        errs = []
        for t in targets:
            truth = np.asarray(case.mesh.point_data[t], dtype=np.float64)
            e = np.asarray(pred.point_data[f"{t}_error"], dtype=np.float64)
            errs.append(float(np.linalg.norm(e) / max(np.linalg.norm(truth), 1e-30)))
        foam_s = _solver_seconds(ds.card(i) if hasattr(ds, "card") else {})
        n_br = len((case.mesh.field_data or {}).get("centerline_branches", [None]))
        rows.append({"case": name, "branches": n_br, "Q": case.globals.get("Q"),
                     "rel_l2": dict(zip(targets, errs, strict=True)), "model_s": dt, "openfoam_s": foam_s})
        print(f"{name:<16} {n_br:>8} {case.globals.get('Q', float('nan')):>7.3f} "
              + " ".join(f"{e:>13.4f}" for e in errs)
              + f" {dt * 1e3:>9.1f} {foam_s:>11.1f} {foam_s / dt:>8.0f}x")
        # VTP holds no named boundary regions; the wall's inlet/outlet rings are not needed here.
        meshops.write(dataclasses.replace(pred, boundaries={}), out / f"{name}.vtp")
        if k < args.renders or (n_br > 1 and not tree_rendered and args.renders):
            tree_rendered = tree_rendered or n_br > 1
            for t in targets:
                render_comparison(pred, t, out / f"{name}_{t}.png")
    _print_kind_means(rows, targets)
    mean = {t: float(np.mean([r["rel_l2"][t] for r in rows])) for t in targets}
    model_ms = 1e3 * float(np.median([r["model_s"] for r in rows]))
    foam_s = float(np.nanmedian([r["openfoam_s"] for r in rows]))
    print("mean relative L2: " + ", ".join(f"{t} {v:.4f}" for t, v in mean.items())
          + f"; median time per case: model {model_ms:.1f} ms, OpenFOAM (mesh + solve) {foam_s:.1f} s")
    summary = {"checkpoint": str(ckpt), "cases": rows, "mean_rel_l2": mean,
               "median_model_ms": model_ms, "median_openfoam_s": foam_s}
    write_json_atomic(summary, out / "demo.json")
    n_png = len(list(out.glob("*.png")))
    print(f"wrote {len(rows)} predicted walls (.vtp), {n_png} renders (.png) and demo.json to {out}/")
    return 0


def _held_out(test_names: list[str], index: dict[str, int], splits_path: Path, cases: int | None) -> list[str]:
    """The held-out cases to show: all must be in the data but trees packed after this checkout's npz
    (said on stderr, then left out); vessels and trees interleaved, the first ``cases`` of them."""
    missing = [n for n in test_names if n not in index]
    if [n for n in missing if not n.startswith("tree_")]:
        raise KeyError(f"{splits_path}: test cases {missing[:5]} are not in the shipped dataset")
    if missing:
        print(f"warning: {len(missing)} held-out tree(s) of {splits_path} are not in this checkout's "
              f"coronary_trees data ({', '.join(missing[:5])}); they are left out of the table", file=sys.stderr)
        test_names = [n for n in test_names if n in index]
    test_names = interleave_trees(test_names)
    return test_names[:cases] if cases else test_names


def _print_kind_means(rows: list[dict], targets: Sequence[str]) -> None:
    """Mean relative L2 of the held-out single vessels and of the held-out trees, each on a line."""
    import numpy as np

    for kind, sel in (("vessels", [r for r in rows if r["branches"] <= 1]), ("trees", [r for r in rows if r["branches"] > 1])):
        if sel:
            print(f"held-out {kind} ({len(sel)}): mean relative L2 "
                  + ", ".join(f"{t} {np.mean([r['rel_l2'][t] for r in sel]):.4f}" for t in targets))


def interleave_trees(names: list[str]) -> list[str]:
    """Single vessels and trees (names starting with ``tree_``) alternated, each kind in its order.

    So that ``--cases N`` shows both kinds of held-out geometry.
    """
    trees = [n for n in names if n.startswith("tree_")]
    vessels = [n for n in names if not n.startswith("tree_")]
    out: list[str] = []
    for k in range(max(len(trees), len(vessels))):
        out += vessels[k : k + 1] + trees[k : k + 1]
    return out


def _solver_seconds(card: dict) -> float:
    """OpenFOAM meshing + solve seconds from a case card (single-vessel or tree layout), NaN when absent."""
    solver = card.get("solver", {}) if isinstance(card, dict) else {}
    for key in ("solver_wall_time_s", "wall_time_s", "time_s"):
        if key in solver:
            return float(solver[key]) + float(solver.get("meshing_time_s", 0.0))
    for key in ("solve_s", "wall_time_s", "time_s"):
        if key in card:
            return float(card[key]) + float(card.get("mesh_s", 0.0))
    return float("nan")
