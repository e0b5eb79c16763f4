"""``meshops info PATH``: points, cells per type, bounds, 2D/3D, boundary regions and field statistics."""

from __future__ import annotations

import argparse
import json
import os
import sys

HELP = "describe a mesh file or case: sizes, cell types, bounds, boundaries, fields (--json for scripts)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="+", help="mesh file, case directory, or several files (a time series)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--time", default=None,
                   help="time step to describe (a number, 'first', 'latest' (default) or 'all')")
    p.add_argument("--format", default=None, help="format name when the extension does not say it")


def run(args: argparse.Namespace) -> int:
    from meshops.io import probe, read
    from meshops.io.registry import find_format
    from meshops.io.summary import format_table, summarize

    src = args.path if len(args.path) > 1 else args.path[0]
    got = read(src, time=args.time, format=args.format)
    if isinstance(src, list) or find_format(src, args.format).probe is not None:
        info = probe(src, format=args.format)  # cheap (headers only): lists the times
    else:  # single-state format without a lazy probe: do not read the file twice
        info = {"format": find_format(src, args.format).name, "times": []}
    times = list(info.get("times") or [])
    meshes = got if isinstance(got, list) else [got]
    summaries = [summarize(m) for m in meshes]
    for s in summaries:
        s["format"] = info.get("format")
        s["times"] = times
    if args.json:
        text = json.dumps(summaries if isinstance(got, list) else summaries[0], indent=1, allow_nan=False)
    else:
        text = "\n\n".join(format_table(s, times) for s in summaries)
    try:
        print(text)
    except BrokenPipeError:  # `meshops info x | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
