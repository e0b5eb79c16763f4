"""Strouhal and mesh-refinement tables of the cylinder-flow card from generated folders.

``python datasets/cylinder_flow/verify.py [--data runs/cylinder] [--refine runs/cylinder_refine_1.4
runs/cylinder runs/cylinder_refine_0.7] [--readme datasets/cylinder_flow/README.md]`` reads the
cases' ``case.json`` (no solver run) and prints the tables; ``--readme`` writes them into the card
(``--refine`` with no folders: the Strouhal table only).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cards(folder: Path) -> list[dict]:
    return [json.loads((d / "case.json").read_text()) for d in sorted(folder.glob("case_*")) if (d / "case.json").is_file()]


def _rejected(c: dict) -> str:
    """The solves the generator rejected for missing the relation (``strouhal_rejected`` in the card)."""
    return "; ".join(f"x{r['mesh_scale']:g} ({r['cells']} cells): {r['strouhal']:.4f}, {r['strouhal_rel_dev']:+.1%}"
                     for r in c.get("strouhal_rejected") or [])


def _courant(c: dict) -> str:
    s = c["solver"]
    return f"{s['warmup_max_courant']:.2f} / {s['max_courant']:.2f}" if "warmup_max_courant" in s else f"{s['max_courant']:.2f}"


def strouhal_table(folder: Path) -> tuple[str, float]:
    rows = ["| case | Re | D | cells | dt (recorded) | max Courant (warm-up / recorded) | St (icoFoam) | St (Williamson & Brown) | "
            "deviation | rejected solve (mesh scale: St, deviation) |", "|---|---|---|---|---|---|---|---|---|---|"]
    worst = 0.0
    for c in cards(folder):
        if c["kind"] != "cylinder":
            continue
        ref = c["strouhal_reference"]["st"]
        dev = (c["strouhal"] - ref) / ref
        worst = max(worst, abs(dev))
        rows.append(f"| {c['name']} | {c['Re']:.1f} | {c['D']:.3f} | {c['mesh']['cells']} | {c['solver']['dt']:.4g} | "
                    f"{_courant(c)} | {c['strouhal']:.4f} | "
                    f"{ref:.4f} | {dev:+.1%} | {_rejected(c)} |")
    others = [c for c in cards(folder) if c["kind"] != "cylinder"]
    rows.append("")
    rows.append(f"Worst deviation {worst:.1%} over the cylinder cases. Other shapes (no reference relation): " +
                ", ".join(f"{c['name']} {c['kind']} Re {c['Re']:.0f} St {c['strouhal']:.4f}" for c in others) + ".")
    return "\n".join(rows), worst


def refinement_table(folders: list[Path], case: str = "case_00000") -> str:
    rows = ["| mesh scale | cells | points | dt (recorded) | max Courant | St | mean Cd | Cl amplitude | icoFoam s per step |",
            "|---|---|---|---|---|---|---|---|---|"]
    for f in folders:
        d = f / case / "case.json"
        if not d.is_file():
            rows.append(f"| {f.name} | (not generated) | | | | | | | |")
            continue
        c = json.loads(d.read_text())
        rows.append(f"| {c['geometry']['mesh']['scale']} | {c['mesh']['cells']} | {c['mesh']['points']} | "
                    f"{c['solver']['dt']:.4g} | {_courant(c)} | {c['strouhal']:.4f} | {c['cd_mean']:.4f} | {c['cl_amplitude']:.4f} | "
                    f"{c['solver']['wall_s_per_step']:.4f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from meshops.atomic import replace_block

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="runs/cylinder")
    ap.add_argument("--refine", nargs="*", default=["runs/cylinder_refine_1.4", "runs/cylinder", "runs/cylinder_refine_0.7"])
    ap.add_argument("--readme", default=None)
    a = ap.parse_args(argv)
    st, worst = strouhal_table(Path(a.data))
    rf = refinement_table([Path(p) for p in a.refine]) if a.refine else ""
    print(st, "\n\n", rf, sep="")
    if a.readme:
        replace_block(a.readme, "<!-- strouhal:begin -->", "<!-- strouhal:end -->", "\n" + st + "\n", required=True)
        if rf:
            replace_block(a.readme, "<!-- refinement:begin -->", "<!-- refinement:end -->", "\n" + rf + "\n", required=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
