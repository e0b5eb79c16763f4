"""Load peer implementations for side-by-side benchmarks (only inside a benchmark process).

``physicsnemo_meshgraphnet()`` returns NVIDIA PhysicsNeMo's ``MeshGraphNet`` class. PhysicsNeMo
2.2.2 imports timm, torchvision, s3fs, ... at package import time and checks that torch_scatter is
installed, none of which MeshGraphNet uses except ``torch_scatter.scatter`` for the aggregation.
Where those packages are missing (they do not install beside the CPU torch wheel), this module
stands in for them *in this process only*: a temporary directory on ``sys.path`` with

* a ``torch_scatter`` whose ``scatter`` is PyG's native ``torch_geometric.utils.scatter``
  (``scatter_reduce_`` / ``index_add_``: what PyG itself uses without torch_scatter), and
* empty, attribute-tolerant modules for the others (any attribute is a placeholder class that
  raises when called, so nothing runs silently),

each with a ``*.dist-info`` marked ``+meshops.stub`` so version checks pass. Nothing here is
imported by the library. When PhysicsNeMo itself is absent or does not load, the loader raises
:class:`PeerUnavailable` with the reason, and benchmarks skip that peer and print it.

``python benchmarks/peers.py`` (or ``meshops bench peers``) reports which peers load.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

__all__ = ["PeerUnavailable", "physicsnemo_meshgraphnet", "physicsnemo_mgn", "stubbed_modules"]

# packages PhysicsNeMo imports at import time that MeshGraphNet does not use
_LENIENT = ("timm", "torchvision", "s3fs", "nvtx", "onnx", "hydra", "omegaconf", "cftime", "git", "pandas")
_stubbed: list[str] = []
_stub_dir: tempfile.TemporaryDirectory | None = None


class PeerUnavailable(RuntimeError):
    """A peer cannot be loaded here; the message says why."""


class _Placeholder:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise PeerUnavailable(f"{type(self).__qualname__} is a benchmark stand-in, not the real package")

    def __init_subclass__(cls, **kwargs: Any) -> None:  # allow subclassing a stand-in base
        pass


class _LenientModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (_Placeholder,), {"__module__": self.__name__})


class _LenientFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``root`` and ``root.anything`` for the stubbed roots (last on sys.meta_path)."""

    def __init__(self, roots: set[str]) -> None:
        self.roots = roots

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        mod = _LenientModule(spec.name)
        mod.__path__ = []
        mod.__version__ = "0+meshops.stub"
        return mod

    def exec_module(self, module: types.ModuleType) -> None:
        pass


_TORCH_SCATTER = '''"""Benchmark stand-in for torch_scatter: PyG's native scatter (scatter_reduce_/index_add_)."""
from torch_geometric.utils import scatter as _pyg_scatter
__version__ = "2.1.2+meshops.stub"


def scatter(src, index, dim=-1, out=None, dim_size=None, reduce="sum"):
    if out is not None:
        raise NotImplementedError("stand-in torch_scatter.scatter: out= is not supported")
    return _pyg_scatter(src, index, dim=dim, dim_size=dim_size, reduce=reduce)
'''


def _dist_info(root: Path, dist: str, version: str) -> None:
    d = root / f"{dist}-{version}.dist-info"
    d.mkdir(exist_ok=True)
    (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")


def _missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


def _install_stubs() -> None:
    global _stub_dir
    if _stub_dir is not None:
        return
    _stub_dir = tempfile.TemporaryDirectory(prefix="meshops-peer-stubs-")
    root = Path(_stub_dir.name)
    if _missing("torch_scatter"):
        (root / "torch_scatter").mkdir()
        (root / "torch_scatter" / "__init__.py").write_text(_TORCH_SCATTER)
        _dist_info(root, "torch_scatter", "2.1.2+meshops.stub")
        _stubbed.append("torch_scatter (PyG's native scatter)")
    lenient = {m for m in _LENIENT if _missing(m)}
    dists = {"git": "gitpython", "hydra": "hydra-core"}
    for m in sorted(lenient):
        _dist_info(root, dists.get(m, m), "99.0+meshops.stub")  # "99": PhysicsNeMo checks minimum versions
        _stubbed.append(f"{m} (empty)")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    if lenient:
        sys.meta_path.append(_LenientFinder(lenient))


def stubbed_modules() -> list[str]:
    """What this process stands in for (for the benchmark's report)."""
    return list(_stubbed)


def physicsnemo_meshgraphnet() -> type:
    """PhysicsNeMo's ``MeshGraphNet`` class, with stand-ins for its unused import-time dependencies.

    Raises
    ------
    PeerUnavailable
        PhysicsNeMo is not installed or does not load here (the message has the reason).
    """
    if _missing("physicsnemo"):
        raise PeerUnavailable("nvidia-physicsnemo is not installed (`make peers` installs it)")
    _install_stubs()
    try:
        mod = importlib.import_module("physicsnemo.models.meshgraphnet")
    except Exception as exc:  # any import-time failure means: skip the peer, say why
        raise PeerUnavailable(f"physicsnemo does not import here: {type(exc).__name__}: {exc}") from exc
    return mod.MeshGraphNet


def physicsnemo_mgn(node_in: int, edge_in: int, out: int, hidden: int, n_blocks: int, mlp_layers: int = 2,
                    concat_trick: bool = True, aggregation: str = "sum") -> Any:
    """PhysicsNeMo MeshGraphNet with the architecture of meshops ``mgn`` (SiLU, LayerNorm, sum).

    ``mlp_layers`` linear layers per MLP as in meshops (PhysicsNeMo counts hidden layers: one fewer).
    """
    cls = physicsnemo_meshgraphnet()
    h = mlp_layers - 1
    return cls(input_dim_nodes=node_in, input_dim_edges=edge_in, output_dim=out, processor_size=n_blocks,
               mlp_activation_fn="silu", num_layers_node_processor=h, num_layers_edge_processor=h,
               hidden_dim_processor=hidden, hidden_dim_node_encoder=hidden, num_layers_node_encoder=h,
               hidden_dim_edge_encoder=hidden, num_layers_edge_encoder=h, hidden_dim_node_decoder=hidden,
               num_layers_node_decoder=h, aggregation=aggregation, do_concat_trick=concat_trick)


def main(argv: list[str] | None = None) -> int:
    try:
        cls = physicsnemo_meshgraphnet()
        print(f"physicsnemo MeshGraphNet: loads ({cls.__module__}); stand-ins: {', '.join(_stubbed) or 'none'}")
    except PeerUnavailable as exc:
        print(f"physicsnemo MeshGraphNet: skipped: {exc}")
    for name in ("pyvista", "meshio", "scipy", "torch_geometric", "pymetis"):
        print(f"{name}: {'missing' if _missing(name) else 'installed'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
