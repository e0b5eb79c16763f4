"""The SU2 reader parses whole blocks with numpy: comments, blank lines, tabs, mixed element runs,
markers and every error message, against a hand-written file."""

from __future__ import annotations

import numpy as np
import pytest

from meshops import MeshError
from meshops.io.su2 import read_su2

GOOD = """% a comment line
NDIME= 2
NELEM= 3  % trailing comment
5 0 1 2 0
9\t1 3 4 2 1

5 2 4 5 2
NPOIN= 6
0.0 0.0 0
1.0 0.0 1
0.5 1.0 2
2.0 0.0 3
2.0 1.0 4 % c
1.0 2.0e0 5
NMARK= 2
MARKER_TAG= wall
MARKER_ELEMS= 2
3 0 1
3 1 3
MARKER_TAG= out
MARKER_ELEMS= 1
3 4 5
"""


def test_su2_blocks_comments_markers(tmp_path):
    p = tmp_path / "a.su2"
    p.write_text(GOOD)
    m = read_su2(p)
    assert [(b.type, b.data.tolist()) for b in m.cells] == [
        ("triangle", [[0, 1, 2]]), ("quad", [[1, 3, 4, 2]]), ("triangle", [[2, 4, 5]])]
    np.testing.assert_array_equal(m.points[:, :2], [[0, 0], [1, 0], [0.5, 1], [2, 0], [2, 1], [1, 2]])
    assert {k: [b.data.tolist() for b in v] for k, v in m.boundaries.items()} == {
        "wall": [[[0, 1], [1, 3]]], "out": [[[4, 5]]]}


@pytest.mark.parametrize("old, new, msg", [
    ("9\t1 3 4 2 1", "9 1 3 4", "elements: element of type quad needs 4 nodes, got 3"),
    ("9\t1 3 4 2 1", "77 1 3 4 2", "elements: unknown SU2 element type '77'"),
    ("9\t1 3 4 2 1", "9 1 3.5 4 2", r"elements: non-integer node index \(3.5\)"),
    ("0.5 1.0 2", "0.5 abc 2", "points: a coordinate is not a number \\('abc'\\)"),
    ("3 4 5\n", "3 4\n", "marker 'out': element of type line needs 2 nodes, got 1"),
    ("MARKER_ELEMS= 1", "MARKER_ELEMS= 4", r"file ends after 1 of 4 marker 'out' elements \(truncated\?\)"),
])
def test_su2_errors_name_file_and_value(tmp_path, old, new, msg):
    p = tmp_path / "bad.su2"
    p.write_text(GOOD.replace(old, new))
    with pytest.raises(MeshError, match=r"bad\.su2: " + msg):
        read_su2(p)
