"""Pack generated cylinder-flow cases into the compact shipped subset.

``python datasets/cylinder_flow/pack.py GEN_DIR [--cases case_00000 case_00004 ...] [--steps 100]
[--out data/cylinder_flow_subset.npz]`` keeps, for each chosen case, the first ``steps`` snapshots
of ``u``, ``v``, ``p`` (float16; the mesh, boundary edges and times exactly) and its card. Arrays
of case ``k`` are stored as ``c<k>_<name>``; ``cards`` is a JSON list.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "data" / "cylinder_flow_subset.npz"
DEFAULT_CASES = ("case_00000", "case_00003", "case_00004")


def pack(gen: Path, cases: list[str], steps: int, out: Path) -> dict[str, int]:
    from meshops.atomic import atomic_path

    arrays: dict[str, np.ndarray] = {}
    cards = []
    for k, name in enumerate(cases):
        d = gen / name
        if not (d / "case.json").is_file():
            raise FileNotFoundError(f"{d}: no finished case (case.json missing)")
        card = json.loads((d / "case.json").read_text())
        with np.load(d / "trajectory.npz", allow_pickle=False) as z:
            for n in z.files:
                a = z[n]
                if n in ("u", "v", "p"):
                    a = a[:steps].astype(np.float16)
                elif n == "t":
                    a = a[:steps]
                elif n == "lift":
                    continue
                arrays[f"c{k}_{n}"] = a
        cards.append(card)
    arrays["cards"] = np.array(json.dumps(cards))
    with atomic_path(out, make_parents=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return {"cases": len(cases), "bytes": out.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gen")
    ap.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES))
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    a = ap.parse_args(argv)
    print(pack(Path(a.gen), a.cases, a.steps, Path(a.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
