"""One steady laminar simpleFoam run on a vessel tree, and its wall fields.

Boundary conditions (SI inside the case):

* inlet (root start): a developed parabolic profile along the inlet tangent, written per face,
  scaled so the discrete flux is exactly ``Q``;
* outlets: the Murray-law split of :func:`meshops.cfd.tree.flow_split`. Every outlet but one has
  ``flowRateOutletVelocity`` (its Murray flow, velocity profile extrapolated from the interior)
  with a zero-gradient pressure; the outlet with the largest flow is the pressure reference
  (``p = 0``, ``inletOutlet`` velocity) and takes what continuity leaves;
* wall: no slip.

Wall pressure is reported relative to the reference outlet, in Pa (kinematic p times rho). WSS is
the blood's traction on the wall (the negative of OpenFOAM's ``wallShearStress``) times rho.
A run that crashes, produces NaN, stops without meeting ``residualControl`` (when
``require_converged``), or whose velocity exceeds 4x the peak continuity velocity is a
:class:`~meshops.cfd.foam.FoamError`.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from meshops.cfd.foam import (
    FoamError,
    SolverSettings,
    read_field,
    read_polymesh,
    run_simplefoam,
    write_flow_fields,
    write_system,
)
from meshops.cfd.tree import Tree, flow_split
from meshops.cfd.tree_mesh import TreeMeshSettings, mesh_tree

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_SOLVER", "MU", "RHO", "solve_tree"]

#: simpleFoam controls of tree runs: residualControl on the initial residuals (p 1e-4, U 1e-5) and
#: central convection: on these meshes (not aligned with the flow) the upwind-biased schemes add a
#: cross-stream numerical viscosity that blunts the profile (straight pipe at Re 120: pressure
#: gradient +96 % with upwind, +27 % with linearUpwind, -4 % with central differencing).
DEFAULT_SOLVER = {"max_iter": 1000, "tol_p": 1e-4, "tol_U": 1e-5, "div_scheme": "Gauss linear"}

RETRY_RELAX_U = 0.6  # U relaxation of the one retry after a divergence

MU = 0.0035  # Pa s
RHO = 1060.0  # kg/m^3


def _face_geometry(pm: dict[str, Any], start: int, count: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Polygon faces of a patch: vertex id arrays, centroids (f, 3) and area vectors (f, 3)."""
    faces = [np.asarray(f) for f in pm["faces"][start:start + count]]
    P = pm["points"]
    cen, S = np.zeros((count, 3)), np.zeros((count, 3))
    for k, f in enumerate(faces):
        v = P[f]
        c0 = v.mean(0)
        tri = 0.5 * np.cross(v - c0, np.roll(v, -1, axis=0) - c0)  # fan around the vertex mean
        a = np.linalg.norm(tri, axis=1)
        tc = (v + np.roll(v, -1, axis=0) + c0) / 3.0
        cen[k] = (tc * a[:, None]).sum(0) / max(a.sum(), 1e-300)
        S[k] = tri.sum(0)
    return faces, cen, S


def _triangulate(faces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Fan triangles of polygon faces and the face each triangle comes from."""
    tris, src = [], []
    for k, f in enumerate(faces):
        for a in range(1, len(f) - 1):
            tris.append((f[0], f[a], f[a + 1]))
            src.append(k)
    return np.asarray(tris, dtype=np.int64), np.asarray(src, dtype=np.int64)


def _inlet_velocity(pm: dict[str, Any], tree: Tree, Q_m3s: float, unit_m: float) -> np.ndarray:
    F, c, S = _face_geometry(pm, *pm["patches"]["inlet"])
    p0, r0 = tree.points[0][0] * unit_m, float(tree.radius[0][0]) * unit_m
    t = tree.points[0][min(2, len(tree.points[0]) - 1)] - tree.points[0][0]
    t = t / np.linalg.norm(t)
    rho = np.linalg.norm(np.cross(c - p0, t), axis=1) / r0
    prof = np.clip(1.0 - rho**2, 0.0, None)
    flux = float((prof * (S @ -t)).sum())  # area vectors point out of the domain, i.e. along -t
    return (prof * Q_m3s / flux)[:, None] * t[None, :]


def _face_to_point(n: int, tris: np.ndarray, area: np.ndarray, values: np.ndarray) -> np.ndarray:
    v = values.reshape(len(values), -1)
    acc = np.zeros((n, v.shape[1]))
    w = np.zeros(n)
    for k in range(3):
        np.add.at(acc, tris[:, k], v * area[:, None])
        np.add.at(w, tris[:, k], area)
    return (acc / w[:, None]).reshape((n,) + values.shape[1:])


def _patch_stats(pm: dict[str, Any], name: str, p_cell: np.ndarray, phi_b: dict[str, np.ndarray]) -> dict[str, float]:
    start, count = pm["patches"][name]
    _, _, S = _face_geometry(pm, start, count)
    a = np.linalg.norm(S, axis=1)
    own = pm["owner"][start:start + count]
    flux = float(phi_b[name].sum()) if name in phi_b else float("nan")
    return {"flow_mL_s": flux * 1e6, "p_mean_Pa": float(RHO * (p_cell[own] * a).sum() / a.sum()),
            "area_mm2": float(a.sum() * 1e6)}


def solve_tree(tree: Tree, Q: float, case: Path, ms: TreeMeshSettings | None = None, ss: SolverSettings | None = None,
               where: str = "tree", unit_m: float = 1e-3, require_converged: bool = True,
               timeout: float = 1800.0) -> dict[str, Any]:
    """Mesh and solve ``tree`` (lengths in ``unit_m`` metres, ``Q`` in mL/s) in the new folder ``case``.

    Returns ``wall_points`` (n, 3) in the tree's units, ``wall_tris`` (t, 3), point fields ``p`` (Pa),
    ``wss`` (n, 3) Pa, ``wss_mag``, face fields ``p_face``, ``wss_face``, ``outlets`` (per outlet:
    target and computed flow, mean pressure), ``mass_balance`` and ``info`` (mesh, solver, flow).
    """
    ss = ss or SolverSettings(**DEFAULT_SOLVER)
    t0 = time.perf_counter()
    case.mkdir(parents=True, exist_ok=True)
    write_system(case, MU / RHO, ss, non_orthogonal_correctors=1, laplacian="Gauss linear limited corrected 0.5",
                 sn_grad="limited corrected 0.5")
    mesh_info = mesh_tree(tree, case, ms, where, unit_m)
    pm = read_polymesh(case)
    outflow, inflow = flow_split(tree, Q)
    ref = max(outflow, key=outflow.get)
    outlets = {f"outlet_{b}": (None if b == ref else q * 1e-6) for b, q in outflow.items()}
    write_flow_fields(case, _inlet_velocity(pm, tree, Q * 1e-6, unit_m), outlets)
    t_prep = time.perf_counter() - t0
    try:
        rr = run_simplefoam(case, ss, timeout=timeout, name=where)
    except FoamError as e:  # central convection can blow up early in strong jets: once more, gentler
        blew_up = "floating point exception" in str(e) or "NaN residuals" in str(e)
        if not blew_up or ss.relax_U <= RETRY_RELAX_U:
            raise
        log.info("%s: %s; retrying with U relaxation %g", where, e, RETRY_RELAX_U)
        ss = replace(ss, relax_U=RETRY_RELAX_U)
        write_system(case, MU / RHO, ss, non_orthogonal_correctors=1, laplacian="Gauss linear limited corrected 0.5",
                     sn_grad="limited corrected 0.5")
        for d in case.iterdir():
            if d.is_dir() and d.name not in ("0", "constant", "system") and d.name.replace(".", "").isdigit():
                shutil.rmtree(d)
        rr = run_simplefoam(case, ss, timeout=timeout, name=where)
    if require_converged and not rr.converged:
        raise FoamError(f"{where}: simpleFoam did not converge in {rr.iterations} iterations "
                        f"(initial residuals {rr.residuals}; residualControl p {ss.tol_p:g}, U {ss.tol_U:g})")
    return _collect(tree, Q, pm, rr, outflow, inflow, ref, mesh_info, t_prep, where, unit_m, ss)


def _collect(tree: Tree, Q: float, pm: dict[str, Any], rr: Any, outflow: dict[int, float], inflow: dict[int, float],
             ref: int, mesh_info: dict[str, Any], t_prep: float, where: str, unit_m: float,
             ss: SolverSettings) -> dict[str, Any]:
    from dataclasses import asdict

    nc = pm["n_cells"]
    p_int, _ = read_field(rr.time_dir / "p", nc)
    U_int, _ = read_field(rr.time_dir / "U", nc)
    _, wss_b = read_field(rr.time_dir / "wallShearStress", nc)
    _, phi_b = read_field(rr.time_dir / "phi", nc)
    if "wall" not in wss_b or not (np.isfinite(p_int).all() and np.isfinite(U_int).all()
                                   and np.isfinite(wss_b["wall"]).all()):
        raise FoamError(f"{where}: non-finite values or no wall shear stress in the solution (diverged)")
    rmin = min(float(r.min()) for r in tree.radius) * unit_m
    umax = float(np.linalg.norm(U_int, axis=1).max())
    allowed = 4.0 * 2.0 * Q * 1e-6 / (np.pi * rmin**2)
    if umax > allowed:
        raise FoamError(f"{where}: diverged: max |U| = {umax:.3g} m/s exceeds {allowed:.3g} m/s")
    start, count = pm["patches"]["wall"]
    F, _, _ = _face_geometry(pm, start, count)
    tri_g, src = _triangulate(F)
    used, tris = np.unique(tri_g, return_inverse=True)
    tris = tris.reshape(-1, 3)
    X = pm["points"][used]
    area = 0.5 * np.linalg.norm(np.cross(X[tris[:, 1]] - X[tris[:, 0]], X[tris[:, 2]] - X[tris[:, 0]]), axis=1)
    p_face = RHO * p_int[pm["owner"][start:start + count]][src]  # per wall triangle (its polygon's value)
    wss_face = -RHO * wss_b["wall"][src]
    p_pt = _face_to_point(len(used), tris, area, p_face)
    wss_pt = _face_to_point(len(used), tris, area, wss_face)
    inlet = _patch_stats(pm, "inlet", p_int, phi_b)
    outs = {}
    for b, q in outflow.items():
        st = _patch_stats(pm, f"outlet_{b}", p_int, phi_b)
        outs[str(b)] = {"target_flow_mL_s": q, "flow_mL_s": st["flow_mL_s"], "p_mean_Pa": st["p_mean_Pa"],
                        "reference": b == ref, "radius": float(tree.radius[b][-1])}
    q_in = -inlet["flow_mL_s"]
    q_out = sum(o["flow_mL_s"] for o in outs.values())
    mb = {"inflow_mL_s": q_in, "outflow_mL_s": q_out, "imbalance_rel": abs(q_out - q_in) / q_in,
          "max_outlet_split_error_rel": max(abs(o["flow_mL_s"] - o["target_flow_mL_s"]) / o["target_flow_mL_s"]
                                            for o in outs.values())}
    r_in = float(tree.radius[0][0]) * unit_m
    info = {"mesh": {**mesh_info, "cells": nc, "wall_points": int(len(used)), "wall_faces": int(count)},
            "solver": {"name": "simpleFoam (OpenFOAM v1912, SIMPLEC, laminar, steady)", "iterations": rr.iterations,
                       "converged": bool(rr.converged), "final_initial_residuals": rr.residuals,
                       "solver_wall_time_s": round(rr.wall_time_s, 3), "solver_execution_time_s": rr.execution_time_s,
                       "preparation_time_s": round(t_prep, 3),
                       "settings": {k: v for k, v in asdict(ss).items() if k != "extra"}},
            "flow": {"Q_mL_s": float(Q), "Re_inlet": float(2 * RHO * Q * 1e-6 / (np.pi * MU * r_in)),
                     "max_velocity_m_s": umax, "inlet_profile": "parabolic (Poiseuille), flux-exact",
                     "outlet_condition": "Murray-law flow split (flowRateOutletVelocity), reference outlet p = 0",
                     "reference_outlet": int(ref), "inlet_p_mean_Pa": inlet["p_mean_Pa"],
                     "branch_inflow_mL_s": {str(k): v for k, v in inflow.items()}, "mu_Pa_s": MU, "rho_kg_m3": RHO}}
    return {"wall_points": pm["points"][used] / unit_m, "wall_tris": tris, "p": p_pt, "wss": wss_pt,
            "wss_mag": np.linalg.norm(wss_pt, axis=1), "p_face": p_face, "wss_face": wss_face,
            "outlets": outs, "mass_balance": mb, "info": info}
