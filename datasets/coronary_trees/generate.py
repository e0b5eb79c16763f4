"""Generator of the ``coronary-trees`` dataset: random trees -> gmsh union -> tets -> simpleFoam -> wall fields.

``meshops datasets generate coronary-trees --n N --workers W --out DIR [--seed S]`` calls
:func:`generate`. Each finished case ``case_NNNNN`` is a folder ``DIR/case_NNNNN/`` with

* ``wall.vtp``: the CFD wall (triangles, mm) with point fields ``p`` (Pa, relative to the reference
  outlet), ``wss`` (3, Pa, blood's traction on the wall), ``wss_mag``, and the face values as cell data;
* ``tree.npz``: the centerline tree (per-branch ``points_<b>``, ``radius_<b>``, ``ref_radius_<b>``
  and ``parent``, ``attach``), the input of the run;
* ``case.json``: the card (parameters, mesh size, iterations, residuals, per-outlet flow and
  pressure, mass balance, timings).

The run is resumable (finished case folders are skipped), a failed case is appended to
``DIR/failures.jsonl`` with its reason (skipped on a rerun of the same configuration unless
``retry_failed=True``), and a case folder appears only by rename once all its files are written.
A case that diverges or does not meet ``residualControl`` is a failure, not a case.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from meshops.cfd.foam import FoamError, SolverSettings, openfoam_available
from meshops.cfd.tree import Tree, TreeError
from meshops.cfd.tree_mesh import TreeMeshSettings
from meshops.cfd.tree_solve import DEFAULT_SOLVER, solve_tree
from meshops.data import recipe_module

log = logging.getLogger("meshops.datasets.coronary_trees")

HERE = Path(__file__).resolve().parent
tree_mod = recipe_module(HERE, "tree")
single = recipe_module(HERE.parent / "coronary_synthetic", "generate")

SOLVER = DEFAULT_SOLVER  # simpleFoam controls of the tree runs (residualControl p 1e-4, U 1e-5)


def save_tree(tree: Tree, path: Path) -> None:
    """Write the centerline tree to ``path`` (npz, atomically)."""
    arrays: dict[str, Any] = {"parent": np.array(tree.parent), "attach": np.array(tree.attach)}
    for b in range(tree.n_branches):
        arrays[f"points_{b}"] = tree.points[b]
        arrays[f"radius_{b}"] = tree.radius[b]
        if tree.ref_radius is not None:
            arrays[f"ref_radius_{b}"] = tree.ref_radius[b]
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_tree(path: Path) -> Tree:
    """Read a tree written by :func:`save_tree`."""
    z = np.load(path)
    nb = len(z["parent"])
    ref = [z[f"ref_radius_{b}"] for b in range(nb)] if "ref_radius_0" in z.files else None
    return Tree([z[f"points_{b}"] for b in range(nb)], [z[f"radius_{b}"] for b in range(nb)],
                [int(x) for x in z["parent"]], [int(x) for x in z["attach"]], ref)


def write_wall(res: dict[str, Any], path: Path) -> None:
    """The CFD wall with its point and face fields (float32) as VTP."""
    from meshops.io import write
    from meshops.mesh import CellBlock, Mesh

    f32 = np.float32
    wall = Mesh(res["wall_points"], [CellBlock("triangle", res["wall_tris"])],
                point_data={"p": res["p"].astype(f32), "wss": res["wss"].astype(f32),
                            "wss_mag": res["wss_mag"].astype(f32)},
                cell_data={"p": res["p_face"].astype(f32), "wss": res["wss_face"].astype(f32),
                           "wss_mag": np.linalg.norm(res["wss_face"], axis=1).astype(f32)})
    write(wall, path)


def run_case(i: int, out: Path, seed: int, ms: TreeMeshSettings, ss: SolverSettings,
             keep_work: bool = False) -> dict[str, Any]:
    """Draw, mesh, solve and save case ``i``; raises on failure (the caller records it)."""
    name = f"case_{i:05d}"
    tseed = single.case_seed(seed, i)
    tree, params = tree_mod.sample_tree(tseed)
    work = out / ".work" / f"{name}.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        t0 = time.perf_counter()
        res = solve_tree(tree, params["Q"], work / "foam", ms, ss, where=name)
        stage = work / "out"
        stage.mkdir(parents=True)
        write_wall(res, stage / "wall.vtp")
        save_tree(tree, stage / "tree.npz")
        card = {"name": name, "index": i, "dataset_seed": seed, "tree_seed": tseed,
                "units": {"length": "mm", "Q": "mL/s", "p": "Pa (relative to the reference outlet)", "wss": "Pa"},
                "params": params, "Q_mL_s": params["Q"], "stenoses": params["stenoses"],
                "topology": {"parent": tree.parent, "attach": tree.attach, "outlets": tree.outlets()},
                "outlets": res["outlets"], "mass_balance": res["mass_balance"], **res["info"],
                "total_time_s": round(time.perf_counter() - t0, 3)}
        (stage / "case.json").write_text(json.dumps(card, indent=1, default=float))
        final = out / name
        if final.exists():
            shutil.rmtree(stage)
        else:
            os.rename(stage, final)
        return {"name": name, "cells": res["info"]["mesh"]["cells"], "total_s": card["total_time_s"],
                "iterations": res["info"]["solver"]["iterations"]}
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)


def _fingerprint(seed: int, ms: dict[str, Any], ss: dict[str, Any]) -> str:
    text = json.dumps({"seed": seed, "mesh": ms, "solver": ss, "ranges": tree_mod.RANGES}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _one(i: int, outp: Path, seed: int, ms: dict[str, Any], ss: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"ok": True, **run_case(i, outp, seed, TreeMeshSettings(**ms), SolverSettings(**ss))}
    except (TreeError, FoamError, ValueError) as e:
        return {"ok": False, "name": f"case_{i:05d}", "index": i, "reason": str(e)}
    except Exception as e:  # noqa: BLE001 - a failed case must not stop the others
        return {"ok": False, "name": f"case_{i:05d}", "index": i, "reason": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc()[-2000:]}


def generate(out: str | os.PathLike[str], n: int, workers: int = 1, seed: int = 0, *, start: int = 0,
             retry_failed: bool = False, progress: bool = True, mesh: dict[str, Any] | None = None,
             solver: dict[str, Any] | None = None) -> dict[str, Any]:
    """Generate tree cases ``start .. start + n - 1`` into ``out`` (one single-core run per worker)."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    if not openfoam_available():
        raise RuntimeError("OpenFOAM's simpleFoam is not on PATH (Debian: apt install openfoam)")
    if n < 0 or workers < 1:
        raise ValueError(f"generate: need n >= 0 and workers >= 1, got n={n}, workers={workers}")
    outp = Path(out)
    outp.mkdir(parents=True, exist_ok=True)
    ms = asdict(TreeMeshSettings(**(mesh or {})))
    ss = asdict(SolverSettings(**{**SOLVER, **(solver or {})}))
    config = _fingerprint(seed, ms, ss)
    failed = {} if retry_failed else single.recorded_failures(outp, config)
    todo = [i for i in range(start, start + n)
            if not (outp / f"case_{i:05d}" / "case.json").is_file() and f"case_{i:05d}" not in failed]
    stats = {"done": 0, "skipped": n - len(todo), "failed": 0}
    bar = tqdm(total=len(todo), desc="coronary-trees", unit="case", disable=not progress)

    def record(r: dict[str, Any]) -> None:
        if r["ok"]:
            stats["done"] += 1
            bar.set_postfix_str(f"{r['name']} {r['cells']} cells {r['total_s']:.0f}s")
        else:
            stats["failed"] += 1
            log.warning("%s failed: %s", r["name"], r["reason"])
            single.record_failure(outp, r, config)
        bar.update(1)

    os.environ["OMP_NUM_THREADS"] = "1"
    if workers == 1:
        for i in todo:
            record(_one(i, outp, seed, ms, ss))
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as ex:
            for r in ex.map(_one, todo, [outp] * len(todo), [seed] * len(todo), [ms] * len(todo), [ss] * len(todo)):
                record(r)
    bar.close()
    log.info("coronary-trees: %s", stats)
    return stats
