"""A vessel wall swept around a (branched) centerline: structured quads, one tube per branch.

:func:`tube_wall` turns a :class:`~meshops.geometry.centerline.Centerline` with radii into a wall
surface :class:`~meshops.mesh.Mesh`. Each branch becomes its own open tube: at every centerline
station ``i`` a ring of ``n_around`` points ``c_i + r_i (cos a N_i + sin a B_i)`` is placed in the
rotation-minimizing frame ``(T, N, B)`` of :mod:`meshops.geometry.centerline`, and consecutive
rings are joined by quads (outward normals). There is no junction modelling: a child branch starts
at its parent point (the junction point is prepended when the file does not share it), so the
tubes of the branches overlap and interpenetrate around bifurcations, the ends are open (no caps),
and where the radius of curvature is below the radius the rings of one tube fold through each
other. That is enough to give a model query points on a vessel wall, not a watertight CFD surface.

The centerline travels with the wall in ``field_data`` in the layout of the coronary_synthetic
dataset (what :func:`meshops.models.coronary.attach_case_centerline` reads):
``centerline_points`` (m, 3), ``centerline_radius`` (m,), ``centerline_branches`` (list of
point-index paths, main vessel first).
"""

from __future__ import annotations

import logging

import numpy as np

from meshops.geometry.centerline import Centerline
from meshops.geometry.polyline import arc_length, resample, rotation_minimizing_frames, tangents
from meshops.mesh import CellBlock, Mesh

log = logging.getLogger(__name__)

__all__ = ["branch_paths", "tube_wall"]


def branch_paths(centerline: Centerline) -> list[np.ndarray]:
    """Point-index paths of the branches, each child starting at its parent's junction point.

    Consecutive coincident points (VMTK centerlines repeat some) are dropped from a path; branches
    with fewer than two distinct points after that are dropped too (with a log line).

    Shapes
    ------
    returns : list of (m_b,) int64, in the order of ``centerline.branches``.
    """
    out = []
    for i, b in enumerate(centerline.branches):
        pb, pp = centerline.parent[i] if i < len(centerline.parent) else (-1, -1)
        path = np.asarray(b, dtype=np.int64)
        if pb >= 0 and pp >= 0 and len(path) and path[0] != pp:
            path = np.concatenate([[pp], path])
        if len(path) > 1:
            step = np.linalg.norm(np.diff(centerline.points[path], axis=0), axis=1)
            ext = float(np.ptp(centerline.points[path], axis=0).max())
            path = path[np.concatenate([[True], step > 1e-12 * max(ext, 1e-300)])]
        if len(path) < 2 or arc_length(centerline.points[path])[-1] <= 0:
            log.info("tube_wall: branch %d has no length; skipped", i)
            continue
        out.append(path)
    return out


def tube_wall(
    centerline: Centerline,
    n_around: int = 32,
    spacing: float | None = None,
    where: str = "centerline",
) -> Mesh:
    """The wall surface of a (branched) centerline: one structured quad tube per branch.

    Parameters
    ----------
    centerline : points, ``radius`` (required, finite and > 0 on the used points), branches, parents.
    n_around : points per ring (>= 3).
    spacing : when given, every branch is resampled at uniform arc length ``<= spacing`` (end
        points kept) before sweeping; default: one ring per centerline point.
    where : name used in error messages (the file).

    Returns
    -------
    Mesh of quads with point fields ``radius`` (ring radius), ``s`` (arc length along the branch),
    ``theta`` (angle from the frame normal toward the binormal), ``branch`` (int64), and the swept
    centerline in ``field_data`` (``centerline_points``, ``centerline_radius``,
    ``centerline_branches``). The ``cell_data`` field ``branch`` tells the tubes apart.

    Shapes
    ------
    centerline.points (n, 3), centerline.radius (n,) -> Mesh with sum_b(m_b * n_around) points and
    sum_b((m_b - 1) * n_around) quads, where m_b is the number of stations of branch b.

    Raises
    ------
    ValueError
        no radius, a non-positive or non-finite radius, ``n_around < 3``, ``spacing <= 0``, or no
        branch with length.
    """
    paths, r_all = _checked_paths(centerline, n_around, spacing, where)
    stations, cl_pts, cl_rad, cl_paths = _stations(centerline.points, r_all, paths, spacing)
    anchor = centerline.points[np.unique(np.concatenate(paths))].mean(0)
    tubes, offset = [], 0
    for bi, (p, r) in enumerate(stations):
        tubes.append(_sweep(p, r, n_around, anchor, bi, offset))
        offset += len(p) * n_around
    if len(stations) > 1:
        log.info("%s: %d branch tubes built separately; they overlap around the junctions", where, len(stations))
    point_data = {k: np.concatenate([t[2][k] for t in tubes]) for k in ("radius", "s", "theta", "branch")}
    quads = np.concatenate([t[1] for t in tubes])
    return Mesh(
        points=np.concatenate([t[0] for t in tubes]),
        cells=[CellBlock("quad", quads)],
        point_data=point_data,
        cell_data={"branch": np.concatenate([np.full(len(t[1]), bi, dtype=np.int64) for bi, t in enumerate(tubes)])},
        field_data={
            "centerline_points": np.concatenate(cl_pts),
            "centerline_radius": np.concatenate(cl_rad),
            "centerline_branches": [np.asarray(b, dtype=np.int64) for b in cl_paths],
            "wall_branch_field": "branch",  # each ring belongs to one branch (its index in centerline_branches)
        },
        source=f"tube_wall({where})",
    )


def _checked_paths(centerline: Centerline, n_around: int, spacing: float | None,
                   where: str) -> tuple[list[np.ndarray], np.ndarray]:
    """The branch paths and the radii (float64), after the checks ``tube_wall`` documents."""
    if n_around < 3:
        raise ValueError(f"{where}: n_around must be >= 3, got {n_around}")
    if spacing is not None and not spacing > 0:
        raise ValueError(f"{where}: spacing must be > 0, got {spacing}")
    if centerline.radius is None:
        raise ValueError(f"{where}: the centerline has no radius field (e.g. MaximumInscribedSphereRadius)")
    paths = branch_paths(centerline)
    if not paths:
        raise ValueError(f"{where}: no branch with two or more distinct points")
    used = np.unique(np.concatenate(paths))
    r_all = np.asarray(centerline.radius, dtype=np.float64)
    bad = used[~(np.isfinite(r_all[used]) & (r_all[used] > 0))]
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{where}: radius at centerline point {i} is {r_all[i]}; radii must be finite and > 0")
    return paths, r_all


def _stations(points: np.ndarray, r_all: np.ndarray, paths: list[np.ndarray], spacing: float | None) -> tuple:
    """Stations per branch ``[(points, radius)]`` and the swept centerline (points, radii, paths).

    Without ``spacing`` the stations are the centerline's own points; resampled branches share
    their end points (one swept point per junction).
    """
    if spacing is None:
        return [(points[b], r_all[b]) for b in paths], [points], [r_all], paths
    end_index: dict[int, int] = {}
    count, stations, cl_pts, cl_rad, cl_paths = 0, [], [], [], []
    for b in paths:
        pts, _, rad = resample(points[b], spacing=spacing, values=r_all[b])
        assert rad is not None
        stations.append((pts, rad))
        ids = np.empty(len(pts), dtype=np.int64)
        for k, old in ((0, int(b[0])), (len(pts) - 1, int(b[-1]))):
            if old not in end_index:
                end_index[old] = count
                cl_pts.append(pts[k : k + 1])
                cl_rad.append(rad[k : k + 1])
                count += 1
            ids[k] = end_index[old]
        inner = len(pts) - 2
        ids[1:-1] = np.arange(count, count + inner)
        cl_pts.append(pts[1:-1])
        cl_rad.append(rad[1:-1])
        count += inner
        cl_paths.append(ids)
    return stations, cl_pts, cl_rad, cl_paths


def _sweep(p: np.ndarray, r: np.ndarray, n_around: int, anchor: np.ndarray, bi: int,
           offset: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """One branch's tube: ring points (m * n_around, 3), quads (numbered from ``offset``), point fields."""
    ang = 2.0 * np.pi * np.arange(n_around) / n_around
    ca, sa = np.cos(ang), np.sin(ang)
    t = tangents(p)
    # the first normal points away from the vessel's centroid when it can (stable, reproducible)
    v = p[0] - anchor
    v = v - np.dot(v, t[0]) * t[0]
    n0 = v / np.linalg.norm(v) if np.linalg.norm(v) > 1e-9 * max(1.0, np.linalg.norm(p[0])) else None
    _, N, B = rotation_minimizing_frames(p, t, n0)
    m = len(p)
    d = ca[None, :, None] * N[:, None, :] + sa[None, :, None] * B[:, None, :]  # (m, k, 3)
    x = p[:, None, :] + r[:, None, None] * d
    fields = {"radius": np.repeat(r, n_around), "s": np.repeat(arc_length(p), n_around),
              "theta": np.tile(np.arctan2(sa, ca), m), "branch": np.full(m * n_around, bi, dtype=np.int64)}
    i = np.arange(m - 1)[:, None]
    j = np.arange(n_around)[None, :]
    jn = (j + 1) % n_around
    a = offset + i * n_around + j
    q = np.stack([a, offset + i * n_around + jn, offset + (i + 1) * n_around + jn,
                  offset + (i + 1) * n_around + j], axis=-1).reshape(-1, 4)
    return x.reshape(-1, 3), q, fields
