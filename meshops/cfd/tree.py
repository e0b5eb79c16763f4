"""A vessel tree for CFD: branches (centerline polylines with radii), topology, validation, flow split.

A :class:`Tree` is a list of branches. Branch 0 is the root (its first point is the inlet); every
other branch ``b`` starts at point ``attach[b]`` of its parent ``parent[b]`` (its first point is
that parent point, on the parent's centerline, inside the parent's lumen). A branch has an outlet
at its end unless children start at its last point (a VMTK-style split, where the parent ends at
the bifurcation). Lengths are in the caller's units (the dataset uses mm).

The outlet flows follow Murray's law applied junction by junction (:func:`flow_split`): at every
junction the flow arriving in the parent divides between the continuing parent and the children in
proportion to the cube of their radii just downstream of the junction (``2 r`` along each).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from meshops.geometry.centerline import Centerline
from meshops.geometry.polyline import arc_length, curvature_torsion
from meshops.geometry.tube import branch_paths

log = logging.getLogger(__name__)

__all__ = ["Tree", "TreeError", "clearance", "flow_split", "smooth_tree", "tree_from_centerline", "validate_tree"]


class TreeError(ValueError):
    """Bad tree input (the message names the source, the branch and the offending value)."""


@dataclass
class Tree:
    """Branch polylines with radii and topology (see the module doc)."""

    points: list[np.ndarray]  # per branch (m_b, 3)
    radius: list[np.ndarray]  # per branch (m_b,)
    parent: list[int]  # -1 for the root
    attach: list[int]  # index into the parent's points where the branch starts; -1 for the root
    ref_radius: list[np.ndarray] | None = None  # healthy radii (no stenoses) for the flow split; None: radius

    @property
    def n_branches(self) -> int:
        return len(self.points)

    def children(self, b: int) -> list[int]:
        """Branches starting on branch ``b``, ordered by their attach index."""
        kids = [c for c in range(self.n_branches) if self.parent[c] == b]
        return sorted(kids, key=lambda c: self.attach[c])

    def has_outlet(self, b: int) -> bool:
        last = len(self.points[b]) - 1
        return not any(self.attach[c] == last for c in self.children(b))

    def outlets(self) -> list[int]:
        """Branches ending in an outlet, in branch order."""
        return [b for b in range(self.n_branches) if self.has_outlet(b)]

    def generation(self, b: int) -> int:
        g = 0
        while self.parent[b] >= 0:
            b = self.parent[b]
            g += 1
        return g

    def to_centerline(self) -> Centerline:
        """The tree as a :class:`~meshops.geometry.centerline.Centerline` (children share their first point)."""
        gidx: list[np.ndarray] = []  # global point index of every local point, per branch
        pts, rad, n = [], [], 0
        for b in range(self.n_branches):
            own = slice(1, None) if b else slice(0, None)
            m = len(self.points[b]) - (1 if b else 0)
            new = np.arange(n, n + m)
            gidx.append(np.concatenate([[gidx[self.parent[b]][self.attach[b]]], new]) if b else new)
            pts.append(self.points[b][own])
            rad.append(self.radius[b][own])
            n += m
        parent = [(self.parent[b], int(gidx[b][0])) if b else (-1, -1) for b in range(self.n_branches)]
        return Centerline(np.concatenate(pts), gidx, np.concatenate(rad), parent)


def tree_from_centerline(cl: Centerline, where: str = "centerline") -> Tree:
    """A :class:`Tree` from a branched centerline (root first; children start at their parent point)."""
    if cl.radius is None:
        raise TreeError(f"{where}: the centerline has no radius array")
    paths = branch_paths(cl)
    kept = [i for i, b in enumerate(cl.branches) if len(b)]
    if not paths:
        raise TreeError(f"{where}: no branch with length")
    owner: dict[int, tuple[int, int]] = {}  # point index -> (tree branch, index on it), first owner wins
    pts, rad, parent, attach = [], [], [], []
    for k, path in enumerate(paths):
        if k == 0:
            parent.append(-1)
            attach.append(-1)
        else:
            if int(path[0]) not in owner:
                raise TreeError(f"{where}: branch {kept[k] if k < len(kept) else k} starts at point {int(path[0])}, "
                                "which lies on no earlier branch (a second root or a branch listed before its parent)")
            pb, pi = owner[int(path[0])]
            parent.append(pb)
            attach.append(pi)
        for j, p in enumerate(path.tolist()):
            owner.setdefault(p, (k, j))
        pts.append(np.asarray(cl.points[path], dtype=np.float64))
        rad.append(np.asarray(cl.radius[path], dtype=np.float64))
    return Tree(pts, rad, parent, attach)


def validate_tree(tree: Tree, where: str = "tree", min_points: int = 2) -> None:
    """Raise :class:`TreeError` naming the branch and value for non-finite points, radii <= 0,
    coincident points, bad topology, or a radius of curvature below the radius (the tube folds)."""
    if tree.n_branches == 0:
        raise TreeError(f"{where}: the tree has no branches")
    if not (len(tree.radius) == len(tree.parent) == len(tree.attach) == tree.n_branches):
        raise TreeError(f"{where}: points, radius, parent, attach have different branch counts")
    for b in range(tree.n_branches):
        p, r = np.asarray(tree.points[b]), np.asarray(tree.radius[b])
        if p.ndim != 2 or p.shape[1] != 3 or len(p) < min_points:
            raise TreeError(f"{where}: branch {b}: points must be (m >= {min_points}, 3), got {p.shape}")
        if r.shape != (len(p),):
            raise TreeError(f"{where}: branch {b}: {r.shape} radii for {len(p)} points")
        if not np.isfinite(p).all():
            raise TreeError(f"{where}: branch {b}: non-finite point {int(np.flatnonzero(~np.isfinite(p).all(1))[0])}")
        bad = ~(np.isfinite(r) & (r > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise TreeError(f"{where}: branch {b}: radius[{i}] = {r[i]} (must be finite and > 0)")
        seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
        if (seg <= 0).any():
            raise TreeError(f"{where}: branch {b}: points {int(np.flatnonzero(seg <= 0)[0])} and the next coincide")
        pb, a = tree.parent[b], tree.attach[b]
        if b == 0 and pb != -1:
            raise TreeError(f"{where}: branch 0 must be the root (parent -1), got parent {pb}")
        if b and not (0 <= pb < b and 0 <= a < len(tree.points[pb])):
            raise TreeError(f"{where}: branch {b}: parent {pb} / attach {a} invalid (parents come first)")
        if len(p) >= 5:
            k, _ = curvature_torsion(p)
            worst = float(np.max(k * r))
            if worst >= 1.0:
                i = int(np.argmax(k * r))
                raise TreeError(f"{where}: branch {b}: radius of curvature {1 / k[i]:.3g} below the radius "
                                f"{r[i]:.3g} at point {i} (the wall would fold through itself)")


def _junctions(tree: Tree) -> list[tuple[int, int, np.ndarray, float]]:
    """(parent, child, junction point, exempt radius) for every child branch."""
    out = []
    for c in range(1, tree.n_branches):
        pb, a = tree.parent[c], tree.attach[c]
        tp = np.diff(tree.points[pb][max(a - 1, 0):a + 2], axis=0).mean(0)
        tc = tree.points[c][min(2, len(tree.points[c]) - 1)] - tree.points[c][0]
        cosang = abs(float(tp @ tc)) / (np.linalg.norm(tp) * np.linalg.norm(tc) + 1e-300)
        sin = max(float(np.sqrt(max(1 - cosang**2, 0.0))), 0.3)
        rp, rc = float(tree.radius[pb][a]), float(tree.radius[c][0])
        out.append((pb, c, tree.points[pb][a], (rp + 1.5 * rc) / sin + rc))
    return out


def clearance(tree: Tree, step: float | None = None) -> tuple[float, tuple[int, int]]:
    """Smallest ``distance / (r_i + r_j)`` between points of different branches outside their shared
    junctions (and of one branch with itself more than ``pi (r_i + r_j)`` apart in arc length).

    Values > 1 mean the tubes do not touch away from the junctions. Returns the ratio and the pair.
    """
    from scipy.spatial import cKDTree

    rmin = min(float(r.min()) for r in tree.radius)
    step = step or 0.5 * rmin
    P, R, B, S = [], [], [], []
    for b in range(tree.n_branches):
        s = arc_length(tree.points[b])
        n = max(int(np.ceil(s[-1] / step)) + 1, 2)
        st = np.linspace(0, s[-1], n)
        P.append(np.stack([np.interp(st, s, tree.points[b][:, k]) for k in range(3)], 1))
        R.append(np.interp(st, s, tree.radius[b]))
        B.append(np.full(n, b))
        S.append(st)
    P, R, B, S = (np.concatenate(x) for x in (P, R, B, S))
    exempt = np.zeros((len(P), 0), dtype=bool)
    jn = _junctions(tree)
    if jn:
        exempt = np.stack([np.linalg.norm(P - j[2], axis=1) < j[3] for j in jn], 1)
    pairs = cKDTree(P).query_pairs(2.0 * float(R.max()) * 1.5, output_type="ndarray")
    if len(pairs) == 0:
        return float("inf"), (-1, -1)
    i, j = pairs[:, 0], pairs[:, 1]
    rr = R[i] + R[j]
    ratio = np.linalg.norm(P[i] - P[j], axis=1) / rr
    same = B[i] == B[j]
    keep = np.where(same, np.abs(S[i] - S[j]) > np.pi * rr, True)
    if exempt.shape[1]:
        keep &= ~(exempt[i] & exempt[j]).any(axis=1)
    if not keep.any():
        return float("inf"), (-1, -1)
    k = int(np.argmin(np.where(keep, ratio, np.inf)))
    return float(ratio[k]), (int(B[i[k]]), int(B[j[k]]))


def _radius_at(tree: Tree, b: int, s0: float) -> float:
    s = arc_length(tree.points[b])
    r = tree.ref_radius[b] if tree.ref_radius is not None else tree.radius[b]
    return float(np.interp(min(s0, s[-1]), s, r))


def flow_split(tree: Tree, Q: float) -> tuple[dict[int, float], dict[int, float]]:
    """Murray-law flows: ``({outlet branch: outflow}, {branch: inflow at its start})``.

    At each junction (a point of branch ``b`` where children start) the flow arriving divides in
    proportion to ``r^3``, the radii taken ``2 r_b`` downstream along the continuing branch and each
    child (from ``tree.ref_radius`` when set: the healthy radii, so a stenosis does not change the
    split its downstream bed demands). The outflows sum to ``Q``.
    """
    inflow = {0: float(Q)}
    outflow: dict[int, float] = {}
    for b in range(tree.n_branches):  # parents come first
        F = inflow[b]
        s = arc_length(tree.points[b])
        kids = tree.children(b)
        last = len(tree.points[b]) - 1
        for a in sorted({tree.attach[c] for c in kids}):
            group = [c for c in kids if tree.attach[c] == a]
            d = 2.0 * float(tree.radius[b][a])
            w = {c: _radius_at(tree, c, d) ** 3 for c in group}
            cont = _radius_at(tree, b, s[a] + d) ** 3 if a < last else 0.0
            tot = cont + sum(w.values())
            for c in group:
                inflow[c] = F * w[c] / tot
            F = F * cont / tot
        if tree.has_outlet(b):
            outflow[b] = F
    return outflow, inflow


def _smooth(x: np.ndarray, width: float, h: float) -> np.ndarray:
    """Gaussian smoothing along a uniformly spaced polyline (std ``width``), end points kept."""
    k = int(np.ceil(2 * width / h))
    if k < 1 or len(x) < 3:
        return x
    w = np.exp(-0.5 * (np.arange(-k, k + 1) * h / width) ** 2)
    w /= w.sum()
    pad = np.concatenate([2 * x[:1] - x[k:0:-1], x, 2 * x[-1:] - x[-2:-k - 2:-1]])  # odd reflection
    out = np.stack([np.convolve(pad[:, j], w, mode="valid") for j in range(x.shape[1])], 1) if x.ndim == 2 \
        else np.convolve(pad, w, mode="valid")
    out[0], out[-1] = x[0], x[-1]
    return out


def smooth_tree(tree: Tree, spacing: float = 0.25, width: float = 1.0) -> Tree:
    """Resample every branch at ``spacing`` x its median radius and smooth points and radii with a
    Gaussian of ``width`` x the median radius (segmented centerlines are noisy at the point scale:
    their discrete curvature would fold the swept wall). Branch ends and junctions stay in place."""
    from meshops.geometry.polyline import resample

    pts, rad, attach = [], [], list(tree.attach)
    for b in range(tree.n_branches):
        r0 = float(np.median(tree.radius[b]))
        p, _, r = resample(tree.points[b], spacing=spacing * r0, values=tree.radius[b])
        h = float(np.linalg.norm(np.diff(p, axis=0), axis=1).mean())
        p, r = _smooth(p, width * r0, h), _smooth(np.asarray(r), width * r0, h)
        if b:
            pb = tree.parent[b]
            j = int(np.argmin(np.linalg.norm(pts[pb] - tree.points[pb][tree.attach[b]], axis=1)))
            attach[b] = j
            p[0] = pts[pb][j]
        pts.append(p)
        rad.append(r)
    return Tree(pts, rad, list(tree.parent), attach)
