"""Solver verification for the coronary-synthetic dataset (numbers quoted in the card).

* :func:`poiseuille_check`: a straight pipe with a developed inlet must give the Hagen-Poiseuille
  pressure gradient ``8 mu Q / (pi r^4)`` and wall shear stress ``4 mu Q / (pi r^3)``.
* :func:`refinement_study`: one stenosed vessel solved on successively finer O-grids; the wall
  fields of each level are compared with the finest level at the same wall points (interpolated in
  arc length and angle), and the differences must shrink with refinement.

``python datasets/coronary_synthetic/verify.py [poiseuille|refinement] [--json OUT]`` prints the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _generate_module() -> Any:
    from meshops.data import recipe_module

    return recipe_module(HERE, "generate")


#: Mesh levels of the refinement study (coarse -> fine); "production" is the dataset's setting.
LEVELS: dict[str, dict[str, Any]] = {
    "coarse": {"nc": 6, "nr": 4, "axial": 0.5, "grading": 0.7},
    "medium": {"nc": 8, "nr": 6, "axial": 0.35, "grading": 0.75},
    "production": {},  # MeshSettings() defaults: nc 12, nr 9, axial 0.25, grading 0.82
    "fine": {"nc": 16, "nr": 12, "axial": 0.18, "grading": 0.86},
}


def poiseuille_check(radius_mm: float = 1.5, length_mm: float = 30.0, Q_mL_s: float = 1.0,
                     mesh: dict[str, Any] | None = None, workdir: str | None = None) -> dict[str, float]:
    """Solve a straight pipe and compare with Hagen-Poiseuille.

    The pressure gradient is the least-squares slope of wall ``p`` over the middle 2/3 of the pipe
    (away from the end faces, where face-to-point averaging is one-sided); the WSS is the mean wall
    shear magnitude over the same region.
    """
    g = _generate_module()
    m = 40
    pts = np.stack([np.zeros(m), np.zeros(m), np.linspace(0.0, length_mm, m)], 1)
    v = g.vessel.vessel_from_centerline(pts, np.full(m, radius_mm), Q_mL_s, "poiseuille pipe")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        t0 = time.perf_counter()
        res = g.solve_vessel(v, Path(tmp) / "pipe", g.MeshSettings(**(mesh or {})), name="poiseuille")
        wall = time.perf_counter() - t0
    mu = g.vessel.MU
    r, Q = radius_mm * 1e-3, Q_mL_s * 1e-6
    dpdz_exact = 8 * mu * Q / (np.pi * r**4)
    wss_exact = 4 * mu * Q / (np.pi * r**3)
    z = res["wall_points"][:, 2]
    sel = (z > length_mm / 6) & (z < 5 * length_mm / 6)
    dpdz = -np.polyfit(z[sel] * 1e-3, res["p"][sel], 1)[0]
    wss = float(res["wss_mag"][sel].mean())
    wss_axial = float(res["wss"][sel, 2].mean())
    return {
        "dpdz_Pa_m": float(dpdz), "dpdz_exact_Pa_m": float(dpdz_exact), "dpdz_rel_err": float(dpdz / dpdz_exact - 1),
        "dp_Pa": float(dpdz * length_mm * 1e-3), "dp_exact_Pa": float(dpdz_exact * length_mm * 1e-3),
        "wss_Pa": wss, "wss_exact_Pa": float(wss_exact), "wss_rel_err": float(wss / wss_exact - 1),
        "wss_axial_Pa": wss_axial, "wss_spread": float(res["wss_mag"][sel].std() / wss),
        "cells": res["info"]["mesh"]["cells"], "iterations": res["info"]["solver"]["iterations"],
        "solver_s": res["info"]["solver"]["solver_wall_time_s"], "total_s": wall,
    }


def _wall_coords(res: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Arc length and angle (in the swept frame) of every wall point."""
    ns = len(res["cl_points"])
    nw = len(res["wall_points"]) // ns
    P = res["wall_points"].reshape(ns, nw, 3)
    d = P - res["cl_points"][:, None, :]
    N = res["cl_frames"][:, 1][:, None, :]
    B = res["cl_frames"][:, 2][:, None, :]
    th = np.arctan2((d * B).sum(-1), (d * N).sum(-1))
    return np.repeat(res["cl_s"], nw).reshape(ns, nw), th


def _interp_to(res: dict[str, Any], s_q: np.ndarray, th_q: np.ndarray, field: str) -> np.ndarray:
    """Bilinear interpolation of a wall field in (arc length, angle), periodic in angle."""
    S, TH = _wall_coords(res)
    ns, nw = S.shape
    F = res[field].reshape(ns, nw, -1)
    s = S[:, 0]
    # angles of section i are uniform: th_ij = th_i0 + 2 pi j / nw (up to wrap); use section 0's offset
    th0 = np.unwrap(TH[:, 0])
    i = np.clip(np.searchsorted(s, s_q) - 1, 0, ns - 2)
    ws = np.clip((s_q - s[i]) / (s[i + 1] - s[i]), 0, 1)
    out = 0
    for ii, wi in ((i, 1 - ws), (i + 1, ws)):
        a = np.mod(th_q - th0[ii], 2 * np.pi) / (2 * np.pi / nw)
        j = np.floor(a).astype(int) % nw
        wj = a - np.floor(a)
        out = out + wi[:, None] * ((1 - wj)[:, None] * F[ii, j] + wj[:, None] * F[ii, (j + 1) % nw])
    return out.reshape((len(s_q),) + res[field].shape[1:])


def refinement_study(seed: int = 3, levels: dict[str, dict[str, Any]] | None = None, n_stenoses: int = 2,
                     workdir: str | None = None) -> dict[str, Any]:
    """Solve one stenosed vessel at each mesh level; relative L2 differences to the finest level.

    Returns ``{"vessel": params, "levels": {name: {cells, iterations, solver_s, rel_l2_p, rel_l2_wss,
    rel_l2_wss_mag, dp_Pa, max_wss_Pa}}}``; ``dp_Pa`` is the mean inlet-ring pressure (outlet = 0).
    """
    g = _generate_module()
    levels = levels or LEVELS
    v = g.vessel.sample_vessel(seed, n_stenoses=n_stenoses)
    results = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for name, ms in levels.items():
            res = g.solve_vessel(v, Path(tmp) / name, g.MeshSettings(**ms), name=f"refine-{name}")
            results[name] = res
    ref_name = list(levels)[-1]
    ref = results[ref_name]
    s_q, th_q = _wall_coords(ref)
    s_q, th_q = s_q.ravel(), th_q.ravel()
    out: dict[str, Any] = {"vessel": {"seed": seed, "Q_mL_s": v.Q, "stenoses": v.params["stenoses"],
                                      "length_mm": v.params["length"], "r_in_mm": v.params["r_in"]},
                           "reference": ref_name, "levels": {}}
    ns_ref = len(ref["cl_points"])
    for name, res in results.items():
        ns = len(res["cl_points"])
        row = {"cells": res["info"]["mesh"]["cells"], "iterations": res["info"]["solver"]["iterations"],
               "solver_s": res["info"]["solver"]["solver_wall_time_s"],
               "dp_Pa": float(res["p"].reshape(ns, -1)[0].mean()),
               "max_wss_Pa": float(res["wss_mag"].max())}
        if name != ref_name:
            for f in ("p", "wss", "wss_mag"):
                a = _interp_to(res, s_q, th_q, f)
                b = ref[f]
                row[f"rel_l2_{f}"] = float(np.linalg.norm(a - b) / np.linalg.norm(b))
        out["levels"][name] = row
    out["levels"][ref_name]["dp_Pa"] = float(ref["p"].reshape(ns_ref, -1)[0].mean())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["poiseuille", "refinement", "all"], nargs="?", default="all")
    ap.add_argument("--json", help="write the numbers to this JSON file")
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args(argv)
    out: dict[str, Any] = {}
    if a.what in ("poiseuille", "all"):
        out["poiseuille"] = poiseuille_check()
        print(json.dumps(out["poiseuille"], indent=1))
    if a.what in ("refinement", "all"):
        out["refinement"] = refinement_study(a.seed)
        print(json.dumps(out["refinement"], indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
