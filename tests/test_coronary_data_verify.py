"""Solver verification of the coronary-synthetic generator (slow: several OpenFOAM runs).

The numbers these tests check are quoted in ``datasets/coronary_synthetic/README.md``; reproduce them
with ``python datasets/coronary_synthetic/verify.py all``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshops.data import recipe_module

RECIPE = Path(__file__).resolve().parents[1] / "datasets" / "coronary_synthetic"


def _load(name: str):
    return recipe_module(RECIPE, name)


foamcase = _load("foamcase")
verify = _load("verify")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not foamcase.openfoam_available(), reason="OpenFOAM (simpleFoam) not installed"),
]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("radius_mm,Q_mL_s", [(1.5, 1.0), (1.0, 2.0)])
def test_straight_pipe_matches_poiseuille(radius_mm, Q_mL_s):
    r = verify.poiseuille_check(radius_mm=radius_mm, Q_mL_s=Q_mL_s)
    assert abs(r["dpdz_rel_err"]) < 0.03, r
    assert abs(r["wss_rel_err"]) < 0.03, r
    # the shear is axial and uniform around the pipe
    assert r["wss_axial_Pa"] == pytest.approx(r["wss_Pa"], rel=1e-3)
    assert r["wss_spread"] < 0.01


@pytest.mark.timeout(3000)
def test_stenosed_vessel_wall_fields_converge_with_refinement():
    r = verify.refinement_study(seed=3, n_stenoses=2)
    lv = r["levels"]
    assert max(s["area_reduction"] for s in r["vessel"]["stenoses"]) > 0.7  # a severe case
    order = ["coarse", "medium", "production"]
    for f in ("p", "wss", "wss_mag"):
        errs = [lv[k][f"rel_l2_{f}"] for k in order]
        assert errs[0] > errs[1] > errs[2], (f, errs)
    assert lv["production"]["rel_l2_p"] < 0.06
    assert lv["production"]["rel_l2_wss_mag"] < 0.12
    # the pressure drop converges monotonically towards the finest level's value
    dps = [lv[k]["dp_Pa"] for k in order + ["fine"]]
    gaps = [abs(d - dps[-1]) for d in dps[:-1]]
    assert gaps[0] > gaps[1] > gaps[2], dps
