"""Pack a generated coronary-trees folder into the compact shipped file ``data/coronary_trees.npz``.

``python datasets/coronary_trees/pack.py GEN_DIR [--out data/coronary_trees.npz] [--spacing 0.5]
[--n-around 24]`` resamples every finished case onto structured rings along each branch: stations
``spacing * r`` apart along the branch centerline (the same spline the CFD wall was lofted along),
``n_around`` points ``c + r (cos t n + sin t b)`` per station in the rotation-minimizing frame.
A ring point is kept when it lies on the union wall, i.e. not inside another branch's tube (the
junction openings); its ``p`` and ``wss`` are the CFD wall point fields interpolated (barycentric)
at the closest point of the CFD wall triangles. ``--stats`` prints the folder's statistics.

Layout (C cases, B branches, S stations, P kept points in total; see the dataset card):

* ``names`` (C,), ``Q`` (C,) float32 mL/s, ``split`` (C,) int8, ``cards`` JSON, ``n_around``, ``spacing``
* ``br_ptr`` (C+1,), ``br_parent`` (B,) int32 (case-local, -1 root), ``br_attach`` (B,) int32 (station
  index on the parent's stations where the branch starts), ``br_outlet`` (B,) bool
* ``st_ptr`` (B+1,), ``st_points`` (S, 3), ``st_radius`` (S,), ``st_normal``, ``st_binormal`` (S, 3),
  ``st_s`` (S,) float32 (mm)
* ``mask`` uint8: ``np.packbits`` of the (S, n_around) kept-point mask, station-major
* ``p`` (P,) float16 Pa, ``wss`` (P, 3) float16 Pa, kept points in mask order
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from meshops.cfd.tree_mesh import sections
from meshops.data import recipe_module
from meshops.geometry.polyline import arc_length

log = logging.getLogger("meshops.datasets.coronary_trees.pack")

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "data" / "coronary_trees.npz"
single_pack = recipe_module(HERE.parent / "coronary_synthetic", "pack")
SPLITS = single_pack.SPLITS
split_of = single_pack.split_of


def stations(points: np.ndarray, radius: np.ndarray, spacing: float) -> dict[str, np.ndarray]:
    """Stations of one branch: centres, radii, normals, binormals, arc length (``spacing * r`` apart)."""
    P, R, T, N = sections(points, radius, spacing)
    N = N - (N * T).sum(1, keepdims=True) * T
    N /= np.linalg.norm(N, axis=1, keepdims=True)
    return {"points": P, "radius": R, "normal": N, "binormal": np.cross(T, N), "s": arc_length(P)}


def ring_points(st: dict[str, np.ndarray], n_around: int) -> np.ndarray:
    """(ns, n_around, 3) ring points ``c + r (cos t n + sin t b)``, ``t = 2 pi j / n_around``."""
    t = 2 * np.pi * np.arange(n_around) / n_around
    c, s = np.cos(t)[None, :, None], np.sin(t)[None, :, None]
    return st["points"][:, None] + st["radius"][:, None, None] * (c * st["normal"][:, None] + s * st["binormal"][:, None])


def _tube_sdf(points: np.ndarray, radius: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Signed distance of ``q`` to the union of balls along a densely sampled branch (< 0 inside)."""
    from scipy.spatial import cKDTree

    s = arc_length(points)
    n = max(int(s[-1] / (0.05 * radius.min())) + 2, 2)
    st = np.linspace(0, s[-1], n)
    X = np.stack([np.interp(st, s, points[:, k]) for k in range(3)], 1)
    R = np.interp(st, s, radius)
    d, i = cKDTree(X).query(q, k=8)
    return (d - R[i]).min(axis=1)


def keep_mask(tree: Any, b: int, ring: np.ndarray) -> np.ndarray:
    """(ns, nw) bool: ring points of branch ``b`` outside every other branch's tube (on the union wall)."""
    q = ring.reshape(-1, 3)
    keep = np.ones(len(q), dtype=bool)
    tol = 0.02 * float(tree.radius[b].min())
    for c in range(tree.n_branches):
        if c != b:
            keep &= _tube_sdf(tree.points[c], tree.radius[c], q) > -tol
    return keep.reshape(ring.shape[:2])


def wall_values(wall: Any, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p, wss at the closest points of the CFD wall to ``q`` (barycentric), and the distances."""
    from meshops.geometry.boundary import closest_points

    tris = np.asarray(wall.cells[0].data)
    X = np.asarray(wall.points, dtype=np.float64)
    cp, dist, tid = closest_points(q, X, tris)
    v = tris[tid]
    a, b, c = X[v[:, 0]], X[v[:, 1]], X[v[:, 2]]
    n = np.cross(b - a, c - a)
    nn = (n * n).sum(1)
    w1 = (np.cross(cp - a, c - a) * n).sum(1) / nn
    w2 = (np.cross(b - a, cp - a) * n).sum(1) / nn
    bary = np.clip(np.stack([1 - w1 - w2, w1, w2], 1), 0, None)
    bary /= bary.sum(1, keepdims=True)
    p = (np.asarray(wall.point_data["p"], dtype=np.float64)[v] * bary).sum(1)
    wss = (np.asarray(wall.point_data["wss"], dtype=np.float64)[v] * bary[:, :, None]).sum(1)
    return p, wss, dist


def pack_case(folder: Path, spacing: float, n_around: int) -> dict[str, Any]:
    """Resample one generated case (see the module doc)."""
    from meshops.io import read

    gen = recipe_module(HERE, "generate")
    card = json.loads((folder / "case.json").read_text())
    tree = gen.load_tree(folder / "tree.npz")
    wall = read(folder / "wall.vtp")
    sts, masks, rings = [], [], []
    for b in range(tree.n_branches):
        st = stations(tree.points[b], tree.radius[b], spacing)
        ring = ring_points(st, n_around)
        sts.append(st)
        rings.append(ring)
        masks.append(keep_mask(tree, b, ring))
    attach = [-1] + [int(np.argmin(np.linalg.norm(sts[tree.parent[b]]["points"] - tree.points[b][0], axis=1)))
                     for b in range(1, tree.n_branches)]
    q = np.concatenate([r[m] for r, m in zip(rings, masks, strict=True)])
    p, wss, dist = wall_values(wall, q)
    rad = np.concatenate([np.repeat(st["radius"][:, None], n_around, 1)[m] for st, m in zip(sts, masks, strict=True)])
    card["pack"] = {"kept_points": int(len(q)), "ring_points": int(sum(m.size for m in masks)),
                    "max_gap_over_r": float((dist / rad).max()), "mean_gap_over_r": float((dist / rad).mean())}
    if card["pack"]["max_gap_over_r"] > 0.1:
        log.warning("%s: a packed ring point lies %.3g r from the CFD wall", folder.name, card["pack"]["max_gap_over_r"])
    return {"name": card["name"], "Q": float(card["Q_mL_s"]), "card": card, "stations": sts, "masks": masks,
            "parent": tree.parent, "attach": attach, "outlet": [tree.has_outlet(b) for b in range(tree.n_branches)],
            "p": p, "wss": wss}


def _slim_card(card: dict[str, Any]) -> dict[str, Any]:
    c = dict(card)
    c["solver"] = {k: v for k, v in c["solver"].items() if k != "settings"}
    c["mesh"] = {k: v for k, v in c["mesh"].items() if k != "settings"}
    return c


def _concat(cases: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.concatenate([st[key] for c in cases for st in c["stations"]]).astype(np.float32)


def pack(gen_dir: str | os.PathLike[str], out: str | os.PathLike[str] = DEFAULT_OUT, spacing: float = 0.5,
         n_around: int = 24) -> dict[str, Any]:
    """Pack every finished case of ``gen_dir`` into ``out`` (atomically); returns a summary."""
    from tqdm import tqdm

    gen = Path(gen_dir)
    folders = sorted(d for d in gen.glob("case_*") if (d / "case.json").is_file())
    if not folders:
        raise ValueError(f"{gen}: no finished cases (case_*/case.json)")
    cases = [pack_case(d, spacing, n_around) for d in tqdm(folders, desc="pack", unit="case")]
    nb = [len(c["stations"]) for c in cases]
    ns = [len(st["s"]) for c in cases for st in c["stations"]]
    p = np.concatenate([c["p"] for c in cases])
    if np.abs(p).max() > 6e4:
        raise ValueError(f"{gen}: |p| exceeds the float16 range; refusing to pack")
    arrays = {
        "names": np.array([c["name"] for c in cases]), "Q": np.array([c["Q"] for c in cases], dtype=np.float32),
        "split": np.array([split_of(c["name"]) for c in cases], dtype=np.int8),
        "br_ptr": np.concatenate([[0], np.cumsum(nb)]).astype(np.int64),
        "br_parent": np.concatenate([c["parent"] for c in cases]).astype(np.int32),
        "br_attach": np.concatenate([c["attach"] for c in cases]).astype(np.int32),
        "br_outlet": np.concatenate([c["outlet"] for c in cases]).astype(bool),
        "st_ptr": np.concatenate([[0], np.cumsum(ns)]).astype(np.int64),
        **{f"st_{k}": _concat(cases, k) for k in ("points", "radius", "normal", "binormal", "s")},
        "mask": np.packbits(np.concatenate([m.ravel() for c in cases for m in c["masks"]])),
        "p": p.astype(np.float16), "wss": np.concatenate([c["wss"] for c in cases]).astype(np.float16),
        "n_around": np.array(n_around), "spacing": np.array(spacing), "format_version": np.array(1),
        "cards": np.array(json.dumps([_slim_card(c["card"]) for c in cases], separators=(",", ":"))),
    }
    outp = single_pack.save_npz_atomic(arrays, out)
    summary = {"cases": len(cases), "branches": int(sum(nb)), "stations": int(sum(ns)), "points": int(len(p)),
               "bytes": outp.stat().st_size, "split_counts": np.bincount(arrays["split"], minlength=3).tolist(),
               "max_gap_over_r": max(c["card"]["pack"]["max_gap_over_r"] for c in cases),
               "names": [c["name"] for c in cases]}
    log.info("packed %s", summary)
    return summary


def summarize(gen_dir: str | os.PathLike[str], names: list[str] | None = None) -> dict[str, Any]:
    """Statistics of a generated folder for the dataset card (only the cases ``names`` when given)."""
    cards, fails = single_pack.generated_cards(Path(gen_dir))
    if names is not None:  # the cases of a pack (the folder may have grown since)
        keep = set(names)
        cards = [c for c in cards if c["name"] in keep]
    if not cards:
        return {"cases": 0, "failed": len(fails)}
    q = single_pack.quantiles
    nst = [len(c["stenoses"]) for c in cards]
    nbr = [len(c["topology"]["parent"]) for c in cards]
    return {
        "cases": len(cards), "failed": len(fails), "failure_reasons": sorted({f["reason"][:100] for f in fails}),
        "converged": int(sum(c["solver"]["converged"] for c in cards)),
        "cells": q([c["mesh"]["cells"] for c in cards]), "wall_points": q([c["mesh"]["wall_points"] for c in cards]),
        "iterations": q([c["solver"]["iterations"] for c in cards]),
        "layer_coverage": q([c["mesh"].get("layers", {}).get("coverage", 0.0) for c in cards]),
        "max_non_orthogonality": q([c["mesh"].get("check", {}).get("max_non_orthogonality") or float("nan")
                                    for c in cards]),
        "solver_cpu_s": q([c["solver"]["solver_execution_time_s"] for c in cards]),
        "case_total_wall_s": q([c["total_time_s"] for c in cards]),
        "Q_mL_s": q([c["Q_mL_s"] for c in cards]), "Re_inlet": q([c["flow"]["Re_inlet"] for c in cards]),
        "max_residual": q([max(c["solver"]["final_initial_residuals"].values()) for c in cards]),
        "mass_imbalance_rel": q([c["mass_balance"]["imbalance_rel"] for c in cards]),
        "outlet_split_error_rel": q([c["mass_balance"]["max_outlet_split_error_rel"] for c in cards]),
        "inlet_p_Pa": q([c["flow"]["inlet_p_mean_Pa"] for c in cards]),
        "branches_per_case": {str(k): nbr.count(k) for k in sorted(set(nbr))},
        "stenoses_per_case": {str(k): nst.count(k) for k in sorted(set(nst))},
        "stenosis_kinds": {k: sum(s["kind"] == k for c in cards for s in c["stenoses"])
                           for k in ("bifurcation", "ostial", "anywhere")},
        "area_reduction": q([s["area_reduction"] for c in cards for s in c["stenoses"]] or [0.0]),
    }


_ROWS = (("CFD cells (polyhedral dual + wall prism layers)", "cells", "{:,.0f}"),
         ("wall layer coverage (mean layers per wall face / layers)", "layer_coverage", "{:.1%}"),
         ("largest face non-orthogonality (checkMesh), deg", "max_non_orthogonality", "{:.0f}"),
         ("CFD wall points", "wall_points", "{:,.0f}"),
         ("simpleFoam iterations", "iterations", "{:.0f}"),
         ("solver CPU time (OpenFOAM ExecutionTime), s", "solver_cpu_s", "{:.1f}"),
         ("case wall time on the shared machine, s", "case_total_wall_s", "{:.0f}"), ("Q, mL/s", "Q_mL_s", "{:.2f}"),
         ("inlet Reynolds number", "Re_inlet", "{:.0f}"),
         ("inlet wall pressure (reference outlet = 0), Pa", "inlet_p_Pa", "{:.1f}"),
         ("largest final initial residual", "max_residual", "{:.1e}"),
         ("mass imbalance (sum of outflows - inflow) / inflow", "mass_imbalance_rel", "{:.1e}"),
         ("outlet flow vs Murray target, max rel. error", "outlet_split_error_rel", "{:.1e}"))


def card_block(st: dict[str, Any], packed: dict[str, Any], command: str) -> str:
    """The card's "Shipped data" statistics, from ``summarize`` of the folder and ``pack``'s summary."""
    sc = packed["split_counts"]
    lines = [f"{st['cases']} tree cases ({command}), **{st['failed']} failures** (logged in `failures.jsonl`, "
             f"not shipped); all {st['converged']} shipped cases converged (residualControl met). Split by a hash "
             f"of the case name: {sc[0]} train / {sc[1]} val / {sc[2]} test. File size {packed['bytes'] / 1e6:.1f} MB "
             f"({packed['branches']} branches, {packed['stations']:,} stations, {packed['points']:,} wall points).",
             "", "| quantity | min | median | max |", "|---|---|---|---|"]
    for label, key, fmt in _ROWS:
        lines.append(f"| {label} | " + " | ".join(fmt.format(st[key][k]) for k in ("min", "median", "max")) + " |")
    kinds = ", ".join(f"{k} {v}" for k, v in st["stenosis_kinds"].items())
    ar = st["area_reduction"]
    lines += ["", "Branches per tree: " + ", ".join(f"{k}: {v}" for k, v in st["branches_per_case"].items())
              + ". Stenoses per tree: " + ", ".join(f"{k}: {v}" for k, v in st["stenoses_per_case"].items())
              + f"; kinds: {kinds}; area reductions {ar['min']:.0%}-{ar['max']:.0%} (median {ar['median']:.0%}).",
              "", "Failures: " + "; ".join(st["failure_reasons"]) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="pack a generated coronary-trees folder into the shipped npz")
    ap.add_argument("gen_dir")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--spacing", type=float, default=0.5, help="station spacing in local radii")
    ap.add_argument("--n-around", type=int, default=24)
    ap.add_argument("--stats", action="store_true", help="only print the folder's statistics (for the card)")
    ap.add_argument("--card", help="after packing, rewrite the statistics block (shipped:begin/end) of this card")
    ap.add_argument("--command", default="`meshops datasets generate coronary-trees ...`",
                    help="the generating command, as the card states it")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if a.stats:
        print(json.dumps(summarize(a.gen_dir), indent=1))
        return 0
    packed = pack(a.gen_dir, a.out, a.spacing, a.n_around)
    print(json.dumps({k: v for k, v in packed.items() if k != "names"}))
    if a.card:
        from meshops.atomic import replace_block

        replace_block(a.card, "<!-- shipped:begin -->\n", "\n<!-- shipped:end -->",
                      card_block(summarize(a.gen_dir, packed["names"]), packed, a.command), required=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
