"""Self-contained checkpoints: weights + JSON config + normalization + meshops version.

A checkpoint is a ``torch.save`` of a dict holding only tensors, numbers, strings, lists and dicts,
so it loads with ``torch.load(weights_only=True)``; no pickled objects. It is written to a
temporary file in the same folder and moved into place with ``os.replace`` (a crash never leaves a
half-written checkpoint behind).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from meshops.atomic import atomic_path

__all__ = ["CheckpointError", "FORMAT", "save_checkpoint", "load_checkpoint"]

#: Marker stored in every meshops checkpoint.
FORMAT = "meshops-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file is not a readable meshops checkpoint (the message names the file and the reason)."""


def save_checkpoint(path: str | os.PathLike[str], *, model_state: dict[str, Any], config: dict[str, Any],
                    normalization: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically.

    Parameters
    ----------
    model_state : dict
        ``model.state_dict()`` (moved to CPU here).
    config : dict
        JSON-able: the training config, the model config (``meshops_config``), features, graph.
    normalization : dict
        JSON-able :meth:`meshops.data.normalize.Normalizer.to_dict`.
    extra : dict, optional
        Training state (optimizer, scheduler, RNG, progress); tensors and plain values only.
    """
    from meshops import __version__

    path = Path(path)
    obj = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "meshops_version": __version__,
        "config_json": json.dumps(config, sort_keys=True),
        "normalization_json": json.dumps(normalization, sort_keys=True),
        "model": {k: v.detach().cpu() for k, v in model_state.items()},
        **(extra or {}),
    }
    with atomic_path(path, make_parents=True) as tmp:
        torch.save(obj, tmp)
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint; ``config`` and ``normalization`` come back parsed.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    CheckpointError
        The file is not a torch file, is truncated/corrupt, or is not a meshops checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"{path}: not a readable meshops checkpoint (corrupt, truncated or not a torch file: "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        keys = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{path}: not a meshops checkpoint (no format marker '{FORMAT}'; found {keys}); "
            "it may come from another library"
        )
    if int(obj.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {obj['format_version']} is newer than this meshops "
            f"understands ({FORMAT_VERSION}); upgrade meshops (written by {obj.get('meshops_version')})"
        )
    try:
        obj["config"] = json.loads(obj["config_json"])
        obj["normalization"] = json.loads(obj["normalization_json"])
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: damaged checkpoint metadata ({e})") from e
    if "model" not in obj:
        raise CheckpointError(f"{path}: checkpoint holds no model weights")
    return obj
