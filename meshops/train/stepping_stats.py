"""Training statistics of a step model (:mod:`meshops.train.stepping`): the per-channel state,
increment and second-difference normalization, the node type names, the Dirichlet mask (entries
that never change in any training trajectory), the case parameters' normalization and the edge
length scale. JSON-able; stored in the checkpoint as its normalization.

``cfg`` is a :class:`meshops.train.stepping.StepConfig` (``fields``, ``unroll``, ``history``,
``graph``, ``globals``, ``poisson`` are read). With ``poisson`` channels, ``poisson_scale`` is per such
channel the mean over the training meshes of the rms response to a unit source (the unit of the
Poisson head's source).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from meshops.data import DatasetError
from meshops.data.trajectory import Trajectory, node_type_onehot
from meshops.train.guard import range_messages

__all__ = ["DT_RTOL", "check_channel_names", "check_trajectory", "fit_stats", "mesh_triangles", "snapshot_interval",
           "trajectory_globals"]

log = logging.getLogger(__name__)

#: Snapshot intervals that differ by more than this fraction are different intervals (a step model steps one).
DT_RTOL = 0.01
_warned: set[str] = set()  # trajectory warnings already logged (validation and ensemble members repeat them)


def trajectory_globals(traj: Trajectory, names: Sequence[str]) -> np.ndarray:
    """The case parameters ``names`` of ``traj`` (e.g. ``Re``) as a float64 vector; raises naming a missing one.

    Shapes
    ------
    returns : (len(names),)
    """
    missing = [k for k in names if k not in traj.globals]
    if missing:
        raise DatasetError(f"trajectory '{traj.name}' has no global '{missing[0]}' (its globals: "
                           f"{sorted(traj.globals) or 'none'})")
    return np.asarray([float(traj.globals[k]) for k in names], dtype=np.float64)


def snapshot_interval(traj: Trajectory) -> float | None:
    """The time between ``traj``'s snapshots (None for a single snapshot); raises when they are not evenly
    spaced (within ``DT_RTOL``)."""
    d = np.diff(traj.times)
    if not len(d):
        return None
    if d.max() - d.min() > DT_RTOL * d.mean():
        raise DatasetError(f"trajectory '{traj.name}': snapshots are not evenly spaced in time (intervals "
                           f"{d.min():.6g} .. {d.max():.6g}); a step model steps one fixed interval")
    return float(d.mean())


def check_trajectory(stats: dict[str, Any], cfg: Any, traj: Trajectory) -> None:
    """Refuse a trajectory that a step model with ``stats`` cannot step (another snapshot interval than
    the training one, non-finite states); warn once per message about each state channel and global
    outside the training range (checkpoints written before the ranges were stored: no range check)."""
    dt, want = snapshot_interval(traj), stats.get("dt")
    if dt is not None and want and abs(dt / want - 1) > DT_RTOL:
        raise DatasetError(f"trajectory '{traj.name}': snapshots are {dt:.6g} apart, the model steps {want:.6g} (its "
                           f"training interval); resample the series to that interval (files without times: "
                           f"--option dt={want:.6g})")
    chans = list(stats["channels"])
    lo, hi = _channel_ranges(traj, cfg.fields)
    where = f"trajectory '{traj.name}'"
    msgs = []
    if stats.get("x_min") is not None:
        msgs += range_messages(np.asarray(stats["x_min"]), np.asarray(stats["x_max"]), lo, hi,
                               [f"'{c}'" for c in chans], where, "state channel")
    if cfg.globals and stats.get("g_min") is not None:
        g = trajectory_globals(traj, cfg.globals)
        msgs += range_messages(np.asarray(stats["g_min"]), np.asarray(stats["g_max"]), g, g,
                               [f"'{k}'" for k in cfg.globals], where, "global")
    for m in msgs:
        if m not in _warned:
            _warned.add(m)
            log.warning("%s", m)


def _channel_ranges(traj: Trajectory, fields: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per state channel (in :meth:`Trajectory.states` order) the min and max over every snapshot and
    point, without stacking the states (a 1e6-point series is GBs); raises naming the first channel
    with a non-finite value (NaN and inf show in the min or max).

    Shapes
    ------
    returns : (C,), (C,)
    """
    names = traj.channel_names(fields)
    los, his, c0 = [], [], 0
    for f in fields:
        a = np.asarray(traj.fields[f]).reshape(traj.n_steps, traj.mesh.n_points, -1)
        lo, hi = a.min(axis=(0, 1)), a.max(axis=(0, 1))
        for c in np.nonzero(~(np.isfinite(lo) & np.isfinite(hi)))[0][:1]:
            bad = ~np.isfinite(a[..., c])
            t = int(np.nonzero(bad.any(axis=1))[0][0])
            raise DatasetError(f"trajectory '{traj.name}': channel '{names[c0 + c]}' has {int(bad.sum())} non-finite "
                               f"value(s), the first at snapshot {t}; a step model cannot start from or be scored on it")
        los.append(lo)
        his.append(hi)
        c0 += len(lo)
    return np.concatenate(los).astype(np.float64), np.concatenate(his).astype(np.float64)


def check_channel_names(cfg: Any, chans: Sequence[str]) -> None:
    """Raise naming the first channel of ``cfg.diagnosed``, ``zero_mean`` or ``poisson`` that is not in ``chans``."""
    for key in ("diagnosed", "zero_mean", "poisson"):
        bad = [c for c in getattr(cfg, key, []) if c not in chans]
        if bad:
            raise ValueError(f"StepConfig: {key} channel '{bad[0]}' is not one of the channels {list(chans)}")


def mesh_triangles(traj: Trajectory) -> np.ndarray:
    """The triangles of ``traj``'s mesh (quads split in two), for a Poisson head; raises when it has none."""
    from meshops.geometry.surface import triangulate

    m = traj.mesh
    tri = triangulate([m.cells_of_type("triangle").reshape(-1, 3), m.cells_of_type("quad").reshape(-1, 4)])
    if not len(tri):
        raise DatasetError(f"trajectory '{traj.name}': a Poisson head needs a triangle or quad mesh, its cells are "
                           f"{sorted(m.cell_types) or 'none'}")
    return tri


def _poisson_scale(trajs: Sequence[Trajectory], names: list[str], fixed: np.ndarray, channel: int) -> float:
    from meshops.nn.poisson import cached_factor

    rms = []
    for t in trajs:
        oh, _ = node_type_onehot(t.mesh, names)
        f = cached_factor(t.mesh.points, mesh_triangles(t), fixed[oh.argmax(1), channel], where=f"trajectory '{t.name}'")
        rms.append(f.unit_rms())
    return float(np.mean(rms))


def fit_stats(trajs: Sequence[Trajectory], cfg: Any) -> dict[str, Any]:
    """Per-channel state and increment statistics, node type names and the Dirichlet mask."""
    if not trajs:
        raise DatasetError("stepping: no training trajectories")
    dims = {t.dim for t in trajs}
    if len(dims) != 1:
        raise DatasetError(f"stepping: training trajectories mix dimensions {sorted(dims)}")
    names: list[str] = ["interior"]
    for t in trajs:
        names += [n for n in t.mesh.boundaries if n not in names]
    xs, ds, rs, var = [], [], [], []
    need = 2 + cfg.unroll + max(cfg.history, 1)
    for t in trajs:
        X = t.states(cfg.fields)
        if len(X) < need:
            raise DatasetError(f"trajectory '{t.name}' has {len(X)} steps; training needs {need}")
        oh, _ = node_type_onehot(t.mesh, names)
        xs.append(X.reshape(-1, X.shape[2]))
        D = np.diff(X, axis=0)
        ds.append(D.reshape(-1, X.shape[2]))
        rs.append(np.diff(D, axis=0).reshape(-1, X.shape[2]))
        ty = oh.argmax(1)
        var.append(np.stack([np.abs(X - X[:1])[:, ty == k].max(axis=(0, 1)) if (ty == k).any()
                             else np.zeros(X.shape[2]) for k in range(len(names))]))
    xa, da, ra = np.concatenate(xs), np.concatenate(ds), np.concatenate(rs)
    scale = float(np.abs(xa).max(axis=0).max())
    fixed = (np.max(var, axis=0) <= 1e-6 * max(scale, 1e-30))
    fixed[0] = False  # interior nodes are always predicted
    from meshops.data.graphs import build_graph

    g = build_graph(trajs[0].mesh, cfg.graph)
    dts = [snapshot_interval(t) for t in trajs]
    for t, d in zip(trajs, dts, strict=True):
        if abs(d / dts[0] - 1) > DT_RTOL:
            raise DatasetError(f"stepping: trajectory '{t.name}' has snapshots {d:.6g} apart, '{trajs[0].name}' "
                               f"{dts[0]:.6g}; a step model learns one interval (resample them to one)")
    ga = np.stack([trajectory_globals(t, cfg.globals) for t in trajs])
    g_std = np.where(ga.std(0) > 0, ga.std(0), np.maximum(np.abs(ga.mean(0)), 1.0))  # one case: its own scale
    chans = trajs[0].channel_names(cfg.fields)
    check_channel_names(cfg, chans)
    pscale = [_poisson_scale(trajs, names, fixed, chans.index(c)) for c in getattr(cfg, "poisson", [])]
    return {"poisson_scale": pscale, "g_mean": ga.mean(0).tolist(), "g_std": g_std.tolist(), "x_mean": xa.mean(0).tolist(), "x_std": np.maximum(xa.std(0), 1e-8).tolist(),
            "d_mean": da.mean(0).tolist(), "d_std": np.maximum(da.std(0), 1e-10).tolist(),
            "r_mean": ra.mean(0).tolist(), "r_std": np.maximum(ra.std(0), 1e-10).tolist(),
            "node_types": names, "fixed": fixed.tolist(), "dim": int(trajs[0].dim),
            "edge_scale": float(g.edge_attr[:, -1].mean()), "channels": chans,
            "dt": float(np.mean(dts)), "x_min": xa.min(0).tolist(), "x_max": xa.max(0).tolist(),
            "g_min": ga.min(0).tolist(), "g_max": ga.max(0).tolist()}
