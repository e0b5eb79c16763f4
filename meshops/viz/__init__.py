"""Pictures: PyVista renders of truth | prediction | error, and matplotlib training curves.

Both import their plotting package when called, so ``import meshops.viz`` is light.
"""

from __future__ import annotations

from meshops.viz.curves import plot_history
from meshops.viz.html import export_html
from meshops.viz.render import compare_fields, has_display, render_comparison
from meshops.viz.view import choose_view

__all__ = ["plot_history", "render_comparison", "compare_fields", "has_display", "export_html", "choose_view"]
