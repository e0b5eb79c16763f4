"""icoFoam case for the channel flow (OpenFOAM v1912): mesh conversion, case files, runs, lift history.

Non-dimensional: free stream ``U = 1``, ``nu = D / Re``; ``p`` is kinematic pressure relative to the
outlet. The ASCII field reader and the OpenFOAM environment come from the coronary recipe's
``foamcase.py`` (one implementation for both recipes).
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _coronary_foam() -> Any:
    from meshops.data import recipe_module

    return recipe_module(HERE.parent / "coronary_synthetic", "foamcase")


foamcase = _coronary_foam()
FoamError = foamcase.FoamError
read_field = foamcase.read_field
_hdr = foamcase._hdr


@dataclass
class SolverSettings:
    """icoFoam (PISO) controls; times in ``D / U``."""

    dt: float = 0.02
    warmup: float = 100.0  # time before the first snapshot (wake develops)
    record: float = 60.0  # recorded span
    snapshot_dt: float = 0.2  # time between snapshots
    n_correctors: int = 2
    n_nonorth: int = 1
    ddt: str = "backward"
    div: str = "Gauss linear"
    courant_limit: float = 0.8  # the recorded run's time step keeps the warm-up's max Courant number below this
    settle: float = 10.0  # unsaved time at the recorded run's time step before the first snapshot (when it changed)


def _run(cmd: list[str], case: Path, log_name: str, name: str, timeout: float) -> str:
    logf = case / f"log.{log_name}"
    with open(logf, "w") as fh:
        try:
            rc = subprocess.run(cmd + ["-case", str(case)], stdout=fh, stderr=subprocess.STDOUT,
                                env=foamcase.foam_env(), timeout=timeout).returncode
        except subprocess.TimeoutExpired as e:
            raise FoamError(f"{name}: {cmd[0]} timed out after {timeout:.0f} s") from e
    text = logf.read_text(errors="replace")
    if rc != 0:
        tail = " | ".join(text.strip().splitlines()[-5:])
        raise FoamError(f"{name}: {cmd[0]} failed (exit {rc}): {tail[-400:]}")
    return text


def convert_mesh(case: Path, msh: Path, name: str) -> None:
    """``gmshToFoam``, then set ``frontAndBack`` to ``empty`` and ``obstacle`` to ``wall`` in the boundary file."""
    (case / "system").mkdir(parents=True, exist_ok=True)
    _write_control(case, SolverSettings(), 0.0, 1.0, 1.0, "startTime")
    _run(["gmshToFoam", str(msh)], case, "gmshToFoam", name, 300)
    bf = case / "constant" / "polyMesh" / "boundary"
    text = bf.read_text()
    for patch, typ in (("frontAndBack", "empty"), ("obstacle", "wall")):
        pat = re.compile(rf"(\n\s*{patch}\s*\n\s*\{{\s*\n\s*type\s+)\w+;")
        if not pat.search(text):
            raise FoamError(f"{name}: patch '{patch}' missing from {bf}")
        text = pat.sub(rf"\g<1>{typ};", text)
        text = re.sub(rf"(\n\s*{patch}\s*\n\s*\{{[^}}]*?)inGroups[^;]*;", r"\1", text)
    bf.write_text(text)


def _write_control(case: Path, s: SolverSettings, start: float, end: float, write_dt: float, start_from: str,
                   lift: dict[str, Any] | None = None) -> None:
    """controlDict: write every ``write_dt`` of run time (``dt`` divides it; by time, not by step count:
    the step index carries over from a run at another ``dt``)."""
    fo = ""
    if lift:
        fo = f"""
functions
{{
    forceCoeffs
    {{
        type            forceCoeffs;
        libs            ("libforces.so");
        patches         (obstacle);
        rho             rhoInf;
        rhoInf          1;
        CofR            ({lift['x']:.8g} {lift['y']:.8g} 0.5);
        liftDir         (0 1 0);
        dragDir         (1 0 0);
        pitchAxis       (0 0 1);
        magUInf         1;
        lRef            {lift['D']:.8g};
        Aref            {lift['D']:.8g};
        writeControl    timeStep;
        writeInterval   1;
        log             false;
    }}
}}
"""
    (case / "system" / "controlDict").write_text(_hdr("dictionary", "controlDict", "system") + f"""
application     icoFoam;
startFrom       {start_from};
startTime       {start:.10g};
stopAt          endTime;
endTime         {end:.10g};
deltaT          {s.dt:.10g};
writeControl    runTime;
writeInterval   {write_dt:.10g};
purgeWrite      0;
writeFormat     ascii;
writePrecision  8;
writeCompression off;
timeFormat      general;
timePrecision   8;
runTimeModifiable false;
{fo}""")


def write_case(case: Path, nu: float, s: SolverSettings, U0: np.ndarray) -> None:
    """``system/fvSchemes``, ``fvSolution``, ``constant/transportProperties`` and ``0/U``, ``0/p``.

    Shapes
    ------
    U0 : (n_cells, 3) initial velocity (a perturbed free stream that starts the shedding early)
    """
    (case / "0").mkdir(exist_ok=True)
    (case / "system" / "fvSchemes").write_text(_hdr("dictionary", "fvSchemes", "system") + f"""
ddtSchemes      {{ default {s.ddt}; }}
gradSchemes     {{ default Gauss linear; }}
divSchemes      {{ default none; div(phi,U) {s.div}; }}
laplacianSchemes {{ default Gauss linear corrected; }}
interpolationSchemes {{ default linear; }}
snGradSchemes   {{ default corrected; }}
""")
    (case / "system" / "fvSolution").write_text(_hdr("dictionary", "fvSolution", "system") + f"""
solvers
{{
    p {{ solver GAMG; smoother GaussSeidel; tolerance 1e-7; relTol 0.01; }}
    pFinal {{ solver GAMG; smoother GaussSeidel; tolerance 1e-7; relTol 0; }}
    U {{ solver smoothSolver; smoother symGaussSeidel; tolerance 1e-8; relTol 0; }}
}}
PISO
{{
    nCorrectors     {s.n_correctors};
    nNonOrthogonalCorrectors {s.n_nonorth};
}}
""")
    (case / "constant" / "transportProperties").write_text(
        _hdr("dictionary", "transportProperties", "constant") + f"nu              [0 2 -1 0 0 0 0] {nu:.10g};\n")
    body = "\n".join(f"({a:.8g} {b:.8g} 0)" for a, b, _ in U0)
    (case / "0" / "U").write_text(_hdr("volVectorField", "U", "0") + f"""
dimensions      [0 1 -1 0 0 0 0];
internalField   nonuniform List<vector>
{len(U0)}
(
{body}
)
;
boundaryField
{{
    inlet        {{ type fixedValue; value uniform (1 0 0); }}
    outlet       {{ type inletOutlet; inletValue uniform (0 0 0); value uniform (1 0 0); }}
    walls        {{ type slip; }}
    obstacle     {{ type noSlip; }}
    frontAndBack {{ type empty; }}
}}
""")
    (case / "0" / "p").write_text(_hdr("volScalarField", "p", "0") + """
dimensions      [0 2 -2 0 0 0 0];
internalField   uniform 0;
boundaryField
{
    inlet        { type zeroGradient; }
    outlet       { type fixedValue; value uniform 0; }
    walls        { type zeroGradient; }
    obstacle     { type zeroGradient; }
    frontAndBack { type empty; }
}
""")


def cell_centres(case: Path, n_cells: int, name: str) -> np.ndarray:
    """Cell centres from ``postProcess -func writeCellCentres`` (time 0).

    Shapes
    ------
    returns : (n_cells, 3)
    """
    _run(["postProcess", "-func", "writeCellCentres", "-time", "0"], case, "writeCellCentres", name, 300)
    C, _ = read_field(case / "0" / "C", n_cells)
    for f in ("C", "Cx", "Cy", "Cz", "V"):
        (case / "0" / f).unlink(missing_ok=True)
    return C


def n_cells_of(case: Path) -> int:
    """Number of cells (the largest owner index + 1) of the case's polyMesh."""
    text = (case / "constant" / "polyMesh" / "owner").read_text()
    m = re.search(r"nCells:\s*(\d+)", text)
    if not m:
        raise FoamError(f"{case}: no nCells in polyMesh/owner")
    return int(m.group(1))


def courant_step(dt: float, snapshot_dt: float, co: float, limit: float) -> float:
    """``dt`` when the Courant number ``co`` it gave is within ``limit``, else the largest time step at most
    ``dt * limit / co`` that divides ``snapshot_dt`` exactly."""
    if co <= limit:
        return dt
    return snapshot_dt / int(np.ceil(snapshot_dt * co / (dt * limit) - 1e-9))


def _courant(text: str, name: str) -> list[float]:
    co = [float(x) for x in re.findall(r"Courant Number mean: [0-9.eE+-]+ max: ([0-9.eE+-]+)", text)]
    if not co or not np.isfinite(co).all():
        raise FoamError(f"{name}: icoFoam produced no (finite) Courant number: diverged")
    return co


def run_icofoam(case: Path, s: SolverSettings, lift: dict[str, Any], name: str,
                timeout: float = 3600.0) -> dict[str, Any]:
    """Warm-up run (writes only its end), then the recorded run (a snapshot every ``snapshot_dt``).

    PISO's time accuracy needs a Courant number below about 1: where the developed wake of the warm-up
    (its second half) exceeds ``s.courant_limit``, the recorded run takes the smaller time step of
    :func:`courant_step`, after ``s.settle`` unsaved time units at that step (a solve at Courant 1.5
    carried a spurious pressure oscillation at 5.6x the shedding frequency, gone at 0.75). Raises when
    the recorded run's Courant number still exceeds 1.
    """
    t0 = time.perf_counter()
    _write_control(case, s, 0.0, s.warmup, s.warmup, "startTime")
    co_warm = _courant(_run(["icoFoam"], case, "icoFoam.warmup", name, timeout), name)
    co_dev = max(co_warm[len(co_warm) // 2 :])
    rec = replace(s, dt=courant_step(s.dt, s.snapshot_dt, co_dev, s.courant_limit))
    start = s.warmup
    if rec.dt < s.dt and s.settle > 0:
        _write_control(case, rec, start, start + s.settle, s.settle, "latestTime")
        _courant(_run(["icoFoam"], case, "icoFoam.settle", name, timeout), name)
        start += s.settle
    t1 = time.perf_counter()
    _write_control(case, rec, start, start + s.record, s.snapshot_dt, "latestTime", lift)
    text2 = _run(["icoFoam"], case, "icoFoam", name, timeout)
    t2 = time.perf_counter()
    co = max(_courant(text2, name))
    if co > 1.0:
        raise FoamError(f"{name}: the recorded run's max Courant number is {co:.2f} (> 1) at dt {rec.dt:.4g}")
    n_steps = len(re.findall(r"^Time = ", text2, flags=re.M))
    return {"dt": rec.dt, "warmup_dt": s.dt, "warmup_max_courant": co_dev, "record_start": start,
            "warmup_wall_s": round(t1 - t0, 2), "record_wall_s": round(t2 - t1, 2), "max_courant": co,
            "record_steps": n_steps, "wall_s_per_step": (t2 - t1) / max(n_steps, 1)}


def snapshot_dirs(case: Path, start: float) -> list[Path]:
    """The time folders at or after ``start`` (sorted by time)."""
    ds = [d for d in case.iterdir() if d.is_dir() and re.fullmatch(r"[0-9.eE+-]+", d.name)]
    ds = [d for d in ds if float(d.name) >= start - 1e-6 * max(1.0, abs(start))]
    return sorted(ds, key=lambda d: float(d.name))


def lift_history(case: Path) -> np.ndarray:
    """``(t, Cd, Cl)`` rows of the recorded run's forceCoeffs output.

    Shapes
    ------
    returns : (n_steps, 3)
    """
    files = sorted((case / "postProcessing" / "forceCoeffs").glob("*/coefficient*.dat"))
    if not files:
        raise FoamError(f"{case}: no forceCoeffs output")
    rows, cols = [], None
    for line in files[-1].read_text().splitlines():
        if line.startswith("#"):
            h = line.lstrip("#").split()
            if h and h[0] == "Time":
                cols = h
            continue
        if line.strip():
            rows.append([float(x) for x in line.split()])
    if cols is None:
        raise FoamError(f"{files[-1]}: no header line")
    A = np.array(rows)
    return A[:, [0, cols.index("Cd"), cols.index("Cl")]]
