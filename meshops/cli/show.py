"""``meshops show FILE --field NAME [--out PICTURE.png | --html PAGE.html]``: truth | prediction | error.

Off screen by default when ``--out`` is given or no display exists; an interactive window
otherwise (``--window`` forces one). The view fits the geometry (``--view auto``); ``--view``,
``--camera``, ``--slice``, ``--clip`` and ``--vectors`` change it; ``--html`` writes a standalone
interactive page (vtk.js) that opens in a browser without a server.
"""

from __future__ import annotations

import argparse

HELP = "render truth | prediction | error of a field (PNG off screen, a window, or a standalone HTML page)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a mesh with NAME and/or NAME_pred, NAME_error point fields")
    p.add_argument("--field", required=True, help="field name (without _pred)")
    p.add_argument("--out", help="PNG to write")
    p.add_argument("--window", action="store_true", help="open an interactive window")
    p.add_argument("--size", default=None, help="window size WxH, e.g. 1500x500")
    _add_view_arguments(p)


def _add_view_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--view", default="auto", choices=["auto", "xy", "xz", "yz", "iso"],
                   help="camera direction (auto: top-down for thin/planar cases, side view of elongated ones)")
    p.add_argument("--camera", default=None, help="'px,py,pz;fx,fy,fz;ux,uy,uz' (position; focal point; up)")
    p.add_argument("--slice", default=None, help="draw a plane cut: x|y|z, z=VALUE or nx,ny,nz@ox,oy,oz")
    p.add_argument("--clip", default=None, help="keep one side of a plane (same syntax as --slice)")
    p.add_argument("--vectors", action="store_true", help="arrow glyphs for a vector field (error: the error vector)")
    p.add_argument("--units", action="append", default=[], metavar="FIELD=UNIT",
                   help="unit of a field for the colour-bar title, e.g. p=Pa (repeatable)")
    p.add_argument("--html", default=None, help="write a standalone interactive HTML page (vtk.js)")


def _units(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k or not v:
            raise ValueError(f"--units {it!r}: expected FIELD=UNIT, e.g. p=Pa")
        out[k] = v
    return out


def run(args: argparse.Namespace) -> int:
    import meshops
    from meshops.cli._errors import parse_size
    from meshops.viz.render import has_display, render_comparison

    size = parse_size("--size", args.size) if args.size else None
    if not args.out and not args.html and not (args.window or has_display()):
        raise ValueError("meshops show: no display here; give --out PICTURE.png or --html PAGE.html")
    mesh = meshops.read(args.file)
    _check_finite(mesh, args.field, args.file)
    units = _units(args.units)
    if args.html:
        from meshops.viz.html import export_html

        print(export_html(mesh, args.field, args.html, slice=args.slice, clip=args.clip, units=units,
                          view=args.view, camera=args.camera))
        if not (args.out or args.window):
            return 0
    info = render_comparison(mesh, args.field, args.out, show=bool(args.window) or None, window_size=size,
                             view=args.view, camera=args.camera, slice=args.slice, clip=args.clip,
                             vectors=args.vectors, units=units)
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
