"""meshops show --html: a standalone vtk.js page, loaded and rendered in headless Chromium (no server)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _volume():
    spec = importlib.util.spec_from_file_location("make_pictures", ROOT / "docs" / "make_pictures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.vessel(60, 16)


def _screenshot(page: Path, png: Path, size=(1500, 500)) -> np.ndarray:
    from PIL import Image

    with tempfile.TemporaryDirectory() as profile:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
               f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=20000", f"--screenshot={png}",
               page.resolve().as_uri()]
        subprocess.run(cmd, capture_output=True, timeout=180, check=False)
    assert png.is_file(), "chromium wrote no screenshot"
    return np.asarray(Image.open(png).convert("RGB"))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it: Makefile DEBS)")
def test_html_viewer_renders_in_headless_chromium(tmp_path):
    import meshops
    from meshops.cli import main

    f = tmp_path / "vessel.vtu"
    meshops.write(_volume(), f)
    page = tmp_path / "view.html"
    assert main(["show", str(f), "--field", "p", "--html", str(page), "--units", "p=Pa"]) == 0
    text = page.read_text(errors="replace")
    assert "<html" in text.lower() and "vtk" in text.lower()
    assert "src=\"http" not in text and "src='http" not in text      # nothing fetched: opens from disk
    img = _screenshot(page, tmp_path / "shot.png")
    assert img.std() > 10                                           # a rendered canvas, not a blank page
    w = img.shape[1] // 3
    truth, error = img[:, :w].astype(int), img[:, 2 * w:3 * w].astype(int)
    h = img.shape[0]
    body = slice(int(0.15 * h), int(0.75 * h))
    for panel in (truth, error):
        bg = panel[5, 5]
        assert (np.abs(panel[body] - bg).sum(axis=-1) > 30).mean() > 0.02   # the vessel is drawn
    assert np.abs(truth[body] - error[body]).mean() > 3                      # truth and error panels differ
