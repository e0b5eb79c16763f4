"""``meshops datasets``: list dataset recipes, run a dataset generator.

``meshops datasets generate NAME --n N --workers W --out DIR [--seed S] [--set key=value ...]`` loads
``datasets/<NAME with '-' -> '_'>/generate.py`` by path and calls its
``generate(out, n, workers, seed, **kw)``. ``meshops datasets list`` lists the recipe folders
(those with a ``generate.py`` can be generated, those with a ``dataset.py`` can be loaded).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

HELP = "list dataset recipes; generate a dataset with its recipe (datasets/<name>/generate.py)"


def recipe_roots() -> list[Path]:
    """Folders searched for recipes: ``$MESHOPS_DATASETS`` entries, ``./datasets``, the checkout's ``datasets/``."""
    roots: list[Path] = []
    env = os.environ.get("MESHOPS_DATASETS")
    if env:
        roots += [Path(p) for p in env.split(os.pathsep) if p]
    roots += [Path.cwd() / "datasets", Path(__file__).resolve().parents[2] / "datasets"]
    out: list[Path] = []
    for r in roots:
        r = r.resolve()
        if r not in out:
            out.append(r)
    return out


def recipes() -> dict[str, Path]:
    """Recipe folders by dataset name (folder name with ``_`` shown as ``-``)."""
    found: dict[str, Path] = {}
    for root in recipe_roots():
        if not root.is_dir():
            continue
        for d in sorted(root.iterdir()):
            if d.is_dir() and ((d / "generate.py").is_file() or (d / "dataset.py").is_file()):
                found.setdefault(d.name.replace("_", "-"), d)
    return found


def find_generator(name: str) -> Path:
    """The ``generate.py`` of dataset ``name``; raises FileNotFoundError naming what exists."""
    folder = name.replace("-", "_")
    for root in recipe_roots():
        p = root / folder / "generate.py"
        if p.is_file():
            return p
    avail = [n for n, d in recipes().items() if (d / "generate.py").is_file()]
    raise FileNotFoundError(
        f"no generator for dataset '{name}': looked for {folder}/generate.py in "
        f"{', '.join(str(r) for r in recipe_roots())}; generators available: {', '.join(avail) or 'none'}"
    )


def load_recipe(path: Path) -> Any:
    """Import a recipe file by path (registered in ``sys.modules`` so worker processes find it)."""
    modname = "meshops_recipe_" + path.parent.name
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"{path}: cannot be imported as Python")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    if not callable(getattr(mod, "generate", None)):
        raise RuntimeError(f"{path}: defines no generate(out, n, workers, seed, **kw) function")
    return mod


def _parse_set(items: list[str]) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for it in items:
        if "=" not in it:
            raise ValueError(f"--set expects key=value, got '{it}'")
        k, v = it.split("=", 1)
        try:
            kw[k] = json.loads(v)
        except json.JSONDecodeError:
            kw[k] = v
    return kw


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("list", help="list dataset recipes")
    g = sub.add_parser("generate", help="run a dataset generator")
    g.add_argument("name", help="dataset name, e.g. coronary-synthetic")
    g.add_argument("--n", type=int, required=True, help="number of cases")
    g.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    g.add_argument("--out", required=True, help="output folder (resumable: finished cases are skipped)")
    g.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra keyword for the recipe's generate() (value parsed as JSON when possible)")


def run(args: argparse.Namespace) -> int:
    if args.action in (None, "list"):
        rec = recipes()
        if not rec:
            print("no dataset recipes found in " + ", ".join(str(r) for r in recipe_roots()))
            return 0
        for name, d in rec.items():
            kinds = [k for k in ("generate.py", "dataset.py") if (d / k).is_file()]
            card = d / "README.md"
            title = ""
            if card.is_file():
                title = next((ln.lstrip("# ").strip() for ln in card.read_text().splitlines() if ln.strip()), "")
            print(f"{name:28s} {' + '.join(kinds):24s} {title}")
        return 0
    if args.n < 0:
        raise ValueError(f"--n must be >= 0, got {args.n}")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    path = find_generator(args.name)
    mod = load_recipe(path)
    kw = _parse_set(args.set)
    _check_keywords(mod.generate, kw, path)
    stats = mod.generate(args.out, args.n, args.workers, args.seed, **kw)
    if stats is not None:
        print(json.dumps(stats, default=str))
    _check_outcome(stats, args.out, args.n)
    return 0


def _check_keywords(fn: Any, kw: dict[str, Any], path: Path) -> None:
    """Every ``--set`` key must be a keyword of the recipe's ``generate`` (all bad ones named at once)."""
    import inspect

    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    fixed = {"out", "n", "workers", "seed"}
    known = [k for k, p in params.items() if k not in fixed and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    bad = [k for k in kw if k not in known]
    if bad:
        raise ValueError(f"{path}: --set {', '.join(bad)}: not an option of this generator (options: "
                         f"{', '.join(known) or 'none'})")


def _check_outcome(stats: Any, out: str, n: int) -> None:
    """A run in which every case failed (now or, with the same configuration, before) is an error."""
    if not isinstance(stats, dict) or n == 0:
        return
    failed = int(stats.get("failed", 0) or 0) + int(stats.get("skipped_failed", 0) or 0)
    if failed and not int(stats.get("done", 0) or 0) and failed >= n:
        raise RuntimeError(f"{out}: all {n} case(s) failed (reasons in {Path(out) / 'failures.jsonl'}); "
                           "fix the configuration and rerun (changed settings retry them)")
