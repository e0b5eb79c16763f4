"""The ``coronary_synthetic`` dataset: wall p and WSS of synthetic coronary vessels (OpenFOAM).

Each :class:`~meshops.data.Case` is the vessel wall (a structured quad surface, points in mm,
section-major: ``n_sections x n_around`` points) with point fields

* targets ``p`` (Pa, relative to the outlet), ``wss`` (3, Pa, the traction of the blood on the
  wall, pointing downstream), ``wss_mag`` (Pa);
* derived geometric fields (usable as inputs): ``s`` (arc length of the point's station, mm),
  ``radius`` (vessel radius at that station, mm), ``theta`` (angle around the centerline, rad);

the global ``Q`` (inlet flow, mL/s), boundary rings ``inlet`` and ``outlet`` (line cells) and the
centerline in ``mesh.field_data``: ``centerline_points`` (m, 3) mm, ``centerline_radius`` (m,) mm,
``centerline_s`` (m,), ``centerline_normal`` and ``centerline_binormal`` (m, 3) (the
rotation-minimizing frame the CFD mesh was swept with). :meth:`CoronarySynthetic.centerline`
returns the same as a dict, :meth:`CoronarySynthetic.card` the case's CFD card.

Sources: the shipped compact file ``data/coronary_synthetic.npz`` (default; see ``pack.py``), or
``root=DIR``, a folder written by ``meshops datasets generate coronary-synthetic`` (full resolution,
read from ``wall.vtp`` / ``centerline.vtp`` / ``case.json``).

Options: ``split`` (``"train"``, ``"val"``, ``"test"`` or ``None`` for all; a fixed hash split
80/10/10 by case name), ``inputs`` (names of derived point fields, default none),
``targets`` (default ``["p", "wss", "wss_mag"]``), ``max_cases``, ``converged_only``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from meshops.data import CardDataset, Case, DatasetError, recipe_module, register_dataset
from meshops.mesh import CellBlock, Mesh

log = logging.getLogger("meshops.datasets.coronary_synthetic")

HERE = Path(__file__).resolve().parent
DEFAULT_PATH = HERE / "data" / "coronary_synthetic.npz"
DERIVED = ("s", "radius", "theta")
TARGETS = ("p", "wss", "wss_mag")


def _pack_module() -> Any:
    return recipe_module(HERE, "pack")


def wall_quads(n_sections: int, n_around: int) -> np.ndarray:
    """Quads of a structured tube wall (section-major points), normals pointing out of the vessel.

    Shapes
    ------
    returns : ((n_sections - 1) * n_around, 4) int64
    """
    idx = np.arange(n_sections * n_around).reshape(n_sections, n_around)
    j1 = np.roll(np.arange(n_around), -1)
    return np.stack([idx[:-1], idx[:-1][:, j1], idx[1:][:, j1], idx[1:]], axis=2).reshape(-1, 4)


def wall_points(centers: np.ndarray, radius: np.ndarray, normal: np.ndarray, binormal: np.ndarray,
                theta: np.ndarray) -> np.ndarray:
    """Points ``c_i + r_i (cos(theta_j) n_i + sin(theta_j) b_i)`` of a swept circular wall.

    Shapes
    ------
    centers, normal, binormal : (ns, 3), radius : (ns,), theta : (nw,) -> returns (ns * nw, 3)
    """
    c, s = np.cos(theta)[None, :, None], np.sin(theta)[None, :, None]
    P = centers[:, None, :] + radius[:, None, None] * (c * normal[:, None, :] + s * binormal[:, None, :])
    return P.reshape(-1, 3)


def _make_case(name: str, points: np.ndarray, ns: int, nw: int, fields: dict[str, np.ndarray],
               cl: dict[str, np.ndarray], Q: float, inputs: list[str], targets: list[str], source: str) -> Case:
    quads = wall_quads(ns, nw)
    idx = np.arange(ns * nw).reshape(ns, nw)
    j1 = np.roll(np.arange(nw), -1)
    inlet = np.stack([idx[0], idx[0][j1]], 1)
    outlet = np.stack([idx[-1], idx[-1][j1]], 1)
    theta = np.arctan2(
        np.einsum("ijk,ik->ij", points.reshape(ns, nw, 3) - cl["points"][:, None], cl["binormal"]),
        np.einsum("ijk,ik->ij", points.reshape(ns, nw, 3) - cl["points"][:, None], cl["normal"]),
    )
    pd = {
        "p": fields["p"].astype(np.float32),
        "wss": fields["wss"].astype(np.float32),
        "wss_mag": np.linalg.norm(fields["wss"].astype(np.float32), axis=1),
        "s": np.repeat(cl["s"], nw).astype(np.float32),
        "radius": np.repeat(cl["radius"], nw).astype(np.float32),
        "theta": theta.reshape(-1).astype(np.float32),
    }
    fd = {f"centerline_{k}": np.asarray(v) for k, v in cl.items()}
    fd["Q"] = float(Q)
    fd["units"] = "length mm, Q mL/s, p Pa, wss Pa"
    mesh = Mesh(points.astype(np.float64), [CellBlock("quad", quads)], point_data=pd,
                boundaries={"inlet": [CellBlock("line", inlet)], "outlet": [CellBlock("line", outlet)]},
                dim=3, source=source, field_data=fd)
    return Case(name, mesh, inputs, targets, {"Q": float(Q)})


@register_dataset("coronary_synthetic")
class CoronarySynthetic(CardDataset):
    """Synthetic coronary vessels with OpenFOAM wall pressure and wall shear stress (see the module doc)."""

    label = "coronary_synthetic"
    inputs: list[str] = []
    targets: list[str] = list(TARGETS)
    globals: list[str] = ["Q"]

    def __init__(self, path: str | None = None, root: str | None = None, split: str | None = None,
                 inputs: list[str] | None = None, targets: list[str] | None = None,
                 max_cases: int | None = None, converged_only: bool = False) -> None:
        self._set_fields(inputs, targets, DERIVED, TARGETS)
        splits = _pack_module().SPLITS
        self._check_split(split, splits)
        self.root = Path(root) if root else None
        if self.root is not None:
            if not self.root.is_dir():
                raise DatasetError(f"coronary_synthetic: root {self.root} is not a folder")
            folders = sorted(d for d in self.root.glob("case_*") if (d / "case.json").is_file())
            if not folders:
                raise DatasetError(f"coronary_synthetic: {self.root} has no finished cases (case_*/case.json)")
            self._cards = [json.loads((d / "case.json").read_text()) for d in folders]
            self._folders = folders
            keep = np.arange(len(folders))
            sp = np.array([_pack_module().split_of(d.name) for d in folders])
        else:
            self.path = Path(path) if path else DEFAULT_PATH
            if not self.path.is_file():
                raise DatasetError(
                    f"coronary_synthetic: {self.path} not found (generate with `meshops datasets generate "
                    "coronary-synthetic --out DIR` and pass root=DIR, or pack it with pack.py)")
            z = np.load(self.path, allow_pickle=False)
            self._z = {k: z[k] for k in z.files}
            self._cards = json.loads(str(self._z["cards"]))
            keep = np.arange(len(self._z["names"]))
            sp = self._z["split"].astype(int)
        if split is not None:
            keep = keep[sp[keep] == splits[split]]
        if converged_only:
            keep = np.array([i for i in keep if self._cards[i]["solver"]["converged"]], dtype=int)
        if max_cases is not None:
            keep = keep[: int(max_cases)]
        self._keep = keep

    def case_names(self) -> list[str]:
        return [self._cards[k]["name"] for k in self._keep]

    def __getitem__(self, i: int) -> Case:
        k = self._check(i)
        if self.root is not None:
            return self._from_folder(k)
        z = self._z
        a, b = z["sec_ptr"][k], z["sec_ptr"][k + 1]
        p0, p1 = z["pt_ptr"][k], z["pt_ptr"][k + 1]
        nw = int(z["n_around"][k])
        th = z["theta"][k, :nw].astype(np.float64)
        cl = {"points": z["cl_points"][a:b].astype(np.float64), "radius": z["cl_radius"][a:b].astype(np.float64),
              "s": z["cl_s"][a:b].astype(np.float64), "normal": z["cl_normal"][a:b].astype(np.float64),
              "binormal": z["cl_binormal"][a:b].astype(np.float64)}
        pts = wall_points(cl["points"], cl["radius"], cl["normal"], cl["binormal"], th)
        ns = b - a
        if len(pts) != p1 - p0:
            raise DatasetError(f"{self.path}: case {z['names'][k]} has {p1 - p0} field values but {len(pts)} wall points")
        fields = {"p": z["p"][p0:p1], "wss": z["wss"][p0:p1]}
        return _make_case(str(z["names"][k]), pts, int(ns), nw, fields, cl, float(z["Q"][k]), self.inputs,
                          self.targets, f"{self.path}[{z['names'][k]}]")

    def _from_folder(self, k: int) -> Case:
        from meshops.io import read

        d = self._folders[k]
        wall = read(d / "wall.vtp")
        clp = read(d / "centerline.vtp")
        ns = clp.n_points
        nw = wall.n_points // ns
        cl = {"points": np.asarray(clp.points, dtype=np.float64),
              "radius": np.asarray(clp.point_data["radius"], dtype=np.float64),
              "s": np.asarray(clp.point_data["s"], dtype=np.float64),
              "normal": np.asarray(clp.point_data["normal"], dtype=np.float64),
              "binormal": np.asarray(clp.point_data["binormal"], dtype=np.float64)}
        fields = {"p": np.asarray(wall.point_data["p"]), "wss": np.asarray(wall.point_data["wss"])}
        return _make_case(d.name, np.asarray(wall.points, dtype=np.float64), ns, nw, fields, cl,
                          float(self._cards[k]["Q_mL_s"]), self.inputs, self.targets, str(d / "wall.vtp"))


DATASET = CoronarySynthetic
