"""Shared fixtures: the real data folder beside the checkout, skipping cleanly when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MESHOPS_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``$MESHOPS_SHARED_DATA``); skips the test when it is not there."""
    if not SHARED.is_dir():
        pytest.skip(f"real data folder {SHARED} is absent (a user's clone has no ../shared)")
    return SHARED


def pytest_collection_modifyitems(config, items):
    import importlib.util

    has_cuda = False
    if importlib.util.find_spec("torch") is not None:
        import torch

        has_cuda = torch.cuda.is_available()
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs CUDA"))
