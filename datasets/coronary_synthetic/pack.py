"""Pack a generated coronary-synthetic folder into the compact shipped file.

``python datasets/coronary_synthetic/pack.py GEN_DIR [--out data/coronary_synthetic.npz]
[--section-stride 2] [--angle-stride 2]`` keeps, for every finished case, the wall fields at a
structured subset of the CFD wall points (every ``section-stride``-th mesh station, every
``angle-stride``-th point around; values exactly as computed, no interpolation) in float16, and the
geometry needed to rebuild those wall points exactly: the station centres, radii and frame normals
(float32) and the wall angles. :mod:`dataset` rebuilds the wall quads, the fields and the centerline.

Layout of the npz (C cases, S stations in total, P wall points in total):

* ``names`` (C,) str, ``Q`` (C,) float32 mL/s, ``split`` (C,) int8 (0 train, 1 val, 2 test)
* ``sec_ptr`` (C+1,) int64 into the station arrays, ``n_around`` (C,) int32
* ``cl_points`` (S, 3) float32 mm, ``cl_radius`` (S,) float32 mm, ``cl_normal``, ``cl_binormal`` (S, 3) float32,
  ``cl_s`` (S,) float32 arc length (mm) of the station along the full centerline
* ``pt_ptr`` (C+1,) int64 into the point arrays, ``theta`` (C, n_around_max) float32 wall angles
* ``p`` (P,) float16 Pa, ``wss`` (P, 3) float16 Pa
* ``cards`` a JSON string: per-case parameters, mesh size, solver iterations, time, residuals.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("meshops.datasets.coronary_synthetic.pack")

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "data" / "coronary_synthetic.npz"
SPLITS = {"train": 0, "val": 1, "test": 2}


def split_of(name: str, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> int:
    """Deterministic split of a case name (crc32 hash): 0 train, 1 val, 2 test."""
    u = (zlib.crc32(name.encode()) % 10000) / 10000.0
    return 0 if u < fractions[0] else (1 if u < fractions[0] + fractions[1] else 2)


def _read_vtp(path: Path) -> Any:
    from meshops.io import read

    return read(path)


def pack_case(folder: Path, section_stride: int, angle_stride: int) -> dict[str, Any]:
    """Read one generated case and subsample its wall (see the module docstring)."""
    card = json.loads((folder / "case.json").read_text())
    wall = _read_vtp(folder / "wall.vtp")
    cl = _read_vtp(folder / "centerline.vtp")
    ns = len(cl.points)
    nw = len(wall.points) // ns
    if nw * ns != len(wall.points):
        raise ValueError(f"{folder}/wall.vtp: {len(wall.points)} points is not {ns} stations x n around")
    isec = np.arange(0, ns, section_stride)
    if isec[-1] != ns - 1:
        isec = np.append(isec, ns - 1)  # keep the outlet section
    if nw % angle_stride:
        raise ValueError(f"{folder}: {nw} points around is not divisible by angle stride {angle_stride}")
    jang = np.arange(0, nw, angle_stride)
    P = np.asarray(wall.points, dtype=np.float64).reshape(ns, nw, 3)
    c = np.asarray(cl.points, dtype=np.float64)
    N = np.asarray(cl.point_data["normal"], dtype=np.float64)
    B = np.asarray(cl.point_data["binormal"], dtype=np.float64)
    d = P[isec][:, jang] - c[isec, None, :]
    theta = np.arctan2((d * B[isec, None]).sum(-1), (d * N[isec, None]).sum(-1))
    th = np.mod(theta[0], 2 * np.pi)
    dev = np.abs(np.mod(theta - th[None] + np.pi, 2 * np.pi) - np.pi).max()
    if dev > 1e-3:
        raise ValueError(f"{folder}: wall angles differ between stations by {dev:.2e} rad; not a swept O-grid wall")
    pdat = np.asarray(wall.point_data["p"]).reshape(ns, nw)[isec][:, jang]
    wss = np.asarray(wall.point_data["wss"]).reshape(ns, nw, 3)[isec][:, jang]
    return {
        "name": card["name"], "Q": float(card["Q_mL_s"]), "card": card,
        "cl_points": c[isec], "cl_radius": np.asarray(cl.point_data["radius"])[isec],
        "cl_normal": N[isec], "cl_binormal": B[isec], "cl_s": np.asarray(cl.point_data["s"])[isec], "theta": th,
        "p": pdat.reshape(-1), "wss": wss.reshape(-1, 3),
    }


def _slim_card(card: dict[str, Any]) -> dict[str, Any]:
    keep = {"name", "index", "vessel_seed", "Q_mL_s", "stenoses", "mesh", "solver", "flow", "params", "total_time_s"}
    out = {k: v for k, v in card.items() if k in keep}
    if "mesh" in out:
        out["mesh"] = {k: v for k, v in out["mesh"].items() if k != "settings"}
    if "solver" in out:
        out["solver"] = {k: v for k, v in out["solver"].items() if k not in ("settings", "name")}
    if "params" in out:
        out["params"] = {k: v for k, v in out["params"].items() if k not in ("kappa_modes", "tau_modes", "stenoses")}
    return out


def pack(gen_dir: str | os.PathLike[str], out: str | os.PathLike[str] = DEFAULT_OUT, section_stride: int = 2,
         angle_stride: int = 2, converged_only: bool = False) -> dict[str, Any]:
    """Pack every finished case of ``gen_dir`` into ``out`` (atomic write). Returns a summary."""
    gen = Path(gen_dir)
    folders = sorted(d for d in gen.glob("case_*") if (d / "case.json").is_file())
    if not folders:
        raise FileNotFoundError(f"{gen}: no finished cases (case_*/case.json)")
    cases = []
    for f in folders:
        c = pack_case(f, section_stride, angle_stride)
        if converged_only and not c["card"]["solver"]["converged"]:
            continue
        cases.append(c)
    C = len(cases)
    nmax = max(len(c["theta"]) for c in cases)
    theta = np.full((C, nmax), np.nan, dtype=np.float32)
    for i, c in enumerate(cases):
        theta[i, : len(c["theta"])] = c["theta"]
    sec_ptr = np.concatenate([[0], np.cumsum([len(c["cl_radius"]) for c in cases])]).astype(np.int64)
    pt_ptr = np.concatenate([[0], np.cumsum([len(c["p"]) for c in cases])]).astype(np.int64)
    arrays = {
        "names": np.array([c["name"] for c in cases]),
        "Q": np.array([c["Q"] for c in cases], dtype=np.float32),
        "split": np.array([split_of(c["name"]) for c in cases], dtype=np.int8),
        "sec_ptr": sec_ptr,
        "n_around": np.array([len(c["theta"]) for c in cases], dtype=np.int32),
        "cl_points": np.concatenate([c["cl_points"] for c in cases]).astype(np.float32),
        "cl_radius": np.concatenate([c["cl_radius"] for c in cases]).astype(np.float32),
        "cl_normal": np.concatenate([c["cl_normal"] for c in cases]).astype(np.float32),
        "cl_binormal": np.concatenate([c["cl_binormal"] for c in cases]).astype(np.float32),
        "cl_s": np.concatenate([c["cl_s"] for c in cases]).astype(np.float32),
        "pt_ptr": pt_ptr,
        "theta": theta,
        "p": np.concatenate([c["p"] for c in cases]).astype(np.float16),
        "wss": np.concatenate([c["wss"] for c in cases]).astype(np.float16),
        "cards": np.array(json.dumps([_slim_card(c["card"]) for c in cases], separators=(",", ":"))),
        "format_version": np.array(1),
        "strides": np.array([section_stride, angle_stride]),
    }
    if np.abs(np.concatenate([c["p"] for c in cases])).max() > 6e4:
        raise ValueError(f"{gen}: |p| exceeds the float16 range; refusing to pack")
    outp = save_npz_atomic(arrays, out)
    summary = {"cases": C, "points": int(pt_ptr[-1]), "stations": int(sec_ptr[-1]),
               "bytes": outp.stat().st_size, "split_counts": np.bincount(arrays["split"], minlength=3).tolist()}
    log.info("packed %s", summary)
    return summary


def save_npz_atomic(arrays: dict[str, np.ndarray], out: str | os.PathLike[str]) -> Path:
    """``np.savez_compressed`` to a temporary name beside ``out``, then renamed (never a partial pack)."""
    outp = Path(out)
    outp.parent.mkdir(parents=True, exist_ok=True)
    tmp = outp.with_name(outp.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, outp)
    return outp


def generated_cards(gen: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The cards of a generated folder's finished cases (name order) and its logged failures."""
    cards = [json.loads((d / "case.json").read_text()) for d in sorted(gen.glob("case_*")) if (d / "case.json").is_file()]
    log_file = gen / "failures.jsonl"
    fails = [json.loads(ln) for ln in log_file.read_text().splitlines()] if log_file.is_file() else []
    return cards, fails


def quantiles(vals: list[float]) -> dict[str, float]:
    """min / median / max, for the card's statistics tables."""
    a = np.asarray(vals, dtype=float)
    return {"min": float(a.min()), "median": float(np.median(a)), "max": float(a.max())}


def summarize(gen_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Statistics of a generated folder for the dataset card (mesh sizes, solver times, flow ranges)."""
    cards, fails = generated_cards(Path(gen_dir))
    if not cards:
        return {"cases": 0, "failed": len(fails)}
    q = quantiles
    nst = [len(c["stenoses"]) for c in cards]
    return {
        "cases": len(cards), "failed": len(fails),
        "failure_reasons": sorted({f["reason"].split(":")[1].strip()[:60] if ":" in f["reason"] else f["reason"][:60] for f in fails}),
        "converged": int(sum(c["solver"]["converged"] for c in cards)),
        "cells": q([c["mesh"]["cells"] for c in cards]),
        "wall_points": q([c["mesh"]["wall_points"] for c in cards]),
        "iterations": q([c["solver"]["iterations"] for c in cards]),
        "solver_cpu_s": q([c["solver"]["solver_execution_time_s"] for c in cards]),
        "solver_wall_s": q([c["solver"]["solver_wall_time_s"] for c in cards]),
        "case_total_wall_s": q([c["total_time_s"] for c in cards]),
        "Q_mL_s": q([c["Q_mL_s"] for c in cards]),
        "Re_inlet": q([c["flow"]["Re_inlet"] for c in cards]),
        "Re_max": q([c["flow"]["Re_max"] for c in cards]),
        "max_residual": q([max(c["solver"]["final_initial_residuals"].values()) for c in cards]),
        "stenoses_per_case": {str(k): int(nst.count(k)) for k in sorted(set(nst))},
        "area_reduction": q([s["area_reduction"] for c in cards for s in c["stenoses"]] or [0.0]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="pack a generated coronary-synthetic folder into the shipped npz")
    ap.add_argument("gen_dir")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--section-stride", type=int, default=2)
    ap.add_argument("--angle-stride", type=int, default=2)
    ap.add_argument("--converged-only", action="store_true")
    ap.add_argument("--stats", action="store_true", help="only print the folder's statistics (for the card)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if a.stats:
        print(json.dumps(summarize(a.gen_dir), indent=1))
        return 0
    print(json.dumps(pack(a.gen_dir, a.out, a.section_stride, a.angle_stride, a.converged_only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
