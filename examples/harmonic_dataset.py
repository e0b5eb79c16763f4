"""A plug-in dataset in one file with a known answer: harmonic functions on random 2D meshes.

Each case is a Delaunay triangulation of random points in the unit square (its outline is the
``wall`` boundary region). The target ``u`` is a random harmonic polynomial
``a (x^2 - y^2) + 2 b x y + c x + d y + e`` (``degree=1`` keeps only the linear part); the input ``g`` is ``u`` on the boundary and 0 inside,
so the operator to learn is the harmonic extension of boundary data (Laplace's equation).

    meshops train --dataset examples/harmonic_dataset.py --model ugraph --epochs 40 --out runs/harmonic
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import Delaunay

from meshops import CellBlock, Mesh
from meshops.data import Case, Dataset, register_dataset


def random_square_mesh(rng: np.random.Generator, n_interior: int, n_side: int) -> tuple[Mesh, np.ndarray]:
    """A triangulated unit square with random interior points; returns the mesh and a boundary mask.

    Shapes
    ------
    returns : Mesh with (n, 3) points and triangles; (n,) bool
    """
    t = np.sort(rng.uniform(0.02, 0.98, size=(4, n_side - 1)), axis=1)
    side = [np.c_[np.r_[0.0, t[0]], np.zeros(n_side)],             # bottom, from (0,0)
            np.c_[np.ones(n_side), np.r_[0.0, t[1]]],              # right, from (1,0)
            np.c_[1.0 - np.r_[0.0, t[2]], np.ones(n_side)],        # top, from (1,1)
            np.c_[np.zeros(n_side), 1.0 - np.r_[0.0, t[3]]]]       # left, from (0,1)
    ring = np.concatenate(side)
    inner = rng.uniform(0.04, 0.96, size=(n_interior, 2))
    pts = np.concatenate([ring, inner])
    tri = Delaunay(pts).simplices.astype(np.int64)
    nb = len(ring)
    edges = np.c_[np.arange(nb), (np.arange(nb) + 1) % nb]
    mesh = Mesh(np.c_[pts, np.zeros(len(pts))], [CellBlock("triangle", tri)],
                boundaries={"wall": [CellBlock("line", edges)]}, dim=2)
    mask = np.zeros(len(pts), dtype=bool)
    mask[:nb] = True
    return mesh, mask


@register_dataset("harmonic2d")
class Harmonic2D(Dataset):
    """Random harmonic polynomials on random triangulated squares.

    Parameters
    ----------
    n : int
        Number of cases.
    n_interior, n_side : int
        Interior points and boundary points per side.
    degree : int
        2: quadratic harmonic polynomials; 1: linear ones (an easier problem).
    seed : int
        Cases are a pure function of ``(seed, index)``.
    """

    inputs = ["g"]
    targets = ["u"]
    globals: list[str] = []

    def __init__(self, n: int = 64, n_interior: int = 80, n_side: int = 10, degree: int = 2, seed: int = 0) -> None:
        if degree not in (1, 2):
            raise ValueError(f"harmonic2d: degree must be 1 or 2, got {degree}")
        self.n, self.n_interior, self.n_side, self.degree, self.seed = n, n_interior, n_side, degree, seed

    def __len__(self) -> int:
        return self.n

    def case_names(self) -> list[str]:
        return [f"harmonic_{i:04d}" for i in range(self.n)]

    def __getitem__(self, i: int) -> Case:
        rng = np.random.default_rng([self.seed, i])
        mesh, mask = random_square_mesh(rng, self.n_interior, self.n_side)
        a, b, c, d, e = rng.normal(size=5)
        if self.degree == 1:
            a = b = 0.0
        x, y = mesh.points[:, 0] - 0.5, mesh.points[:, 1] - 0.5
        u = a * (x * x - y * y) + 2 * b * x * y + c * x + d * y + e
        g = np.where(mask, u, 0.0)
        return Case(f"harmonic_{i:04d}", mesh.with_fields(g=g, u=u), self.inputs, self.targets, {})
