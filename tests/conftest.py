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


@pytest.fixture(scope="session")
def bench_module():
    """``load(name)``: ``benchmarks/<name>.py`` as a module (its sibling imports, e.g. ``protocol``, resolved)."""
    import importlib.util
    import sys

    here = ROOT / "benchmarks"

    def load(name: str):
        sys.path.insert(0, str(here))
        try:
            spec = importlib.util.spec_from_file_location(f"bench_{name}_under_test", here / f"{name}.py")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        finally:
            sys.path.remove(str(here))
        return mod

    return load


def pytest_collection_modifyitems(config, items):
    import importlib.util

    has_cuda = False
    if importlib.util.find_spec("torch") is not None:
        import torch

        has_cuda = torch.cuda.is_available()
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs CUDA"))
