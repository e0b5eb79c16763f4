"""Random coronary-like trees: a main vessel with side branches (and branches of branches).

Lengths in mm, flow in mL/s. :func:`sample_tree` draws one :class:`meshops.cfd.tree.Tree` from
:data:`RANGES` (deterministic in the seed, redrawn until the tubes clear each other):

* the main vessel and every branch are smooth space curves (the single-vessel generator's
  Frenet-Serret draw, :func:`coronary_synthetic.vessel.centerline_from_params`, rotated to the
  branch's start direction);
* at a junction a daughter takes the flow fraction ``phi`` of the parent: Murray's law
  ``r_p^3 = r_cont^3 + r_d^3`` gives ``r_d = r_p phi^(1/3)`` and the continuing parent
  ``r_p (1 - phi)^(1/3)`` (a smooth step over ~2 r); each branch also tapers linearly;
* branching angle ``alpha`` from the parent tangent, azimuth uniform around it;
* 0-3 stenoses (cosine shape, area reduction ``a``: radius factor ``sqrt(1 - a)``), on any branch,
  part of them centred at a bifurcation of the main vessel or at a daughter's ostium.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from meshops.cfd.tree import Tree, TreeError, clearance, validate_tree
from meshops.data import recipe_module
from meshops.geometry.polyline import arc_length, rotation_minimizing_frames

vessel = recipe_module(Path(__file__).resolve().parents[1] / "coronary_synthetic", "vessel")

#: Parameter ranges of the tree dataset (mm, mL/s, degrees).
RANGES: dict[str, tuple[float, float]] = {
    "main_length": (30.0, 50.0),
    "r_in": (1.5, 2.0),
    "taper": (0.0, 0.15),  # linear taper within a branch (on top of the Murray steps)
    "n_side": (2, 6),  # side branches of the main vessel
    "side_length": (10.0, 20.0),
    "sub_length": (6.0, 12.0),
    "phi_side": (0.15, 0.4),  # flow fraction a side branch takes at its junction
    "phi_sub": (0.2, 0.45),
    "angle": (35.0, 75.0),
    "kappa": (0.0, 0.06),  # branch curvature (1/mm); the main vessel uses the single-vessel range
    "n_stenoses": (0, 3),
    "stenosis_area_reduction": (0.2, 0.7),
    "stenosis_length": (3.0, 8.0),
    "Q": (0.5, 2.5),
    "min_radius": (0.5, 0.5),
}
P_SUB = 0.35  # probability that a side branch has a branch of its own
MAX_BRANCHES = 8
MIN_CLEARANCE = 1.25


def _curve(rng: np.random.Generator, length: float, kmax: float, n: int) -> np.ndarray:
    """A smooth curve from the origin heading +z (local frame: N = x, B = y)."""
    p = vessel.VesselParams(length=length, r_in=1.0, r_out=1.0,
                            kappa_modes=[[float(0.5 * kmax * rng.uniform(-1, 1) / (k + 1)),
                                          float(2 * np.pi * rng.uniform(0.5, 2 + k) / length),
                                          float(rng.uniform(0, 2 * np.pi))] for k in range(3)],
                            kappa_mean=float(rng.uniform(0, 0.6 * kmax)),
                            tau_modes=[[float(0.1 * rng.uniform(-1, 1) / (k + 1)),
                                        float(2 * np.pi * rng.uniform(0.5, 2 + k) / length),
                                        float(rng.uniform(0, 2 * np.pi))] for k in range(2)])
    pts, kappa, _ = vessel.centerline_from_params(p, n=n)
    return pts


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _branch(rng: np.random.Generator, start: np.ndarray, d: np.ndarray, length: float, r0: float,
            kmax: float) -> dict[str, Any]:
    n = max(int(length / 0.25) + 1, 21)
    loc = _curve(rng, length, kmax, n)
    T, N, B = rotation_minimizing_frames(np.stack([start, start + d, start + 2 * d]))
    Rm = np.stack([N[0], B[0], T[0]], axis=1)  # local x, y, z -> world
    pts = start + loc @ Rm.T
    taper = rng.uniform(*RANGES["taper"])
    s = arc_length(pts)
    base = r0 * (1 - taper * s / length)
    return {"points": pts, "s": s, "base": base, "junctions": []}


def _direction(rng: np.random.Generator, pts: np.ndarray, i: int, angle_deg: float) -> np.ndarray:
    T, N, B = rotation_minimizing_frames(pts)
    a, az = math.radians(angle_deg), rng.uniform(0, 2 * np.pi)
    d = math.cos(a) * T[i] + math.sin(a) * (math.cos(az) * N[i] + math.sin(az) * B[i])
    return d / np.linalg.norm(d)


def _add_children(rng: np.random.Generator, br: list[dict[str, Any]], parent: int, n: int, phi_rng: tuple[float, float],
                  len_rng: tuple[float, float], lo: float, hi: float) -> None:
    P = br[parent]
    L = P["s"][-1]
    pos: list[float] = []
    for _ in range(50):
        if len(pos) == n:
            break
        s0 = rng.uniform(lo, hi) * L
        if all(abs(s0 - q) > 6.0 for q in pos):
            pos.append(s0)
    for s0 in sorted(pos):
        i = int(np.searchsorted(P["s"], s0))
        phi = rng.uniform(*phi_rng)
        P["junctions"].append((i, phi))
        br.append({"parent": parent, "attach": i, "phi": phi, "angle": rng.uniform(*RANGES["angle"]),
                   "length": rng.uniform(*len_rng)})


def _murray_radius(b: dict[str, Any]) -> np.ndarray:
    """Base radius times the smooth Murray steps after each junction (continuing fraction 1 - phi)."""
    r = b["base"].copy()
    for i, phi in b["junctions"]:
        s0 = b["s"][i]
        w = 2.0 * float(r[i])
        r = r * (1 + ((1 - phi) ** (1 / 3) - 1) * _smoothstep((b["s"] - s0) / w))
    return r


def _grow(rng: np.random.Generator, br: list[dict[str, Any]], k: int) -> None:
    """Give spec ``k`` (parent, attach, phi, angle, length) its geometry; its parent is final."""
    b = br[k]
    P = br[b["parent"]]
    rp = float(_murray_radius(P)[b["attach"]])
    d = _direction(rng, P["points"], b["attach"], b["angle"])
    b.update(_branch(rng, P["points"][b["attach"]], d, b["length"], rp * b["phi"] ** (1 / 3), RANGES["kappa"][1]))
    b["r_parent"] = rp


def _stenoses(rng: np.random.Generator, br: list[dict[str, Any]]) -> list[dict[str, Any]]:
    R = RANGES
    out: list[dict[str, Any]] = []
    n = int(rng.integers(R["n_stenoses"][0], R["n_stenoses"][1] + 1))
    lengths = np.array([b["s"][-1] for b in br])
    for _ in range(100):
        if len(out) == n:
            break
        ln = float(rng.uniform(*R["stenosis_length"]))
        kind = rng.choice(["bifurcation", "ostial", "anywhere"], p=[0.35, 0.15, 0.5])
        if kind == "bifurcation" and br[0]["junctions"]:
            k = 0
            i, _ = br[0]["junctions"][int(rng.integers(len(br[0]["junctions"])))]
            c = float(br[0]["s"][i] + rng.uniform(-3, 3))
        elif kind == "ostial" and len(br) > 1:
            k = int(rng.integers(1, len(br)))
            b = br[k]
            c = float(b["r_parent"] / math.sin(math.radians(b["angle"])) + 1.0 + 0.5 * ln)
        else:
            k = int(rng.choice(len(br), p=lengths / lengths.sum()))
            c = float(rng.uniform(0.15, 0.85) * lengths[k])
        L = lengths[k]
        if not (0.5 * ln + 1.0 <= c <= L - 0.5 * ln - 1.0):
            continue
        if any(o["branch"] == k and abs(o["center"] - c) < 0.5 * (o["length"] + ln) + 1.0 for o in out):
            continue
        out.append({"branch": k, "center": c, "length": ln, "kind": str(kind),
                    "area_reduction": float(rng.uniform(*R["stenosis_area_reduction"]))})
    return out


def _narrow(s: np.ndarray, r: np.ndarray, stenoses: list[dict[str, Any]]) -> np.ndarray:
    for st in stenoses:
        d = 1.0 - math.sqrt(1.0 - st["area_reduction"])
        x = (s - st["center"]) / (0.5 * st["length"])
        r = r * (1.0 - d * np.where(np.abs(x) < 1, 0.5 * (1 + np.cos(np.pi * np.clip(x, -1, 1))), 0.0))
    return r


def draw_tree(seed: int) -> tuple[Tree, dict[str, Any]]:
    """One random tree (may intersect itself: :func:`sample_tree` checks and redraws)."""
    R = RANGES
    rng = np.random.default_rng(seed)
    L = rng.uniform(*R["main_length"])
    br = [_branch(rng, np.zeros(3), np.array([0.0, 0.0, 1.0]), L, rng.uniform(*R["r_in"]), 0.08)]
    br[0].update(parent=-1, attach=-1)
    n_side = int(rng.integers(R["n_side"][0], R["n_side"][1] + 1))
    _add_children(rng, br, 0, n_side, R["phi_side"], R["side_length"], 0.12, 0.85)
    for k in range(1, len(br)):
        _grow(rng, br, k)
    for k in range(1, len(br)):
        if len(br) < MAX_BRANCHES and rng.uniform() < P_SUB:
            _add_children(rng, br, k, 1, R["phi_sub"], R["sub_length"], 0.3, 0.7)
            _grow(rng, br, len(br) - 1)
    sten = _stenoses(rng, br)
    ref = [_murray_radius(b) for b in br]
    rad = [_narrow(b["s"], r, [s for s in sten if s["branch"] == k]) for k, (b, r) in enumerate(zip(br, ref, strict=True))]
    tree = Tree([b["points"] for b in br], rad, [b["parent"] for b in br], [b["attach"] for b in br], ref)
    params = {"seed": int(seed), "Q": float(rng.uniform(*R["Q"])), "stenoses": sten,
              "branches": [{"parent": b["parent"], "attach": int(b["attach"]), "length": float(b["s"][-1]),
                            "r_start": float(r[0]), "r_end": float(r[-1]), "phi": float(b.get("phi", 1.0)),
                            "angle_deg": float(b.get("angle", 0.0))} for b, r in zip(br, ref, strict=True)]}
    return tree, params


def sample_tree(seed: int, max_tries: int = 50) -> tuple[Tree, dict[str, Any]]:
    """A random tree whose tubes clear each other (``clearance > MIN_CLEARANCE``) and whose radii stay
    above ``min_radius``; redraws with derived seeds otherwise."""
    for k in range(max_tries):
        tree, params = draw_tree(seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0]))
        if min(float(r.min()) for r in tree.radius) < RANGES["min_radius"][0]:
            continue
        try:
            validate_tree(tree, f"tree seed {seed}")
        except TreeError:
            continue
        c, pair = clearance(tree)
        if c > MIN_CLEARANCE:
            params.update(draw=k, clearance=c, seed=int(seed))
            return tree, params
    raise TreeError(f"tree seed {seed}: no self-avoiding tree in {max_tries} draws")
