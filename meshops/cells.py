"""The cell-type catalogue: one canonical cell representation for every reader and writer.

Every cell block of a :class:`~meshops.mesh.Mesh` stores its nodes in **VTK's node order** (the
order of ``vtkCellType.h`` and the VTK file-format document), whichever reader produced it, so a
cell has one orientation (a positive VTK volume) whichever path read it. Names are meshio's where
meshio has one (``"tetra"``, ``"wedge15"``), else VTK's class name without ``vtk``, snake-cased
(``"voxel"``, ``"pixel"``, ``"lagrange_hexahedron"``). Mappings to other orders:

- meshio: identical to VTK except the linear ``wedge``, whose bottom and top triangles meshio
  (after Gmsh, Abaqus, Ansys) winds the other way: :data:`MESHIO_ORDER` (an involution).
- Gmsh: meshio's Gmsh reader and writer convert Gmsh's order to meshio's; :mod:`meshops.io.gmsh`
  therefore applies :data:`MESHIO_ORDER` on top (documented in ``docs/formats.md``).

Poly-vertices, poly-lines and triangle strips (variable-length VTK cells) are split into vertices,
2-point lines and triangles, with ``field_data['vtk:split_cells']`` (original cell of each new
cell) and ``field_data['vtk:split_types']`` (VTK type of each original cell) recorded, so cell data
stay attached and the VTK writers put the original cells back. Polyhedra keep their point list as a
``polyhedron`` block and their faces in ``field_data['vtk:polyhedron_faces']`` (VTK's legacy face
stream) with ``field_data['vtk:polyhedron_face_offsets']``.
"""

from __future__ import annotations

#: VTK cell type id -> canonical name.
VTK_TO_TYPE: dict[int, str] = {
    0: "empty", 1: "vertex", 2: "polyvertex", 3: "line", 4: "polyline", 5: "triangle", 6: "triangle_strip",
    7: "polygon", 8: "pixel", 9: "quad", 10: "tetra", 11: "voxel", 12: "hexahedron", 13: "wedge",
    14: "pyramid", 15: "penta_prism", 16: "hexa_prism", 21: "line3", 22: "triangle6", 23: "quad8",
    24: "tetra10", 25: "hexahedron20", 26: "wedge15", 27: "pyramid13", 28: "quad9", 29: "hexahedron27",
    30: "quad6", 31: "wedge12", 32: "wedge18", 33: "hexahedron24", 34: "triangle7", 35: "line4",
    36: "quadratic_polygon", 37: "pyramid19", 41: "convex_point_set", 42: "polyhedron",
    60: "higher_order_curve", 61: "higher_order_triangle", 62: "higher_order_quad", 64: "higher_order_tetra",
    65: "higher_order_wedge", 67: "higher_order_hexahedron",
    68: "lagrange_curve", 69: "lagrange_triangle", 70: "lagrange_quad", 71: "lagrange_tetra",
    72: "lagrange_hexahedron", 73: "lagrange_wedge", 74: "lagrange_pyramid", 75: "bezier_curve",
    76: "bezier_triangle", 77: "bezier_quad", 78: "bezier_tetra", 79: "bezier_hexahedron",
    80: "bezier_wedge", 81: "bezier_pyramid",
}
TYPE_TO_VTK: dict[str, int] = {v: k for k, v in VTK_TO_TYPE.items()}

_DIM_BY_VTK = {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 2, 6: 2, 7: 2, 8: 2, 9: 2, 21: 1, 22: 2, 23: 2, 28: 2,
               30: 2, 34: 2, 35: 1, 36: 2, 60: 1, 61: 2, 62: 2, 68: 1, 69: 2, 70: 2, 75: 1, 76: 2, 77: 2}

#: Topological dimension of each cell type.
CELL_DIM: dict[str, int] = {name: _DIM_BY_VTK.get(i, 3) for i, name in VTK_TO_TYPE.items()}

#: Number of nodes per cell for the fixed-size cell types.
CELL_NODES: dict[str, int] = {
    "vertex": 1, "line": 2, "line3": 3, "line4": 4, "triangle": 3, "triangle6": 6, "triangle7": 7,
    "quad": 4, "quad6": 6, "quad8": 8, "quad9": 9, "pixel": 4, "tetra": 4, "tetra10": 10,
    "hexahedron": 8, "hexahedron20": 20, "hexahedron24": 24, "hexahedron27": 27, "voxel": 8,
    "wedge": 6, "wedge12": 12, "wedge15": 15, "wedge18": 18, "pyramid": 5, "pyramid13": 13,
    "pyramid19": 19, "penta_prism": 10, "hexa_prism": 12,
}

#: Per-type node permutation between meshio's order and VTK's (applying it twice is the identity).
MESHIO_ORDER: dict[str, list[int]] = {"wedge": [0, 2, 1, 3, 5, 4]}

#: Variable-length VTK cells that readers split: VTK id -> (VTK id of the pieces, nodes per piece).
SPLIT_CELLS: dict[int, tuple[int, int]] = {2: (1, 1), 4: (3, 2), 6: (5, 3)}
