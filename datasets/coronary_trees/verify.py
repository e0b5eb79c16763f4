"""Verification of the tree pipeline: Hagen-Poiseuille on a straight tube, mesh refinement on a stenosed tree.

``python datasets/coronary_trees/verify.py poiseuille|refinement|all [--out FILE.json]`` prints the
numbers of the dataset card (and writes them as JSON). Both use the production pipeline of the
generator (:func:`meshops.cfd.tree_solve.solve_tree`, the generator's solver controls); wall
fields of different meshes are compared on the packed ring points of the same tree
(:mod:`pack`: the same stations, mask and closest-point interpolation), relative L2 to the finest.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from meshops.cfd.foam import SolverSettings
from meshops.cfd.tree import Tree
from meshops.cfd.tree_mesh import TreeMeshSettings
from meshops.cfd.tree_solve import DEFAULT_SOLVER, MU, solve_tree
from meshops.data import recipe_module

HERE = Path(__file__).resolve().parent
log = logging.getLogger("meshops.datasets.coronary_trees.verify")

#: (name, wall size, core size) in local radii; production is the generator's default.
LEVELS = [("coarse", 0.27, 0.54), ("production", 0.22, 0.44), ("fine", 0.155, 0.31), ("finer", 0.11, 0.22),
          ("finest", 0.078, 0.156)]


class _Wall:
    """The solver output as the ``wall`` object :func:`pack.wall_values` reads."""

    def __init__(self, res: dict[str, Any]) -> None:
        from meshops.mesh import CellBlock

        self.points = res["wall_points"]
        self.cells = [CellBlock("triangle", res["wall_tris"])]
        self.point_data = {"p": res["p"], "wss": res["wss"]}


def ring_fields(tree: Tree, res: dict[str, Any], spacing: float = 0.5, n_around: int = 24) -> dict[str, np.ndarray]:
    """p, wss at the packed ring points of ``tree`` (the dataset's representation)."""
    pk = recipe_module(HERE, "pack")
    q, s, b_id = [], [], []
    for b in range(tree.n_branches):
        st = pk.stations(tree.points[b], tree.radius[b], spacing)
        ring = pk.ring_points(st, n_around)
        m = pk.keep_mask(tree, b, ring)
        q.append(ring[m])
        s.append(np.repeat(st["s"][:, None], n_around, 1)[m])
        b_id.append(np.full(int(m.sum()), b))
    p, wss, gap = pk.wall_values(_Wall(res), np.concatenate(q))
    return {"p": p, "wss": wss, "wss_mag": np.linalg.norm(wss, axis=1), "s": np.concatenate(s),
            "branch": np.concatenate(b_id), "points": np.concatenate(q), "gap": gap}


def ring_means(f: dict[str, np.ndarray], key: str) -> np.ndarray:
    """Mean of ``f[key]`` over the kept points of every (branch, station) ring."""
    keys = np.stack([f["branch"], np.round(f["s"], 6)], 1)
    _, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.ravel()
    return np.bincount(inv, weights=f[key]) / np.bincount(inv)


def poiseuille(r: float = 1.5, L: float = 30.0, Q: float = 1.0, ms: TreeMeshSettings | None = None) -> dict[str, Any]:
    """Straight tube through the tree pipeline: pressure gradient and WSS against Hagen-Poiseuille."""
    s = np.linspace(0, L, 121)
    tree = Tree([np.stack([0 * s, 0 * s, s], 1)], [np.full(len(s), r)], [-1], [-1])
    with tempfile.TemporaryDirectory() as tmp:
        res = solve_tree(tree, Q, Path(tmp) / "foam", ms, SolverSettings(**DEFAULT_SOLVER), where="poiseuille")
    f = ring_fields(tree, res)
    mid = (f["s"] > L / 3) & (f["s"] < 2 * L / 3)
    slope = np.polyfit(f["s"][mid] * 1e-3, f["p"][mid], 1)[0]
    grad_exact = 8 * MU * Q * 1e-6 / (np.pi * (r * 1e-3) ** 4)
    wss_exact = 4 * MU * Q * 1e-6 / (np.pi * (r * 1e-3) ** 3)
    wss = float(f["wss_mag"][mid].mean())
    return {"r_mm": r, "L_mm": L, "Q_mL_s": Q, "cells": res["info"]["mesh"]["cells"],
            "iterations": res["info"]["solver"]["iterations"],
            "dpdx_Pa_m": float(-slope), "dpdx_exact_Pa_m": grad_exact, "dpdx_rel_error": float(-slope / grad_exact - 1),
            "wss_Pa": wss, "wss_exact_Pa": wss_exact, "wss_rel_error": wss / wss_exact - 1,
            "wss_spread_rel": float(f["wss_mag"][mid].std() / wss),
            "mass_imbalance_rel": res["mass_balance"]["imbalance_rel"]}


def stenosed_tree(seed: int = 0, max_index: int = 200) -> tuple[int, Tree, dict[str, Any]]:
    """The first generated case (index, tree, params) with a stenosis at a bifurcation of >= 40 %."""
    tree_mod = recipe_module(HERE, "tree")
    single = recipe_module(HERE.parent / "coronary_synthetic", "generate")
    for i in range(max_index):
        tree, params = tree_mod.sample_tree(single.case_seed(seed, i))
        if any(s["kind"] == "bifurcation" and s["area_reduction"] >= 0.4 for s in params["stenoses"]):
            return i, tree, params
    raise RuntimeError(f"no case below {max_index} has a bifurcation stenosis")


def refinement(levels: list[tuple[str, float, float]] = LEVELS, layers: int = TreeMeshSettings.layers) -> dict[str, Any]:
    """Wall fields of one stenosed tree at the mesh ``levels`` (with ``layers`` wall prism layers); rel L2
    to the finest level."""
    i, tree, params = stenosed_tree()
    rows, fields = [], []
    for name, ws, cs in levels:
        with tempfile.TemporaryDirectory() as tmp:
            res = solve_tree(tree, params["Q"], Path(tmp) / "foam", TreeMeshSettings(wall_size=ws, core_size=cs, layers=layers),
                             SolverSettings(**DEFAULT_SOLVER), where=f"refinement {name}")
        fields.append(ring_fields(tree, res))
        info = res["info"]
        rows.append({"level": name, "wall_size": ws, "core_size": cs, "cells": info["mesh"]["cells"],
                     "wall_points": info["mesh"]["wall_points"], "iterations": info["solver"]["iterations"],
                     "solver_cpu_s": info["solver"]["solver_execution_time_s"],
                     "inlet_p_Pa": info["flow"]["inlet_p_mean_Pa"],
                     "mass_imbalance_rel": res["mass_balance"]["imbalance_rel"],
                     "layer_coverage": info["mesh"].get("layers", {}).get("coverage")})
        log.info("refinement %s: %s", name, rows[-1])
    ref = fields[-1]
    for row, f in zip(rows[:-1], fields[:-1], strict=True):
        for k in ("p", "wss", "wss_mag"):
            row[f"rel_l2_{k}"] = float(np.linalg.norm(f[k] - ref[k]) / np.linalg.norm(ref[k]))
        for k in ("p", "wss_mag"):  # ring means: the field along the branches without the cell-scale noise
            a, b = ring_means(f, k), ring_means(ref, k)
            row[f"rel_l2_ring_mean_{k}"] = float(np.linalg.norm(a - b) / np.linalg.norm(b))
    return {"case_index": i, "Q_mL_s": params["Q"], "stenoses": params["stenoses"], "layers": layers,
            "branches": len(params["branches"]), "levels": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="verify the coronary-trees pipeline")
    ap.add_argument("what", choices=["poiseuille", "refinement", "all"])
    ap.add_argument("--out", help="also write the numbers to this JSON file")
    ap.add_argument("--layers", type=int, default=TreeMeshSettings.layers,
                    help=f"prism layers at the wall (default {TreeMeshSettings.layers}, as the shipped data; 0: none)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    out: dict[str, Any] = {}
    if a.what in ("poiseuille", "all"):
        ms = TreeMeshSettings(layers=a.layers)
        out["poiseuille"] = [poiseuille(ms=ms), poiseuille(r=1.5, L=30.0, Q=2.5, ms=ms),
                             poiseuille(r=1.0, L=30.0, Q=2.5, ms=ms)]
    if a.what in ("refinement", "all"):
        out["refinement"] = refinement(layers=a.layers)
    text = json.dumps(out, indent=1, default=float)
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    shutil.rmtree(Path(tempfile.gettempdir()) / "meshops_verify", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
