"""cylinder-flow: the shipped subset loads as 2D trajectories with node types; Strouhal helpers; the generator."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from meshops.data import load_dataset, recipe_module

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "datasets" / "cylinder_flow"


def test_shipped_subset_loads_with_regions_and_2d_fields():
    ds = load_dataset("cylinder_flow")
    assert len(ds) == 3
    tr = ds[0]
    assert tr.dim == 2 and tr.n_steps == 100
    assert set(tr.mesh.boundaries) == {"inlet", "outlet", "walls", "obstacle"}
    X = tr.states(["u", "v", "p"])
    assert X.shape == (100, tr.mesh.n_points, 3) and np.isfinite(X).all()
    assert np.allclose(np.diff(tr.times), 0.2, atol=1e-6)
    ids = np.unique(tr.mesh.boundaries["inlet"][0].data)
    assert np.allclose(X[:, ids, 0], 1.0, atol=1e-3) and np.allclose(X[:, ids, 1], 0.0, atol=1e-3)
    obs = np.unique(tr.mesh.boundaries["obstacle"][0].data)
    o = ds.card(0)["geometry"]["obstacles"][0]
    r = np.linalg.norm(tr.mesh.points[obs, :2] - [o["x"], o["y"]], axis=1)
    assert np.allclose(r, o["a"], rtol=1e-3)  # the obstacle region is the cylinder wall
    assert np.abs(X[:, obs, :2]).max() < 1e-3  # no slip
    assert len(load_dataset("cylinder_flow", split="test")) == 1


def test_shipped_cylinders_shed_at_the_literature_strouhal_number():
    ds = load_dataset("cylinder_flow", kinds=["cylinder"])
    assert len(ds) >= 2
    for i in range(len(ds)):
        c = ds.card(i)
        assert abs(c["strouhal_rel_dev"]) < 0.05, (c["name"], c["Re"], c["strouhal"])


def test_strouhal_helpers_on_a_known_signal():
    st = recipe_module(RECIPE, "strouhal")
    t = np.linspace(0, 60, 3001)
    s = 0.3 + np.sin(2 * np.pi * 0.187 * t + 0.4)
    assert st.strouhal_from_signal(t, s) == pytest.approx(0.187, rel=2e-3)
    assert st.spectrum_peak(t[::10], s[::10]) == pytest.approx(0.187, rel=1e-2)
    with pytest.raises(ValueError, match="no shedding"):
        st.strouhal_from_signal(t, np.ones_like(t))
    assert st.reference_st(100)["st"] == pytest.approx(0.1647, abs=1e-3)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("icoFoam") is None or shutil.which("gmsh") is None, reason="needs OpenFOAM + gmsh")
def test_generator_runs_one_short_case_and_resumes(tmp_path):
    gen = recipe_module(RECIPE, "generate")
    out = tmp_path / "gen"
    solver = {"warmup": 40.0, "record": 26.0}
    stats = gen.generate(out, 1, seed=0, progress=False, solver=solver)
    assert stats["done"] == 1, (out / "failures.jsonl").read_text() if (out / "failures.jsonl").is_file() else stats
    card = json.loads((out / "case_00000" / "case.json").read_text())
    assert card["snapshots"] == 131 and abs(card["strouhal_rel_dev"]) < 0.08
    ds = load_dataset("cylinder_flow", root=str(out))
    tr = ds[0]
    assert tr.states(["u", "v", "p"]).shape == (131, card["mesh"]["points"], 3)
    assert gen.generate(out, 1, seed=0, progress=False, solver=solver)["skipped"] == 1
    assert not (out / ".work").exists()


def test_high_reynolds_cases_refine_the_whole_mesh_and_the_time_step():
    gen = recipe_module(RECIPE, "generate")
    assert gen.resolution_factor(150.0) == 1.0 and gen.resolution_factor(600.0) == pytest.approx(0.5)
    ss = gen.SolverSettings()
    dt = gen.time_step(ss, 600.0)
    n = ss.snapshot_dt / dt
    assert dt <= 0.5 * ss.dt + 1e-12 and abs(n - round(n)) < 1e-9  # same Courant number, divides the snapshot dt
    g, Re = gen.sample_case(0, 0)
    assert g.mesh.scale == 1.0  # the Re factor goes into the mesh scale in run_case, not into one size


def test_a_cylinder_case_missing_the_strouhal_relation_is_re_solved_finer(tmp_path, monkeypatch):
    gen = recipe_module(RECIPE, "generate")
    calls = []

    def solve(g, Re, work, ss, name):  # stands in for gmsh + icoFoam: St depends on the mesh scale
        calls.append((g.mesh.scale, ss.dt))
        dev = -0.083 if g.mesh.scale > 0.9 * gen.resolution_factor(Re) else 0.001  # x1.4 is off too
        card = {"kind": "cylinder", "strouhal": 0.2 * (1 + dev), "strouhal_rel_dev": dev, "mesh": {"cells": 10},
                "solver": {"record_wall_s": 1.0}}
        return {"arrays": {"t": np.zeros(3)}, "card": card}

    monkeypatch.setattr(gen, "solve_case", solve)
    r = gen.run_case(0, tmp_path, 0, gen.SolverSettings())
    card = json.loads((tmp_path / "case_00000" / "case.json").read_text())
    assert len(calls) == 2 and calls[1][0] == pytest.approx(gen.REFINE * calls[0][0])
    assert calls[1][1] < calls[0][1]  # the time step follows the mesh
    assert card["mesh_scale"] == pytest.approx(gen.REFINE) and card["strouhal_rel_dev"] == 0.001
    assert card["strouhal_rejected"] == [{"mesh_scale": 1.0, "cells": 10, "strouhal": pytest.approx(0.2 * 0.917),
                                          "strouhal_rel_dev": -0.083}]
    assert r["st"] == pytest.approx(0.2002)
    # a caller-fixed mesh scale (a refinement study) is solved as asked, even off the relation
    calls.clear()
    gen.run_case(1, tmp_path, 0, gen.SolverSettings(), mesh_scale=1.4)
    assert len(calls) == 1


def test_the_recorded_run_takes_a_time_step_below_the_courant_limit(tmp_path, monkeypatch):
    foam = recipe_module(RECIPE, "foam")
    assert foam.courant_step(0.02, 0.2, 0.7, 0.8) == 0.02  # within the limit: unchanged
    dt = foam.courant_step(0.02, 0.2, 1.7, 0.8)
    assert dt == pytest.approx(0.2 / 22) and 1.7 * dt / 0.02 <= 0.8  # divides the snapshot dt, Courant <= limit
    case = tmp_path / "case"
    (case / "system").mkdir(parents=True)
    runs = []

    def run(cmd, case_, log_name, name, timeout, record_co=0.78):  # stands in for icoFoam: logs Courant numbers
        text = (case_ / "system" / "controlDict").read_text()
        ctl = {k: float(re.search(rf"\n{k}\s+([0-9.eE+-]+);", text).group(1)) for k in ("startTime", "endTime", "deltaT")}
        runs.append((log_name, ctl))
        co = {"icoFoam.warmup": [2.5, 1.6, 1.5], "icoFoam.settle": [0.75]}.get(log_name, [record_co])
        return "".join(f"Time = {i}\nCourant Number mean: 0.1 max: {c}\n" for i, c in enumerate(co))

    monkeypatch.setattr(foam, "_run", run)
    s = foam.SolverSettings()
    out = foam.run_icofoam(case, s, {"x": 0.0, "y": 0.0, "D": 1.0}, "case_x")
    assert [r[0] for r in runs] == ["icoFoam.warmup", "icoFoam.settle", "icoFoam"]
    # the developed wake (second half of the warm-up, 1.6) sets the step: 0.02 * 0.8 / 1.6 = 0.01
    assert runs[2][1]["deltaT"] == pytest.approx(0.01) and out["dt"] == pytest.approx(0.01)
    assert runs[2][1]["startTime"] == pytest.approx(s.warmup + s.settle) == out["record_start"]
    assert out["warmup_dt"] == s.dt and out["warmup_max_courant"] == 1.6 and out["max_courant"] == 0.78
    runs.clear()
    monkeypatch.setattr(foam, "_run", lambda *a: run(*a, record_co=1.3))
    with pytest.raises(foam.FoamError, match=r"case_x: the recorded run's max Courant number is 1.30"):
        foam.run_icofoam(case, s, {"x": 0.0, "y": 0.0, "D": 1.0}, "case_x")
