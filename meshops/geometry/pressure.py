"""The pressure an incompressible planar velocity field implies: a P1 finite-element Poisson solve.

Taking the divergence of the incompressible momentum equation removes the time derivative and the
viscous term (both divergence-free): ``-lap p = div((u . grad) u)`` for the kinematic pressure
``p / rho``. In weak form, against every P1 hat function ``phi``::

    int grad p . grad phi  =  - int ((u . grad) u) . grad phi  +  boundary terms

The boundary term is ``int (dp/dn + ((u . grad) u) . n) phi``, which the normal momentum equation
reduces to ``int (nu lap u - du/dt) . n phi``: zero wherever the normal velocity never changes (walls,
slip walls, a fixed inlet) up to the viscous part, which is dropped here. So the solve is the natural
(Neumann) problem with ``p = 0`` on the given Dirichlet nodes (an outlet held at zero pressure).

``(u . grad) u`` is evaluated per triangle (P1 gradients, the triangle-mean velocity). On a coarse
mesh the result is biased (the viscous boundary term, the discrete velocity not being exactly
divergence-free), but the bias changes slowly in time: ``p - S(u)`` is a slowly varying field, which
is what :mod:`meshops.train.stepping` uses it for.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

__all__ = ["PressurePoisson", "triangulate"]


def triangulate(cells: np.ndarray) -> np.ndarray:
    """Triangles of planar cells: triangles as they are, quads split along their 0-2 diagonal.

    Shapes
    ------
    cells : (m, 3) or (m, 4) -> returns (m, 3) or (2 m, 3)
    """
    c = np.asarray(cells, dtype=np.int64)
    if c.ndim != 2 or c.shape[1] not in (3, 4):
        raise ValueError(f"triangulate: expected (m, 3) triangles or (m, 4) quads, got shape {c.shape}")
    return c if c.shape[1] == 3 else np.concatenate([c[:, [0, 1, 2]], c[:, [0, 2, 3]]])


class PressurePoisson:
    """``S(u, v)``: the kinematic pressure of a planar velocity field on a triangle mesh.

    ``dirichlet`` are the node ids held at ``p = 0``; without any, node 0 is (the pressure is then
    defined up to a constant, and that one is picked).

    Shapes
    ------
    points : (n, 2), triangles : (m, 3) int, dirichlet : (k,) int
    """

    def __init__(self, points: np.ndarray, triangles: np.ndarray, dirichlet: np.ndarray) -> None:
        P = np.asarray(points, dtype=np.float64)
        T = np.asarray(triangles, dtype=np.int64)
        if P.ndim != 2 or P.shape[1] != 2 or T.ndim != 2 or T.shape[1] != 3:
            raise ValueError(f"PressurePoisson: points must be (n, 2) and triangles (m, 3), got {P.shape}, {T.shape}")
        e1, e2 = P[T[:, 1]] - P[T[:, 0]], P[T[:, 2]] - P[T[:, 0]]
        det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        if np.any(np.abs(det) <= 1e-14 * np.abs(det).max(initial=1.0)):
            raise ValueError(f"PressurePoisson: {int(np.sum(np.abs(det) <= 1e-14 * np.abs(det).max()))} degenerate triangle(s)")
        g1 = np.stack([e2[:, 1], -e2[:, 0]], 1) / det[:, None]
        g2 = np.stack([-e1[:, 1], e1[:, 0]], 1) / det[:, None]
        self.grad = np.stack([-g1 - g2, g1, g2], 1)  # (m, 3, 2): gradient of each vertex's hat function
        self.area = 0.5 * np.abs(det)
        self.tri, self.n = T, len(P)
        k = np.einsum("mik,mjk->mij", self.grad, self.grad) * self.area[:, None, None]
        K = sp.csr_matrix((k.ravel(), (np.repeat(T, 3, axis=1).ravel(), np.tile(T, (1, 3)).ravel())),
                          shape=(self.n, self.n))
        d = np.unique(np.asarray(dirichlet, dtype=np.int64).ravel())
        if d.size and (d.min() < 0 or d.max() >= self.n):
            raise ValueError(f"PressurePoisson: Dirichlet node ids outside 0..{self.n - 1}")
        self.dirichlet = d if d.size else np.zeros(1, dtype=np.int64)
        self.free = np.setdiff1d(np.arange(self.n), self.dirichlet)
        self._lu = sla.splu(K[self.free][:, self.free].tocsc())

    def rhs(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The load vector ``-int ((u . grad) u) . grad phi`` per node.

        Shapes
        ------
        u, v : (n,) or (n, B) -> returns the same
        """
        U = np.stack([np.asarray(u, np.float64), np.asarray(v, np.float64)], axis=-1)  # (n, [B,] 2)
        Ut = U[self.tri]  # (m, 3, [B,] 2)
        if Ut.ndim == 3:
            Ut = Ut[:, :, None]
        gu = np.einsum("makc,maj->mkcj", Ut, self.grad)  # d u_c / d x_j per triangle and column
        a = np.einsum("mkj,mkcj->mkc", Ut.mean(1), gu)  # (u . grad) u
        f = -np.einsum("mkc,mac->mak", a, self.grad) * self.area[:, None, None]  # (m, 3, B)
        b = np.zeros((self.n, f.shape[2]))
        np.add.at(b, self.tri.ravel(), f.reshape(-1, f.shape[2]))
        return b if np.ndim(u) == 2 else b[:, 0]

    def solve(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The kinematic pressure ``S(u, v)`` (zero on the Dirichlet nodes).

        Shapes
        ------
        u, v : (n,) or (n, B) -> returns the same, float64
        """
        b = self.rhs(u, v)
        p = np.zeros_like(b)
        p[self.free] = self._lu.solve(b[self.free])
        return p
