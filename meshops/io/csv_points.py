"""Point clouds in CSV (read only): SU2 ``surface_flow.csv``/``solution_flow.csv``, ParaView exports.

The header names the columns. Coordinates are ``x, y[, z]`` (or ParaView's ``Points:0..2``, or
``X, Y, Z``); every other numeric column becomes a scalar point field, rows in file order. A column
holding only integers (``PointID``) is int64, the rest float64. The mesh has no cells.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from meshops.io._util import select_times
from meshops.io.registry import register_format
from meshops.mesh import Mesh, MeshError

_COORDS = (("x", "y", "z"), ("points:0", "points:1", "points:2"), ("coordinatex", "coordinatey", "coordinatez"))


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        row = next(csv.reader(f), None)
    if not row:
        raise MeshError(f"{path}: the CSV file is empty")
    return [c.strip().strip('"') for c in row]


def _coord_columns(path: Path, names: list[str]) -> list[int]:
    low = [n.lower() for n in names]
    for trio in _COORDS:
        if trio[0] in low and trio[1] in low:
            return [low.index(c) for c in trio if c in low]
    raise MeshError(f"{path}: no coordinate columns (x, y[, z]) among {names[:12]}")


def read_csv(path: Path, time: Any = None, **kw: Any) -> Mesh:
    """Read a CSV point cloud.

    Shapes
    ------
    ``points`` (n_rows, 3) float64 (z = 0 without a z column); each other column (n_rows,).
    """
    select_times(path, [], None if time in (None, "all") else time)
    names = _header(path)
    cols = _coord_columns(path, names)
    with open(path, encoding="utf-8", errors="replace") as f:
        f.readline()
        rows = [ln.split(",") for ln in f.read().splitlines() if ln.strip()]
    bad = next((i for i, r in enumerate(rows) if len(r) != len(names)), None)
    if bad is not None:
        raise MeshError(f"{path}: row {bad + 2} has {len(rows[bad])} values but the header has {len(names)} columns")
    try:
        table = np.array(rows, dtype=object)
        point_data: dict[str, np.ndarray] = {}
        values = []
        for j, name in enumerate(names):
            col = [s.strip() for s in table[:, j]] if len(rows) else []
            try:
                arr = np.array(col, dtype=np.int64) if col and all(c.lstrip("-").isdigit() for c in col) else None
            except OverflowError:
                arr = None
            if arr is None:
                arr = np.array(col, dtype=np.float64)
            values.append(arr)
            if j not in cols:
                point_data[name] = arr
    except ValueError as e:
        raise MeshError(f"{path}: a value is not a number ({e})") from None
    pts = np.stack([values[j].astype(np.float64) for j in cols], axis=1) if rows else np.zeros((0, len(cols)))
    mesh = Mesh(points=pts, point_data=point_data, source=str(path))
    if len(cols) == 2:
        mesh.dim = 2
    return mesh


def probe_csv(path: Path) -> dict[str, Any]:
    names = _header(path)
    cols = _coord_columns(path, names)
    with open(path, "rb") as f:
        n = sum(1 for ln in f if ln.strip()) - 1
    return {"times": [], "n_points": n, "n_cells": 0,
            "point_fields": {k: {"shape": [], "dtype": "float64"} for j, k in enumerate(names) if j not in cols},
            "cell_fields": {}}


register_format("csv", [".csv"], read_csv, None, probe_csv)
