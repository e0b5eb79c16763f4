"""The Gmsh 2 ASCII reader parses $Elements at once: sparse node ids, tags, mixed runs, errors."""

from __future__ import annotations

import numpy as np
import pytest

from meshops import MeshError
from meshops.io.gmsh import _read_msh2_ascii

MSH = """$MeshFormat
2.2 0 8
$EndMeshFormat
$PhysicalNames
1
2 7 "wall"
$EndPhysicalNames
$Nodes
5
10 0 0 0
20 1 0 0
30 0 1 0
40 1 1 0
50 2 2 0
$EndNodes
$Elements
4
1 2 2 7 1 10 20 30
2 2 2 7 1 20 40 30
3 1 1 5 10 20
4 2 0 40 50 30
$EndElements
$NodeData
1
"p"
1
0.0
3
0
1
2
20 2.5
50 -1
$EndNodeData
"""


def test_msh2_sparse_ids_tags_and_runs(tmp_path):
    p = tmp_path / "a.msh"
    p.write_text(MSH)
    points, blocks, phys, geo, names, pdata, _ = _read_msh2_ascii(p)
    assert [b.type for b in blocks] == ["triangle", "line", "triangle"]
    assert blocks[0].data.tolist() == [[0, 1, 2], [1, 3, 2]] and blocks[1].data.tolist() == [[0, 1]]
    assert blocks[2].data.tolist() == [[3, 4, 2]]
    assert [a.tolist() for a in phys] == [[7, 7], [5], [0]] and [a.tolist() for a in geo] == [[1, 1], [0], [0]]
    assert names == {(2, 7): "wall"}
    np.testing.assert_array_equal(pdata["p"], [np.nan, 2.5, np.nan, np.nan, -1])


@pytest.mark.parametrize("old, new, msg", [
    ("4 2 0 40 50 30", "4 2 0 40 51 30", "an element uses node 51, which is not in \\$Nodes"),
    ("3 1 1 5 10 20", "3 99 1 5 10 20", "element 3 has unknown Gmsh type 99"),
    ("3 1 1 5 10 20", "3 1 1 5 10 x", "\\$Elements: 'x' is not a number"),
    ("50 -1", "60 -1", "point field 'p' refers to unknown id 60"),
])
def test_msh2_errors(tmp_path, old, new, msg):
    p = tmp_path / "bad.msh"
    p.write_text(MSH.replace(old, new))
    with pytest.raises(MeshError, match=r"bad\.msh: " + msg):
        _read_msh2_ascii(p)
