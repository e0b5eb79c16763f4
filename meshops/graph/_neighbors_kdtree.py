"""CPU route of :mod:`meshops.graph.neighbors`: scipy's ``cKDTree`` with exact ties and caps.

``workers=-1`` uses every core (override with ``$MESHOPS_WORKERS``). What makes it faster than a
plain ``cKDTree(x).query(x, k)``:

* the kNN tree is built over the points in Morton order (unless they already come in a coherent
  order, e.g. a mesh's: :func:`coherent`), so a leaf is one block of memory, and queries run in a
  spatially coherent order (the tree's leaf order for a graph, a Morton order for a separate query
  set), put back in query order at the end: consecutive queries walk the same tree nodes;
* queries run in blocks searched within a guessed bound (the block before's largest distance),
  rows that find too few within it searched again: the same result, 15-25% less search;
* the tree is built unbalanced and without node compaction (half the build time, same queries);
* kNN rows are dense ``(m, k)`` arrays: only rows holding an exact distance tie are re-sorted, and
  only rows with a tie at the k-th distance (or a duplicate of the query point) are queried again,
  within the largest such k-th distance;
* radius pairs come from one dual-tree pass (``query_pairs`` / ``sparse_distance_matrix``, no
  Python lists) and are ordered by one value sort of packed ``(query, distance, index)`` keys, with
  the few pairs whose quantized distances collide re-sorted exactly.

Distances used for ordering are ``sqrt(sum((x - y)^2))`` summed over the axes in order (the same
bits as ``np.linalg.norm(x - y, axis=1)``). kNN functions return a dense ``(m, k)`` index array in
query order; radius functions return ``(query, neighbor)`` sorted by (query, distance, index).
"""

from __future__ import annotations

import os

import numpy as np
from scipy.spatial import cKDTree

from meshops.geometry.sampling import col_max, col_min

try:  # the compiled search (numba); without it, scipy's cKDTree does every query
    from meshops.geometry import _kdtree_numba as _knn
except ImportError:  # pragma: no cover - numba is a dependency
    _knn = None

#: Queries per chunk (bounds the dense kNN buffers and the capped radius route).
CHUNK = 1 << 16
_TIE = 1 + 1e-12  # relative slack of the tie test at the k-th distance (as before)


def _workers() -> int:
    env = os.environ.get("MESHOPS_WORKERS")
    return int(env) if env else -1


def _threads() -> None:
    """Numba's thread count for the compiled search: ``_workers()`` (``-1``: every core)."""
    import numba

    w = _workers()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS if w < 0 else max(1, min(w, numba.config.NUMBA_NUM_THREADS)))


def _tree(x: np.ndarray) -> cKDTree:
    # unbalanced, uncompacted: 2-3x faster to build, queries as fast (leaves of 24: 5% faster kNN)
    return cKDTree(x, leafsize=24, balanced_tree=False, compact_nodes=False)


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Euclidean distance, bit-identical to ``np.linalg.norm(a - b, axis=-1)``."""
    diff = a - b
    s = diff[..., 0] * diff[..., 0]
    for j in range(1, diff.shape[-1]):
        s += diff[..., j] * diff[..., j]
    return np.sqrt(s)


def _spread3(v: np.ndarray) -> np.ndarray:
    """Spread the low 10 bits of ``v`` two bits apart (the 3D Morton interleave)."""
    v = (v | (v << 16)) & 0x030000FF
    v = (v | (v << 8)) & 0x0300F00F
    v = (v | (v << 4)) & 0x030C30C3
    return (v | (v << 2)) & 0x09249249


def spatial_order(p: np.ndarray, bits: int = 10) -> np.ndarray:
    """A permutation putting points in Morton (Z-curve) order on a ``2^bits`` grid per axis."""
    n, d = p.shape
    if n < 2:
        return np.arange(n)
    bits = max(1, min(bits, 63 // d))
    lo, hi = col_min(p), col_max(p)
    scale = ((1 << bits) - 1) / np.maximum(hi - lo, 1e-300)
    if _knn is not None and d == 3 and bits == 10:  # compiled codes and a radix sort: the same permutation
        return _knn.morton_order(np.ascontiguousarray(p, dtype=np.float64), lo, scale)
    g = ((p - lo) * scale).astype(np.int64)
    if d == 3 and bits == 10:
        code = _spread3(g[:, 0]) | (_spread3(g[:, 1]) << 1) | (_spread3(g[:, 2]) << 2)
    else:
        code = np.zeros(n, dtype=np.int64)
        for b in range(bits):
            for j in range(d):
                code |= ((g[:, j] >> b) & 1) << (b * d + j)
    ib = int(n - 1).bit_length()
    if bits * d + ib <= 63:  # one value sort of packed (code, index): faster than argsort
        packed = (code << ib) | np.arange(n)
        packed.sort()
        return packed & ((1 << ib) - 1)
    return np.argsort(code, kind="stable")


# ------------------------------------------------------------------------------------------ kNN
def coherent(p: np.ndarray, sample: int = 2048) -> bool:
    """Whether the points are already in a spatially coherent order (a mesh's, say).

    Judged from a sample: consecutive points closer than a tenth of the distance between random
    pairs (random orders: about the same). Only decides how a search is laid out, never its result.
    """
    n = len(p)
    if n < 4 * sample:
        return False
    rng = np.random.default_rng(0)
    i = rng.integers(0, n - 1, sample)
    j = rng.integers(0, n, sample)
    step = np.median(_dist(p[i + 1], p[i]))
    return bool(step < 0.1 * np.median(_dist(p[j], p[i])))


class SortedTree:
    """A k-d tree over the points in a spatially coherent order that answers with the caller's indices.

    3D points with numba available: the compiled tree of :mod:`meshops.geometry._kdtree_numba` (points in
    its k-d order), with scipy's ``cKDTree`` over the same points for ``k > MAX_K``. Otherwise a
    ``cKDTree`` over the points in Morton order, so that every leaf is a nearly contiguous block of
    memory (1e6 random points: 25-30% less query time than a tree over the points in their own
    order); points already in a coherent order (:func:`coherent`) are used as they are. ``n``
    marks a missing neighbour, as in ``cKDTree.query``.
    """

    def __init__(self, x: np.ndarray) -> None:
        self.n = len(x)
        self.fast = _knn is not None and x.ndim == 2 and x.shape[1] == 3 and self.n > 0
        if self.fast:
            x = np.ascontiguousarray(x, dtype=np.float64)
            self.perm, self.xp = _knn.kd_order(x, _knn.LEAF)
            self.boxes, self.first = _knn.build_boxes(self.xp, _knn.LEAF)
        else:
            self.perm = None if coherent(x) else spatial_order(x)
            self.xp = x if self.perm is None else x[self.perm]
        self._tree = None
        self._map = None if self.perm is None else np.append(self.perm, self.n)

    @property
    def tree(self) -> cKDTree:
        if self._tree is None:
            self._tree = _tree(self.xp)
        return self._tree

    def adopt_order(self, labels: np.ndarray) -> np.ndarray:
        """Make the tree's point order the caller's: returns ``labels`` (one per point, in the
        caller's order) in the tree's order; from then on the caller's indices are the tree's
        (``xp`` are the points in the new order). A level built this way is spatially coherent."""
        if self.perm is None:
            return labels
        labels = labels[self.perm]
        self.perm, self._map = None, None
        return labels

    def to_caller(self, j: np.ndarray) -> np.ndarray:
        """Tree indices (``n`` for none) as the caller's indices."""
        return j if self._map is None else self._map[j]

    def plan(self, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """A coherent order for the queries ``y`` (``None``: the tree's own points):
        ``(caller's query indices in that order, source array, positions in it or None for as is)``."""
        if y is None:
            if self.perm is None:
                return np.arange(self.n), self.xp, None
            if self.fast:
                return self.perm, self.xp, None
            leaf = np.asarray(self.tree.indices, dtype=np.int64)
            return self.perm[leaf], self.xp, leaf
        if coherent(y):
            return np.arange(len(y)), y, None
        o = spatial_order(y)
        return o, y, o

    def query(self, yq: np.ndarray, kk: int, bound: float, offset: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """``cKDTree.query(yq, kk, distance_upper_bound=bound)`` in tree indices; ``offset >= 0``:
        ``yq`` is ``xp[offset:offset + len(yq)]`` (a start hint, never changes the result)."""
        if self.fast and kk <= _knn.MAX_K:
            _threads()
            yq = np.ascontiguousarray(yq, dtype=np.float64)
            return _knn.query(self.xp, self.boxes, self.first, yq, kk, float(bound), offset)
        return _query_blocks(self.tree, yq, kk, bound)


def _rows(src: np.ndarray, pos: np.ndarray | None, s: int, e: int) -> np.ndarray:
    return src[s:e] if pos is None else src[pos[s:e]]


def _offset(y: np.ndarray | None, pos: np.ndarray | None, start: int) -> int:
    """Where the query rows from ``start`` begin among the tree's points (``-1``: other points)."""
    return start if y is None and pos is None else -1


#: Queries per block of a guessed search bound (see :func:`_query_blocks`).
BLOCK = 4096


def _query_blocks(tree: cKDTree, yq: np.ndarray, kk: int, bound: float) -> tuple[np.ndarray, np.ndarray]:
    """``tree.query(yq, kk, distance_upper_bound=bound)`` for spatially coherent queries, faster.

    Blocks of ``BLOCK`` queries are searched within a guessed bound, the largest ``kk``-th
    distance of the block before (neighbouring queries have similar ones): the search then
    prunes from the start (15-25% less query time). A row that finds fewer than ``kk`` points
    within the guess is searched again within ``bound``, so the result is the same as one query.
    """
    m = len(yq)
    d_out, j_out = np.empty((m, kk)), np.empty((m, kk), dtype=np.int64)
    guess = bound
    for s in range(0, m, BLOCK):
        q = yq[s : s + BLOCK]
        d, j = tree.query(q, k=kk, distance_upper_bound=guess, workers=_workers())
        d, j = d.reshape(len(q), kk), j.reshape(len(q), kk)
        if guess < bound:
            short = np.flatnonzero(~(d[:, -1] < guess))
            if len(short):
                d2, j2 = tree.query(q[short], k=kk, distance_upper_bound=bound, workers=_workers())
                d[short], j[short] = d2.reshape(len(short), kk), j2.reshape(len(short), kk)
        d_out[s : s + len(q)], j_out[s : s + len(q)] = d, j
        last = d[:, -1]
        top = float(last.max()) if len(last) else np.inf
        guess = min(bound, top * _TIE) if np.isfinite(top) and top > 0 else bound
    return d_out, j_out


def _query(tree: SortedTree, yq: np.ndarray, kk: int, r: float | None, offset: int = -1):
    """``(m, kk)`` distances and indices, sorted by distance; beyond ``r``: ``inf`` and ``n``."""
    bound = np.inf if r is None else r * _TIE
    d, nb = tree.query(yq, kk, bound, offset)
    nb = tree.to_caller(nb)
    if r is not None:
        out = d > r
        d[out], nb[out] = np.inf, tree.n
    return d, nb


def nearest(x: np.ndarray | SortedTree, y: np.ndarray | None, k: int, bound: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """``cKDTree(x).query(y, k, distance_upper_bound=bound)`` as ``(m, k)`` arrays, faster.

    The tree is built over ``x`` in Morton order and the queries run in a spatially coherent
    order (``y=None``: ``x`` itself, in the tree's leaf order), then are put back in query order.
    Same distances; among neighbours at exactly equal distance the tree may pick another one than
    a tree over ``x`` in its own order would (no tie rule: use :func:`kdtree_knn` for one).
    Missing neighbours: distance ``inf``, index ``len(x)``. ``x`` may be a :class:`SortedTree`
    already built over the points (several queries of one point set build it once).
    """
    tree = x if isinstance(x, SortedTree) else SortedTree(x)
    order, src, pos = tree.plan(y)
    m = len(order)
    d_out, j_out = np.empty((m, k)), np.empty((m, k), dtype=np.int64)
    for start in range(0, m, CHUNK):
        d, j = tree.query(_rows(src, pos, start, start + CHUNK), k, bound, _offset(y, pos, start))
        q = order[start : start + CHUNK]
        d_out[q], j_out[q] = d, tree.to_caller(j)
    return d_out, j_out


def _exact_rows(tree, x, yq, qid, k, exclude_self, radius, r):
    """The ``k`` nearest per query (within ``r``), ordered by (exact distance, index); ``-1`` pads.

    ``radius`` (per row) bounds the k-th distance; every point within it is fetched (doubling the
    query size until a row is complete), so ties at the k-th distance go to the lower index.
    """
    n_x = len(x)
    out = np.empty((len(qid), k), dtype=np.int64)
    todo = np.arange(len(qid))
    kk = min(2 * k + 2, n_x)
    while len(todo):
        top = float(radius[todo].max())  # nothing beyond the largest row radius is needed: prune there
        d, nb = _query(tree, yq[todo], kk, top if np.isfinite(top) and top > 0 else r)
        inside = d <= radius[todo, None]
        complete = ~inside[:, -1] | (kk >= n_x)
        rows, nb, inside = todo[complete], nb[complete], inside[complete]
        if exclude_self:
            inside &= nb != qid[rows, None]
        dd = np.where(inside, _dist(x[np.where(inside, nb, 0)], yq[rows, None, :]), np.inf)
        o = np.lexsort((np.where(inside, nb, n_x), dd), axis=1)[:, :k]
        out[rows] = np.where(np.take_along_axis(inside, o, 1), np.take_along_axis(nb, o, 1), -1)
        todo = todo[~complete]
        kk = min(2 * kk, n_x)
    return out


def _knn_chunk(tree, x, yq, qid, k, exclude_self, r, out, offset=-1):
    """Write into ``out[qid]`` the ``(m, kc)`` neighbor indices of the queries ``yq`` (``-1`` pads;
    ``offset``: see :meth:`SortedTree.query`)."""
    n_x = len(x)
    s = 1 if exclude_self else 0
    kc = min(k, n_x - s)
    kk = min(k + s + 1, n_x)  # one extra to see a tie at the k-th distance
    d, nb = _query(tree, yq, kk, r, offset)
    good = nb[:, 0] == qid if exclude_self else np.ones(len(qid), dtype=bool)
    D, N = d[:, s:], nb[:, s:]
    if kk - s > kc:
        good &= ~(np.isfinite(D[:, kc]) & (D[:, kc] <= D[:, kc - 1] * _TIE))
    eq = D[:, 1:kc] == D[:, : kc - 1]
    if r is not None:
        eq &= np.isfinite(D[:, 1:kc])
        N = np.where(np.isfinite(D), N, -1)
    out[qid] = N[:, :kc]
    tie = np.flatnonzero(good & eq.any(axis=1))
    if len(tie):  # exact ties inside the row: order them by index
        o = np.lexsort((N[tie, :kc], D[tie, :kc]), axis=1)
        out[qid[tie]] = np.take_along_axis(N[tie, :kc], o, 1)
    bad = np.flatnonzero(~good)
    if len(bad):
        db = np.where(nb[bad] == qid[bad, None], np.inf, d[bad]) if exclude_self else d[bad]
        radius = np.sort(db, axis=1)[:, kc - 1] * _TIE
        if r is not None:
            radius = np.minimum(np.where(np.isfinite(radius), radius, r), r)
        out[qid[bad]] = _exact_rows(tree, x, yq[bad], qid[bad], kc, exclude_self, radius, r)


def kdtree_knn(
    x: np.ndarray, y: np.ndarray | None, k: int, exclude_self: bool, r: float | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``(m, min(k, n - exclude_self))`` indices of the nearest points of ``x`` per query, nearest first.

    ``y=None`` queries ``x`` itself (the graph case). Ties go to the lower index. With ``r``, only
    points within ``r`` count and rows are padded with ``-1``. ``out``: the array to fill.
    """
    y_ = x if y is None else y
    kc = max(0, min(k, len(x) - (1 if exclude_self else 0)))
    if out is None:
        out = np.empty((len(y_), kc), dtype=np.int64)
    if kc == 0 or len(y_) == 0:
        return out
    tree = SortedTree(x)
    order, src, pos = tree.plan(y)
    for start in range(0, len(y_), CHUNK):
        _knn_chunk(tree, x, _rows(src, pos, start, start + CHUNK), order[start : start + CHUNK], k, exclude_self, r, out,
                   _offset(y, pos, start))
    return out


# --------------------------------------------------------------------------------------- radius
def _sort_pairs(q, nb, d, r, x, y, dist_bits: int | None = None):
    """Pairs sorted by (query, distance, index) through one value sort of packed keys.

    The key packs (query, distance quantized to the bits left, index); runs of equal (query,
    quantized distance) are then re-sorted by the exact distance, so the order is exact.
    """
    bq, bn = max(1, int(len(y) - 1).bit_length()), max(1, int(len(x) - 1).bit_length())
    bd = 63 - bq - bn if dist_bits is None else dist_bits
    if bd < 10:  # too many points to pack: a plain lexsort
        o = np.lexsort((nb, d, q))
        return q[o], nb[o]
    top = (1 << bd) - 1
    key = (q << (bd + bn)) | (np.minimum((d * (top / r)).astype(np.int64), top) << bn) | nb
    del q, nb, d
    key.sort()
    q, nb, head = key >> (bd + bn), key & ((1 << bn) - 1), key >> bn
    del key
    same = np.flatnonzero(head[1:] == head[:-1])
    if len(same):  # equal quantized distances: order those runs by the exact distance, then index
        pos = np.unique(np.concatenate([same, same + 1]))
        qp, nbp = q[pos], nb[pos]
        o = np.lexsort((nbp, _dist(x[nbp], y[qp]), head[pos]))
        q[pos], nb[pos] = qp[o], nbp[o]
    return q, nb


def _pairs_self(x: np.ndarray, r: float, loop: bool):
    """All ordered pairs ``(i, j)``, ``i != j`` (plus ``(i, i)`` with ``loop``), ``|x_i - x_j| <= r``."""
    perm = spatial_order(x)
    xp = x[perm]
    p = _tree(xp).query_pairs(r * _TIE, output_type="ndarray")
    i, j = p[:, 0], p[:, 1]
    del p
    d = _dist(xp[i], xp[j])
    keep = d <= r
    i, j, d = perm[i[keep]], perm[j[keep]], d[keep]
    qs, ns, ds = [i, j], [j, i], [d, d]
    if loop:
        a = np.arange(len(x))
        qs.append(a)
        ns.append(a)
        ds.append(np.zeros(len(x)))
    return np.concatenate(qs), np.concatenate(ns), np.concatenate(ds)


def _pairs_cross(x: np.ndarray, y: np.ndarray, r: float):
    """All pairs ``(query in y, point in x)`` with distance ``<= r`` (one dual-tree pass)."""
    px, py = spatial_order(x), spatial_order(y)
    xp, yp = x[px], y[py]
    s = _tree(yp).sparse_distance_matrix(_tree(xp), r * _TIE, output_type="ndarray")
    i, j = s["i"].astype(np.int64), s["j"].astype(np.int64)
    del s
    d = _dist(xp[j], yp[i])
    keep = d <= r
    return py[i[keep]], px[j[keep]], d[keep]


def _mean_count(tree_pts: np.ndarray, y: np.ndarray, r: float, sample: int = 2000) -> float:
    """Mean number of points within ``r`` of a query, from a sample of the queries."""
    rng = np.random.default_rng(0)
    ids = rng.choice(len(y), size=min(sample, len(y)), replace=False)
    sub = cKDTree(tree_pts).query_ball_point(y[ids], r, return_length=True, workers=_workers())
    return float(np.mean(sub)) if len(ids) else 0.0


def _rank(q: np.ndarray, m: int) -> np.ndarray:
    """Position of each pair inside its query's run (``q`` sorted)."""
    cnt = np.bincount(q, minlength=m)
    return np.arange(len(q)) - np.repeat(np.cumsum(cnt) - cnt, cnt)


def kdtree_radius(
    x: np.ndarray, y: np.ndarray | None, r: float, cap: int | None, exclude_self: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(query, neighbor)`` pairs within ``r``, sorted by (query, distance, index), at most ``cap`` per query.

    ``y=None`` queries ``x`` itself (the graph case; ``exclude_self`` drops the point itself).
    """
    yy = x if y is None else y
    if cap is not None and len(x) > 4 * cap and _mean_count(x, yy, r) > 4 * cap:
        # many points in range, few kept: a bounded kNN query enumerates less than all pairs
        nb = kdtree_knn(x, y, cap, exclude_self, r)
        q = np.broadcast_to(np.arange(len(yy))[:, None], nb.shape)
        keep = nb >= 0
        return q[keep], nb[keep]
    if y is None:
        q, nb, d = _pairs_self(x, r, loop=not exclude_self)
    else:
        q, nb, d = _pairs_cross(x, y, r)
        if exclude_self:
            keep = q != nb
            q, nb, d = q[keep], nb[keep], d[keep]
    q, nb = _sort_pairs(q, nb, d, r, x, yy)
    if cap is not None:
        keep = _rank(q, len(yy)) < cap
        q, nb = q[keep], nb[keep]
    return q, nb
