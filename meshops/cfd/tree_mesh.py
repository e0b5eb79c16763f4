"""The wall of a vessel tree as a union of branch lofts, and its tetrahedral volume mesh (gmsh).

Route (OpenCASCADE through gmsh): every branch becomes a solid lofted (``addThruSections``)
through circles of the local radius placed in the branch's rotation-minimizing frames (a section
every ``section_spacing`` local radii); a ball closes a parent that ends where its children start
(VMTK-style splits); the solids are fused (``BooleanFuse``), so the wall is the exact union of the
tubes. The planar end faces that remain are the inlet (root start) and one outlet per open branch
end; everything else is the wall. The volume is meshed with tetrahedra whose size is
``wall_size * r`` at the wall, growing to ``core_size * r`` over ``grow * r`` towards the axis
(``r``: the radius of the nearest centerline point; HXT, or Delaunay where HXT gives up), written as msh 2.2 in metres and converted
with OpenFOAM's ``gmshToFoam``; the patch ``wall`` gets the type ``wall``. Optionally
(``layers``), prism layers are extruded from the wall into the finished mesh (:func:`add_wall_layers`).
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from meshops.cfd.foam import FoamError, foam_env
from meshops.cfd.tree import Tree, TreeError
from meshops.geometry.polyline import arc_length, rotation_minimizing_frames

log = logging.getLogger(__name__)
RULED = True

__all__ = ["TreeMeshSettings", "mesh_tree", "sections"]


@dataclass
class TreeMeshSettings:
    """Sizes in units of the local radius."""

    wall_size: float = 0.22
    core_size: float = 0.44
    grow: float = 0.6
    section_spacing: float = 1.0
    algorithm_3d: int = 10  # HXT
    dual: bool = True  # convert the tetrahedra to their polyhedral dual (polyDualMesh)
    optimize_netgen: bool = False
    #: prism layers extruded from the wall into the fluid (snappyHexMesh's layer addition on the
    #: finished mesh; 0: none), ``layer_thickness`` in all, in units of the tree's 10th-percentile radius.
    #: Three by default: they halve the pointwise |WSS| spread of the bare dual cells (dataset card)
    layers: int = 3
    layer_expansion: float = 1.2
    layer_thickness: float = 0.1
    min_layer_coverage: float = 0.9  # mean layers per wall face / ``layers`` below which the mesh is refused


def sections(points: np.ndarray, radius: np.ndarray, spacing: float) -> tuple[np.ndarray, ...]:
    """Loft sections of one branch: centres, radii, tangents, normals, ``spacing * r`` apart
    (closer where the radius changes: at most ~3 % of the radius from one section to the next).

    Shapes
    ------
    points (m, 3), radius (m,) -> P (k, 3), R (k,), T (k, 3), N (k, 3)
    """
    from scipy.interpolate import CubicSpline, PchipInterpolator

    s = arc_length(points)
    L = float(s[-1])
    dens_s = np.linspace(0, L, 401)
    if len(s) >= 3:
        cs, rs = CubicSpline(s, points, axis=0, bc_type="natural"), PchipInterpolator(s, radius)
    else:
        def cs(x: np.ndarray) -> np.ndarray:
            return points[0] + (x / L)[:, None] * (points[1] - points[0])

        def rs(x: np.ndarray) -> np.ndarray:
            return np.interp(x, s, radius)
    r_f = rs(dens_s)
    # ``spacing * r`` apart, and closer where the radius changes (stenoses): at most ~3% of r per section
    dens = 1.0 / (spacing * r_f) + np.abs(np.gradient(r_f, dens_s)) / (0.03 * r_f)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(dens_s))])
    k = max(int(np.ceil(cum[-1])) + 1, 4)
    st = np.interp(np.linspace(0, cum[-1], k), cum, dens_s)
    P = np.asarray(cs(st))
    # frames from a dense resampling (accurate tangents), taken at the stations
    dense = np.asarray(cs(np.linspace(0, L, 8 * k)))
    T, N, _ = rotation_minimizing_frames(dense)
    idx = np.clip(np.round(st / L * (8 * k - 1)).astype(int), 0, 8 * k - 1)
    return P, np.asarray(rs(st)), T[idx], N[idx]


def _loft(occ: Any, P: np.ndarray, R: np.ndarray, T: np.ndarray, N: np.ndarray) -> list[tuple[int, int]]:
    wires = []
    for p, r, t, n in zip(P, R, T, N, strict=True):
        c = occ.addCircle(*map(float, p), float(r), zAxis=[float(x) for x in t], xAxis=[float(x) for x in n])
        wires.append(occ.addCurveLoop([c]))
    # maxDegree 2: OCC's default (free degree) overshoots between many sections (volumes off by
    # 60 % and more on stenosed branches); quadratic pieces follow the sections (volume within 0.2 %)
    out = occ.addThruSections(wires, makeSolid=True, makeRuled=RULED, maxDegree=2)
    return [e for e in out if e[0] == 3]


def _check_volume(occ: Any, vol: list[tuple[int, int]], P: np.ndarray, R: np.ndarray, b: int, where: str) -> None:
    """The loft's volume against the tube's ``integral pi r^2 ds`` (a bad loft bulges or twists)."""
    s = arc_length(P)
    expected = float(np.sum(0.5 * (R[1:] ** 2 + R[:-1] ** 2) * np.diff(s)) * np.pi)
    got = float(occ.getMass(*vol[0]))
    if not abs(got - expected) <= 0.03 * expected:
        raise TreeError(f"{where}: branch {b}: the lofted tube has volume {got:.4g}, the centerline and radii give "
                        f"{expected:.4g} (more than 3 % off: the loft does not follow the sections)")


def _end_caps(tree: Tree) -> dict[str, tuple[np.ndarray, float]]:
    caps = {"inlet": (tree.points[0][0], float(tree.radius[0][0]))}
    for b in tree.outlets():
        caps[f"outlet_{b}"] = (tree.points[b][-1], float(tree.radius[b][-1]))
    return caps


def build_wall(tree: Tree, ms: TreeMeshSettings, where: str) -> tuple[int, dict[str, list[int]]]:
    """Fused tree solid in the current gmsh model: (volume tag, {patch: surface tags})."""
    import gmsh

    occ = gmsh.model.occ
    solids: list[tuple[int, int]] = []
    for b in range(tree.n_branches):
        P, R, T, N = sections(tree.points[b], tree.radius[b], ms.section_spacing)
        loft = _loft(occ, P, R, T, N)
        _check_volume(occ, loft, P, R, b, where)
        solids += loft
        if not tree.has_outlet(b):  # children start at its end: a ball closes the split
            solids.append((3, occ.addSphere(*map(float, tree.points[b][-1]), float(tree.radius[b][-1]))))
    if len(solids) > 1:
        fused, _ = occ.fuse(solids[:1], solids[1:])
    else:
        fused = solids
    occ.synchronize()
    vols = [t for d, t in fused if d == 3]
    if len(vols) != 1:
        raise TreeError(f"{where}: the union of the branch tubes has {len(vols)} separate volumes (branches "
                        "that do not touch their parent?)")
    caps = _end_caps(tree)
    patches: dict[str, list[int]] = {k: [] for k in caps}
    patches["wall"] = []
    for d, t in gmsh.model.getBoundary([(3, vols[0])], oriented=False):
        if gmsh.model.getType(d, t) == "Plane":
            c = np.array(occ.getCenterOfMass(d, t))
            name, (cp, r) = min(caps.items(), key=lambda kv: np.linalg.norm(c - kv[1][0]))
            if np.linalg.norm(c - cp) < 0.3 * r:
                patches[name].append(t)
                continue
        patches["wall"].append(t)
    for name, tags in patches.items():
        if len(tags) != 1 and name != "wall":
            raise TreeError(f"{where}: the end face '{name}' is cut or covered by another branch "
                            f"({len(tags)} planar faces found there)")
    return vols[0], patches


def _size_callback(tree: Tree, ms: TreeMeshSettings) -> Any:
    """gmsh size callback ``r (wall_size + (core_size - wall_size) w)``, ``w`` = depth below the wall / ``grow r``.

    The nearest centerline sample is found by walking along the branch from the previous call's
    answer (gmsh asks for nearby points in a row) and checked: a point beyond 1.25 r of it goes to
    a k-d tree query (exact) instead.
    """
    from scipy.spatial import cKDTree

    P, R, lo, hi = [], [], [], []
    n = 0
    for b in range(tree.n_branches):
        s = arc_length(tree.points[b])
        st = np.linspace(0, s[-1], max(int(s[-1] / (0.2 * tree.radius[b].min())) + 2, 2))
        P.append(np.stack([np.interp(st, s, tree.points[b][:, k]) for k in range(3)], 1))
        R.append(np.interp(st, s, tree.radius[b]))
        lo += [n] * len(st)
        hi += [n + len(st) - 1] * len(st)
        n += len(st)
    Pa, Ra = np.concatenate(P), np.concatenate(R)
    kd = cKDTree(Pa)
    X, Y, Z, RL = Pa[:, 0].tolist(), Pa[:, 1].tolist(), Pa[:, 2].tolist(), Ra.tolist()
    last = [0]
    aw, ac, g = ms.wall_size, ms.core_size, ms.grow

    def d2(i: int, x: float, y: float, z: float) -> float:
        return (X[i] - x) ** 2 + (Y[i] - y) ** 2 + (Z[i] - z) ** 2

    def size(dim: int, tag: int, x: float, y: float, z: float, lc: float) -> float:
        i = last[0]
        best = d2(i, x, y, z)
        for step in (1, -1):
            while lo[i] <= i + step <= hi[i]:
                dn = d2(i + step, x, y, z)
                if dn >= best:
                    break
                i, best = i + step, dn
        d = best**0.5
        if d > 1.25 * RL[i]:  # not in (or at the wall of) this tube: the exact nearest sample
            d, i = kd.query((x, y, z))
        last[0] = int(i)
        r = RL[i]
        w = min(max(r - d, 0.0) / (g * r), 1.0)
        return r * (aw + (ac - aw) * w)

    return size


def mesh_tree(tree: Tree, case: Path, ms: TreeMeshSettings | None = None, where: str = "tree",
              unit_m: float = 1e-3, timeout: float = 600.0) -> dict[str, Any]:
    """Mesh ``tree`` (lengths in units of ``unit_m`` metres) into ``case/constant/polyMesh``.

    ``case/system/controlDict`` must exist (``gmshToFoam`` reads it). Returns the mesh info:
    cells, patches (name -> face count), timings, checkMesh's findings and the settings. A mesh with
    a cell of negative volume is refused (``TreeError``); when HXT's tetrahedra give one, the tree is
    meshed once more with Delaunay.
    """
    ms = ms or TreeMeshSettings()
    case = Path(case).resolve()  # the OpenFOAM tools run with the case as working directory
    info = _volume_mesh(tree, case, ms, ms.algorithm_3d, where, unit_m, timeout)
    if info["check"]["negative_volume_cells"] and ms.algorithm_3d != 1:
        log.info("%s: %d cells of negative volume after polyDualMesh; meshing again with Delaunay", where,
                 info["check"]["negative_volume_cells"])
        info = _volume_mesh(tree, case, ms, 1, where, unit_m, timeout)
    _refuse_negative(info["check"], where, "the dual mesh")
    if ms.layers:
        r10 = float(np.percentile(np.concatenate([np.asarray(r) for r in tree.radius]), 10))
        info["layers"] = add_wall_layers(case, ms, ms.layer_thickness * r10 * unit_m, where, timeout)
        info["check"] = check_mesh(case, timeout)
        _refuse_negative(info["check"], where, "the mesh with wall layers")
    if info["check"]["failed"]:
        log.debug("%s: checkMesh: %s", where, "; ".join(info["check"]["failed"]))
    return info


def _volume_mesh(tree: Tree, case: Path, ms: TreeMeshSettings, algorithm: int, where: str, unit_m: float,
                 timeout: float) -> dict[str, Any]:
    """Tetrahedra from gmsh (3D ``algorithm``), into OpenFOAM, then their polyhedral dual when ``ms.dual``."""
    msh = case / "tree.msh"
    n_tets, patches, t_geo, t_mesh = _tetrahedra(tree, ms, algorithm, msh, where, unit_m)
    _gmsh_to_foam(case, msh, timeout)
    msh.unlink()
    if ms.dual:
        # feature angle 150: only the patch rims stay feature edges. At 80 the concave junction creases
        # are kept too, and the dual cells along them come out tiny or inverted (neighbour volume
        # ratios below 0.01, negative volumes), which also leaves the wall layers a quarter short.
        _foam_tool(case, ["polyDualMesh", "-case", str(case), "150", "-overwrite"], "polyDualMesh", timeout)
    return {"tetrahedra": n_tets, "algorithm_3d": algorithm,
            "cell_type": "polyhedra (dual of tetrahedra)" if ms.dual else "tetrahedra",
            "patch_names": sorted(patches), "geometry_time_s": round(t_geo, 3), "meshing_time_s": round(t_mesh, 3),
            "check": check_mesh(case, timeout), "settings": asdict(ms)}


def _tetrahedra(tree: Tree, ms: TreeMeshSettings, algorithm: int, msh: Path, where: str,
                unit_m: float) -> tuple[int, dict[str, list[int]], float, float]:
    """Write the gmsh tetrahedra of ``tree`` to ``msh``; returns (count, patches, geometry s, meshing s)."""
    import gmsh

    t0 = time.perf_counter()
    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.model.add("tree")
        vol, patches = build_wall(tree, ms, where)
        t_geo = time.perf_counter() - t0
        gmsh.model.addPhysicalGroup(3, [vol], name="fluid")
        for name, tags in patches.items():
            gmsh.model.addPhysicalGroup(2, tags, name=name)
        for opt, val in (("Mesh.MeshSizeFromCurvature", 0), ("Mesh.MeshSizeExtendFromBoundary", 0),
                         ("Mesh.MeshSizeFromPoints", 0), ("Mesh.Algorithm3D", algorithm),
                         ("Mesh.OptimizeNetgen", int(ms.optimize_netgen)), ("Mesh.MshFileVersion", 2.2),
                         ("Mesh.ScalingFactor", unit_m)):
            gmsh.option.setNumber(opt, val)
        gmsh.model.mesh.setSizeCallback(_size_callback(tree, ms))
        try:
            gmsh.model.mesh.generate(3)
        except Exception as e:  # noqa: BLE001 - HXT gives up on some junctions: Delaunay, once
            if algorithm == 1:
                raise
            log.info("%s: gmsh 3D algorithm %d failed (%s); retrying with Delaunay", where, algorithm, e)
            gmsh.model.mesh.clear()
            gmsh.option.setNumber("Mesh.Algorithm3D", 1)
            gmsh.model.mesh.generate(3)
        gmsh.write(str(msh))
        _, tags, _ = gmsh.model.mesh.getElements(3)
        n_tets = int(sum(len(t) for t in tags))
    except Exception as e:
        if isinstance(e, TreeError):
            raise
        raise TreeError(f"{where}: gmsh failed to build or mesh the tree wall: {e}") from e
    finally:
        gmsh.finalize()
    return n_tets, patches, t_geo, time.perf_counter() - t0 - t_geo


def check_mesh(case: Path, timeout: float = 600.0) -> dict[str, Any]:
    """checkMesh's verdict on ``case``: cells of negative volume, the largest non-orthogonality (deg)
    and the names of the failed checks (its ``***`` lines)."""
    _foam_tool(case, ["checkMesh", "-case", str(case)], "checkMesh", timeout)
    shutil.rmtree(case / "constant" / "polyMesh" / "sets", ignore_errors=True)
    text = (case / "log.checkMesh").read_text()
    neg = re.search(r"Number of negative volume cells: (\d+)", text)
    non_orth = re.search(r"Mesh non-orthogonality Max: ([\d.eE+-]+)", text)
    return {"negative_volume_cells": int(neg.group(1)) if neg else 0,
            "max_non_orthogonality": float(non_orth.group(1)) if non_orth else None,
            "failed": [f.strip() for f in re.findall(r"\*\*\*([^.:\n]*)", text)]}


def _refuse_negative(check: dict[str, Any], where: str, what: str) -> None:
    if check["negative_volume_cells"]:
        raise TreeError(f"{where}: {what} has {check['negative_volume_cells']} cells of negative volume (checkMesh)")


_LAYER_DICT = """FoamFile {{ version 2.0; format ascii; class dictionary; object snappyHexMeshDict; }}
castellatedMesh false; snap false; addLayers true;
geometry {{}}
castellatedMeshControls {{ maxLocalCells 100000000; maxGlobalCells 100000000; minRefinementCells 0;
    nCellsBetweenLevels 1; features (); refinementSurfaces {{}} resolveFeatureAngle 30; refinementRegions {{}}
    locationInMesh (0 0 0); allowFreeStandingZoneFaces true; }}
snapControls {{ nSmoothPatch 3; tolerance 2; nSolveIter 30; nRelaxIter 5; }}
addLayersControls {{ relativeSizes false; layers {{ wall {{ nSurfaceLayers {n}; }} }}
    expansionRatio {expansion}; thickness {thickness:.6g}; minThickness {min_thickness:.6g}; nGrow 0;
    featureAngle 180; slipFeatureAngle 30; nRelaxIter 5; nSmoothSurfaceNormals 1; nSmoothNormals 3;
    nSmoothThickness 10; maxFaceThicknessRatio 0.5; maxThicknessToMedialRatio 0.5; minMedialAxisAngle 90;
    nBufferCellsNoExtrude 0; nLayerIter 50; }}
meshQualityControls {{ maxNonOrtho 65; maxBoundarySkewness 20; maxInternalSkewness 4; maxConcave 80;
    minVol 1e-30; minTetQuality -1e30; minArea -1; minTwist 0.02; minDeterminant 0.001; minFaceWeight 0.05;
    minVolRatio -1; minTriangleTwist -1; nSmoothScale 4; errorReduction 0.75; }}
mergeTolerance 1e-6;
"""


def add_wall_layers(case: Path, ms: TreeMeshSettings, thickness_m: float, where: str, timeout: float) -> dict[str, Any]:
    """Extrude ``ms.layers`` prism layers of ``thickness_m`` in all from the wall into the finished mesh
    (snappyHexMesh, layers only; thinner where the medial-axis rule asks for it).

    Absolute sizes: snappyHexMesh's relative sizes come from a uniform level-0 cell size, which a
    mesh graded with the radius does not have (layers thicker than the small branches' faces, refused).

    The quality limits are OpenFOAM's defaults except the absolute ones (``minVol``, ``minTetQuality``),
    which assume metre-sized cells and would refuse every layer of a millimetre vessel, and
    ``minVolRatio``: the graded dual mesh has neighbour volume ratios below its 0.01 where a few cells
    meet the junction creases, and the check strips the layers around them although the layers do not
    make those ratios worse (checkMesh, run after, refuses cells of negative volume). Returns the
    coverage (mean number of layers per wall face / ``ms.layers``) and the mean total thickness; raises
    when the coverage is below ``ms.min_layer_coverage``.
    """
    t0 = time.perf_counter()
    (case / "system" / "snappyHexMeshDict").write_text(
        _LAYER_DICT.format(n=int(ms.layers), expansion=ms.layer_expansion, thickness=thickness_m,
                           min_thickness=0.1 * thickness_m))
    _foam_tool(case, ["snappyHexMesh", "-case", str(case), "-overwrite"], "snappyHexMesh", timeout)
    text = (case / "log.snappyHexMesh").read_text()
    m = re.findall(r"\n\s*wall\s+(\d+)\s+([\d.]+)\s+([\d.eE+-]+)\s+([\d.]+)\s*\n", text)
    if not m:
        raise FoamError(f"{where}: snappyHexMesh wrote no layer summary for the wall; see {case / 'log.snappyHexMesh'}")
    faces, n_avg, thick, _ = m[-1]
    coverage = float(n_avg) / ms.layers
    for f in ("cellLevel", "pointLevel", "level0Edge", "surfaceIndex"):
        (case / "constant" / "polyMesh" / f).unlink(missing_ok=True)
    if coverage < ms.min_layer_coverage:
        raise TreeError(f"{where}: wall layers: {float(n_avg):.2f} of {ms.layers} layers on average over "
                        f"{faces} wall faces (coverage {coverage:.0%} < {ms.min_layer_coverage:.0%})")
    return {"layers": ms.layers, "mean_layers": float(n_avg), "coverage": round(coverage, 4),
            "thickness_m": float(thick), "time_s": round(time.perf_counter() - t0, 3)}


def _foam_tool(case: Path, cmd: list[str], name: str, timeout: float) -> None:
    with open(case / f"log.{name}", "w") as fh:
        # cwd: polyDualMesh writes its feature *.obj files into the working directory
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=foam_env(), timeout=timeout,
                            cwd=case).returncode
    if rc != 0:
        raise FoamError(f"{case}: {name} failed (exit {rc}); see {case / f'log.{name}'}")


def _gmsh_to_foam(case: Path, msh: Path, timeout: float) -> None:
    _foam_tool(case, ["gmshToFoam", "-case", str(case), str(msh)], "gmshToFoam", timeout)
    bfile = case / "constant" / "polyMesh" / "boundary"
    text = bfile.read_text()
    text = re.sub(r"(\n\s*wall\s*\{[^}]*?type\s+)patch;", r"\1wall;", text)
    text = re.sub(r"(\n\s*wall\s*\{[^}]*?physicalType\s+)patch;", r"\1wall;", text)
    bfile.write_text(text)
