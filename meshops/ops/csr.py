"""Sorted-CSR view of an edge list: sort once, cache the permutation and ``ptr`` on the graph."""

from __future__ import annotations

from typing import Any

import torch

from meshops.ops._check import check_index_tensor, index_bound
from meshops.ops._ops import transpose_csr

__all__ = ["CSR", "csr"]


class CSR:
    """Edges (or any index) sorted by their row (the destination), stably.

    Attributes
    ----------
    ptr : (num_rows + 1,) int64
        Sorted positions ``ptr[r]:ptr[r+1]`` hold the entries of row ``r``.
    perm : (E,) int64
        ``perm[k]`` is the original position (edge id) of sorted entry ``k``; the sort is stable,
        so entries of one row keep their original order.
    col : (E,) int64 or None
        Column (source node) of each sorted entry, ``src[perm]``; None for a plain index.
    num_rows, num_cols : int
        Number of destination rows and of source columns (``num_cols`` is 0 for a plain index).

    Shapes
    ------
    ptr (num_rows + 1,), perm (E,), col (E,), row (E,)
    """

    def __init__(
        self,
        ptr: torch.Tensor,
        perm: torch.Tensor,
        col: torch.Tensor | None,
        num_rows: int,
        num_cols: int = 0,
    ) -> None:
        self.ptr = ptr
        self.perm = perm
        self.col = col
        self.num_rows = int(num_rows)
        self.num_cols = int(num_cols)
        self._row: torch.Tensor | None = None
        self._t: CSR | None = None
        self._deg: torch.Tensor | None = None

    # ----------------------------------------------------------------------------- constructors
    @classmethod
    def from_index(cls, index: torch.Tensor, dim_size: int | None = None) -> CSR:
        """Sort a scatter index once (``scatter(src, index)`` == ``segment(src[perm], ptr)``).

        Shapes
        ------
        index (E,) int32/int64 -> ptr (dim_size + 1,), perm (E,)
        """
        check_index_tensor("CSR.from_index", "index", index)
        n = index_bound("CSR.from_index", "index", index, dim_size)
        # int32 keys sort about twice as fast as int64 on CPU
        key = index.int() if n < 2**31 - 1 else index.long()
        if key.numel():
            perm = torch.sort(key, stable=True).indices
            counts = torch.bincount(key, minlength=n)
        else:
            perm = torch.zeros(0, dtype=torch.long, device=index.device)
            counts = torch.zeros(n, dtype=torch.long, device=index.device)
        ptr = torch.zeros(n + 1, dtype=torch.long, device=index.device)
        torch.cumsum(counts, 0, out=ptr[1:])
        return cls(ptr, perm, None, n)

    @classmethod
    def from_edge_index(
        cls, edge_index: torch.Tensor, num_nodes: int | None = None, num_src_nodes: int | None = None
    ) -> CSR:
        """Sort ``edge_index = [src; dst]`` by destination.

        Parameters
        ----------
        edge_index : (2, E) int32/int64
            Row 0 source, row 1 destination (PyG's ``flow="source_to_target"``).
        num_nodes : int, optional
            Number of destination nodes (default ``dst.max() + 1``).
        num_src_nodes : int, optional
            Number of source nodes for a bipartite graph (default: ``num_nodes``).

        Shapes
        ------
        edge_index (2, E) -> ptr (num_nodes + 1,), perm (E,), col (E,)
        """
        if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
            shape = tuple(edge_index.shape) if isinstance(edge_index, torch.Tensor) else type(edge_index)
            raise ValueError(f"CSR.from_edge_index: edge_index must have shape (2, E), got {shape}")
        src, dst = edge_index[0], edge_index[1]
        check_index_tensor("CSR.from_edge_index", "edge_index", dst)
        c = cls.from_index(dst, num_nodes)
        n_src = c.num_rows if num_src_nodes is None else int(num_src_nodes)
        index_bound("CSR.from_edge_index", "edge_index[0] (source)", src, n_src)
        c.col = src.long().index_select(0, c.perm)
        c.num_cols = n_src
        return c

    # ------------------------------------------------------------------------------- properties
    @property
    def num_entries(self) -> int:
        return self.perm.numel()

    @property
    def device(self) -> torch.device:
        return self.ptr.device

    @property
    def row(self) -> torch.Tensor:
        """Row id of every sorted entry, (E,) int64 (cached)."""
        if self._row is None:
            self._row = torch.repeat_interleave(
                torch.arange(self.num_rows, device=self.device), self.degree(), output_size=self.num_entries
            )
        return self._row

    def degree(self) -> torch.Tensor:
        """Entries per row, (num_rows,) int64 (cached)."""
        if self._deg is None:
            self._deg = self.ptr[1:] - self.ptr[:-1]
        return self._deg

    def transpose(self) -> CSR:
        """The same edges sorted by source (cached): rows are sources, ``col`` destinations.

        ``perm`` of the transpose indexes the original edge ids, like ``self.perm``.
        """
        if self.col is None:
            raise ValueError("CSR.transpose: this CSR was built from a plain index (no columns)")
        if self._t is None:
            ptr_t, col_t, perm_t = transpose_csr(self.ptr, self.col, self.num_cols)
            t = CSR(ptr_t, self.perm.index_select(0, perm_t), col_t, self.num_cols, self.num_rows)
            t._t = self
            self._t = t
        return self._t

    def to(self, device: torch.device | str) -> CSR:
        c = CSR(
            self.ptr.to(device), self.perm.to(device), None if self.col is None else self.col.to(device),
            self.num_rows, self.num_cols,
        )
        return c

    def __repr__(self) -> str:
        return (
            f"CSR(num_rows={self.num_rows}, num_cols={self.num_cols}, num_entries={self.num_entries}, "
            f"device={self.device})"
        )


_CACHE_ATTR = "_meshops_csr_cache"


def csr(
    data: Any, key: str = "edge_index", num_nodes: int | None = None, num_src_nodes: int | None = None
) -> CSR:
    """The :class:`CSR` of ``data[key]``, built once and cached on ``data``.

    The cache lives in ``data.__dict__`` (not in a PyG ``Data`` store, so batching and
    ``.to()`` never see it) and is rebuilt when ``data[key]`` is replaced or changed in place.

    Parameters
    ----------
    data : torch_geometric.data.Data or any object with the attribute ``key``
    key : str
        Name of the (2, E) edge index (e.g. ``"edge_index_1"`` for a hierarchy level).
    num_nodes : int, optional
        Destination node count. Default: ``data.num_nodes`` for ``"edge_index"``, the rows of
        ``pos_{l}`` for ``"edge_index_{l}"`` (a hierarchy level), else ``dst.max() + 1``.
    num_src_nodes : int, optional
        Source node count of a bipartite map such as ``"down_{l}"`` (default: ``num_nodes``).

    Shapes
    ------
    data[key] (2, E) -> CSR with ptr (N + 1,), perm (E,), col (E,)
    """
    ei = getattr(data, key, None)
    if ei is None:
        raise KeyError(f"csr: the graph has no attribute {key!r}")
    if num_nodes is None:
        if key == "edge_index":
            num_nodes = getattr(data, "num_nodes", None)
        elif key.startswith("edge_index_"):
            pos = getattr(data, "pos_" + key[len("edge_index_") :], None)
            num_nodes = pos.size(0) if pos is not None else None
    cache = data.__dict__.setdefault(_CACHE_ATTR, {})
    hit = cache.get(key)
    if hit is not None:
        t, version, n, n_src, c = hit
        if (
            t is ei
            and version == ei._version
            and (num_nodes is None or n == num_nodes)
            and (num_src_nodes is None or n_src == num_src_nodes)
        ):
            return c
    c = CSR.from_edge_index(ei, num_nodes, num_src_nodes)
    cache[key] = (ei, ei._version, c.num_rows, c.num_cols, c)
    return c
