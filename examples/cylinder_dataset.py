"""A plug-in dataset in one file: the SimVascular cylinder, one time step from another.

The SimVascular test cylinder (``simvascular/cylinder_all_results.vtu``: a tet mesh of a pipe with
pressure and wall shear stress at 10 saved time steps) becomes one case per ordered pair of time
steps ``(t_in, t_out)``: inputs are pressure and WSS at ``t_in``, targets pressure and WSS at
``t_out``, and the two times are global parameters. Nothing in meshops is touched: train it with

    meshops train examples/cylinder_mgn.yaml

(the YAML says ``dataset: cylinder_dataset.py``), or ``--dataset examples/cylinder_dataset.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import meshops
from meshops.data import Case, Dataset, DatasetError, register_dataset

DEFAULT_FILE = Path(
    os.environ.get("MESHOPS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
) / "simvascular" / "cylinder_all_results.vtu"


@register_dataset("simvascular_cylinder")
class CylinderTimeSteps(Dataset):
    """Pressure and WSS at ``t_out`` from pressure and WSS at ``t_in`` on the SimVascular cylinder.

    Parameters
    ----------
    path : str
        The VTU with ``pressure_NNNNN`` and ``vWSS_NNNNN`` point fields.
    max_cases : int or None
        Keep only the first ``max_cases`` pairs (in time order), for quick runs.
    """

    inputs = ["pressure_in", "wss_in"]
    targets = ["pressure", "wss"]
    globals = ["t_in", "t_out"]

    def __init__(self, path: str | None = None, max_cases: int | None = None) -> None:
        self.path = Path(path) if path else DEFAULT_FILE
        if not self.path.is_file():
            raise DatasetError(f"simvascular_cylinder: {self.path} does not exist (see ../shared/data/SOURCES.md)")
        self._mesh = meshops.read(self.path)
        steps = sorted(int(m.group(1)) for k in self._mesh.point_data if (m := re.fullmatch(r"vWSS_(\d+)", k)))
        steps = [s for s in steps if f"pressure_{s:05d}" in self._mesh.point_data]
        self.pairs = [(a, b) for a in steps for b in steps if a != b]
        if max_cases:
            self.pairs = self.pairs[:max_cases]

    def __len__(self) -> int:
        return len(self.pairs)

    def case_names(self) -> list[str]:
        return [f"t{a:05d}_to_t{b:05d}" for a, b in self.pairs]

    def __getitem__(self, i: int) -> Case:
        a, b = self.pairs[i]
        pd = self._mesh.point_data
        base = meshops.Mesh(self._mesh.points, self._mesh.cells, source=str(self.path), dim=self._mesh.dim)
        mesh = base.with_fields(
            pressure_in=pd[f"pressure_{a:05d}"], wss_in=pd[f"vWSS_{a:05d}"],
            pressure=pd[f"pressure_{b:05d}"], wss=pd[f"vWSS_{b:05d}"],
        )
        return Case(self.case_names()[i], mesh, self.inputs, self.targets,
                    {"t_in": float(a), "t_out": float(b)})

