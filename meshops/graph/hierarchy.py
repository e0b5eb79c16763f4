"""Multi-scale hierarchies: coarse levels, edges per level, down/up maps between levels.

Sampling: farthest-point sampling (default)
-------------------------------------------
Coarse nodes are chosen by exact farthest-point sampling (:func:`meshops.geometry.sampling.
farthest_point_sampling`) rather than voxel clustering, because

* it gives exactly the asked level size (voxel grids only approach it in jumps);
* it yields a guaranteed covering radius -- every fine node is within the sampling radius of a
  coarse node -- which is what makes "each fine node maps to a coarse node within the level radius"
  true by construction, also on graded CFD meshes whose density varies by orders of magnitude
  (a voxel size fitting the boundary layer leaves the far field nearly empty, or the reverse);
* coarse nodes are actual mesh nodes, so they stay on curved surfaces and thin walls.
Its cost is O(n log n) with the ball-update scheme used here. ``sampling="voxel"`` is available
when speed matters more than these guarantees (the down map still covers every fine node, since a
fine node outside every ball is attached to its nearest coarse node).

Maps
----
``down`` (restriction, fine -> coarse): pairs ``[fine, coarse]`` for every fine node within the
level radius of a coarse node, plus the nearest coarse node of any fine node left out; weights
``(1 - (d / R)^2)^2`` (``R`` slightly above the radius), normalized to sum to 1 per coarse node, so
restriction is a weighted mean: ``x_coarse = scatter_sum(w * x_fine[src], dst)``.

``up`` (prolongation, coarse -> fine): each fine node takes its ``up_k`` nearest coarse nodes with
inverse-squared-distance weights normalized to 1 per fine node (a fine node that *is* a coarse node
takes it alone, weight 1), so constants are reproduced exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial import cKDTree

from meshops.geometry.sampling import col_max, col_min, farthest_point_sampling, grid_sampling, voxel_sampling
from meshops.graph._neighbors_kdtree import SortedTree, nearest

try:  # the compiled component count (numba); scipy's labelling otherwise
    from meshops.graph import _hierarchy_numba as _compiled
except ImportError:  # pragma: no cover - numba is a dependency
    _compiled = None

log = logging.getLogger(__name__)

__all__ = ["Level", "build_level", "connect_components", "count_components", "n_components", "rows_edges",
           "symmetric_edges"]


@dataclass
class Level:
    """One coarse level: positions, edges and maps to/from the finer level (numpy, float64/int64)."""

    index: np.ndarray  # (m,) indices of the coarse nodes in the finer level
    pos: np.ndarray  # (m, 3)
    edges: np.ndarray  # (2, E) directed both ways
    down: np.ndarray  # (2, M) [fine, coarse]
    down_w: np.ndarray  # (M,)
    up: np.ndarray  # (2, M') [coarse, fine]
    up_w: np.ndarray  # (M',)
    radius: float
    cover: float  # largest distance from a fine node to its nearest coarse node


def _pair_arrays(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two endpoint arrays of ``(2, E)`` or ``(E, 2)`` pairs."""
    p = np.asarray(pairs)
    if p.ndim == 2 and p.shape[0] == 2 and p.shape[1] != 2:
        return p[0], p[1]
    p = p.reshape(-1, 2)
    return p[:, 0], p[:, 1]


def symmetric_csr(pairs: np.ndarray, n: int) -> csr_matrix:
    """The adjacency of the unique undirected edges in ``pairs`` (self-loops dropped) as a CSR
    matrix with sorted column indices, in linear time (scipy's counting-sort conversions).

    Shapes
    ------
    pairs : (2, E) or (E, 2) int
    returns : (n, n) ``csr_matrix``, symmetric, ``indices`` sorted within each row.
    """
    a, b = _pair_arrays(pairs)
    keep = a != b
    if not keep.all():
        a, b = a[keep], b[keep]
    if len(b) > 1 and bool(np.all(b[1:] >= b[:-1])):  # grouped by b already (kNN rows): CSR as is
        m = _grouped_csr(b, a, n)
        m.sum_duplicates()
    else:
        m = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n)).tocsr()
    m = m + m.T.tocsr()  # csr + csr: linear, keeps the union pattern (values 1 or 2)
    m.sort_indices()
    return m


def _grouped_csr(rows: np.ndarray, cols: np.ndarray, n: int) -> csr_matrix:
    """The (n, n) int8 CSR matrix of ones at ``(rows, cols)`` when ``rows`` is non-decreasing (no sort)."""
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
    return csr_matrix((np.ones(len(cols), dtype=np.int8), cols, indptr), shape=(n, n))


def csr_edges(m: csr_matrix) -> np.ndarray:
    """``(2, nnz)`` int64 ``[row, column]`` of a CSR matrix (sorted by row, then column if sorted)."""
    n = m.shape[0]
    out = np.empty((2, m.nnz), dtype=np.int64)
    out[0] = np.repeat(np.arange(n, dtype=np.int64), np.diff(m.indptr))
    out[1] = m.indices
    return out


def symmetric_edges(pairs: np.ndarray, n: int) -> np.ndarray:
    """Both directions of the unique undirected edges in ``pairs`` (self-loops dropped).

    Shapes
    ------
    pairs : (2, E) or (E, 2) int
    returns : (2, E') int64 sorted by (source, target).
    """
    rows = _row_groups(pairs, n) if _compiled is not None else None
    if rows is not None:  # pairs grouped by one endpoint (kNN rows): one compiled transpose and merge
        return _compiled.symmetric_rows(rows[0], rows[1], int(n))
    return csr_edges(symmetric_csr(pairs, n))


def _row_groups(pairs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(indptr, cols)``: the pairs as CSR rows when one endpoint is non-decreasing and every index
    is in ``[0, n)``; ``None`` otherwise (scipy's route then checks and converts them)."""
    a, b = _pair_arrays(pairs)
    if len(a) < 2:
        return None
    for rows, cols in ((b, a), (a, b)):
        if rows[0] >= 0 and rows[-1] < n and bool(np.all(rows[1:] >= rows[:-1])):
            if int(cols.min()) < 0 or int(cols.max()) >= n:
                return None
            indptr = np.zeros(int(n) + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
            return indptr, np.ascontiguousarray(cols, dtype=np.int64)
    return None


def n_components(edges: np.ndarray | csr_matrix, n: int, symmetric: bool = False) -> tuple[int, np.ndarray]:
    """Number of connected components and labels of an edge list (or a CSR adjacency) over ``n`` nodes.

    ``symmetric=True`` promises that ``edges`` holds both directions of every edge, sorted by
    source (what :func:`symmetric_edges` returns), or is a symmetric CSR matrix (what
    :func:`symmetric_csr` returns): no transpose is then needed (strong components of a symmetric
    graph are its components).
    """
    if isinstance(edges, csr_matrix) and symmetric:
        k, lab = connected_components(edges, directed=True, connection="strong")
        return int(k), lab
    e = np.asarray(edges, dtype=np.int64).reshape(2, -1)
    if symmetric and (e.shape[1] < 2 or bool(np.all(e[0, 1:] >= e[0, :-1]))):
        k, lab = connected_components(_grouped_csr(e[0], e[1], n), directed=True, connection="strong")
        return int(k), lab
    a = coo_matrix((np.ones(e.shape[1]), (e[0], e[1])), shape=(n, n))
    k, lab = connected_components(a, directed=False)
    return int(k), lab


def count_components(edges: np.ndarray, n: int) -> int:
    """Number of connected components of the undirected graph of ``(2, E)`` edges over ``n`` nodes
    (compiled union-find: one pass, no adjacency matrix; else :func:`n_components`)."""
    e = np.ascontiguousarray(edges, dtype=np.int64).reshape(2, -1)
    if _compiled is None:
        return n_components(e, n)[0]
    return int(_compiled.count_components(e[0], e[1], int(n)))


def connect_components(pos: np.ndarray, edges: np.ndarray, k: int = 16) -> np.ndarray:
    """Add the fewest short edges that make the graph connected (a minimum spanning forest between components).

    Candidate links are the ``k``-nearest-neighbor pairs joining different components; the
    components are then joined along a minimum spanning tree of the shortest candidate per pair of
    components. If the kNN candidates leave it disconnected, the nearest pair between the largest
    component and the rest is added until connected.

    Shapes
    ------
    pos : (n, d) float64
    edges : (2, E) int64
    returns : (2, E'') int64, both directions, a superset of ``edges``.
    """
    n = len(pos)
    ncomp, lab = n_components(edges, n)
    if ncomp <= 1:
        return edges
    tree = cKDTree(pos)
    kk = min(k + 1, n)
    _, nb = tree.query(pos, k=kk)
    nb = nb.reshape(n, kk)
    src = np.repeat(np.arange(n), kk)
    dst = nb.ravel()
    cross = lab[src] != lab[dst]
    src, dst = src[cross], dst[cross]
    added = []
    if len(src):
        d = np.linalg.norm(pos[src] - pos[dst], axis=1) + 1e-300
        ca, cb = lab[src], lab[dst]
        a = coo_matrix((d, (ca, cb)), shape=(ncomp, ncomp)).tocsr()
        # keep the minimum per component pair: build from the sorted unique pairs
        order = np.lexsort((d, cb, ca))
        pair = ca[order] * ncomp + cb[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = pair[1:] != pair[:-1]
        sel = order[first]
        a = coo_matrix((d[sel], (ca[sel], cb[sel])), shape=(ncomp, ncomp))
        mst = minimum_spanning_tree(a).tocoo()
        best = {(int(i), int(j)): int(s) for i, j, s in zip(ca[sel], cb[sel], sel, strict=True)}
        for i, j in zip(mst.row, mst.col, strict=True):
            s = best.get((int(i), int(j)))
            if s is None:
                s = best[(int(j), int(i))]
            added.append((src[s], dst[s]))
    out = np.concatenate([edges, np.array(added, dtype=np.int64).reshape(-1, 2).T], axis=1) if added else edges
    out = symmetric_edges(out, n)
    ncomp, lab = n_components(out, n)
    while ncomp > 1:
        big = np.bincount(lab).argmax()
        inside = np.flatnonzero(lab == big)
        outside = np.flatnonzero(lab != big)
        d, j = cKDTree(pos[outside]).query(pos[inside])
        i = int(np.argmin(d))
        out = symmetric_edges(np.concatenate([out, [[inside[i]], [outside[j[i]]]]], axis=1), n)
        ncomp, lab = n_components(out, n)
    log.debug("connect_components: added edges to join components")
    return out


def _down_map(fine: np.ndarray, coarse: np.ndarray, r: float, tree_c: cKDTree) -> tuple[np.ndarray, np.ndarray]:
    tree_f = cKDTree(fine)
    sdm = tree_c.sparse_distance_matrix(tree_f, r, output_type="ndarray")
    c_idx = sdm["i"].astype(np.int64)
    f_idx = sdm["j"].astype(np.int64)
    dist = sdm["v"].astype(np.float64)
    # coarse nodes are fine nodes themselves: distance 0 pairs are dropped by sparse matrices
    dn, jn = tree_c.query(fine)
    covered = np.zeros(len(fine), dtype=bool)
    covered[f_idx] = True
    zero = dn == 0
    add = ~covered | zero
    # avoid duplicating an existing pair (only possible when dn > 0 and covered)
    f_idx = np.concatenate([f_idx, np.flatnonzero(add)])
    c_idx = np.concatenate([c_idx, jn[add]])
    dist = np.concatenate([dist, dn[add]])
    key = np.unique(f_idx * len(coarse) + c_idx, return_index=True)[1]
    f_idx, c_idx, dist = f_idx[key], c_idx[key], dist[key]
    R = np.maximum(r, dist) * 1.05 + 1e-300
    w = (1.0 - (dist / R) ** 2) ** 2
    tot = np.bincount(c_idx, weights=w, minlength=len(coarse))
    w = w / tot[c_idx]
    return np.stack([f_idx, c_idx]), w


def _up_map(fine: np.ndarray, tree_c: cKDTree | None, n_coarse: int, k: int,
            dj: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-distance prolongation over the ``k`` nearest coarse nodes (``dj``: that query, done)."""
    k = int(min(max(k, 1), n_coarse))
    d, j = tree_c.query(fine, k=k) if dj is None else (dj[0][:, :k], dj[1][:, :k])
    d, j = d.reshape(len(fine), k), j.reshape(len(fine), k)
    tol = 1e-12 * max(1.0, float(np.abs(fine).max()) if len(fine) else 1.0)
    if _compiled is not None:
        return _compiled.idw_up_map(d, j.astype(np.int64, copy=False), k, tol)
    return _up_weights(d, j, tol)


def _up_weights(d: np.ndarray, j: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """The numpy reference of the compiled ``idw_up_map`` (inverse-squared-distance weights)."""
    exact = d[:, 0] <= tol
    w = 1.0 / np.maximum(d * d, 1e-300)
    w[exact] = 0.0
    w[exact, 0] = 1.0
    w = w / w.sum(1, keepdims=True)
    keep = w > 0
    fine_idx = np.broadcast_to(np.arange(len(d))[:, None], j.shape)
    return np.stack([j[keep], fine_idx[keep]]).astype(np.int64), w[keep]


def _plane_coords(pts: np.ndarray, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Origin, 2D basis and coordinates of points lying in one plane, or ``None`` if they do not."""
    if len(pts) < 3:
        return None
    o = pts.mean(0)
    _, sv, vt = np.linalg.svd(pts - o, full_matrices=False)
    if sv[1] <= tol * max(sv[0], 1e-300) or (len(sv) > 2 and sv[2] > tol * sv[0]):
        return None
    basis = vt[:2]
    return o, basis, (pts - o) @ basis.T


def _linear_up_map(fine: np.ndarray, coarse: np.ndarray, reach: float, tree_c: cKDTree,
                   k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Barycentric (piecewise-linear) prolongation on the Delaunay triangulation of planar coarse nodes.

    A fine node takes the three corners of the coarse triangle that contains it, so linear fields
    are reproduced exactly (inverse-distance weights reproduce only constants). A fine node just
    outside the coarse nodes' hull is extrapolated from the triangle with the nearest centroid
    (barycentric weights down to -0.5, still exact for linear fields). Fine nodes farther out, or
    whose triangle has a corner farther than ``reach`` (a triangle spanning a hole or a re-entrant
    corner of the domain), keep the inverse-distance weights over their ``k`` nearest coarse nodes. ``None`` when the coarse nodes are not planar (3D levels,
    surfaces) or too few.

    Shapes
    ------
    fine : (n, 3); coarse : (m, 3) -> pairs (2, M) [coarse, fine] and weights (M,)
    """
    from scipy.spatial import Delaunay, QhullError

    plane = _plane_coords(coarse)
    if plane is None:
        return None
    o, basis, c2 = plane
    f3 = fine - o
    f2 = f3 @ basis.T
    off = np.linalg.norm(f3 - f2 @ basis, axis=1)
    try:
        tri = Delaunay(c2)
    except QhullError:
        return None
    s = tri.find_simplex(f2)
    # outside the hull: the triangle with the nearest centroid, extrapolated linearly if mildly outside
    outside = np.flatnonzero(s < 0)
    if len(outside):
        cen = c2[tri.simplices].mean(1)
        s[outside] = cKDTree(cen).query(f2[outside])[1]
    verts = tri.simplices[s]  # (n, 3)
    T = tri.transform[s]  # (n, 3, 2)
    b = np.einsum("nij,nj->ni", T[:, :2], f2 - T[:, 2])
    bary = np.concatenate([b, 1.0 - b.sum(1, keepdims=True)], axis=1)
    far = np.linalg.norm(coarse[verts] - fine[:, None], axis=2).max(1) > reach
    ok = (off <= 1e-6 * max(reach, 1e-300)) & ~far & (bary >= -0.5).all(1)
    pairs_idw, w_idw = _up_map(fine, tree_c, len(coarse), k)
    keep_idw = ~ok[pairs_idw[1]]
    rows = np.flatnonzero(ok)
    lin_c, lin_f, lin_w = verts[rows].ravel(), np.repeat(rows, 3), bary[rows].ravel()
    nz = lin_w != 0
    pairs = np.concatenate([pairs_idw[:, keep_idw], np.stack([lin_c[nz], lin_f[nz]])], axis=1)
    return pairs.astype(np.int64), np.concatenate([w_idw[keep_idw], lin_w[nz]])


def build_level(
    fine: np.ndarray,
    m: int,
    *,
    radius: float | None = None,
    k: int | None = None,
    max_num_neighbors: int = 32,
    sampling: str = "fps",
    up_k: int = 3,
    start: int = 0,
    interpolation: str = "idw",
) -> Level:
    """Sample ``m`` coarse nodes from ``fine`` and build the level's edges and maps.

    Parameters
    ----------
    fine : finer-level positions.
    m : number of coarse nodes (exact for FPS, approximate for voxels).
    radius : level radius (down-map balls and, without ``k``, edges); default twice the covering
        radius, so radius edges reach the neighboring samples.
    k : if given, level edges are the symmetrized ``k``-nearest-neighbor graph instead of radius edges.
    max_num_neighbors : cap per node for radius edges (the nearest are kept).
    sampling : ``"fps"`` or ``"voxel"``.
    up_k : coarse nodes per fine node in the (inverse-distance) prolongation.
    interpolation : ``"idw"`` (inverse-distance over ``up_k`` nearest coarse nodes) or ``"linear"``
        (barycentric on the coarse Delaunay triangulation where the level is planar, see
        :func:`_linear_up_map`; inverse-distance elsewhere).

    Shapes
    ------
    fine : (n, 3) float64
    returns : :class:`Level` (see its fields).
    """
    from meshops.geometry.sampling import _check_points

    fine = _check_points(fine, "level positions")
    n = len(fine)
    if m < 1:
        raise ValueError(f"build_level: a level needs at least 1 node, got {m}")
    if interpolation not in ("idw", "linear"):
        raise ValueError(f"build_level: interpolation must be 'idw' or 'linear', got {interpolation!r}")
    if sampling == "grid" or (sampling == "auto" and min(m, n) > AUTO_FPS_MAX):
        idx, h = grid_sampling(fine, m)
        return _grid_level(fine, idx, h, radius, k, max_num_neighbors, up_k, interpolation)
    if sampling in ("fps", "auto"):
        idx, _ = farthest_point_sampling(fine, m, start=start)
    elif sampling == "voxel":
        idx = voxel_sampling(fine, m)
    else:
        raise ValueError(f"unknown sampling '{sampling}' (use 'auto', 'fps', 'grid' or 'voxel')")
    coarse = fine[idx]
    tree_c = cKDTree(coarse)
    dn, _ = tree_c.query(fine)
    cover = float(dn.max()) if n else 0.0
    ext = float(np.linalg.norm(col_max(fine) - col_min(fine))) if n else 1.0
    r = float(radius) if radius is not None else max(2.0 * cover, 1e-9 * max(ext, 1e-300))
    if not r > 0:
        raise ValueError(f"build_level: level radius must be > 0, got {radius}")
    down, down_w = _down_map(fine, coarse, r, tree_c)
    lin = _linear_up_map(fine, coarse, 2.0 * r, tree_c, up_k) if interpolation == "linear" else None
    up, up_w = lin if lin is not None else _up_map(fine, tree_c, len(coarse), up_k)
    edges = _level_edges(coarse, r, k, max_num_neighbors)
    return Level(index=np.asarray(idx, np.int64), pos=coarse, edges=edges, down=down, down_w=down_w,
                 up=up, up_w=up_w, radius=r, cover=cover)


#: ``sampling="auto"`` uses exact FPS up to this many coarse nodes, grid sampling above.
AUTO_FPS_MAX = 20_000
DOWN_K = 3  # grid levels: a fine node restricts to at most its DOWN_K nearest coarse nodes within the radius


def _level_edges(coarse: np.ndarray, r: float, k: int | None, cap: int, tree: SortedTree | None = None) -> np.ndarray:
    """Symmetrized kNN edges (with ``k``) or radius edges capped at ``cap`` nearest, both directions
    (``tree``: a :class:`SortedTree` over ``coarse`` already built)."""
    mc = len(coarse)
    if mc == 1:
        return np.zeros((2, 0), dtype=np.int64)
    kk = min(int(k) + 1, mc) if k is not None else min(cap + 1, mc)
    _, nb = nearest(coarse if tree is None else tree, None, kk, bound=np.inf if k is not None else r)
    return rows_edges(nb, mc)  # missing neighbours (index mc) and the node itself dropped


def rows_edges(nb: np.ndarray, n: int) -> np.ndarray:
    """Both directions of the unique undirected edges ``{i, nb[i, c]}`` of dense neighbour rows
    (row ``i``: node ``i``'s neighbours; entries outside ``[0, n)`` are padding; self-loops dropped).

    Shapes
    ------
    nb : (m, k) int, m <= n
    returns : (2, E) int64 sorted by (source, target), as :func:`symmetric_edges`.
    """
    m, k = nb.shape
    if _compiled is not None:
        indptr = np.arange(m + 1, dtype=np.int64) * k
        return _compiled.symmetric_rows(indptr, np.ascontiguousarray(nb, dtype=np.int64).reshape(-1), int(n))
    rows = np.broadcast_to(np.arange(m)[:, None], nb.shape)
    valid = (nb >= 0) & (nb < n)
    return symmetric_edges(np.stack([rows[valid], nb[valid]]), n)


def _grid_down_weights(dd, jj, kd, r, mc) -> tuple[np.ndarray, np.ndarray]:
    """The numpy reference of the compiled ``grid_down_map``: ``([fine, coarse], w)``."""
    keep = dd[:, :kd] <= r
    keep[:, 0] = True
    f_idx = np.broadcast_to(np.arange(len(dd))[:, None], keep.shape)[keep]
    c_idx, dist = jj[:, :kd][keep], dd[:, :kd][keep]
    R = np.maximum(r, dist) * 1.05 + 1e-300
    w = dist / R
    w *= w
    w = 1.0 - w
    w *= w
    w /= np.bincount(c_idx, weights=w, minlength=mc)[c_idx]
    return np.stack([f_idx, c_idx]), w


def _grid_level(fine, idx, h, radius, k, max_num_neighbors, up_k, interpolation) -> Level:
    """A level from grid samples: one kNN query of the fine nodes gives the cover, down and up maps.

    Automatic radius: ``sqrt(d) * h`` (twice the half-diagonal of a grid cell, the covering radius
    of a sample at its cell centre), at least the covering radius. Down map: each fine node to its (at most ``DOWN_K``) nearest
    coarse nodes within the radius, always including the nearest one; weights as on FPS levels.
    The coarse nodes come in the k-d order of their tree (not the order of ``idx``), so a level
    built from points in random order is spatially coherent: its edges, maps and next level read
    memory locally (4e6 random points: ~1 s less CPU for levels 1-2).
    """
    dim = fine.shape[1]
    tree = SortedTree(fine[idx])
    idx = tree.adopt_order(idx)  # the level in the tree's (k-d) order: its edges and the next level stay local
    coarse = tree.xp
    mc = len(coarse)
    kq = int(min(max(DOWN_K, up_k, 1), mc))
    dd, jj = nearest(tree, fine, kq)
    cover = float(dd[:, 0].max())
    ext = float(np.linalg.norm(col_max(fine) - col_min(fine)))
    auto = max(np.sqrt(dim) * h, cover) if h > 0 else 2.0 * cover  # >= cover: every fine node has one
    r = float(radius) if radius is not None else max(auto, 1e-9 * max(ext, 1e-300))
    if not r > 0:
        raise ValueError(f"build_level: level radius must be > 0, got {radius}")
    kd = min(DOWN_K, kq)
    down, w = (_compiled.grid_down_map(dd, jj, kd, r, mc) if _compiled is not None
               else _grid_down_weights(dd, jj, kd, r, mc))
    lin = _linear_up_map(fine, coarse, 2.0 * r, cKDTree(coarse), up_k) if interpolation == "linear" else None
    up, up_w = lin if lin is not None else _up_map(fine, None, mc, up_k, dj=(dd, jj))
    edges = _level_edges(coarse, r, k, max_num_neighbors, tree)
    return Level(index=np.asarray(idx, np.int64), pos=coarse, edges=edges, down=down, down_w=w, up=up,
                 up_w=up_w, radius=r, cover=cover)
