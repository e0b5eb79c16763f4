"""What ``meshops info`` reports about a mesh, as plain JSON-able data and as a text table."""

from __future__ import annotations

from typing import Any

import numpy as np

from meshops.mesh import Mesh, count_degenerate


def field_stats(a: np.ndarray) -> dict[str, Any]:
    """Shape, dtype, min/max/mean over finite values, NaN and Inf counts of one field.

    Shapes
    ------
    a : (n, ...) any numeric dtype. Vector fields also get per-component ``min``/``max``/``mean``
    lists under ``components``.
    """
    a = np.asarray(a)
    out: dict[str, Any] = {"shape": list(a.shape[1:]), "dtype": str(a.dtype), "n": int(a.shape[0]) if a.ndim else 0}
    if a.dtype.kind not in "biuf":
        out.update(min=None, max=None, mean=None, nan=0, inf=0)
        return out
    x = a.astype(np.float64, copy=False)
    finite = np.isfinite(x)
    out["nan"] = int(np.isnan(x).sum())
    out["inf"] = int(np.isinf(x).sum())
    if finite.any():
        v = x[finite]
        out.update(min=float(v.min()), max=float(v.max()), mean=float(v.mean()))
    else:
        out.update(min=None, max=None, mean=None)
    if a.ndim == 2 and 1 < a.shape[1] <= 16 and a.shape[0]:
        comps = []
        for j in range(a.shape[1]):
            c = x[:, j][np.isfinite(x[:, j])]
            comps.append({"min": float(c.min()), "max": float(c.max()), "mean": float(c.mean())} if len(c)
                         else {"min": None, "max": None, "mean": None})
        out["components"] = comps
    return out


def summarize(mesh: Mesh) -> dict[str, Any]:
    """Points, cells per type, bounds, dimension, boundary regions and every field's statistics.

    Returns
    -------
    dict
        JSON-able: ``source``, ``time``, ``n_points``, ``n_cells``, ``cell_types``
        ({type: count}), ``dim`` (2 or 3), ``topological_dim``, ``bounds`` ([[xmin, ymin, zmin],
        [xmax, ymax, zmax]]), ``boundaries`` ({name: {type: count}}), ``point_fields`` and
        ``cell_fields`` ({name: :func:`field_stats`}).
    """
    b = mesh.bounds
    return {
        "source": mesh.source,
        "time": mesh.time,
        "n_points": mesh.n_points,
        "n_cells": mesh.n_cells,
        "cell_types": mesh.cell_types,
        "dim": mesh.dim,
        "topological_dim": mesh.topological_dim,
        "degenerate_cells": count_degenerate(mesh),
        "bounds": [[None if not np.isfinite(v) else float(v) for v in row] for row in b],
        "boundaries": {k: _count(v) for k, v in mesh.boundaries.items()},
        "point_fields": {k: field_stats(v) for k, v in mesh.point_data.items()},
        "cell_fields": {k: field_stats(v) for k, v in mesh.cell_data.items()},
    }


def _count(blocks: list) -> dict[str, int]:
    out: dict[str, int] = {}
    for blk in blocks:
        out[blk.type] = out.get(blk.type, 0) + len(blk)
    return out


def _g(v: Any) -> str:
    return "-" if v is None else f"{v:.6g}"


def format_table(s: dict[str, Any], times: list[float] | None = None) -> str:
    """The human-readable ``meshops info`` text for a :func:`summarize` dict."""
    lines = [f"source      {s['source']}"]
    if s.get("time") is not None:
        lines.append(f"time        {s['time']:g}")
    if times:
        shown = ", ".join(f"{t:g}" for t in times[:12]) + (" ..." if len(times) > 12 else "")
        lines.append(f"times       {len(times)}: {shown}")
    lines.append(f"points      {s['n_points']:,}")
    types = ", ".join(f"{t} {c:,}" for t, c in s["cell_types"].items()) or "none (point cloud)"
    lines.append(f"cells       {s['n_cells']:,} ({types})")
    lines.append(f"dimension   {s['dim']}D (cells up to {s['topological_dim']}D)")
    deg = s.get("degenerate_cells") or {}
    if any(deg.values()):
        lines.append(f"degenerate  {deg.get('repeated_ids', 0):,} with a repeated node, "
                     f"{deg.get('zero_measure', 0):,} of zero length/area/volume")
    lo, hi = s["bounds"]
    lines.append("bounds      " + "  ".join(f"{a}: [{_g(x)}, {_g(y)}]" for a, x, y in zip("xyz", lo, hi, strict=True)))
    if s["boundaries"]:
        lines.append(f"boundaries  {len(s['boundaries'])}")
        w = max(len(k) for k in s["boundaries"])
        for k, v in s["boundaries"].items():
            lines.append(f"  {k:<{w}}  " + ", ".join(f"{t} {c:,}" for t, c in v.items()))
    else:
        lines.append("boundaries  none")
    rows = [(k, loc, st) for loc, key in (("point", "point_fields"), ("cell", "cell_fields"))
            for k, st in s[key].items()]
    if rows:
        w = max(8, max(len(k) for k, _, _ in rows))
        lines.append(f"fields      {len(rows)}")
        lines.append(f"  {'name':<{w}}  {'where':<5}  {'shape':<8}  {'dtype':<8}  {'min':>12}  {'max':>12}  "
                     f"{'mean':>12}  {'NaN':>5}  {'Inf':>5}")
        for k, loc, st in rows:
            shape = "x".join(str(d) for d in st["shape"]) or "scalar"
            lines.append(f"  {k:<{w}}  {loc:<5}  {shape:<8}  {st['dtype']:<8}  {_g(st['min']):>12}  "
                         f"{_g(st['max']):>12}  {_g(st['mean']):>12}  {st['nan']:>5}  {st['inf']:>5}")
    else:
        lines.append("fields      none")
    return "\n".join(lines)
