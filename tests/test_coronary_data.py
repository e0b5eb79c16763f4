"""coronary-synthetic data recipe: vessel validation, O-grid polyMesh, a tiny OpenFOAM case end to end,
the generator's resumability and failure handling, the CLI, and the shipped compact dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from meshops.data import recipe_module

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "datasets" / "coronary_synthetic"


def _load(name: str):
    return recipe_module(RECIPE, name)


vessel = _load("vessel")
ogrid = _load("ogrid")
foamcase = _load("foamcase")

needs_foam = pytest.mark.skipif(not foamcase.openfoam_available(), reason="OpenFOAM (simpleFoam) not installed")


# ----------------------------------------------------------------------------- bad input


def _line(m=5):
    return np.stack([np.zeros(m), np.zeros(m), np.linspace(0, 10, m)], 1)


def test_centerline_needs_two_points():
    with pytest.raises(vessel.VesselError, match=r"'points' has 1 point\(s\); at least 2"):
        vessel.validate_centerline(np.zeros((1, 3)), [1.0], 1.0)


def test_radius_must_be_positive():
    r = np.ones(5)
    r[3] = 0.0
    with pytest.raises(vessel.VesselError, match=r"radius\[3\] = 0.0"):
        vessel.validate_centerline(_line(), r, 1.0, "my.vtp")
    r[3] = -0.5
    with pytest.raises(vessel.VesselError, match=r"my.vtp: 'radius' must be finite and > 0; radius\[3\] = -0.5"):
        vessel.validate_centerline(_line(), r, 1.0, "my.vtp")


def test_nan_coordinates_rejected():
    p = _line()
    p[2, 1] = np.nan
    with pytest.raises(vessel.VesselError, match=r"non-finite coordinates at point 2"):
        vessel.validate_centerline(p, np.ones(5), 1.0)


@pytest.mark.parametrize("Q", [0.0, -1.0, float("nan")])
def test_inlet_flow_must_be_positive(Q):
    with pytest.raises(vessel.VesselError, match=r"inlet flow 'Q' must be a finite number > 0"):
        vessel.vessel_from_centerline(_line(), np.ones(5), Q)


def test_radius_length_mismatch_and_coincident_points():
    with pytest.raises(vessel.VesselError, match=r"'radius' has 4 values but the centerline has 5"):
        vessel.validate_centerline(_line(), np.ones(4), 1.0)
    p = _line()
    p[3] = p[2]
    with pytest.raises(vessel.VesselError, match=r"points' 2 and 3 coincide"):
        vessel.validate_centerline(p, np.ones(5), 1.0)


# ----------------------------------------------------------------------------- random vessels


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_sampled_vessel_respects_ranges(seed):
    v = vessel.sample_vessel(seed)
    R = vessel.RANGES
    p = v.params
    assert R["length"][0] <= p["length"] <= R["length"][1]
    assert abs(vessel.arc_length(v.points)[-1] - p["length"]) < 1e-6 * p["length"]
    assert R["Q"][0] <= v.Q <= R["Q"][1]
    if not p["stenoses"]:
        assert v.radius.min() >= 1.0 - 1e-9, "without stenosis the radius stays >= 1 mm"
    assert v.radius.max() <= R["r_in"][1] + 1e-9
    # the narrowest point of each stenosis removes the drawn fraction of the (tapered) lumen area
    s = vessel.arc_length(v.points)
    for st in p["stenoses"]:
        i = int(np.argmin(np.abs(s - st["center"])))
        base = p["r_in"] + (p["r_out"] - p["r_in"]) * s[i] / p["length"]
        assert abs(1 - (v.radius[i] / base) ** 2 - st["area_reduction"]) < 0.02
    kappa, _ = vessel.curvature_torsion(v.points)
    assert kappa[5:-5].max() <= R["kappa"][1] * 1.05
    assert vessel.self_clearance(v.points[::4], v.radius[::4]) > 1.5
    # deterministic in the seed
    assert np.array_equal(vessel.sample_vessel(seed).points, v.points)


# ----------------------------------------------------------------------------- O-grid


def test_template_and_polymesh_are_consistent(tmp_path):
    tpl = ogrid.disc_template(6, 4)
    assert len(tpl.xy) == 7 * 7 + 4 * 6 * 4
    assert len(tpl.wall) == 24
    assert np.allclose(np.linalg.norm(tpl.xy[tpl.wall], axis=1), 1.0)
    ang = np.mod(np.arctan2(tpl.xy[tpl.wall, 1], tpl.xy[tpl.wall, 0]), 2 * np.pi)
    assert np.all(np.diff(ang) > 0)
    v = vessel.sample_vessel(3, n_stenoses=2)
    F = v.frames
    tube = ogrid.sweep(v.points[::10], v.radius[::10], F[::10, 1], F[::10, 2], tpl)
    assert (ogrid.hex_volumes(tube.points, tube.hexes) > 0).all()
    pm = ogrid.to_polymesh(tube)
    nint = len(pm.neighbour)
    own = pm.owner[:nint]
    assert (own < pm.neighbour).all()
    key = own * (len(tube.hexes) + 1) + pm.neighbour
    assert (np.diff(key) > 0).all(), "internal faces must be in upper-triangular order"
    sizes = {n: k for n, _t, k, _s in pm.patches}
    nsec = tube.n_sections
    assert sizes == {"inlet": len(tpl.quads), "outlet": len(tpl.quads), "wall": (nsec - 1) * 24}
    # every cell is closed: its outward face area vectors sum to zero
    P = pm.points[pm.faces]
    Sf = 0.5 * np.cross(P[:, 2] - P[:, 0], P[:, 3] - P[:, 1])
    acc = np.zeros((len(tube.hexes), 3))
    np.add.at(acc, pm.owner, Sf)
    np.add.at(acc, pm.neighbour, -Sf[:nint])
    assert np.abs(acc).max() < 1e-9 * np.abs(Sf).max() * 10
    # wall faces point away from the centerline
    wsl = pm.patch_slice("wall")
    fc = P[wsl].mean(1)
    d = fc - v.points[::10][np.argmin(np.linalg.norm(fc[:, None] - v.points[::10][None], axis=2), axis=1)]
    assert (np.einsum("ij,ij->i", Sf[wsl], d) > 0).mean() > 0.99
    # inlet faces point upstream (out of the domain)
    assert (Sf[pm.patch_slice("inlet")] @ F[0, 0] < 0).all()
    ogrid.write_polymesh(pm, tmp_path)
    head = (tmp_path / "constant" / "polyMesh" / "owner").read_text()
    assert f"nCells:{len(tube.hexes)}" in head


def test_inlet_profile_carries_exact_flux():
    g = _load("generate")
    v = vessel.vessel_from_centerline(_line(20), np.full(20, 1.5), 1.3)
    tpl = ogrid.disc_template(6, 4)
    tube = ogrid.sweep(v.points, v.radius, v.frames[:, 1], v.frames[:, 2], tpl)
    pm = ogrid.to_polymesh(tube, scale=1e-3)
    U = g.inlet_velocity(pm, v.points[0] * 1e-3, v.frames[0, 0], 1.5e-3, 1.3e-6)
    P = pm.points[pm.faces[pm.patch_slice("inlet")]]
    Sf = 0.5 * np.cross(P[:, 2] - P[:, 0], P[:, 3] - P[:, 1])
    assert abs(-np.einsum("ij,ij->", U, Sf) / 1.3e-6 - 1) < 1e-12
    # parabolic: centre speed about twice the mean
    umean = 1.3e-6 / (np.pi * 1.5e-3**2)
    assert 1.8 < np.linalg.norm(U, axis=1).max() / umean < 2.05


# ----------------------------------------------------------------------------- OpenFOAM end to end

TINY = {"nc": 4, "nr": 3, "axial": 0.9, "grading": 0.7}


@needs_foam
def test_tiny_case_end_to_end_resumable_and_failures(tmp_path):
    g = _load("generate")
    out = tmp_path / "gen"
    stats = g.generate(out, 2, workers=2, seed=0, mesh=TINY, progress=False)  # two worker processes
    assert stats["done"] == 2 and stats["failed"] == 0
    assert sorted(d.name for d in out.iterdir()) == ["case_00000", "case_00001"]  # no leftovers
    case = out / "case_00000"
    card = json.loads((case / "case.json").read_text())
    assert card["solver"]["converged"] and card["mesh"]["cells"] > 1000
    assert card["Q_mL_s"] > 0 and set(card["solver"]["final_initial_residuals"]) >= {"p", "Ux"}
    from meshops.io import read

    wall = read(case / "wall.vtp")
    p, wss, mag = (np.asarray(wall.point_data[k]) for k in ("p", "wss", "wss_mag"))
    assert wss.shape == (wall.n_points, 3) and np.allclose(mag, np.linalg.norm(wss, axis=1), rtol=1e-5)
    # pressure falls towards the outlet (p = 0 there) and WSS points downstream
    cl = read(case / "centerline.vtp")
    ns = cl.n_points
    pr = p.reshape(ns, -1).mean(1)
    assert pr[0] > 1.0 and abs(pr[-1]) < 0.1 * pr[0]
    t = np.asarray(cl.point_data["tangent"])
    assert (np.einsum("ijk,ik->ij", wss.reshape(ns, -1, 3), t) > 0).mean() > 0.9
    # resumable: a second run skips the finished case and does not touch it
    mtime = (case / "case.json").stat().st_mtime_ns
    stats2 = g.generate(out, 2, workers=1, seed=0, mesh=TINY, progress=False)
    assert stats2["skipped"] == 2 and stats2["done"] == 0
    assert (case / "case.json").stat().st_mtime_ns == mtime
    # a run stopped far from convergence is reported as a failure and its outputs do not appear
    stats3 = g.generate(out, 1, workers=1, seed=0, start=2, mesh=TINY, solver={"max_iter": 3}, progress=False)
    assert stats3["failed"] == 1 and stats3["done"] == 0
    assert not (out / "case_00002").exists()
    rec = [json.loads(ln) for ln in (out / "failures.jsonl").read_text().splitlines()]
    assert rec[-1]["name"] == "case_00002" and "diverged or stalled" in rec[-1]["reason"]
    # a recorded failure is skipped on a rerun with the same configuration unless retried (a changed
    # configuration retries it: tests/test_bad_inputs.py::test_generator_failures_keyed_by_configuration)
    again = g.generate(out, 1, workers=1, seed=0, start=2, mesh=TINY, solver={"max_iter": 3}, progress=False)
    assert again["skipped"] == 1 and again["skipped_failed"] == 1
    # the loader reads the generated folder at full resolution
    from meshops.data import load_dataset

    ds = load_dataset(str(RECIPE), root=str(out))
    c = ds[0]
    assert c.mesh.n_points == wall.n_points and c.globals["Q"] == pytest.approx(card["Q_mL_s"])
    assert np.allclose(c.mesh.point_data["p"], p)


@needs_foam
def test_diverging_solver_is_reported(tmp_path):
    g = _load("generate")
    v = vessel.vessel_from_centerline(_line(10), np.full(10, 1.5), 1.0)
    ss = g.SolverSettings(max_iter=50, relax_U=1.9, relax_p=1.0)  # over-relaxed: blows up
    with pytest.raises(g.FoamError, match="pipe: (simpleFoam )?(diverged|exit code)"):
        g.solve_vessel(v, tmp_path / "c", g.MeshSettings(**TINY), ss, name="pipe")


# ----------------------------------------------------------------------------- CLI


def test_cli_lists_and_rejects_unknown(tmp_path, capsys):
    from meshops.cli import main

    assert main(["datasets", "list"]) == 0
    assert "coronary-synthetic" in capsys.readouterr().out
    assert main(["datasets", "generate", "no-such-set", "--n", "1", "--out", str(tmp_path)]) == 1
    assert "no generator for dataset 'no-such-set'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- shipped data

SHIPPED = RECIPE / "data" / "coronary_synthetic.npz"
needs_shipped = pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped coronary data not present")


@needs_shipped
def test_shipped_dataset_loads_with_consistent_geometry():
    from meshops.data import Case, load_dataset

    ds = load_dataset("coronary_synthetic")
    assert len(ds) >= 100
    names = {s: set(load_dataset("coronary_synthetic", split=s).case_names()) for s in ("train", "val", "test")}
    assert not (names["train"] & names["test"]) and not (names["train"] & names["val"])
    assert sum(len(v) for v in names.values()) == len(ds) and len(names["test"]) >= 5
    for i in (0, len(ds) // 2, len(ds) - 1):
        c = ds[i]
        assert isinstance(c, Case) and c.globals["Q"] > 0
        m = c.mesh
        cl = ds.centerline(i)
        assert cl["points"].shape[1] == 3 and (cl["radius"] > 0).all()
        ns, nw = len(cl["radius"]), m.n_points // len(cl["radius"])
        # wall points lie on circles of the stored radius around the centerline
        d = np.linalg.norm(m.points.reshape(ns, nw, 3) - cl["points"][:, None], axis=2)
        assert np.allclose(d, cl["radius"][:, None], rtol=1e-5)
        # outward quads
        q = m.cells[0].data
        X = m.points[q]
        n = np.cross(X[:, 2] - X[:, 0], X[:, 3] - X[:, 1])
        ctr = X.mean(1)
        sec = q[:, 0] // nw
        assert (np.einsum("ij,ij->i", n, ctr - cl["points"][sec]) > 0).all()
        wss = c.field_array("wss")
        assert wss.shape == (m.n_points, 3)
        assert np.allclose(c.field_array("wss_mag")[:, 0], np.linalg.norm(wss, axis=1), rtol=1e-5)
        # physical sanity: inlet pressure above outlet, flow-aligned WSS
        p = c.field_array("p")[:, 0].reshape(ns, nw)
        assert p[0].mean() > 0 and abs(p[-1].mean()) < 0.05 * np.abs(p).max() + 1.0
        t = np.gradient(cl["points"], axis=0)
        assert (np.einsum("ijk,ik->ij", wss.reshape(ns, nw, 3), t) > 0).mean() > 0.8
    card = ds.card(0)
    assert card["mesh"]["cells"] > 0 and card["solver"]["solver_wall_time_s"] > 0


def test_loader_bad_options():
    from meshops.data import DatasetError, load_dataset

    with pytest.raises(DatasetError, match="split 'bogus' unknown"):
        load_dataset(str(RECIPE), path=str(SHIPPED), split="bogus")
    with pytest.raises(DatasetError, match="input field 'pressure' unknown"):
        load_dataset(str(RECIPE), inputs=["pressure"])
    with pytest.raises(DatasetError, match="nothing.npz not found"):
        load_dataset(str(RECIPE), path="/nonexistent/nothing.npz")
