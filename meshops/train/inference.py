"""Prediction and evaluation with a trained checkpoint.

:func:`load_trained` rebuilds the model, the feature layout, the graph options and the
normalization from a checkpoint alone; :func:`predict_mesh` returns the user's mesh (same point
order) with ``<field>_pred`` and, when the truth is on the mesh, ``<field>_error = pred - truth``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from meshops.data import Case, DatasetError
from meshops.data.graphs import FeatureSpec, GraphCache, Pipeline
from meshops.data.normalize import Normalizer
from meshops.mesh import Mesh
from meshops.train import guard
from meshops.train.checkpoint import CheckpointError, load_checkpoint
from meshops.train.metrics import MetricError, field_metrics, mean_metrics

log = logging.getLogger(__name__)

__all__ = ["Trained", "available_bytes", "evaluate", "inference_bytes", "load_trained", "plan_parts", "predict_case",
           "predict_mesh"]


@dataclass
class Trained:
    """A model ready to predict, with everything needed to map meshes to it and back."""

    model: torch.nn.Module
    pipeline: Pipeline
    config: dict[str, Any]
    device: torch.device

    @property
    def features(self) -> FeatureSpec:
        return self.pipeline.features


def load_trained(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", cache: GraphCache | None = None
) -> Trained:
    """Rebuild a trained model from a checkpoint (no training code or dataset needed)."""
    from meshops import models

    ck = load_checkpoint(path)
    cfg = ck["config"]
    try:
        mcfg = dict(cfg["model"])
        name = mcfg.pop("name")
        feats = FeatureSpec.from_dict(cfg["features"])
        norm = Normalizer.from_dict(ck["normalization"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: checkpoint config lacks {e}; it was not written by meshops train") from e
    model = models.create(name, **mcfg)
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()]
        first = lines[0] if lines else str(e).splitlines()[0]
        more = f"; {len(lines) - 1} more" if len(lines) > 1 else ""
        raise CheckpointError(f"{path}: weights do not fit model '{name}' as this version of meshops builds it "
                              f"({first}{more}); was it trained with another version?") from e
    dev = torch.device(device)
    model.to(dev).eval()
    pipe = Pipeline(feats, cfg.get("graph", {}), normalizer=norm, cache=cache or GraphCache(enabled=False))
    return Trained(model, pipe, cfg, dev)


@torch.no_grad()
def predict_case(trained: Trained, case: Case) -> dict[str, np.ndarray]:
    """Predicted target fields of ``case`` in its mesh's point order.

    Shapes
    ------
    returns : {target name: (n_points,) or (n_points, c) float32}
    """
    f, where = trained.features, case.mesh.source or f"case '{case.name}'"
    _guard_inputs(trained, case, where)
    g = trained.pipeline.graph(case)
    d = trained.pipeline.sample(case, targets=False)
    prepare = getattr(trained.model, "prepare_sample", None)
    if prepare is not None:
        d = prepare(d, case)
    d = d.to(trained.device)
    parts = plan_parts(trained, d)
    if parts is None:
        pred = trained.model(d).float()
    else:
        from meshops.graph.partition import partitioned_forward

        pred = partitioned_forward(trained.model, d, parts).float()
    guard.check_finite_prediction(pred, f.targets, f.target_channels, where)
    out = trained.pipeline.decode(case, g, pred)
    assert trained.pipeline.normalizer is not None
    return guard.clamp_nonnegative(trained.pipeline.normalizer, f.targets, f.target_channels, out, where)


def _guard_inputs(trained: Trained, case: Case, where: str) -> None:
    """Refuse non-finite inputs; warn about inputs outside the training ranges (see :mod:`guard`)."""
    f = trained.features
    inputs = case.stack(f.inputs)
    glob = np.asarray([case.globals[k] for k in f.globals if k in case.globals], dtype=np.float64)
    guard.check_finite_inputs(inputs, f.inputs, f.input_channels, where)
    guard.check_finite_inputs(glob[None, :], f.globals, [1] * len(glob), where, what="global")
    guard.check_finite_inputs(case.mesh.points, ["points"], [3], where, what="mesh")
    if trained.pipeline.normalizer is not None:
        guard.warn_out_of_range(trained.pipeline.normalizer, f, inputs, glob, case.mesh.points, where)


def inference_bytes(model: torch.nn.Module, num_nodes: int, num_edges: int) -> int:
    """Estimated peak bytes of a no-grad forward: one float32 edge latent (plus chunk temporaries and
    the index) per edge, a handful of node latents per node."""
    hidden = int(getattr(model, "meshops_config", {}).get("hidden", 128))
    return num_edges * (4 * hidden + 48) + num_nodes * 4 * hidden * 8 + (256 << 20)


def available_bytes() -> int:
    """Memory available to this process now (``psutil``; 8 GiB when it cannot tell)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil ships with the test extras
        return 8 << 30


def plan_parts(trained: Trained, data: Any, available: int | None = None) -> Any:
    """Graph parts for prediction, or None to run the whole graph.

    The config's ``max_nodes_per_part`` or ``partitions`` (top level or under ``"partition"``) asks
    for parts explicitly; otherwise the graph is cut when :func:`inference_bytes` exceeds half the
    available memory, into parts whose nodes *with their halos* each need at most a third of it
    (halos of many hops can be bigger than the owned nodes: the part count grows until the largest
    part fits). Above a million nodes the automatic cut uses coordinate bisection (METIS' memory
    grows with the edges). A model without a finite receptive field (see
    :func:`meshops.graph.partition.model_hops`) runs whole, with a warning.
    """
    from meshops.graph.partition import model_hops, partition

    cfg = dict(trained.config.get("partition", {}) or {})
    for k in ("max_nodes_per_part", "partitions"):
        if trained.config.get(k) is not None:
            cfg[k] = trained.config[k]
    n, n_e = int(data.num_nodes), int(data.edge_index.shape[1]) if getattr(data, "edge_index", None) is not None else 0
    need = inference_bytes(trained.model, n, n_e)
    have = available_bytes() if available is None else available
    asked = cfg.get("max_nodes_per_part") or cfg.get("partitions")
    if not asked and need <= have // 2:
        return None
    try:
        hops = model_hops(trained.model)
    except ValueError as e:
        log.warning("%s; running the whole graph (estimated %.1f GB, %.1f GB available)", e, need / 1e9, have / 1e9)
        return None
    method = str(cfg.get("method", "auto"))
    if asked:
        n_parts = cfg.get("partitions")
        return partition(data, hops, n_parts=int(n_parts) if n_parts else None,
                         max_nodes_per_part=cfg.get("max_nodes_per_part"), method=method)
    return _fitting_parts(trained, data, hops, need, have, "rcb" if method == "auto" and n > 1_000_000 else method)


def _fitting_parts(trained: Trained, data: Any, hops: int, need: int, have: int, method: str) -> Any:
    """Parts (built lazily) whose largest part, halo included, needs at most a third of ``have``
    (the per-node and per-edge bytes; the fixed overhead is the process's either way)."""
    from meshops.graph.partition import partition

    n, n_e = int(data.num_nodes), int(data.edge_index.shape[1])
    fixed = inference_bytes(trained.model, 0, 0)
    budget = max(have // 3, 1)
    n_parts = max(2, -(-(need - fixed) // budget))
    for _ in range(8):
        plan = partition(data, hops, n_parts=int(min(n_parts, n)), method=method, lazy=True)
        worst = max(inference_bytes(trained.model, a, b) for a, b in plan.sizes()) - fixed
        log.info("graph of %d nodes / %d edges needs ~%.1f GB, %.1f GB available: %d parts, the largest with "
                 "its %d-hop halo ~%.1f GB", n, n_e, need / 1e9, have / 1e9, len(plan), hops, worst / 1e9)
        if worst <= budget or n_parts >= n:
            return plan
        n_parts = min(n, int(n_parts * worst / budget * 1.2) + 1)
    raise MemoryError(f"no partition of {n} nodes into up to {n_parts} parts fits {budget / 1e9:.1f} GB a part "
                      f"with {hops}-hop halos")


def case_for_mesh(trained: Trained, mesh: Mesh, name: str | None = None,
                  globals: dict[str, float] | None = None) -> Case:
    """Wrap a user's mesh as a case with the checkpoint's field names.

    Global parameters come from ``globals`` or the mesh's ``field_data``; a missing one is an error
    naming the mesh and the parameter.
    """
    from meshops.data.folder import lookup_globals, training_tables

    f = trained.features
    given = {k: float(v) for k, v in (globals or {}).items() if k in f.globals}
    used = training_tables((trained.config.get("train", {}).get("dataset_options") or {}).get("path"))
    found, missing, looked = lookup_globals(mesh, [k for k in f.globals if k not in given], tables=used)
    if missing:
        flags = " ".join(f"--global {k}=VALUE" for k in missing)
        raise DatasetError(
            f"{mesh.source or '<mesh>'}: the model needs global parameter{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(k) for k in missing)}; "
            f"pass them ({flags}) or store them in the file's field data"
            + (f" (looked in {', '.join(looked)})" if looked else "")
        )
    unused = sorted(set(globals or {}) - set(f.globals))
    if unused:
        log.warning("%s: --global %s not used: the model's globals are %s", mesh.source or "<mesh>",
                    ", ".join(unused), list(f.globals) or "none")
    g = {**found, **given}
    return Case(name or os.path.basename(mesh.source or "mesh"), mesh, f.inputs, f.targets, g)


def predict_mesh(trained: Trained, mesh: Mesh | Any, globals: dict[str, float] | None = None) -> Mesh:
    """The same mesh with ``<target>_pred`` fields, and ``<target>_error`` where the truth exists.

    ``mesh`` may also be a path, a PyVista dataset or a meshio/trimesh object (converted to a Mesh).
    """
    if not isinstance(mesh, Mesh):
        from meshops.graph.build import as_mesh

        mesh = as_mesh(mesh, "predict_mesh")
    case = case_for_mesh(trained, mesh, globals=globals)
    preds = predict_case(trained, case)
    fields: dict[str, np.ndarray] = {}
    for name, p in preds.items():
        fields[f"{name}_pred"] = p
        if name in mesh.point_data:
            t = np.asarray(mesh.point_data[name])
            fields[f"{name}_error"] = (p.astype(np.float64) - t.reshape(p.shape).astype(np.float64)).astype(np.float32)
    return mesh.with_fields(fields)


def evaluate(trained: Trained, cases: Iterable[Case]) -> dict[str, Any]:
    """Per-case and mean metrics (relative L2, max abs error, RMSE per target field), JSON-able."""
    f = trained.features
    per_case: dict[str, dict[str, dict[str, float]]] = {}
    for case in cases:
        if not case.has_targets:
            raise DatasetError(f"case '{case.name}': target fields {f.targets} are not all on the mesh")
        case = Case(case.name, case.mesh, f.inputs, f.targets, case.globals)
        preds = predict_case(trained, case)
        p = np.concatenate([np.asarray(preds[n]).reshape(case.mesh.n_points, -1) for n in f.targets], axis=1)
        t = case.stack(f.targets)
        # predict_case refuses non-finite model outputs, so NaN rows are exactly the points the graph
        # does not cover; every other value must be finite (field_metrics refuses non-finite ones).
        covered = np.isfinite(p).all(1)
        per_case[case.name] = field_metrics(p[covered], t[covered], f.targets, f.target_channels,
                                            where=f"case '{case.name}'")
    if not per_case:
        raise MetricError("evaluate: no cases to evaluate (a metric over nothing is not a result)")
    return {"cases": per_case, "mean": mean_metrics(per_case), "n_cases": len(per_case)}
