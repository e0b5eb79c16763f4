"""meshops compare on SimVascular's cylinder result, checked against a hand computation with numpy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "datasets" / "coronary_synthetic" / "model" / "best.pt"


def _hand_wall(path: Path):
    """Wall points of the tetra mesh, the rim at each end, by hand: boundary faces, caps at z = min/max."""
    import meshio

    m = meshio.read(path)
    tets = m.cells_dict["tetra"]
    faces = np.concatenate([tets[:, [0, 1, 2]], tets[:, [0, 1, 3]], tets[:, [0, 2, 3]], tets[:, [1, 2, 3]]])
    key, cnt = np.unique(np.sort(faces, axis=1), axis=0, return_counts=True)
    bnd = key[cnt == 1]
    z = m.points[:, 2]
    zmin, zmax = z.min(), z.max()
    on_cap = np.all(np.abs(z[bnd] - zmin) < 1e-9, axis=1) | np.all(np.abs(z[bnd] - zmax) < 1e-9, axis=1)
    wall = np.unique(bnd[~on_cap])
    return m, bnd, on_cap, wall, zmin, zmax


@pytest.mark.skipif(not MODEL.exists(), reason="no shipped coronary model")
def test_compare_cylinder_matches_hand_computation(shared_data, tmp_path, capsys):
    import meshops
    from meshops.cli import main

    src = shared_data / "simvascular" / "cylinder_all_results.vtu"
    out = tmp_path / "cmp"
    assert main(["compare", str(MODEL), str(src), "--truth", "p=pressure", "--truth", "wss=vWSS",
                 "--time", "00200", "--units", "cgs", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    rep = json.loads((out / "cylinder_all_results_compare.json").read_text())
    res = meshops.read(out / "cylinder_all_results_compare.vtp")

    m, bnd, on_cap, wall, zmin, zmax = _hand_wall(src)
    p_all = m.point_data["pressure_00200"].astype(np.float64)
    v = m.point_data["velocity_00200"].astype(np.float64)
    # the inlet is the end the flow enters: velocity along -z means the inlet is at z max
    inlet_z = zmax if v[np.abs(m.points[:, 2] - zmax) < 1e-9, 2].mean() < 0 else zmin
    outlet_z = zmin if inlet_z == zmax else zmax
    # Q: flux through the inlet cap, area-weighted vertex velocity (cm^3/s = mL/s)
    cap = bnd[on_cap & np.all(np.abs(m.points[bnd][:, :, 2] - inlet_z) < 1e-9, axis=1)]
    a, b, c = (m.points[cap[:, i]] for i in range(3))
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    q_hand = abs(float((area * v[cap][:, :, 2].mean(1)).sum()))
    assert rep["globals_model_units"]["Q"] == pytest.approx(q_hand, rel=1e-7)

    # truth on the wall points, CGS -> Pa, pressure relative to the mean over the outlet rim
    assert res.n_points == len(wall)
    d, idx = cKDTree(m.points[wall]).query(res.points)
    assert d.max() < 1e-9 and len(np.unique(idx)) == len(wall)
    wall = wall[idx]
    rim = np.abs(m.points[wall, 2] - outlet_z) < 1e-9
    p_truth = 0.1 * (p_all[wall] - p_all[wall][rim].mean())
    wss_truth = 0.1 * np.linalg.norm(m.point_data["vWSS_00200"][wall].astype(np.float64), axis=1)
    np.testing.assert_allclose(res.point_data["p"], p_truth, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res.point_data["wss_mag"], wss_truth, rtol=1e-9, atol=1e-12)
    p_pred = res.point_data["p_pred"]
    assert abs(p_pred[rim].mean()) < 1e-6 * max(1.0, np.abs(p_pred).max())  # same reference on the prediction
    for name, truth, pred in (("p", p_truth, p_pred), ("wss_mag", wss_truth, res.point_data["wss_mag_pred"])):
        got = rep["fields"][name]
        err = pred - truth
        assert got["rel_l2"] == pytest.approx(np.sqrt((err**2).sum() / (truth**2).sum()), rel=1e-9)
        assert got["max_abs_error"] == pytest.approx(np.abs(err).max(), rel=1e-9)
        dp, dt = pred - pred.mean(), truth - truth.mean()
        corr = (dp * dt).sum() / np.sqrt((dp**2).sum() * (dt**2).sum())
        assert got["correlation"] == pytest.approx(corr, rel=1e-7, abs=1e-9)
        assert f"{got['rel_l2']:8.4f}" in text
    # the cylinder (r = 2 cm, Q = 100 mL/s) is far outside the coronary training ranges, and says so
    assert rep["training_ranges"]["radius"]["inside"] is False and rep["training_ranges"]["Q"]["inside"] is False
    assert "OUTSIDE" in text
    assert (out / "cylinder_all_results_p.png").stat().st_size > 1000


def test_compare_bad_field_lists_fields(shared_data, tmp_path, capsys):
    if not MODEL.exists():
        pytest.skip("no shipped coronary model")
    from meshops.cli import main

    src = shared_data / "simvascular" / "cylinder_all_results.vtu"
    assert main(["compare", str(MODEL), str(src), "--truth", "p=pressure", "--units", "cgs",
                 "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "stored per time step" in err and "--time" in err
    assert main(["compare", str(MODEL), str(src), "--truth", "p=pres", "--time", "00200", "--units", "cgs",
                 "--out", str(tmp_path)]) == 1
    assert "no point field 'pres'" in capsys.readouterr().err
