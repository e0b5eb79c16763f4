"""The ``coronary_trees`` dataset: wall p and WSS of synthetic coronary trees (OpenFOAM, Murray split).

Each :class:`~meshops.data.Case` is the union wall of a tree sampled on structured rings along
every branch (points in mm; a ring point is present where it lies on the union wall, i.e. not
inside another branch: the junction openings are gaps), with quads between present ring points and
point fields

* targets ``p`` (Pa, relative to the reference outlet: the outlet with the largest flow),
  ``wss`` (3, Pa, the blood's traction on the wall), ``wss_mag`` (Pa);
* geometric fields (usable as inputs): ``s`` (arc length along the point's branch, mm),
  ``s_tree`` (path length from the inlet along the tree, mm), ``radius`` (mm), ``theta`` (angle
  around the branch, rad), ``branch`` (branch id), ``generation`` (0 main vessel, 1 side branch, ...);

the global ``Q`` (inlet flow, mL/s) and the centerline tree in ``mesh.field_data``:
``centerline_points`` (m, 3), ``centerline_radius``, ``centerline_s``, ``centerline_normal``,
``centerline_binormal``, ``centerline_branch`` (per station), ``centerline_branches`` (one
station-index path per branch, a child's path starting at its parent's junction station),
``centerline_parent`` and ``centerline_attach`` (per branch: parent branch, -1 for the root, and
the parent station it starts at), ``centerline_outlet`` (per branch: ends in an outlet).
:meth:`CoronaryTrees.centerline` returns them as a dict, :meth:`CoronaryTrees.card` the CFD card
(parameters, mesh, solver, per-outlet flow and pressure, mass balance).

Source: the shipped ``data/coronary_trees.npz`` (see ``pack.py``) or ``path=`` another packed file.
Options: ``split`` (``"train"``, ``"val"``, ``"test"``, ``None``: a hash split 80/10/10 by case
name), ``inputs`` (derived point fields), ``targets`` (default ``["p", "wss", "wss_mag"]``), ``max_cases``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from meshops.data import CardDataset, Case, DatasetError, recipe_module, register_dataset
from meshops.mesh import CellBlock, Mesh

log = logging.getLogger("meshops.datasets.coronary_trees")

HERE = Path(__file__).resolve().parent
DEFAULT_PATH = HERE / "data" / "coronary_trees.npz"
DERIVED = ("s", "s_tree", "radius", "theta", "branch", "generation")
TARGETS = ("p", "wss", "wss_mag")


def _rings(st: dict[str, np.ndarray], n_around: int) -> np.ndarray:
    t = 2 * np.pi * np.arange(n_around) / n_around
    c, s = np.cos(t)[None, :, None], np.sin(t)[None, :, None]
    return st["points"][:, None] + st["radius"][:, None, None] * (c * st["normal"][:, None] + s * st["binormal"][:, None])


def _quads(index: np.ndarray) -> np.ndarray:
    """Quads of a (ns, nw) ring grid of point ids (-1: absent) whose four corners are present."""
    j1 = np.roll(np.arange(index.shape[1]), -1)
    q = np.stack([index[:-1], index[:-1][:, j1], index[1:][:, j1], index[1:]], axis=2).reshape(-1, 4)
    return q[(q >= 0).all(1)]


def build_case(name: str, cl: dict[str, Any], mask: np.ndarray, n_around: int, fields: dict[str, np.ndarray],
               Q: float, inputs: list[str], targets: list[str], source: str) -> Case:
    """A :class:`Case` from the per-branch stations ``cl``, the kept mask (S, n_around) and the fields."""
    ptr = cl["ptr"]
    nb = len(ptr) - 1
    s_tree0 = np.zeros(nb)
    gen = np.zeros(nb, dtype=int)
    for b in range(1, nb):
        pb = cl["parent"][b]
        s_tree0[b] = s_tree0[pb] + cl["s"][ptr[pb] + cl["attach"][b]]
        gen[b] = gen[pb] + 1
    pts, quads, pd = [], [], {k: [] for k in ("s", "s_tree", "radius", "theta", "branch", "generation")}
    n = 0
    for b in range(nb):
        sl = slice(ptr[b], ptr[b + 1])
        st = {k: cl[k][sl] for k in ("points", "radius", "normal", "binormal", "s")}
        m = mask[sl]
        ring = _rings(st, n_around)
        idx = np.full(m.shape, -1)
        idx[m] = n + np.arange(int(m.sum()))
        quads.append(_quads(idx))
        pts.append(ring[m])
        ns = m.shape[0]
        grid = {"s": np.repeat(st["s"][:, None], n_around, 1), "radius": np.repeat(st["radius"][:, None], n_around, 1),
                "theta": np.broadcast_to(2 * np.pi * np.arange(n_around) / n_around, (ns, n_around))}
        pd["s"].append(grid["s"][m])
        pd["s_tree"].append(grid["s"][m] + s_tree0[b])
        pd["radius"].append(grid["radius"][m])
        pd["theta"].append(np.mod(grid["theta"][m] + np.pi, 2 * np.pi) - np.pi)
        pd["branch"].append(np.full(int(m.sum()), b))
        pd["generation"].append(np.full(int(m.sum()), gen[b]))
        n += int(m.sum())
    wss = fields["wss"].astype(np.float32)
    point_data = {"p": fields["p"].astype(np.float32), "wss": wss, "wss_mag": np.linalg.norm(wss, axis=1),
                  **{k: np.concatenate(v).astype(np.float32) for k, v in pd.items()}}
    branches = []
    for b in range(nb):
        own = np.arange(ptr[b], ptr[b + 1])
        branches.append(own if b == 0 else np.concatenate([[ptr[cl["parent"][b]] + cl["attach"][b]], own[1:]]))
    fd = {f"centerline_{k}": np.asarray(cl[k]) for k in ("points", "radius", "s", "normal", "binormal")}
    fd.update(centerline_branch=np.repeat(np.arange(nb), np.diff(ptr)), centerline_branches=branches,
              centerline_parent=np.asarray(cl["parent"]), centerline_attach=np.asarray(cl["attach"]),
              centerline_outlet=np.asarray(cl["outlet"]), Q=float(Q), units="length mm, Q mL/s, p Pa, wss Pa")
    mesh = Mesh(np.concatenate(pts).astype(np.float64), [CellBlock("quad", np.concatenate(quads))], point_data=point_data,
                dim=3, source=source, field_data=fd)
    return Case(name, mesh, inputs, targets, {"Q": float(Q)})


@register_dataset("coronary_trees")
class CoronaryTrees(CardDataset):
    """Synthetic coronary trees with OpenFOAM wall pressure and WSS (see the module doc)."""

    label = "coronary_trees"
    inputs: list[str] = []
    targets: list[str] = list(TARGETS)
    globals: list[str] = ["Q"]

    def __init__(self, path: str | None = None, split: str | None = None, inputs: list[str] | None = None,
                 targets: list[str] | None = None, max_cases: int | None = None) -> None:
        self._set_fields(inputs, targets, DERIVED, TARGETS)
        splits = recipe_module(HERE, "pack").SPLITS
        self._check_split(split, splits)
        self.path = Path(path) if path else DEFAULT_PATH
        if not self.path.is_file():
            raise DatasetError(f"coronary_trees: {self.path} not found (generate with `meshops datasets generate "
                               "coronary-trees --out DIR` and pack it with datasets/coronary_trees/pack.py DIR)")
        z = np.load(self.path, allow_pickle=False)
        self._z = {k: z[k] for k in z.files}
        self._cards = json.loads(str(self._z["cards"]))
        self._n_around = int(self._z["n_around"])
        nst = int(self._z["st_ptr"][-1])
        self._mask = np.unpackbits(self._z["mask"])[: nst * self._n_around].astype(bool).reshape(nst, self._n_around)
        self._pt_ptr = np.concatenate([[0], np.cumsum(self._mask.sum(1))])  # kept points before each station
        keep = np.arange(len(self._z["names"]))
        if split is not None:
            keep = keep[self._z["split"][keep] == splits[split]]
        if max_cases is not None:
            keep = keep[: int(max_cases)]
        self._keep = keep

    def case_names(self) -> list[str]:
        return [str(self._z["names"][k]) for k in self._keep]

    def _stations(self, k: int) -> dict[str, Any]:
        z = self._z
        b0, b1 = int(z["br_ptr"][k]), int(z["br_ptr"][k + 1])
        sp = z["st_ptr"][b0:b1 + 1]
        a, b = int(sp[0]), int(sp[-1])
        cl: dict[str, Any] = {key: z[f"st_{key}"][a:b].astype(np.float64)
                              for key in ("points", "radius", "normal", "binormal", "s")}
        cl.update(ptr=(sp - a).astype(np.int64), parent=z["br_parent"][b0:b1].astype(int),
                  attach=z["br_attach"][b0:b1].astype(int), outlet=z["br_outlet"][b0:b1].astype(bool), rows=(a, b))
        return cl

    def __getitem__(self, i: int) -> Case:
        k = self._check(i)
        cl = self._stations(k)
        a, b = cl.pop("rows")
        p0, p1 = int(self._pt_ptr[a]), int(self._pt_ptr[b])
        name = str(self._z["names"][k])
        fields = {"p": self._z["p"][p0:p1], "wss": self._z["wss"][p0:p1]}
        return build_case(name, cl, self._mask[a:b], self._n_around, fields, float(self._z["Q"][k]), self.inputs,
                          self.targets, f"{self.path}[{name}]")


DATASET = CoronaryTrees
