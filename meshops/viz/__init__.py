"""Pictures: PyVista renders of truth | prediction | error, and matplotlib training curves.

Both import their plotting package when called, so ``import meshops.viz`` is light.
"""

from __future__ import annotations

from meshops.viz.curves import plot_history
from meshops.viz.render import compare_fields, has_display, render_comparison

__all__ = ["plot_history", "render_comparison", "compare_fields", "has_display"]
