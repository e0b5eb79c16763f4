"""Training, checkpoints, metrics, DDP and inference.

``train(config)`` runs a whole training (see :mod:`meshops.train.trainer`); ``load_trained`` and
``predict_mesh`` / ``evaluate`` use a checkpoint (see :mod:`meshops.train.inference`).
"""

from __future__ import annotations

from meshops.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from meshops.train.config import ConfigError, TrainConfig
from meshops.train.inference import Trained, evaluate, load_trained, predict_case, predict_mesh
from meshops.train.metrics import field_metrics, mean_metrics
from meshops.train.trainer import TrainResult, train

__all__ = [
    "CheckpointError",
    "ConfigError",
    "TrainConfig",
    "TrainResult",
    "Trained",
    "evaluate",
    "field_metrics",
    "load_checkpoint",
    "load_trained",
    "mean_metrics",
    "predict_case",
    "predict_mesh",
    "save_checkpoint",
    "train",
]
