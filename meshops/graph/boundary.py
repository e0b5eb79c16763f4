"""The boundary of a mesh: faces (3D) or edges (2D), outward normals, named regions, signed distance.

* Volume meshes (3D cells): the faces owned by exactly one cell, oriented away from their cell.
* 2D meshes (``mesh.dim == 2``): the edges owned by exactly one cell, normals in the plane.
* Surface meshes in 3D (triangles/quads only, e.g. a vessel wall ``.vtp``): the surface itself,
  in the file's orientation (meshops does not re-orient a surface it did not build).

Named regions (OpenFOAM patches, Gmsh physical groups, VTP face ids, SU2 markers) are kept: each
boundary face carries the index of the region whose face (or edge) has the same vertices, 0 when
none does (``names[0] == "unnamed"``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from meshops.geometry import boundary as gb
from meshops.geometry.surface import face_normals, triangulate
from meshops.geometry.topology import boundary_faces
from meshops.mesh import CELL_DIM, Mesh, MeshError

log = logging.getLogger(__name__)

__all__ = ["Boundary", "cell_centroids", "extract_boundary"]


@dataclass
class Boundary:
    """Boundary faces of a mesh with outward normals and region labels.

    Attributes
    ----------
    points : (n, 3) float64, the mesh's points (shared, not copied).
    faces : (m, 3) int64 triangles (3D; polygons fanned) or (m, 2) int64 segments (2D).
    normals : (m, 3) float64 unit outward normals.
    region : (m,) int64 index into ``names`` (0 = in no named region).
    names : list of str, ``["unnamed", region1, ...]`` in the mesh's region order.
    """

    points: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    region: np.ndarray
    names: list[str]

    @property
    def point_ids(self) -> np.ndarray:
        """(k,) int64 sorted mesh point indices on the boundary."""
        return np.unique(self.faces)

    def signed_distance(self, query: np.ndarray) -> np.ndarray:
        """Signed distance (negative inside) from ``query (q, 3)`` to this boundary; see
        :func:`meshops.geometry.boundary.signed_distance`."""
        return gb.signed_distance(query, self.points, self.faces)

    def region_faces(self, name: str) -> np.ndarray:
        """Faces of one named region."""
        if name not in self.names:
            raise KeyError(f"boundary region '{name}' not found (regions: {self.names[1:]})")
        return self.faces[self.region == self.names.index(name)]


def cell_centroids(mesh: Mesh) -> np.ndarray:
    """Mean of the vertices of each cell, in global cell order (blocks concatenated).

    Shapes
    ------
    returns : (n_cells, 3) float64
    """
    out = []
    p = mesh.points
    for b in mesh.cells:
        d = np.asarray(b.data)
        if d.dtype == object:
            rows = []
            for c in d:
                while isinstance(c, np.ndarray) and c.dtype == object and c.size == 1:
                    c = c.reshape(-1)[0]
                ids = np.unique(np.concatenate([np.asarray(f, np.int64).ravel() for f in c])) \
                    if b.type.startswith("polyhedron") else np.asarray(c, np.int64).ravel()
                rows.append(p[ids].mean(0))
            out.append(np.array(rows).reshape(-1, 3))
        else:
            out.append(p[d.astype(np.int64)].mean(axis=1))
    return np.concatenate(out) if out else np.zeros((0, 3))


def extract_boundary(mesh: Mesh) -> Boundary:
    """The boundary of ``mesh`` with outward normals and named regions kept.

    Shapes
    ------
    returns : :class:`Boundary` (faces (m, 3) in 3D, (m, 2) in 2D)

    Raises
    ------
    MeshError
        when the mesh has no cells of dimension >= 2.
    """
    where = mesh.source or "<mesh>"
    top = mesh.topological_dim
    names = ["unnamed"] + list(mesh.boundaries)
    p = mesh.points
    if top < 2:
        raise MeshError(f"{where}: no boundary: the mesh has no 2D or 3D cells (cell types {list(mesh.cell_types)})")
    if top == 2 and mesh.dim == 3:
        blocks = [b for b in mesh.cells if CELL_DIM.get(b.type, 0) == 2]
        groups = [np.asarray(b.data) for b in blocks]
        region_groups = groups
        owner_inside = None
    else:
        groups, owners = boundary_faces([b for b in mesh.cells if CELL_DIM.get(b.type, 3) == top])
        cen = cell_centroids(mesh)
        # owners index cells of the selected blocks: remap to global indices when blocks were skipped
        sel_blocks = [i for i, b in enumerate(mesh.cells) if CELL_DIM.get(b.type, 3) == top]
        offs = np.cumsum([0] + [len(b) for b in mesh.cells])
        glob = np.concatenate([offs[i] + np.arange(len(mesh.cells[i])) for i in sel_blocks]) \
            if sel_blocks else np.zeros(0, np.int64)
        owner_inside = [cen[glob[o]] for o in owners]
        groups = [gb.orient_outward(p, f, c) for f, c in zip(groups, owner_inside, strict=True)]
        region_groups = groups
    if not groups or sum(len(g) for g in groups) == 0:
        raise MeshError(f"{where}: the mesh has no boundary faces (a closed surface in 2D, or no cells)")
    # region label per face
    regions = []
    lookup: dict[int, dict[bytes, int]] = {}
    for k, nme in enumerate(names[1:], start=1):
        for b in mesh.boundaries[nme]:
            d = np.asarray(b.data, dtype=np.int64)
            if d.ndim != 2:
                continue
            tab = lookup.setdefault(d.shape[1], {})
            for row in np.sort(d, axis=1):
                tab.setdefault(row.tobytes(), k)
    for g in region_groups:
        tab = lookup.get(g.shape[1], {})
        srt = np.sort(g, axis=1)
        regions.append(np.array([tab.get(r.tobytes(), 0) for r in srt], dtype=np.int64) if tab
                       else np.zeros(len(g), dtype=np.int64))
    if mesh.dim == 2 and top == 2:
        faces = np.concatenate(groups).astype(np.int64)
        region = np.concatenate(regions)
        normals = gb.segment_normals(p, faces)
    else:
        tris, regs = [], []
        for g, r in zip(groups, regions, strict=True):
            t = triangulate(np.asarray(g, np.int64))
            tris.append(t)
            regs.append(np.repeat(r, g.shape[1] - 2))
        faces = np.concatenate(tris)
        region = np.concatenate(regs)
        normals = face_normals(p, faces)
    log.debug("%s: boundary with %d faces, %d named regions", where, len(faces), len(names) - 1)
    return Boundary(points=p, faces=faces, normals=normals, region=region, names=names)
