"""``meshops bench NAME``: run ``benchmarks/NAME.py`` (side by side with the peers, ratios printed)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

HELP = "run a side-by-side benchmark from benchmarks/ (kernels, graph, ...)"


def benchmarks_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "benchmarks"


def available() -> list[str]:
    d = benchmarks_dir()
    return sorted(p.stem for p in d.glob("*.py") if not p.name.startswith("_")) if d.is_dir() else []


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="benchmark name: one of " + ", ".join(available() or ["(none found)"]))
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")


def run(args: argparse.Namespace) -> int:
    path = benchmarks_dir() / f"{args.name}.py"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no benchmark named '{args.name}' (available: {', '.join(available()) or 'none'}); "
            "benchmarks run from a source checkout"
        )
    spec = importlib.util.spec_from_file_location(f"meshops_bench_{args.name}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # classes defined there (e.g. a PyG MessagePassing) look up their module
    spec.loader.exec_module(mod)
    return int(mod.main(args.rest) or 0)
