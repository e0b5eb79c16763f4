"""The ``meshops`` command line.

Each subcommand is one module in this package exposing ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Modules are discovered, so adding a command is adding a file. Command
modules import heavy packages (torch, pyvista) inside ``run`` only, so ``meshops --help`` is fast.
Nothing in the library imports this package.
"""

from __future__ import annotations

import argparse
import contextlib
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
    from meshops.cli._errors import OneLineParser

    parser = OneLineParser(prog="meshops", description="Neural operators on arbitrary geometry.",
                           epilog="exit codes: 0 ok, 1 bad input, 2 usage, 3 internal error, 130 interrupted")
    parser.add_argument("--version", action="version", version=f"meshops {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also accepted after the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in _commands().items():
        p = sub.add_parser(name, help=getattr(mod, "HELP", ""), description=getattr(mod, "HELP", ""))
        mod.add_arguments(p)  # type: ignore[attr-defined]
        p.set_defaults(_run=mod.run)  # type: ignore[attr-defined]
    return parser


def _verb(argv: Sequence[str]) -> str:
    names = _commands()
    return next((a for a in argv if a in names), "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure is one line ``meshops <verb>: <file>: <what>`` on stderr.

    Exit codes: 0 ok, 1 bad input, 2 usage, 3 internal error, 130 interrupted (see
    :mod:`meshops.cli._errors`). ``--debug`` (anywhere) re-raises with the full traceback.
    """
    from meshops.cli._errors import EXIT_INTERRUPT, describe, exit_code

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    verb = _verb(argv)
    prefix = f"meshops {verb}" if verb else "meshops"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        level = logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.INFO
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
        if not getattr(args, "_run", None):
            parser.print_help()
            return 2
        return int(args._run(args) or 0)
    except SystemExit as e:  # --help / --version / argparse's errors (printed already), or a message to print
        if isinstance(e.code, str):
            print(f"{prefix}: {e.code}", file=sys.stderr)
            return 1
        return e.code if isinstance(e.code, int) else 0
    except BaseException as e:  # noqa: BLE001 - the one error path of the command line
        if debug and not isinstance(e, KeyboardInterrupt):
            raise
        if not isinstance(e, Exception | KeyboardInterrupt):
            raise
        logging.getLogger("meshops").debug("traceback", exc_info=True)
        msg = describe(e)
        for head in (f"{prefix}: error: ", f"{prefix}: ", "meshops: "):
            msg = msg.removeprefix(head)
        if debug:
            import traceback

            traceback.print_exc()
        with contextlib.suppress(Exception):
            print(f"{prefix}: {msg}", file=sys.stderr)
        return EXIT_INTERRUPT if isinstance(e, KeyboardInterrupt) else exit_code(e)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
