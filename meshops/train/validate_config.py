"""Up-front validation of a training configuration against the schemas it feeds.

The schema of the trainer is :class:`~meshops.train.config.TrainConfig`'s dataclass fields and
their type hints; the schema of a model is its registered constructor's signature (parameter
names, type hints, ``**kwargs``). Every problem is named with its key path and the expected type,
all at once, before any file is written.

Numbers written as strings (PyYAML reads ``1e-3`` as a string) are accepted where a number is
expected when they parse as one; anything else of the wrong type is an error.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["ConfigError", "config_problems", "model_problems", "check_type", "FEATURE_KEYS"]


class ConfigError(ValueError):
    """A training configuration is invalid (the message names the file, the key and the value)."""


#: Keys of ``features`` and their types.
FEATURE_KEYS: dict[str, type] = {"pos": bool, "boundary": bool}
#: Model keywords the trainer fills in from the data (not part of the user's model_options).
FILLED_IN = ("in_channels", "out_channels", "global_channels")


def _name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]" if args else origin.__name__
    return getattr(tp, "__name__", str(tp))


def check_type(value: Any, tp: Any) -> tuple[bool, Any]:
    """``(ok, value)``: whether ``value`` fits the type hint ``tp``, with numeric strings converted.

    Unknown or complex hints (``Any``, callables, classes) accept everything.
    """
    if tp is Any or tp is inspect.Parameter.empty:
        return True, value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for a in typing.get_args(tp):
            ok, v = check_type(value, a)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        if isinstance(value, str):
            try:
                return True, int(value.strip())
            except ValueError:
                return False, value
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, str):
            try:
                v = float(value.strip())
            except ValueError:
                return False, value
            return v == v, v
        return isinstance(value, int | float) and not isinstance(value, bool), value
    if tp is str:
        return isinstance(value, str), value
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            return False, value
        args = typing.get_args(tp)
        if args and args[-1] is not Ellipsis:
            conv = []
            for item in value:
                ok, v = check_type(item, args[0])
                if not ok:
                    return False, value
                conv.append(v)
            return True, type(value)(conv) if origin is tuple else conv
        return True, value
    if origin is dict or tp is dict:
        return isinstance(value, dict), value
    return True, value


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj)
    except Exception:  # noqa: BLE001 - unresolvable hints: validate names only
        return {}


def config_problems(d: dict[str, Any], cls: type) -> list[str]:
    """Problems of the mapping ``d`` against the dataclass ``cls``; fixes numeric strings in place."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    unknown = [k for k in d if k not in fields]
    out = [f"unknown key(s) {unknown}; known keys: {', '.join(sorted(fields))}"] if unknown else []
    for k, v in list(d.items()):
        if k not in fields:
            continue
        ok, conv = check_type(v, hints.get(k, Any))
        if not ok:
            out.append(f"'{k}': expected {_name(hints[k])}, got {type(v).__name__} {v!r}")
        else:
            d[k] = conv
    feats = d.get("features")
    if isinstance(feats, dict):
        for k, v in feats.items():
            if k not in FEATURE_KEYS:
                out.append(f"'features.{k}': unknown key (known keys: {', '.join(FEATURE_KEYS)})")
            elif not isinstance(v, FEATURE_KEYS[k]):
                out.append(f"'features.{k}': expected {FEATURE_KEYS[k].__name__}, got {type(v).__name__} {v!r}")
    return out


def _constructor(name: str) -> Callable[..., Any] | None:
    from meshops import models

    models.available()
    return models._REGISTRY.get(name)


def model_problems(name: Any, options: Any) -> list[str]:
    """Problems of ``model`` / ``model_options`` against the model constructor's signature."""
    from meshops import models

    if not isinstance(name, str):
        return []
    ctor = _constructor(name)
    if ctor is None:
        return [f"'model': unknown model '{name}' (registered: {', '.join(models.available())})"]
    if not isinstance(options, dict):
        return []
    target = ctor.__init__ if inspect.isclass(ctor) else ctor
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return []
    hints = _hints(target)
    open_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    known = [n for n, p in params.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    out = []
    for k, v in list(options.items()):
        if k in FILLED_IN:
            out.append(f"'model_options.{k}': set from the data by the trainer; remove it")
        elif k not in params:
            if not open_kw:
                out.append(f"'model_options.{k}': model '{name}' has no option '{k}' "
                           f"(options: {', '.join(n for n in known if n not in FILLED_IN)})")
        else:
            ok, conv = check_type(v, hints.get(k, Any))
            if not ok:
                out.append(f"'model_options.{k}': expected {_name(hints[k])}, got {type(v).__name__} {v!r}")
            else:
                options[k] = conv
    return out


def graph_problems(options: Any) -> list[str]:
    """Problems of the ``graph`` options (through :meth:`meshops.graph.GraphSpec.coerce`)."""
    if not isinstance(options, dict) or not options:
        return []
    from meshops.graph import GraphSpec

    try:
        GraphSpec.coerce(dict(options))
    except (TypeError, ValueError) as e:
        return [f"'graph': {str(e).splitlines()[0] if str(e) else type(e).__name__}"]
    return []


#: Training-config keys that may differ when resuming a run (the budget, and how the run is driven).
#: The partition keys only split the work: training on parts gives the whole-graph gradient.
RESUMABLE_KEYS = frozenset({"epochs", "max_steps", "resume", "progress", "device", "cache", "checkpoint_every",
                            "val_every", "out", "max_nodes_per_part", "partitions", "partition_method"})


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def resume_problems(old: dict[str, Any], new: dict[str, Any], defaults: dict[str, Any] | None = None) -> list[str]:
    """Differences between the training config a run folder was made with and the new one.

    Only the epoch budget (and keys that do not change what is learned: device, cache, progress,
    checkpointing, the folder itself) may differ; anything else means another task. A key the old
    config lacks (added to the schema since) counts as its value in ``defaults``.

    Shapes
    ------
    old, new : TrainConfig.to_dict() mappings -> list of "key: old -> new"
    """
    a, b = _flat(old), _flat(new)
    for k, v in _flat(defaults or {}).items():
        a.setdefault(k, v)
    diffs = []
    for k in sorted(set(a) | set(b)):
        if k.split(".")[0] in RESUMABLE_KEYS:
            continue
        if a.get(k, "<unset>") != b.get(k, "<unset>"):
            diffs.append(f"{k}: {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}")
    return diffs


def check_resume(old: dict[str, Any], new: dict[str, Any], where: str, defaults: dict[str, Any] | None = None) -> None:
    """Raise :class:`~meshops.train.config.ConfigError` when a run folder holds another task."""
    diffs = resume_problems(old, new, defaults)
    if diffs:
        shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
        raise ConfigError(f"{where}: the run folder was trained with another config ({shown}); only the epoch "
                          "budget may change on resume. Start fresh with another --out folder, or --no-resume "
                          "(resume: false) to overwrite this one")
