"""From cases to model-ready graphs: graph building with an on-disk cache, features, normalization.

:class:`Pipeline` is the one place that knows how a :class:`~meshops.data.Case` becomes the tensors
a model sees, and how a model's output goes back onto the case's mesh:

- ``x`` = normalized input fields, then (optionally) normalized positions and a boundary flag;
- ``y`` = normalized target fields; ``u`` = normalized global parameters, shape (1, G);
- every ``edge_attr*`` divided by the training set's mean edge length.

Graphs are built by :func:`meshops.graph.build` and cached on disk under a key made of the case's
geometry (points, cells, boundary regions) and the graph options, so they are rebuilt when either
changes. Statistics come from the cases passed to :meth:`Pipeline.fit` (the training split).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meshops.atomic import atomic_path
from meshops.data import Case, DatasetError
from meshops.data.normalize import Normalizer, RunningStats
from meshops.mesh import Mesh

log = logging.getLogger(__name__)

__all__ = ["FeatureSpec", "GraphCache", "Pipeline", "build_graph", "geometry_fingerprint"]

#: Bump when the cached graph layout changes so old cache entries are not reused.
CACHE_VERSION = 1


def geometry_fingerprint(mesh: Mesh) -> str:
    """sha1 of a mesh's points, cells and boundary regions (not its fields)."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(mesh.points).tobytes())
    for b in mesh.cells:
        h.update(b.type.encode())
        h.update(np.ascontiguousarray(b.data).tobytes())
    for name in sorted(mesh.boundaries):
        h.update(name.encode())
        for b in mesh.boundaries[name]:
            h.update(b.type.encode())
            h.update(np.ascontiguousarray(b.data).tobytes())
    return h.hexdigest()


def build_graph(mesh: Mesh, options: dict[str, Any] | None = None) -> Any:
    """:func:`meshops.graph.build` with a spec made from the JSON-able ``options``.

    Shapes
    ------
    returns : MeshGraph with ``pos`` (N, 3), ``edge_index`` (2, E), ``edge_attr`` (E, 4),
    ``node_type`` (N,), ``point_index`` (N,) and the hierarchy levels
    """
    from meshops import graph as G

    opts = dict(options or {})
    spec_cls = getattr(G, "GraphSpec", None)
    spec = spec_cls(**opts) if spec_cls is not None else (opts or None)
    return G.build(mesh, spec)


def _graph_to_dict(g: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in g.to_dict().items():
        if isinstance(v, (torch.Tensor, int, float, str, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(t, (str, int, float)) for t in v):
            out[k] = list(v)
        else:
            log.debug("graph attribute '%s' of type %s is not cached", k, type(v).__name__)
    return out


class GraphCache:
    """Graphs on disk, one ``<key>.pt`` file each, loadable with ``torch.load(weights_only=True)``.

    Parameters
    ----------
    root : path or None
        Cache folder; ``None`` uses ``$MESHOPS_CACHE`` or ``~/.cache/meshops/graphs``.
    enabled : bool
        ``False`` builds every time and keeps only the last graph in memory (so a case's graph and
        sample share one build); ``True`` reads and writes the disk cache.
    memo_bytes : int, optional
        Bound of the in-memory LRU of graphs when enabled (default ``$MESHOPS_GRAPH_MEMO_MB`` or
        1024 MB): a dataset bigger than RAM streams from disk, the least recently used graphs go.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, enabled: bool = True,
                 memo_bytes: int | None = None) -> None:
        if root is None:
            root = os.environ.get("MESHOPS_CACHE") or Path.home() / ".cache" / "meshops" / "graphs"
        self.root = Path(root)
        self.enabled = enabled
        if memo_bytes is None:
            memo_bytes = int(float(os.environ.get("MESHOPS_GRAPH_MEMO_MB", "1024")) * 2**20)
        self.memo_bytes = memo_bytes
        self._memo: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.hits = 0
        self.builds = 0

    @staticmethod
    def key(mesh: Mesh, options: dict[str, Any] | None) -> str:
        """The cache key: geometry fingerprint + graph options + cache layout version."""
        h = hashlib.sha1()
        h.update(geometry_fingerprint(mesh).encode())
        h.update(json.dumps(options or {}, sort_keys=True, default=str).encode())
        h.update(f"v{CACHE_VERSION}".encode())
        return h.hexdigest()

    def get(self, mesh: Mesh, options: dict[str, Any] | None = None) -> Any:
        """The graph of ``mesh`` built with ``options``, from memory, disk, or built now."""
        key = self.key(mesh, options)
        if key in self._memo:
            self.hits += 1
            self._memo.move_to_end(key)
            return self._memo[key][0]
        path = self.root / f"{key}.pt"
        g = None
        if self.enabled and path.is_file():
            try:
                d = torch.load(path, weights_only=True, map_location="cpu")
                g = self._from_dict(d)
                self.hits += 1
            except Exception as e:  # a damaged cache entry is rebuilt, not fatal
                log.warning("graph cache entry %s is unreadable (%s); rebuilding", path, e)
                g = None
        if g is None:
            g = build_graph(mesh, options)
            self.builds += 1
            if self.enabled:
                self._save(g, path)
        self._remember(key, g)
        return g

    def _remember(self, key: str, g: Any) -> None:
        """Keep ``g`` in the LRU: the last graph only when disabled, else up to ``memo_bytes``."""
        size = sum(int(v.nbytes) for _, v in g.items() if torch.is_tensor(v))
        self._memo[key] = (g, size)
        limit = 0 if not self.enabled else self.memo_bytes
        total = sum(s for _, s in self._memo.values())
        while len(self._memo) > 1 and total > limit:
            _, (_, s) = self._memo.popitem(last=False)
            total -= s

    @staticmethod
    def _from_dict(d: dict[str, Any]) -> Any:
        from meshops.graph import MeshGraph

        return MeshGraph(**d)

    def _save(self, g: Any, path: Path) -> None:
        with atomic_path(path, make_parents=True) as tmp:
            torch.save(_graph_to_dict(g), tmp)


@dataclass
class FeatureSpec:
    """What goes into ``x``, ``y`` and ``u``; JSON-able (stored in checkpoints).

    Attributes
    ----------
    inputs, targets, globals : list of str
        Field / parameter names.
    input_channels, target_channels : list of int
        Channels per named field (a vector field has 3).
    pos : bool
        Append normalized positions (3 channels) to ``x``.
    boundary : bool
        Append a boundary flag (``node_type > 0``) to ``x``.
    """

    inputs: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    globals: list[str] = field(default_factory=list)
    input_channels: list[int] = field(default_factory=list)
    target_channels: list[int] = field(default_factory=list)
    pos: bool = True
    boundary: bool = True

    @property
    def in_channels(self) -> int:
        return int(sum(self.input_channels)) + 3 * bool(self.pos) + int(bool(self.boundary))

    @property
    def out_channels(self) -> int:
        return int(sum(self.target_channels))

    @property
    def global_channels(self) -> int:
        return len(self.globals)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    @classmethod
    def from_case(cls, case: Case, pos: bool = True, boundary: bool = True) -> FeatureSpec:
        """Channel counts read off one case (targets must be present on it)."""
        return cls(
            inputs=list(case.inputs),
            targets=list(case.targets),
            globals=sorted(case.globals),
            input_channels=[case.field_array(n).shape[1] for n in case.inputs],
            target_channels=[case.field_array(n).shape[1] for n in case.targets],
            pos=pos,
            boundary=boundary,
        )


class Pipeline:
    """Case -> model-ready graph and model output -> fields on the case's mesh.

    Parameters
    ----------
    features : FeatureSpec
    graph_options : dict
        Passed to :func:`meshops.graph.build` (through its spec); part of the cache key.
    normalizer : Normalizer or None
        Set by :meth:`fit` on the training cases, or restored from a checkpoint.
    cache : GraphCache or None
    """

    def __init__(
        self,
        features: FeatureSpec,
        graph_options: dict[str, Any] | None = None,
        normalizer: Normalizer | None = None,
        cache: GraphCache | None = None,
    ) -> None:
        self.features = features
        self.graph_options = dict(graph_options or {})
        self.normalizer = normalizer
        self.cache = cache or GraphCache(enabled=False)

    # ---------------------------------------------------------------- graphs and raw arrays
    def graph(self, case: Case) -> Any:
        """The (cached) graph of the case's mesh, without features."""
        return self.cache.get(case.mesh, self.graph_options)

    def _check_fields(self, case: Case, names: Sequence[str], channels: Sequence[int], what: str) -> np.ndarray:
        a = case.stack(names)
        got = [case.field_array(n).shape[1] for n in names]
        if list(got) != list(channels):
            bad = [(n, g, c) for n, g, c in zip(names, got, channels, strict=True) if g != c][0]
            raise DatasetError(
                f"case '{case.name}': {what} field '{bad[0]}' has {bad[1]} channels, the model expects {bad[2]}"
            )
        return a

    def _node_index(self, case: Case, g: Any) -> np.ndarray:
        pi = getattr(g, "point_index", None)
        if pi is None:
            return np.arange(case.mesh.n_points)
        return pi.cpu().numpy()

    # ---------------------------------------------------------------- statistics
    def fit(self, cases: Iterable[Case]) -> Normalizer:
        """Compute the normalization statistics from ``cases`` (the training split only).

        One streaming pass: each case's arrays are merged into running statistics
        (:class:`~meshops.data.normalize.RunningStats`) and dropped, so ``cases`` may be a lazy
        sequence of a dataset bigger than memory.
        """
        f = self.features
        acc = {
            "inputs": RunningStats(int(sum(f.input_channels)), groups=f.input_channels, names=f.inputs, what="input"),
            "targets": RunningStats(f.out_channels, groups=f.target_channels, names=f.targets, what="target"),
            "globals": RunningStats(f.global_channels, groups=[1] * len(f.globals), names=f.globals, what="global"),
            "pos": RunningStats(3, groups=[3], names=["pos"], what="position"),
        }
        edge_sum, edge_n, ext, n_cases = 0.0, 0, [], 0
        for case in cases:
            g = self.graph(case)
            idx = self._node_index(case, g)
            acc["inputs"].update(self._check_fields(case, f.inputs, f.input_channels, "input")[idx])
            acc["targets"].update(self._check_fields(case, f.targets, f.target_channels, "target")[idx])
            acc["globals"].update(case.global_vector(f.globals)[None, :])
            pos = g.pos.cpu().numpy()
            acc["pos"].update(pos)
            ext.append(float(np.linalg.norm(np.ptp(pos, axis=0))) if len(pos) else 0.0)
            ea = getattr(g, "edge_attr", None)
            if ea is not None and ea.shape[0]:
                edge_sum += float(ea[:, -1].double().sum())
                edge_n += int(ea.shape[0])
            n_cases += 1
        if not n_cases:
            raise DatasetError("cannot fit normalization statistics on 0 training cases")
        edge = edge_sum / edge_n if edge_n else 1.0
        self.normalizer = Normalizer(
            inputs=acc["inputs"].stats(), targets=acc["targets"].stats("floor"), globals=acc["globals"].stats(),
            pos=acc["pos"].stats(), edge_scale=edge if edge > 0 else 1.0,
            extra={"extent": [float(min(ext)), float(max(ext))]},
        )
        return self.normalizer

    # ---------------------------------------------------------------- samples
    def sample(self, case: Case, targets: bool | None = None) -> Any:
        """A model-ready graph of ``case``; ``targets=None`` includes ``y`` when the targets exist.

        Shapes
        ------
        x : (N, features.in_channels); y : (N, features.out_channels); u : (1, n_globals)
        """
        if self.normalizer is None:
            raise RuntimeError("Pipeline.sample: call fit() on the training cases (or load a checkpoint) first")
        f, nz = self.features, self.normalizer
        g = self.graph(case)
        d = copy.copy(g)
        idx = self._node_index(case, g)
        inputs = self._check_fields(case, f.inputs, f.input_channels, "input")[idx].astype(np.float64)
        parts = [nz.inputs.encode(inputs)]
        if f.pos:
            parts.append(nz.pos.encode(g.pos.cpu().numpy().astype(np.float64)))
        if f.boundary:
            nt = getattr(g, "node_type", None)
            flag = (nt.cpu().numpy() > 0) if nt is not None else np.zeros(len(idx), dtype=bool)
            parts.append(flag[:, None].astype(np.float64))
        d.x = torch.from_numpy(np.concatenate(parts, axis=1).astype(np.float32))
        d.u = torch.from_numpy(nz.globals.encode(case.global_vector(f.globals).astype(np.float64))
                               .astype(np.float32)).reshape(1, -1)
        want = case.has_targets if targets is None else targets
        if want:
            y = self._check_fields(case, f.targets, f.target_channels, "target")[idx].astype(np.float64)
            d.y = torch.from_numpy(nz.targets.encode(y).astype(np.float32))
        for k in list(d.keys()):
            if k.startswith("edge_attr") and isinstance(d[k], torch.Tensor):
                d[k] = d[k] / nz.edge_scale
        return d

    def decode(self, case: Case, graph: Any, pred: torch.Tensor) -> dict[str, np.ndarray]:
        """Model output (normalized, at the graph nodes) -> named fields in the mesh's point order.

        Points not covered by the graph get NaN.

        Shapes
        ------
        pred : (N, out_channels) -> {name: (n_points,) or (n_points, c)} float32
        """
        assert self.normalizer is not None
        p = self.normalizer.targets.decode(pred.detach().cpu().double().numpy())
        idx = self._node_index(case, graph)
        full = np.full((case.mesh.n_points, p.shape[1]), np.nan)
        full[idx] = p
        out: dict[str, np.ndarray] = {}
        c0 = 0
        for name, c in zip(self.features.targets, self.features.target_channels, strict=True):
            a = full[:, c0 : c0 + c].astype(np.float32)
            out[name] = a[:, 0] if c == 1 else a
            c0 += c
        return out
