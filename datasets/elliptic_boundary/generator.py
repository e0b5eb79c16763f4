"""Generator of the elliptic_boundary dataset: random domains, random data, P1 FEM solutions.

Each case is ``-div(k grad u) = f`` on a random domain (see ``geometry.py``) with random smooth
``f``, a coefficient ``k`` (1 for Poisson, a random smooth positive field for the variable
coefficient problem) and boundary data ``g`` of one kind:

* ``dirichlet``: ``u = g`` on the whole boundary;
* ``neumann``: ``k du/dn = g`` on the whole boundary; ``f`` is shifted by a constant so that
  ``int f + int g = 0`` holds exactly for the discrete data, and ``u`` is the zero-mean solution
  (unique);
* ``robin``: ``k du/dn + alpha u = g`` with a random ``alpha`` in [0.5, 5] (unique);
* ``mixed``: the boundary is split into 2-4 angular sectors around the domain's centroid,
  alternately Dirichlet and Neumann (Robin with probability 1/3), with at least one Dirichlet
  sector (unique).

A case is a :class:`meshops.Mesh` (triangles or tetrahedra) with point fields

``f`` (source), ``k`` (coefficient), ``g`` (boundary value, 0 at interior nodes), ``bc_type``
(int32: 0 interior, 1 Dirichlet, 2 Neumann, 3 Robin), ``alpha`` (Robin coefficient, 0 elsewhere)
and the solution ``u``; ``field_data`` records the family, the boundary kind and the seed.
Cases are saved as VTU (written to a temporary file, then moved into place); the boundary facets
are extra cells tagged by the cell field ``facet_type`` and read back as the regions
``dirichlet`` / ``neumann`` / ``robin``.

Command line::

    python datasets/elliptic_boundary/generator.py OUT_DIR --families cutout4 polygon \
        --bcs dirichlet neumann --n 20 --seed 0 [--dim 3] [--coefficient variable]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from meshops.atomic import atomic_path, write_json_atomic
from meshops.data import recipe_module
from meshops.mesh import CellBlock, Mesh

log = logging.getLogger("meshops.datasets.elliptic_boundary.generator")

HERE = Path(__file__).resolve().parent
BC_KINDS = ("dirichlet", "neumann", "robin", "mixed")
#: cell field of the written VTU: 0 on domain cells, the facet type on boundary facets
FACET_FIELD = "facet_type"


def load_sibling(name: str) -> Any:
    """Import ``datasets/elliptic_boundary/<name>.py`` once (the folder is not a package)."""
    return recipe_module(HERE, name)


fem = load_sibling("fem")
geometry = load_sibling("geometry")


# ----------------------------------------------------------------------------- random fields
def random_smooth(x: np.ndarray, rng: np.random.Generator, n_modes: int = 3, decay: float = 1.5) -> np.ndarray:
    """A random smooth function: a Fourier series with ``|m_i| <= n_modes`` and decaying amplitudes.

    Normalised to unit standard deviation over the given points.

    Shapes
    ------
    x : (n, dim) float64
    returns : (n,) float64
    """
    dim = x.shape[1]
    grids = np.meshgrid(*[np.arange(-n_modes, n_modes + 1)] * dim, indexing="ij")
    m = np.stack([g.ravel() for g in grids], axis=1)
    m = m[np.abs(m).sum(1) > 0]
    amp = rng.normal(size=len(m)) / (1.0 + (m**2).sum(1)) ** (decay / 2 + 0.5)
    phase = rng.uniform(0, 2 * np.pi, len(m))
    v = (amp[None, :] * np.cos(np.pi * x @ m.T + phase[None, :])).sum(1)
    s = v.std()
    return v / s if s > 0 else v


def random_source(x: np.ndarray, rng: np.random.Generator, scale: float = 8.0) -> np.ndarray:
    """Random smooth source: 1-3 Gaussian bumps (width 0.08-0.25) plus a smooth background.

    Shapes
    ------
    x : (n, dim) float64
    returns : (n,) float64
    """
    out = 0.3 * random_smooth(x, rng, n_modes=2)
    for _ in range(int(rng.integers(1, 4))):
        c = x[rng.integers(len(x))]
        w = rng.uniform(0.08, 0.25)
        out = out + rng.normal() * np.exp(-((x - c) ** 2).sum(1) / (2 * w * w))
    return scale * out


def random_coefficient(x: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    """``k = 1`` (``poisson``) or ``exp(0.5 * smooth)`` clipped to [0.3, 3] (``variable``)."""
    if kind == "poisson":
        return np.ones(len(x))
    if kind == "variable":
        return np.clip(np.exp(0.5 * random_smooth(x, rng, n_modes=2)), 0.3, 3.0)
    raise ValueError(f"unknown coefficient kind '{kind}' (poisson or variable)")


# ----------------------------------------------------------------------------- one case
def facet_types_for(kind: str, mid: np.ndarray, center: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boundary type per facet for a boundary kind (see the module docstring).

    Shapes
    ------
    mid : (nf, dim) facet midpoints
    returns : (nf,) int64 in {1, 2, 3}
    """
    nf = len(mid)
    if kind == "dirichlet":
        return np.full(nf, fem.DIRICHLET)
    if kind == "neumann":
        return np.full(nf, fem.NEUMANN)
    if kind == "robin":
        return np.full(nf, fem.ROBIN)
    if kind == "mixed":
        d = mid - center
        ang = np.arctan2(d[:, 1], d[:, 0])
        n_sec = int(rng.integers(2, 5))
        width = 2 * np.pi / n_sec
        start = rng.uniform(0, 2 * np.pi)
        jitter = rng.uniform(-0.25, 0.25, n_sec) * width
        sector = (np.floor(((ang - start) % (2 * np.pi)) / width).astype(np.int64)) % n_sec
        # move the sector borders by a random fraction of a sector
        a_rel = ((ang - start) % (2 * np.pi)) - sector * width
        sector = np.where(a_rel < jitter[sector], (sector - 1) % n_sec, sector)
        kinds = [fem.DIRICHLET if s % 2 == 0 else (fem.ROBIN if rng.uniform() < 1 / 3 else fem.NEUMANN)
                 for s in range(n_sec)]
        t = np.asarray(kinds)[sector]
        if not (t == fem.DIRICHLET).any():
            t[0] = fem.DIRICHLET
        return t
    raise ValueError(f"unknown boundary kind '{kind}'; known: {', '.join(BC_KINDS)}")


def make_case(
    family: str,
    bc: str,
    seed: int,
    *,
    coefficient: str = "poisson",
    h: float | None = None,
    f_scale: float = 8.0,
    g_scale: float = 1.0,
) -> Mesh:
    """Generate and solve one case.

    Parameters
    ----------
    family
        A shape family of ``geometry.FAMILIES_2D`` or ``geometry.FAMILIES_3D``.
    bc
        ``dirichlet``, ``neumann``, ``robin`` or ``mixed``.
    seed
        Seeds everything (domain, data); the same arguments give the same case.
    coefficient
        ``poisson`` (k = 1) or ``variable``.
    h
        Target mesh size (default 0.05 in 2D, 0.15 in 3D: about 300-600 nodes).

    Shapes
    ------
    returns : Mesh with point fields f, k, g, alpha, u (n,) float64 and bc_type (n,) int32
    """
    rng = np.random.default_rng(seed)
    dim = 3 if family in geometry.FAMILIES_3D else 2
    if dim == 2:
        dom = geometry.random_domain_2d(family, rng)
        pts, cells = geometry.mesh_2d(dom, h or 0.05)
        ctype = "triangle"
    else:
        dom = geometry.random_domain_3d(family, rng)
        pts, cells = geometry.mesh_3d(dom, h or 0.15)
        ctype = "tetra"
    x = pts[:, :dim]
    name = f"{family}_{bc}_{seed}"
    bf = fem.check_manifold(cells, len(pts), name)
    mid = x[bf].mean(axis=1)
    ftype = facet_types_for(bc, mid, x.mean(0), rng)
    bct = fem.node_bc_type(len(pts), bf, ftype)

    k = random_coefficient(x, rng, coefficient)
    f = random_source(x, rng, f_scale)
    g = g_scale * random_smooth(x, rng, n_modes=5, decay=1.0)
    alpha = np.zeros(len(pts))
    if (ftype == fem.ROBIN).any():
        alpha[bct == fem.ROBIN] = rng.uniform(0.5, 5.0)
        # nodes shared by Robin and Dirichlet facets are Dirichlet nodes but still need alpha
        alpha[np.unique(bf[ftype == fem.ROBIN])] = alpha[bct == fem.ROBIN].max()
    if bc == "neumann":
        f = f - compatibility_defect(pts, cells, bf, f, g)
    sol = fem.solve(pts, cells, f=f, g=g, k=k, alpha=np.where(alpha > 0, alpha, 1.0), facet_type=ftype,
                    facets=bf, where=name)
    g_out = np.where(bct > 0, g, 0.0)
    boundaries = {}
    fcell = "line" if dim == 2 else "triangle"
    for nm, t in fem.REGION_TYPES.items():
        if (ftype == t).any():
            boundaries[nm] = [CellBlock(fcell, bf[ftype == t])]
    return Mesh(
        points=pts,
        cells=[CellBlock(ctype, cells)],
        point_data={"f": f, "k": k, "g": g_out, "alpha": alpha, "bc_type": bct.astype(np.int32), "u": sol.u},
        boundaries=boundaries,
        dim=dim,
        source=name,
        field_data={"family": family, "bc": bc, "seed": int(seed), "coefficient": coefficient},
    )


def compatibility_defect(points: np.ndarray, cells: np.ndarray, facets: np.ndarray, f: np.ndarray,
                         g: np.ndarray) -> float:
    """The constant ``c`` with ``int (f - c) + int_boundary g = 0`` for the P1 interpolants.

    Shapes
    ------
    points : (n, 3) float64; cells : (m, d+1); facets : (nf, d); f, g : (n,)
    returns : float
    """
    d = cells.shape[1] - 1
    p = points[:, :d]
    e = p[cells[:, 1:]] - p[cells[:, :1]]
    vol = np.abs(np.linalg.det(e)) / (2.0 if d == 2 else 6.0)
    int_f = float((vol * f[cells].mean(1)).sum())
    meas = fem._facet_measure(points, facets)
    int_g = float((meas * g[facets].mean(1)).sum())
    return (int_f + int_g) / float(vol.sum())


# ----------------------------------------------------------------------------- files
def case_seed(family: str, bc: str, i: int, seed: int = 0) -> int:
    """A seed for case ``i`` of (family, bc) that does not depend on which other families are asked for."""
    key = [seed, zlib.crc32(family.encode()), zlib.crc32(bc.encode()), i]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def case_name(family: str, bc: str, seed: int, coefficient: str = "poisson") -> str:
    tag = "" if coefficient == "poisson" else f"_{coefficient}"
    return f"{family}_{bc}{tag}_{seed:05d}"


def write_case(mesh: Mesh, path: str | os.PathLike[str]) -> Path:
    """Write a case as VTU atomically (temporary file in the same folder, then ``os.replace``)."""
    import meshio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    m = mesh.to_meshio()
    m.field_data = {}  # VTU field data must be arrays; the metadata lives in index.json
    m.points = mesh.points  # VTU stores 3D points (z = 0 for 2D meshes)
    # VTU has no named regions: the boundary facets follow the domain cells as extra cells whose
    # cell field FACET_FIELD holds their type (0 on domain cells), so the solver's system
    # (fem.case_system) can be rebuilt from the file
    types = [0] * len(m.cells)
    for name, blocks in mesh.boundaries.items():
        for b in blocks:
            m.cells.append(meshio.CellBlock(b.type, np.asarray(b.data)))
            types.append(fem.REGION_TYPES[name])
    m.cell_data = {FACET_FIELD: [np.full(len(c.data), t, dtype=np.int32) for c, t in zip(m.cells, types, strict=True)]}
    with atomic_path(path) as tmp:
        meshio.write(tmp, m, file_format="vtu")
    return path


def read_case(path: str | os.PathLike[str]) -> Mesh:
    """Read a case written by :func:`write_case` (``bc_type`` back to int32, the boundary facets
    back to the regions ``dirichlet`` / ``neumann`` / ``robin``)."""
    import meshio

    raw = meshio.read(path)
    tags = raw.cell_data.pop(FACET_FIELD, None)
    boundaries: dict[str, list[CellBlock]] = {}
    if tags is not None:
        names = {t: nm for nm, t in fem.REGION_TYPES.items()}
        domain = []
        for block, tag in zip(raw.cells, tags, strict=True):  # meshio merges same-type blocks: split by tag
            tag = np.asarray(tag).ravel()
            for t in np.unique(tag):
                rows = np.asarray(block.data)[tag == t]
                if t == 0:
                    domain.append(meshio.CellBlock(block.type, rows))
                elif int(t) in names:
                    boundaries.setdefault(names[int(t)], []).append(CellBlock(block.type, rows))
                else:
                    raise fem.FEMError(f"{path}: cell field '{FACET_FIELD}' holds unknown facet type {int(t)}")
        raw = meshio.Mesh(raw.points, domain, point_data=raw.point_data)
    m = Mesh.from_meshio(raw, source=str(path))
    m.boundaries = boundaries
    if "bc_type" in m.point_data:
        m.point_data["bc_type"] = np.asarray(m.point_data["bc_type"]).astype(np.int32)
    return m


def generate(
    out: str | os.PathLike[str],
    families: Sequence[str],
    bcs: Sequence[str],
    n: int,
    seed: int = 0,
    coefficient: str = "poisson",
    h: float | None = None,
) -> list[dict[str, Any]]:
    """Generate ``n`` cases per (family, bc) into ``out`` with an ``index.json`` manifest.

    Existing files with the same name are kept (generation is deterministic per seed), so an
    interrupted run resumes. Returns the manifest entries.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for fam in families:
        for bc in bcs:
            for i in range(n):
                s = case_seed(fam, bc, i, seed)
                name = case_name(fam, bc, i, coefficient)
                path = out / f"{name}.vtu"
                if not path.exists():
                    write_case(make_case(fam, bc, s, coefficient=coefficient, h=h), path)
                entries.append({"name": name, "file": path.name, "family": fam, "bc": bc, "seed": s,
                                "coefficient": coefficient})
    idx = out / "index.json"
    old = json.loads(idx.read_text()) if idx.exists() else []
    known = {e["name"] for e in entries}
    merged = [e for e in old if e["name"] not in known] + entries
    write_json_atomic(merged, idx, indent=1)
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="generate elliptic problems on random domains (scikit-fem P1)")
    p.add_argument("out", help="output folder (VTU files + index.json)")
    p.add_argument("--families", nargs="+", default=["cutout4"],
                   help="shape families: " + ", ".join(geometry.FAMILIES_2D + geometry.FAMILIES_3D))
    p.add_argument("--bcs", nargs="+", default=["dirichlet"], help="boundary kinds: " + ", ".join(BC_KINDS))
    p.add_argument("--n", type=int, default=10, help="cases per (family, boundary kind)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--coefficient", default="poisson", choices=["poisson", "variable"])
    p.add_argument("--h", type=float, default=None, help="mesh size (default 0.05 in 2D, 0.15 in 3D)")
    a = p.parse_args(argv)
    entries = generate(a.out, a.families, a.bcs, a.n, a.seed, a.coefficient, a.h)
    print(f"{len(entries)} cases in {a.out}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
