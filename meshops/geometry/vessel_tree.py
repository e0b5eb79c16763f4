"""The topology of a vessel tree and its flow split (Murray's law), from branch point paths.

A tree is given as point-index paths (``branches``), the main vessel first, each child path
starting at (or next to) a point of an earlier branch, oriented away from the inlet: the layout
of :func:`meshops.geometry.tube.branch_paths` and of the coronary datasets'
``centerline_branches``. :func:`vessel_tree` finds each branch's parent and the arc length of its
junction on the parent, its generation, its distance from the inlet along the tree, and the share
of the inlet flow it carries at every arc length.

Flow split: at every junction the flow arriving in the parent divides between the parent's
downstream segment and the child as ``r^3`` (Murray's law, the rule of the coronary tree dataset's
outlet flows and of ``meshops cfd``), with ``r`` the healthy radius of each two junction radii downstream
of the junction (before the next junction): past the inflated inscribed-sphere radius at the
junction itself, and estimated as the segment's largest radius from there on, so that a stenosis
next to the junction does not shift the split (the dataset splits by the healthy radii).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from meshops.geometry.polyline import arc_length

__all__ = ["VesselTree", "vessel_tree"]


@dataclass
class VesselTree:
    """Per-branch topology and flow of a vessel tree (see the module docstring).

    Attributes
    ----------
    parent : (n_b,) int, parent branch (-1 for the root).
    s_junction : (n_b,) float, arc length on the parent where the branch starts (0 for the root).
    generation : (n_b,) int, 0 for the root, parent's + 1 otherwise.
    d_inlet : (n_b,) float, distance from the inlet along the tree to the branch start.
    length : (n_b,) float, branch arc length.
    q_in : (n_b,) float, fraction of the inlet flow entering the branch.
    children : per branch, the list of ``(s_junction, child, q_child)`` sorted by arc length.
    """

    parent: np.ndarray
    s_junction: np.ndarray
    generation: np.ndarray
    d_inlet: np.ndarray
    length: np.ndarray
    q_in: np.ndarray
    children: list[list[tuple[float, int, float]]] = field(default_factory=list)

    def flow_fraction(self, b: int, s: np.ndarray) -> np.ndarray:
        """Fraction of the inlet flow through branch ``b`` at arc lengths ``s`` (after each child leaves)."""
        q = np.full(np.shape(s), float(self.q_in[b]))
        for sj, _, qc in self.children[b]:
            q = q - np.where(np.asarray(s) > sj, qc, 0.0)
        return np.maximum(q, 0.0)

    def junction_distance(self, b: int, s: np.ndarray) -> np.ndarray:
        """Arc length from ``s`` to the nearest junction on branch ``b`` (its start, for a child, included)."""
        js = [sj for sj, _, _ in self.children[b]] + ([0.0] if self.parent[b] >= 0 else [])
        if not js:
            return np.full(np.shape(s), np.inf)
        return np.min(np.abs(np.asarray(s)[..., None] - np.asarray(js)), axis=-1)


def _attach(points: np.ndarray, paths: list[np.ndarray], b: int) -> tuple[int, int]:
    """(parent branch, position on the parent's path) of branch ``b``: a shared point, else the nearest."""
    first = int(paths[b][0])
    for a in range(b):
        hit = np.flatnonzero(paths[a] == first)
        if len(hit):
            return a, int(hit[0])
    best = (np.inf, 0, 0)
    for a in range(b):
        d = np.linalg.norm(points[paths[a]] - points[first], axis=1)
        k = int(np.argmin(d))
        if d[k] < best[0]:
            best = (float(d[k]), a, k)
    return best[1], best[2]


def _segment_radius(s: np.ndarray, r: np.ndarray, s0: float, s1: float) -> float:
    """Median radius over arc lengths [s0, s1] of a branch (the nearest point when none falls inside)."""
    inside = (s >= s0 - 1e-12) & (s <= s1 + 1e-12)
    if inside.sum() >= 1:
        return float(np.median(r[inside]))
    return float(r[int(np.argmin(np.abs(s - 0.5 * (s0 + s1))))])


def _window_radius(s: np.ndarray, r: np.ndarray, s0: float, r_j: float, s_end: float) -> float:
    """Healthy radius of the segment from two junction radii downstream of ``s0`` to ``s_end`` (the next junction).

    The rule of the coronary tree dataset and of ``meshops cfd`` (:func:`meshops.cfd.tree.flow_split`)
    takes the radius ``2 r_j`` downstream (past the inflated inscribed sphere of the junction), of the
    *healthy* vessel: a stenosis there does not change the split its bed demands. A stenosis only
    narrows the lumen and a healthy segment tapers away from the junction, so the largest radius
    over the segment from ``2 r_j`` on estimates that healthy value from the narrowed lumen.
    """
    a = min(s0 + 2.0 * r_j, max(s_end, s0), float(s[-1]))
    b = min(max(s_end, a), float(s[-1]))
    inside = r[(s > a) & (s <= b)]
    return float(max(np.interp(a, s, r), inside.max() if len(inside) else 0.0))


def _first_junction(s_j: np.ndarray, kids: list[int], length: float) -> float:
    """Arc length of a branch's first junction with a child (its length when it has none)."""
    first = min([float(s_j[g]) for g in kids] + [length])
    return first if first > 0 else length


def vessel_tree(points: np.ndarray, radius: np.ndarray, paths: list[np.ndarray]) -> VesselTree:
    """Topology and Murray flow split of the tree whose branches are ``paths`` (main vessel first).

    Shapes
    ------
    points (m, 3), radius (m,), paths: list of (m_b,) int -> VesselTree with (n_b,) arrays
    """
    n = len(paths)
    p = np.asarray(points, dtype=np.float64)
    r = np.asarray(radius, dtype=np.float64)
    s_b = [arc_length(p[b]) for b in paths]
    parent = np.full(n, -1, dtype=np.int64)
    s_j = np.zeros(n)
    for b in range(1, n):
        a, k = _attach(p, paths, b)
        parent[b], s_j[b] = a, float(s_b[a][k])
    gen = np.zeros(n, dtype=np.int64)
    d_in = np.zeros(n)
    for b in range(1, n):
        gen[b] = gen[parent[b]] + 1
        d_in[b] = d_in[parent[b]] + s_j[b]
    kids: list[list[int]] = [[] for _ in range(n)]
    for b in range(1, n):
        kids[int(parent[b])].append(b)
    q_in = np.zeros(n)
    q_in[0] = 1.0
    children: list[list[tuple[float, int, float]]] = [[] for _ in range(n)]
    for a in range(n):  # parents come before their children
        order = sorted(kids[a], key=lambda c: s_j[c])
        end = float(s_b[a][-1])
        s_a, r_a = s_b[a], r[paths[a]]
        r_j = {c: float(np.interp(s_j[c], s_a, r_a)) for c in order}  # parent radius at each junction
        r_kid = {c: _window_radius(s_b[c], r[paths[c]], 0.0, r_j[c],
                                   _first_junction(s_j, kids[c], float(s_b[c][-1]))) for c in order}
        q = q_in[a]
        for i, c in enumerate(order):
            if s_j[c] >= end - 1e-9:  # the parent ends here: the remaining children share what is left
                rest = sum(r_kid[x] ** 3 for x in order[i:])
                frac = r_kid[c] ** 3 / rest
            else:
                nxt = min([s_j[x] for x in order[i + 1 :] if s_j[x] > s_j[c] + 1e-9] + [end])
                r_down = _window_radius(s_a, r_a, float(s_j[c]), r_j[c], nxt)
                frac = r_kid[c] ** 3 / (r_kid[c] ** 3 + r_down**3)
            q_in[c] = q * frac
            q -= q_in[c]
            children[a].append((float(s_j[c]), int(c), float(q_in[c])))
    length = np.array([float(s[-1]) for s in s_b])
    return VesselTree(parent, s_j, gen, d_in, length, q_in, children)
