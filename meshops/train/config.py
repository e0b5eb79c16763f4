"""Training configuration: a flat, JSON-able dataclass read from YAML, a dict or CLI flags."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from meshops.train.validate_config import ConfigError

__all__ = ["TrainConfig", "ConfigError"]


@dataclass
class TrainConfig:
    """Everything a training run needs; stored as JSON in every checkpoint.

    Attributes
    ----------
    dataset : str
        A registered name (``folder``), a ``.py`` file, a folder with ``dataset.py`` or a
        ``datasets/<name>`` recipe (see :func:`meshops.data.load_dataset`).
    dataset_options : dict
        Keywords for the dataset constructor (for ``folder``: path, inputs, targets, globals).
    model, model_options :
        A registered model name and its keywords (channel counts are filled in from the data).
    graph : dict
        Options of :func:`meshops.graph.build` (part of the graph cache key).
    features : dict
        ``{"pos": bool, "boundary": bool}``: extra node features appended to the inputs.
    epochs, batch_size, lr, weight_decay, warmup, min_lr_ratio, clip :
        Optimization: AdamW, linear warm-up over ``warmup`` (fraction of all steps) then cosine
        decay to ``lr * min_lr_ratio``; gradient norm clipping at ``clip`` (0 disables).
        ``batch_size`` is the global batch (split across DDP processes).
    amp : str
        ``"auto"`` (bfloat16/float16 autocast on CUDA only), ``"on"`` or ``"off"``.
    seed : int
        Seeds the model init, the data order and the split.
    split_fractions, split_seed : train/val/test fractions and their shuffling seed (saved to
        ``<out>/splits.json``; ``splits`` may name an existing splits file).
    out : str
        Run folder: checkpoints, config, splits, metrics, curves.
    cache : str or None
        Graph cache folder (default ``$MESHOPS_CACHE`` or ``~/.cache/meshops/graphs``).
    checkpoint_every : int
        Also write ``last.pt`` every this many steps (0: at the end of every epoch only).
    max_steps : int or None
        Stop after this many optimizer steps in total (the schedule still spans ``epochs``).
    resume : bool
        Continue from ``<out>/last.pt`` when it exists.
    stepping : dict or None
        Learned time stepping on a trajectory dataset (keys of ``meshops.train.stepping_run.STEPPING_KEYS``:
        fields, noise, noise_ref, unroll, history, val_every); ``meshops train`` then trains a step
        model (:func:`meshops.train.stepping_run.train_from_config`).
    max_nodes_per_part, partitions : int or None
        Train each case split into graph parts (owned nodes at most ``max_nodes_per_part``, or
        ``partitions`` parts) with halos of the model's message-passing rounds: one part's
        activations alive at a time, gradients equal to the whole-graph ones. Models without a
        finite receptive field (ugraph, gino, amg) refuse with the reason.
    partition_method : str
        ``"auto"`` (METIS when pymetis is installed, else coordinate bisection), ``"metis"``, ``"rcb"``.
    """

    dataset: str = "folder"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    model: str = "mgn"
    model_options: dict[str, Any] = field(default_factory=dict)
    graph: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=lambda: {"pos": True, "boundary": True})
    epochs: int = 10
    batch_size: int = 1
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05
    min_lr_ratio: float = 0.01
    clip: float = 1.0
    amp: str = "auto"
    seed: int = 0
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_seed: int | None = None
    splits: str | None = None
    out: str = "runs/run"
    cache: str | None = None
    checkpoint_every: int = 0
    max_steps: int | None = None
    resume: bool = True
    device: str = "auto"
    progress: bool = True
    val_every: int = 1
    stepping: dict[str, Any] | None = None
    max_nodes_per_part: int | None = None
    partitions: int | None = None
    partition_method: str = "auto"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"training config: '{name}' must be a positive integer, got {v!r}")
        if self.amp not in ("auto", "on", "off"):
            raise ConfigError(f"training config: 'amp' must be auto, on or off, got {self.amp!r}")
        if not (self.lr > 0):
            raise ConfigError(f"training config: 'lr' must be positive, got {self.lr!r}")
        for name in ("max_nodes_per_part", "partitions"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ConfigError(f"training config: '{name}' must be a positive integer or null, got {v!r}")
        if self.max_nodes_per_part is not None and self.partitions is not None:
            raise ConfigError("training config: give 'max_nodes_per_part' or 'partitions', not both "
                              f"(got {self.max_nodes_per_part} and {self.partitions})")
        if self.partition_method not in ("auto", "metis", "rcb"):
            raise ConfigError(f"training config: 'partition_method' must be auto, metis or rcb, got "
                              f"{self.partition_method!r}")
        if self.splits is not None and not Path(os.path.expanduser(self.splits)).is_file():
            raise ConfigError(f"training config: 'splits' file {self.splits} does not exist (remove "
                              "'splits' to have the run make and save its own)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> TrainConfig:
        """Validate ``d`` against this schema and the model constructor's, then build the config.

        Every problem (unknown key, wrong type, unknown model option) is named with its key path
        and the expected type, all in one :class:`ConfigError`, before anything is written.
        """
        from meshops.train.validate_config import config_problems, graph_problems, model_problems

        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
        d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
        problems = config_problems(d, cls)
        problems += model_problems(d.get("model", cls.model), d.get("model_options", {}))
        problems += graph_problems(d.get("graph"))
        if problems:
            raise ConfigError(f"{where}: " + "; ".join(problems))
        try:
            return cls(**d)
        except ConfigError as e:
            raise ConfigError(f"{where}: {str(e).removeprefix('training config: ')}") from None
        except TypeError as e:
            raise ConfigError(f"{where}: {e}") from e

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
        """Read a YAML (or JSON) file; relative paths in ``dataset``/``dataset_options.path`` are
        resolved against the file's folder; ``overrides`` (not None) win."""
        import yaml

        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"training config {p} does not exist")
        try:
            d = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e})") from e
        if not isinstance(d, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level, got {type(d).__name__}")
        base = p.resolve().parent
        ds = d.get("dataset")
        if isinstance(ds, str) and (ds.endswith(".py") or "/" in ds) and not os.path.isabs(ds):
            d["dataset"] = str(base / ds)
        opts = d.get("dataset_options") or {}
        if isinstance(opts, dict) and isinstance(opts.get("path"), str) and not os.path.isabs(
                os.path.expanduser(opts["path"])):
            opts["path"] = str(base / opts["path"])
        sp = d.get("splits")
        if isinstance(sp, str) and not os.path.isabs(os.path.expanduser(sp)):
            d["splits"] = str(base / sp)  # like dataset: against the YAML's folder, never the cwd
        d.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(d, where=str(p))
