"""Does meshops read a file as PyVista does? The rule behind the vtk-data agreement number.

:func:`compare_with_pyvista` reads one file with :func:`meshops.io.read` and with
``pyvista.read`` in the same process and compares points, cell types, connectivity (after putting
split poly cells back, :func:`meshops.mesh_vtk.vtk_cells`), array names and values; then writes the
mesh to ``.vtu`` and checks that it reads back identically. Documented differences (with their
reason) are in ``docs/formats.md``; ``benchmarks/vtk_corpus.py`` runs it over a folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from meshops.io.api import probe, read, write
from meshops.mesh import Mesh, MeshError

__all__ = ["compare_with_pyvista"]


def _pv_dataset(path: Path) -> Any:
    import pyvista as pv

    ds = pv.read(str(path))
    if isinstance(ds, pv.MultiBlock):
        ds = ds.combine(merge_points=False)
    return ds


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "US" or b.dtype.kind in "US":
        return a.astype(str).tolist() == b.astype(str).tolist()
    if a.size != b.size:
        return False
    return bool(np.array_equal(a.reshape(len(a), -1) if a.ndim else a, b.reshape(len(b), -1) if b.ndim else b,
                               equal_nan=a.dtype.kind == "f"))


def _arrays_diff(loc: str, ours: dict, theirs: Any) -> list[str]:
    out = []
    names_p = {str(k) for k in theirs.keys()}
    if set(ours) != names_p:
        out.append(f"{loc} arrays {sorted(set(ours) ^ names_p)} on one side only")
    for k in sorted(set(ours) & names_p):
        if not _same(ours[k], np.asarray(theirs[k])):
            out.append(f"{loc} array '{k}' values differ")
    return out


def _against(mesh: Mesh, ds: Any) -> list[str]:
    from meshops.mesh_vtk import vtk_cells

    out = []
    if mesh.points.shape[0] != ds.n_points or not np.array_equal(mesh.points, np.asarray(ds.points, np.float64)):
        out.append(f"points differ ({mesh.n_points} vs {ds.n_points})")
    types, off, conn, rows = vtk_cells(mesh)
    ug = ds if hasattr(ds, "celltypes") else ds.cast_to_unstructured_grid()
    if not np.array_equal(types, np.asarray(ug.celltypes)):
        out.append(f"cell types differ ({len(types)} vs {ug.n_cells} cells)")
    elif not np.array_equal(conn, np.asarray(ug.cell_connectivity)):
        out.append("connectivity differs")
    out += _arrays_diff("point", mesh.point_data, ds.point_data)
    cd = mesh.cell_data if rows is None else {k: v[rows] for k, v in mesh.cell_data.items()}
    out += _arrays_diff("cell", cd, ds.cell_data)
    return out


def compare_with_pyvista(path: str | Path, *, roundtrip: bool = True) -> list[str]:
    """Differences between meshops' and pyvista's reading of ``path`` (empty: they agree).

    Returns
    -------
    list of str
        One line per difference; ``"meshops failed: ..."`` when meshops refused the file.

    Raises
    ------
    Exception
        Whatever ``pyvista.read`` raises (a file pyvista cannot read is outside the rule).
    """
    path = Path(path)
    ds = _pv_dataset(path)
    try:
        mesh = read(path, time="first") if probe(path).get("times") else read(path)
    except (MeshError, ValueError, OSError) as e:
        return [f"meshops failed: {str(e)[:300]}"]
    if isinstance(mesh, list):
        mesh = mesh[-1]
    out = _against(mesh, ds)
    if roundtrip and not out:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                back = read(write(mesh, Path(tmp) / "roundtrip.vtu"))
            except MeshError as e:
                return [f"write .vtu failed: {str(e)[:300]}"]
            assert isinstance(back, Mesh)
            out += [f"roundtrip .vtu: {d}" for d in back.diff(mesh, check_boundaries=False)]
    return out
