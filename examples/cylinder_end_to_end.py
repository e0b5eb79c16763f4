"""End to end on real CFD results: train, checkpoint, reload, predict to a VTU, show.

Trains the message-passing (``mgn``) and the multi-scale (``ugraph``) operators on the SimVascular
cylinder (pressure and WSS at one time from another; see ``cylinder_dataset.py``), then, for each,
predicts a held-out case written as a VTU and renders truth | prediction | error::

    python examples/cylinder_end_to_end.py --out runs/cylinder          # the full example
    python examples/cylinder_end_to_end.py --out /tmp/cyl --tiny        # seconds, as the tests run it
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> dict[str, dict[str, object]]:
    import meshops
    from meshops.data import load_dataset
    from meshops.train import TrainConfig, load_trained, predict_mesh, train

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/cylinder")
    ap.add_argument("--tiny", action="store_true", help="a few cases, tiny models, 2 epochs")
    ap.add_argument("--models", default="mgn,ugraph")
    ap.add_argument("--no-render", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    summary: dict[str, dict[str, object]] = {}
    for name in args.models.split(","):
        overrides: dict[str, object] = {"out": str(out / name), "cache": str(out / "graph_cache")}
        if args.tiny:
            overrides.update(epochs=2, batch_size=2, progress=False,
                             dataset_options={"max_cases": 12})
        cfg = TrainConfig.from_yaml(HERE / f"cylinder_{name}.yaml")
        d = cfg.to_dict()
        d.update(overrides)
        if args.tiny:
            d["model_options"] = {"mgn": {"hidden": 16, "n_blocks": 2},
                                  "ugraph": {"hidden": 16, "levels": 3, "blocks_per_level": 1}}[name]
        result = train(TrainConfig.from_dict(d))
        trained = load_trained(result.best_checkpoint)
        # a held-out case, written as a user's VTU file with inputs and the truth
        splits = json.loads((Path(d["out"]) / "splits.json").read_text())
        held = (splits["test"] or splits["val"] or splits["train"])[0]
        ds = load_dataset(d["dataset"], **d["dataset_options"])
        case = ds[ds.case_names().index(held)]
        src = out / name / f"{held}.vtu"
        user_mesh = case.mesh.with_fields({})
        user_mesh.field_data.update({k: [v] for k, v in case.globals.items()})
        meshops.write(user_mesh, src)
        pred_path = out / name / "predicted" / src.name
        pred_path.parent.mkdir(parents=True, exist_ok=True)
        meshops.write(predict_mesh(trained, meshops.read(src), globals=case.globals), pred_path)
        info = {"checkpoint": str(result.best_checkpoint), "prediction": str(pred_path),
                "val_rel_l2": result.best_val_rel_l2, "steps": result.steps}
        if not args.no_render:
            from meshops.viz import render_comparison

            png = out / name / "pressure.png"
            render_comparison(meshops.read(pred_path), "pressure", png)
            info["picture"] = str(png)
        summary[name] = info
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main(sys.argv[1:])
    sys.exit(0)
