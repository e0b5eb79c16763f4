"""``meshops rollout CHECKPOINT [CHECKPOINT ...] CASE --steps N --out DIR``: autoregressive rollout of a
time-stepping model (several checkpoints: their ensemble, the mean of their next states).

``CASE`` is a time series file (``.pvd``, ``.xdmf``), a folder of snapshot files, or
``DATASET:CASE`` (a registered trajectory dataset and a case name or index, with ``--option``).
Writes to ``DIR``:

* ``rollout.pvd`` (+ one ``.vtu`` per step): the truth fields (while the case has them), ``<f>_pred``
  and ``<f>_error`` (prediction - truth) per channel;
* ``rollout_errors.json``: rel L2 per step and channel, of the model and of persistence, and the
  number of steps until the error passes 1.0;
* ``rollout.gif``: truth | prediction | error of ``--field`` over the rollout (PyVista off screen).

A rollout that blows up (a non-finite state) writes the steps before it only and exits 1 naming the step.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

HELP = "roll a time-stepping model out on a trajectory: PVD time series, error per step (JSON), GIF movie"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", nargs="+",
                   help="time-stepping checkpoint; several: their ensemble (the mean of their next states)")
    p.add_argument("case", help="series file, snapshot folder, or DATASET:NAME_OR_INDEX")
    p.add_argument("--steps", type=int, default=None, help="rollout steps (default: to the end of the case)")
    p.add_argument("--start", type=int, default=None,
                   help="initial snapshot index (default: the model's history, 0 for a model without one)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="dataset option (YAML value)")
    p.add_argument("--field", default=None, help="channel shown in the movie (default: the second, e.g. v)")
    p.add_argument("--frames", type=int, default=40, help="movie frames (evenly spaced steps, default 40)")
    p.add_argument("--no-movie", action="store_true")
    p.add_argument("--device", default="cpu")


def load_case(spec: str, fields: list[str], options: dict[str, Any]) -> Any:
    """A :class:`~meshops.data.trajectory.Trajectory` from a path or ``DATASET:NAME_OR_INDEX``."""
    from meshops.data import DatasetError, load_dataset
    from meshops.data.trajectory import TrajectoryFolder

    p = Path(spec)
    if p.exists():
        return TrajectoryFolder(str(p.parent), fields, pattern=p.name, **options)[0]
    name, sep, which = spec.rpartition(":")
    if not sep or not name:
        raise FileNotFoundError(f"rollout: case {spec} is neither a file/folder nor DATASET:NAME_OR_INDEX")
    ds = load_dataset(name, **options)
    names = list(ds.case_names())
    if which in names:
        return ds[names.index(which)]
    try:
        return ds[int(which)]
    except ValueError:
        raise DatasetError(f"rollout: dataset '{name}' has no case '{which}' (cases: {names[:8]} ...)") from None


def _meshes(traj: Any, channels: list[str], pred: Any, true: Any, times: list[float]) -> list[Any]:
    """One mesh per rollout step with truth (while known), ``_pred`` and ``_error`` per channel."""
    import numpy as np

    out = []
    for k in range(len(pred)):
        pd = {}
        for c, ch in enumerate(channels):
            pd[f"{ch}_pred"] = pred[k, :, c].astype(np.float32)
            if k < len(true):
                pd[ch] = true[k, :, c].astype(np.float32)
                pd[f"{ch}_error"] = (pred[k, :, c] - true[k, :, c]).astype(np.float32)
        m = traj.mesh.with_fields(point_data=pd)
        m.time = float(times[k])
        out.append(m)
    return out


def write_movie(meshes: list[Any], field: str, path: Path, frames: int) -> int:
    """GIF of truth | prediction | error of ``field`` at ``frames`` evenly spaced steps; returns the frame count."""
    import imageio.v2 as imageio
    import numpy as np

    from meshops.atomic import atomic_path
    from meshops.viz.render import render_comparison

    have = [k for k, m in enumerate(meshes) if field in m.point_data]
    if not have:
        raise ValueError(f"rollout movie: field '{field}' has no truth in any step")
    idx = np.unique(np.linspace(0, have[-1], min(frames, len(have))).round().astype(int))
    imgs = [render_comparison(meshes[k], field, show=False, window_size=(900, 260)).image for k in idx]
    with atomic_path(path, make_parents=True) as tmp:
        imageio.mimsave(tmp, imgs, format="GIF", duration=0.1, loop=0)
    return len(imgs)


def evaluate_cli(args: Any, options: dict[str, Any]) -> int:
    """``meshops evaluate`` on a trajectory dataset (JSON to ``args.out`` or stdout)."""
    from meshops.cli._outputs import emit_report
    from meshops.data import load_dataset
    from meshops.train.stepping import evaluate_trajectories, load_stepper

    st = load_stepper(args.checkpoint, args.device)
    if args.split != "all":
        options = {"split": args.split, **options}
    ds = load_dataset(args.dataset, **options)
    rep = evaluate_trajectories(st, [ds[i] for i in range(len(ds))])
    rep.update(checkpoint=str(args.checkpoint), dataset=str(args.dataset), split=args.split)
    emit_report(rep, args.out)
    return 0


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    import yaml

    from meshops.atomic import write_text_atomic
    from meshops.io import write_series
    from meshops.train.stepping import rollout_errors, stability_steps
    from meshops.train.stepping_ensemble import load_ensemble
    from meshops.train.stepping_eval import first_nonfinite

    st = load_ensemble(args.checkpoint, args.device)
    channels = list(st.stats["channels"])
    field = args.field or channels[min(1, len(channels) - 1)]
    if not args.no_movie and field not in channels:  # refused before anything is written
        raise ValueError(f"rollout: --field '{field}' is not a channel; channels: {channels}")
    opts = {}
    for item in args.option:
        k, _, v = item.partition("=")
        opts[k] = yaml.safe_load(v)
    traj = load_case(args.case, st.cfg.fields, opts)
    X = traj.states(st.cfg.fields)
    if args.start is None:
        args.start = st.history
    elif args.start < st.history:
        raise ValueError(f"rollout: --start {args.start}: the model reads {st.history} past state(s), "
                         f"so the rollout starts at snapshot {st.history} or later")
    steps = len(X) - 1 - args.start if args.steps is None else args.steps
    if steps < 1:
        raise ValueError(f"rollout: --steps {steps} from --start {args.start}: need at least 1 step "
                         f"('{traj.name}' has {len(X)} snapshots)")
    pred = st.rollout(traj, steps, args.start)
    blew = first_nonfinite(pred)  # the first non-finite step: nothing from it is written
    pred = pred[:blew]
    true = X[args.start : args.start + len(pred)]
    if len(true) < len(pred):
        log.warning("rollout: '%s' has truth for %d of the %d steps; errors cover those only",
                    traj.name, len(true) - 1, steps)
    dt = float(st.stats.get("dt", 1.0))
    t0 = float(traj.times[args.start])
    times = [t0 + k * dt for k in range(len(pred))]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meshes = _meshes(traj, channels, pred, true, times)
    write_series(meshes, out / "rollout.pvd")
    n = len(true)
    err = rollout_errors(pred[:n], true)
    pers = rollout_errors(np.repeat(true[:1], n, axis=0), true)
    ckpt = [str(c) for c in args.checkpoint]
    rep = {"checkpoint": ckpt if len(ckpt) > 1 else ckpt[0], "case": traj.name, "start": args.start, "steps": steps,
           "channels": channels, "times": times[:n],
           "rel_l2": {c: [None if not np.isfinite(x) else float(x) for x in err[:, j]] for j, c in enumerate(channels)},
           "persistence_rel_l2": {c: pers[:, j].tolist() for j, c in enumerate(channels)},
           "steps_until_error_above_1": stability_steps(err[1:]) if n > 1 else 0, "blew_up_at_step": blew}
    write_text_atomic(json.dumps(rep, indent=1), out / "rollout_errors.json")
    if not args.no_movie:
        rep["movie_frames"] = write_movie(meshes, field, out / "rollout.gif", args.frames)
    if blew is not None:
        raise SystemExit(f"'{traj.name}': the rollout blew up (non-finite state) at step {blew} of {steps}; "
                         f"{out} holds steps 0-{blew - 1} only")
    print(json.dumps({"out": str(out), "steps": steps, "final_rel_l2": {c: rep["rel_l2"][c][-1] for c in channels},
                      "movie_frames": rep.get("movie_frames")}))
    return 0
