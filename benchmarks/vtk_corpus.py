"""Agreement of meshops.read with pyvista.read over a folder of files (e.g. pyvista/vtk-data).

Usage::

    python benchmarks/vtk_corpus.py FOLDER [--unzip] [--out report.md]

Every file with an extension meshops claims is compared by
:func:`meshops.io.agreement.compare_with_pyvista`; files pyvista cannot read are left out. A file
agrees when nothing differs or the difference is a row of the known-differences table of
``docs/formats.md``. ``--unzip`` first extracts the folder's ``.zip`` archives beside a copy.
"""

from __future__ import annotations

import argparse
import fnmatch
import logging
import re
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def documented() -> list[str]:
    table = (ROOT / "docs" / "formats.md").read_text().split("### Known differences", 1)[1]
    return [p for row in re.findall(r"^\| (.+?) \|", table, flags=re.M) for p in re.findall(r"`([^`]+)`", row)]


def is_documented(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, "*/" + p) or fnmatch.fnmatch(Path(rel).name, p)
               for p in patterns)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--unzip", action="store_true")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    from meshops.io import known_extensions
    from meshops.io.agreement import compare_with_pyvista

    roots = [a.folder]
    tmp = tempfile.TemporaryDirectory()
    if a.unzip:
        for z in sorted(a.folder.rglob("*.zip")):
            dest = Path(tmp.name) / str(z.relative_to(a.folder)).replace("/", "_")[:-4]
            try:
                zipfile.ZipFile(z).extractall(dest)
            except (zipfile.BadZipFile, OSError):
                continue
        roots.append(Path(tmp.name))
    exts, pats = tuple(known_extensions()), documented()
    agree = doc = differ = skipped = 0
    lines = []
    t0 = time.perf_counter()
    for root in roots:
        for f in sorted(root.rglob("*")):
            if not f.is_file() or not f.name.lower().endswith(exts):
                continue
            rel = str(f.relative_to(root)) if root == a.folder else "unzipped/" + str(f.relative_to(root))
            try:
                d = compare_with_pyvista(f)
            except Exception:
                skipped += 1
                continue
            if not d:
                agree += 1
            elif is_documented(rel, pats):
                doc += 1
            else:
                differ += 1
                lines.append(f"| {rel} | {'; '.join(d)[:300]} |")
    total = agree + doc + differ
    pct = 100.0 * (agree + doc) / max(total, 1)
    summary = (f"{total} files pyvista reads: {agree} identical, {doc} documented differences, {differ} "
               f"undocumented; agreement {pct:.1f}% ({skipped} files pyvista cannot read left out; "
               f"{time.perf_counter() - t0:.0f} s)")
    print(summary)
    print("\n".join(lines))
    if a.out:
        a.out.write_text(summary + "\n\n| file | difference |\n|---|---|\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
