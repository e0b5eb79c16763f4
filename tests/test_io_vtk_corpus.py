"""meshops reads every file of the vtk-data corpus as pyvista does, or the difference is documented.

The rule is :func:`meshops.io.agreement.compare_with_pyvista` (points, cell types, connectivity,
arrays, then a .vtu round trip); documented differences are the rows of the table in
``docs/formats.md``. The fast subset runs by default, the whole corpus is marked slow.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import warnings
from pathlib import Path

import pytest

from meshops.io import known_extensions
from meshops.io.agreement import compare_with_pyvista

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "vtk-data-corpus"
FAST = ("Data/Cells/*", "Data/Wedge.vtu", "Data/QuadraticWedge.vtu", "Data/QuadraticPyramid.vtu",
        "Data/VTKCellTypes.vtk", "Data/uGridEx.vtk", "Data/polyhedron2pieces.vtu", "Data/RectilinearGrid.vtr",
        "Data/StructuredGrid.vts", "Data/vase_1comp.vti", "Data/notch_stress.vtk", "Data/SyntheticPolyline.vtp",
        "Data/PVD/paraview/*.pvd", "Data/cow.obj", "Data/pepper.ply", "Data/political.vtp", "Data/tensors.vtk",
        "unzipped/Data_pvtu_blood_vessels_blood_vessels/blood_vessels/T0000000500.pvtu")


def _documented() -> list[str]:
    text = (ROOT / "docs" / "formats.md").read_text()
    table = text.split("### Known differences", 1)[1]
    return [p for row in re.findall(r"^\| (.+?) \|", table, flags=re.M) for p in re.findall(r"`([^`]+)`", row)]


def _files() -> list[str]:
    if not CORPUS.exists():
        return []
    exts = tuple(known_extensions())
    return [str(p.relative_to(CORPUS)) for p in sorted(CORPUS.rglob("*"))
            if p.is_file() and p.name.lower().endswith(exts)]


def _check(rel: str) -> None:
    if not CORPUS.exists():
        pytest.skip("../shared/data/vtk-data-corpus is absent")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.ERROR)
        try:
            diff = compare_with_pyvista(CORPUS / rel)
        except Exception as e:  # pyvista cannot read it: outside the rule
            if "meshops" in type(e).__module__:
                raise
            pytest.skip(f"pyvista cannot read {rel} ({type(e).__name__})")
        finally:
            logging.disable(logging.NOTSET)
    if diff:
        documented = [p for p in _documented() if fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, "*/" + p)
                      or fnmatch.fnmatch(Path(rel).name, p)]
        assert documented, f"{rel}: {diff} (not listed in docs/formats.md)"


_ALL = _files()


@pytest.mark.parametrize("rel", [f for f in _ALL if any(fnmatch.fnmatch(f, p) for p in FAST)] or ["<absent>"])
def test_corpus_fast_subset(rel):
    if rel == "<absent>":
        pytest.skip("../shared/data/vtk-data-corpus is absent")
    _check(rel)


@pytest.mark.slow
@pytest.mark.parametrize("rel", _ALL or ["<absent>"])
def test_corpus_every_file(rel):
    if rel == "<absent>":
        pytest.skip("../shared/data/vtk-data-corpus is absent")
    _check(rel)


def test_documented_rows_are_patterns():
    assert len(_documented()) >= 5
