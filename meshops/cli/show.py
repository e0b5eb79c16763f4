"""``meshops show FILE --field NAME [--out PICTURE.png]``: truth | prediction | error in PyVista.

Off screen by default when ``--out`` is given or no display exists; an interactive window
otherwise (``--window`` forces one).
"""

from __future__ import annotations

import argparse

HELP = "render truth | prediction | error of a field (PNG off screen, or a window)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a mesh with NAME and/or NAME_pred, NAME_error point fields")
    p.add_argument("--field", required=True, help="field name (without _pred)")
    p.add_argument("--out", help="PNG to write")
    p.add_argument("--window", action="store_true", help="open an interactive window")
    p.add_argument("--size", default=None, help="window size WxH, e.g. 1500x500")


def run(args: argparse.Namespace) -> int:
    import meshops
    from meshops.cli._errors import parse_size
    from meshops.viz.render import has_display, render_comparison

    size = parse_size("--size", args.size) if args.size else None
    if not args.out and not (args.window or has_display()):
        raise ValueError("meshops show: no display here; give --out PICTURE.png")
    mesh = meshops.read(args.file)
    _check_finite(mesh, args.field, args.file)
    info = render_comparison(mesh, args.field, args.out, show=bool(args.window) or None, window_size=size)
    if info.path:
        print(info.path)
    return 0


def _check_finite(mesh, field: str, where: str) -> None:
    """Refuse a panel whose field has no finite value (it would render as a grey 0..1 picture)."""
    import numpy as np

    from meshops.viz.render import compare_fields

    for panel, a in compare_fields(mesh, field).items():
        ok = np.isfinite(np.asarray(a, dtype=np.float64))
        if ok.size and not ok.any():
            raise ValueError(f"{where}: the {panel} of '{field}' is NaN/infinite at every point; nothing to show")
        if not ok.all():
            import logging

            logging.getLogger("meshops.cli.show").warning(
                "%s: the %s of '%s' is NaN/infinite at %d of %d points (drawn as NaN colour)",
                where, panel, field, int((~ok).sum()), ok.size)
