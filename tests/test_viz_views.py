"""Views that fit the case, checked on the pixels: a one-cell-thick slab, a vessel, a 3D volume with --slice."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from meshops.viz.view import choose_view, eng_scale, parse_camera, parse_plane, tick_labels

ROOT = Path(__file__).resolve().parents[1]


def _pictures():
    spec = importlib.util.spec_from_file_location("make_pictures", ROOT / "docs" / "make_pictures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _panels(img: np.ndarray, n: int = 3) -> list[np.ndarray]:
    w = img.shape[1] // n
    return [img[:, j * w:(j + 1) * w] for j in range(n)]


def _foreground(panel: np.ndarray) -> np.ndarray:
    bg = panel[panel.shape[0] // 2, 3].astype(int)      # left margin, mid height: background
    return np.abs(panel.astype(int) - bg).sum(axis=-1) > 30


def _check_picture(info, *, min_span: float) -> None:
    img = info.image
    assert img is not None and img.std() > 20                    # non-blank
    for p, panel in zip(info.panels, _panels(img, len(info.panels)), strict=True):
        h, w = panel.shape[:2]
        body = _foreground(panel[int(0.1 * h):int(0.78 * h), 2:-2])
        assert body.mean() > 0.04, (p, body.mean())
        rows, cols = np.flatnonzero(body.any(axis=1)), np.flatnonzero(body.any(axis=0))
        span = max((cols[-1] - cols[0]) / body.shape[1], (rows[-1] - rows[0]) / body.shape[0])
        assert span > min_span, (p, span)                        # the object fills the frame
        band = _foreground(panel[int(0.8 * h):, :])              # colour bar: title, bar, labels
        band[:, _foreground(panel).mean(axis=0) > 0.9] = False   # the subplot separator line
        if band.any():
            c = np.flatnonzero(band.any(axis=0))
            assert c[0] > 3 and c[-1] < w - 4, (p, c[0], c[-1])  # no label runs off the panel
    for title, *ticks in info.labels.values():
        assert all(len(t) <= 6 for t in ticks), ticks             # short engineering-notation labels
        assert 0 < len(title) <= 24, title


def test_slab_is_seen_top_down():
    info = _pictures().render("slab", None)
    assert info.view.startswith("top-down") and "along z" in info.view
    _check_picture(info, min_span=0.75)
    assert info.labels["prediction"][0] == "p [mPa]"
    assert info.labels["prediction"][1:] == tick_labels(*info.clim, 1e-3)
    assert info.labels["error"][0] == "p error [µPa]"


def test_vessel_is_seen_along_its_length():
    info = _pictures().render("vessel", None)
    assert info.view.startswith("side") and "x across" in info.view
    _check_picture(info, min_span=0.85)
    assert info.labels["prediction"][0] == "p [kPa]"


def test_volume_slice_with_vectors():
    info = _pictures().render("volume_slice", None)
    assert info.view.startswith("top-down")
    _check_picture(info, min_span=0.5)
    assert info.error_clim[0] == 0.0        # a vector error: its magnitude, on a sequential map
    # the slice shows the inside: the truth panel's centre (|u| ~ 0 on the axis) is dark on viridis
    truth = _panels(info.image)[0]
    h, w = truth.shape[:2]
    centre = truth[int(0.45 * h):int(0.5 * h), int(0.45 * w):int(0.55 * w)].astype(float)
    assert centre.mean(axis=(0, 1))[1] < 90


def test_choose_view_rules():
    rng = np.random.default_rng(0)
    slab = rng.uniform(size=(200, 3)) * [1, 2, 0.01]
    assert choose_view(slab).name.startswith("top-down: along z, y across")
    tube = rng.uniform(size=(200, 3)) * [0.5, 0.4, 8]
    assert choose_view(tube).name.startswith("side") and "z across" in choose_view(tube).name
    cube = rng.uniform(size=(200, 3))
    assert choose_view(cube).name == "iso"
    assert choose_view(cube, "xz").name == "xz"
    with pytest.raises(ValueError, match="view must be"):
        choose_view(cube, "top")


def test_eng_scale_and_parsers():
    assert eng_scale(0, 2e-3, "Pa") == (1e-3, " [mPa]")
    assert eng_scale(-1.436e5, 3e3) == (1e3, " (x1e3)")
    assert eng_scale(0, 5.0) == (1.0, "")
    assert tick_labels(0, 1.436e5, 1e3) == ["0", "71.8", "144"]
    n, o = parse_plane("z=0.25", np.array([[0, 0, 0], [1, 1, 1.0]]))
    assert n.tolist() == [0, 0, 1] and o.tolist() == [0.5, 0.5, 0.25]
    with pytest.raises(ValueError, match="plane 'w'"):
        parse_plane("w", np.zeros((2, 3)))
    cam = parse_camera("1,2,3;0,0,0;0,0,1")
    assert cam.position == (1, 2, 3) and cam.up == (0, 0, 1)
    with pytest.raises(ValueError, match="three x,y,z triples"):
        parse_camera("1,2,3")


def test_show_cli_view_options(tmp_path):
    import meshops
    from meshops.cli import main

    mod = _pictures()
    f = tmp_path / "vol.vtu"
    meshops.write(mod.volume(400), f)
    png = tmp_path / "v.png"
    assert main(["show", str(f), "--field", "u", "--out", str(png), "--clip", "x=0.5", "--view", "iso",
                 "--vectors", "--units", "u=m/s", "--camera", "3,3,3;0.5,0.5,0.5;0,0,1"]) == 0
    from PIL import Image

    assert np.asarray(Image.open(png).convert("RGB")).std() > 20
    assert main(["show", str(f), "--field", "u", "--out", str(png), "--slice", "z=7"]) == 1
