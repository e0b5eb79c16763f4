"""``meshops evaluate CHECKPOINT DATASET``: per-case and mean metrics as JSON.

``DATASET`` is a dataset spec (registered name, ``.py`` file, folder with ``dataset.py``) or a
folder / glob of mesh files read with the checkpoint's field names. ``--split test`` keeps only the
cases of that split (from ``splits.json`` beside the checkpoint).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "evaluate a checkpoint on a dataset: relative L2 / max error per case and mean (JSON)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint")
    p.add_argument("dataset", help="dataset spec, or a folder/glob of mesh files")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset constructor option (YAML value)")
    p.add_argument("--split", choices=["train", "val", "test", "all"], default="all",
                   help="only this split's cases (splits.json beside the checkpoint)")
    p.add_argument("--out", help="write the JSON here (default: stdout)")
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    import yaml

    from meshops.cli._errors import UsageError
    from meshops.cli._outputs import emit_report
    from meshops.data import DatasetError, check_case, load_dataset, resolve_dataset
    from meshops.data.folder import FolderDataset
    from meshops.train.inference import evaluate, load_trained

    opts = {}
    for item in args.option:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise UsageError(f"--option expects KEY=VALUE, got {item!r}")
        opts[k] = yaml.safe_load(v)
    from meshops.cli.rollout import evaluate_cli
    from meshops.train.stepping import is_stepping_checkpoint

    if is_stepping_checkpoint(args.checkpoint):  # trajectory datasets: 1-step, 50-step, full rollout
        return evaluate_cli(args, opts)
    trained = load_trained(args.checkpoint, args.device)
    try:
        try:
            resolve_dataset(args.dataset)
            ds = load_dataset(args.dataset, **opts)
        except DatasetError:
            p = Path(args.dataset)
            if not (p.exists() or any(ch in args.dataset for ch in "*?[")):
                raise
            f = trained.features
            ds = FolderDataset(args.dataset, inputs=f.inputs, targets=f.targets, globals=f.globals, **opts)
    except TypeError as e:  # a constructor keyword the dataset does not take
        raise DatasetError(f"{args.dataset}: --option {', '.join(opts) or ''}: {e}") from None
    names = list(ds.case_names())
    keep = names
    if args.split != "all":
        sp = Path(args.checkpoint).resolve().parent / "splits.json"
        if not sp.is_file():
            raise FileNotFoundError(f"--split {args.split}: {sp} does not exist")
        wanted = set(json.loads(sp.read_text())[args.split])
        keep = [n for n in names if n in wanted]
        if not keep:
            raise DatasetError(f"--split {args.split}: none of its cases are in dataset '{args.dataset}'")
    cases = (check_case(ds[names.index(n)], where=f"case '{n}'") for n in keep)
    report = evaluate(trained, cases)
    report["checkpoint"] = str(args.checkpoint)
    report["dataset"] = str(args.dataset)
    report["split"] = args.split
    emit_report(report, args.out)
    return 0
