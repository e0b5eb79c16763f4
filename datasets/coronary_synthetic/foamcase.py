"""The single-vessel simpleFoam case: the ``0/`` fields of an inlet / outlet / wall O-grid.

The generic OpenFOAM pieces (environment, ``system/`` files, running, reading fields) live in
:mod:`meshops.cfd.foam` and are re-exported here for the recipes that use them through this file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from meshops.cfd.foam import (
    FOAM_ROOT,
    FoamError,
    RunResult,
    SolverSettings,
    foam_env,
    header,
    openfoam_available,
    read_field,
    run_simplefoam,
    write_flow_fields,
    write_system,
)

__all__ = ["FOAM_ROOT", "FoamError", "RunResult", "SolverSettings", "foam_env", "openfoam_available",
           "read_field", "run_simplefoam", "write_case"]

_hdr = header


def write_case(case: Path, nu: float, inlet_U: np.ndarray, settings: SolverSettings) -> None:
    """Write ``system/``, ``constant/`` (except polyMesh) and ``0/`` for simpleFoam.

    Shapes
    ------
    inlet_U : (n_inlet_faces, 3) m/s, in the inlet patch's face order.
    """
    write_system(case, nu, settings)
    write_flow_fields(case, inlet_U, {"outlet": None})


