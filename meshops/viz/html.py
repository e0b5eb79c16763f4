"""A standalone interactive page of truth | prediction | error (vtk.js through PyVista's trame export).

The page embeds the data and the vtk.js viewer: it opens from disk in a browser, no server.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from meshops.atomic import atomic_path
from meshops.mesh import Mesh

log = logging.getLogger(__name__)

__all__ = ["export_html"]


def export_html(mesh: Mesh, name: str, out: str | os.PathLike[str], *, cmap: str = "viridis",
                error_cmap: str = "coolwarm", slice: str | None = None, clip: str | None = None,
                units: dict[str, str] | None = None, view: str = "auto", camera: Any = None) -> Path:
    """Write ``out`` (.html): one linked 3D panel per truth / prediction / error of point field ``name``.

    Shapes
    ------
    mesh.point_data[name] : (n,) or (n, d); panels show the scalar or the vector magnitude.
    """
    from meshops.viz.render import _camera, _load_triton_before_mesa, _ranges, compare_fields, vector_panels
    from meshops.viz.view import cut, eng_scale

    _load_triton_before_mesa()
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    try:
        import trame_pyvista  # noqa: F401  (registers PyVista's HTML exporter)
    except ImportError as e:
        raise ImportError(f"--html needs trame-pyvista and nest_asyncio2 (pip install 'meshops[html]'): {e}") from e
    panels = compare_fields(mesh, name)
    order = [p for p in ("truth", "prediction", "error") if p in panels]
    base = name[:-5] if name.endswith("_pred") else name
    is_vector = bool(vector_panels(mesh, name))
    clim, eclim = _ranges(panels, order, is_vector)
    grid = mesh.to_pyvista()
    for p in order:
        grid.point_data[f"__{p}"] = np.asarray(panels[p], dtype=np.float64)
    grid, normal = cut(grid, slice, clip)
    cam = _camera(grid, mesh, view, camera, normal)
    pl = pv.Plotter(shape=(1, len(order)), off_screen=True, window_size=[520 * len(order), 480])
    unit = (units or {}).get(base)
    for j, p in enumerate(order):
        pl.subplot(0, j)
        lim = eclim if p == "error" else clim
        assert lim is not None
        factor, suffix = eng_scale(lim[0], lim[1], unit)
        key = f"{base} {p}{suffix}"
        g = grid.copy()
        g.point_data[key] = np.asarray(g.point_data[f"__{p}"]) / factor
        err_map = "inferno" if is_vector else error_cmap
        pl.add_mesh(g, scalars=key, cmap=err_map if p == "error" else cmap, clim=(lim[0] / factor, lim[1] / factor),
                    scalar_bar_args={"title": key, "fmt": "%.3g", "n_labels": 3})
        pl.add_text(p, font_size=10)
        pl.camera_position = cam.as_pyvista()
        pl.reset_camera()
    pl.link_views()
    path = Path(out)
    with atomic_path(path, make_parents=True) as tmp:
        _export(pl, tmp)
    pl.close()
    return path


def _export(pl: Any, tmp: Path) -> None:
    trame = getattr(pl, "trame", None)
    if trame is not None and hasattr(trame, "export_html"):
        trame.export_html(str(tmp))
    else:  # older pyvista
        pl.export_html(str(tmp))
