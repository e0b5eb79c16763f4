"""Assembled models, a registry and JSON-able configs.

A model module in this package registers a constructor with :func:`register`; every module here
is imported on first use of :func:`create`, so adding a model is adding a file::

    @register("mgn")
    class MeshGraphNet(torch.nn.Module):
        def __init__(self, in_channels, out_channels, hidden=128, ...): ...

``create(name, **config)`` builds one; ``model.meshops_config`` holds ``{"name": ..., **config}``,
which is what checkpoints store (plain JSON, no pickled objects).

Model contract: ``forward(data)`` takes a (batched) graph from :mod:`meshops.graph` with
``data.x`` (N, in_channels) node inputs, optional ``data.u`` (B, n_globals) global parameters and
``data.batch``, and returns (N, out_channels) predictions at the nodes (or at ``data.query_pos``
for decoder models, which document it).

Optional hook: ``prepare_sample(data, case) -> data`` returns a copy of a sample graph with what
the model needs beyond the mesh graph, taken from the :class:`~meshops.data.Case` (e.g. the
centerline of a vessel). The trainer and :mod:`meshops.train.inference` call it on every sample.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable
from typing import Any

_REGISTRY: dict[str, Callable[..., Any]] = {}
_LOADED = False


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Class/function decorator adding a model constructor under ``name``."""

    def deco(ctor: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name] is not ctor:
            raise ValueError(f"model name '{name}' is already registered by {_REGISTRY[name]!r}")
        _REGISTRY[name] = ctor
        return ctor

    return deco


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    _LOADED = True


def available() -> list[str]:
    """Names of all registered models."""
    _load_all()
    return sorted(_REGISTRY)


def create(name: str, **config: Any) -> Any:
    """Build the model registered as ``name`` with a JSON-able ``config``."""
    _load_all()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model '{name}'; registered models: {', '.join(sorted(_REGISTRY))}")
    try:
        json.dumps(config)
    except TypeError as e:
        raise ValueError(f"model '{name}': config must be JSON-able ({e})") from e
    model = _REGISTRY[name](**config)
    model.meshops_config = {"name": name, **config}
    return model
