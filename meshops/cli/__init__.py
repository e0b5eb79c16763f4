"""The ``meshops`` command line.

Each subcommand is one module in this package exposing ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Modules are discovered, so adding a command is adding a file. Command
modules import heavy packages (torch, pyvista) inside ``run`` only, so ``meshops --help`` is fast.
Nothing in the library imports this package.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence


def _commands() -> dict[str, object]:
    mods = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mods[info.name] = importlib.import_module(f"{__name__}.{info.name}")
    return mods


def build_parser() -> argparse.ArgumentParser:
    from meshops import __version__

    parser = argparse.ArgumentParser(prog="meshops", description="Neural operators on arbitrary geometry.")
    parser.add_argument("--version", action="version", version=f"meshops {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in _commands().items():
        p = sub.add_parser(name, help=getattr(mod, "HELP", ""), description=getattr(mod, "HELP", ""))
        mod.add_arguments(p)  # type: ignore[attr-defined]
        p.set_defaults(_run=mod.run)  # type: ignore[attr-defined]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as e:
        # Errors at the boundary already name the file, the field and the value: show them plainly.
        logging.getLogger("meshops").debug("traceback", exc_info=True)
        print(f"meshops {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
