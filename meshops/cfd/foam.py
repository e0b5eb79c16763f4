"""Write, run and read back steady laminar simpleFoam cases (OpenFOAM v1912, Debian package).

The solver-independent pieces shared by every OpenFOAM recipe and by ``meshops cfd``: the
environment, the ``system/`` and ``constant/`` files (:func:`write_system`), running
``simpleFoam`` with divergence checks (:func:`run_simplefoam`) and reading ASCII fields
(:func:`read_field`). Units inside a case are SI; OpenFOAM's incompressible solvers work with
kinematic pressure ``p / rho`` (m^2/s^2) and kinematic stresses: callers multiply by ``rho``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FOAM_ROOT", "FoamError", "RunResult", "SolverSettings", "foam_env", "header", "openfoam_available",
           "read_field", "read_polymesh", "run_simplefoam", "write_flow_fields", "write_system"]

log = logging.getLogger(__name__)

FOAM_ROOT = Path(os.environ.get("MESHOPS_OPENFOAM_DIR", "/usr/share/openfoam"))


class FoamError(RuntimeError):
    """OpenFOAM failed or diverged (the message names the case and the reason)."""


def foam_env() -> dict[str, str]:
    """The environment OpenFOAM's tools need (``FOAM_ETC``, ``WM_PROJECT_DIR``), single-threaded."""
    env = dict(os.environ)
    env.setdefault("FOAM_ETC", str(FOAM_ROOT / "etc"))
    env.setdefault("WM_PROJECT_DIR", str(FOAM_ROOT))
    env["OMP_NUM_THREADS"] = "1"
    env.setdefault("FOAM_SIGFPE", "true")
    return env


def openfoam_available() -> bool:
    """Whether ``simpleFoam`` is on PATH and the OpenFOAM etc folder exists."""
    return shutil.which("simpleFoam") is not None and (FOAM_ROOT / "etc").is_dir()


def header(cls: str, obj: str, loc: str) -> str:
    """The ``FoamFile`` header of an ASCII OpenFOAM file."""
    return ("FoamFile\n{\n    version     2.0;\n    format      ascii;\n"
            f"    class       {cls};\n    location    \"{loc}\";\n    object      {obj};\n}}\n\n")


@dataclass
class SolverSettings:
    """simpleFoam controls."""

    max_iter: int = 600
    tol_p: float = 1e-5  # residualControl (initial residuals)
    tol_U: float = 1e-6
    relax_U: float = 0.9
    relax_p: float = 1.0  # SIMPLEC ('consistent yes') needs no pressure under-relaxation
    div_scheme: str = "bounded Gauss linearUpwind grad(U)"
    extra: dict[str, Any] = field(default_factory=dict)


def write_system(case: Path, nu: float, settings: SolverSettings, wall_patches: tuple[str, ...] = ("wall",),
                 non_orthogonal_correctors: int = 0, laplacian: str = "Gauss linear corrected",
                 sn_grad: str = "corrected", grad: str = "Gauss linear") -> None:
    """Write ``system/`` and ``constant/`` (except polyMesh) of a steady laminar simpleFoam case.

    ``wall_patches`` get the ``wallShearStress`` function object; the ``0/`` fields are the
    caller's (they carry the boundary conditions).
    """
    for sub in ("system", "constant", "0"):
        (case / sub).mkdir(parents=True, exist_ok=True)
    files = {
        ("system", "controlDict"): _control_dict(settings, wall_patches),
        ("system", "fvSchemes"): _fv_schemes(settings, laplacian, sn_grad, grad),
        ("system", "fvSolution"): _fv_solution(settings, non_orthogonal_correctors),
        ("constant", "transportProperties"): f"transportModel  Newtonian;\n\nnu              {nu:.10g};\n",
        ("constant", "turbulenceProperties"): "simulationType  laminar;\n",
    }
    for (where, name), text in files.items():
        (case / where / name).write_text(header("dictionary", name, where) + text)


def write_flow_fields(case: Path, inlet_U: np.ndarray, outlets: dict[str, float | None]) -> None:
    """``0/U`` and ``0/p``: a fixed inlet profile, no-slip ``wall``, and per outlet patch either a flow rate
    (m^3/s: ``flowRateOutletVelocity``, zero-gradient p) or ``None``: the pressure reference (p = 0,
    ``inletOutlet`` velocity).

    Shapes
    ------
    inlet_U : (n_inlet_faces, 3) m/s, in the inlet patch's face order.
    """
    body = "\n".join(f"({a:.10g} {b:.10g} {c:.10g})" for a, b, c in inlet_U)
    u_out, p_out = [], []
    for name, q in outlets.items():
        if q is None:
            u_out.append(f"    {name} {{ type inletOutlet; inletValue uniform (0 0 0); value uniform (0 0 0); }}")
            p_out.append(f"    {name} {{ type fixedValue; value uniform 0; }}")
        else:
            u_out.append(f"    {name} {{ type flowRateOutletVelocity; volumetricFlowRate constant {q:.10g}; "
                         "value uniform (0 0 0); }")
            p_out.append(f"    {name} {{ type zeroGradient; }}")
    nl = "\n"
    (case / "0" / "U").write_text(header("volVectorField", "U", "0") + f"""
dimensions      [0 1 -1 0 0 0 0];
internalField   uniform (0 0 0);
boundaryField
{{
    inlet
    {{
        type            fixedValue;
        value           nonuniform List<vector>
{len(inlet_U)}
(
{body}
)
;
    }}
{nl.join(u_out)}
    wall {{ type noSlip; }}
}}
""")
    (case / "0" / "p").write_text(header("volScalarField", "p", "0") + f"""
dimensions      [0 2 -2 0 0 0 0];
internalField   uniform 0;
boundaryField
{{
    inlet {{ type zeroGradient; }}
{nl.join(p_out)}
    wall {{ type zeroGradient; }}
}}
""")


def _control_dict(s: SolverSettings, wall_patches: tuple[str, ...]) -> str:
    return f"""
application     simpleFoam;
startFrom       startTime;
startTime       0;
stopAt          endTime;
endTime         {s.max_iter};
deltaT          1;
writeControl    timeStep;
writeInterval   {s.max_iter};
purgeWrite      0;
writeFormat     ascii;
writePrecision  10;
writeCompression off;
timeFormat      general;
timePrecision   8;
runTimeModifiable false;

functions
{{
    wallShearStress
    {{
        type            wallShearStress;
        libs            ("libfieldFunctionObjects.so");
        patches         ({" ".join(wall_patches)});
        writeControl    writeTime;
        log             false;
    }}
}}
"""


def _fv_schemes(s: SolverSettings, laplacian: str, sn_grad: str, grad: str) -> str:
    return f"""
ddtSchemes      {{ default steadyState; }}
gradSchemes     {{ default {grad}; }}
divSchemes
{{
    default         none;
    div(phi,U)      {s.div_scheme};
    div((nuEff*dev2(T(grad(U))))) Gauss linear;
}}
laplacianSchemes {{ default {laplacian}; }}
interpolationSchemes {{ default linear; }}
snGradSchemes   {{ default {sn_grad}; }}
wallDist        {{ method meshWave; }}
"""


def _fv_solution(s: SolverSettings, non_orthogonal_correctors: int) -> str:
    return f"""
solvers
{{
    p
    {{
        solver          GAMG;
        smoother        GaussSeidel;
        tolerance       1e-8;
        relTol          0.05;
    }}
    U
    {{
        solver          smoothSolver;
        smoother        symGaussSeidel;
        tolerance       1e-9;
        relTol          0.1;
    }}
}}

SIMPLE
{{
    nNonOrthogonalCorrectors {non_orthogonal_correctors};
    consistent      yes;
    residualControl
    {{
        p               {s.tol_p:g};
        U               {s.tol_U:g};
    }}
}}

relaxationFactors
{{
    fields      {{ p {s.relax_p:g}; }}
    equations   {{ U {s.relax_U:g}; }}
}}
"""


_RES = re.compile(r"Solving for (\w+), Initial residual = ([-+0-9.eE]+), Final residual = ([-+0-9.eE]+), No Iterations (\d+)")


@dataclass
class RunResult:
    """What a simpleFoam run did."""

    iterations: int
    converged: bool
    residuals: dict[str, float]  # initial residuals of the last iteration
    wall_time_s: float  # wall clock of the simpleFoam process
    execution_time_s: float  # OpenFOAM's own ExecutionTime (CPU)
    time_dir: Path


def run_simplefoam(case: Path, settings: SolverSettings, timeout: float = 1800.0, name: str = "") -> RunResult:
    """Run ``simpleFoam`` in ``case`` (log in ``log.simpleFoam``); raise :class:`FoamError` on failure.

    A run that crashes (floating-point exception), produces NaN or whose residuals exceed 1e-2 at
    the end exceed 1e-3 is reported as diverged/stalled. A run that stops at ``max_iter`` with
    residuals below that is kept and marked ``converged = False``.
    """
    name = name or case.name
    logf = case / "log.simpleFoam"
    t0 = time.perf_counter()
    with open(logf, "w") as fh:
        try:
            rc = subprocess.run(["simpleFoam", "-case", str(case)], stdout=fh, stderr=subprocess.STDOUT,
                                env=foam_env(), timeout=timeout).returncode
        except subprocess.TimeoutExpired as e:
            raise FoamError(f"{name}: simpleFoam timed out after {timeout:.0f} s") from e
    wall = time.perf_counter() - t0
    text = logf.read_text(errors="replace")
    res: dict[str, float] = {}
    for m in _RES.finditer(text):
        res[m.group(1)] = float(m.group(2))
    its = re.findall(r"^Time = (\d+)", text, flags=re.M)
    niter = int(its[-1]) if its else 0
    ex = re.findall(r"ExecutionTime = ([0-9.eE+-]+) s", text)
    if rc != 0:
        tail = " | ".join(text.strip().splitlines()[-6:])
        why = "diverged (floating point exception)" if "sigFpe" in text or "Floating point" in text else f"exit code {rc}"
        raise FoamError(f"{name}: simpleFoam {why} at iteration {niter}: {tail[-400:]}")
    if any(not np.isfinite(v) for v in res.values()):
        raise FoamError(f"{name}: simpleFoam diverged (NaN residuals) at iteration {niter}")
    converged = "SIMPLE solution converged" in text
    worst = max(res.values()) if res else float("inf")
    if not converged and worst > 1e-3:
        raise FoamError(f"{name}: simpleFoam diverged or stalled: initial residuals {res} after {niter} "
                        "iterations (> 1e-3)")
    tdirs = [d for d in case.iterdir() if d.is_dir() and re.fullmatch(r"\d+(\.\d+)?", d.name) and d.name != "0"]
    if not tdirs:
        raise FoamError(f"{name}: simpleFoam wrote no result time directory")
    tdir = max(tdirs, key=lambda d: float(d.name))
    return RunResult(niter, converged, res, wall, float(ex[-1]) if ex else float("nan"), tdir)


# ----------------------------------------------------------------------------- reading fields


def _parse_list(text: str, start: int, kind: str) -> tuple[np.ndarray, int]:
    """Parse ``N ( ... )`` beginning at ``start``; return values and end offset."""
    m = re.compile(r"\s*(\d+)\s*\(").match(text, start)
    if not m:
        raise FoamError(f"expected a counted list at offset {start}: {text[start:start + 60]!r}")
    n = int(m.group(1))
    end = text.find("\n)", m.end())
    if end < 0:
        end = text.find(")", m.end())
    body = text[m.end():end]
    if kind == "vector":
        vals = np.array(body.replace("(", " ").replace(")", " ").split(), dtype=np.float64).reshape(-1, 3)
    else:
        vals = np.array(body.split(), dtype=np.float64)
    if len(vals) != n:
        raise FoamError(f"counted list says {n} values, read {len(vals)}")
    return vals, end


def read_field(path: Path, n_cells: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Read an ASCII volField: internal values and the nonuniform boundary ``value`` lists.

    Shapes
    ------
    returns : internal (n_cells,) or (n_cells, 3), and {patch: (n_faces,) or (n_faces, 3)}
    """
    text = path.read_text()
    cm = re.search(r"\bclass\s+(\w+);", text)
    kind = "vector" if cm and "Vector" in cm.group(1) else "scalar"
    m = re.search(r"internalField\s+(uniform|nonuniform List<\w+>)", text)
    if not m:
        raise FoamError(f"{path}: no internalField")
    if m.group(1) == "uniform":
        val = re.match(r"\s*\(?([^;]*?)\)?;", text[m.end():]).group(1)
        v = np.array(val.split(), dtype=np.float64)
        internal = np.tile(v, (n_cells, 1)) if kind == "vector" else np.full(n_cells, float(v[0]))
    else:
        internal, _ = _parse_list(text, m.end(), kind)
    bnd: dict[str, np.ndarray] = {}
    bf = text.find("boundaryField")
    for pm in re.finditer(r"\n    (\w+)\n    \{", text[bf:]):
        name = pm.group(1)
        blk_start = bf + pm.end()
        blk_end = text.find("\n    }", blk_start)
        blk = text[blk_start:blk_end]
        vm = re.search(r"\bvalue\s+nonuniform List<\w+>", blk)
        if vm:
            vals, _ = _parse_list(text, blk_start + vm.end(), kind)
            bnd[name] = vals
    return internal, bnd


# ----------------------------------------------------------------------------- reading a polyMesh


def _foam_body(path: Path) -> str:
    text = path.read_text()
    m = re.search(r"FoamFile\s*\{.*?\}", text, flags=re.S)
    return text[m.end():] if m else text


def read_polymesh(case: Path) -> dict[str, Any]:
    """Read an ASCII ``constant/polyMesh``: ``points`` (n, 3), ``faces`` (list of index arrays, or a
    (f, k) array when all faces have k vertices), ``owner`` (f,), ``neighbour`` (internal faces,),
    ``patches`` {name: (start, count)}, ``n_cells``."""
    pm = case / "constant" / "polyMesh"
    body = _foam_body(pm / "points")
    m = re.search(r"(\d+)\s*\(", body)
    if not m:
        raise FoamError(f"{pm / 'points'}: no point list")
    n = int(m.group(1))
    pts = np.array(body[m.end():body.rindex(")")].replace("(", " ").replace(")", " ").split(), dtype=np.float64)
    points = pts.reshape(n, 3)
    body = _foam_body(pm / "faces")
    m = re.search(r"(\d+)\s*\(", body)
    nf = int(m.group(1))
    tok = np.array(body[m.end():body.rindex(")")].replace("(", " ").replace(")", " ").split(), dtype=np.int64)
    k0 = int(tok[0])
    if len(tok) == nf * (k0 + 1) and (tok[:: k0 + 1] == k0).all():
        faces: Any = tok.reshape(nf, k0 + 1)[:, 1:]
    else:
        faces, i = [], 0
        while i < len(tok):
            k = int(tok[i])
            faces.append(tok[i + 1:i + 1 + k])
            i += k + 1
    owner, neighbour = (_label_list(pm / name) for name in ("owner", "neighbour"))
    btext = _foam_body(pm / "boundary")
    patches = {}
    for pmatch in re.finditer(r"(\w+)\s*\{([^}]*)\}", btext):
        d = dict(re.findall(r"(\w+)\s+([^;]+);", pmatch.group(2)))
        patches[pmatch.group(1)] = (int(d["startFace"]), int(d["nFaces"]))
    n_cells = int(max(owner.max(), neighbour.max() if len(neighbour) else -1)) + 1
    return {"points": points, "faces": faces, "owner": owner, "neighbour": neighbour, "patches": patches,
            "n_cells": n_cells}


def _label_list(path: Path) -> np.ndarray:
    body = _foam_body(path)
    m = re.search(r"(\d+)\s*\(", body)
    if not m:
        raise FoamError(f"{path}: no label list")
    return np.array(body[m.end():body.rindex(")")].split(), dtype=np.int64)
