"""The cell-type catalogue: node counts and topological dimensions (numpy-free, import-free).

Names are meshio's (``"tetra"``, ``"wedge15"``); node orders are VTK's (see ``docs/formats.md``).
"""

from __future__ import annotations

#: Number of vertices per cell for the fixed-size cell types meshops knows about.
CELL_NODES: dict[str, int] = {
    "vertex": 1,
    "line": 2,
    "line3": 3,
    "triangle": 3,
    "triangle6": 6,
    "quad": 4,
    "quad8": 8,
    "quad9": 9,
    "tetra": 4,
    "tetra10": 10,
    "hexahedron": 8,
    "hexahedron20": 20,
    "hexahedron27": 27,
    "wedge": 6,
    "wedge15": 15,
    "pyramid": 5,
    "pyramid13": 13,
}

#: Topological dimension of each cell type.
CELL_DIM: dict[str, int] = {
    "vertex": 0,
    "line": 1,
    "line3": 1,
    "triangle": 2,
    "triangle6": 2,
    "quad": 2,
    "quad8": 2,
    "quad9": 2,
    "polygon": 2,
    "tetra": 3,
    "tetra10": 3,
    "hexahedron": 3,
    "hexahedron20": 3,
    "hexahedron27": 3,
    "wedge": 3,
    "wedge15": 3,
    "pyramid": 3,
    "pyramid13": 3,
    "polyhedron": 3,
}
