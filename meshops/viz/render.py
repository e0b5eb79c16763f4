"""PyVista renders: truth | prediction | error side by side, off screen by default.

Truth and prediction share one colour bar (the range covers both); the error panel has its own,
symmetric about zero for scalar fields. Vector fields are shown by their magnitude (the error
panel then shows the magnitude of the error vector).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from meshops.atomic import atomic_path
from meshops.mesh import Mesh, MeshError

log = logging.getLogger(__name__)

__all__ = ["has_display", "compare_fields", "render_comparison", "RenderInfo"]


def has_display() -> bool:
    """Whether an interactive window can open (a display exists and off-screen is not forced)."""
    if os.environ.get("PYVISTA_OFF_SCREEN", "").lower() in ("1", "true", "yes"):
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _load_triton_before_mesa() -> None:
    """Import triton (when installed) before the first off-screen render.

    Triton ships its own LLVM. Loading it after Mesa's llvmpipe (which VTK's first software render
    pulls in) crashes the process with a segmentation fault, and ``import torch_geometric`` loads
    triton through ``torch._dynamo``. Loading it first keeps both working in one process.
    """
    import importlib.util

    if importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401


def _scalar(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a if a.ndim == 1 else np.linalg.norm(a.reshape(len(a), -1), axis=1)


def compare_fields(mesh: Mesh, name: str) -> dict[str, np.ndarray]:
    """The scalar panels to draw for field ``name``: any of ``truth``, ``prediction``, ``error``.

    Looks for ``name``, ``name_pred`` and ``name_error`` in the mesh's point fields; the error is
    computed as prediction - truth when only those two exist.

    Shapes
    ------
    returns : {panel: (n_points,) float64}
    """
    pd = mesh.point_data
    where = mesh.source or "<mesh>"
    base = name[:-5] if name.endswith("_pred") else name
    out: dict[str, np.ndarray] = {}
    if base in pd:
        out["truth"] = _scalar(pd[base])
    if f"{base}_pred" in pd:
        out["prediction"] = _scalar(pd[f"{base}_pred"])
    if f"{base}_error" in pd:
        err = np.asarray(pd[f"{base}_error"], dtype=np.float64)
        out["error"] = err if err.ndim == 1 else np.linalg.norm(err.reshape(len(err), -1), axis=1)
    elif base in pd and f"{base}_pred" in pd:
        err = np.asarray(pd[f"{base}_pred"], np.float64) - np.asarray(pd[base], np.float64)
        out["error"] = err if err.ndim == 1 else np.linalg.norm(err.reshape(len(err), -1), axis=1)
    if not out:
        fields = sorted(pd)
        raise MeshError(f"{where}: no point field '{base}' (nor '{base}_pred'); point fields: {fields}")
    return out


@dataclass
class RenderInfo:
    """What was drawn: the panels and the colour ranges used."""

    panels: list[str]
    clim: tuple[float, float]
    error_clim: tuple[float, float] | None
    path: Path | None
    image: np.ndarray | None = field(default=None, repr=False)


def render_comparison(
    mesh: Mesh,
    name: str,
    out: str | os.PathLike[str] | None = None,
    *,
    show: bool | None = None,
    window_size: tuple[int, int] | None = None,
    cmap: str = "viridis",
    error_cmap: str = "coolwarm",
) -> RenderInfo:
    """Draw truth | prediction | error for point field ``name`` of ``mesh``.

    Parameters
    ----------
    out : path or None
        PNG to write (atomically). Without it and without a display, the image is only returned.
    show : bool or None
        Open an interactive window; ``None`` opens one only when a display exists and no ``out``.

    Returns
    -------
    RenderInfo with the colour ranges and the RGB image (h, w, 3) uint8.
    """
    _load_triton_before_mesa()
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # No X server: render through EGL directly instead of failing over from an X window (VTK >= 9.4).
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    panels = compare_fields(mesh, name)
    order = [p for p in ("truth", "prediction", "error") if p in panels]
    if show is None:
        show = out is None and has_display()
    grid = mesh.to_pyvista()
    main = [panels[p] for p in order if p != "error"]
    vals = np.concatenate([v[np.isfinite(v)] for v in main]) if main else np.zeros(1)
    clim = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    if clim[0] == clim[1]:
        clim = (clim[0] - 0.5, clim[1] + 0.5) if clim[0] == 0 else (clim[0] - abs(clim[0]) * 0.01, clim[1] + abs(clim[1]) * 0.01)
    eclim = None
    if "error" in panels:
        e = panels["error"][np.isfinite(panels["error"])]
        m = float(np.abs(e).max()) if e.size else 1.0
        m = m if m > 0 else 1.0
        eclim = (-m, m) if (e.size and e.min() < 0) else (0.0, m)
    size = window_size or (520 * len(order), 480)
    off = not show
    pl = pv.Plotter(shape=(1, len(order)), off_screen=off, window_size=list(size))
    base = name[:-5] if name.endswith("_pred") else name
    for j, p in enumerate(order):
        pl.subplot(0, j)
        g = grid.copy()
        key = f"{base} ({p})"
        g.point_data[key] = panels[p]
        is_err = p == "error"
        pl.add_mesh(
            g, scalars=key, cmap=error_cmap if is_err else cmap, clim=eclim if is_err else clim,
            show_scalar_bar=is_err or j == (len(order) - 2 if "error" in panels else len(order) - 1),
            scalar_bar_args={"title": f"{base} error" if is_err else base, "vertical": False,
                             "fmt": "%.4g", "n_labels": 3},
            nan_color="lightgrey", lighting=mesh.dim == 3,  # flat 2D fields: exact colours
        )
        pl.add_text(p, font_size=10)
        if mesh.dim == 2:
            pl.view_xy()
        else:
            pl.view_isometric()
    if len(order) > 1:
        pl.link_views()
    img = None
    path = Path(out) if out is not None else None
    if path is not None:
        with atomic_path(path, make_parents=True) as tmp:
            img = pl.screenshot(str(tmp), return_img=True)
    if show:
        pl.show()
    else:
        if img is None:
            img = pl.screenshot(return_img=True)
        pl.close()
    return RenderInfo(order, clim, eclim, path, img)
