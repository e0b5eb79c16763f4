"""meshops.viz / meshops show: real off-screen renders, checked pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest

import meshops
from meshops import CellBlock, Mesh
from meshops.cli import main as cli


def _plate(n: int = 25) -> Mesh:
    x, y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    pts = np.c_[x.ravel(), y.ravel(), np.zeros(n * n)]
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    tri = np.r_[np.c_[a, b, c], np.c_[a, c, d]]
    return Mesh(pts, [CellBlock("triangle", tri)], dim=2)


def _near(img: np.ndarray, rgb, tol: float = 40.0) -> int:
    return int((np.linalg.norm(img.astype(float) - np.asarray(rgb, float), axis=-1) < tol).sum())


def test_render_colours_follow_the_field(tmp_path):
    from matplotlib import colormaps

    from meshops.viz import render_comparison

    m = _plate()
    x = m.points[:, 0]
    mesh = m.with_fields(p=x, p_pred=2 * x)  # truth spans the lower half of the shared range
    info = render_comparison(mesh, "p", tmp_path / "cmp.png", window_size=(900, 300))
    assert (tmp_path / "cmp.png").is_file() and info.panels == ["truth", "prediction", "error"]
    assert info.clim == pytest.approx((0.0, 2.0)) and info.error_clim == pytest.approx((0.0, 1.0))
    img = info.image
    assert img.std() > 20  # not blank
    w = img.shape[1] // 3
    truth, pred = img[:, :w], img[:, w : 2 * w]
    vir = colormaps["viridis"]
    top = np.array(vir(1.0)[:3]) * 255
    mid = np.array(vir(0.5)[:3]) * 255
    bottom = np.array(vir(0.0)[:3]) * 255
    assert _near(pred, top) > 200 and _near(pred, bottom) > 200
    assert _near(truth, bottom) > 200 and _near(truth, mid) > 200
    assert _near(truth, top) < 20  # the truth never reaches the top of the shared colour range
    # scaling the field scales the colour range and leaves the picture of the truth alone
    big = m.with_fields(p=1000 * x, p_pred=2000 * x)
    info2 = render_comparison(big, "p", None, window_size=(900, 300), show=False)
    assert info2.clim == pytest.approx((0.0, 2000.0))
    h = img.shape[0]
    body = slice(0, int(h * 0.7))  # above the colour bar labels
    assert np.abs(info2.image[body, :w].astype(int) - truth[body].astype(int)).mean() < 2


def test_show_cli_and_missing_field(tmp_path, capsys):
    m = _plate(12)
    v = np.c_[m.points[:, 0], m.points[:, 1], 0 * m.points[:, 0]]
    f = tmp_path / "vec.vtu"
    meshops.write(m.with_fields(u=v, u_pred=v * 1.1), f)
    png = tmp_path / "u.png"
    assert cli(["show", str(f), "--field", "u", "--out", str(png)]) == 0
    from PIL import Image

    arr = np.asarray(Image.open(png).convert("RGB"))
    assert arr.std() > 20
    assert cli(["show", str(f), "--field", "nope", "--out", str(png)]) == 1
    assert "no point field 'nope'" in capsys.readouterr().err


def test_training_curves_png(tmp_path):
    from meshops.viz import plot_history

    hist = [{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "val_loss": 1.2 / (i + 1), "val_rel_l2": 0.5 / (i + 1)}
            for i in range(5)]
    p = plot_history(hist, tmp_path / "c.png")
    from PIL import Image

    arr = np.asarray(Image.open(p).convert("RGB"))
    assert arr.shape[0] > 100 and arr.std() > 10
