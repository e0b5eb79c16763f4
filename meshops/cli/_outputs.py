"""Where ``meshops predict`` writes: a format that holds the fields, no collisions, inputs untouched.

* Each output mirrors its input's path relative to the inputs' common folder (one input: its file
  name), so two ``mesh.vtu`` from different folders never overwrite each other.
* An input whose format cannot hold point fields (STL, OBJ, SU2, an OpenFOAM case, ...) gets
  ``.vtu`` (volume cells) or ``.vtp`` (surface, lines, points) instead; the choice is logged.
* An output that would be one of the inputs is refused before anything is computed.
* Outputs are staged as hidden temporary files and renamed into place only when every mesh
  succeeded (:class:`Staged`); a failure or Ctrl-C removes them, and stale ones left by a killed
  run are removed by the next run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("meshops.cli.predict")

__all__ = ["mirror_destinations", "field_format", "Staged", "STAGE_PREFIX", "emit_report"]

STAGE_PREFIX = ".meshops-stage-"
VOLUME_TYPES = {"tetra", "hexahedron", "wedge", "pyramid", "tetra10", "hexahedron20", "hexahedron27",
                "wedge15", "pyramid13", "polyhedron", "voxel"}


def mirror_destinations(inputs: list[str], out: Path) -> list[Path]:
    """One destination per input under ``out``, mirroring relative paths; refuses overwriting an input.

    Shapes
    ------
    inputs : list of n paths -> list of n paths
    """
    src = [Path(p).resolve() for p in inputs]
    dup = sorted({str(p) for p in src if src.count(p) > 1})
    if dup:
        raise ValueError(f"{dup[0]}: given more than once")
    if len(src) == 1:
        rel = [Path(src[0].name)]
    else:
        base = Path(os.path.commonpath([str(p.parent) for p in src]))
        rel = [p.relative_to(base) for p in src]
    dest = [out / r for r in rel]
    for s, d in zip(src, dest, strict=True):
        if d.resolve() == s or (d.exists() and s.exists() and os.path.samefile(d, s)):
            raise ValueError(f"{s}: the output would overwrite this input (--out is its folder); choose "
                             "another --out folder")
        if s.is_dir() and (d.resolve() == s or s in d.resolve().parents):
            raise ValueError(f"{s}: --out must not be inside the input case folder")
    return dest


def field_format(mesh, dest: Path) -> Path:
    """``dest``, or ``dest`` with ``.vtu`` / ``.vtp`` when its format cannot hold point fields.

    Shapes
    ------
    mesh : Mesh with n points -> path
    """
    from meshops.io.registry import find_format

    try:
        fmt = find_format(dest, for_writing=True)
        ok = "point_data" in fmt.stores and (fmt.cell_types is None or set(mesh.cell_types) <= fmt.cell_types)
        ok = ok and ("volume" in fmt.stores or not set(mesh.cell_types) & VOLUME_TYPES)
        ok = ok and ("mixed" in fmt.stores or len(set(mesh.cell_types)) <= 1)
    except (ValueError, OSError):
        ok = False
    if ok and not Path(mesh.source or "").is_dir():
        return dest
    ext = ".vtu" if set(mesh.cell_types) & VOLUME_TYPES else ".vtp"
    new = dest.with_name(dest.name if dest.suffix == "" else dest.stem) if dest.suffix else dest
    new = new.with_name(new.name + ext)
    log.warning("%s: its format cannot hold the predicted point fields; writing %s", mesh.source or dest, new)
    return new


class Staged:
    """Write outputs to hidden temporary files; :meth:`commit` renames them all, failure removes them."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.items: list[tuple[Path, Path]] = []

    def __enter__(self) -> Staged:
        self.out.mkdir(parents=True, exist_ok=True)
        for stale in self.out.rglob(f"{STAGE_PREFIX}*"):
            with contextlib.suppress(OSError):
                stale.unlink()
                log.info("removed %s left by an interrupted run", stale)
        return self

    def path(self, dest: Path) -> Path:
        """A temporary path for ``dest`` (same folder, same extension)."""
        if dest in [d for d, _ in self.items]:
            raise ValueError(f"{dest}: two inputs would be written to the same output")
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=STAGE_PREFIX, suffix=dest.suffix, dir=dest.parent)
        os.close(fd)
        self.items.append((dest, Path(tmp)))
        return Path(tmp)

    def commit(self) -> list[Path]:
        mask = os.umask(0)
        os.umask(mask)
        for dest, tmp in self.items:
            os.chmod(tmp, 0o666 & ~mask)
            os.replace(tmp, dest)
        done = [d for d, _ in self.items]
        self.items = []
        return done

    def __exit__(self, *exc: object) -> None:
        for _, tmp in self.items:
            with contextlib.suppress(OSError):
                tmp.unlink()


def emit_report(report: dict, out: str | os.PathLike[str] | None) -> None:
    """A command's JSON report: to ``out`` (atomically, then its path on stdout), else to stdout."""
    import json
    import sys

    from meshops.atomic import write_json_atomic

    try:
        json.dumps(report, allow_nan=False)
    except ValueError:
        raise ValueError("the report holds a NaN or infinite number, which JSON cannot hold; "
                         "refusing to write it") from None
    if out:
        write_json_atomic(report, out)
        print(out)
    else:
        json.dump(report, sys.stdout, indent=2, allow_nan=False)
        print()
