"""PyVista renders: truth | prediction | error side by side, off screen by default.

Truth and prediction share one colour bar (the range covers both); the error panel has its own,
symmetric about zero for scalar fields. Vector fields are shown by their magnitude on a sequential
map (the error panel: the magnitude of the error vector), with ``vectors=True`` also as arrow glyphs
(the error panel's glyphs are the error vectors). The view fits the case (see
:mod:`meshops.viz.view`); colour-bar labels are short (engineering notation, units in the title).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from meshops.atomic import atomic_path
from meshops.mesh import Mesh, MeshError

log = logging.getLogger(__name__)

__all__ = ["has_display", "compare_fields", "render_comparison", "RenderInfo", "vector_panels"]


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


def vector_panels(mesh: Mesh, name: str) -> dict[str, np.ndarray]:
    """The vector panels of field ``name`` (empty for a scalar field): truth, prediction, error vectors.

    Shapes
    ------
    returns : {panel: (n_points, 3) float64}
    """
    pd = mesh.point_data
    base = name[:-5] if name.endswith("_pred") else name
    out: dict[str, np.ndarray] = {}
    for panel, key in (("truth", base), ("prediction", f"{base}_pred"), ("error", f"{base}_error")):
        if key in pd and np.asarray(pd[key]).ndim == 2 and np.asarray(pd[key]).shape[1] in (2, 3):
            v = np.zeros((mesh.n_points, 3))
            a = np.asarray(pd[key], dtype=np.float64)
            v[:, : a.shape[1]] = a
            out[panel] = v
    if "error" not in out and "truth" in out and "prediction" in out:
        out["error"] = out["prediction"] - out["truth"]
    return out


@dataclass
class RenderInfo:
    """What was drawn: the panels, the colour ranges, the view and the colour-bar labels."""

    panels: list[str]
    clim: tuple[float, float]
    error_clim: tuple[float, float] | None
    path: Path | None
    image: np.ndarray | None = field(default=None, repr=False)
    view: str = ""
    labels: dict[str, list[str]] = field(default_factory=dict)


def _ranges(panels: dict[str, np.ndarray], order: list[str], vector: bool) -> tuple[tuple[float, float], tuple[float, float] | None]:
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
        eclim = (-m, m) if (e.size and e.min() < 0 and not vector) else (0.0, m)
    return clim, eclim


def _glyphs(grid: Any, vec_key: str, max_arrows: int = 400) -> Any:
    """Arrow glyphs of point vectors ``vec_key`` on at most ``max_arrows`` points, scaled to the mesh size."""
    import pyvista as pv

    v = np.asarray(grid.point_data[vec_key])
    step = max(1, grid.n_points // max_arrows)
    pts = pv.PolyData(np.asarray(grid.points)[::step])
    pts.point_data[vec_key] = v[::step]
    mag = float(np.linalg.norm(v, axis=1).max()) if len(v) else 0.0
    size = float(np.linalg.norm(np.ptp(np.asarray(grid.points), axis=0))) or 1.0
    factor = 0.08 * size / mag if mag > 0 else 0.0
    return pts.glyph(orient=vec_key, scale=vec_key, factor=factor)


def _bar_args(title: str) -> dict[str, Any]:
    return {"title": title, "vertical": False, "fmt": "%.3g", "n_labels": 3, "position_x": 0.2,
            "position_y": 0.04, "width": 0.6, "height": 0.07, "title_font_size": 14, "label_font_size": 12}


def _camera(grid: Any, mesh: Mesh, view: str, camera: Any, normal: np.ndarray | None) -> Any:
    from meshops.viz.view import Camera, choose_view, parse_camera

    if camera is not None:
        return camera if isinstance(camera, Camera) else parse_camera(camera) if isinstance(camera, str) \
            else Camera(*[tuple(map(float, c)) for c in camera], "camera")
    pts = np.asarray(grid.points)
    if view == "auto" and (normal is not None or mesh.dim == 2):
        n = normal if normal is not None else np.array([0.0, 0.0, 1.0])
        c = (pts.min(axis=0) + pts.max(axis=0)) / 2
        size = float(np.linalg.norm(np.ptp(pts, axis=0))) or 1.0
        up = np.array([0.0, 1.0, 0.0]) if abs(n[1]) < 0.9 else np.array([0.0, 0.0, 1.0])
        return Camera(tuple(c + 2 * size * n), tuple(c), tuple(up), "top-down (plane)")
    return choose_view(pts, view)


def _draw_panel(pl: Any, grid: Any, p: str, base: str, lim: tuple[float, float], unit: str | None,
                cmap: str, bar: bool, lighting: bool) -> list[str]:
    """Panel ``p`` (truth, prediction or error) into the current subplot; its colour-bar labels."""
    from meshops.viz.view import eng_scale, tick_labels

    is_err = p == "error"
    factor, suffix = eng_scale(lim[0], lim[1], unit)
    title = (f"{base} error" if is_err else base) + suffix
    key = f"{base} ({p})"
    g = grid.copy()
    g.point_data[key] = np.asarray(g.point_data[f"__{p}"]) / factor
    pl.add_mesh(g, scalars=key, cmap=cmap, clim=(lim[0] / factor, lim[1] / factor), show_scalar_bar=bar,
                scalar_bar_args=_bar_args(title), nan_color="lightgrey", lighting=lighting)
    if f"__{p}_vec" in g.point_data:
        pl.add_mesh(_glyphs(g, f"__{p}_vec"), color="black" if not is_err else "white", show_scalar_bar=False)
    pl.add_text(p, font_size=10)
    return [title] + tick_labels(lim[0], lim[1], factor)


def _finish(pl: Any, path: Path | None, show: bool) -> Any:
    """Write the PNG (atomically) and/or show the window; the RGB image (h, w, 3) uint8."""
    img = None
    if path is not None:
        with atomic_path(path, make_parents=True) as tmp:
            img = pl.screenshot(str(tmp), return_img=True)
    if show:
        pl.show()
    else:
        if img is None:
            img = pl.screenshot(return_img=True)
        pl.close()
    return img


def render_comparison(
    mesh: Mesh,
    name: str,
    out: str | os.PathLike[str] | None = None,
    *,
    show: bool | None = None,
    window_size: tuple[int, int] | None = None,
    cmap: str = "viridis",
    error_cmap: str = "coolwarm",
    view: str = "auto",
    camera: Any = None,
    slice: str | None = None,
    clip: str | None = None,
    vectors: bool = False,
    units: dict[str, str] | None = None,
) -> RenderInfo:
    """Draw truth | prediction | error for point field ``name`` of ``mesh``.

    Parameters
    ----------
    out : path or None
        PNG to write (atomically). Without it and without a display, the image is only returned.
    show : bool or None
        Open an interactive window; ``None`` opens one only when a display exists and no ``out``.
    view : ``auto`` (from the geometry, see :func:`meshops.viz.view.choose_view`), ``xy``, ``xz``, ``yz``, ``iso``
    camera : ``"px,py,pz;fx,fy,fz;ux,uy,uz"``, a :class:`~meshops.viz.view.Camera` or three triples (overrides ``view``)
    slice, clip : a plane (``"z"``, ``"z=0.3"``, ``"nx,ny,nz@ox,oy,oz"``): draw the cut / keep one side
    vectors : draw arrow glyphs for a vector field (error panel: the error vector)
    units : field name -> unit (``{"p": "Pa"}``), shown in the colour-bar titles with an SI prefix

    Returns
    -------
    RenderInfo with the colour ranges, the view, the colour-bar labels and the RGB image (h, w, 3) uint8.
    """
    _load_triton_before_mesa()
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # No X server: render through EGL directly instead of failing over from an X window (VTK >= 9.4).
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    from meshops.viz.view import cut

    panels = compare_fields(mesh, name)
    vecs = vector_panels(mesh, name) if vectors else {}
    order = [p for p in ("truth", "prediction", "error") if p in panels]
    if show is None:
        show = out is None and has_display()
    base = name[:-5] if name.endswith("_pred") else name
    is_vector = bool(vecs) if vectors else bool(vector_panels(mesh, name))
    clim, eclim = _ranges(panels, order, is_vector)
    grid = mesh.to_pyvista()
    for p in order:
        grid.point_data[f"__{p}"] = panels[p]
        if p in vecs:
            grid.point_data[f"__{p}_vec"] = vecs[p]
    grid, normal = cut(grid, slice, clip)
    cam = _camera(grid, mesh, view, camera, normal)
    unit = (units or {}).get(base)
    size = window_size or (520 * len(order), 480)
    pl = pv.Plotter(shape=(1, len(order)), off_screen=not show, window_size=list(size))
    labels: dict[str, list[str]] = {}
    for j, p in enumerate(order):
        pl.subplot(0, j)
        lim = eclim if p == "error" else clim
        assert lim is not None
        bar = p == "error" or j == (len(order) - 2 if "error" in panels else len(order) - 1)
        cm = ((error_cmap if not is_vector else "inferno") if p == "error" else cmap)
        title = _draw_panel(pl, grid, p, base, lim, unit, cm, bar, lighting=mesh.dim == 3 and normal is None)
        if bar:
            labels[p] = title
        pl.camera_position = cam.as_pyvista()
        pl.reset_camera()
    if len(order) > 1:
        pl.link_views()
    path = Path(out) if out is not None else None
    img = _finish(pl, path, show)
    return RenderInfo(order, clim, eclim, path, img, cam.name, labels)
