"""``meshops train CONFIG.yaml`` (or flags): train an operator on a dataset, write checkpoints.

Examples::

    meshops train examples/cylinder_mgn.yaml
    meshops train --path 'results/*.vtu' --inputs inlet --targets pressure,wss --model ugraph --out runs/a
    meshops train examples/cylinder_mgn.yaml --set model_options.hidden=64 --epochs 50
    meshops train examples/cylinder_flow_stepping.yaml     # a trajectory dataset (``stepping:`` section)

Under ``torchrun --standalone --nproc_per_node=K --no-python meshops train ...`` the run is distributed
(DDP; gloo on CPU, NCCL on GPU); ``--batch-size`` stays the global batch.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

HELP = "train an operator (YAML config or flags); writes best.pt, last.pt, metrics and curves"


def _list(s: str | None) -> list[str] | None:
    return None if s is None else [t for t in s.split(",") if t]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="training YAML (keys of meshops.train.TrainConfig)")
    p.add_argument("--dataset", help="dataset name, .py file or folder with dataset.py (default: folder)")
    p.add_argument("--path", help="folder dataset: folder or glob of mesh files")
    p.add_argument("--inputs", help="folder dataset: comma-separated input point fields")
    p.add_argument("--targets", help="folder dataset: comma-separated target point fields")
    p.add_argument("--globals", help="folder dataset: comma-separated global parameters")
    p.add_argument("--model", help="model name (see meshops.models.available())")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, dest="batch_size")
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="run folder (checkpoints, metrics, curves)")
    p.add_argument("--cache", help="graph cache folder")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--max-steps", type=int, dest="max_steps")
    p.add_argument("--no-resume", action="store_true", help="start over even if OUT/last.pt exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key; dotted for nested (model_options.hidden=64); YAML values")


def _apply_set(d: dict[str, Any], items: list[str]) -> None:
    import yaml

    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got '{item}'")
        key, val = item.split("=", 1)
        parts = key.split(".")
        cur = d
        for k in parts[:-1]:
            cur = cur.setdefault(k, {})
            if not isinstance(cur, dict):
                raise ValueError(f"--set {key}: '{k}' is not a mapping")
        cur[parts[-1]] = yaml.safe_load(val)


def build_config(args: argparse.Namespace) -> Any:
    from meshops.train.config import TrainConfig

    if args.config:
        cfg = TrainConfig.from_yaml(args.config).to_dict()
    else:
        cfg = TrainConfig().to_dict()
    for k in ("dataset", "model", "epochs", "batch_size", "lr", "seed", "out", "cache", "device", "max_steps"):
        v = getattr(args, k, None)
        if v is not None:
            cfg[k] = v
    opts = dict(cfg.get("dataset_options") or {})
    for k in ("path", "inputs", "targets", "globals"):
        v = getattr(args, k, None)
        if v is not None:
            opts[k] = v if k == "path" else _list(v)
    cfg["dataset_options"] = opts
    if args.no_resume:
        cfg["resume"] = False
    if args.no_progress:
        cfg["progress"] = False
    _apply_set(cfg, args.set)
    if cfg["dataset"] == "folder" and not opts.get("path"):
        raise ValueError("meshops train: give a CONFIG.yaml, --dataset, or --path/--inputs/--targets for a folder")
    return TrainConfig.from_dict(cfg, where=args.config or "command line")


def run(args: argparse.Namespace) -> int:
    from meshops.train import train

    config = build_config(args)
    if config.stepping is not None:  # a trajectory dataset: learned time stepping
        from meshops.train.stepping_run import train_from_config

        result = train_from_config(config)
    else:
        result = train(config)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"out": str(result.out), "best": str(result.best_checkpoint),
                          "steps": result.steps, "best_val_rel_l2": result.best_val_rel_l2}))
    return 0
