"""Generator of the ``coronary-synthetic`` dataset: random vessels -> O-grid -> simpleFoam -> wall fields.

``meshops datasets generate coronary-synthetic --n N --workers W --out DIR [--seed S]`` calls
:func:`generate`. Each case ``case_NNNNN`` is written to ``DIR/case_NNNNN/``:

* ``wall.vtp``: the wall surface (quads) with point fields ``p`` (Pa, relative to the outlet),
  ``wss`` (3, Pa, the traction the blood exerts on the wall, pointing downstream) and ``wss_mag``,
  and the same fields as cell data (the OpenFOAM face values);
* ``centerline.vtp``: the mesh stations (polyline) with ``radius`` (mm), ``s`` (arc length, mm),
  ``tangent``, ``normal``, ``binormal`` (the rotation-minimizing frame the mesh was swept with);
* ``case.json``: parameters, mesh size, solver iterations, time and final residuals.

Lengths in the output files are in millimetres, ``Q`` in mL/s, pressure and WSS in Pa.
Cases are computed in ``DIR/.work/`` and renamed into place when complete, so a case folder exists
only if it finished; finished cases are skipped on a rerun; failures are appended to
``DIR/failures.jsonl`` with their reason and skipped on a rerun unless ``retry_failed=True``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("meshops.datasets.coronary_synthetic")

HERE = Path(__file__).resolve().parent


def _sibling(name: str) -> Any:
    """Import ``datasets/coronary_synthetic/<name>.py`` (the recipe folder is not a package)."""
    from meshops.data import recipe_module

    return recipe_module(HERE, name)


vessel = _sibling("vessel")
ogrid = _sibling("ogrid")
foamcase = _sibling("foamcase")

Vessel = vessel.Vessel
VesselError = vessel.VesselError
FoamError = foamcase.FoamError
SolverSettings = foamcase.SolverSettings


@dataclass
class MeshSettings:
    """O-grid resolution: ``4 nc`` wall faces around, ``nr`` ring cells, axial spacing ``axial * r``."""

    nc: int = 12
    nr: int = 9
    core: float = 0.55
    grading: float = 0.82
    axial: float = 0.25  # station spacing / local radius
    max_sections: int = 1000


def stations(v: Any, ms: MeshSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mesh stations along the centerline, spaced ``ms.axial * r(s)`` (finer in stenoses).

    Points are interpolated with a cubic spline in arc length (exact for the polylines of the
    generator, smooth for user centerlines), radii piecewise-cubic monotone (no overshoot).

    Shapes
    ------
    returns : points (ns, 3) mm, radius (ns,) mm, s (ns,) mm
    """
    from scipy.interpolate import CubicSpline, PchipInterpolator

    s = vessel.arc_length(v.points)
    L = float(s[-1])
    if len(s) >= 3:
        cs = CubicSpline(s, v.points, axis=0, bc_type="natural")
        rs = PchipInterpolator(s, v.radius)
    else:  # two points: a straight segment
        def cs(x: np.ndarray) -> np.ndarray:
            return v.points[0] + (x / L)[:, None] * (v.points[1] - v.points[0])

        def rs(x: np.ndarray) -> np.ndarray:
            return np.interp(x, s, v.radius)
    fine = np.linspace(0, L, 2001)
    dens = 1.0 / (ms.axial * rs(fine))  # sections per mm
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(fine))])
    ns = int(np.clip(np.ceil(cum[-1]), 4, ms.max_sections - 1)) + 1
    st = np.interp(np.linspace(0, cum[-1], ns), cum, fine)
    return np.asarray(cs(st)), np.asarray(rs(st)), st


def inlet_velocity(pm: Any, centre: np.ndarray, tangent: np.ndarray, radius: float, Q_m3s: float) -> np.ndarray:
    """Developed (Poiseuille) inlet profile, scaled so the discrete flux equals ``Q`` exactly.

    Shapes
    ------
    returns : (n_inlet_faces, 3) m/s
    """
    sl = pm.patch_slice("inlet")
    P = pm.points[pm.faces[sl]]  # (f, 4, 3) m
    c = P.mean(axis=1)
    a = 0.5 * np.linalg.norm(np.cross(P[:, 2] - P[:, 0], P[:, 3] - P[:, 1]), axis=1)
    rho = np.linalg.norm(np.cross(c - centre, tangent), axis=1) / radius
    prof = np.clip(1.0 - rho**2, 0.0, None)
    umag = prof * Q_m3s / float((prof * a).sum())
    return umag[:, None] * tangent[None, :]


def _face_to_point(n_points: int, quads: np.ndarray, area: np.ndarray, values: np.ndarray) -> np.ndarray:
    v = values.reshape(len(values), -1)
    acc = np.zeros((n_points, v.shape[1]))
    w = np.zeros(n_points)
    for k in range(4):
        np.add.at(acc, quads[:, k], v * area[:, None])
        np.add.at(w, quads[:, k], area)
    return (acc / w[:, None]).reshape((n_points,) + values.shape[1:])


def solve_vessel(v: Any, work: Path, ms: MeshSettings | None = None, ss: Any = None, name: str = "case",
                 timeout: float = 1800.0) -> dict[str, Any]:
    """Mesh and solve one vessel in ``work`` (created); return arrays and metadata.

    Returns a dict with ``wall_points`` (n, 3) mm, ``wall_quads`` (q, 4), point fields ``p`` (n,),
    ``wss`` (n, 3), ``wss_mag`` (n,), cell fields ``p_face``, ``wss_face``, centerline stations
    ``cl_points`` (ns, 3), ``cl_radius``, ``cl_s``, ``cl_frames`` (ns, 3, 3) and ``info``.
    """
    ms = ms or MeshSettings()
    ss = ss or SolverSettings()
    t_start = time.perf_counter()
    pts, rad, s = stations(v, ms)
    F = vessel.frames(pts)
    tpl = ogrid.disc_template(ms.nc, ms.nr, ms.core, ms.grading)
    tube = ogrid.sweep(pts, rad, F[:, 1], F[:, 2], tpl)
    pm = ogrid.to_polymesh(tube, scale=1e-3)
    work.mkdir(parents=True, exist_ok=True)
    ogrid.write_polymesh(pm, work)
    Qm3 = v.Q * 1e-6
    uin = inlet_velocity(pm, pts[0] * 1e-3, F[0, 0], rad[0] * 1e-3, Qm3)
    foamcase.write_case(work, vessel.NU, uin, ss)
    t_mesh = time.perf_counter() - t_start
    rr = foamcase.run_simplefoam(work, ss, timeout=timeout, name=name)
    n_cells = len(tube.hexes)
    p_int, _ = foamcase.read_field(rr.time_dir / "p", n_cells)
    U_int, _ = foamcase.read_field(rr.time_dir / "U", n_cells)
    _, wss_b = foamcase.read_field(rr.time_dir / "wallShearStress", n_cells)
    if "wall" not in wss_b:
        raise FoamError(f"{name}: wallShearStress has no values on patch 'wall'")
    if not (np.isfinite(p_int).all() and np.isfinite(U_int).all() and np.isfinite(wss_b["wall"]).all()):
        raise FoamError(f"{name}: non-finite values in the solution (diverged)")
    Umean_in = Qm3 / (np.pi * (rad[0] * 1e-3) ** 2)
    umax = float(np.linalg.norm(U_int, axis=1).max())
    umax_allowed = 4.0 * Umean_in * (rad[0] / rad.min()) ** 2 + 1e-12
    if umax > umax_allowed:
        raise FoamError(f"{name}: diverged: max |U| = {umax:.3g} m/s exceeds {umax_allowed:.3g} m/s "
                        "(4x the peak continuity velocity at the narrowest section)")
    # map OpenFOAM wall faces to the structured wall quads (section-major)
    wq = tube.wall_quads
    sl = pm.patch_slice("wall")
    of_faces = pm.faces[sl]
    key_of = {tuple(sorted(f)): i for i, f in enumerate(of_faces.tolist())}
    perm = np.array([key_of[tuple(sorted(q))] for q in wq.tolist()])
    own = pm.owner[sl][perm]
    p_face = RHO_ * p_int[own]  # zeroGradient wall: the face value is the owner cell value
    # OpenFOAM's wallShearStress is -n.(nu_eff dev(2 sym grad U)) with n out of the fluid: the
    # traction of the wall on the fluid. We store its negative: the blood's traction on the wall.
    wss_face = -RHO_ * wss_b["wall"][perm]
    # wall geometry: ids into the full point array -> compact wall point numbering
    W = tube.wall_grid
    wall_points = tube.points[W.ravel()]
    inv = np.full(len(tube.points), -1)
    inv[W.ravel()] = np.arange(W.size)
    quads = inv[wq]
    Pq = wall_points[quads]
    area = 0.5 * np.linalg.norm(np.cross(Pq[:, 2] - Pq[:, 0], Pq[:, 3] - Pq[:, 1]), axis=1)
    p_pt = _face_to_point(len(wall_points), quads, area, p_face)
    wss_pt = _face_to_point(len(wall_points), quads, area, wss_face)
    info = {
        "mesh": {"cells": int(n_cells), "points": int(len(tube.points)), "sections": int(tube.n_sections),
                 "wall_faces_around": int(4 * ms.nc), "ring_cells": int(ms.nr), "core_cells": int(ms.nc**2),
                 "wall_points": int(len(wall_points)), "wall_faces": int(len(quads)),
                 "settings": asdict(ms)},
        "solver": {"name": "simpleFoam (OpenFOAM v1912, SIMPLEC, laminar, steady)", "iterations": rr.iterations,
                   "converged": bool(rr.converged), "final_initial_residuals": rr.residuals,
                   "solver_wall_time_s": round(rr.wall_time_s, 3),
                   "solver_execution_time_s": rr.execution_time_s,
                   "meshing_time_s": round(t_mesh, 3),
                   "settings": {k: v for k, v in asdict(ss).items() if k != "extra"}},
        "flow": {"Q_mL_s": float(v.Q), "mean_inlet_velocity_m_s": float(Umean_in),
                 "Re_inlet": float(2 * RHO_ * Qm3 / (np.pi * vessel.MU * rad[0] * 1e-3)),
                 "Re_max": float(2 * RHO_ * Qm3 / (np.pi * vessel.MU * rad.min() * 1e-3)),
                 "max_velocity_m_s": umax, "inlet_profile": "parabolic (Poiseuille), flux-exact",
                 "mu_Pa_s": vessel.MU, "rho_kg_m3": vessel.RHO},
    }
    return {"wall_points": wall_points, "wall_quads": quads, "p": p_pt, "wss": wss_pt,
            "wss_mag": np.linalg.norm(wss_pt, axis=1), "p_face": p_face, "wss_face": wss_face,
            "cl_points": pts, "cl_radius": rad, "cl_s": s, "cl_frames": F, "info": info}


RHO_ = vessel.RHO


def write_outputs(res: dict[str, Any], folder: Path, card: dict[str, Any]) -> None:
    """Write ``wall.vtp``, ``centerline.vtp`` (float32 fields, via :func:`meshops.io.write`) and ``case.json``."""
    from meshops.io import write
    from meshops.mesh import CellBlock, Mesh

    folder.mkdir(parents=True, exist_ok=True)
    f32 = np.float32
    wall = Mesh(
        res["wall_points"], [CellBlock("quad", res["wall_quads"])],
        point_data={"p": res["p"].astype(f32), "wss": res["wss"].astype(f32), "wss_mag": res["wss_mag"].astype(f32)},
        cell_data={"p": res["p_face"].astype(f32), "wss": res["wss_face"].astype(f32),
                   "wss_mag": np.linalg.norm(res["wss_face"], axis=1).astype(f32)},
    )
    write(wall, folder / "wall.vtp")
    ns = len(res["cl_points"])
    cl = Mesh(res["cl_points"], [CellBlock("line", np.stack([np.arange(ns - 1), np.arange(1, ns)], 1))],
              point_data={"radius": res["cl_radius"].astype(f32), "s": res["cl_s"].astype(f32),
                          **{k: res["cl_frames"][:, j].astype(f32)
                             for j, k in enumerate(("tangent", "normal", "binormal"))}})
    write(cl, folder / "centerline.vtp")
    tmp = folder / "case.json.tmp"
    tmp.write_text(json.dumps(card, indent=1, default=float))
    os.replace(tmp, folder / "case.json")


def case_seed(seed: int, i: int) -> int:
    """The vessel seed of case ``i`` for dataset seed ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(i)]).generate_state(1)[0])


def run_case(i: int, out: Path, seed: int, ms: MeshSettings, ss: Any, keep_work: bool = False,
             n_stenoses: int | None = None) -> dict[str, Any]:
    """Generate, solve and save case ``i``; raises on failure (the caller logs it)."""
    name = f"case_{i:05d}"
    vseed = case_seed(seed, i)
    v = vessel.sample_vessel(vseed, n_stenoses=n_stenoses)
    work = out / ".work" / f"{name}.{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    try:
        t0 = time.perf_counter()
        res = solve_vessel(v, work / "foam", ms, ss, name=name)
        card = {"name": name, "index": i, "dataset_seed": seed, "vessel_seed": vseed,
                "units": {"length": "mm", "Q": "mL/s", "p": "Pa (relative to the outlet)", "wss": "Pa"},
                "params": v.params, "Q_mL_s": float(v.Q),
                "stenoses": v.params.get("stenoses", []),
                **res["info"], "total_time_s": None}
        stage = work / "out"
        card["total_time_s"] = round(time.perf_counter() - t0, 3)
        write_outputs(res, stage, card)
        final = out / name
        if final.exists():  # another worker finished it meanwhile
            shutil.rmtree(stage)
        else:
            os.rename(stage, final)
        return {"name": name, "cells": res["info"]["mesh"]["cells"],
                "solver_s": res["info"]["solver"]["solver_wall_time_s"],
                "iterations": res["info"]["solver"]["iterations"]}
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)


def _worker(i: int, out: str, seed: int, ms: dict[str, Any], ss: dict[str, Any], n_stenoses: int | None) -> dict[str, Any]:
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        return {"ok": True, **run_case(i, Path(out), seed, MeshSettings(**ms), SolverSettings(**ss),
                                       n_stenoses=n_stenoses)}
    except (VesselError, FoamError, ValueError) as e:
        return {"ok": False, "name": f"case_{i:05d}", "index": i, "reason": str(e)}
    except Exception as e:  # noqa: BLE001 - a failed case must not stop the others
        return {"ok": False, "name": f"case_{i:05d}", "index": i,
                "reason": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}


def record_failure(out: Path, r: dict[str, Any], config: Any) -> None:
    """Append a failed case (name, index, reason, generator config, time) to ``out/failures.jsonl``."""
    with open(out / "failures.jsonl", "a") as fh:
        fh.write(json.dumps({"name": r["name"], "index": r["index"], "reason": r["reason"], "config": config,
                             "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


def recorded_failures(out: Path, config: str) -> dict[str, str]:
    """Recorded failures made with this ``config`` fingerprint (others are retried: the
    configuration changed, so a failure for a configuration reason may not repeat)."""
    f = out / "failures.jsonl"
    if not f.is_file():
        return {}
    d = {}
    for line in f.read_text().splitlines():
        try:
            r = json.loads(line)
            if r.get("config") == config:
                d[r["name"]] = r["reason"]
        except (ValueError, KeyError, AttributeError):
            continue
    return d


def _fingerprint(seed: int, ms: dict[str, Any], ss: dict[str, Any], n_stenoses: int | None) -> str:
    import hashlib

    text = json.dumps({"seed": seed, "mesh": ms, "solver": ss, "n_stenoses": n_stenoses}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def generate(out: str | os.PathLike[str], n: int, workers: int = 1, seed: int = 0, *, start: int = 0,
             retry_failed: bool = False, progress: bool = True, mesh: dict[str, Any] | None = None,
             solver: dict[str, Any] | None = None, n_stenoses: int | None = None) -> dict[str, Any]:
    """Generate cases ``start .. start + n - 1`` into ``out`` with ``workers`` processes.

    Each OpenFOAM run is single-core. Finished cases (``out/<name>/case.json``) are skipped, as are
    recorded failures of the same configuration (seed, mesh, solver settings) unless ``retry_failed``;
    a failure recorded under another configuration is retried. Returns counts: ``done``,
    ``skipped``, ``failed``, ``skipped_failed``.
    """
    from tqdm import tqdm

    if not foamcase.openfoam_available():
        raise RuntimeError("OpenFOAM's simpleFoam is not on PATH (Debian: apt install openfoam; "
                           f"expected {foamcase.FOAM_ROOT}/etc)")
    if n < 0 or workers < 1:
        raise ValueError(f"generate: need n >= 0 and workers >= 1, got n={n}, workers={workers}")
    outp = Path(out)
    outp.mkdir(parents=True, exist_ok=True)
    ms = asdict(MeshSettings(**(mesh or {})))
    ss = asdict(SolverSettings(**(solver or {})))
    config = _fingerprint(seed, ms, ss, n_stenoses)
    failed = {} if retry_failed else recorded_failures(outp, config)
    finished = [i for i in range(start, start + n) if (outp / f"case_{i:05d}" / "case.json").is_file()]
    todo = [i for i in range(start, start + n) if i not in finished and f"case_{i:05d}" not in failed]
    skipped = n - len(todo)
    stats = {"done": 0, "skipped": skipped, "failed": 0, "skipped_failed": skipped - len(finished),
             "solver_s": [], "cells": []}
    bar = tqdm(total=len(todo), desc="coronary-synthetic", unit="case", disable=not progress)

    def record(r: dict[str, Any]) -> None:
        if r["ok"]:
            stats["done"] += 1
            stats["solver_s"].append(r["solver_s"])
            stats["cells"].append(r["cells"])
            bar.set_postfix_str(f"{r['name']} {r['cells']} cells {r['solver_s']:.1f}s")
        else:
            stats["failed"] += 1
            log.warning("%s failed: %s", r["name"], r["reason"])
            record_failure(outp, r, config)
        bar.update(1)

    if workers == 1:
        for i in todo:
            record(_worker(i, str(outp), seed, ms, ss, n_stenoses))
    else:
        ctx = mp.get_context("fork")  # the recipe modules are loaded by path: children inherit them
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            futs = [ex.submit(_worker, i, str(outp), seed, ms, ss, n_stenoses) for i in todo]
            for f in as_completed(futs):
                record(f.result())
    bar.close()
    work = outp / ".work"
    if work.is_dir() and not any(work.iterdir()):
        work.rmdir()
    sv = stats.pop("solver_s")
    cells = stats.pop("cells")
    if sv:
        stats["solver_s_median"] = float(np.median(sv))
        stats["cells_median"] = int(np.median(cells))
    log.info("coronary-synthetic: %s", stats)
    return stats
