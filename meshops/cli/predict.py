"""``meshops predict CHECKPOINT MESH... --out DIR``: predicted fields written back on each mesh.

Each mesh is written to ``DIR`` under its own file name and format, in its own point order, with
``<field>_pred`` fields and, when the mesh carries the true field, ``<field>_error = pred - truth``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "predict fields on meshes with a trained checkpoint; writes <field>_pred and <field>_error"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .pt written by meshops train (best.pt / last.pt)")
    p.add_argument("meshes", nargs="+", help="mesh files (any format meshops reads)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--global", dest="globals", action="append", default=[], metavar="NAME=VALUE",
                   help="a global parameter the model needs (else read from the file's field data)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache", help="graph cache folder (default: no cache)")


def run(args: argparse.Namespace) -> int:
    import meshops
    from meshops.data.graphs import GraphCache
    from meshops.train.inference import load_trained, predict_mesh

    glob: dict[str, float] = {}
    for item in args.globals:
        if "=" not in item:
            raise ValueError(f"--global expects NAME=VALUE, got '{item}'")
        k, v = item.split("=", 1)
        glob[k] = float(v)
    trained = load_trained(args.checkpoint, args.device,
                           cache=GraphCache(args.cache) if args.cache else None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in args.meshes:
        mesh = meshops.read(path)
        result = predict_mesh(trained, mesh, globals=glob)
        dest = out / Path(path).name
        meshops.write(result, dest)
        print(dest)
    return 0
