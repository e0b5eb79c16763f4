"""``meshops cfd``: input errors (fast), a run that does not converge writes nothing (slow)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from meshops.cfd.foam import openfoam_available
from meshops.cli import main

AORTA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "simvascular" / "demo_aorta_centerlines.vtp"


def _centerline_csv(tmp_path: Path) -> Path:
    s = np.linspace(0, 20, 41)
    f = tmp_path / "cl.csv"
    rows = ["x,y,z,radius"] + [f"0,0,{z},1.5" for z in s]
    f.write_text("\n".join(rows) + "\n")
    return f


def test_cfd_needs_q(tmp_path, capsys):
    f = _centerline_csv(tmp_path)
    assert main(["cfd", "--centerline", str(f), "--out", str(tmp_path / "o")]) == 2
    assert "Q=" in capsys.readouterr().err


@pytest.mark.parametrize("arg,msg", [(["--global", "Q=-1"], "Q must be finite and > 0"),
                                     (["--global", "Q=1", "--scale", "0"], "--scale must be finite and > 0")])
def test_cfd_bad_values_name_the_option(tmp_path, capsys, arg, msg):
    if "--scale" in arg and not (openfoam_available() and shutil.which("gmshToFoam")):
        pytest.skip("OpenFOAM not installed (the scale is checked after the OpenFOAM check)")
    f = _centerline_csv(tmp_path)
    assert main(["cfd", "--centerline", str(f), "--out", str(tmp_path / "o"), *arg]) == 1
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.mark.slow
@pytest.mark.skipif(not openfoam_available() or shutil.which("gmshToFoam") is None, reason="OpenFOAM not installed")
def test_cfd_refuses_an_unconverged_run(tmp_path, capsys):
    f = _centerline_csv(tmp_path)
    out = tmp_path / "o"
    rc = main(["cfd", "--centerline", str(f), "--global", "Q=1", "--out", str(out), "--max-iter", "5"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "did not converge" in err or "diverged or stalled" in err, err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.slow
@pytest.mark.skipif(not openfoam_available() or shutil.which("gmshToFoam") is None, reason="OpenFOAM not installed")
def test_cfd_straight_tube_end_to_end(tmp_path, capsys):
    import meshops

    f = _centerline_csv(tmp_path)
    out = tmp_path / "o"
    assert main(["cfd", "--centerline", str(f), "--global", "Q=1", "--out", str(out)]) == 0
    wall = meshops.read(out / "cl_cfd.vtp")
    assert np.isfinite(wall.point_data["p"]).all() and (wall.point_data["wss_mag"] > 0).all()
    # Hagen-Poiseuille WSS 4 mu Q / (pi r^3) = 1.32 Pa, away from the ends
    z = wall.points[:, 2]
    mid = (z > 7) & (z < 13)
    assert abs(wall.point_data["wss_mag"][mid].mean() / 1.3204 - 1) < 0.1
